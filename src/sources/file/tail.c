/*
 * tail.c - reading tracked files: reads through the ev loop into the instance's shared chunk,
 * cutting lines, acknowledgement watermarks, truncation and copytruncate, partial last lines, and
 * closing drained files.
 *
 * Reads. All files of an instance read into one chunk: a read reserves a region, copies the
 * file's carried partial line to its start, and reads after it at the file's offset (pread:
 * an explicit offset, so rotation never moves it). Complete lines become events pointing
 * into the chunk; the new partial line is copied out into the file's carry (at most
 * max_line_bytes, usually a few bytes). At most MAX_INFLIGHT reads run at once; a file that
 * filled its read goes to the back of the ready queue, so big files cannot starve others.
 *
 * Acknowledgement. Each emitted batch covers the byte range [emit_off before, emit_off after)
 * of its file and carries (generation, sequence) in its ack. Ranges sit in a ring in
 * emission order; the watermark (acked_off) moves over the done ranges at the head only,
 * so an out-of-order ack never skips bytes. Each move is put in the checkpoint store with
 * the offset marker (hash of the 32 bytes before it) computed when the range was cut.
 *
 * Identity (checked when a file is opened: identity.c). While running, a file that shrank
 * below the read offset, or whose head or bytes before the read offset changed
 * (copytruncate that regrew), is read again from the start (generation++). Each read
 * begins with the 32 bytes before the offset, which must be those read before: that one
 * pread sees a shrink and a rewrite of the bytes before the offset, with no fstat; the
 * head (the fingerprint) is hashed after each read, for new content whose bytes before
 * the offset end like the old ones. A read's bytes are used only when both hold.
 *
 * Closing. A file is closed when it is read to its end, every range is acknowledged and no
 * partial line is carried, and then: a file that left its path (rotated or deleted: its
 * writer may still append until it reopens) once no writer can reach it (deleted, and no
 * process holds it open for writing: a read lease is granted) or rotate_wait after it left
 * or last grew, whichever is later; a file still at its path after IDLE_CLOSE idle, or at
 * once when other files wait for a descriptor (max_open_files): it becomes dormant and is
 * reopened when it changes (inotify, or the next scan), and its identity checked. Unread data is
 * never given up on; a file that went before it could be opened is counted and logged (give_up).
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/utf8.h"
#include "file_internal.h"

#define MAX_INFLIGHT  4
#define MIN_READ      (64u << 10)
#define IDLE_CLOSE_NS (60LL * 1000000000)

/* ---- table ---- */

struct tfile *mars_file_find(struct file_source *fs, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < fs->nfiles; i++)
        if (fs->files[i]->ino == ino && fs->files[i]->dev == dev)
            return fs->files[i];
    return NULL;
}

void mars_file_forget(struct file_source *fs, struct tfile *f)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        if (fs->files[i] != f)
            continue;
        fs->files[i] = fs->files[--fs->nfiles];
        break;
    }
    if (f->fd >= 0) {
        close(f->fd);
        fs->nopen--;
    }
    if (fs->hooks && f->hstate)
        fs->hooks->forget(fs->hctx, f->hstate);
    free(f->path);
    free(f->carry);
    free(f->ranges);
    free(f);
}

void mars_file_give_up(struct file_source *fs, struct tfile *f, uint64_t lost, const char *why)
{
    size_t departed = 0;
    if (f->gave_up)
        return;
    f->gave_up = true;
    fs->st.gave_up++;
    for (size_t i = 0; i < fs->nfiles; i++)
        departed += fs->files[i]->state == TF_OPEN && !fs->files[i]->at_path;
    if (fs->nopen < fs->max_open) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(fs->src),
                    "%s %s: %llu bytes lost (it went before mars could open it)", f->path, why,
                    (unsigned long long)lost);
        return;
    }
    /* name the cause: every descriptor busy, and how many of them held by files that left
     * their path (their writers may still append, rotate_wait) */
    MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(fs->src),
                "%s %s: %llu bytes lost (all %zu descriptors of this worker busy, %zu of them "
                "held by files that left their path, for rotate_wait: raise max_open_files%s)",
                f->path, why, (unsigned long long)lost, fs->max_open, departed,
                departed ? " or lower rotate_wait" : "");
}

