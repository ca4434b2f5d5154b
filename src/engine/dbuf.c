/*
 * dbuf.c - the disk buffer of one sink on one worker (buffer.type: disk;
 * docs/architecture.md, "Disk buffers").
 *
 * Lanes. A lane is one directory data_dir/buffers/<sink id>/<n>/ of segment files
 * (dbuf_seg.h) with a `delivered` file: every record with a sequence number up to it was
 * delivered. Worker k writes only to lane k, so nothing on the hot path is shared. At start
 * it also adopts lanes j >= workers with j mod workers == k (left by a run with more
 * workers) and reads them first, read-only; an adopted lane's directory goes once it is
 * delivered.
 *
 * Write path (mars_dbuf_enqueue): the batch is encoded (wire_batch.c, optional lz4), one
 * record is appended to the current segment with one pwritev, and the batch is released
 * (its sources acknowledge it) at once (sync: none), after the next once-a-second
 * fdatasync (interval), or after an fdatasync of its own (always). A failed write (ENOSPC,
 * EDQUOT, EIO) is cut off again with ftruncate; the batch and those after it wait in
 * memory while the sources are blocked, and the timer retries every second.
 *
 * Read path (mars_dbuf_pump): records are read back in order into batches while the
 * sink's memory buffer is under buffer.max_events / max_bytes, so memory stays bounded
 * whatever is on disk; the request machinery of sinkq.c sends them as any batch. Each
 * batch's ack marks its record done; done records at the front of the in-flight ring move
 * the lane's delivered mark (written every second and at shutdown with an atomic replace)
 * and a segment whose records are all done is deleted.
 *
 * Damage: a record whose header or payload CRC fails, or which does not decode, is
 * skipped, counted (mars_buffer_disk_corrupt_records_total) and logged with its segment
 * and offset; the reader resumes at the next record with a good header. A torn tail (the
 * end of a segment cut by a crash) is truncated at start.
 *
 * Thread: the sink's worker. File I/O is plain synchronous system calls on local files:
 * appends and page-cache reads cost microseconds; fdatasync runs once a second (interval)
 * or per batch (always, whose cost the user chose).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/grow.h"
#include "core/log.h"
#include "engine/dbuf.h"
#include "engine/dbuf_seg.h"
#include "engine/engine_internal.h"
#include "wire/wire.h"

#define TICK_NS 1000000000LL

struct lane {
    char dir[PATH_MAX];
    uint64_t delivered; /* every seq <= this was delivered */
    uint64_t saved;     /* the value in the delivered file */
    bool own;
};

struct seg {
    uint64_t uid; /* order of reading */
    uint32_t lane;
    uint64_t size;
    int64_t first_wall; /* first record not yet delivered; 0 unknown */
    char path[PATH_MAX];
};

struct inflight {
    uint64_t seg_uid, seq;
    int64_t wall;
    uint32_t lane, events;
    bool done;
};

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
    uint8_t *zbuf;
    size_t zcap;
    struct mars_ev_op tick;
    bool tick_armed, closing, space_error, over_size, pumping;
};

/* ---- helpers ---- */

static const struct mars_buffer_conf *bconf(const struct mars_dbuf *d)
{
    return &d->s->node->common.buffer;
}

