/*
 * compress.c - gzip (zlib deflate with a gzip wrapper), zstd (streaming API over the
 * iovecs, one context kept per compressor) and lz4 (frame format, so any lz4 tool can
 * read it) of an iovec list into a growing output buffer. The output grows by doubling
 * from the codec's bound for small inputs, so a steady stream of similar requests stops
 * allocating after the first few. gzip and zstd go through one stream code: mars_compress
 * is a stream whose size is known (output from the bound), mars_compress_begin/more/end
 * one whose size is not (output from 64 KiB), the z_stream or zstd context kept between
 * its calls.
 *
 * Thread: the compressor's owner.
 */
#include "core/compress.h"

#include <errno.h>
#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/grow.h"

void mars_compressor_init(struct mars_compressor *c, enum mars_codec codec, int level)
{
    memset(c, 0, sizeof(*c));
    c->codec = codec;
    c->level = level;
}

void mars_compressor_fini(struct mars_compressor *c)
{
    if (c->gz) {
        deflateEnd(c->gz);
        free(c->gz);
    }
    free(c->out);
    if (c->zstd_ctx)
        ZSTD_freeCCtx(c->zstd_ctx);
    memset(c, 0, sizeof(*c));
}

static int reserve(struct mars_compressor *c, size_t need)
{
    return mars_grow(&c->out, &c->cap, need, 1);
}

