/*
 * scan.c - finding the files a `file` source reads, and hearing when they change.
 *
 * Scan: every glob_interval (and soon after inotify reports a create, move or delete) each
 * instance expands the include patterns, drops excluded paths, stats what is left
 * (following symlinks: a retargeted link is a new file) and keeps the regular files whose
 * (dev, inode) hash falls on its worker. A file seen at none of the matched paths has been
 * rotated away or deleted: it is still read to its end before it is closed (tail.c).
 * Patterns without `**` that share a directory part have it globbed once, and each of its
 * directories listed once for all of them; with `**` (any number of directories) the
 * directory tree under the pattern's literal prefix is walked (symlinked directories are
 * not followed, depth is capped) and each path is matched segment by segment with fnmatch.
 *
 * Watch: one inotify instance per worker watches the directories the patterns name (from
 * the first wildcard level on, and every directory a `**` walk visits) and every directory
 * that holds a matched path, before any file is in them (one watch per directory, not per
 * file; a deleted directory's watch is dropped by the kernel). A file created or moved into
 * one is tracked and opened at once when it matches (a file living shorter than
 * glob_interval is read); a modification schedules a read of that directory's open files
 * and notes the size of the one named (waiting or closed); moves out, deletes and new
 * directories bring the next scan forward. Without inotify (watch: poll, or no instance
 * left) the scan finds files and the periodic sweep's fstat finds growth.
 *
 * Thread: the instance's worker.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/grow.h"
#include "core/log.h"
#include "file_internal.h"

#define WALK_MAX_DEPTH 32

/* ---- matching ---- */

/* Matches one '/'-separated segment list against another; "**" matches any number of
 * whole segments, including none. */
static bool match_segments(const char *pat, const char *path)
{
    while (*pat == '/')
        pat++;
    while (*path == '/')
        path++;
    if (!*pat)
        return !*path;
    const char *pend = strchr(pat, '/');
    size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
    if (plen == 2 && pat[0] == '*' && pat[1] == '*') {
        const char *rest = pat + plen;
        for (const char *p = path;; p = strchr(p, '/') + 1) {
            if (match_segments(rest, p))
                return true;
            if (!strchr(p, '/'))
                return false;
        }
    }
    if (!*path)
        return false;
    const char *send = strchr(path, '/');
    size_t slen = send ? (size_t)(send - path) : strlen(path);
    char ps[NAME_MAX + 1], ss[NAME_MAX + 1];
    if (plen > NAME_MAX || slen > NAME_MAX)
        return false;
    memcpy(ps, pat, plen);
    ps[plen] = '\0';
    memcpy(ss, path, slen);
    ss[slen] = '\0';
    if (fnmatch(ps, ss, 0) != 0)
        return false;
    return match_segments(pat + plen, path + slen);
}

static bool glob_match(const char *pattern, const char *path)
{
    if ((pattern[0] == '/') != (path[0] == '/'))
        return false;
    return match_segments(pattern, path);
}

/* Does any pattern of the list (include or exclude) match path? */
static bool any_match(const struct mars_strlist *patterns, const char *path)
{
    for (size_t i = 0; i < patterns->n; i++)
        if (glob_match(patterns->v[i], path))
            return true;
    return false;
}

/* ---- one found path ---- */

static bool mine(const struct file_source *fs, const struct stat *st)
{
    uint64_t key[2] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino};
    return mars_hash64(key, sizeof(key)) % fs->nw == fs->widx;
}

static int watch_dir(struct file_source *fs, const char *dir, bool changes);
static int watch_dir_of(struct file_source *fs, const char *path, bool changes);
static void watch_pattern(struct file_source *fs, const char *pattern, bool last);