static const char *sid(const struct mars_dbuf *d)
{
    return d->s->node->id;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bv_push(struct batchv *v, struct mars_batch *b)
{
    if (mars_grow(&v->v, &v->cap, v->n + 1, sizeof(*v->v)))
        return -ENOMEM;
    v->v[v->n++] = b;
    return 0;
}

static void bv_release(struct batchv *v, bool abandon)
{
    for (size_t i = 0; i < v->n; i++) {
        if (abandon)
            mars_batch_abandon(v->v[i]);
        else
            mars_batch_release(v->v[i]);
    }
    v->n = 0;
}

/* Nothing on disk that was not read back yet. */
static bool caught_up(const struct mars_dbuf *d)
{
    if (d->rseg >= d->nsegs)
        return true;
    if (d->rseg + 1 < d->nsegs || !d->lanes[d->segs[d->rseg].lane].own || d->wfd < 0)
        return false;
    return (d->rfd >= 0 ? d->roff : MARS_DBUF_SEG_HDR) >= d->woff;
}

static void update_gauges(struct mars_dbuf *d)
{
    struct mars_stats *st = d->s->stats;
    int64_t oldest = 0;
    if (d->ring_n)
        oldest = d->ring[d->ring_head].wall;
    else if (!caught_up(d))
        oldest = d->segs[d->rseg].first_wall;
    else
        d->disk_events = 0; /* nothing left: forget what damaged headers hid */
    mars_stat_set(&st->disk_bytes, d->disk_bytes);
    mars_stat_set(&st->disk_events, d->disk_events);
    mars_stat_set(&st->disk_oldest_wall_ns, (uint64_t)oldest);
}

static void set_blocked(struct mars_dbuf *d)
{
    d->over_size = d->disk_bytes >= d->max_bytes;
    bool full = d->space_error || d->unwritten.n > 0 ||
                (d->over_size && bconf(d)->when_full == MARS_WHEN_FULL_BLOCK);
    mars_sinkq_block(d->s, full);
}

/* ---- lanes and the delivered mark ---- */

static int read_mark(const char *dir, uint64_t *out)
{
    char path[PATH_MAX + 16], buf[32];
    snprintf(path, sizeof(path), "%s/delivered", dir);
    *out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    *out = strtoull(buf, NULL, 10);
    return 0;
}

static void save_mark(struct mars_dbuf *d, struct lane *l)
{
    char path[PATH_MAX + 16], buf[32];
    if (l->delivered == l->saved)
        return;
    snprintf(path, sizeof(path), "%s/delivered", l->dir);
    int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)l->delivered);
    /* a few bytes, fsync'd, once a second at most */
    int rc = mars_file_replace(path, buf, (size_t)n, 0600, (uid_t)-1, (gid_t)-1);
    if (rc) {
        mars_stat_add(&d->s->stats->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, sid(d), "cannot write %s: %s", path, strerror(-rc));
        return;
    }
    l->saved = l->delivered;
}

static int name_seq(const char *name, uint64_t *seq)
{
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".seg") != 0)
        return -1;
    char *end;
    *seq = strtoull(name, &end, 10);
    return end == name + 20 ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int add_seg(struct mars_dbuf *d, uint32_t lane, const char *path, uint64_t size,
                   int64_t first_wall)
{
    size_t len = strlen(path);
    if (len >= sizeof(d->segs->path))
        return -ENAMETOOLONG;
    if (mars_grow(&d->segs, &d->segs_cap, d->nsegs + 1, sizeof(*d->segs)))
        return -ENOMEM;
    struct seg *g = &d->segs[d->nsegs++];
    g->uid = d->next_uid++;
    g->lane = lane;
    g->size = size;
    g->first_wall = first_wall;
    memcpy(g->path, path, len + 1);
    d->disk_bytes += size;
    return 0;
}

/* Walks the headers of one segment at start: events not delivered yet, the last seq, the
 * first undelivered record's time; a torn tail is truncated. */
static int scan_seg(struct mars_dbuf *d, uint32_t lane, const char *path, uint64_t *max_seq)
{
    struct lane *l = &d->lanes[lane];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        mars_error(sid(d), "cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size <= MARS_DBUF_SEG_HDR) {
        /* no record (maybe cut before its magic was written): it holds nothing */
        close(fd);
        unlink(path);
        return 0;
    }
    if (mars_dbuf_seg_check_magic(fd)) {
        close(fd);
        mars_stat_add(&d->s->stats->disk_corrupt, 1);
        mars_error(sid(d), "%s is not a disk-buffer segment (bad magic): left alone", path);
        return 0;
    }
    uint64_t end = (uint64_t)st.st_size, off = MARS_DBUF_SEG_HDR, next = 0;
    int64_t first_wall = 0;
    struct mars_dbuf_rec r;
    int err;
    for (;;) {
        enum mars_dbuf_next res = mars_dbuf_seg_next(fd, off, end, false, NULL, &r, &next, &err);
        if (res == MARS_DBUF_END || res == MARS_DBUF_IOERR)
            break;
        if (res == MARS_DBUF_TORN) {
            mars_warn(sid(d),
                      "%s: torn record at offset %llu (a write cut by a crash): %llu bytes "
                      "truncated",
                      path, (unsigned long long)off, (unsigned long long)(end - off));
            if (ftruncate(fd, (off_t)off) == 0)
                end = off;
            break;
        }
        if (res == MARS_DBUF_OK) {
            if (r.seq > *max_seq)
                *max_seq = r.seq;
            if (r.seq > l->delivered) {
                d->disk_events += r.events;
                if (!first_wall)
                    first_wall = r.wall_ns ? r.wall_ns : 1;
            }
        }
        off = next; /* corrupt spans are counted when the reader meets them */
    }
    close(fd);
    return add_seg(d, lane, path, end, first_wall);
}

