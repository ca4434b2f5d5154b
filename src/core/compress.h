/*
 * compress.h - one-shot compression of a request body given as iovecs (gzip with zlib,
 * zstd, lz4 frame), into a buffer the caller keeps and reuses across requests.
 *
 * Thread: any; a struct mars_compressor belongs to one thread.
 */
#ifndef MARS_COMPRESS_H
#define MARS_COMPRESS_H

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
};

void mars_compressor_init(struct mars_compressor *c, enum mars_codec codec, int level);
void mars_compressor_fini(struct mars_compressor *c);

/* Compresses the concatenation of iov[0..n) into c->out/c->len. Returns 0, -ENOMEM, or
 * -EIO when the library fails. With MARS_CODEC_NONE it copies nothing and fails -EINVAL. */
int mars_compress(struct mars_compressor *c, const struct iovec *iov, int n);

/* The HTTP Content-Encoding token ("gzip", "zstd"), or NULL when HTTP has none (lz4). */
const char *mars_codec_http_encoding(enum mars_codec codec);

#endif
