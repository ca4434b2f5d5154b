/*
 * dbuf_seg.h - the segment file format of disk buffers (docs/architecture.md, "Disk
 * buffers"): what one record looks like on disk and how a reader walks a segment, telling
 * good records from torn tails and corrupt bytes.
 *
 * A segment starts with the 8-byte magic "MARSDB1\n", then records back to back. A record
 * is a 40-byte header and `len` payload bytes (little-endian):
 *
 *    0 u32 magic 0x5244424d ("MBDR")     20 u32 events
 *    4 u32 hcrc  CRC-32C of bytes 8..40  24 u64 seq
 *    8 u32 len   payload bytes           32 i64 wall_ns (when it was written)
 *   12 u32 pcrc  CRC-32C of the payload
 *   16 u16 source  18 u16 flags (0)
 *
 * The header has its own CRC so a reader can trust `len` before it reads the payload, and
 * after damage it can find the next record by looking for the magic with a valid header
 * CRC (a false match needs the 32-bit magic and the 32-bit CRC to agree by chance).
 *
 * Thread: any; plain pread on the caller's fd.
 */
#ifndef MARS_DBUF_SEG_H
#define MARS_DBUF_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MARS_DBUF_SEG_MAGIC "MARSDB1\n"
#define MARS_DBUF_SEG_HDR   8
#define MARS_DBUF_REC_HDR   40
#define MARS_DBUF_REC_MAGIC 0x5244424du
#define MARS_DBUF_REC_MAX   (256u << 20) /* a longer len is corrupt */

struct mars_dbuf_rec {
    uint64_t seq;
    int64_t wall_ns;
    uint32_t len, events;
    uint16_t source;
};

/* Fills the 40-byte header for r and its payload. */
void mars_dbuf_rec_header(uint8_t *out, const struct mars_dbuf_rec *r, const void *payload);

enum mars_dbuf_next {
    MARS_DBUF_OK,      /* a good record at *off; the next starts at *next */
    MARS_DBUF_END,     /* *off == end */
    MARS_DBUF_TORN,    /* a partial record from *off to end (a write cut short) */
    MARS_DBUF_CORRUPT, /* bad bytes from *off to *next (a good record or the end follows) */
    MARS_DBUF_IOERR,   /* pread failed (errno in *err) */
};

/* A reader's scratch: payload buffer, reused. */
struct mars_dbuf_rbuf {
    uint8_t *p;
    size_t cap;
};

/*
 * Looks at the record at off in fd, whose valid bytes end at end. With payload true the
 * payload is read into rb->p and its CRC checked (a mismatch is CORRUPT up to the end of
 * that record); without, only headers are read (a startup scan). On CORRUPT, *next is the
 * next offset with a plausible record (magic + header CRC), or end. Returns the result.
 */
enum mars_dbuf_next mars_dbuf_seg_next(int fd, uint64_t off, uint64_t end, bool payload,
                                       struct mars_dbuf_rbuf *rb, struct mars_dbuf_rec *r,
                                       uint64_t *next, int *err);

/* Checks the segment magic at the start of fd. Returns 0, -EPROTO (wrong) or -errno. */
int mars_dbuf_seg_check_magic(int fd);

#endif
