/*
 * file.c - the `file` source: tails files matched by globs, with nothing lost or skipped
 * across rotation, truncation, restarts and crashes (DESIGN.md §5).
 *
 * One instance per worker (MARS_DESC_PER_WORKER); each owns the files whose (dev, inode)
 * hashes to its worker (scan.c) and reads them (tail.c). This file holds the options, the
 * instance life cycle and the tick: a timer that rescans every glob_interval (sooner after
 * inotify reports new files), sweeps open files (growth, truncation, line_timeout, closing
 * drained files, opening waiting ones) every POLL_TICK (watch: poll) or TICK (inotify), and
 * in --once mode finishes the source once everything that existed is read.
 *
 * Checkpoints: a store per source id in data_dir, shared by the instances and written by
 * its own thread every checkpoint_interval and at shutdown (engine/checkpoint.c).
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "file_internal.h"
#include "component.h"

#define TICK_NS      1000000000LL
#define POLL_TICK_NS 250000000LL

static const char *const read_from_names[] = {"beginning", "end", NULL};
static const char *const watch_names[] = {"inotify", "poll", NULL};
static const char *const charset_names[] = {"utf-8", "binary", NULL};

#define OFF(f) offsetof(struct file_conf, f)
static const struct mars_opt file_options[] = {
    {.name = "include",
     .type = MARS_OPT_LIST,
     .offset = OFF(include),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Glob patterns of files to read; `**` matches any number of directories."},
    {.name = "exclude",
     .type = MARS_OPT_LIST,
     .offset = OFF(exclude),
     .desc = "Glob patterns of paths to leave out (for example rotated or compressed files)."},
    {.name = "read_from",
     .type = MARS_OPT_ENUM,
     .offset = OFF(read_from),
     .def = "beginning",
     .choices = read_from_names,
     .desc = "Where to start in files that exist when this source first starts (no "
             "checkpoints yet); files found later are always read from their beginning."},
    {.name = "max_line_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_line_bytes),
     .def = "1MiB",
     .min = 16,
     .max = 64 << 20,
     .desc = "Longest line kept whole; longer lines are cut as `oversize` says and counted."},
    {.name = "oversize",
     .type = MARS_OPT_ENUM,
     .offset = OFF(oversize),
     .def = "split",
     .choices = mars_oversize_names,
     .desc = "A line longer than max_line_bytes is split into pieces, or truncated (the rest "
             "is skipped); either way the file keeps being read."},
    {.name = "line_delimiter",
     .type = MARS_OPT_STRING,
     .offset = OFF(line_delimiter),
     .def = "\n",
     .desc = "The single byte that ends a line."},
    {.name = "glob_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(glob_interval),
     .def = "1s",
     .min = 10000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "How often the include patterns are expanded again to find new files."},
    {.name = "max_open_files",
     .type = MARS_OPT_INT,
     .offset = OFF(max_open_files),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .desc = "Most files open at once (split over the workers); more wait their turn, and "
             "drained idle files are closed first. A file is never closed with unread data."},
    {.name = "oldest_first",
     .type = MARS_OPT_BOOL,
     .offset = OFF(oldest_first),
     .def = "false",
     .desc = "When files wait for a descriptor, open the least recently modified first."},
    {.name = "ignore_older",
     .type = MARS_OPT_DURATION,
     .offset = OFF(ignore_older),
     .def = "0s",
     .desc = "Skip files not modified for this long that have no checkpoint; 0 reads all."},
    {.name = "fingerprint",
     .type = MARS_OPT_SIZE,
     .offset = OFF(fingerprint),
     .def = "256B",
     .min = 0,
     .max = 4096,
     .desc = "Bytes at the head of a file hashed into its identity, so a reused inode is not "
             "taken for the old file."},
    {.name = "checkpoint_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(checkpoint_interval),
     .def = "1s",
     .min = 10000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "How often acknowledged positions are written (and fsync'd) to data_dir; they "
             "are also written at shutdown."},
    {.name = "watch",
     .type = MARS_OPT_ENUM,
     .offset = OFF(watch),
     .def = "inotify",
     .choices = watch_names,
     .desc = "inotify hears changes at once; poll checks sizes every 250ms (NFS, or hosts out "
             "of inotify instances)."},
    {.name = "notify_delay",
     .type = MARS_OPT_DURATION,
     .offset = OFF(notify_delay),
     .def = "40ms",
     .min = 0,
     .max = 1000000000,
     .desc = "With inotify, how long a file that changed waits before it is read, so that "
             "a writer's many small appends are read together (one wakeup instead of one "
             "per append); 0 reads at once. Files being read out are not delayed."},
    {.name = "charset",
     .type = MARS_OPT_ENUM,
     .offset = OFF(charset),
     .def = "utf-8",
     .choices = charset_names,
     .desc = "utf-8 passes lines through and counts invalid bytes (never drops them); binary "
             "skips the check."},
    {.name = "line_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(line_timeout),
     .def = "5s",
     .min = 1000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "A last line without a delimiter is emitted after the file has not grown for "
             "this long."},
    {.name = "read_size",
     .type = MARS_OPT_SIZE,
     .offset = OFF(read_size),
     .def = "256KiB",
     .min = 4096,
     .max = 16 << 20,
     .desc = "Largest single read from one file."},
    {.name = "rotate_wait",
     .type = MARS_OPT_DURATION,
     .offset = OFF(rotate_wait),
     .def = "5s",
     .min = 0,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "How long a file that left its path (renamed away, deleted, link retargeted) "
             "stays open once read to its end, counted from when it left or last grew, "
             "whichever is later: its writer may still append until it reopens. A deleted "
             "file no process holds open for writing is closed as soon as it is read."},
    {.name = NULL},
};

static int file_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct file_conf *c = conf;
    if (c->line_delimiter && strlen(c->line_delimiter) != 1) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "line_delimiter", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "option 'line_delimiter': must be exactly one byte (\"\\n\" by default)");
        return -EINVAL;
    }
    for (size_t i = 0; i < c->include.n; i++) {
        if (c->include.v[i][0] != '/') {
            const struct mars_cfg_node *n = mars_cfg_at(node, "include", NULL);
            mars_diag_add(diag, n->file, n->line, n->col,
                          "option 'include': '%s' must be an absolute path pattern",
                          c->include.v[i]);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- the tick ---- */