static void found(struct file_source *fs, const char *path)
{
    struct stat st;
    if (any_match(&fs->conf->exclude, path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    /* every instance watches every matched directory: a file created there may belong to
     * any worker, and each must hear of it to scan at once */
    watch_dir_of(fs, path, false);
    if (!mine(fs, &st))
        return;
    struct tfile *f = mars_file_find(fs, st.st_dev, st.st_ino);
    if (f) {
        f->seen_scan = fs->scan_gen;
        struct stat old;
        /* a rotated file matched under its new name (its old path gone, or leading to
         * another file now) */
        if (strcmp(f->path, path) != 0 && (!f->at_path || stat(f->path, &old) != 0 ||
                                           old.st_ino != f->ino || old.st_dev != f->dev)) {
            char *p = strdup(path);
            if (p) {
                free(f->path);
                f->path = p;
            }
        }
        f->at_path = true;
        f->vanished = false;
        if (f->state == TF_PENDING)
            f->size_seen = (uint64_t)st.st_size; /* what waits for it (lag, or a loss) */
        /* it grew or shrank, or its inode changed hands (another change time: a reused
         * inode of the same size): open it again, and identity.c tells which */
        if (f->state == TF_DORMANT &&
            ((uint64_t)st.st_size != f->read_off || st.st_ctim.tv_sec != f->ctime.tv_sec ||
             st.st_ctim.tv_nsec != f->ctime.tv_nsec))
            f->state = TF_PENDING;
        return;
    }
    int64_t now_s = mars_wall_ns() / 1000000000;
    struct mars_ckpt_key key = {.dev = st.st_dev, .ino = st.st_ino};
    struct mars_ckpt_rec rec;
    if (fs->conf->ignore_older > 0 && now_s - st.st_mtime > fs->conf->ignore_older / 1000000000 &&
        !mars_ckpt_get(fs->ckpt, &key, &rec))
        return;
    f = mars_file_track(fs, path, &st);
    if (!f) {
        mars_stat_add(&mars_source_stats(fs->src)->errors[MARS_ERR_MEMORY], 1);
        return;
    }
    f->seen_scan = fs->scan_gen;
    f->wd = watch_dir_of(fs, path, true); /* its size is noted while it waits for a descriptor */
    mars_debug(mars_source_id(fs->src), "found %s", path);
}

/* ---- expansion ---- */

static void walk(struct file_source *fs, const char *pattern, char *dir, size_t len, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    watch_dir(fs, dir, false); /* a file created here later is heard of at once */
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        size_t n = strlen(de->d_name);
        if (len + 1 + n >= PATH_MAX)
            continue;
        dir[len] = '/';
        memcpy(dir + len + 1, de->d_name, n + 1);
        unsigned char type = de->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && lstat(dir, &st) == 0)
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
        if (type == DT_DIR && depth < WALK_MAX_DEPTH)
            walk(fs, pattern, dir, len + 1 + n, depth + 1);
        else if ((type == DT_REG || type == DT_LNK) && glob_match(pattern, dir))
            found(fs, dir);
        dir[len] = '\0';
    }
    closedir(d);
}

static void expand(struct file_source *fs, const char *pattern)
{
    if (!strstr(pattern, "**")) {
        glob_t g;
        if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; i++)
                found(fs, g.gl_pathv[i]);
        globfree(&g);
        return;
    }
    /* walk from the last directory before the first wildcard */
    char dir[PATH_MAX];
    size_t lit = strcspn(pattern, "*?[");
    if (lit >= sizeof(dir))
        return;
    memcpy(dir, pattern, lit);
    dir[lit] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    walk(fs, pattern, dir, strlen(dir), 0);
}

/* Length of a pattern's directory part (before its last '/') when patterns can share its
 * listing: no `**`, and a directory other than the root; else 0. */
static size_t dir_part(const char *pattern)
{
    const char *slash = strrchr(pattern, '/');
    if (!slash || slash == pattern || strstr(pattern, "**"))
        return 0;
    return (size_t)(slash - pattern);
}

/* The include patterns from `first` on with the directory part of pattern `first` (marked
 * in `done`), expanded together: their directories are globbed once and each is watched,
 * then listed once, every name matched against each pattern's last segment as glob(3)
 * would (a leading dot only by a dot); a last segment without wildcards is looked up, not
 * listed. Kubernetes' N.log and N.log.<time> share theirs: with a glob per pattern, and
 * another per level to watch, a node with 100 pods had each pod's directories listed six
 * times a second per worker. `leaf` has room for every pattern. */
