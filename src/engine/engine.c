/*
 * engine.c - the control thread's side of running a pipeline.
 *
 * mars_engine_run() selects the io backend, starts runtime.workers threads (worker.c),
 * waits until each has instantiated and started its components, then runs its own event
 * loop: signals arrive through a signalfd polled on that loop, workers report completion
 * through an async wakeup, and the shutdown timer turns a slow drain into an abort.
 * Commands to workers are bits in an atomic word plus a wakeup (STOP, ABORT).
 * Once the workers run, the embedder's on_running hook runs (main.c starts the admin API
 * there); on_stopping runs when the workers are done, before they are joined.
 * observe.c keeps what the API and the metrics report: heartbeats, run state, latency.
 *
 * Thread: the caller's (control thread); mars_engine_request_stop() from any thread.
 */
#include "engine/engine.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/metrics.h"
#include "engine/checkpoint.h"
#include "engine/dbuf.h"
#include "engine/engine_internal.h"
#include "engine/observe.h"
#include "engine/observe_internal.h"
#include "model/template.h"
#include "config/registry.h"

static unsigned pick_workers(const struct mars_config *cfg, const struct mars_engine_opts *o)
{
    if (o->workers)
        return o->workers;
    if (cfg->top.runtime.workers > 0)
        return (unsigned)cfg->top.runtime.workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static const char *pick_backend_name(const struct mars_config *cfg,
                                     const struct mars_engine_opts *o)
{
    static const char *const names[] = {"auto", "io_uring", "libevent"};
    const char *env = getenv("MARS_IO_BACKEND");
    if (o->io_backend)
        return o->io_backend;
    if (env && *env)
        return env;
    return names[cfg->top.runtime.io_backend];
}

static void register_reloads(struct mars_engine *e);

struct mars_engine *mars_engine_create(const struct mars_config *cfg,
                                       const struct mars_engine_opts *opts)
{
    struct mars_engine *e = calloc(1, sizeof(*e));
    char why[256] = "";
    if (!e)
        return NULL;
    e->cfg = cfg;
    e->opts = opts ? *opts : (struct mars_engine_opts){0};
    e->sigfd = -1;
    const char *want = pick_backend_name(cfg, &e->opts);
    e->backend = mars_ev_backend_select(want, why, sizeof(why));
    if (!e->backend) {
        mars_error("-", "io backend '%s' cannot run here: %s", want, why);
        free(e);
        return NULL;
    }
    mars_info("-", "io backend %s (%s)", mars_ev_backend_name(e->backend), why);
    e->lock_fd = -1;
    for (uint32_t i = 0; i < cfg->n && e->lock_fd < 0; i++) {
        if (!(cfg->nodes[i].desc->flags & MARS_DESC_DATA_DIR) &&
            !(cfg->nodes[i].kind == MARS_KIND_SINK &&
              cfg->nodes[i].common.buffer.type == MARS_BUFFER_DISK))
            continue;
        /* two mars on one data_dir would both advance the same checkpoints */
        e->lock_fd = mars_data_dir_lock(cfg->top.data_dir);
        if (e->lock_fd < 0) {
            if (e->lock_fd != -EWOULDBLOCK)
                mars_error("-", "cannot lock data_dir %s: %s", cfg->top.data_dir,
                           strerror(-e->lock_fd));
            free(e);
            return NULL;
        }
    }
    if (e->lock_fd >= 0)
        mars_dbuf_orphans(cfg);                  /* buffers of sinks that left the configuration */
    const char *host_name = mars_host_default(); /* also fills the templates' cache */
    if (cfg->top.host.name && cfg->top.host.name[0])
        host_name = cfg->top.host.name;
    if (cfg->top.host.add)
        snprintf(e->host, sizeof(e->host), "%s", host_name);
    e->nworkers = pick_workers(cfg, &e->opts);
    e->workers = calloc(e->nworkers, sizeof(*e->workers));
    if (!e->workers) {
        if (e->lock_fd >= 0)
            close(e->lock_fd);
        free(e);
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->reload_lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    for (unsigned i = 0; i < e->nworkers; i++) {
        struct mars_worker *w = &e->workers[i];
        w->e = e;
        w->id = i;
        w->stats = calloc(cfg->n + 1, sizeof(*w->stats));
        mars_chunk_pool_init(&w->pool, cfg->top.runtime.chunk_size, cfg->top.runtime.chunk_memory);
        if (!w->stats) {
            mars_engine_destroy(e);
            return NULL;
        }
    }
    e->obs = mars_obs_create(e);
    if (!e->obs) {
        mars_engine_destroy(e);
        return NULL;
    }
    register_reloads(e);
    return e;
}

static void send_command(struct mars_engine *e, unsigned cmd)
{
    for (unsigned i = 0; i < e->nworkers; i++) {
        struct mars_worker *w = &e->workers[i];
        if (!w->spawned || !w->has_wake || atomic_load(&w->done))
            continue;
        atomic_fetch_or(&w->cmd, cmd);
        mars_ev_async_send(&w->wake);
    }
}

static void on_shutdown_timer(struct mars_ev_op *op, int res)
{
    struct mars_engine *e = op->data;
    e->shutdown_timer_armed = false;
    if (res == -ECANCELED)
        return;
    mars_warn("-", "shutdown timeout reached; abandoning undelivered data");
    e->aborted = true;
    send_command(e, MARS_CMD_ABORT);
}

static void begin_stop(struct mars_engine *e, const char *why)
{
    if (e->stopping) {
        if (!e->aborted) {
            mars_warn("-", "%s again: abandoning undelivered data now", why);
            e->aborted = true;
            send_command(e, MARS_CMD_ABORT);
        }
        return;
    }
    e->stopping = true;
    mars_obs_set_state(e->obs, MARS_RUN_STOPPING);
    mars_info("-", "%s: stopping (draining for up to %lld ms)", why,
              (long long)(e->cfg->top.runtime.shutdown_timeout / 1000000));
    send_command(e, MARS_CMD_STOP);
    mars_ev_prep_timer(&e->shutdown_timer, e->cfg->top.runtime.shutdown_timeout, on_shutdown_timer,
                       e);
    if (mars_ev_submit(e->loop, &e->shutdown_timer) == 0)
        e->shutdown_timer_armed = true;
}

static bool all_done(struct mars_engine *e)
{
    for (unsigned i = 0; i < e->nworkers; i++)
        if (!atomic_load(&e->workers[i].done))
            return false;
    return true;
}

static void on_wake(struct mars_ev_async *a)
{
    struct mars_engine *e = a->data;
    if (atomic_exchange(&e->stop_requested, false))
        begin_stop(e, "stop requested");
    if (atomic_exchange(&e->reload_requested, false))
        begin_stop(e, "configuration reload");
    if (all_done(e))
        mars_ev_stop(e->loop);
}

void mars_engine_request_stop(struct mars_engine *e)
{
    atomic_store(&e->stop_requested, true);
    mars_ev_async_send(&e->wake);
}

static void on_signal(struct mars_ev_op *op, int res);

static void reload_from_signal(struct mars_engine *e)
{
    char *problems = NULL;
    int rc = mars_engine_reload(e, &problems);
    if (rc == -EINVAL) {
        mars_error("-", "SIGHUP: %s has problems; keeping the running configuration",
                   e->opts.config_path);
        for (char *line = problems, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            if ((nl = strchr(line, '\n')))
                *nl = '\0';
            mars_error("-", "%s", line);
        }
    } else if (rc)
        mars_warn("-", "SIGHUP: reload not started: %s",
                  rc == -EBUSY ? "mars is already stopping or reloading"
                               : "no configuration file to reload");
    free(problems);
}

static void arm_signals(struct mars_engine *e)
{
    mars_ev_prep_poll(&e->sig_op, e->sigfd, POLLIN, on_signal, e);
    if (mars_ev_submit(e->loop, &e->sig_op) != 0)
        mars_error("-", "cannot watch for signals");
}

static void on_signal(struct mars_ev_op *op, int res)
{
    struct mars_engine *e = op->data;
    struct signalfd_siginfo si;

    if (res < 0)
        return; /* cancelled at exit */
    while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP)
            reload_from_signal(e);
        else
            begin_stop(e, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    }
    arm_signals(e);
}

/* Blocks the signals mars handles in this thread before workers start, so every thread
 * inherits the mask and they are only seen through the signalfd. */
static int setup_signals(struct mars_engine *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -errno;
    e->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return e->sigfd < 0 ? -errno : 0;
}

static int start_workers(struct mars_engine *e)
{
    int rc = 0;
    unsigned spawned = 0;

    for (unsigned i = 0; i < e->nworkers; i++) {
        if (pthread_create(&e->workers[i].thread, NULL, mars_worker_main, &e->workers[i])) {
            mars_error("-", "cannot start worker thread %u", i);
            rc = -EAGAIN;
            break;
        }
        e->workers[i].spawned = true;
        spawned++;
    }
    pthread_mutex_lock(&e->lock);
    while (e->started < spawned)
        pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < spawned; i++)
        if (e->workers[i].start_rc)
            rc = e->workers[i].start_rc;
    /* threads that never spawned count as done */
    for (unsigned i = spawned; i < e->nworkers; i++)
        atomic_store(&e->workers[i].done, true);
    return rc;
}