static void on_tick(struct mars_ev_op *op, int res);

static void arm_tick(struct file_source *fs, int64_t ns)
{
    if (fs->tick_armed)
        return;
    mars_ev_prep_timer(&fs->tick, ns, on_tick, fs);
    fs->tick_armed = mars_ev_submit(mars_source_loop(fs->src), &fs->tick) == 0;
}

void mars_file_maybe_finish(struct file_source *fs)
{
    if (fs->stopping && !fs->tick_armed && !fs->iop_armed && !fs->dop_armed &&
        fs->reads_inflight == 0)
        mars_source_finished(fs->src);
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct file_source *fs = op->data;
    struct mars_ev_loop *loop = mars_source_loop(fs->src);
    int64_t now = mars_ev_now(loop);

    fs->tick_armed = false;
    if (fs->stopping) {
        mars_file_maybe_finish(fs);
        return;
    }
    /* Ticks come on the loop's whole seconds (quarters with watch: poll): the worker's
     * heartbeat and the other sources' ticks wake it then too, so an idle worker wakes once
     * a second, not once per timer. A scan interval of a tick or more ends on a tick. */
    int64_t period = fs->ifd >= 0 ? TICK_NS : POLL_TICK_NS;
    /* not stopping: a cancel only means mars_file_scan_soon() wants the tick now */
    if (now >= fs->next_scan_ns) {
        mars_file_scan(fs);
        fs->next_scan_ns = now + fs->conf->glob_interval;
        if (fs->conf->glob_interval >= period)
            fs->next_scan_ns -= fs->next_scan_ns % period;
    }
    mars_file_sweep(fs, now);
    fs->initial_scan_done = true; /* after the first sweep opened what the first scan found */
    if (mars_source_once(fs->src) && mars_file_all_idle(fs)) {
        /* --once: everything that existed is read; emit unfinished last lines and stop */
        mars_file_flush_carries(fs);
        fs->stopping = true;
        if (fs->iop_armed)
            mars_ev_cancel(loop, &fs->iop);
        mars_file_maybe_finish(fs);
        return;
    }
    int64_t next = mars_ev_until_aligned(period);
    if (fs->conf->line_timeout < next)
        next = fs->conf->line_timeout; /* partial lines are emitted on time */
    if (mars_source_once(fs->src))
        next = 10000000; /* 10 ms: --once only waits for its reads */
    if (fs->next_scan_ns - now < next)
        next = fs->next_scan_ns > now ? fs->next_scan_ns - now : 0;
    arm_tick(fs, next);
}

