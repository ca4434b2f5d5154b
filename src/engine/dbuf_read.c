/*
 * dbuf_read.c - the read side of a sink's disk buffer (dbuf.c has the design): records
 * read back in order into the sink's memory buffer while it has room, the ring of records
 * in flight whose acks move the delivered mark, deleting delivered segments, and the
 * hand-over of a batch just written when the reader had caught up.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/dbuf.h"
#include "engine/dbuf_internal.h"

static struct inflight *ring_at(struct mars_dbuf *d, uint64_t abs)
{
    return &d->ring[(d->ring_head + (abs - d->ring_base)) % d->ring_cap];
}

static int ring_push(struct mars_dbuf *d, struct inflight e, uint64_t *abs)
{
    if (d->ring_n == d->ring_cap) {
        size_t cap = d->ring_cap ? d->ring_cap * 2 : 64;
        struct inflight *r = malloc(cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        for (size_t i = 0; i < d->ring_n; i++)
            r[i] = d->ring[(d->ring_head + i) % d->ring_cap];
        free(d->ring);
        d->ring = r;
        d->ring_cap = cap;
        d->ring_head = 0;
    }
    *abs = d->ring_base + d->ring_n;
    d->ring[(d->ring_head + d->ring_n) % d->ring_cap] = e;
    d->ring_n++;
    return 0;
}

/* ---- payload buffers ----
 * A replayed batch's events point into the record's bytes, read (or decompressed) into a
 * payload buffer that the record's ring entry owns. Its ack gives the buffer back, and
 * the next records reuse it: warm memory, no copy, no allocation per record. */

/* A buffer of at least n bytes: a spare when one is big enough. */
static int pbuf_take(struct mars_dbuf *d, size_t n, struct dbuf_pbuf *out)
{
    for (unsigned i = 0; i < d->nspare; i++)
        if (d->spare[i].cap >= n) {
            *out = d->spare[i];
            d->spare[i] = d->spare[--d->nspare];
            return 0;
        }
    out->cap = n ? n : 1;
    out->p = malloc(out->cap);
    return out->p ? 0 : -ENOMEM;
}

/* Keeps b for reuse, in place of the smallest spare when they are all taken. */
static void pbuf_put(struct mars_dbuf *d, struct dbuf_pbuf b)
{
    if (!b.p)
        return;
    if (b.cap > DBUF_SPARE_MAX || d->closing) {
        free(b.p);
        return;
    }
    if (d->nspare < DBUF_SPARES) {
        d->spare[d->nspare++] = b;
        return;
    }
    unsigned min = 0;
    for (unsigned i = 1; i < d->nspare; i++)
        if (d->spare[i].cap < d->spare[min].cap)
            min = i;
    if (d->spare[min].cap < b.cap) {
        struct dbuf_pbuf t = d->spare[min];
        d->spare[min] = b;
        b = t;
    }
    free(b.p);
}

static void free_spares(struct mars_dbuf *d)
{
    for (unsigned i = 0; i < d->nspare; i++)
        free(d->spare[i].p);
    d->nspare = 0;
}

void mars_dbuf_free_buffers(struct mars_dbuf *d)
{
    free_spares(d);
    for (size_t i = 0; i < d->ring_n; i++) {
        struct inflight *e = &d->ring[(d->ring_head + i) % d->ring_cap];
        free(e->buf.p);
        e->buf = (struct dbuf_pbuf){0};
    }
}

void mars_dbuf_close_reader(struct mars_dbuf *d)
{
    if (d->rfd >= 0)
        close(d->rfd);
    d->rfd = -1;
}

/* Deletes delivered segments at the front: those the reader has passed whose records are
 * no longer in flight. */