static int open_lane(struct mars_dbuf *d, uint32_t lane, uint64_t *max_seq)
{
    struct lane *l = &d->lanes[lane];
    int rc = read_mark(l->dir, &l->delivered);
    if (rc)
        return rc;
    l->saved = l->delivered;
    if (*max_seq < l->delivered)
        *max_seq = l->delivered;
    DIR *dp = opendir(l->dir);
    if (!dp)
        return -errno;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        uint64_t q;
        if (name_seq(de->d_name, &q))
            continue;
        if (mars_grow(&seqs, &cap, n + 1, sizeof(*seqs))) {
            closedir(dp);
            free(seqs);
            return -ENOMEM;
        }
        seqs[n++] = q;
    }
    closedir(dp);
    if (n)
        qsort(seqs, n, sizeof(*seqs), cmp_u64);
    /* a new segment is named after a seq above every name here, so none is reused */
    if (n && *max_seq < seqs[n - 1])
        *max_seq = seqs[n - 1];
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/%020llu.seg", l->dir, (unsigned long long)seqs[i]);
        rc = scan_seg(d, lane, path, max_seq);
    }
    free(seqs);
    return rc;
}

static int add_lane(struct mars_dbuf *d, const char *dir, bool own)
{
    struct lane *l = realloc(d->lanes, (d->nlanes + 1) * sizeof(*l));
    if (!l)
        return -ENOMEM;
    d->lanes = l;
    l = &d->lanes[d->nlanes++];
    memset(l, 0, sizeof(*l));
    snprintf(l->dir, sizeof(l->dir), "%s", dir);
    l->own = own;
    return 0;
}

/* ---- writing ---- */

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* Starts a new segment named after the next seq in the own lane. */
static int new_segment(struct mars_dbuf *d)
{
    char path[PATH_MAX + 32];
    /* named after its first seq, unless a segment that got no record took that name */
    uint64_t name = d->next_seq > d->last_name ? d->next_seq : d->last_name + 1;
    snprintf(path, sizeof(path), "%s/%020llu.seg", d->lanes[0].dir, (unsigned long long)name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t n = pwrite(fd, MARS_DBUF_SEG_MAGIC, MARS_DBUF_SEG_HDR, 0);
    if (n != MARS_DBUF_SEG_HDR) {
        int rc = n < 0 ? -errno : -ENOSPC;
        close(fd);
        unlink(path);
        return rc;
    }
    if (bconf(d)->sync != MARS_SYNC_NONE)
        sync_dir(d->lanes[0].dir); /* the new name survives a power loss */
    int rc = add_seg(d, 0, path, MARS_DBUF_SEG_HDR, 0);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    d->last_name = name;
    if (d->wfd >= 0) {
        if (bconf(d)->sync != MARS_SYNC_NONE)
            fdatasync(d->wfd);
        close(d->wfd);
    }
    d->wfd = fd;
    d->woff = MARS_DBUF_SEG_HDR;
    return 0;
}

static bool batch_has_metrics(const struct mars_batch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->ev[i].kind != MARS_EVENT_LOG)
            return true;
    return false;
}

