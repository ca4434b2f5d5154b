/*
 * compress.c - gzip (zlib deflate with a gzip wrapper), zstd (streaming API over the
 * iovecs, one context kept per compressor) and lz4 (frame format, so any lz4 tool can
 * read it) of an iovec list into a growing output buffer. The output grows by doubling
 * from the codec's bound for small inputs, so a steady stream of similar requests stops
 * allocating after the first few. Streaming (gzip, zstd) keeps the z_stream or the zstd
 * context between calls; its output starts at 64 KiB, since the size is not known.
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

static int do_gzip(struct mars_compressor *c, const struct iovec *iov, int n)
{
    z_stream z = {0};
    /* level 1 by default: on log lines it still shrinks ~6-8x, at several times the speed
     * of zlib's default 6 (which made gzip the bottleneck of the http sink bench) */
    int level = c->level ? c->level : 1;
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    int rc = reserve(c, deflateBound(&z, total_len(iov, n)) + 64);
    for (int i = 0; rc == 0 && i <= n; i++) {
        z.next_in = i < n ? iov[i].iov_base : NULL;
        z.avail_in = i < n ? (uInt)iov[i].iov_len : 0;
        int flush = i < n ? Z_NO_FLUSH : Z_FINISH;
        for (;;) {
            if (c->cap - z.total_out < 1024 && (rc = reserve(c, c->cap * 2)))
                break;
            z.next_out = c->out + z.total_out;
            z.avail_out = (uInt)(c->cap - z.total_out);
            int zr = deflate(&z, flush);
            if (zr == Z_STREAM_END)
                break;
            if (zr != Z_OK && zr != Z_BUF_ERROR) {
                rc = -EIO;
                break;
            }
            if (flush == Z_NO_FLUSH && z.avail_in == 0)
                break;
        }
    }
    c->len = z.total_out;
    deflateEnd(&z);
    return rc;
}

static int do_zstd(struct mars_compressor *c, const struct iovec *iov, int n)
{
    if (!c->zstd_ctx && !(c->zstd_ctx = ZSTD_createCCtx()))
        return -ENOMEM;
    ZSTD_CCtx *z = c->zstd_ctx;
    ZSTD_CCtx_reset(z, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, c->level ? c->level : 3);
    size_t total = total_len(iov, n);
    ZSTD_CCtx_setPledgedSrcSize(z, total);
    int rc = reserve(c, ZSTD_compressBound(total) + 64);
    ZSTD_outBuffer out = {c->out, c->cap, 0};
    for (int i = 0; rc == 0 && i <= n; i++) {
        ZSTD_inBuffer in = {i < n ? iov[i].iov_base : NULL, i < n ? iov[i].iov_len : 0, 0};
        ZSTD_EndDirective mode = i < n ? ZSTD_e_continue : ZSTD_e_end;
        for (;;) {
            size_t left = ZSTD_compressStream2(z, &out, &in, mode);
            if (ZSTD_isError(left)) {
                rc = -EIO;
                break;
            }
            if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
                break;
            if (out.pos == out.size) { /* bound exceeded only if the input lied; grow */
                if ((rc = reserve(c, c->cap * 2)))
                    break;
                out.dst = c->out;
                out.size = c->cap;
            }
        }
    }
    c->len = out.pos;
    return rc;
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
        return do_gzip(c, iov, n);
    case MARS_CODEC_ZSTD:
        return do_zstd(c, iov, n);
    case MARS_CODEC_LZ4:
        return do_lz4(c, iov, n);
    default:
        return -EINVAL;
    }
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

int mars_compress_begin(struct mars_compressor *c)
{
    c->len = 0;
    if (c->gz)
        return -EINVAL;
    if (reserve(c, STREAM_OUT_START))
        return -ENOMEM;
    if (c->codec == MARS_CODEC_GZIP) {
        z_stream *z = calloc(1, sizeof(*z));
        if (!z)
            return -ENOMEM;
        if (deflateInit2(z, c->level ? c->level : 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            free(z);
            return -ENOMEM;
        }
        c->gz = z;
        return 0;
    }
    if (c->codec == MARS_CODEC_ZSTD) {
        if (!c->zstd_ctx && !(c->zstd_ctx = ZSTD_createCCtx()))
            return -ENOMEM;
        ZSTD_CCtx_reset(c->zstd_ctx, ZSTD_reset_session_only);
        ZSTD_CCtx_setParameter(c->zstd_ctx, ZSTD_c_compressionLevel, c->level ? c->level : 3);
        return 0;
    }
    return -EINVAL;
}

static int zstd_step(struct mars_compressor *c, const struct iovec *iov, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {iov ? iov->iov_base : NULL, iov ? iov->iov_len : 0, 0};
    for (;;) {
        if (c->cap - c->len < 1024 && reserve(c, c->cap * 2))
            return -ENOMEM;
        ZSTD_outBuffer out = {c->out, c->cap, c->len};
        size_t left = ZSTD_compressStream2(c->zstd_ctx, &out, &in, mode);
        c->len = out.pos;
        if (ZSTD_isError(left))
            return -EIO;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

int mars_compress_more(struct mars_compressor *c, const struct iovec *iov, int n)
{
    int rc = 0;
    if (c->codec == MARS_CODEC_GZIP && !c->gz)
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
        if (!c->gz)
            return -EINVAL;
        int rc = gz_step(c, c->gz, NULL, Z_FINISH);
        deflateEnd(c->gz);
        free(c->gz);
        c->gz = NULL;
        return rc;
    }
    return c->codec == MARS_CODEC_ZSTD ? zstd_step(c, NULL, ZSTD_e_end) : -EINVAL;
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
