/*
 * Runtime tests of the engine: pipelines from inline YAML run to completion into the
 * in-memory capture sink. Checks delivery counts and order, fan-out, acknowledgements,
 * engine retries, backpressure with when_full: block, drop_newest, multiple workers and a
 * requested stop.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "capture.h"
#include "core/ev.h"
#include "core/log.h"
#include "component.h"
#include "engine/instance.h"

static int setup(void **state)
{
    mars_log_setup(MARS_LOG_WARN, MARS_LOG_TEXT);
    mars_capture_setup();
    (void)state;
    return 0;
}

static void test_demo_to_capture_exact(void **state)
{
    struct mars_stats st;
    int rc = mars_test_run("sources:\n"
                           "  gen: {type: demo, format: nginx, rate: 0, count: 5000, seed: 7}\n"
                           "sinks:\n"
                           "  cap: {type: capture, inputs: [gen]}\n",
                           1, "gen", &st);
    assert_int_equal(rc, 0);
    assert_int_equal(mars_capture_count("cap"), 5000);
    assert_int_equal(mars_stat_get(&st.sent_events), 5000);
    assert_int_equal(mars_stat_get(&st.acked_events), 5000); /* every batch acknowledged */
    for (size_t i = 0; i < 5000; i += 499) {
        const char *m = mars_capture_get("cap", i);
        assert_non_null(strstr(m, " HTTP/1.1\" "));
        assert_null(strchr(m, '\n'));
    }
    (void)state;
}

static void test_fan_out_and_determinism(void **state)
{
    struct mars_stats st;
    int rc = mars_test_run("sources:\n"
                           "  gen: {type: demo, format: json, rate: 0, count: 3000, seed: 3}\n"
                           "sinks:\n"
                           "  a: {type: capture, inputs: [gen]}\n"
                           "  b: {type: capture, inputs: [gen]}\n",
                           2, "gen", &st);
    assert_int_equal(rc, 0);
    assert_int_equal(mars_capture_count("a"), 3000);
    assert_int_equal(mars_capture_count("b"), 3000);
    assert_int_equal(mars_stat_get(&st.acked_events), 3000); /* once per batch, not per path */
    for (size_t i = 0; i < 3000; i++) {
        const char *x = mars_capture_get("a", i), *y = mars_capture_get("b", i);
        assert_string_equal(x, y);
        char seq[32];
        snprintf(seq, sizeof(seq), "\"seq-%zu\"", i); /* in order */
        assert_non_null(strstr(x, seq));
    }
    (void)state;
}

static void test_retries_then_delivers(void **state)
{
    struct mars_stats st;
    int rc = mars_test_run("sources:\n"
                           "  gen: {type: demo, rate: 0, count: 100}\n"
                           "sinks:\n"
                           "  cap: {type: capture, inputs: [gen], fail_first: 3,\n"
                           "        retry: {initial_backoff: 1ms, max_backoff: 4ms}}\n",
                           1, "cap", &st);
    assert_int_equal(rc, 0);
    assert_int_equal(mars_capture_count("cap"), 100);
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_RETRY]), 3);
    assert_int_equal(mars_stat_get(&st.sent_events), 100);
    assert_int_equal(mars_stat_get(&st.discarded_unintentional), 0);
    (void)state;
}

static void test_two_sources_two_workers(void **state)
{
    struct mars_stats st;
    int rc = mars_test_run("sources:\n"
                           "  one: {type: demo, rate: 0, count: 2000, format: syslog}\n"
                           "  two: {type: demo, rate: 0, count: 3000, format: cri}\n"
                           "sinks:\n"
                           "  cap: {type: capture, inputs: [one, two]}\n",
                           2, "cap", &st);
    assert_int_equal(rc, 0);
    assert_int_equal(mars_capture_count("cap"), 5000);
    assert_int_equal(mars_stat_get(&st.received_events), 5000);
    (void)state;
}