/* Appends b as one record. Returns 0 or -errno (nothing of it stays on disk). */
static int write_record(struct mars_dbuf *d, struct mars_batch *b)
{
    int rc;
    if (d->wfd < 0 || d->woff >= d->seg_max) {
        if ((rc = new_segment(d)))
            return rc;
    }
    mars_wire_enc_reset(&d->enc);
    for (uint32_t i = 0; i < b->n; i++)
        if ((rc = mars_wire_enc_add(&d->enc, &b->ev[i], SIZE_MAX)))
            return rc;
    if ((rc =
             mars_wire_enc_finish(&d->enc, d->next_seq, bconf(d)->compression == MARS_BUFCOMP_LZ4)))
        return rc;
    uint8_t hdr[MARS_DBUF_REC_HDR];
    struct mars_dbuf_rec r = {.seq = d->next_seq,
                              .wall_ns = wall_ns(),
                              .len = (uint32_t)d->enc.framelen,
                              .events = b->n,
                              .source = b->source};
    mars_dbuf_rec_header(hdr, &r, d->enc.frame);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {d->enc.frame, d->enc.framelen}};
    size_t want = sizeof(hdr) + d->enc.framelen;
    ssize_t n = pwritev(d->wfd, iov, 2, (off_t)d->woff);
    if (n != (ssize_t)want) {
        rc = n < 0 ? -errno : -ENOSPC; /* a short write to a regular file: out of space */
        if (ftruncate(d->wfd, (off_t)d->woff) != 0)
            mars_warn(sid(d), "cannot cut a failed write off %s: %s", d->segs[d->nsegs - 1].path,
                      strerror(errno));
        return rc;
    }
    if (bconf(d)->sync == MARS_SYNC_ALWAYS && fdatasync(d->wfd) != 0) {
        rc = -errno;
        if (ftruncate(d->wfd, (off_t)d->woff) != 0)
            mars_warn(sid(d), "cannot cut a failed write off: %s", strerror(errno));
        return rc;
    }
    struct seg *g = &d->segs[d->nsegs - 1];
    if (!g->first_wall)
        g->first_wall = r.wall_ns;
    d->last_wall = r.wall_ns;
    g->size += want;
    d->woff += want;
    d->disk_bytes += want;
    d->disk_events += b->n;
    d->next_seq++;
    mars_stat_add(&d->s->stats->disk_written, 1);
    return 0;
}

static void flush_unsynced(struct mars_dbuf *d);

static void written(struct mars_dbuf *d, struct mars_batch *b)
{
    if (bconf(d)->sync == MARS_SYNC_INTERVAL && bv_push(&d->unsynced, b) == 0) {
        /* The batches waiting for the sync hold their chunks: once they hold half of the
         * worker's chunk memory (or a source waits for a chunk) sync now rather than let the
         * sources starve until the tick. */
        const struct mars_chunk_pool *p = &d->s->w->pool;
        if (p->live_bytes * 2 >= p->max_bytes || p->nwaiters)
            flush_unsynced(d);
        return;
    }
    mars_batch_release(b); /* its sources may acknowledge it now */
}

static void arm_tick(struct mars_dbuf *d);

static void write_failed(struct mars_dbuf *d, int rc)
{
    mars_stat_add(&d->s->stats->errors[MARS_ERR_WRITE], 1);
    /* Seal the segment: the next write starts a new one. Otherwise a disk filled by this
     * very segment could never free: it would stay the one written, never deleted, while
     * the sink delivers its records. */
    if (d->wfd >= 0) {
        close(d->wfd);
        d->wfd = -1;
    }
    if (!d->space_error || rc != d->last_err)
        mars_error(sid(d),
                   "cannot write to the disk buffer %s: %s; the sources are blocked and "
                   "the write is retried every second",
                   d->lanes[0].dir, strerror(-rc));
    d->space_error = true;
    d->last_err = rc;
}

/* Writes the batches that wait after a failed write, in order. */
static void retry_unwritten(struct mars_dbuf *d)
{
    size_t i = 0;
    for (; i < d->unwritten.n; i++) {
        int rc = write_record(d, d->unwritten.v[i]);
        if (rc) {
            write_failed(d, rc);
            break;
        }
        written(d, d->unwritten.v[i]);
    }
    memmove(d->unwritten.v, d->unwritten.v + i, (d->unwritten.n - i) * sizeof(*d->unwritten.v));
    d->unwritten.n -= i;
    if (d->unwritten.n == 0 && d->space_error) {
        d->space_error = false;
        mars_info(sid(d), "the disk buffer %s is writable again", d->lanes[0].dir);
    }
}

