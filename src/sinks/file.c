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
 * Thread: the sink's worker. Several workers may append to one file: each run is one
 * O_APPEND writev of whole lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fdwriter.h"
#include "core/log.h"
#include "component.h"

enum file_fsync { FSYNC_NONE, FSYNC_EVERY_BATCH, FSYNC_INTERVAL };
static const char *const fsync_names[] = {"none", "every_batch", "interval", NULL};

struct file_conf {
    char *path;
    int encoding;
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
};

struct file_sink {
    struct mars_sink *sink;
    const struct file_conf *conf;
    struct mars_template *tpl;
    struct mars_encoder enc;
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
    char path_buf[PATH_MAX]; /* rendering scratch */
    char run_path[PATH_MAX]; /* path of the run being collected */
    uint64_t utf8_before;    /* encoder's invalid count when the request started */
    bool repaired;           /* holds the shared tail-repair marker (tail_repair_create) */
};

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
    return 0;
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

static void finish_request(struct file_sink *fs, enum mars_sink_result res)
{
    struct mars_sink_req *r = fs->req;
    fs->req = NULL;
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
        finish_request(fs, MARS_SINK_RETRY);
        return;
    }
    err = mars_fdwriter_start(&fs->fw, mars_sink_loop(fs->sink), fs->run_file->fd, fs->enc.iov,
                              fs->enc.niov, on_written, fs);
    if (err)
        finish_request(fs, MARS_SINK_RETRY);
}

static void file_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct file_sink *fs = mars_sink_state(s);
    fs->req = r;
    fs->bi = fs->ei = 0;
    fs->written = 0;
    fs->utf8_before = fs->enc.invalid_utf8;
    write_run(fs);
}

static void file_abort(struct mars_sink *s)
{
    struct file_sink *fs = mars_sink_state(s);
    if (fs->req)
        mars_fdwriter_cancel(&fs->fw);
}

/* ---- a partial last line left by a crash ---- */

#define TAIL_SCAN_MAX (64u << 20) /* how far back a torn tail is looked for */

struct tail_repair {
    const char *id, *path;
};

/* A kill -9 or power loss in the middle of a write can leave the file ending in part of a
 * line, and the next line appended would be glued to it. So before the first write of this
 * process the file is cut back to its last complete line (what was cut was never
 * acknowledged, so its events are sent again). Runs once per sink (mars_shared_acquire's
 * create, under its lock), before any instance writes: nothing else appends then. */
static void *tail_repair_create(void *arg)
{
    const struct tail_repair *t = arg;
    static char done; /* the shared object is only a marker */
    char buf[65536];
    struct stat st;
    int fd = open(t->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return &done; /* absent: nothing to repair; open errors are reported by get_file */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        (pread(fd, buf, 1, st.st_size - 1) == 1 && buf[0] == '\n')) {
        close(fd);
        return &done;
    }
    uint64_t size = (uint64_t)st.st_size, end = size, keep = UINT64_MAX;
    while (end > 0 && size - end < TAIL_SCAN_MAX && keep == UINT64_MAX) {
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
    if (keep != UINT64_MAX && ftruncate(fd, (off_t)keep) == 0) {
        mars_warn(t->id,
                  "%s ended in a partial line (%llu bytes, left by a crash): cut back "
                  "to its last complete line",
                  t->path, (unsigned long long)(size - keep));
    } else if (write(fd, "\n", 1) == 1) { /* too far back, or cannot cut: a fresh line */
        mars_warn(t->id, "%s ended in a partial line: the next line starts after it", t->path);
    } else {
        mars_error(t->id, "%s ends in a partial line that cannot be repaired: %s", t->path,
                   strerror(errno));
    }
    close(fd);
    return &done;
}

static void tail_repair_destroy(void *obj)
{
    (void)obj;
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
    /* a static path is opened now, so a bad path fails at startup, not at the first line */
    if (!mars_template_is_dynamic(fs->tpl)) {
        int rc = 0;
        struct tail_repair t = {mars_sink_id(s), conf->path};
        fs->repaired =
            mars_shared_acquire(mars_sink_obs(s), mars_sink_id(s), tail_repair_create, &t) != NULL;
        if (!get_file(fs, conf->path, &rc)) {
            mars_error(mars_sink_id(s), "cannot open %s: %s", conf->path, strerror(-rc));
            if (fs->repaired)
                mars_shared_release(mars_sink_obs(s), mars_sink_id(s), tail_repair_destroy);
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
    if (fs->repaired)
        mars_shared_release(mars_sink_obs(s), mars_sink_id(s), tail_repair_destroy);
    while (fs->nfiles > 0)
        close_file(fs, &fs->files[fs->nfiles - 1]);
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