struct tfile *mars_file_track(struct file_source *fs, const char *path, const struct stat *st)
{
    if (mars_grow(&fs->files, &fs->cap, fs->nfiles + 1, sizeof(*fs->files)))
        return NULL;
    struct tfile *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->fs = fs;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    if (fs->hooks && !(f->hstate = fs->hooks->track(fs->hctx, path))) {
        free(f->path);
        free(f);
        return NULL;
    }
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->fd = -1;
    f->wd = -1;
    f->state = TF_PENDING;
    f->size_seen = (uint64_t)st->st_size;
    f->at_path = true;
    f->read_off = UINT64_MAX; /* decided at the first open */
    /* found by the first scan: read_from applies even if it waits for a descriptor */
    f->initial = !fs->initial_scan_done;
    mars_cutter_init(&f->cut, fs->src, fs->conf->max_line_bytes, fs->conf->oversize,
                     fs->conf->line_delimiter[0]);
    fs->files[fs->nfiles++] = f;
    return f;
}

/* ---- acknowledgement ---- */

static void advance_watermark(struct tfile *f);

static void release_soon(struct file_source *fs, struct tfile *f);

static void on_ack(struct mars_batch *b, bool delivered)
{
    struct tfile *f = b->ack.ctx;

    f->batches--;
    if (b->ack.a != f->gen)
        return; /* the file was truncated since: these bytes are gone from it */
    if (!delivered)
        return; /* abandoned: the watermark stays, the bytes are read again next start */
    mars_stat_add(&mars_source_stats(f->fs->src)->acked_events, b->n);
    uint64_t idx = b->ack.b - f->rseq;
    if (idx >= f->rcount)
        return;
    f->ranges[(f->rhead + idx) % f->rcap].done = true;
    advance_watermark(f);
    release_soon(f->fs, f); /* last use of f: it may be forgotten */
}

/* Moves acked_off over the done ranges at the head of the ring and checkpoints it. */
static void advance_watermark(struct tfile *f)
{
    struct file_range last = {0};
    bool moved = false;
    while (f->rcount > 0 && f->ranges[f->rhead].done) {
        last = f->ranges[f->rhead];
        f->rhead = (f->rhead + 1) % f->rcap;
        f->rcount--;
        f->rseq++;
        moved = true;
    }
    if (!moved)
        return;
    f->acked_off = last.end;
    struct mars_ckpt_rec rec = {.key = {.dev = f->dev, .ino = f->ino},
                                .offset = f->acked_off,
                                .fp_hash = f->fp_hash,
                                .fp_len = f->fp_len,
                                .marker = last.marker,
                                .marker_len = last.marker_len,
                                .updated = mars_wall_ns() / 1000000000};
    mars_ckpt_put(f->fs->ckpt, &rec, f->path);
}

static int push_range(struct tfile *f, uint64_t end, uint64_t marker, uint32_t marker_len,
                      bool done, uint64_t *seq)
{
    if (f->rcount == f->rcap) {
        uint32_t cap = f->rcap ? f->rcap * 2 : 8;
        struct file_range *r = malloc(cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        for (uint32_t i = 0; i < f->rcount; i++)
            r[i] = f->ranges[(f->rhead + i) % f->rcap];
        free(f->ranges);
        f->ranges = r;
        f->rhead = 0;
        f->rcap = cap;
    }
    f->ranges[(f->rhead + f->rcount) % f->rcap] =
        (struct file_range){.end = end, .marker = marker, .marker_len = marker_len, .done = done};
    *seq = f->rseq + f->rcount;
    f->rcount++;
    return 0;
}

/* Emits b (may be NULL when everything consumed was skipped) covering bytes up to
 * f->emit_off; `region_end` points just past those bytes in memory, for the marker. */
static void emit_range(struct file_source *fs, struct tfile *f, struct mars_batch *b,
                       const unsigned char *region_end, uint32_t avail)
{
    uint32_t mlen = avail < FILE_MARKER_MAX ? avail : FILE_MARKER_MAX;
    uint64_t marker = mars_hash64(region_end - mlen, mlen), seq;
    if (push_range(f, f->emit_off, marker, mlen, b == NULL, &seq)) {
        mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_MEMORY], 1);
        if (b)
            mars_batch_abandon(b);
        return;
    }
    if (b && b->n == 0) {
        mars_batch_release(b); /* the layer over the file source dropped every line */
        b = NULL;
    }
    if (b) {
        /* the path is copied once per batch: a rename may replace f->path meanwhile */
        const char *path = mars_arena_strndup(&b->arena, f->path, strlen(f->path));
        for (uint32_t i = 0; i < b->n; i++)
            b->ev[i].file = path;
        b->ack = (struct mars_batch_ack){.fn = on_ack, .ctx = f, .a = f->gen, .b = seq};
        f->batches++;
        mars_source_emit(fs->src, b);
    } else {
        advance_watermark(f);
    }
}

