/*
 * engine.h - runs a loaded configuration: starts the worker threads, each with its own
 * event loop and its own instances of the pipeline, and drives them from the control
 * thread (the caller's) until every source has finished and every sink has drained, or a
 * stop is requested (SIGTERM/SIGINT, or mars_engine_request_stop()).
 *
 * Stop sequence: sources stop reading; transforms flush; sinks deliver what is queued.
 * If that takes longer than runtime.shutdown_timeout, what is left is abandoned: it is
 * not acknowledged to its sources, so sources with checkpoints replay it on the next start.
 */
#ifndef MARS_ENGINE_H
#define MARS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

struct mars_config;
struct mars_diag;
struct mars_engine;
struct mars_obs;
struct mars_stats;

struct mars_engine_opts {
    const char *io_backend; /* NULL: config, then MARS_IO_BACKEND, then "auto" */
    unsigned workers;       /* 0: config (then online CPUs) */
    bool handle_signals;    /* SIGTERM/SIGINT stop, SIGHUP reloads, SIGPIPE ignored */
    bool once;              /* sources read what exists now, then finish (mars --once) */
    /* Called on the control thread once the workers run (on_running) and when the engine
     * begins its final stop, before the workers are joined (on_stopping; also called by
     * mars_engine_destroy() if on_running ran and on_stopping did not). main.c starts and
     * stops the admin API here (control/api.h), so the engine never knows about it and an
     * in-process engine (tests) serves nothing unless it asks. Optional. A non-zero return
     * from on_running (the admin API cannot listen) aborts the run as a component that failed
     * to start would: mars_engine_run() returns -EIO. */
    int (*on_running)(struct mars_engine *e, void *arg);
    void (*on_stopping)(struct mars_engine *e, void *arg);
    void *hook_arg;
    /* The file the configuration came from: SIGHUP and POST /api/v1/reload load it again.
     * NULL: reload is refused. */
    const char *config_path;
    /* Optional: loads the configuration for a reload instead of reading config_path again
     * (mars's own configuration from Apollo, control/apollo_config.c). Returns as
     * mars_config_load, problems in diag at their FILE:LINE:COL. */
    int (*load_config)(void *arg, struct mars_config **out, struct mars_diag *diag);
    void *load_arg;
};

/* What became of this engine's reloads (GET /api/v1/config). */
struct mars_reload_status {
    uint64_t accepted, rejected;
    int64_t last_unix_ms; /* wall clock of the last attempt; 0: none yet */
    bool last_ok;
    char *problems; /* of the last rejected one ("FILE:LINE:COL: message" lines), or NULL;
                     * an owned copy: free() */
};

/* Returns an owned engine (not started) or NULL after logging why. The config is borrowed
 * and must outlive the engine. */
struct mars_engine *mars_engine_create(const struct mars_config *cfg,
                                       const struct mars_engine_opts *opts);
/* Runs until done. Returns 0 after a clean finish or stop, -EIO when a component failed to
 * start (logged). */
int mars_engine_run(struct mars_engine *e);
/* Thread-safe: begins the stop sequence. */
void mars_engine_request_stop(struct mars_engine *e);
/* Sums a node's counters over all workers into out (plain copies). */
void mars_engine_node_stats(const struct mars_engine *e, uint32_t node, struct mars_stats *out);
const char *mars_engine_backend_name(const struct mars_engine *e);
/* The configuration the engine runs (borrowed from the creator). */
const struct mars_config *mars_engine_config(const struct mars_engine *e);
/* The engine's observability state (observe.h), alive until mars_engine_destroy(). */
struct mars_obs *mars_engine_obs(const struct mars_engine *e);
unsigned mars_engine_workers(const struct mars_engine *e);
/*
 * Thread-safe. Loads opts.config_path again (or calls opts.load_config); when it is valid, begins a
 * graceful stop (sources stop, queued events are delivered, checkpoints written) after which
 * mars_engine_run() returns and mars_engine_take_reload() hands over the new
 * configuration for the caller to run. Returns 0; -EINVAL when the file has problems
 * (*problems: owned text, one "FILE:LINE:COL: message" per line; free()); -EBUSY when a
 * stop or another reload is already under way; -ENOTSUP without a config path or loader.
 * The running pipeline is untouched unless 0 is returned.
 */
int mars_engine_reload(struct mars_engine *e, char **problems);
/* Thread-safe. The outcome of the reloads asked of e so far (each also counts in
 * mars_config_reloads_total{result="accepted|rejected"}). */
void mars_engine_reload_status(struct mars_engine *e, struct mars_reload_status *out);
/* After mars_engine_run() returned: the configuration a reload validated (owned by the
 * caller, free with mars_config_destroy), or NULL when the engine stopped for another reason. */
struct mars_config *mars_engine_take_reload(struct mars_engine *e);
void mars_engine_destroy(struct mars_engine *e);

#endif
