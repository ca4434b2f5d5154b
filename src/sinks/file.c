/*
 * file.c - the `file` sink: appends events to files whose path is a template
 * (`/var/log/out/%Y-%m-%d/{{ host }}.log`), as text lines or JSON lines.
 *
 * A request is written as runs: consecutive events that render to the same path are
 * encoded together and appended with one writev through the ev loop (fdwriter), then the
 * next run starts from the completion. A static path is one run per request; a path with
 * only time parts is re-rendered once per second of event time, not per event. Files stay
 * open (O_APPEND) in a small cache of `max_open_files`, least recently used closed first;
 * missing parent directories are created. A failed open or write is retried by the engine
 * (nothing is dropped); `fsync` decides when data is forced to disk before the request is
 * acknowledged.
 *
 * Whole lines only: a file never keeps part of a line. The first time this process opens a
 * path (static or rendered) it cuts a partial last line left by a crash (see tail repair);
 * a write that fails part-way (ENOSPC, EIO) is cut back to where its run began before the
 * engine retries, and the retry resumes at that run (sink_data), so the runs already
 * written are not written twice. Both count in mars_file_sink_fragments_cut_total.
 *
 * Thread: the sink's worker. Several workers may append to one file: each run is one
 * O_APPEND writev of whole lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fdwriter.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"

enum file_fsync { FSYNC_NONE, FSYNC_EVERY_BATCH, FSYNC_INTERVAL };
static const char *const fsync_names[] = {"none", "every_batch", "interval", NULL};

struct file_conf {
    char *path;
    int encoding;
    struct mars_strlist fields, except_fields;
    int fsync;
    int64_t fsync_interval;
    int64_t max_open_files;
    bool mkdir;
};

#define OFF(f) offsetof(struct file_conf, f)
static const struct mars_opt file_options[] = {
    {.name = "path",
     .type = MARS_OPT_STRING,
     .offset = OFF(path),
     .flags = MARS_OPT_REQUIRED,
     .desc = "File to append to; strftime parts (%Y, %m, %d, %H) use the event time in UTC and "
             "{{ field }} parts (message, host) the event's fields, with '/' and a leading '.' "
             "replaced by '_' so event data cannot leave the directory."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = OFF(encoding),
     .def = "text",
     .choices = mars_encoding_names,
     .desc = "text writes each message as a line; json and ndjson write one JSON object per "
             "line."},
    MARS_ENCODE_FIELDS_OPTIONS(struct file_conf, fields, except_fields),
    {.name = "fsync",
     .type = MARS_OPT_ENUM,
     .offset = OFF(fsync),
     .def = "none",
     .choices = fsync_names,
     .desc = "none leaves flushing to the kernel; every_batch fsyncs before acknowledging each "
             "request; interval fsyncs at most every fsync_interval and at shutdown."},
    {.name = "fsync_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(fsync_interval),
     .def = "1s",
     .min = 1000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "With fsync: interval, the longest time written data may stay unsynced while "
             "writes continue."},
    {.name = "max_open_files",
     .type = MARS_OPT_INT,
     .offset = OFF(max_open_files),
     .def = "64",
     .min = 1,
     .max = 65536,
     .desc = "Files kept open at once; the least recently used closes "
             "first."},
    {.name = "mkdir",
     .type = MARS_OPT_BOOL,
     .offset = OFF(mkdir),
     .def = "true",
     .desc = "Create missing parent directories of the path."},
    {.name = NULL},
};

struct open_file {
    char *path;
    int fd;
    int64_t last_use;
    bool dirty;
    bool tracked; /* counted in the sink's table of open paths (struct file_paths) */
};

/* One per sink, shared by its instances on every worker (mars_shared_acquire): the paths
 * open in any of them. A path's tail is repaired when it enters the table, that is when
 * no instance of this sink has it open, so no write of this sink is in flight on it. */
struct file_paths {
    pthread_mutex_t lock;
    struct path_ref {
        char *path;
        unsigned refs;
    } * v;
    size_t n, cap;
    const char *id;
};

/* Where a retried request resumes (sink_data): the run that failed. */
struct file_resume {
    uint32_t bi, ei;
    uint64_t written;
};