/* Counts invalid UTF-8 sequences (charset utf-8): in a read, or at the end of an emitted
 * carry that stops inside one. */
static void count_invalid(struct file_source *fs, size_t bad)
{
    fs->st.invalid_utf8 += bad;
    mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_INVALID_UTF8], bad);
}

/* ---- the partial last line ---- */

static int keep_carry(struct tfile *f, const unsigned char *p, uint32_t n)
{
    if (mars_grow(&f->carry, &f->carry_cap, n, 1))
        return -ENOMEM;
    if (n)
        memmove(f->carry, p, n);
    f->carry_len = n;
    return 0;
}

/* Cuts the carry copied to c (emit_carry with hooks): its whole lines, then the rest as
 * an unterminated line, all handed to hooks->lines with nothing given back. */
static int cut_carry_final(struct file_source *fs, struct tfile *f, struct mars_chunk *c,
                           struct mars_batch **bp, int64_t now)
{
    uint32_t start = 0;
    int rc = mars_cutter_run(&f->cut, c, &start, 0, f->carry_len, bp, 256, now);
    if (rc == 0 && start < f->carry_len)
        rc = mars_cutter_emit(&f->cut, c, start, f->carry_len - start, MARS_EVF_PARTIAL, bp, 256,
                              now);
    if (rc == 0 && *bp)
        fs->hooks->lines(fs->hctx, f->hstate, *bp, true);
    return rc;
}

/* Emits the carried partial line as an event of its own (line_timeout, truncation, --once,
 * stop): it is a line the writer has not finished, and it must not be lost. */
static void emit_carry(struct file_source *fs, struct tfile *f)
{
    if (f->carry_len == 0)
        return;
    struct mars_chunk *c = mars_source_chunk(fs->src, f->carry_len);
    if (!c)
        return; /* memory is back soon; the next sweep tries again */
    struct mars_batch *b = NULL;
    memcpy(c->data, f->carry, f->carry_len);
    f->cut.whole_flags = 0; /* lines cut from the carry are not marked valid UTF-8: it may
                             * end in the held bytes of an unfinished character */
    c->len = f->carry_len;
    int rc = fs->hooks ? cut_carry_final(fs, f, c, &b, mars_wall_ns())
                       : mars_cutter_emit(&f->cut, c, 0, f->carry_len, MARS_EVF_PARTIAL, &b, 1,
                                          mars_wall_ns());
    mars_chunk_unref(c); /* the batch holds it */
    if (rc) {
        if (b)
            mars_batch_release(b);
        return;
    }
    f->emit_off += f->carry_len;
    emit_range(fs, f, b, c->data + f->carry_len, f->carry_len);
    if (f->u8_held && fs->conf->charset == CHARSET_UTF8)
        count_invalid(fs, 1); /* the line ends inside a sequence */
    f->carry_len = 0;
    f->carry_lines = false;
    f->carry_dirty = false;
    f->u8_held = 0;
    f->cut.skipping = f->cut.cutting = false;
}

/* ---- truncation ---- */

static void restart_file(struct file_source *fs, struct tfile *f, const char *why)
{
    mars_info(mars_source_id(fs->src), "%s %s: reading it again from the beginning", f->path, why);
    fs->st.truncations++;
    mars_file_drop_cut_line(fs, f);
    mars_file_note_read_head(fs, f); /* a copy of what it held, found later, starts there */
    f->gen++;                        /* acks still in flight are for bytes the file no longer has */
    f->rhead = f->rcount = 0;
    f->rseq = 0;
    mars_file_set_offsets(f, 0);
    f->fp_len = 0;
    f->size_seen = 0;
    f->cut.skipping = f->cut.cutting = false;
    struct stat st;
    if (fstat(f->fd, &st) == 0)
        mars_file_note_size(fs, f, (uint64_t)st.st_size);
    struct mars_ckpt_rec rec = {.key = {.dev = f->dev, .ino = f->ino},
                                .fp_hash = f->fp_hash,
                                .fp_len = f->fp_len,
                                .updated = mars_wall_ns() / 1000000000};
    mars_ckpt_put(fs->ckpt, &rec, f->path);
}