static void log_summary(struct mars_engine *e)
{
    const struct mars_config *c = e->cfg;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_stats st;
        mars_engine_node_stats(e, i, &st);
        uint64_t errs = 0;
        for (int k = 0; k < MARS_ERR__COUNT; k++)
            errs += st.errors[k];
        char acked[48] = "";
        if (c->nodes[i].kind == MARS_KIND_SOURCE)
            snprintf(acked, sizeof(acked), ", %llu acknowledged",
                     (unsigned long long)st.acked_events);
        mars_info(c->nodes[i].id,
                  "%s %s: received %llu events, sent %llu events (%llu bytes)%s, "
                  "discarded %llu intentionally and %llu not, %llu errors",
                  c->nodes[i].desc->name, mars_kind_name(c->nodes[i].kind),
                  (unsigned long long)st.received_events, (unsigned long long)st.sent_events,
                  (unsigned long long)st.sent_bytes, acked,
                  (unsigned long long)st.discarded_intentional,
                  (unsigned long long)st.discarded_unintentional, (unsigned long long)errs);
    }
}

static void stopping_hook(struct mars_engine *e)
{
    if (!e->hooked)
        return;
    e->hooked = false;
    if (e->opts.on_stopping)
        e->opts.on_stopping(e, e->opts.hook_arg);
}

