/*
 * test_compress.c - core/compress.c: each codec round-trips through its own library's
 * decoder, for empty input, one small iovec, many iovecs, and 8 MiB of mixed data; the
 * compressor is reused across calls (its buffer and zstd context are kept).
 */
#include <errno.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/compress.h"

/* a streamed zstd frame does not know its size in advance (one-shot frames must carry it) */
static bool streamed;

static unsigned char *decode(enum mars_codec codec, const unsigned char *in, size_t n, size_t want)
{
    unsigned char *out = malloc(want + 1);
    assert_non_null(out);
    if (codec == MARS_CODEC_GZIP) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = (unsigned char *)in;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)want + 1;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, want);
        inflateEnd(&z);
    } else if (codec == MARS_CODEC_ZSTD) {
        unsigned long long size = ZSTD_getFrameContentSize(in, n);
        /* zstd still writes the size of a stream it gets whole in its first call (empty) */
        if (!streamed || size != ZSTD_CONTENTSIZE_UNKNOWN)
            assert_int_equal(size, want);
        size_t r = ZSTD_decompress(out, want + 1, in, n);
        assert_false(ZSTD_isError(r));
        assert_int_equal(r, want);
    } else {
        LZ4F_dctx *d;
        assert_false(LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)));
        size_t got = 0, used = 0;
        while (used < n) {
            size_t dst = want + 1 - got, src = n - used;
            size_t r = LZ4F_decompress(d, out + got, &dst, in + used, &src, NULL);
            assert_false(LZ4F_isError(r));
            got += dst;
            used += src;
            if (r == 0)
                break;
        }
        assert_int_equal(got, want);
        LZ4F_freeDecompressionContext(d);
    }
    return out;
}

static void roundtrip(struct mars_compressor *c, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    unsigned char *flat = malloc(total + 1);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        memcpy(flat + pos, iov[i].iov_base, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    assert_int_equal(mars_compress(c, iov, n), 0);
    assert_true(c->len > 0);
    unsigned char *back = decode(c->codec, c->out, c->len, total);
    assert_memory_equal(back, flat, total);
    free(back);
    if (c->codec == MARS_CODEC_GZIP || c->codec == MARS_CODEC_ZSTD) {
        /* streaming, one iovec per call, into the same compressor: the same bytes back */
        assert_int_equal(mars_compress_begin(c), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(mars_compress_more(c, &iov[i], 1), 0);
        assert_int_equal(mars_compress_end(c), 0);
        assert_true(c->len > 0);
        streamed = true;
        back = decode(c->codec, c->out, c->len, total);
        streamed = false;
        assert_memory_equal(back, flat, total);
        free(back);
    } else {
        assert_int_equal(mars_compress_begin(c), -EINVAL);
    }
    free(flat);
}

static void run_codec(enum mars_codec codec)
{
    struct mars_compressor c;
    mars_compressor_init(&c, codec, 0);
    roundtrip(&c, NULL, 0);
    struct iovec one = {.iov_base = "hello, world\n", .iov_len = 13};
    roundtrip(&c, &one, 1);
    /* many iovecs of log-like lines */
    enum { N = 500 };
    struct iovec v[N];
    char *lines = malloc(N * 64);
    for (int i = 0; i < N; i++) {
        int l =
            snprintf(lines + i * 64, 64, "{\"seq\":%d,\"msg\":\"request %d served\"}\n", i, i * 7);
        v[i] = (struct iovec){.iov_base = lines + i * 64, .iov_len = (size_t)l};
    }
    roundtrip(&c, v, N);
    /* 8 MiB: half text, half pseudo-random (incompressible) */
    size_t big = 8u << 20;
    unsigned char *b = malloc(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = i < big / 2 ? (unsigned char)('a' + i % 26) : (unsigned char)(x >> 24);
    }
    struct iovec halves[2] = {{b, big / 2}, {b + big / 2, big / 2}};
    roundtrip(&c, halves, 2);
    roundtrip(&c, v, N); /* reuse after a large one */
    free(b);
    free(lines);
    mars_compressor_fini(&c);
}

static void test_gzip(void **s)
{
    (void)s;
    run_codec(MARS_CODEC_GZIP);
}
static void test_zstd(void **s)
{
    (void)s;
    run_codec(MARS_CODEC_ZSTD);
}
static void test_lz4(void **s)
{
    (void)s;
    run_codec(MARS_CODEC_LZ4);
}

static void test_none_and_names(void **s)
{
    (void)s;
    struct mars_compressor c;
    mars_compressor_init(&c, MARS_CODEC_NONE, 0);
    struct iovec one = {.iov_base = "x", .iov_len = 1};
    assert_int_equal(mars_compress(&c, &one, 1), -EINVAL);
    mars_compressor_fini(&c);
    assert_string_equal(mars_codec_http_encoding(MARS_CODEC_GZIP), "gzip");
    assert_string_equal(mars_codec_http_encoding(MARS_CODEC_ZSTD), "zstd");
    assert_null(mars_codec_http_encoding(MARS_CODEC_LZ4));
    assert_null(mars_codec_http_encoding(MARS_CODEC_NONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_lz4),
        cmocka_unit_test(test_none_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
