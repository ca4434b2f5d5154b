/*
 * identity.c - which file is this, and where does reading it start? Opening a tracked file
 * (identity and checkpoint checks) and the files waiting for a descriptor.
 *
 * A file is (dev, inode); at open its head fingerprint (first `fingerprint` bytes) and, for
 * a checkpoint, the marker before the saved offset must match, or the inode was reused or
 * the file truncated while mars was down, and it is read from the start. A dormant file
 * (closed while idle) reopened later must still have the head and the bytes before its
 * offset it had. The head fingerprint only grows over an unchanged head, so a truncation is
 * never adopted as the file's new identity (tail.c's check_truncated() sees it instead).
 * Files beyond max_open_files wait; open_pending() opens the oldest (or newest) first.
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "file_internal.h"

bool mars_file_hash_range(int fd, uint64_t off, uint32_t len, uint64_t *out)
{
    unsigned char buf[4096];
    uint64_t h = 0;
    if (len > sizeof(buf))
        len = sizeof(buf);
    if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
        return false;
    h = mars_hash64(buf, len);
    *out = h;
    return true;
}

void mars_file_set_offsets(struct tfile *f, uint64_t off)
{
    f->read_off = f->emit_off = f->acked_off = off;
    f->tail_len = 0;
    f->carry_len = 0;
    f->carry_lines = false;
    f->carry_dirty = false;
    f->u8_held = 0;
}

/* Where what f holds was read up to, as a copy of it would show: the start of its
 * unfinished last line, if any (that line is read whole from a copy, never in two
 * pieces), with the bytes before it as the marker. False when that is not known. */
static bool read_head_of(const struct tfile *f, struct file_read_head *r)
{
    if (f->fp_len == 0 || f->read_off == UINT64_MAX || f->read_off <= f->carry_len ||
        f->tail_len <= f->carry_len)
        return false;
    uint32_t n = f->tail_len - f->carry_len;
    *r = (struct file_read_head){.fp_hash = f->fp_hash,
                                 .fp_len = f->fp_len,
                                 .off = f->read_off - f->carry_len,
                                 .marker = mars_hash64(f->tail, n),
                                 .marker_len = n};
    return true;
}

void mars_file_note_read_head(struct file_source *fs, const struct tfile *f)
{
    struct file_read_head r;
    if (!read_head_of(f, &r))
        return;
    r.path_hash = mars_hash64(f->path, strlen(f->path));
    fs->heads[fs->nheads++ % FILE_READ_HEADS] = r;
}

/* An unfinished last line whose end went with a truncation (a read saw part of a write,
 * then the file was copied and truncated before the rest was read): its end is in the
 * copy, or lost. Emitting the piece would deliver a torn line, so it is dropped, counted
 * and logged; a copy inside the patterns is read from that line's start (read_head_of). The
 * caller then resets the offsets. */
void mars_file_drop_cut_line(struct file_source *fs, struct tfile *f)
{
    if (f->carry_len == 0)
        return;
    fs->st.cut_lines++;
    MARS_LOG_RL(MARS_LOG_INFO, mars_source_id(fs->src),
                "%s: dropped the first %u bytes of a line whose end went with a truncation "
                "(copytruncate while it was written)",
                f->path, (unsigned)f->carry_len);
}

/* The hashes of a new file's head at the lengths asked so far (most files have the full
 * `fingerprint` length, so one pread serves the comparison with every candidate). */
struct head_cache {
    uint32_t len[4];
    uint64_t hash[4];
    unsigned n;
};

static bool head_hash(int fd, struct head_cache *hc, uint32_t len, uint64_t *out)
{
    for (unsigned i = 0; i < hc->n; i++) {
        if (hc->len[i] == len) {
            *out = hc->hash[i];
            return true;
        }
    }
    if (!mars_file_hash_range(fd, 0, len, out))
        return false;
    if (hc->n < 4) {
        hc->len[hc->n] = len;
        hc->hash[hc->n++] = *out;
    }
    return true;
}

/* f holds r's head and the bytes before r's offset. *growing: it holds r's head but is
 * still shorter than r's offset (a copy being written). */
static bool holds_head(struct tfile *f, uint64_t size, const struct file_read_head *r,
                       struct head_cache *hc, bool *growing)
{
    uint64_t h;
    if (!r->fp_len || r->fp_len > size || r->marker_len > r->off ||
        !head_hash(f->fd, hc, r->fp_len, &h) || h != r->fp_hash)
        return false;
    if (r->off > size) {
        *growing = true;
        return false;
    }
    return mars_file_hash_range(f->fd, r->off - r->marker_len, r->marker_len, &h) && h == r->marker;
}

/* A new file that begins with what another file of this instance was read up to (a copy
 * made by copytruncate, matched by the patterns too): the offset to start at, or 0. The
 * other file is one still tracked (the copy came before the truncation) or one truncated
 * lately (after). A copy never takes its original's path: a file created again where one
 * was deleted or renamed away (a new incarnation, often with the same header and the same
 * length) is a new file, read whole, whatever its bytes. */
