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

#include "control/api.h"
#include "core/ev.h"

static void *bg_main(void *arg)
{
    struct mars_bg *b = arg;
    b->rc = mars_engine_run(b->e);
    return NULL;
}

/* As main.c does: the admin API beside the engine, when the test asked for it (its config
 * names a free port: tests never bind the default 127.0.0.1:8686). */
static int api_up(struct mars_engine *e, void *arg)
{
    struct mars_bg *b = arg;
    if (b->serve_api)
        atomic_store(&b->api, mars_api_start(e, NULL));
    return 0;
}

static void api_down(struct mars_engine *e, void *arg)
{
    struct mars_bg *b = arg;
    mars_api_stop(atomic_exchange(&b->api, NULL));
    (void)e;
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
    b->serve_api = serve_api;
    atomic_store(&b->api, NULL);
    struct mars_engine_opts o = {
        .workers = workers, .on_running = api_up, .on_stopping = api_down, .hook_arg = b};
    b->e = mars_engine_create(b->cfg, &o);
    assert_non_null(b->e);
    assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
}

const char *mars_bg_api_address(struct mars_bg *b)
{
    struct mars_api *api = atomic_load(&b->api);
    return api ? mars_api_address(api) : NULL;
}

static bool api_listens(void *arg)
{
    return mars_bg_api_address(arg) != NULL;
}

const char *mars_bg_api(struct mars_bg *b)
{
    mars_wait_until(api_listens, b, 10, "the admin API listens");
    return mars_bg_api_address(b);
}

void mars_bg_stop(struct mars_bg *b)
{
    mars_engine_request_stop(b->e);
    pthread_join(b->th, NULL);
    assert_int_equal(b->rc, 0);
    mars_engine_destroy(b->e);
    mars_config_destroy(b->cfg);
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