/* ---- reading ---- */

/* Validates the n new bytes at p (the carry is just before them) and counts their invalid
 * sequences; true when there was one. A sequence cut by the end of a read is not invalid:
 * its first bytes are held and validated with the next read's. */
static bool utf8_bad(struct file_source *fs, struct tfile *f, const unsigned char *p, uint32_t n)
{
    uint32_t held = f->u8_held <= f->carry_len ? f->u8_held : 0;
    size_t len = (size_t)n + held, pend = mars_utf8_unfinished(p - held, len);
    size_t bad = mars_utf8_invalid(p - held, len - pend);
    if (bad)
        count_invalid(fs, bad);
    f->u8_held = (uint8_t)pend;
    return bad != 0;
}

/* The bytes before the new offset: the read began with the bytes before the old one, so its
 * last `avail` bytes are all the file's up to the new offset. */
static void remember_tail(struct tfile *f, const unsigned char *end, uint32_t avail)
{
    uint32_t n = avail < FILE_MARKER_MAX ? avail : FILE_MARKER_MAX;
    memcpy(f->tail, end - n, n);
    f->tail_len = n;
}

static void on_read(struct mars_ev_op *op, int res);

/* Reserves room in the shared chunk and submits a read. -ENOBUFS: no memory (resume()
 * runs when some is back). The read begins `back` bytes before the offset, where the end
 * of the carry (or, without one, a few spare bytes before it) lies in the chunk: the file's
 * bytes there are read again with the new ones, and on_read() checks them against f->tail,
 * so a truncation before the read costs no system call of its own to see. */
static int start_read(struct file_source *fs, struct tfile *f)
{
    if (mars_file_check_copy(fs, f))
        return -EAGAIN; /* its next change (or the sweep) schedules it again */
    uint32_t back = f->read_off < FILE_MARKER_MAX ? (uint32_t)f->read_off : FILE_MARKER_MAX;
    uint32_t lead = back > f->carry_len ? back - f->carry_len : 0;
    uint32_t need = lead + f->carry_len + MIN_READ;
    if (!fs->chunk || fs->chunk->cap - fs->chunk_pos < need) {
        struct mars_chunk *c = mars_source_chunk(fs->src, need);
        if (!c)
            return -ENOBUFS;
        if (fs->chunk)
            mars_chunk_unref(fs->chunk);
        fs->chunk = c;
        fs->chunk_pos = 0;
    }
    struct mars_chunk *c = fs->chunk;
    uint32_t pos = fs->chunk_pos + lead, dst = pos + f->carry_len;
    uint64_t len = c->cap - dst;
    if (len > fs->conf->read_size)
        len = fs->conf->read_size;
    if (f->carry_len)
        memcpy(c->data + pos, f->carry, f->carry_len);
    mars_chunk_ref(c);
    f->rchunk = c;
    f->rpos = pos;
    f->rlen = (uint32_t)len;
    f->rback = back;
    fs->chunk_pos = dst + (uint32_t)len;
    mars_ev_prep_read(&f->op, f->fd, c->data + dst - back, back + len, f->read_off - back, on_read,
                      f);
    int rc = mars_ev_submit(mars_source_loop(fs->src), &f->op);
    if (rc) {
        fs->chunk_pos = pos - lead;
        mars_chunk_unref(c);
        f->rchunk = NULL;
        return rc;
    }
    f->reading = true;
    fs->reads_inflight++;
    return 0;
}