static void trim(struct mars_dbuf *d)
{
    while (d->rseg > 0) { /* the reader never passes the segment written */
        struct seg *g = &d->segs[0];
        if (d->ring_n && d->ring[d->ring_head].seg_uid == g->uid)
            break;
        struct lane *l = &d->lanes[g->lane];
        if (!l->own)
            mars_dbuf_save_mark(d, l); /* harmless when the directory goes below */
        if (unlink(g->path) && errno != ENOENT)
            MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d), "cannot delete %s: %s", g->path,
                        strerror(errno));
        d->disk_bytes -= g->size < d->disk_bytes ? g->size : d->disk_bytes;
        uint32_t lane = g->lane;
        memmove(d->segs, d->segs + 1, (d->nsegs - 1) * sizeof(*d->segs));
        d->nsegs--;
        d->rseg--;
        if (!l->own && (d->nsegs == 0 || d->segs[0].lane != lane) &&
            mars_dbuf_remove_lane_dir(l) == 0)
            mars_info(dbuf_sid(d), "adopted disk buffer %s delivered and removed", l->dir);
    }
    mars_dbuf_set_blocked(d);
}

static bool may_read(const struct mars_dbuf *d)
{
    const struct mars_sink *s = d->s;
    if (d->closing || s->aborting)
        return false;
    /* on stop, what is on disk stays there (it is safe); --once drains it */
    return s->w->state != MARS_W_DRAINING || s->w->e->opts.once;
}

static void on_replay_ack(struct mars_batch *b, bool delivered)
{
    struct mars_dbuf *d = b->ack.ctx;
    if (b->ack.a < d->ring_base || b->ack.a >= d->ring_base + d->ring_n)
        return;
    struct inflight *done = ring_at(d, b->ack.a);
    pbuf_put(d, done->buf); /* b's events are gone */
    done->buf = (struct dbuf_pbuf){0};
    if (!delivered && (d->closing || d->s->aborting || !may_read(d)))
        return; /* shutdown: the record stays on disk and comes again */
    done->done = true;
    while (d->ring_n && d->ring[d->ring_head].done) {
        struct inflight *e = &d->ring[d->ring_head];
        struct lane *l = &d->lanes[e->lane];
        if (e->seq > l->delivered)
            l->delivered = e->seq;
        d->disk_events -= e->events < d->disk_events ? e->events : d->disk_events;
        d->ring_head = (d->ring_head + 1) % d->ring_cap;
        d->ring_n--;
        d->ring_base++;
    }
    if (!d->closing) {
        trim(d);
        mars_dbuf_update_gauges(d);
        if (d->ring_n == 0 && mars_dbuf_caught_up(d))
            free_spares(d); /* the backlog is delivered: no memory kept for the next one */
        /* --once waits for the backlog (mars_dbuf_idle): the last ack may end the run */
        if (d->ring_n == 0 && d->s->w->state == MARS_W_DRAINING)
            mars_worker_check_done(d->s->w);
    }
}

static void report_corrupt(struct mars_dbuf *d, const struct seg *g, uint64_t off, uint64_t next,
                           const char *why)
{
    mars_stat_add(&d->s->stats->disk_corrupt, 1);
    MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d),
                "disk buffer %s: corrupt record at offset %llu (%s): %llu bytes skipped", g->path,
                (unsigned long long)off, why, (unsigned long long)(next - off));
}

/* Decodes the record in d->rb into a new batch whose events point into *buf, which the
 * caller then owns. NULL with *why on bad bytes. */
