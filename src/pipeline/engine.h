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
struct mars_engine;
struct mars_stats;

struct mars_engine_opts {
    const char *io_backend; /* NULL: config, then MARS_IO_BACKEND, then "auto" */
    unsigned workers;       /* 0: config (then online CPUs) */
    bool handle_signals;    /* SIGTERM/SIGINT stop, SIGHUP logged, SIGPIPE ignored */
    bool once;              /* sources read what exists now, then finish (mars --once) */
    /* Serve the admin API when the config enables it (api.enabled). Off by default so an
     * in-process engine (tests) never binds 127.0.0.1:8686 by accident; main.c sets it. */
    bool serve_api;
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
/* The admin API's bound address ("127.0.0.1:PORT" or a socket path) while it runs, else
 * NULL. Thread-safe once mars_engine_run() has started the API. */
const char *mars_engine_api_address(const struct mars_engine *e);
unsigned mars_engine_workers(const struct mars_engine *e);
void mars_engine_destroy(struct mars_engine *e);

#endif