/* ---- runs on a thread, for tests that act while the engine runs ---- */

struct bg {
    struct mars_config *cfg;
    struct mars_engine *e;
    int rc;
    pthread_t th;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    b->rc = mars_engine_run(b->e);
    return NULL;
}

static void bg_start(struct bg *b, const char *yaml)
{
    struct mars_diag d;
    mars_diag_init(&d);
    assert_int_equal(mars_config_load_string("t.yaml", yaml, &b->cfg, &d), 0);
    mars_diag_fini(&d);
    struct mars_engine_opts o = {.workers = 1};
    b->e = mars_engine_create(b->cfg, &o);
    assert_non_null(b->e);
    pthread_create(&b->th, NULL, bg_main, b);
}

static void bg_stats(struct bg *b, const char *id, struct mars_stats *st)
{
    mars_engine_node_stats(b->e, (uint32_t)mars_config_find(b->cfg, id), st);
}

static void bg_finish(struct bg *b)
{
    pthread_join(b->th, NULL);
    assert_int_equal(b->rc, 0);
}

static void bg_free(struct bg *b)
{
    mars_engine_destroy(b->e);
    mars_config_destroy(b->cfg);
}

static void wait_until(bool (*cond)(void *), void *arg, int seconds)
{
    struct timespec ts = {0, 1000000};
    int64_t deadline = mars_ev_clock_ns() + (int64_t)seconds * 1000000000;
    while (!cond(arg)) {
        if (mars_ev_clock_ns() > deadline)
            fail_msg("condition not met within %d s", seconds);
        nanosleep(&ts, NULL);
    }
}

static bool held(void *id)
{
    return mars_capture_held(id) > 0;
}

static void test_block_keeps_source_bounded(void **state)
{
    /* capture holds its first request; the buffer (1000 events) fills; the demo source must
     * pause instead of generating its 200k lines into memory */
    struct bg b = {0};
    struct mars_stats gen, cap;
    bg_start(&b, "sources:\n"
                 "  gen: {type: demo, rate: 0, count: 200000, batch_events: 100}\n"
                 "sinks:\n"
                 "  cap: {type: capture, inputs: [gen], block: true,\n"
                 "        batch: {max_events: 100},\n"
                 "        buffer: {max_events: 1000, when_full: block}}\n");
    wait_until(held, "cap", 20);
    /* Give the source every chance to overrun. The sleep is the observation window of the
     * test, not synchronisation: nothing is waited for. */
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        bg_stats(&b, "gen", &gen);
        bg_stats(&b, "cap", &cap);
        /* one request held + a full buffer + the batch that crossed the limit */
        if (mars_stat_get(&gen.sent_events) > 100 + 1000 + 100)
            fail_msg("source sent %llu events while blocked (buffer %llu)",
                     (unsigned long long)mars_stat_get(&gen.sent_events),
                     (unsigned long long)mars_stat_get(&cap.buffer_events));
        assert_true(mars_stat_get(&cap.buffer_events) <= 1000 + 100);
    }
    assert_int_equal(mars_capture_count("cap"), 0);
    mars_capture_unblock("cap");
    bg_finish(&b);
    bg_stats(&b, "cap", &cap);
    assert_int_equal(mars_capture_count("cap"), 200000);
    assert_int_equal(mars_stat_get(&cap.sent_events), 200000);
    assert_int_equal(mars_stat_get(&cap.buffer_events), 0);
    assert_int_equal(mars_stat_get(&cap.discarded_intentional), 0);
    bg_free(&b);
    (void)state;
}

static bool three_held(void *id)
{
    return mars_capture_held(id) >= 3;
}