/* inotify saw files appear, move or go: scan at once instead of at the next tick */
void mars_file_scan_soon(struct file_source *fs)
{
    fs->next_scan_ns = 0;
    if (fs->tick_armed)
        mars_ev_cancel(mars_source_loop(fs->src), &fs->tick);
    else
        arm_tick(fs, 0);
}

/* ---- metrics ---- */

static struct mars_mseries *series(struct file_source *fs, const char *name, const char *help,
                                   enum mars_mtype type)
{
    static const char *const labels[] = {"component_id", NULL};
    struct mars_obs *obs = mars_source_obs(fs->src);
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    struct mars_mfamily *f =
        m ? mars_metrics_family(m,
                                &(struct mars_mfamily_desc){
                                    .name = name, .help = help, .type = type, .labels = labels})
          : NULL;
    const char *values[] = {mars_source_id(fs->src), NULL};
    return f ? mars_mfamily_series(f, values) : NULL;
}

/* File counts and events of this instance (gauges per worker shard, summed at a scrape). */
static void metrics_init(struct file_source *fs)
{
    fs->m.shard = mars_source_shard(fs->src);
    fs->m.open = series(fs, "mars_file_open_files", "Files the source holds open.", MARS_MT_GAUGE);
    fs->m.tracked = series(fs, "mars_file_tracked_files",
                           "Files the source knows of: open, waiting for a descriptor, or "
                           "closed and idle.",
                           MARS_MT_GAUGE);
    fs->m.rotations = series(fs, "mars_file_rotations_total",
                             "Files that left their path (renamed, deleted, link retargeted) "
                             "and were read to their end.",
                             MARS_MT_COUNTER);
    fs->m.truncations = series(fs, "mars_file_truncations_total",
                               "Files found truncated or rewritten and read again from the "
                               "start.",
                               MARS_MT_COUNTER);
    fs->m.cut_lines = series(fs, "mars_file_truncated_lines_total",
                             "Unfinished last lines dropped because their end went with a "
                             "truncation (copytruncate while the line was written): a torn "
                             "line is never delivered. Each is also logged.",
                             MARS_MT_COUNTER);
    fs->m.gave_up = series(fs, "mars_file_gave_up_total",
                           "Files seen but not read whole: deleted or renamed out of the "
                           "include patterns before they could be opened, or unreadable. "
                           "Each is also logged.",
                           MARS_MT_COUNTER);
    fs->m.scans = series(fs, "mars_file_scans_total",
                         "Expansions of the include patterns: one per glob_interval, and one "
                         "soon after inotify says a directory came or a file of ours went.",
                         MARS_MT_COUNTER);
}

void mars_file_metrics_publish(struct file_source *fs)
{
    struct file_metrics *m = &fs->m;
    mars_mseries_set(m->open, m->shard, (double)fs->nopen);
    mars_mseries_set(m->tracked, m->shard, (double)fs->nfiles);
    mars_mseries_add(m->rotations, m->shard, fs->st.rotations - m->published.rotations);
    mars_mseries_add(m->truncations, m->shard, fs->st.truncations - m->published.truncations);
    mars_mseries_add(m->gave_up, m->shard, fs->st.gave_up - m->published.gave_up);
    mars_mseries_add(m->cut_lines, m->shard, fs->st.cut_lines - m->published.cut_lines);
    mars_mseries_add(m->scans, m->shard, fs->st.scans - m->published.scans);
    m->published = fs->st;
}