struct file_sink {
    struct mars_sink *sink;
    const struct file_conf *conf;
    struct mars_template *tpl;
    struct mars_encoder enc;
    struct mars_field_select sel;
    struct mars_fdwriter fw;
    struct open_file *files;
    size_t nfiles;
    int64_t last_sync;
    /* request being written */
    struct mars_sink_req *req;
    uint32_t bi, ei; /* next event to write */
    uint64_t written;
    struct open_file *run_file;
    /* time-only template cache */
    int64_t cached_sec;
    char cached_path[PATH_MAX];
    char path_buf[PATH_MAX];  /* rendering scratch */
    char run_path[PATH_MAX];  /* path of the run being collected */
    uint64_t utf8_before;     /* encoder's invalid count when the request started */
    uint64_t run_start;       /* file size when the run's write started */
    uint32_t run_bi, run_ei;  /* first event of the run being written */
    struct file_paths *paths; /* shared; NULL when it could not be created */
    struct mars_mseries *fragments;
};

static void *paths_create(void *arg);
static void paths_destroy(void *obj);
static bool paths_enter(struct file_sink *fs, const char *path);
static void paths_leave(struct file_sink *fs, const char *path);
static void cut_failed_run(struct file_sink *fs, struct open_file *f, uint64_t written);

static int file_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct file_conf *c = conf;
    char err[160];
    struct mars_template *t =
        c->path ? mars_template_compile(c->path, MARS_TEMPLATE_PATH, err, sizeof(err)) : NULL;
    if (c->path && !t) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "path", NULL);
        mars_diag_add(diag, n->file, n->line, n->col, "option 'path': %s", err);
        return -EINVAL;
    }
    mars_template_destroy(t);
    return mars_check_field_select(&c->fields, &c->except_fields, node, diag);
}

static int mkdir_parents(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

static void close_file(struct file_sink *fs, struct open_file *f)
{
    if (f->dirty && fs->conf->fsync != FSYNC_NONE)
        fdatasync(f->fd);
    close(f->fd);
    if (f->tracked)
        paths_leave(fs, f->path);
    free(f->path);
    *f = fs->files[--fs->nfiles];
}

static struct open_file *get_file(struct file_sink *fs, const char *path, int *err)
{
    int64_t now = mars_ev_now(mars_sink_loop(fs->sink));
    for (size_t i = 0; i < fs->nfiles; i++) {
        if (strcmp(fs->files[i].path, path) == 0) {
            fs->files[i].last_use = now;
            return &fs->files[i];
        }
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && fs->conf->mkdir && mkdir_parents(path) == 0)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    if (fs->nfiles == (size_t)fs->conf->max_open_files) {
        size_t lru = 0;
        for (size_t i = 1; i < fs->nfiles; i++)
            if (fs->files[i].last_use < fs->files[lru].last_use)
                lru = i;
        close_file(fs, &fs->files[lru]);
    }
    struct open_file *f = &fs->files[fs->nfiles];
    *f = (struct open_file){.path = strdup(path), .fd = fd, .last_use = now};
    if (!f->path) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    f->tracked = paths_enter(fs, path);
    fs->nfiles++;
    return f;
}

static const char *path_for(struct file_sink *fs, const struct mars_event *ev)
{
    if (!mars_template_is_dynamic(fs->tpl))
        return fs->conf->path;
    int64_t sec = ev->ts_ns / 1000000000;
    if (mars_template_time_only(fs->tpl)) {
        if (sec != fs->cached_sec || !fs->cached_path[0]) {
            if (mars_template_render(fs->tpl, ev, fs->cached_path, sizeof(fs->cached_path)) < 0)
                return NULL;
            fs->cached_sec = sec;
        }
        return fs->cached_path;
    }
    if (mars_template_render(fs->tpl, ev, fs->path_buf, sizeof(fs->path_buf)) < 0)
        return NULL;
    return fs->path_buf;
}

static void sync_files(struct file_sink *fs)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        if (fs->files[i].dirty) {
            fdatasync(fs->files[i].fd);
            fs->files[i].dirty = false;
        }
    }
    fs->last_sync = mars_ev_now(mars_sink_loop(fs->sink));
}