static int ring_push(struct mars_dbuf *d, struct inflight e, uint64_t *abs);
static void close_reader(struct mars_dbuf *d);
static void trim(struct mars_dbuf *d);
static bool may_read(const struct mars_dbuf *d);
static void on_replay_ack(struct mars_batch *b, bool delivered);

/* Before a write: may the record about to be written go to the sink from memory? Only
 * when the reader has caught up (nothing older waits on disk, so order holds), the sink's
 * memory buffer has room (where reading it back would put it anyway), and b is a root
 * batch held alone, so its source's ack can be split off (mars_batch_split_ack). */
static bool may_hand_over(const struct mars_dbuf *d, const struct mars_batch *b)
{
    return d->unwritten.n == 0 && caught_up(d) && may_read(d) && mars_sinkq_room(d->s) &&
           b->refs == 1 && !b->parent && b->nholds == 0;
}

/* The record of b was just written and the reader had caught up: instead of reading it
 * back and decoding it, the reader steps over it and b itself goes to the sink, with the
 * replay ack; a stand-in carries the source's ack through the sync setting as b would
 * have. Saves the read and the decode of every record while the sink keeps up. False
 * (nothing done) when b must take the usual way. */
static bool hand_over(struct mars_dbuf *d, struct mars_batch *b)
{
    struct seg *g = &d->segs[d->nsegs - 1];
    if (d->rseg != d->nsegs - 1) { /* the write began a segment: the reader passes the old */
        close_reader(d);
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
    written(d, standin);
    mars_sinkq_push(d->s, b);
    trim(d);
    return true;
}

void mars_dbuf_enqueue(struct mars_sink *s, struct mars_batch *b)
{
    struct mars_dbuf *d = s->dbuf;
    if (batch_has_metrics(b)) { /* records hold log events only */
        mars_sinkq_push(s, b);
        return;
    }
    if (d->over_size && bconf(d)->when_full == MARS_WHEN_FULL_DROP_NEWEST) {
        mars_stat_add(&s->stats->discarded_intentional, b->n);
        MARS_LOG_RL(MARS_LOG_WARN, sid(d),
                    "disk buffer full (when_full: drop_newest): dropped %u "
                    "events",
                    b->n);
        mars_batch_release(b);
        return;
    }
    if (d->unwritten.n == 0) {
        bool fast = may_hand_over(d, b);
        int rc = write_record(d, b);
        if (rc == 0) {
            if (fast && hand_over(d, b)) {
                set_blocked(d);
                update_gauges(d);
                mars_sinkq_dispatch(s);
                return;
            }
            written(d, b);
            set_blocked(d);
            update_gauges(d);
            mars_dbuf_pump(s);
            return;
        }
        write_failed(d, rc);
    }
    if (bv_push(&d->unwritten, b)) {
        mars_stat_add(&s->stats->errors[MARS_ERR_MEMORY], 1);
        mars_stat_add(&s->stats->discarded_unintentional, b->n);
        mars_batch_abandon(b);
    }
    set_blocked(d);
}

/* ---- reading ---- */

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

static void close_reader(struct mars_dbuf *d)
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
            save_mark(d, l); /* harmless when the directory goes below */
        if (unlink(g->path) && errno != ENOENT)
            MARS_LOG_RL(MARS_LOG_ERROR, sid(d), "cannot delete %s: %s", g->path, strerror(errno));
        d->disk_bytes -= g->size < d->disk_bytes ? g->size : d->disk_bytes;
        uint32_t lane = g->lane;
        memmove(d->segs, d->segs + 1, (d->nsegs - 1) * sizeof(*d->segs));
        d->nsegs--;
        d->rseg--;
        if (!l->own && (d->nsegs == 0 || d->segs[0].lane != lane)) {
            char path[PATH_MAX + 16];
            snprintf(path, sizeof(path), "%s/delivered", l->dir);
            unlink(path);
            if (rmdir(l->dir) == 0)
                mars_info(sid(d), "adopted disk buffer %s delivered and removed", l->dir);
        }
    }
    set_blocked(d);
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
    if (!delivered && (d->closing || d->s->aborting || !may_read(d)))
        return; /* shutdown: the record stays on disk and comes again */
    if (b->ack.a < d->ring_base || b->ack.a >= d->ring_base + d->ring_n)
        return;
    ring_at(d, b->ack.a)->done = true;
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
        update_gauges(d);
    }
}