static size_t total_len(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* ---- streaming ---- */

/* Output starts at 64 KiB and doubles: logs shrink 6-10x, so a 1 MiB request needs ~2
 * steps, and the buffer is reused by the next request. */
#define STREAM_OUT_START ((size_t)64 << 10)

static int gz_step(struct mars_compressor *c, z_stream *z, const struct iovec *in, int flush)
{
    z->next_in = in ? in->iov_base : NULL;
    z->avail_in = in ? (uInt)in->iov_len : 0;
    for (;;) {
        if (c->cap - c->len < 1024 &&
            reserve(c, c->cap * 2 > STREAM_OUT_START ? c->cap * 2 : STREAM_OUT_START))
            return -ENOMEM;
        z->next_out = c->out + c->len;
        z->avail_out = (uInt)(c->cap - c->len);
        int zr = deflate(z, flush);
        c->len = (size_t)(z->next_out - c->out);
        if (zr == Z_STREAM_END)
            return 0;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EIO;
        if (flush == Z_NO_FLUSH && z->avail_in == 0)
            return 0;
    }
}

/* Opens a stream. With the input's size known (one call), the output starts at the codec's
 * bound (zstd also writes the size into the frame); otherwise at STREAM_OUT_START. On
 * failure nothing stays open. */
static int stream_begin(struct mars_compressor *c, const size_t *known)
{
    c->len = 0;
    if (c->codec == MARS_CODEC_GZIP) {
        if (c->gz_open)
            return -EINVAL;
        /* The stream's ~260 KiB of state is kept and reset for the next one: made and freed
         * per request, it was trimmed from the heap (madvise) and faulted in again each
         * time, ~15% of file -> http (gzip) once nothing else held the heap's top. */
        z_stream *z = c->gz;
        if (z && deflateReset(z) != Z_OK)
            return -EIO;
        if (!z) {
            z = calloc(1, sizeof(*z));
            /* level 1 by default: on log lines it still shrinks ~6-8x, at several times the
             * speed of zlib's default 6 (which made gzip the bottleneck of the http sink
             * bench) */
            if (!z || deflateInit2(z, c->level ? c->level : 1, Z_DEFLATED, 15 + 16, 8,
                                   Z_DEFAULT_STRATEGY) != Z_OK) {
                free(z);
                return -ENOMEM;
            }
            c->gz = z;
        }
        if (reserve(c, known ? deflateBound(z, *known) + 64 : STREAM_OUT_START))
            return -ENOMEM;
        c->gz_open = true;
        return 0;
    }
    if (c->codec == MARS_CODEC_ZSTD) {
        if (!c->zstd_ctx && !(c->zstd_ctx = ZSTD_createCCtx()))
            return -ENOMEM;
        ZSTD_CCtx_reset(c->zstd_ctx, ZSTD_reset_session_only);
        ZSTD_CCtx_setParameter(c->zstd_ctx, ZSTD_c_compressionLevel, c->level ? c->level : 3);
        if (known)
            ZSTD_CCtx_setPledgedSrcSize(c->zstd_ctx, *known);
        return reserve(c, known ? ZSTD_compressBound(*known) + 64 : STREAM_OUT_START);
    }
    return -EINVAL;
}

int mars_compress_begin(struct mars_compressor *c)
{
    return stream_begin(c, NULL);
}

/* zstd takes any output room: the buffer grows only when a step filled it (never, when
 * it starts at the bound) */
static int zstd_step(struct mars_compressor *c, const struct iovec *iov, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {iov ? iov->iov_base : NULL, iov ? iov->iov_len : 0, 0};
    for (;;) {
        ZSTD_outBuffer out = {c->out, c->cap, c->len};
        size_t left = ZSTD_compressStream2(c->zstd_ctx, &out, &in, mode);
        c->len = out.pos;
        if (ZSTD_isError(left))
            return -EIO;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
        if (c->len == c->cap && reserve(c, c->cap * 2))
            return -ENOMEM;
    }
}

int mars_compress_more(struct mars_compressor *c, const struct iovec *iov, int n)
{
    int rc = 0;
    if (c->codec == MARS_CODEC_GZIP && !c->gz_open)
        return -EINVAL;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = c->codec == MARS_CODEC_GZIP   ? gz_step(c, c->gz, &iov[i], Z_NO_FLUSH)
             : c->codec == MARS_CODEC_ZSTD ? zstd_step(c, &iov[i], ZSTD_e_continue)
                                           : -EINVAL;
    return rc;
}

int mars_compress_end(struct mars_compressor *c)
{
    if (c->codec == MARS_CODEC_GZIP) {
        if (!c->gz_open)
            return -EINVAL;
        c->gz_open = false;
        return gz_step(c, c->gz, NULL, Z_FINISH);
    }
    return c->codec == MARS_CODEC_ZSTD && c->zstd_ctx ? zstd_step(c, NULL, ZSTD_e_end) : -EINVAL;
}

static int do_lz4(struct mars_compressor *c, const struct iovec *iov, int n)
{
    LZ4F_preferences_t prefs = {0};
    prefs.compressionLevel = c->level;
    prefs.frameInfo.contentSize = total_len(iov, n);
    size_t pos = 0, r;
    int rc = reserve(c, LZ4F_HEADER_SIZE_MAX);
    LZ4F_cctx *z = NULL;
    if (rc || LZ4F_isError(LZ4F_createCompressionContext(&z, LZ4F_VERSION)))
        return rc ? rc : -ENOMEM;
    r = LZ4F_compressBegin(z, c->out, c->cap, &prefs);
    if (LZ4F_isError(r))
        rc = -EIO;
    pos = LZ4F_isError(r) ? 0 : r;
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t bound = LZ4F_compressBound(iov[i].iov_len, &prefs);
        if ((rc = reserve(c, pos + bound)))
            break;
        r = LZ4F_compressUpdate(z, c->out + pos, c->cap - pos, iov[i].iov_base, iov[i].iov_len,
                                NULL);
        if (LZ4F_isError(r))
            rc = -EIO;
        else
            pos += r;
    }
    if (rc == 0 && (rc = reserve(c, pos + LZ4F_compressBound(0, &prefs))) == 0) {
        r = LZ4F_compressEnd(z, c->out + pos, c->cap - pos, NULL);
        if (LZ4F_isError(r))
            rc = -EIO;
        else
            pos += r;
    }
    LZ4F_freeCompressionContext(z);
    c->len = pos;
    return rc;
}

int mars_compress(struct mars_compressor *c, const struct iovec *iov, int n)
{
    c->len = 0;
    switch (c->codec) {
    case MARS_CODEC_GZIP:
    case MARS_CODEC_ZSTD: {
        size_t total = total_len(iov, n);
        int rc = stream_begin(c, &total);
        if (rc)
            return rc;
        rc = mars_compress_more(c, iov, n);
        int end = mars_compress_end(c);
        return rc ? rc : end;
    }
    case MARS_CODEC_LZ4:
        return do_lz4(c, iov, n);
    default:
        return -EINVAL;
    }
}

const char *mars_codec_http_encoding(enum mars_codec codec)
{
    switch (codec) {
    case MARS_CODEC_GZIP:
        return "gzip";
    case MARS_CODEC_ZSTD:
        return "zstd";
    default:
        return NULL;
    }
}
