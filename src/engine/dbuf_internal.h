/*
 * dbuf_internal.h - what dbuf.c (lanes, writing, the tick, life cycle) and dbuf_read.c
 * (reading back, the in-flight ring, the hand-over) share of one sink's disk buffer on one
 * worker. dbuf.c's header comment has the design.
 *
 * Thread: the sink's worker.
 */
#ifndef MARS_DBUF_INTERNAL_H
#define MARS_DBUF_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/dbuf_seg.h"
#include "engine/engine_internal.h"
#include "wire/wire.h"

#define TICK_NS 1000000000LL

struct lane {
    char dir[PATH_MAX];
    uint64_t delivered; /* every seq <= this was delivered */
    uint64_t saved;     /* the value in the delivered file */
    int mark_fd;        /* the delivered file, open for writing in place; -1 not yet */
    bool own;
};

struct seg {
    uint64_t uid; /* order of reading */
    uint32_t lane;
    uint64_t size;
    int64_t first_wall; /* first record not yet delivered; 0 unknown */
    char path[PATH_MAX];
};

/* A payload buffer: a record's bytes that a replayed batch's events point into. */
struct dbuf_pbuf {
    uint8_t *p;
    size_t cap;
};

struct inflight {
    uint64_t seg_uid, seq;
    int64_t wall;
    uint32_t lane, events;
    bool done;
    struct dbuf_pbuf buf; /* its batch's bytes, kept for reuse when acked (NULL: handed over) */
};

#define DBUF_SPARES    4          /* payload buffers kept for the next records */
#define DBUF_SPARE_MAX (4u << 20) /* a larger one is freed */

struct batchv {
    struct mars_batch **v;
    size_t n, cap;
};

struct mars_dbuf {
    struct mars_sink *s;
    struct lane *lanes;
    uint32_t nlanes;  /* lanes[0] is this worker's own */
    struct seg *segs; /* FIFO in reading order; the last is the one written */
    size_t nsegs, segs_cap;
    uint64_t next_uid, next_seq;
    uint64_t last_name; /* of the newest segment: names are unique and increasing */
    int last_err;       /* of the failing write, logged once per errno */
    int wfd;            /* the segment written (segs[nsegs - 1]) */
    uint64_t woff;      /* its end */
    int64_t last_wall;  /* write time of the last record written */
    uint64_t seg_max, max_bytes;
    int rfd;
    size_t rseg; /* index into segs of the segment read */
    uint64_t roff;
    struct inflight *ring;
    size_t ring_cap, ring_head, ring_n;
    uint64_t ring_base; /* absolute index of ring[ring_head] */
    struct batchv unsynced, unwritten;
    uint64_t disk_bytes, disk_events;
    struct mars_wire_enc enc;
    struct mars_dbuf_rbuf rb;
    struct dbuf_pbuf spare[DBUF_SPARES];
    unsigned nspare;
    struct mars_ev_op tick;
    bool tick_armed, closing, space_error, over_size, pumping;
};

static inline const struct mars_buffer_conf *dbuf_conf(const struct mars_dbuf *d)
{
    return &d->s->node->common.buffer;
}

static inline const char *dbuf_sid(const struct mars_dbuf *d)
{
    return d->s->node->id;
}

/* dbuf.c */
/* Nothing on disk that was not read back yet. */
bool mars_dbuf_caught_up(const struct mars_dbuf *d);
void mars_dbuf_update_gauges(struct mars_dbuf *d);
/* Blocks or unblocks the sources by the write errors and the size limit. */
void mars_dbuf_set_blocked(struct mars_dbuf *d);
/* Writes the lane's delivered mark when it moved. */
void mars_dbuf_save_mark(struct mars_dbuf *d, struct lane *l);
/* The delivered file: the mark in 20 digits, a space, the CRC-32C of those digits in hex
 * and a newline, written in place each time. A mark whose CRC does not match (a write torn
 * by a power loss) reads as 0: everything on disk is sent again, duplicates and never a
 * loss. An older file, the bare number, still reads. */
#define MARS_DBUF_MARK_LEN 30
/* buf: room for MARS_DBUF_MARK_LEN + 1 bytes. */
void mars_dbuf_format_mark(char *buf, uint64_t v);
/* buf: NUL-terminated. */
uint64_t mars_dbuf_parse_mark(const char *buf);
/* Closes the lane's delivered file (before it is deleted, or at close). */
void mars_dbuf_close_mark(struct lane *l);
/* Removes an adopted lane's directory (its mark closed and deleted first): 0, or -errno
 * from rmdir (something else is still in it). */
int mars_dbuf_remove_lane_dir(struct lane *l);
/* b's record is on disk: b is released now or after the sync its setting asks for. */
void mars_dbuf_written(struct mars_dbuf *d, struct mars_batch *b);

/* dbuf_read.c */
void mars_dbuf_close_reader(struct mars_dbuf *d);
/* Frees the payload buffers: the spares and those of records still in flight. */
void mars_dbuf_free_buffers(struct mars_dbuf *d);
bool mars_dbuf_may_hand_over(const struct mars_dbuf *d, const struct mars_batch *b);
bool mars_dbuf_hand_over(struct mars_dbuf *d, struct mars_batch *b);

#endif