static void test_request_concurrency(void **state)
{
    /* request.concurrency: 3 requests are handed to the sink before the first is
     * answered, never a fourth; when they are released everything arrives */
    struct bg b = {0};
    struct mars_stats cap;
    bg_start(&b, "sources:\n"
                 "  gen: {type: demo, rate: 0, count: 20000, batch_events: 100}\n"
                 "sinks:\n"
                 "  cap: {type: capture, inputs: [gen], block: true,\n"
                 "        batch: {max_events: 100}, request: {concurrency: 3},\n"
                 "        buffer: {max_events: 1000, when_full: block}}\n");
    wait_until(three_held, "cap", 20);
    /* observation window (not synchronisation): a fourth request must not start */
    for (int i = 0; i < 10; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        assert_int_equal(mars_capture_held("cap"), 3);
    }
    mars_capture_unblock("cap");
    bg_finish(&b);
    bg_stats(&b, "cap", &cap);
    assert_int_equal(mars_capture_count("cap"), 20000);
    assert_int_equal(mars_stat_get(&cap.sent_events), 20000);
    bg_free(&b);
    (void)state;
}

static void test_retry_after_is_honoured(void **state)
{
    /* the sink says "come back in 300 ms" twice: the backoff (1 ms) must not win; and a
     * Retry-After above retry.max_retry_after is cut to it */
    struct mars_stats st;
    int64_t t0 = mars_ev_clock_ns();
    int rc = mars_test_run("sources:\n"
                           "  gen: {type: demo, rate: 0, count: 10}\n"
                           "sinks:\n"
                           "  cap: {type: capture, inputs: [gen], fail_first: 2,\n"
                           "        retry_after: 300ms,\n"
                           "        retry: {initial_backoff: 1ms, max_backoff: 2ms}}\n",
                           1, "cap", &st);
    int64_t took = mars_ev_clock_ns() - t0;
    assert_int_equal(rc, 0);
    assert_int_equal(mars_capture_count("cap"), 10);
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_RETRY]), 2);
    assert_true(took >= 600 * 1000000LL);
    t0 = mars_ev_clock_ns();
    rc = mars_test_run("sources:\n"
                       "  gen: {type: demo, rate: 0, count: 10}\n"
                       "sinks:\n"
                       "  cap: {type: capture, inputs: [gen], fail_first: 1,\n"
                       "        retry_after: 1h,\n"
                       "        retry: {initial_backoff: 1ms, max_backoff: 2ms,\n"
                       "                max_retry_after: 50ms}}\n",
                       1, "cap", &st);
    took = mars_ev_clock_ns() - t0;
    assert_int_equal(rc, 0);
    assert_true(took >= 50 * 1000000LL);
    assert_true(took < 30 * 1000000000LL);
    (void)state;
}

static void test_dead_letter(void **state)
{
    /* every 10th event refused by "out" goes to "dlq"; every request of "bad" is refused
     * and goes to "dlq2" whole; nothing is lost and every event is acknowledged */
    struct mars_stats out, dlq, gen, bad;
    const char *yaml = "sources:\n"
                       "  gen: {type: demo, rate: 0, count: 5000}\n"
                       "sinks:\n"
                       "  out: {type: capture, inputs: [gen], dead_letter_every: 10,\n"
                       "        dead_letter: dlq}\n"
                       "  dlq: {type: capture, inputs: []}\n"
                       "  bad: {type: capture, inputs: [gen], reject: true, dead_letter: dlq2}\n"
                       "  dlq2: {type: capture, inputs: []}\n";
    struct bg b = {0};
    bg_start(&b, yaml);
    bg_finish(&b);
    bg_stats(&b, "out", &out);
    bg_stats(&b, "dlq", &dlq);
    bg_stats(&b, "gen", &gen);
    bg_stats(&b, "bad", &bad);
    /* every 10th event of each request: about 500, depending on request sizes */
    size_t refused = mars_capture_count("dlq");
    assert_true(refused >= 450 && refused <= 500);
    assert_int_equal(mars_stat_get(&out.sent_events), 5000 - refused);
    assert_int_equal(mars_stat_get(&out.discarded_unintentional), 0);
    assert_int_equal(mars_stat_get(&dlq.sent_events), refused);
    assert_int_equal(mars_capture_count("dlq2"), 5000);
    assert_int_equal(mars_stat_get(&bad.discarded_unintentional), 0);
    assert_true(mars_stat_get(&bad.errors[MARS_ERR_REJECTED]) > 0);
    assert_int_equal(mars_stat_get(&gen.acked_events), 5000);
    bg_free(&b);
    (void)state;
}