static void expand_group(struct file_source *fs, size_t first, bool *done, const char **leaf)
{
    const struct mars_strlist *inc = &fs->conf->include;
    const char *p0 = inc->v[first];
    size_t dl = dir_part(p0), nleaf = 0, nlit = 0;
    char dir[PATH_MAX], path[PATH_MAX];
    for (size_t j = first; j < inc->n; j++) {
        if (done[j] || dir_part(inc->v[j]) != dl || memcmp(inc->v[j], p0, dl) != 0)
            continue;
        done[j] = true;
        const char *l = inc->v[j] + dl + 1;
        if (l[strcspn(l, "*?[\\")]) /* wildcards first, literal names after them */
            leaf[nleaf++] = l;
        else
            leaf[inc->n - 1 - nlit++] = l;
    }
    if (dl >= sizeof(dir))
        return;
    memcpy(dir, p0, dl);
    dir[dl] = '\0';
    watch_pattern(fs, p0, false); /* the levels above: before the listing, as below */
    glob_t g;
    if (glob(dir, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *d = g.gl_pathv[i];
        size_t n = strlen(d);
        if (n + 2 >= sizeof(path))
            continue;
        watch_dir(fs, d, false); /* first: nothing created meanwhile is missed */
        memcpy(path, d, n);
        path[n] = '/';
        for (size_t k = 0; k < nlit; k++) {
            const char *l = leaf[inc->n - 1 - k];
            size_t m = strlen(l);
            if (n + 1 + m < sizeof(path)) {
                memcpy(path + n + 1, l, m + 1);
                found(fs, path);
            }
        }
        DIR *dd = nleaf ? opendir(d) : NULL;
        struct dirent *de;
        if (!dd)
            continue;
        while ((de = readdir(dd)) != NULL) {
            size_t m = strlen(de->d_name);
            if (n + 1 + m >= sizeof(path))
                continue;
            for (size_t k = 0; k < nleaf; k++) {
                if (fnmatch(leaf[k], de->d_name, FNM_PERIOD) == 0) {
                    memcpy(path + n + 1, de->d_name, m + 1);
                    found(fs, path);
                    break;
                }
            }
        }
        closedir(dd);
    }
    globfree(&g);
}

void mars_file_scan(struct file_source *fs)
{
    const struct mars_strlist *inc = &fs->conf->include;
    bool *grouped = calloc(inc->n ? inc->n : 1, sizeof(*grouped));
    const char **leaf = calloc(inc->n ? inc->n : 1, sizeof(*leaf));
    fs->scan_gen++;
    fs->st.scans++;
    for (size_t i = 0; i < inc->n; i++) {
        if (grouped && grouped[i])
            continue;
        if (grouped && leaf && dir_part(inc->v[i])) {
            expand_group(fs, i, grouped, leaf);
            continue;
        }
        /* a `**` pattern, one at the root or relative to no directory, or no memory */
        watch_pattern(fs, inc->v[i], true); /* first: nothing created meanwhile is missed */
        expand(fs, inc->v[i]);
    }
    free(grouped);
    free(leaf);
    for (size_t i = fs->nfiles; i-- > 0;) {
        struct tfile *f = fs->files[i];
        if (f->seen_scan != fs->scan_gen && f->state == TF_DORMANT) {
            /* closed and no longer at a matched path: nothing to read, free its memory (its
             * checkpoint stays, should it come back); an unfinished last line it was closed
             * with will not be finished here: it is emitted */
            mars_file_flush_carry(fs, f);
            if (f->batches == 0) /* else a later scan forgets it, once that is acknowledged */
                mars_file_forget(fs, f);
            continue;
        }
        if ((f->vanished || f->state == TF_PENDING) && f->seen_scan != fs->scan_gen) {
            /* it waited for a descriptor and is at no matched path now: deleted, or renamed
             * out of the patterns (its new name is not known) */
            uint64_t done = f->read_off == UINT64_MAX ? 0 : f->read_off;
            if (f->size_seen > done)
                mars_file_give_up(fs, f, f->size_seen - done,
                                  "was deleted or renamed away before it could be opened");
            mars_file_forget(fs, f);
            continue;
        }
        if (f->seen_scan == fs->scan_gen || !f->at_path)
            continue;
        mars_file_left(fs, f); /* renamed away, deleted, or its link retargeted */
        fs->st.rotations++;
        mars_debug(mars_source_id(fs->src), "%s left its path; reading it to its end", f->path);
    }
}

/* ---- inotify ---- */

static void on_inotify(struct mars_ev_op *op, int res);
static void on_notify_delay(struct mars_ev_op *op, int res);

static void arm_inotify(struct file_source *fs)
{
    mars_ev_prep_poll(&fs->iop, fs->ifd, POLLIN, on_inotify, fs);
    fs->iop_armed = mars_ev_submit(mars_source_loop(fs->src), &fs->iop) == 0;
}

/* Something changed in a watched directory: read its open files, and note the size of
 * those waiting for a descriptor (what is lost if they go before they are opened). */
static void schedule_dir(struct file_source *fs, int wd, const char *name)
{
    struct stat st;
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct tfile *f = fs->files[i];
        if (f->wd != wd && wd >= 0)
            continue;
        const char *base = strrchr(f->path, '/');
        bool named = name && base && strcmp(base + 1, name) == 0;
        /* An event names the file that changed: the other files at their paths did not (a
         * kubelet pod directory often holds a second, idle file). A file that left its
         * path may be the one named under its new name, so it is read on any event of its
         * directory; one renamed since the last scan is caught by the sweep (1 s). */
        if (name && !named && f->at_path)
            continue;
        if (f->state != TF_OPEN && named && stat(f->path, &st) == 0 && st.st_ino == f->ino &&
            st.st_dev == f->dev) {
            if (f->state == TF_PENDING)
                f->size_seen = (uint64_t)st.st_size;
            else if ((uint64_t)st.st_size != f->read_off || st.st_ctim.tv_sec != f->ctime.tv_sec ||
                     st.st_ctim.tv_nsec != f->ctime.tv_nsec)
                f->state = TF_PENDING; /* dormant, and it changed: open it again */
        }
        f->notified = true;
        mars_file_schedule(fs, f);
    }
}