static uint64_t copy_of_read(struct file_source *fs, struct tfile *f, uint64_t size,
                             const char **of, bool *growing)
{
    struct head_cache hc = {.n = 0};
    uint64_t path_hash = mars_hash64(f->path, strlen(f->path));
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct tfile *o = fs->files[i];
        if (o == f || o->read_off == UINT64_MAX || o->read_off == 0 || !o->fp_len ||
            o->fp_len > size || strcmp(o->path, f->path) == 0)
            continue;
        uint64_t h;
        if (!head_hash(f->fd, &hc, o->fp_len, &h) || h != o->fp_hash)
            continue; /* the common case, without hashing o's marker */
        struct file_read_head r;
        if (read_head_of(o, &r) && holds_head(f, size, &r, &hc, growing)) {
            *of = o->path;
            return r.off;
        }
    }
    unsigned n = fs->nheads < FILE_READ_HEADS ? fs->nheads : FILE_READ_HEADS;
    for (unsigned i = 0; i < n; i++) {
        if (fs->heads[i].path_hash != path_hash &&
            holds_head(f, size, &fs->heads[i], &hc, growing)) {
            *of = "a file truncated since";
            return fs->heads[i].off;
        }
    }
    return 0;
}

/* Where reading starts the first time this run opens the file. */
static void choose_start(struct file_source *fs, struct tfile *f, uint64_t size, bool initial)
{
    struct mars_ckpt_key key = {.dev = f->dev, .ino = f->ino};
    struct mars_ckpt_rec rec;
    uint64_t h;

    if (mars_ckpt_get(fs->ckpt, &key, &rec)) {
        bool same =
            rec.offset <= size && rec.fp_len <= size &&
            (rec.fp_len == 0 ||
             (mars_file_hash_range(f->fd, 0, rec.fp_len, &h) && h == rec.fp_hash)) &&
            (rec.marker_len == 0 ||
             (mars_file_hash_range(f->fd, rec.offset - rec.marker_len, rec.marker_len, &h) &&
              h == rec.marker));
        if (same) {
            mars_file_set_offsets(f, rec.offset);
            return;
        }
        mars_info(mars_source_id(fs->src),
                  "%s is not the file checkpointed for its inode (reused inode, or truncated "
                  "while mars was stopped): reading it from the beginning",
                  f->path);
        mars_file_set_offsets(f, 0);
        return;
    }
    if (initial && fs->first_start && fs->conf->read_from == READ_FROM_END) {
        mars_file_set_offsets(f, size);
        return;
    }
    mars_file_set_offsets(f, 0);
    f->copy_check = true; /* decided before its first read: a copy may still be written */
}

#define COPY_STALL_NS 2000000000LL

bool mars_file_check_copy(struct file_source *fs, struct tfile *f)
{
    struct stat st;
    const char *of = NULL;
    bool growing = false;
    if (!f->copy_check || f->read_off != 0 || fstat(f->fd, &st) != 0 || st.st_size == 0)
        return false;
    uint64_t off = copy_of_read(fs, f, (uint64_t)st.st_size, &of, &growing);
    if (!off) {
        /* a copy still being written waits, up to COPY_STALL_NS after it last grew: a
         * growth seen here counts, or a copier slower than that on a loaded node (cp's
         * writes never reach the read path while it waits) has it read from the start */
        if (growing) {
            mars_file_note_size(fs, f, (uint64_t)st.st_size);
            int64_t now = mars_ev_now(mars_source_loop(fs->src));
            if (now - f->last_change_ns < COPY_STALL_NS)
                return true;
        }
        f->copy_check = false;
        return false;
    }
    f->copy_check = false;
    mars_info(mars_source_id(fs->src),
              "%s begins with the %llu bytes already read of %s (a copy, e.g. by "
              "copytruncate): reading it from there",
              f->path, (unsigned long long)off, of);
    mars_file_set_offsets(f, off);
    /* what the original's tail was is what this one holds before off */
    uint32_t n = off < FILE_MARKER_MAX ? (uint32_t)off : FILE_MARKER_MAX;
    if (pread(f->fd, f->tail, n, (off_t)(off - n)) == (ssize_t)n)
        f->tail_len = n;
    return false;
}

static void update_fingerprint(struct file_source *fs, struct tfile *f, uint64_t size)
{
    uint32_t want = (uint32_t)(size < fs->conf->fingerprint ? size : fs->conf->fingerprint);
    uint64_t h;
    /* grow the hash only over an unchanged head: a head replaced since is a truncation
     * for check_truncated() to see, not a new identity to adopt */
    if (want > f->fp_len && f->fp_len &&
        (!mars_file_hash_range(f->fd, 0, f->fp_len, &h) || h != f->fp_hash))
        return;
    if (want > f->fp_len && mars_file_hash_range(f->fd, 0, want, &h)) {
        f->fp_hash = h;
        f->fp_len = want;
    }
}