/* Cuts the lines of a completed read and keeps its unfinished last line. */
static void take_lines(struct file_source *fs, struct tfile *f, uint32_t n)
{
    struct mars_chunk *c = f->rchunk;
    uint32_t start = f->rpos, scan = f->rpos + f->carry_len, end = scan + n;
    struct mars_batch *b = NULL;

    /* The lines cut now are flagged valid UTF-8 when the read's bytes and the carry are.
     * A read with an invalid sequence flags none of them, nor the carry it leaves (which
     * line held it is not worth finding: such input is rare, and an unflagged line is only
     * validated again by a JSON parser). */
    bool utf8 = fs->conf->charset == CHARSET_UTF8, bad = utf8 && utf8_bad(fs, f, c->data + scan, n);
    f->cut.whole_flags = utf8 && !bad && !f->carry_dirty ? MARS_EVF_UTF8 : 0;
    f->read_off += n;
    mars_file_grow_fingerprint(fs, f); /* before the range's checkpoint records it */
    remember_tail(f, c->data + end, f->rback + n);
    /* a carry of lines given back is cut again from its start */
    if (mars_cutter_run(&f->cut, c, &start, f->carry_lines ? f->rpos : scan, end, &b, 256,
                        mars_wall_ns()))
        mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_MEMORY], 1);
    f->carry_lines = false;
    if (fs->hooks && b) {
        const char *keep = fs->hooks->lines(fs->hctx, f->hstate, b, false);
        if (keep) {
            start = (uint32_t)((const unsigned char *)keep -
                               c->data); /* those lines wait in the carry */
            f->carry_lines = true;
        }
    }
    f->carry_dirty = bad || (f->carry_dirty && start < scan);
    uint32_t consumed = start - f->rpos;
    if (consumed > 0) {
        f->emit_off += consumed;
        emit_range(fs, f, b, c->data + start, consumed);
    } else if (b) {
        mars_batch_release(b);
    }
    if (keep_carry(f, c->data + start, end - start))
        mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_MEMORY], 1);
}

/* Is the file still the one read so far? The read began with the `got` bytes at p, the
 * file's bytes before the offset: NULL when they are those read before (f->tail) and the
 * head is unchanged, else why the file is read again from its start. The head is hashed
 * after the read: a truncation before the read, or during it, that regrew the file past
 * the offset with bytes before it that end alike (lines of one length and ending) shows
 * there. */
static const char *changed(struct tfile *f, const unsigned char *p, uint32_t got)
{
    uint32_t t = f->tail_len < f->rback ? f->tail_len : f->rback;
    uint64_t h;
    if (got < f->rback)
        return "was truncated";
    if (t && memcmp(p + f->rback - t, f->tail + f->tail_len - t, t) != 0)
        return "was truncated and written again (copytruncate)";
    if (f->fp_len && (!mars_file_hash_range(f->fd, 0, f->fp_len, &h) || h != f->fp_hash))
        return "was truncated and written again (its head changed)";
    return NULL;
}

static void on_read(struct mars_ev_op *op, int res)
{
    struct tfile *f = op->data;
    struct file_source *fs = f->fs;
    struct mars_chunk *c = f->rchunk;
    uint32_t dst = f->rpos + f->carry_len;
    int64_t now = mars_ev_now(mars_source_loop(fs->src));

    f->reading = false;
    fs->reads_inflight--;
    const char *why = res >= 0 ? changed(f, c->data + dst - f->rback, (uint32_t)res) : NULL;
    uint32_t n = res > 0 && !why ? (uint32_t)res - f->rback : 0;
    /* give back the unused end of the reservation when nothing was reserved after it */
    if (fs->chunk == c && fs->chunk_pos == dst + f->rlen)
        fs->chunk_pos = dst + n;
    if (why) {
        /* what the read brought may be the new content from its middle: drop it */
        restart_file(fs, f, why);
        f->eof = false;
        mars_file_schedule(fs, f);
    } else if (n > 0) {
        take_lines(fs, f, n);
        f->last_change_ns = f->last_read_ns = now;
        f->eof = n < f->rlen;
        if (f->eof)
            mars_file_note_size(fs, f, f->read_off); /* a short read ends at the end */
        else
            mars_file_schedule(fs, f);
    } else if (res >= 0 || res == -ECANCELED) {
        f->eof = true;
    } else {
        f->eof = true;
        mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_READ], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(fs->src), "read of %s failed: %s", f->path,
                    strerror(-res));
    }
    f->rchunk = NULL;
    mars_chunk_unref(c);
    mars_file_pump(fs);
}

void mars_file_schedule(struct file_source *fs, struct tfile *f)
{
    if (f->queued || f->reading || f->state != TF_OPEN)
        return;
    f->queued = true;
    f->next_ready = NULL;
    if (fs->ready_tail)
        fs->ready_tail->next_ready = f;
    else
        fs->ready_head = f;
    fs->ready_tail = f;
}

static struct tfile *ready_pop(struct file_source *fs)
{
    struct tfile *f = fs->ready_head;
    if (f) {
        fs->ready_head = f->next_ready;
        if (!fs->ready_head)
            fs->ready_tail = NULL;
        f->queued = false;
    }
    return f;
}

