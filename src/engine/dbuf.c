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
 * fdatasync (interval: a stand-in batch carries the ack until then, and the events and
 * their chunks go at once), or after an fdatasync of its own (always). A failed write (ENOSPC,
 * EDQUOT, EIO) is cut off again with ftruncate; the batch and those after it wait in
 * memory while the sources are blocked, and the timer retries every second.
 *
 * Read path (mars_dbuf_pump, in dbuf_read.c): records are read back in order into batches while the
 * sink's memory buffer is under buffer.max_events / max_bytes, so memory stays bounded
 * whatever is on disk; the request machinery of sinkq.c sends them as any batch. Each
 * batch's ack marks its record done; done records at the front of the in-flight ring move
 * the lane's delivered mark (written in place, with a CRC, every second and at shutdown)
 * and a segment whose records are all done is deleted.
 *
 * Hand-over (dbuf_read.c): when the reader has caught up and the memory buffer has room,
 * a batch just written goes to the sink itself and the reader steps over its record; a
 * stand-in (mars_batch_split_ack) takes its sources' ack through the sync setting.
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
#include "core/hash.h"
#include "core/log.h"
#include "engine/dbuf.h"
#include "engine/dbuf_internal.h"

/* ---- helpers ---- */

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
bool mars_dbuf_caught_up(const struct mars_dbuf *d)
{
    if (d->rseg >= d->nsegs)
        return true;
    if (d->rseg + 1 < d->nsegs || !d->lanes[d->segs[d->rseg].lane].own || d->wfd < 0)
        return false;
    return (d->rfd >= 0 ? d->roff : MARS_DBUF_SEG_HDR) >= d->woff;
}

void mars_dbuf_update_gauges(struct mars_dbuf *d)
{
    struct mars_stats *st = d->s->stats;
    int64_t oldest = 0;
    if (d->ring_n)
        oldest = d->ring[d->ring_head].wall;
    else if (!mars_dbuf_caught_up(d))
        oldest = d->segs[d->rseg].first_wall;
    else
        d->disk_events = 0; /* nothing left: forget what damaged headers hid */
    mars_stat_set(&st->disk_bytes, d->disk_bytes);
    mars_stat_set(&st->disk_events, d->disk_events);
    mars_stat_set(&st->disk_oldest_wall_ns, (uint64_t)oldest);
}

void mars_dbuf_set_blocked(struct mars_dbuf *d)
{
    d->over_size = d->disk_bytes >= d->max_bytes;
    bool full = d->space_error || d->unwritten.n > 0 ||
                (d->over_size && dbuf_conf(d)->when_full == MARS_WHEN_FULL_BLOCK);
    mars_sinkq_block(d->s, full);
}

/* ---- lanes and the delivered mark ---- */

static int sync_dir(const char *dir);

void mars_dbuf_format_mark(char *buf, uint64_t v)
{
    snprintf(buf, 21, "%020llu", (unsigned long long)v);
    snprintf(buf + 20, MARS_DBUF_MARK_LEN + 1 - 20, " %08x\n", (unsigned)mars_crc32c(0, buf, 20));
}

uint64_t mars_dbuf_parse_mark(const char *buf)
{
    char *end;
    uint64_t v = strtoull(buf, &end, 10);
    if (*end == ' ' && strtoul(end + 1, NULL, 16) != mars_crc32c(0, buf, (size_t)(end - buf)))
        return 0;
    return v;
}

static int read_mark(const char *dir, uint64_t *out)
{
    char path[PATH_MAX + 16], buf[64];
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
    *out = mars_dbuf_parse_mark(buf);
    return 0;
}

void mars_dbuf_close_mark(struct lane *l)
{
    if (l->mark_fd >= 0)
        close(l->mark_fd);
    l->mark_fd = -1;
}

int mars_dbuf_remove_lane_dir(struct lane *l)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/delivered", l->dir);
    mars_dbuf_close_mark(l);
    unlink(path);
    return rmdir(l->dir) == 0 ? 0 : -errno;
}

/* Once a second at most: one pwrite over the same bytes, made durable with the segments'
 * fdatasync setting (an atomic replace cost two fsyncs, a rename and 9 system calls). */
