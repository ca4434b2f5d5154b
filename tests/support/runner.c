/*
 * runner.c - background engine runs for runtime tests (see runner.h).
 */
#include "runner.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "core/ev.h"

static void *bg_main(void *arg)
{
    struct mars_bg *b = arg;
    b->rc = mars_engine_run(b->e);
    return NULL;
}

void mars_bg_start(struct mars_bg *b, const char *yaml, unsigned workers, bool serve_api)
{
    struct mars_diag d;
    mars_diag_init(&d);
    if (mars_config_load_string("t.yaml", yaml, &b->cfg, &d)) {
        mars_diag_print(&d, stderr);
        fail_msg("config does not load");
    }
    mars_diag_fini(&d);
    struct mars_engine_opts o = {.workers = workers, .serve_api = serve_api};
    b->e = mars_engine_create(b->cfg, &o);
    assert_non_null(b->e);
    assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
}

static bool api_up(void *arg)
{
    return mars_engine_api_address(((struct mars_bg *)arg)->e) != NULL;
}

const char *mars_bg_api(struct mars_bg *b)
{
    mars_wait_until(api_up, b, 10, "the admin API listens");
    return mars_engine_api_address(b->e);
}

void mars_bg_stop(struct mars_bg *b)
{
    mars_engine_request_stop(b->e);
    pthread_join(b->th, NULL);
    assert_int_equal(b->rc, 0);
    mars_engine_destroy(b->e);
    mars_config_free(b->cfg);
}

void mars_wait_until(bool (*cond)(void *), void *arg, int seconds, const char *what)
{
    struct timespec ts = {0, 1000000};
    int64_t deadline = mars_ev_clock_ns() + (int64_t)seconds * 1000000000;
    while (!cond(arg)) {
        if (mars_ev_clock_ns() > deadline)
            fail_msg("timed out after %d s waiting for: %s", seconds, what);
        nanosleep(&ts, NULL);
    }
}