int mars_engine_run(struct mars_engine *e)
{
    int rc;

    e->loop = mars_ev_loop_create(e->backend);
    if (!e->loop) {
        mars_error("-", "cannot create the control event loop: %s", strerror(errno));
        return -EIO;
    }
    if ((rc = mars_ev_async_init(e->loop, &e->wake, on_wake, e)) != 0) {
        mars_error("-", "cannot create the control wakeup: %s", strerror(-rc));
        return -EIO;
    }
    if (e->opts.handle_signals) {
        if ((rc = setup_signals(e)) != 0)
            mars_error("-", "cannot handle signals: %s", strerror(-rc));
        else
            arm_signals(e);
    }
    mars_obs_control_start(e->obs, e->loop);
    rc = start_workers(e);
    /* every component has had its init: what the last engine left and no one took is
     * gone from the configuration (instance.h, mars_keep_put) */
    mars_keep_drop_all();
    if (rc == 0) {
        if (!e->stopping)
            mars_obs_set_state(e->obs, MARS_RUN_RUNNING);
        if (e->opts.on_running) {
            e->hooked = true;
            rc = e->opts.on_running(e, e->opts.hook_arg);
        }
    }
    if (rc) { /* a component, or the embedder's part (the admin API), could not start */
        e->stopping = e->aborted = true;
        mars_obs_set_state(e->obs, MARS_RUN_STOPPING);
        send_command(e, MARS_CMD_ABORT);
    } else {
        mars_info("-", "mars %s running: %u worker%s, %u components, io backend %s", MARS_VERSION,
                  e->nworkers, e->nworkers == 1 ? "" : "s", e->cfg->n,
                  mars_ev_backend_name(e->backend));
    }
    while (!all_done(e))
        mars_ev_run(e->loop);
    mars_obs_set_state(e->obs, MARS_RUN_STOPPING);
    stopping_hook(e);
    mars_obs_control_stop(e->obs);
    for (unsigned i = 0; i < e->nworkers; i++) {
        if (!e->workers[i].spawned)
            continue;
        pthread_join(e->workers[i].thread, NULL);
        e->workers[i].spawned = false;
        mars_worker_teardown(&e->workers[i]);
    }
    if (e->shutdown_timer_armed)
        mars_ev_cancel(e->loop, &e->shutdown_timer);
    if (e->sigfd >= 0)
        mars_ev_cancel(e->loop, &e->sig_op);
    while (mars_ev_pending(e->loop) > 1)
        mars_ev_run_once(e->loop, 100000000);
    if (rc == 0)
        log_summary(e);
    return rc ? -EIO : 0;
}

