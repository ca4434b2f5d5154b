/*
 * runner.h - runs an engine on a background thread so a runtime test can act while it
 * runs (probe its HTTP endpoints, flip a capture sink's failure mode), then stop it.
 */
#ifndef MARS_TEST_RUNNER_H
#define MARS_TEST_RUNNER_H

#include <pthread.h>
#include <stdbool.h>

#include "pipeline/config.h"
#include "pipeline/engine.h"

struct mars_bg {
    struct mars_config *cfg;
    struct mars_engine *e;
    int rc;
    pthread_t th;
};

/* Loads yaml (fails the test on errors), creates the engine with `workers` workers and the
 * admin API served when serve_api, and starts mars_engine_run() on a thread. */
void mars_bg_start(struct mars_bg *b, const char *yaml, unsigned workers, bool serve_api);
/* Waits for the admin API to listen and returns its address (fails the test after 10 s). */
const char *mars_bg_api(struct mars_bg *b);
/* Requests a stop, joins, checks the run returned 0, and frees everything. */
void mars_bg_stop(struct mars_bg *b);
/* Polls cond(arg) every millisecond; fails the test after `seconds`. */
void mars_wait_until(bool (*cond)(void *), void *arg, int seconds, const char *what);

#endif