void mars_file_pump(struct file_source *fs)
{
    while (!fs->stopping && !mars_source_paused(fs->src) && fs->reads_inflight < MAX_INFLIGHT) {
        struct tfile *f = ready_pop(fs);
        if (!f)
            break;
        if (f->state != TF_OPEN)
            continue;
        int rc = start_read(fs, f);
        if (rc == -ENOBUFS) {
            /* back to the front; resume() pumps again when memory is back */
            f->queued = true;
            f->next_ready = fs->ready_head;
            fs->ready_head = f;
            if (!fs->ready_tail)
                fs->ready_tail = f;
            fs->waiting_memory = true;
            break;
        }
        if (rc && rc != -EAGAIN) {
            mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_READ], 1);
            MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(fs->src), "cannot read %s: %s", f->path,
                        strerror(-rc));
        }
    }
}

/* ---- the periodic sweep ---- */

static void close_file(struct file_source *fs, struct tfile *f)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0)
        f->ctime = st.st_ctim; /* another file that gets this inode has another one */
    close(f->fd);
    f->fd = -1;
    fs->nopen--;
    f->state = TF_DORMANT; /* its directory's watch still tells when it changes */
}

/* Read to its end and everything emitted acknowledged; it may still carry an unfinished
 * last line. */
static bool quiet(const struct tfile *f)
{
    return f->state == TF_OPEN && f->eof && !f->reading && !f->queued && f->rcount == 0 &&
           f->batches == 0;
}

void mars_file_left(struct file_source *fs, struct tfile *f)
{
    if (!f->at_path)
        return;
    f->at_path = false;
    f->left_ns = mars_ev_now(mars_source_loop(fs->src));
}

/* No process holds the file open for writing: the kernel grants a read lease only then
 * (fcntl(2), F_SETLEASE). It is given back at once, so no opener ever waits for it. False
 * when leases are refused (not the owner without CAP_LEASE, leases disabled, a file
 * system without them): the caller then waits rotate_wait. */