void mars_engine_node_stats(const struct mars_engine *e, uint32_t node, struct mars_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned w = 0; w < e->nworkers; w++) {
        const struct mars_stats *s = &e->workers[w].stats[node];
#define SUM(f) mars_stat_add(&out->f, mars_stat_get(&s->f))
        SUM(received_events);
        SUM(received_bytes);
        SUM(sent_events);
        SUM(sent_bytes);
        SUM(discarded_intentional);
        SUM(discarded_unintentional);
        SUM(acked_events);
        SUM(buffer_events);
        SUM(buffer_bytes);
        SUM(consecutive_failures);
        SUM(lag_bytes);
        SUM(disk_bytes);
        SUM(disk_events);
        SUM(disk_written);
        SUM(disk_read);
        SUM(disk_handed_over);
        SUM(disk_corrupt);
        uint64_t o = mars_stat_get(&s->disk_oldest_wall_ns),
                 m = mars_stat_get(&out->disk_oldest_wall_ns);
        if (o && (!m || o < m)) /* the oldest over workers, not a sum */
            mars_stat_set(&out->disk_oldest_wall_ns, o);
        for (int k = 0; k < MARS_ERR__COUNT; k++)
            SUM(errors[k]);
#undef SUM
    }
}

const struct mars_config *mars_engine_config(const struct mars_engine *e)
{
    return e->cfg;
}

struct mars_obs *mars_engine_obs(const struct mars_engine *e)
{
    return e->obs;
}

const char *mars_engine_backend_name(const struct mars_engine *e)
{
    return mars_ev_backend_name(e->backend);
}

unsigned mars_engine_workers(const struct mars_engine *e)
{
    return e->nworkers;
}

/* mars_config_reloads_total{result}; NULL without metrics. Both series exist from the
 * start at 0, so an alert on an increase of "rejected" sees the first one. */
static struct mars_mfamily *reloads_family(struct mars_engine *e)
{
    static const char *const labels[] = {"result", NULL};
    struct mars_metrics *m = e->obs ? mars_obs_metrics(e->obs) : NULL;
    return m ? mars_metrics_family(m,
                                   &(struct mars_mfamily_desc){
                                       .name = "mars_config_reloads_total",
                                       .help = "Reloads asked for (SIGHUP, the API, Apollo), "
                                               "by result: accepted or rejected (the "
                                               "running pipeline kept).",
                                       .type = MARS_MT_COUNTER,
                                       .labels = labels})
             : NULL;
}

static void register_reloads(struct mars_engine *e)
{
    struct mars_mfamily *f = reloads_family(e);
    const char *ok[] = {"accepted", NULL}, *rejected[] = {"rejected", NULL};
    mars_mseries_add(f ? mars_mfamily_series(f, ok) : NULL, MARS_METRICS_SHARED, 0);
    mars_mseries_add(f ? mars_mfamily_series(f, rejected) : NULL, MARS_METRICS_SHARED, 0);
}