/* ---- life cycle ---- */

int mars_file_source_init(struct mars_source *s, const struct file_conf *conf,
                          const struct file_hooks *hooks, void *hctx)
{
    struct file_source *fs = calloc(1, sizeof(*fs));
    int err = 0;
    if (!fs)
        return -ENOMEM;
    fs->src = s;
    fs->conf = conf;
    fs->widx = mars_source_worker(s);
    fs->nw = mars_source_workers(s);
    fs->ifd = -1;
    fs->hooks = hooks;
    fs->hctx = hctx;
    fs->max_open = (size_t)conf->max_open_files / fs->nw;
    if (fs->max_open == 0)
        fs->max_open = 1;
    fs->ckpt = mars_ckpt_acquire(mars_source_data_dir(s), mars_source_id(s),
                                 conf->checkpoint_interval, &err);
    if (!fs->ckpt) {
        free(fs);
        return err ? err : -EIO;
    }
    fs->first_start = mars_ckpt_first_start(fs->ckpt);
    metrics_init(fs);
    mars_source_set_state(s, fs);
    return 0;
}

static int file_init(struct mars_source *s)
{
    return mars_file_source_init(s, mars_source_conf(s), NULL, NULL);
}

int mars_file_source_start(struct mars_source *s)
{
    struct file_source *fs = mars_source_state(s);
    mars_file_watch_init(fs);
    arm_tick(fs, 0); /* the first tick scans */
    return fs->tick_armed ? 0 : -EIO;
}

void mars_file_source_resume(struct mars_source *s)
{
    struct file_source *fs = mars_source_state(s);
    fs->waiting_memory = false;
    mars_file_pump(fs);
}

void mars_file_source_stop(struct mars_source *s)
{
    struct file_source *fs = mars_source_state(s);
    struct mars_ev_loop *loop = mars_source_loop(s);
    fs->stopping = true;
    /* unfinished last lines stay in their files: the checkpoint is before them, so the
     * next start reads them whole */
    if (fs->tick_armed)
        mars_ev_cancel(loop, &fs->tick);
    if (fs->iop_armed)
        mars_ev_cancel(loop, &fs->iop);
    if (fs->dop_armed)
        mars_ev_cancel(loop, &fs->dop);
    for (size_t i = 0; i < fs->nfiles; i++)
        if (fs->files[i]->reading)
            mars_ev_cancel(loop, &fs->files[i]->op);
    mars_file_maybe_finish(fs);
}

void mars_file_source_destroy(struct mars_source *s)
{
    struct file_source *fs = mars_source_state(s);
    mars_file_watch_fini(fs);
    mars_file_close_all(fs);
    mars_file_metrics_publish(fs);
    if (fs->st.rotations || fs->st.truncations || fs->st.invalid_utf8 || fs->st.gave_up)
        mars_info(mars_source_id(s),
                  "files: %llu left their path, %llu truncated (%llu unfinished lines "
                  "dropped), %llu invalid UTF-8 sequences, %llu given up",
                  (unsigned long long)fs->st.rotations, (unsigned long long)fs->st.truncations,
                  (unsigned long long)fs->st.cut_lines, (unsigned long long)fs->st.invalid_utf8,
                  (unsigned long long)fs->st.gave_up);
    mars_ckpt_release(fs->ckpt);
    free(fs);
}

const struct mars_component_desc mars_source_file = {
    .name = "file",
    .description = "Tails files matched by globs, across rotation and restarts, acknowledged "
                   "end to end.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .flags = MARS_DESC_PER_WORKER | MARS_DESC_DATA_DIR | MARS_DESC_LAG_BYTES | MARS_DESC_LOCAL_LOGS,
    .options = file_options,
    .conf_size = sizeof(struct file_conf),
    .check = file_check,
    .source = {.init = file_init,
               .start = mars_file_source_start,
               .resume = mars_file_source_resume,
               .stop = mars_file_source_stop,
               .destroy = mars_file_source_destroy},
};