static void report_corrupt(struct mars_dbuf *d, const struct seg *g, uint64_t off, uint64_t next,
                           const char *why)
{
    mars_stat_add(&d->s->stats->disk_corrupt, 1);
    MARS_LOG_RL(MARS_LOG_ERROR, sid(d),
                "disk buffer %s: corrupt record at offset %llu (%s): %llu bytes skipped", g->path,
                (unsigned long long)off, why, (unsigned long long)(next - off));
}

/* Decodes the record in d->rb into a new batch. NULL with *why on bad bytes. */
static struct mars_batch *decode(struct mars_dbuf *d, const struct mars_dbuf_rec *r,
                                 const char **why)
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
    if (h.flags & MARS_WIRE_F_LZ4) {
        if (mars_grow(&d->zbuf, &d->zcap, h.raw_length ? h.raw_length : 1, 1)) {
            *why = "out of memory";
            return NULL;
        }
        if (mars_wire_unlz4(p, h.length, d->zbuf, h.raw_length)) {
            *why = "bad lz4 block";
            return NULL;
        }
        p = d->zbuf;
    }
    struct mars_batch *b = mars_batch_create(r->events ? r->events : 1);
    if (!b) {
        *why = "out of memory";
        return NULL;
    }
    b->source = r->source;
    b->created_ns = mars_ev_now(d->s->w->loop);
    if (mars_wire_decode_batch(p, h.raw_length, b, why)) {
        mars_batch_release(b);
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
                MARS_LOG_RL(MARS_LOG_ERROR, sid(d), "cannot open %s: %s (skipped)", g->path,
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
            close_reader(d);
            d->rseg++;
            trim(d);
            continue;
        }
        if (res == MARS_DBUF_IOERR) {
            MARS_LOG_RL(MARS_LOG_ERROR, sid(d), "cannot read %s: %s (retried in a second)", g->path,
                        strerror(err));
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
        struct mars_batch *b = decode(d, &r, &why);
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
                                        .events = r.events},
                      &abs)) {
            mars_batch_release(b);
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
        update_gauges(d);
        mars_sinkq_dispatch(s);
    }
}

/* ---- the tick: interval sync, retries, marks ---- */

static void flush_unsynced(struct mars_dbuf *d)
{
    if (d->unsynced.n == 0)
        return;
    if (d->wfd >= 0 && fdatasync(d->wfd) != 0) {
        mars_stat_add(&d->s->stats->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, sid(d), "fdatasync of %s: %s (retried in a second)",
                    d->segs[d->nsegs - 1].path, strerror(errno));
        return;
    }
    bv_release(&d->unsynced, false);
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct mars_dbuf *d = op->data;
    d->tick_armed = false;
    if (res == -ECANCELED || d->closing)
        return;
    flush_unsynced(d);
    if (d->unwritten.n)
        retry_unwritten(d);
    for (uint32_t i = 0; i < d->nlanes; i++)
        save_mark(d, &d->lanes[i]);
    set_blocked(d);
    update_gauges(d);
    mars_dbuf_pump(d->s);
    arm_tick(d);
}

static void arm_tick(struct mars_dbuf *d)
{
    if (d->tick_armed || d->closing)
        return;
    mars_ev_prep_timer(&d->tick, TICK_NS, on_tick, d);
    d->tick_armed = mars_ev_submit(d->s->w->loop, &d->tick) == 0;
}

/* ---- life cycle ---- */

static int sink_root(const struct mars_sink *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/buffers/%s", s->w->e->cfg->top.data_dir, s->node->id);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Lanes j >= workers with j mod workers == this worker's index. */
static int adopt_lanes(struct mars_dbuf *d, const char *root)
{
    unsigned n = d->s->w->e->nworkers, k = d->s->w->id;
    DIR *dp = opendir(root);
    if (!dp)
        return -errno;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dp)) && rc == 0) {
        char *end;
        unsigned long j = strtoul(de->d_name, &end, 10);
        if (*end || end == de->d_name || j < n || j % n != k)
            continue;
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof(dir), "%s/%lu", root, j) >= (int)sizeof(dir))
            continue;
        mars_info(sid(d), "worker %u adopts the disk buffer %s (left by a run with more workers)",
                  k, dir);
        rc = add_lane(d, dir, false);
    }
    closedir(dp);
    return rc;
}