/* Queues the files events named since the last time, for the read after notify_delay.
 * Most are queued already, but not one that was being read when its event came, nor one
 * a read in the meantime took off the queue: the appends after that read would otherwise
 * wait for the events the re-armed watch brings and another delay (twice the delay). */
static void queue_notified(struct file_source *fs)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct tfile *f = fs->files[i];
        if (f->notified && !f->reading) {
            f->notified = false;
            mars_file_schedule(fs, f);
        }
    }
}

/* The kernel dropped a watch (its directory is gone): a new directory of that name must
 * get a new watch. */
static void forget_dir(struct file_source *fs, int wd)
{
    for (size_t i = 0; i < fs->ndirs; i++) {
        if (fs->dirs[i].wd == wd) {
            free(fs->dirs[i].path);
            fs->dirs[i] = fs->dirs[--fs->ndirs];
            free(fs->dir_index); /* rebuilt at the next lookup */
            fs->dir_index = NULL;
            return;
        }
    }
}

/* The path of `name` in the directory watched as wd; false when wd is not one of ours or
 * the path does not fit. */
static bool event_path(const struct file_source *fs, int wd, const char *name, char *path,
                       size_t size)
{
    for (size_t i = 0; i < fs->ndirs; i++) {
        if (fs->dirs[i].wd != wd)
            continue;
        int n = snprintf(path, size, "%s/%s",
                         strcmp(fs->dirs[i].path, "/") == 0 ? "" : fs->dirs[i].path, name);
        return n >= 0 && (size_t)n < size;
    }
    return false;
}

/* A file appeared in a watched directory (created, or moved in): when it is one of ours,
 * track and open it at once, so a file that lives shorter than glob_interval is read. */
static bool appeared(struct file_source *fs, int wd, const char *name)
{
    char path[PATH_MAX];
    if (!event_path(fs, wd, name, path, sizeof(path)) || !any_match(&fs->conf->include, path))
        return false;
    found(fs, path);
    return true;
}

/* Does a file that went from a watched directory (deleted, or moved out) concern us: a
 * path the patterns match, or a file tracked there under that name (one that left its
 * matched path keeps its new one)? The levels above the files are watched too (to hear of
 * new directories), and /tmp or /var/log see many files come and go that are none of
 * ours: each of those used to cost a scan. */
static bool went_ours(const struct file_source *fs, int wd, const char *name)
{
    char path[PATH_MAX];
    if (!event_path(fs, wd, name, path, sizeof(path)))
        return true; /* cannot tell: let the scan look */
    if (any_match(&fs->conf->include, path))
        return true;
    for (size_t i = 0; i < fs->nfiles; i++) {
        const char *base = strrchr(fs->files[i]->path, '/');
        if (fs->files[i]->wd == wd && base && strcmp(base + 1, name) == 0)
            return true;
    }
    return false;
}