/* Records the outcome of a reload attempt (problems: borrowed, NULL when accepted). */
static void note_reload(struct mars_engine *e, const char *problems)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&e->reload_lock);
    struct mars_reload_status *st = &e->reload_status;
    if (problems)
        st->rejected++;
    else
        st->accepted++;
    st->last_ok = !problems;
    st->last_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    free(st->problems);
    st->problems = problems ? strdup(problems) : NULL;
    pthread_mutex_unlock(&e->reload_lock);
    struct mars_mfamily *f = reloads_family(e);
    const char *v[] = {problems ? "rejected" : "accepted", NULL};
    mars_mseries_add(f ? mars_mfamily_series(f, v) : NULL, MARS_METRICS_SHARED, 1);
}

void mars_engine_reload_status(struct mars_engine *e, struct mars_reload_status *out)
{
    pthread_mutex_lock(&e->reload_lock);
    *out = e->reload_status;
    out->problems = e->reload_status.problems ? strdup(e->reload_status.problems) : NULL;
    pthread_mutex_unlock(&e->reload_lock);
}

int mars_engine_reload(struct mars_engine *e, char **problems)
{
    struct mars_config *cfg = NULL;
    struct mars_diag diag;
    *problems = NULL;
    if (!e->opts.config_path && !e->opts.load_config)
        return -ENOTSUP;
    pthread_mutex_lock(&e->reload_lock);
    bool busy = e->next_cfg != NULL || e->stopping;
    pthread_mutex_unlock(&e->reload_lock);
    if (busy)
        return -EBUSY;
    mars_diag_init(&diag);
    int rc = e->opts.load_config ? e->opts.load_config(e->opts.load_arg, &cfg, &diag)
                                 : mars_config_load(e->opts.config_path, &cfg, &diag);
    if (rc) {
        size_t len = 0;
        FILE *f = open_memstream(problems, &len);
        if (f) {
            mars_diag_print(&diag, f);
            fclose(f);
        }
        mars_diag_fini(&diag);
        note_reload(e, *problems ? *problems : "invalid configuration");
        return -EINVAL;
    }
    mars_diag_fini(&diag);
    pthread_mutex_lock(&e->reload_lock);
    busy = e->next_cfg != NULL;
    if (!busy)
        e->next_cfg = cfg;
    pthread_mutex_unlock(&e->reload_lock);
    if (busy) {
        mars_config_destroy(cfg);
        return -EBUSY;
    }
    note_reload(e, NULL);
    mars_info("-", "configuration %s is valid (%u components): reloading",
              e->opts.config_path ? e->opts.config_path : "-", cfg->n);
    atomic_store(&e->reload_requested, true);
    mars_ev_async_send(&e->wake);
    return 0;
}

bool mars_obs_reloading(struct mars_obs *o)
{
    struct mars_engine *e = o->e;
    pthread_mutex_lock(&e->reload_lock);
    bool r = e->next_cfg != NULL;
    pthread_mutex_unlock(&e->reload_lock);
    return r;
}

struct mars_config *mars_engine_take_reload(struct mars_engine *e)
{
    pthread_mutex_lock(&e->reload_lock);
    struct mars_config *cfg = e->next_cfg;
    e->next_cfg = NULL;
    pthread_mutex_unlock(&e->reload_lock);
    return cfg;
}

void mars_engine_destroy(struct mars_engine *e)
{
    if (!e)
        return;
    mars_config_destroy(mars_engine_take_reload(e));
    free(e->reload_status.problems);
    pthread_mutex_destroy(&e->reload_lock);
    mars_arena_cache_drain(); /* batches released on this thread at teardown */
    stopping_hook(e);
    if (e->loop) {
        mars_ev_async_fini(&e->wake);
        mars_ev_loop_destroy(e->loop);
    }
    if (e->sigfd >= 0)
        close(e->sigfd);
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    for (unsigned i = 0; i < e->nworkers; i++) {
        mars_worker_teardown(&e->workers[i]);
        mars_chunk_pool_fini(&e->workers[i].pool);
        free(e->workers[i].stats);
    }
    mars_obs_destroy(e->obs);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    free(e->workers);
    free(e);
}
