/*
 * runner.h - runs an engine on a background thread so a runtime test can act while it
 * runs (probe its HTTP endpoints, flip a capture sink's failure mode), then stop it.
 */
#ifndef MARS_TEST_RUNNER_H
#define MARS_TEST_RUNNER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "engine/engine.h"

struct mars_api;

struct mars_bg {
    struct mars_config *cfg;
    struct mars_engine *e;
    int rc;
    pthread_t th;
    bool serve_api;
    _Atomic(struct mars_api *) api; /* the admin API while the engine runs, as main.c's */
};

/* Loads yaml (fails the test on errors), creates the engine with `workers` workers and the
 * admin API served when serve_api, and starts mars_engine_run() on a thread. */
void mars_bg_start(struct mars_bg *b, const char *yaml, unsigned workers, bool serve_api);
/* Waits for the admin API to listen and returns its address (fails the test after 10 s). */
const char *mars_bg_api(struct mars_bg *b);
/* The admin API's address now, or NULL when it is not serving. */
const char *mars_bg_api_address(struct mars_bg *b);
/* Requests a stop, joins, checks the run returned 0, and frees everything. */
void mars_bg_stop(struct mars_bg *b);
/* Polls cond(arg) every millisecond; fails the test after `seconds`. */
void mars_wait_until(bool (*cond)(void *), void *arg, int seconds, const char *what);

#endif