static struct bg *b_watched;

static bool source_done(void *id)
{
    struct mars_stats st;
    bg_stats(b_watched, id, &st);
    return mars_stat_get(&st.sent_events) == 50000;
}

static void test_drop_newest_counts(void **state)
{
    struct bg b = {0};
    struct mars_stats cap;
    bg_start(&b, "sources:\n"
                 "  gen: {type: demo, rate: 0, count: 50000, batch_events: 100}\n"
                 "sinks:\n"
                 "  cap: {type: capture, inputs: [gen], block: true,\n"
                 "        batch: {max_events: 100},\n"
                 "        buffer: {max_events: 1000, when_full: drop_newest}}\n");
    wait_until(held, "cap", 20);
    b_watched = &b;
    wait_until(source_done, "gen", 20); /* drop_newest never pauses the source */
    mars_capture_unblock("cap");
    bg_finish(&b);
    bg_stats(&b, "cap", &cap);
    uint64_t dropped = mars_stat_get(&cap.discarded_intentional);
    assert_true(dropped > 0);
    /* nothing vanished: every event was either delivered or counted as dropped */
    assert_int_equal(mars_capture_count("cap") + dropped, 50000);
    assert_int_equal(mars_stat_get(&cap.received_events), 50000);
    bg_free(&b);
    (void)state;
}

static bool enough(void *id)
{
    return mars_capture_count(id) > 20000;
}

static void *stopper(void *arg)
{
    wait_until(enough, "cap", 20);
    mars_engine_request_stop(arg);
    return NULL;
}

static void test_request_stop_drains(void **state)
{
    struct mars_diag d;
    struct mars_config *cfg = NULL;
    mars_diag_init(&d);
    assert_int_equal(mars_config_load_string("t.yaml",
                                             "sources:\n"
                                             "  gen: {type: demo, rate: 0, count: 0}\n"
                                             "sinks:\n"
                                             "  cap: {type: capture, inputs: [gen]}\n",
                                             &cfg, &d),
                     0);
    mars_diag_fini(&d);
    struct mars_engine_opts o = {.workers = 1};
    struct mars_engine *e = mars_engine_create(cfg, &o);
    pthread_t th;
    pthread_create(&th, NULL, stopper, e);
    assert_int_equal(mars_engine_run(e), 0);
    pthread_join(th, NULL);
    struct mars_stats st;
    mars_engine_node_stats(e, (uint32_t)mars_config_find(cfg, "gen"), &st);
    /* everything the source emitted before stopping was delivered and acknowledged */
    assert_int_equal(mars_stat_get(&st.sent_events), mars_capture_count("cap"));
    assert_int_equal(mars_stat_get(&st.acked_events), mars_capture_count("cap"));
    mars_engine_destroy(e);
    mars_config_destroy(cfg);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_demo_to_capture_exact, setup),
        cmocka_unit_test_setup(test_fan_out_and_determinism, setup),
        cmocka_unit_test_setup(test_retries_then_delivers, setup),
        cmocka_unit_test_setup(test_two_sources_two_workers, setup),
        cmocka_unit_test_setup(test_block_keeps_source_bounded, setup),
        cmocka_unit_test_setup(test_request_concurrency, setup),
        cmocka_unit_test_setup(test_retry_after_is_honoured, setup),
        cmocka_unit_test_setup(test_dead_letter, setup),
        cmocka_unit_test_setup(test_drop_newest_counts, setup),
        cmocka_unit_test_setup(test_request_stop_drains, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