/* Ends the request. A retry keeps where to resume: (bi, ei) and the bytes written so far. */
static void finish_request(struct file_sink *fs, enum mars_sink_result res)
{
    struct mars_sink_req *r = fs->req;
    fs->req = NULL;
    if (res == MARS_SINK_RETRY && (fs->bi || fs->ei)) {
        if (!r->sink_data)
            r->sink_data = malloc(sizeof(struct file_resume));
        if (r->sink_data)
            *(struct file_resume *)r->sink_data =
                (struct file_resume){.bi = fs->bi, .ei = fs->ei, .written = fs->written};
    } else if (res != MARS_SINK_RETRY) {
        free(r->sink_data);
        r->sink_data = NULL;
    }
    if (fs->enc.invalid_utf8 > fs->utf8_before)
        mars_stat_add(&mars_sink_stats(fs->sink)->errors[MARS_ERR_INVALID_UTF8],
                      fs->enc.invalid_utf8 - fs->utf8_before);
    if (res == MARS_SINK_OK) {
        int64_t now = mars_ev_now(mars_sink_loop(fs->sink));
        if (fs->conf->fsync == FSYNC_EVERY_BATCH ||
            (fs->conf->fsync == FSYNC_INTERVAL && now - fs->last_sync >= fs->conf->fsync_interval))
            sync_files(fs);
    }
    mars_sink_done(fs->sink, r, res, res == MARS_SINK_OK ? fs->written : 0);
}

static void write_run(struct file_sink *fs);

static void on_written(struct mars_fdwriter *fw, int err)
{
    struct file_sink *fs = fw->data;
    if (err) {
        if (err == -ECANCELED) {
            finish_request(fs, MARS_SINK_ABORTED);
            return;
        }
        mars_stat_add(&mars_sink_stats(fs->sink)->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(fs->sink), "write to %s failed: %s",
                    fs->run_file->path, strerror(-err));
        cut_failed_run(fs, fs->run_file, fw->written);
        fs->bi = fs->run_bi;
        fs->ei = fs->run_ei;
        finish_request(fs, MARS_SINK_RETRY);
        return;
    }
    fs->written += fw->written;
    fs->run_file->dirty = true;
    write_run(fs);
}

/* Collects the run of events starting at (bi, ei) that share one path, encodes it, and
 * starts its write. Finishes the request when no event is left. */
static void write_run(struct file_sink *fs)
{
    struct mars_sink_req *r = fs->req;
    const char *path = NULL;
    int err = 0;

    while (fs->bi < r->n && fs->ei >= r->batches[fs->bi]->n) {
        fs->bi++;
        fs->ei = 0;
    }
    if (fs->bi >= r->n) {
        finish_request(fs, MARS_SINK_OK);
        return;
    }
    mars_encoder_reset(&fs->enc);
    fs->run_bi = fs->bi;
    fs->run_ei = fs->ei;
    while (fs->bi < r->n) {
        const struct mars_batch *b = r->batches[fs->bi];
        uint32_t start = fs->ei;
        for (; fs->ei < b->n; fs->ei++) {
            const char *p = path_for(fs, &b->ev[fs->ei]);
            if (!p)
                p = fs->conf->path; /* a path too long to render: keep the line */
            if (!path) {
                snprintf(fs->run_path, sizeof(fs->run_path), "%s", p);
                path = fs->run_path;
            } else if (strcmp(p, path) != 0) {
                break;
            }
        }
        if (mars_encode_events(&fs->enc, fs->conf->encoding, b->ev + start, fs->ei - start) < 0) {
            fs->bi = fs->run_bi;
            fs->ei = fs->run_ei;
            finish_request(fs, MARS_SINK_RETRY);
            return;
        }
        if (fs->ei < b->n)
            break; /* path changed inside this batch */
        fs->bi++;
        fs->ei = 0;
    }
    mars_encoder_finish(&fs->enc, fs->conf->encoding);
    fs->run_file = get_file(fs, path, &err);
    if (!fs->run_file) {
        mars_stat_add(&mars_sink_stats(fs->sink)->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(fs->sink), "cannot open %s: %s", path,
                    strerror(-err));
        fs->bi = fs->run_bi;
        fs->ei = fs->run_ei;
        finish_request(fs, MARS_SINK_RETRY);
        return;
    }
    struct stat st;
    fs->run_start = fstat(fs->run_file->fd, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
    err = mars_fdwriter_start(&fs->fw, mars_sink_loop(fs->sink), fs->run_file->fd, fs->enc.iov,
                              fs->enc.niov, on_written, fs);
    if (err) {
        fs->bi = fs->run_bi;
        fs->ei = fs->run_ei;
        finish_request(fs, MARS_SINK_RETRY);
    }
}

static void file_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct file_sink *fs = mars_sink_state(s);
    const struct file_resume *at = r->sink_data;
    fs->req = r;
    fs->bi = at ? at->bi : 0;
    fs->ei = at ? at->ei : 0;
    fs->written = at ? at->written : 0;
    fs->utf8_before = fs->enc.invalid_utf8;
    write_run(fs);
}