static bool no_writer(int fd)
{
    if (fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
        return false;
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
    return true;
}

/* A drained file that left its path: close it when no writer can reach it any more (deleted,
 * and no process holds it open for writing) or rotate_wait after it left or last grew. */
static bool departed_done(struct file_source *fs, struct tfile *f, int64_t now)
{
    struct stat st;
    int64_t since = f->left_ns > f->last_change_ns ? f->left_ns : f->last_change_ns;
    if (now - since >= fs->conf->rotate_wait)
        return true;
    if (fstat(f->fd, &st) != 0 || st.st_nlink != 0 || !no_writer(f->fd))
        return false;
    /* a writer may have appended and closed since the last read: read that first */
    if (fstat(f->fd, &st) != 0 || (uint64_t)st.st_size != f->read_off) {
        mars_file_note_size(fs, f, (uint64_t)st.st_size);
        f->eof = false;
        mars_file_schedule(fs, f);
        return false;
    }
    return true;
}

/* Closes a drained file when its time has come; true when it did (f may be freed). */
static bool maybe_close(struct file_source *fs, struct tfile *f, int64_t now, bool want_fds)
{
    struct stat st;
    if (!quiet(f))
        return false;
    if (!f->at_path) {
        if (f->carry_len)
            return false; /* its last line waits for its writer, or line_timeout */
        if (!departed_done(fs, f, now))
            return false;
        bool deleted = fstat(f->fd, &st) == 0 && st.st_nlink == 0;
        close_file(fs, f);
        if (deleted) {
            /* it cannot come back: its checkpoint is no longer needed */
            struct mars_ckpt_key key = {.dev = f->dev, .ino = f->ino};
            mars_ckpt_remove(fs->ckpt, &key);
        }
        /* a file renamed away still exists and may match again (a link pointed back, a
         * rename back): its checkpoint stays, and finding it again resumes from it */
        mars_file_forget(fs, f);
        return true;
    }
    /* still at its path: closed (dormant) after a while, at once when others wait for a
     * descriptor; it is opened again when it changes. An unfinished last line stays in
     * its carry (read_off is past it): it does not keep the descriptor from others */
    if (!want_fds && (f->carry_len || now - f->last_change_ns < IDLE_CLOSE_NS))
        return false;
    close_file(fs, f);
    return true;
}

static void sweep_one(struct file_source *fs, struct tfile *f, int64_t now, bool want_fds)
{
    struct stat st;
    if (f->state == TF_DORMANT && f->carry_len && now - f->last_change_ns >= fs->conf->line_timeout)
        emit_carry(fs, f); /* closed with an unfinished last line, which waited long enough */
    if (f->state != TF_OPEN || f->reading)
        return;
    if (fstat(f->fd, &st) == 0) {
        /* a new mtime at the same size may be a rewrite after a truncation: the read
         * checks the bytes before its offset */
        if ((uint64_t)st.st_size != f->read_off || st.st_mtim.tv_sec != f->mtime.tv_sec ||
            st.st_mtim.tv_nsec != f->mtime.tv_nsec) {
            f->mtime = st.st_mtim;
            mars_file_schedule(fs, f);
        }
        if (st.st_nlink == 0)
            mars_file_left(fs, f); /* deleted while open: read it out, then close */
        mars_file_note_size(fs, f, (uint64_t)st.st_size);
    }
    /* no byte beyond what was read (a queued read would find nothing): the partial line
     * has waited long enough */
    if (f->carry_len && f->eof && f->size_seen == f->read_off &&
        now - f->last_change_ns >= fs->conf->line_timeout)
        emit_carry(fs, f);
    maybe_close(fs, f, now, want_fds);
}

/* The last range of a file was acknowledged: a drained file gives its descriptor up now
 * when others wait for one, or when it left its path and no writer can reach it. */
static void release_soon(struct file_source *fs, struct tfile *f)
{
    if (!quiet(f) || (f->at_path && !fs->fds_wanted) || fs->stopping)
        return;
    if (maybe_close(fs, f, mars_ev_now(mars_source_loop(fs->src)), fs->fds_wanted) &&
        fs->fds_wanted) {
        mars_file_open_pending(fs);
        mars_file_pump(fs);
    }
}

void mars_file_sweep(struct file_source *fs, int64_t now)
{
    bool want_fds = false;
    for (size_t i = 0; i < fs->nfiles; i++)
        want_fds = want_fds || fs->files[i]->state == TF_PENDING;
    want_fds = want_fds && fs->nopen >= fs->max_open;
    /* sweep_one may forget files: walk backwards so removal swaps in visited ones */
    for (size_t i = fs->nfiles; i-- > 0;)
        if (i < fs->nfiles)
            sweep_one(fs, fs->files[i], now, want_fds);
    mars_file_open_pending(fs);
    /* While notify_delay runs, what the sweep found waits for it: the delay's end reads
     * every file an event named (scan.c, queue_notified), so a read now would only be
     * done again then. */
    if (!fs->dop_armed)
        mars_file_pump(fs);
    /* lag: bytes in the files this instance knows of that are not acknowledged yet */
    uint64_t lag = 0;
    for (size_t i = 0; i < fs->nfiles; i++) {
        const struct tfile *f = fs->files[i];
        uint64_t done = f->read_off == UINT64_MAX ? 0 : f->acked_off;
        if (f->size_seen > done)
            lag += f->size_seen - done;
    }
    mars_stat_set(&mars_source_stats(fs->src)->lag_bytes, lag);
    mars_file_metrics_publish(fs);
}

/* ---- end ---- */

bool mars_file_all_idle(const struct file_source *fs)
{
    if (fs->reads_inflight || fs->ready_head)
        return false;
    for (size_t i = 0; i < fs->nfiles; i++) {
        const struct tfile *f = fs->files[i];
        if (f->state == TF_PENDING || (f->state == TF_OPEN && !f->eof))
            return false;
    }
    return true;
}

void mars_file_flush_carry(struct file_source *fs, struct tfile *f)
{
    if (!f->reading)
        emit_carry(fs, f);
}

/* --once and stop: emit what is carried, so nothing read is held back. */
void mars_file_flush_carries(struct file_source *fs)
{
    for (size_t i = 0; i < fs->nfiles; i++)
        if (!fs->files[i]->reading)
            emit_carry(fs, fs->files[i]);
}

void mars_file_close_all(struct file_source *fs)
{
    while (fs->nfiles > 0)
        mars_file_forget(fs, fs->files[fs->nfiles - 1]);
    free(fs->files);
    fs->files = NULL;
    fs->cap = 0;
    if (fs->chunk)
        mars_chunk_unref(fs->chunk);
    fs->chunk = NULL;
}