int mars_dbuf_open(struct mars_sink *s)
{
    struct mars_dbuf *d = calloc(1, sizeof(*d));
    char root[PATH_MAX - 32], dir[PATH_MAX];
    int rc;
    if (!d)
        return -ENOMEM;
    d->s = s;
    d->wfd = d->rfd = -1;
    d->next_uid = 1;
    mars_wire_enc_init(&d->enc);
    s->dbuf = d;
    unsigned nw = s->w->e->nworkers ? s->w->e->nworkers : 1;
    d->max_bytes = bconf(d)->max_size / nw;
    d->seg_max = d->max_bytes / 8;
    if (d->seg_max > (128u << 20))
        d->seg_max = 128u << 20;
    if (d->seg_max < (256u << 10))
        d->seg_max = 256u << 10;
    if ((rc = sink_root(s, root, sizeof(root))))
        return rc;
    snprintf(dir, sizeof(dir), "%s/%u", root, s->w->id);
    if ((rc = mars_mkdir_p(dir, 0700))) {
        mars_error(sid(d), "cannot create the disk buffer directory %s: %s", dir, strerror(-rc));
        return rc;
    }
    if (access(dir, W_OK) != 0) {
        rc = -errno;
        mars_error(sid(d), "the disk buffer directory %s is not writable: %s", dir, strerror(-rc));
        return rc;
    }
    if ((rc = add_lane(d, dir, true)) || (rc = adopt_lanes(d, root)))
        return rc;
    /* adopted lanes first: their data is older */
    uint64_t max_seq = 0;
    for (uint32_t i = 1; i < d->nlanes && rc == 0; i++) {
        uint64_t ignored = 0;
        rc = open_lane(d, i, &ignored);
    }
    if (rc == 0)
        rc = open_lane(d, 0, &max_seq);
    if (rc) {
        mars_error(sid(d), "cannot open the disk buffer %s: %s", dir, strerror(-rc));
        return rc;
    }
    d->next_seq = max_seq + 1;
    d->last_name = max_seq;
    if (d->nsegs)
        mars_info(sid(d), "disk buffer %s: %llu events in %zu segments (%llu bytes) to deliver",
                  dir, (unsigned long long)d->disk_events, d->nsegs,
                  (unsigned long long)d->disk_bytes);
    /* always a fresh segment to write: old ones are only read */
    if ((rc = new_segment(d))) {
        mars_error(sid(d), "cannot create a segment in %s: %s", dir, strerror(-rc));
        return rc;
    }
    set_blocked(d);
    update_gauges(d);
    arm_tick(d);
    return 0;
}

void mars_dbuf_quiesce(struct mars_sink *s)
{
    struct mars_dbuf *d = s->dbuf;
    if (!d || d->closing)
        return;
    flush_unsynced(d);
    if (d->unwritten.n)
        retry_unwritten(d);
    d->closing = true;
    for (uint32_t i = 0; i < d->nlanes; i++)
        save_mark(d, &d->lanes[i]);
    if (d->tick_armed)
        mars_ev_cancel(s->w->loop, &d->tick);
}

void mars_dbuf_close(struct mars_sink *s)
{
    struct mars_dbuf *d = s->dbuf;
    if (!d)
        return;
    d->closing = true;
    bv_release(&d->unsynced, true); /* not synced: not acknowledged */
    bv_release(&d->unwritten, true);
    if (d->wfd >= 0) {
        if (bconf(d)->sync != MARS_SYNC_NONE)
            fdatasync(d->wfd);
        close(d->wfd);
    }
    close_reader(d);
    mars_wire_enc_fini(&d->enc);
    free(d->rb.p);
    free(d->zbuf);
    free(d->ring);
    free(d->segs);
    free(d->lanes);
    free(d->unsynced.v);
    free(d->unwritten.v);
    free(d);
    s->dbuf = NULL;
}