static void file_abort(struct mars_sink *s)
{
    struct file_sink *fs = mars_sink_state(s);
    if (fs->req)
        mars_fdwriter_cancel(&fs->fw);
}

/* ---- whole lines only ---- */

#define TAIL_SCAN_MAX (64u << 20) /* how far back a torn tail is looked for */

static void count_fragment(struct file_sink *fs)
{
    if (fs->fragments)
        mars_mseries_add(fs->fragments, mars_sink_shard(fs->sink), 1);
}

/* Cuts the regular file open read-write as fd back to its last complete line. Returns the
 * bytes cut (0: it was empty or ended in a newline), or -1 when no newline was found
 * within TAIL_SCAN_MAX or the cut failed: then a newline was appended (if that worked) so
 * the next line starts fresh. *size is the size found. */
static int64_t cut_partial_line(int fd, uint64_t *size)
{
    char buf[65536];
    struct stat st;
    *size = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        (pread(fd, buf, 1, st.st_size - 1) == 1 && buf[0] == '\n'))
        return 0;
    uint64_t end = (uint64_t)st.st_size, keep = UINT64_MAX;
    *size = end;
    while (end > 0 && *size - end < TAIL_SCAN_MAX && keep == UINT64_MAX) {
        size_t n = end < sizeof(buf) ? (size_t)end : sizeof(buf);
        if (pread(fd, buf, n, (off_t)(end - n)) != (ssize_t)n)
            break;
        for (size_t i = n; i-- > 0;)
            if (buf[i] == '\n') {
                keep = end - n + i + 1;
                break;
            }
        end -= n;
    }
    if (keep == UINT64_MAX && end == 0)
        keep = 0; /* the whole file is one unfinished line */
    if (keep != UINT64_MAX && ftruncate(fd, (off_t)keep) == 0)
        return (int64_t)(*size - keep);
    /* too far back, or the cut failed: start the next line fresh instead */
    ssize_t w = pwrite(fd, "\n", 1, (off_t)*size);
    (void)w;
    return -1;
}

/* A kill -9 or power loss in the middle of a write can leave the file ending in part of a
 * line, and the next line appended would be glued to it. So when this sink first opens a
 * path, the file is cut back to its last complete line (what was cut was never
 * acknowledged, so its events are sent again). Runs under the paths lock. */
static void repair_tail(struct file_sink *fs, const char *path)
{
    uint64_t size;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return; /* absent: nothing to repair; open errors are reported by get_file */
    int64_t cut = cut_partial_line(fd, &size);
    close(fd);
    if (cut == 0)
        return;
    count_fragment(fs);
    if (cut > 0)
        mars_warn(mars_sink_id(fs->sink),
                  "%s ended in a partial line (%lld bytes, left by a crash): cut back to its "
                  "last complete line",
                  path, (long long)cut);
    else
        mars_warn(mars_sink_id(fs->sink),
                  "%s ended in a partial line: the next line starts after it", path);
}

/* A write that failed part-way left `written` bytes of the run, likely ending inside a
 * line: cut the file back to where the run began, so the retry writes the run again whole.
 * If another writer appended meanwhile (another worker, another process), only a partial
 * last line is cut. */
static void cut_failed_run(struct file_sink *fs, struct open_file *f, uint64_t written)
{
    struct stat st;
    const char *id = mars_sink_id(fs->sink);
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    if (fs->run_start != UINT64_MAX && (uint64_t)st.st_size == fs->run_start + written) {
        if (written == 0)
            return;
        if (ftruncate(f->fd, (off_t)fs->run_start) == 0) {
            count_fragment(fs);
            MARS_LOG_RL(MARS_LOG_WARN, id,
                        "%s: cut the %llu bytes of the failed write back; the retry writes "
                        "them whole",
                        f->path, (unsigned long long)written);
        } else {
            MARS_LOG_RL(MARS_LOG_ERROR, id, "%s: cannot cut a failed write back: %s", f->path,
                        strerror(errno));
        }
        return;
    }
    uint64_t size;
    int fd = open(f->path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    int64_t cut = fd >= 0 ? cut_partial_line(fd, &size) : 0;
    if (fd >= 0)
        close(fd);
    if (cut != 0) {
        count_fragment(fs);
        MARS_LOG_RL(MARS_LOG_WARN, id, "%s: cut a partial line of a failed write (%lld bytes)",
                    f->path, (long long)cut);
    }
}

static void *paths_create(void *arg)
{
    struct file_paths *p = calloc(1, sizeof(*p));
    if (p && pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (p)
        p->id = arg;
    return p;
}

static void paths_destroy(void *obj)
{
    struct file_paths *p = obj;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].path);
    free(p->v);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Counts path open in this instance; the first instance to open it repairs its tail.
 * Returns false (nothing to leave later) when the table is unavailable. */
static bool paths_enter(struct file_sink *fs, const char *path)
{
    struct file_paths *p = fs->paths;
    bool ok = false;
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].path, path) == 0) {
            p->v[i].refs++;
            ok = true;
            goto out;
        }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct path_ref *v = realloc(p->v, cap * sizeof(*v));
        if (!v)
            goto out;
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n].path = strdup(path)))
        goto out;
    p->v[p->n++].refs = 1;
    repair_tail(fs, path);
    ok = true;