static struct mars_batch *decode(struct mars_dbuf *d, const struct mars_dbuf_rec *r,
                                 struct dbuf_pbuf *buf, const char **why)
{
    struct mars_wire_hdr h;
    const uint8_t *p = d->rb.p;
    if (r->len < MARS_WIRE_HDR || mars_wire_get_hdr(p, MARS_DBUF_REC_MAX, &h, why) ||
        h.type != MARS_WIRE_BATCH || h.length != r->len - MARS_WIRE_HDR) {
        if (!*why)
            *why = "bad batch frame";
        return NULL;
    }
    p += MARS_WIRE_HDR;
    struct mars_batch *b = mars_batch_create(r->events ? r->events : 1);
    if (!b) {
        *why = "out of memory";
        return NULL;
    }
    b->source = r->source;
    b->created_ns = mars_ev_now(d->s->w->loop);
    int rc;
    *buf = (struct dbuf_pbuf){0};
    if (h.flags & MARS_WIRE_F_LZ4) {
        rc = pbuf_take(d, h.raw_length, buf);
        if (!rc && mars_wire_unlz4(p, h.length, buf->p, h.raw_length))
            rc = -EPROTO, *why = "bad lz4 block";
        p = buf->p;
    } else { /* the read buffer itself: a spare becomes the next one */
        *buf = (struct dbuf_pbuf){d->rb.p, d->rb.cap};
        p = buf->p + MARS_WIRE_HDR;
        d->rb.p = NULL;
        d->rb.cap = 0;
        if (d->nspare) {
            d->nspare--;
            d->rb.p = d->spare[d->nspare].p;
            d->rb.cap = d->spare[d->nspare].cap;
        }
        rc = 0;
    }
    if (!rc)
        rc = mars_wire_decode_batch_owned(p, h.raw_length, b, why);
    if (rc) {
        if (rc == -ENOMEM)
            *why = "out of memory";
        mars_batch_release(b);
        pbuf_put(d, *buf);
        *buf = (struct dbuf_pbuf){0};
        return NULL;
    }
    return b;
}

void mars_dbuf_pump(struct mars_sink *s)
{
    struct mars_dbuf *d = s->dbuf;
    if (!d || d->pumping)
        return;
    d->pumping = true;
    bool pushed = false;
    while (may_read(d) && mars_sinkq_room(s) && d->rseg < d->nsegs) {
        struct seg *g = &d->segs[d->rseg];
        bool last = d->rseg == d->nsegs - 1 && d->lanes[g->lane].own && d->wfd >= 0;
        uint64_t end = last ? d->woff : g->size;
        if (d->rfd < 0) {
            d->rfd = open(g->path, O_RDONLY | O_CLOEXEC);
            d->roff = MARS_DBUF_SEG_HDR;
            if (d->rfd < 0) {
                MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d), "cannot open %s: %s (skipped)", g->path,
                            strerror(errno));
                d->rseg++;
                continue;
            }
        }
        struct mars_dbuf_rec r;
        uint64_t next = end, off = d->roff;
        int err;
        enum mars_dbuf_next res =
            mars_dbuf_seg_next(d->rfd, off, end, true, &d->rb, &r, &next, &err);
        if (res == MARS_DBUF_END || (res == MARS_DBUF_TORN && last)) {
            if (last)
                break; /* caught up with the writer */
            mars_dbuf_close_reader(d);
            d->rseg++;
            trim(d);
            continue;
        }
        if (res == MARS_DBUF_IOERR) {
            MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d), "cannot read %s: %s (retried in a second)",
                        g->path, strerror(err));
            break;
        }
        if (res == MARS_DBUF_TORN) { /* torn and not truncated at start: treat as damage */
            report_corrupt(d, g, off, end, "record cut short");
            d->roff = end;
            continue;
        }
        if (res == MARS_DBUF_CORRUPT) {
            report_corrupt(d, g, off, next, "bad header or checksum");
            d->roff = next;
            continue;
        }
        d->roff = next;
        struct lane *l = &d->lanes[g->lane];
        if (r.seq <= l->delivered)
            continue; /* delivered before a restart */
        const char *why = NULL;
        struct dbuf_pbuf buf;
        struct mars_batch *b = decode(d, &r, &buf, &why);
        if (!b) {
            report_corrupt(d, g, off, next, why ? why : "undecodable");
            d->disk_events -= r.events < d->disk_events ? r.events : d->disk_events;
            continue;
        }
        uint64_t abs;
        if (ring_push(d,
                      (struct inflight){.seg_uid = g->uid,
                                        .seq = r.seq,
                                        .wall = r.wall_ns,
                                        .lane = g->lane,
                                        .events = r.events,
                                        .buf = buf},
                      &abs)) {
            mars_batch_release(b);
            pbuf_put(d, buf);
            d->roff = off; /* again later */
            break;
        }
        b->ack = (struct mars_batch_ack){.fn = on_replay_ack, .ctx = d, .a = abs};
        g->first_wall = r.wall_ns ? r.wall_ns : 1;
        mars_stat_add(&s->stats->disk_read, 1);
        mars_sinkq_push(s, b);
        pushed = true;
    }
    d->pumping = false;
    if (pushed) {
        mars_dbuf_update_gauges(d);
        mars_sinkq_dispatch(s);
    }
}

