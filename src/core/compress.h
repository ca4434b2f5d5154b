/*
 * compress.h - compression of a request body given as iovecs (gzip with zlib, zstd, lz4
 * frame), in one call or (gzip, zstd) piece by piece, into a buffer the caller keeps and
 * reuses across requests.
 *
 * Thread: any; a struct mars_compressor belongs to one thread.
 */
#ifndef MARS_COMPRESS_H
#define MARS_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Same order as mars_compression_names (config/netconf.h). */
enum mars_codec { MARS_CODEC_NONE, MARS_CODEC_GZIP, MARS_CODEC_ZSTD, MARS_CODEC_LZ4 };

struct mars_compressor {
    enum mars_codec codec;
    int level;          /* 0: mars's default (gzip 1, zstd 3, lz4 fast) */
    unsigned char *out; /* owned; valid until the next call or fini */
    size_t len, cap;
    void *zstd_ctx; /* reused ZSTD_CCtx */
    void *gz;       /* reused z_stream (deflateReset between streams) */
    bool gz_open;   /* a gzip stream is between begin and end */
};

void mars_compressor_init(struct mars_compressor *c, enum mars_codec codec, int level);
void mars_compressor_fini(struct mars_compressor *c);

/* Compresses the concatenation of iov[0..n) into c->out/c->len. Returns 0, -ENOMEM, or
 * -EIO when the library fails. With MARS_CODEC_NONE it copies nothing and fails -EINVAL. */
int mars_compress(struct mars_compressor *c, const struct iovec *iov, int n);

/* Streaming, for gzip and zstd (the HTTP codecs): begin, any number of more, then end; the
 * output is that of mars_compress over the concatenation, in c->out/c->len after end. A
 * caller that encodes its input piece by piece compresses each piece as it comes and never
 * holds the whole uncompressed body. Each returns 0, -ENOMEM, -EIO, or -EINVAL for another
 * codec (begin) or out of order; after a failure, end still releases the stream. */
int mars_compress_begin(struct mars_compressor *c);
int mars_compress_more(struct mars_compressor *c, const struct iovec *iov, int n);
int mars_compress_end(struct mars_compressor *c);

/* The HTTP Content-Encoding token ("gzip", "zstd"), or NULL when HTTP has none (lz4). */
const char *mars_codec_http_encoding(enum mars_codec codec);

#endif