out:
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static void paths_leave(struct file_sink *fs, const char *path)
{
    struct file_paths *p = fs->paths;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].path, path) == 0) {
            if (--p->v[i].refs == 0) {
                free(p->v[i].path);
                p->v[i] = p->v[--p->n];
            }
            break;
        }
    pthread_mutex_unlock(&p->lock);
}

static struct mars_mseries *fragments_series(struct mars_sink *s)
{
    static const char *const labels[] = {"component_id", NULL};
    struct mars_metrics *m = mars_obs_metrics(mars_sink_obs(s));
    struct mars_mfamily *f =
        m ? mars_metrics_family(
                m,
                &(struct mars_mfamily_desc){
                    .name = "mars_file_sink_fragments_cut_total",
                    .help = "Partial lines the file sink cut from its files: left by a crash "
                            "(found at first open) or by a write that failed part-way.",
                    .type = MARS_MT_COUNTER,
                    .labels = labels})
          : NULL;
    const char *values[] = {mars_sink_id(s), NULL};
    return f ? mars_mfamily_series(f, values) : NULL;
}

static int file_init(struct mars_sink *s)
{
    const struct file_conf *conf = mars_sink_conf(s);
    char err[160];
    struct file_sink *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->sink = s;
    fs->conf = conf;
    mars_field_select_init(&fs->sel, &conf->fields, &conf->except_fields);
    fs->enc.select = &fs->sel;
    fs->files = calloc((size_t)conf->max_open_files, sizeof(*fs->files));
    fs->tpl = mars_template_compile(conf->path, MARS_TEMPLATE_PATH, err, sizeof(err));
    fs->cached_sec = -1;
    if (!fs->files || !fs->tpl) {
        mars_template_destroy(fs->tpl);
        free(fs->files);
        free(fs);
        return -ENOMEM;
    }
    fs->last_sync = mars_ev_now(mars_sink_loop(s));
    mars_sink_set_state(s, fs);
    fs->fragments = fragments_series(s);
    fs->paths = mars_shared_acquire(mars_sink_obs(s), mars_sink_id(s), paths_create,
                                    (void *)mars_sink_id(s));
    if (!fs->paths)
        mars_warn(mars_sink_id(s), "partial lines left by a crash will not be repaired: out of "
                                   "memory");
    /* a static path is opened now, so a bad path fails at startup, not at the first line */
    if (!mars_template_is_dynamic(fs->tpl)) {
        int rc = 0;
        if (!get_file(fs, conf->path, &rc)) {
            mars_error(mars_sink_id(s), "cannot open %s: %s", conf->path, strerror(-rc));
            if (fs->paths)
                mars_shared_release(mars_sink_obs(s), mars_sink_id(s), paths_destroy);
            mars_template_destroy(fs->tpl);
            free(fs->files);
            free(fs);
            return rc;
        }
    }
    return 0;
}

static void file_destroy(struct mars_sink *s)
{
    struct file_sink *fs = mars_sink_state(s);
    while (fs->nfiles > 0)
        close_file(fs, &fs->files[fs->nfiles - 1]);
    if (fs->paths)
        mars_shared_release(mars_sink_obs(s), mars_sink_id(s), paths_destroy);
    mars_template_destroy(fs->tpl);
    mars_encoder_fini(&fs->enc);
    free(fs->files);
    free(fs);
}

const struct mars_component_desc mars_sink_file = {
    .name = "file",
    .description = "Appends events to files named by a path template, as text or JSON lines.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = file_options,
    .conf_size = sizeof(struct file_conf),
    .check = file_check,
    .sink = {.init = file_init, .write = file_write, .abort = file_abort, .destroy = file_destroy},
};
