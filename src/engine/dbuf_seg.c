/*
 * dbuf_seg.c - records of disk-buffer segments: header encoding, reading and checking a
 * record, and finding the next good record after damage (dbuf_seg.h has the format).
 *
 * Thread: any.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/hash.h"
#include "engine/dbuf_seg.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void mars_dbuf_rec_header(uint8_t *out, const struct mars_dbuf_rec *r, const void *payload)
{
    put32(out, MARS_DBUF_REC_MAGIC);
    put32(out + 8, r->len);
    put32(out + 12, mars_crc32c(0, payload, r->len));
    out[16] = (uint8_t)r->source;
    out[17] = (uint8_t)(r->source >> 8);
    out[18] = out[19] = 0;
    put32(out + 20, r->events);
    put64(out + 24, r->seq);
    put64(out + 32, (uint64_t)r->wall_ns);
    put32(out + 4, mars_crc32c(0, out + 8, MARS_DBUF_REC_HDR - 8));
}

/* A header that is whole and says what it is (magic, CRC, a sane length). */
static bool header_ok(const uint8_t *h)
{
    return get32(h) == MARS_DBUF_REC_MAGIC &&
           get32(h + 4) == mars_crc32c(0, h + 8, MARS_DBUF_REC_HDR - 8) &&
           get32(h + 8) <= MARS_DBUF_REC_MAX;
}

static void parse_header(const uint8_t *h, struct mars_dbuf_rec *r)
{
    r->len = get32(h + 8);
    r->source = (uint16_t)(h[16] | h[17] << 8);
    r->events = get32(h + 20);
    r->seq = get64(h + 24);
    r->wall_ns = (int64_t)get64(h + 32);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -ENODATA; /* the file is shorter than we were told */
        got += (size_t)k;
    }
    return 0;
}

/* The first offset after `from` (inclusive) with a good header, or end. */
static uint64_t resync(int fd, uint64_t from, uint64_t end)
{
    enum { WIN = 65536 };
    uint8_t *w = malloc(WIN);
    if (!w)
        return end;
    uint64_t pos = from;
    while (pos + MARS_DBUF_REC_HDR <= end) {
        size_t n = end - pos < WIN ? (size_t)(end - pos) : WIN;
        if (pread_all(fd, w, n, pos))
            break;
        size_t last = n - MARS_DBUF_REC_HDR; /* candidates whose header fits the window */
        for (size_t i = 0; i <= last; i++) {
            if (w[i] != 'M' || !header_ok(w + i))
                continue;
            free(w);
            return pos + i;
        }
        pos += last + 1;
    }
    free(w);
    return end;
}

enum mars_dbuf_next mars_dbuf_seg_next(int fd, uint64_t off, uint64_t end, bool payload,
                                       struct mars_dbuf_rbuf *rb, struct mars_dbuf_rec *r,
                                       uint64_t *next, int *err)
{
    uint8_t h[MARS_DBUF_REC_HDR];
    int rc;

    *err = 0;
    if (off >= end)
        return MARS_DBUF_END;
    if (end - off < MARS_DBUF_REC_HDR) {
        *next = end;
        return MARS_DBUF_TORN;
    }
    if ((rc = pread_all(fd, h, sizeof(h), off))) {
        *err = -rc;
        return MARS_DBUF_IOERR;
    }
    if (!header_ok(h)) {
        *next = resync(fd, off + 1, end);
        return MARS_DBUF_CORRUPT;
    }
    parse_header(h, r);
    uint64_t rec_end = off + MARS_DBUF_REC_HDR + r->len;
    if (rec_end > end) {
        /* a whole header whose payload runs past the end: torn, unless a good record
         * starts inside it (then the bytes in between are damage) */
        uint64_t n = resync(fd, off + 1, end);
        *next = n;
        return n < end ? MARS_DBUF_CORRUPT : MARS_DBUF_TORN;
    }
    *next = rec_end;
    if (!payload)
        return MARS_DBUF_OK;
    if (mars_grow(&rb->p, &rb->cap, r->len ? r->len : 1, 1)) {
        *err = ENOMEM;
        return MARS_DBUF_IOERR;
    }
    if ((rc = pread_all(fd, rb->p, r->len, off + MARS_DBUF_REC_HDR))) {
        *err = -rc;
        return MARS_DBUF_IOERR;
    }
    if (mars_crc32c(0, rb->p, r->len) != get32(h + 12))
        return MARS_DBUF_CORRUPT; /* len was trusted (header CRC): the next record follows */
    return MARS_DBUF_OK;
}

int mars_dbuf_seg_check_magic(int fd)
{
    char m[MARS_DBUF_SEG_HDR];
    int rc = pread_all(fd, m, sizeof(m), 0);
    if (rc == -ENODATA)
        return -EPROTO;
    if (rc)
        return rc;
    return memcmp(m, MARS_DBUF_SEG_MAGIC, MARS_DBUF_SEG_HDR) == 0 ? 0 : -EPROTO;
}