static void on_inotify(struct mars_ev_op *op, int res)
{
    struct file_source *fs = op->data;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false, structural = false;

    fs->iop_armed = false;
    if (res < 0 || fs->stopping) {
        mars_file_maybe_finish(fs);
        return;
    }
    ssize_t n;
    /* one read takes every queued event that fits: a short one drained the queue */
    bool more = true;
    while (more && (n = read(fs->ifd, buf, sizeof(buf))) > 0) {
        more = (size_t)n > sizeof(buf) - sizeof(struct inotify_event) - NAME_MAX - 1;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            bool foreign = false; /* a file that came or went and is none of ours */
            if (ev->mask & IN_IGNORED)
                forget_dir(fs, ev->wd);
            if (ev->mask & IN_Q_OVERFLOW) {
                schedule_dir(fs, -1, NULL);
                rescan = true;
            } else if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && !(ev->mask & IN_ISDIR) &&
                       ev->len > 0) {
                foreign = !appeared(fs, ev->wd, ev->name);
            } else if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) {
                /* a file went (or a directory came): the scan tells, unless it was a file
                 * that is none of ours */
                if ((ev->mask & IN_ISDIR) || ev->len == 0 || went_ours(fs, ev->wd, ev->name))
                    rescan = true;
                else
                    foreign = true;
            }
            if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB))
                schedule_dir(fs, ev->wd, ev->len ? ev->name : NULL);
            if ((ev->mask & ~(uint32_t)(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)) && !foreign)
                structural = true;
            p += sizeof(*ev) + ev->len;
        }
    }
    mars_file_open_pending(fs); /* what appeared, and dormant files that changed */
    if (rescan)
        mars_file_scan_soon(fs);
    /* Appends that come as many small writes are read together: after events that only
     * say files changed, those files wait notify_delay for their read and the watch is
     * re-armed only then (the kernel merges a file's repeated events meanwhile), so a
     * writer's many small appends cost a wakeup per delay instead of one each, on every
     * worker watching the directory. A file created in that window is heard of when it
     * ends (at most notify_delay later); events that say files came or went are acted on
     * at once. */
    if (fs->conf->notify_delay > 0 && !structural) {
        mars_ev_prep_timer(&fs->dop, fs->conf->notify_delay, on_notify_delay, fs);
        fs->dop_armed = mars_ev_submit(mars_source_loop(fs->src), &fs->dop) == 0;
        if (fs->dop_armed)
            return;
    }
    queue_notified(fs);
    mars_file_pump(fs);
    arm_inotify(fs);
}

static void on_notify_delay(struct mars_ev_op *op, int res)
{
    struct file_source *fs = op->data;
    fs->dop_armed = false;
    if (res == -ECANCELED || fs->stopping) {
        mars_file_maybe_finish(fs);
        return;
    }
    queue_notified(fs);
    mars_file_pump(fs);
    arm_inotify(fs);
}

int mars_file_watch_init(struct file_source *fs)
{
    fs->ifd = -1;
    if (fs->conf->watch != WATCH_INOTIFY)
        return 0;
    fs->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fs->ifd < 0) {
        mars_warn(mars_source_id(fs->src),
                  "inotify unavailable (%s): polling file sizes instead (watch: poll)",
                  strerror(errno));
        return 0;
    }
    arm_inotify(fs);
    return 0;
}

/* What every watch hears: files coming and going, so each instance scans at once. */
#define WATCH_STRUCTURE (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)
/* What a directory holding files of this instance hears too: their writes. Another
 * worker's files write there all the time: without them in the mask, an instance is not
 * woken up for every append of files it does not read. */
#define WATCH_CHANGES (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)

/* The watched directories by path: every scan looks up each directory it lists and the
 * directory of each file it finds (a node with 100 pods: ~500 lookups among ~300 paths a
 * second per worker), so a hash index, not a walk over the list. */
static void dir_index_put(struct file_source *fs, size_t i)
{
    size_t mask = fs->dir_index_cap - 1;
    size_t k = mars_hash64(fs->dirs[i].path, strlen(fs->dirs[i].path)) & mask;
    while (fs->dir_index[k])
        k = (k + 1) & mask;
    fs->dir_index[k] = (uint32_t)i + 1;
}

/* Returns the index of dir in fs->dirs, or -1. */
static long dir_find(struct file_source *fs, const char *dir)
{
    if (!fs->dir_index || fs->ndirs * 2 >= fs->dir_index_cap) {
        size_t cap = 16;
        while (cap <= fs->ndirs * 2)
            cap *= 2;
        free(fs->dir_index);
        fs->dir_index = calloc(cap, sizeof(*fs->dir_index));
        fs->dir_index_cap = fs->dir_index ? cap : 0;
        for (size_t i = 0; fs->dir_index && i < fs->ndirs; i++)
            dir_index_put(fs, i);
    }
    if (!fs->dir_index) { /* no memory for it: the list */
        for (size_t i = 0; i < fs->ndirs; i++)
            if (strcmp(fs->dirs[i].path, dir) == 0)
                return (long)i;
        return -1;
    }
    size_t mask = fs->dir_index_cap - 1;
    for (size_t k = mars_hash64(dir, strlen(dir)) & mask; fs->dir_index[k]; k = (k + 1) & mask)
        if (strcmp(fs->dirs[fs->dir_index[k] - 1].path, dir) == 0)
            return (long)fs->dir_index[k] - 1;
    return -1;
}