bool mars_dbuf_idle(const struct mars_sink *s)
{
    const struct mars_dbuf *d = s->dbuf;
    if (!d || !may_read(d))
        return true;
    return d->ring_n == 0 && mars_dbuf_caught_up(d); /* the write side: quiesce syncs it */
}

/* ---- the hand-over ---- */

/* Before a write: may the record about to be written go to the sink from memory? Only
 * when the reader has caught up (nothing older waits on disk, so order holds), the sink's
 * memory buffer has room (where reading it back would put it anyway), and b is a root
 * batch held alone, so its source's ack can be split off (mars_batch_split_ack). */
bool mars_dbuf_may_hand_over(const struct mars_dbuf *d, const struct mars_batch *b)
{
    return d->unwritten.n == 0 && mars_dbuf_caught_up(d) && may_read(d) && mars_sinkq_room(d->s) &&
           b->refs == 1 && !b->parent && b->nholds == 0;
}

/* The record of b was just written and the reader had caught up: instead of reading it
 * back and decoding it, the reader steps over it and b itself goes to the sink, with the
 * replay ack; a stand-in carries the source's ack through the sync setting as b would
 * have. Saves the read and the decode of every record while the sink keeps up. False
 * (nothing done) when b must take the usual way. */
bool mars_dbuf_hand_over(struct mars_dbuf *d, struct mars_batch *b)
{
    struct seg *g = &d->segs[d->nsegs - 1];
    if (d->rseg != d->nsegs - 1) { /* the write began a segment: the reader passes the old */
        mars_dbuf_close_reader(d);
        d->rseg = d->nsegs - 1;
    }
    if (d->rfd < 0) {
        d->rfd = open(g->path, O_RDONLY | O_CLOEXEC);
        d->roff = MARS_DBUF_SEG_HDR;
        if (d->rfd < 0)
            return false; /* the reader reports it when it gets there */
    }
    struct mars_batch *standin = mars_batch_split_ack(b);
    if (!standin)
        return false;
    uint64_t abs;
    if (ring_push(d,
                  (struct inflight){.seg_uid = g->uid,
                                    .seq = d->next_seq - 1,
                                    .wall = d->last_wall,
                                    .lane = 0,
                                    .events = b->n},
                  &abs)) {
        b->ack = standin->ack; /* undo: b goes the usual way */
        b->abandoned = standin->abandoned;
        standin->ack = (struct mars_batch_ack){0};
        mars_batch_release(standin);
        return false;
    }
    d->roff = d->woff;
    g->first_wall = d->last_wall ? d->last_wall : 1;
    b->ack = (struct mars_batch_ack){.fn = on_replay_ack, .ctx = d, .a = abs};
    b->created_ns = mars_ev_now(d->s->w->loop);
    mars_stat_add(&d->s->stats->disk_read, 1);
    mars_stat_add(&d->s->stats->disk_handed_over, 1);
    mars_dbuf_written(d, standin);
    mars_sinkq_push(d->s, b);
    trim(d);
    return true;
}