/* Bytes were read past a head shorter than `fingerprint` (a file opened while it was
 * still empty or short): hash them into it before the checkpoint records the head, or a
 * file that gets this inode later and ends with the same bytes passes for this one. */
void mars_file_grow_fingerprint(struct file_source *fs, struct tfile *f)
{
    if (f->fp_len < fs->conf->fingerprint && f->read_off > f->fp_len)
        update_fingerprint(fs, f, f->read_off);
}

/* Reopening a closed file: is it still the one we read (inode reuse while it was closed,
 * or a truncation)? Its head and the bytes before our offset must be unchanged. */
static bool same_file(struct tfile *f, uint64_t size)
{
    unsigned char buf[FILE_MARKER_MAX];
    uint64_t h;
    if (size < f->read_off || size < f->fp_len)
        return false;
    if (f->fp_len && (!mars_file_hash_range(f->fd, 0, f->fp_len, &h) || h != f->fp_hash))
        return false;
    return f->tail_len == 0 || (pread(f->fd, buf, f->tail_len,
                                      (off_t)(f->read_off - f->tail_len)) == (ssize_t)f->tail_len &&
                                memcmp(buf, f->tail, f->tail_len) == 0);
}

static void restart_dormant(struct file_source *fs, struct tfile *f)
{
    mars_info(mars_source_id(fs->src),
              "%s is not the file last read under its inode (reused inode, or truncated while "
              "closed): reading it from the beginning",
              f->path);
    mars_file_drop_cut_line(fs, f);
    f->gen++;
    mars_file_set_offsets(f, 0);
    f->fp_len = 0;
    f->size_seen = 0;
}

/* A new size was seen: note it and, while the head is shorter than `fingerprint`, hash
 * more of it (identity must not stay weak after a truncation emptied the file). */
void mars_file_note_size(struct file_source *fs, struct tfile *f, uint64_t size)
{
    if (size == f->size_seen)
        return;
    f->size_seen = size;
    f->last_change_ns = mars_ev_now(mars_source_loop(fs->src));
    if (f->fp_len < fs->conf->fingerprint)
        update_fingerprint(fs, f, size);
}

static int file_open(struct file_source *fs, struct tfile *f)
{
    struct stat st;
    /* O_NOATIME: with relatime, every read after an append would otherwise update the
     * atime and dirty the inode in the journal (7% of a tailing worker's CPU at light
     * load). It needs the file's owner or CAP_FOWNER; without them open plainly. */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOATIME);
    if (fd < 0 && errno == EPERM)
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
        close(fd); /* the path moved on between stat and open: the next scan sees it */
        return -ESTALE;
    }
    f->fd = fd;
    f->state = TF_OPEN;
    fs->nopen++;
    f->size_seen = (uint64_t)st.st_size;
    f->last_change_ns = mars_ev_now(mars_source_loop(fs->src));
    if (f->read_off == UINT64_MAX)
        choose_start(fs, f, (uint64_t)st.st_size, f->initial);
    else if (!same_file(f, (uint64_t)st.st_size))
        restart_dormant(fs, f);
    update_fingerprint(fs, f, (uint64_t)st.st_size);
    mars_debug(mars_source_id(fs->src), "opened %s at offset %llu", f->path,
               (unsigned long long)f->read_off);
    mars_file_watch_add(fs, f);
    f->eof = false;
    mars_file_schedule(fs, f);
    return 0;
}

/* Opens pending files while descriptors are free, oldest first if asked. */
void mars_file_open_pending(struct file_source *fs)
{
    while (fs->nopen < fs->max_open && !fs->stopping) {
        struct tfile *best = NULL;
        struct stat st, bst;
        for (size_t i = 0; i < fs->nfiles; i++) {
            struct tfile *f = fs->files[i];
            if (f->state != TF_PENDING || f->vanished)
                continue;
            if (!fs->conf->oldest_first) {
                best = f;
                break;
            }
            if (stat(f->path, &st) == 0 && (!best || st.st_mtime < bst.st_mtime)) {
                best = f;
                bst = st;
            }
        }
        if (!best) {
            fs->fds_wanted = false;
            return;
        }
        int rc = file_open(fs, best);
        if (rc == -ENOENT || rc == -ESTALE) {
            /* renamed (a rotation between the scan and now), deleted, or its path leads to
             * another file now: the next scan, due at once, finds it under its new name or
             * reports what was lost */
            best->vanished = true;
            mars_file_left(fs, best);
            fs->next_scan_ns = 0;
        } else if (rc) {
            MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(fs->src), "cannot open %s: %s", best->path,
                        strerror(-rc));
            mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_READ], 1);
            mars_file_forget(fs, best); /* a later scan finds it again if it is still there */
        }
    }
    fs->fds_wanted = false;
    for (size_t i = 0; i < fs->nfiles && !fs->stopping; i++)
        if (fs->files[i]->state == TF_PENDING && !fs->files[i]->vanished)
            fs->fds_wanted = true;
}