/* Watches directory dir once per instance, for changes of its files too when `changes`
 * (a file of this instance is there); returns its watch or -1. */
static int watch_dir(struct file_source *fs, const char *dir, bool changes)
{
    if (fs->ifd < 0)
        return -1;
    long at = dir_find(fs, dir);
    if (at >= 0) {
        struct file_dir *d = &fs->dirs[at];
        if (changes && !d->changes &&
            inotify_add_watch(fs->ifd, dir, WATCH_STRUCTURE | WATCH_CHANGES | IN_MASK_ADD) >= 0)
            d->changes = true;
        return d->wd;
    }
    uint32_t mask = WATCH_STRUCTURE | (changes ? WATCH_CHANGES : 0);
    int wd = inotify_add_watch(fs->ifd, dir, mask | IN_MASK_ADD);
    if (wd < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            MARS_LOG_RL(MARS_LOG_WARN, mars_source_id(fs->src),
                        "cannot watch %s (%s): its files are polled", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < fs->ndirs; i++) {
        if (fs->dirs[i].wd == wd) {
            /* the same directory under another name (a link): one entry per watch */
            fs->dirs[i].changes |= changes;
            return wd;
        }
    }
    char *copy = strdup(dir);
    if (!copy || mars_grow(&fs->dirs, &fs->dirs_cap, fs->ndirs + 1, sizeof(*fs->dirs))) {
        free(copy);
        return wd;
    }
    fs->dirs[fs->ndirs++] = (struct file_dir){.path = copy, .wd = wd, .changes = changes};
    if (fs->dir_index && fs->ndirs * 2 < fs->dir_index_cap)
        dir_index_put(fs, fs->ndirs - 1);
    else { /* grown past half full: rebuilt larger at the next lookup */
        free(fs->dir_index);
        fs->dir_index = NULL;
    }
    return wd;
}

/* Watches the directory of path; returns its watch or -1. */
static int watch_dir_of(struct file_source *fs, const char *path, bool changes)
{
    char dir[PATH_MAX];
    if (fs->ifd < 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return watch_dir(fs, dir, changes);
}

/* Watches the directories a pattern names, before any file is in them, so a file created
 * there is heard of at once: the directory part of the pattern, and each level of it from
 * its first wildcard on (a new pod directory under /var/log/pods/STAR/STAR is heard of too).
 * Below a `**` the walk watches what it visits. Without `last`, the directory part itself
 * is left to the caller (it lists those directories anyway). */
static void watch_pattern(struct file_source *fs, const char *pattern, bool last)
{
    char dir[PATH_MAX];
    if (fs->ifd < 0 || strlen(pattern) >= sizeof(dir))
        return;
    strcpy(dir, pattern);
    char *star2 = strstr(dir, "**");
    if (star2)
        *star2 = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    /* from the directory that holds the first wildcard segment on */
    size_t from = strcspn(dir, "*?[");
    while (from > 0 && dir[from] != '/')
        from--;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        if (!*p && !last)
            break;
        if ((size_t)(p - dir) >= from || !*p) {
            char c = *p;
            *p = '\0';
            glob_t g;
            if (glob(dir, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                    watch_dir(fs, g.gl_pathv[i], false);
            globfree(&g);
            *p = c;
        }
        if (!*p)
            break;
    }
}

void mars_file_watch_add(struct file_source *fs, struct tfile *f)
{
    f->wd = watch_dir_of(fs, f->path, true);
}

void mars_file_watch_fini(struct file_source *fs)
{
    if (fs->ifd >= 0)
        close(fs->ifd);
    fs->ifd = -1;
    for (size_t i = 0; i < fs->ndirs; i++)
        free(fs->dirs[i].path);
    free(fs->dirs);
    fs->dirs = NULL;
    fs->ndirs = fs->dirs_cap = 0;
    free(fs->dir_index);
    fs->dir_index = NULL;
    fs->dir_index_cap = 0;
}