void mars_dbuf_save_mark(struct mars_dbuf *d, struct lane *l)
{
    char path[PATH_MAX + 16], buf[MARS_DBUF_MARK_LEN + 1];
    if (l->delivered == l->saved)
        return;
    snprintf(path, sizeof(path), "%s/delivered", l->dir);
    mars_dbuf_format_mark(buf, l->delivered);
    bool fresh = l->mark_fd < 0;
    if (fresh)
        l->mark_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    bool sync = dbuf_conf(d)->sync != MARS_SYNC_NONE;
    int rc = 0;
    errno = 0;
    if (l->mark_fd < 0 || pwrite(l->mark_fd, buf, MARS_DBUF_MARK_LEN, 0) != MARS_DBUF_MARK_LEN ||
        (sync && fdatasync(l->mark_fd) != 0))
        rc = errno ? -errno : -EIO;
    if (rc) {
        mars_dbuf_close_mark(l); /* opened again next time */
        mars_stat_add(&d->s->stats->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d), "cannot write %s: %s", path, strerror(-rc));
        return;
    }
    if (fresh && sync)
        sync_dir(l->dir); /* its name too */
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
        mars_error(dbuf_sid(d), "cannot open %s: %s", path, strerror(errno));
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
        mars_error(dbuf_sid(d), "%s is not a disk-buffer segment (bad magic): left alone", path);
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
            mars_warn(dbuf_sid(d),
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
    l->mark_fd = -1;
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
    if (dbuf_conf(d)->sync != MARS_SYNC_NONE)
        sync_dir(d->lanes[0].dir); /* the new name survives a power loss */
    int rc = add_seg(d, 0, path, MARS_DBUF_SEG_HDR, 0);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    d->last_name = name;
    if (d->wfd >= 0) {
        if (dbuf_conf(d)->sync != MARS_SYNC_NONE)
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
    if ((rc = mars_wire_enc_finish(&d->enc, d->next_seq,
                                   dbuf_conf(d)->compression == MARS_BUFCOMP_LZ4)))
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
            mars_warn(dbuf_sid(d), "cannot cut a failed write off %s: %s",
                      d->segs[d->nsegs - 1].path, strerror(errno));
        return rc;
    }
    if (dbuf_conf(d)->sync == MARS_SYNC_ALWAYS && fdatasync(d->wfd) != 0) {
        rc = -errno;
        if (ftruncate(d->wfd, (off_t)d->woff) != 0)
            mars_warn(dbuf_sid(d), "cannot cut a failed write off: %s", strerror(errno));
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

void mars_dbuf_written(struct mars_dbuf *d, struct mars_batch *b)
{
    if (dbuf_conf(d)->sync != MARS_SYNC_INTERVAL) {
        mars_batch_release(b); /* its sources may acknowledge it now */
        return;
    }
    /* Its events are on disk now: only the sources' ack waits for the sync. A stand-in
     * carries it (when b is a root batch held alone: mars_batch_split_ack), and the events
     * and their chunks go back to the pool at once, so a second of writes does not keep a
     * second of reads in memory. */
    struct mars_batch *standin = b->nchunks > 0 ? mars_batch_split_ack(b) : NULL;
    if (standin) {
        mars_batch_release(b);
        b = standin;
    }
    if (bv_push(&d->unsynced, b) != 0) {
        mars_batch_release(b); /* no room to wait: acknowledged without the sync */
        return;
    }
    /* A batch shared with another path (or not split for want of memory) holds its chunks
     * while it waits: once those are half of the worker's chunk memory (or a source waits
     * for a chunk) sync now rather than let the sources starve until the tick. */
    const struct mars_chunk_pool *p = &d->s->w->pool;
    if (p->live_bytes * 2 >= p->max_bytes || p->nwaiters)
        flush_unsynced(d);
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
        mars_error(dbuf_sid(d),
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
        mars_dbuf_written(d, d->unwritten.v[i]);
    }
    memmove(d->unwritten.v, d->unwritten.v + i, (d->unwritten.n - i) * sizeof(*d->unwritten.v));
    d->unwritten.n -= i;
    if (d->unwritten.n == 0 && d->space_error) {
        d->space_error = false;
        mars_info(dbuf_sid(d), "the disk buffer %s is writable again", d->lanes[0].dir);
    }
}

void mars_dbuf_enqueue(struct mars_sink *s, struct mars_batch *b)
{
    struct mars_dbuf *d = s->dbuf;
    if (batch_has_metrics(b)) { /* records hold log events only */
        mars_sinkq_push(s, b);
        return;
    }
    if (d->over_size && dbuf_conf(d)->when_full == MARS_WHEN_FULL_DROP_NEWEST) {
        mars_stat_add(&s->stats->discarded_intentional, b->n);
        MARS_LOG_RL(MARS_LOG_WARN, dbuf_sid(d),
                    "disk buffer full (when_full: drop_newest): dropped %u "
                    "events",
                    b->n);
        mars_batch_release(b);
        return;
    }
    if (d->unwritten.n == 0) {
        bool fast = mars_dbuf_may_hand_over(d, b);
        int rc = write_record(d, b);
        if (rc == 0) {
            if (fast && mars_dbuf_hand_over(d, b)) {
                mars_dbuf_set_blocked(d);
                mars_dbuf_update_gauges(d);
                mars_sinkq_dispatch(s);
                return;
            }
            mars_dbuf_written(d, b);
            mars_dbuf_set_blocked(d);
            mars_dbuf_update_gauges(d);
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
    mars_dbuf_set_blocked(d);
}

/* ---- the tick: interval sync, retries, marks ---- */

static void flush_unsynced(struct mars_dbuf *d)
{
    if (d->unsynced.n == 0)
        return;
    if (d->wfd >= 0 && fdatasync(d->wfd) != 0) {
        mars_stat_add(&d->s->stats->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, dbuf_sid(d), "fdatasync of %s: %s (retried in a second)",
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
        mars_dbuf_save_mark(d, &d->lanes[i]);
    mars_dbuf_set_blocked(d);
    mars_dbuf_update_gauges(d);
    mars_dbuf_pump(d->s);
    arm_tick(d);
}

static void arm_tick_in(struct mars_dbuf *d, int64_t ns)
{
    if (d->tick_armed || d->closing)
        return;
    mars_ev_prep_timer(&d->tick, ns, on_tick, d);
    d->tick_armed = mars_ev_submit(d->s->w->loop, &d->tick) == 0;
}

static void arm_tick(struct mars_dbuf *d)
{
    arm_tick_in(d, mars_ev_until_aligned(TICK_NS)); /* with the worker's other ticks */
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
        mars_info(dbuf_sid(d),
                  "worker %u adopts the disk buffer %s (left by a run with more workers)", k, dir);
        rc = add_lane(d, dir, false);
    }
    closedir(dp);
    return rc;
}

/* An adopted lane with no segment left to read (its worker never wrote, or wrote only
 * empty segments, deleted by scan_seg) goes at once: trim() removes an adopted directory
 * only when it deletes the lane's last segment, so such a directory stayed forever. */
static void drop_empty_adopted(struct mars_dbuf *d)
{
    for (uint32_t i = 0; i < d->nlanes; i++) {
        struct lane *l = &d->lanes[i];
        bool has = l->own;
        for (size_t k = 0; k < d->nsegs && !has; k++)
            has = d->segs[k].lane == i;
        if (has)
            continue;
        int rc = mars_dbuf_remove_lane_dir(l);
        if (rc == 0)
            mars_info(dbuf_sid(d), "adopted disk buffer %s held nothing to deliver: removed",
                      l->dir);
        else
            mars_warn(dbuf_sid(d), "adopted disk buffer %s held no segment but stays: %s", l->dir,
                      strerror(-rc));
    }
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
    d->max_bytes = dbuf_conf(d)->max_size / nw;
    d->seg_max = d->max_bytes / 8;
    if (d->seg_max > (128u << 20))
        d->seg_max = 128u << 20;
    if (d->seg_max < (256u << 10))
        d->seg_max = 256u << 10;
    if ((rc = sink_root(s, root, sizeof(root))))
        return rc;
    snprintf(dir, sizeof(dir), "%s/%u", root, s->w->id);
    if ((rc = mars_mkdir_p(dir, 0700))) {
        mars_error(dbuf_sid(d), "cannot create the disk buffer directory %s: %s", dir,
                   strerror(-rc));
        return rc;
    }
    if (access(dir, W_OK) != 0) {
        rc = -errno;
        mars_error(dbuf_sid(d), "the disk buffer directory %s is not writable: %s", dir,
                   strerror(-rc));
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
        mars_error(dbuf_sid(d), "cannot open the disk buffer %s: %s", dir, strerror(-rc));
        return rc;
    }
    drop_empty_adopted(d);
    d->next_seq = max_seq + 1;
    d->last_name = max_seq;
    if (d->nsegs)
        mars_info(dbuf_sid(d),
                  "disk buffer %s: %llu events in %zu segments (%llu bytes) to deliver", dir,
                  (unsigned long long)d->disk_events, d->nsegs, (unsigned long long)d->disk_bytes);
    /* always a fresh segment to write: old ones are only read */
    if ((rc = new_segment(d))) {
        mars_error(dbuf_sid(d), "cannot create a segment in %s: %s", dir, strerror(-rc));
        return rc;
    }
    mars_dbuf_set_blocked(d);
    mars_dbuf_update_gauges(d);
    /* a backlog from an earlier run is read as soon as the worker runs, not a tick later */
    arm_tick_in(d, d->disk_events ? 0 : mars_ev_until_aligned(TICK_NS));
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
        mars_dbuf_save_mark(d, &d->lanes[i]);
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
        if (dbuf_conf(d)->sync != MARS_SYNC_NONE)
            fdatasync(d->wfd);
        close(d->wfd);
    }
    mars_dbuf_close_reader(d);
    mars_wire_enc_fini(&d->enc);
    mars_dbuf_free_buffers(d);
    for (uint32_t i = 0; i < d->nlanes; i++)
        mars_dbuf_close_mark(&d->lanes[i]);
    free(d->rb.p);
    free(d->ring);
    free(d->segs);
    free(d->lanes);
    free(d->unsynced.v);
    free(d->unwritten.v);
    free(d);
    s->dbuf = NULL;
}
