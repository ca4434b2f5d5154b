/*
 * Runtime tests of the admin API on an in-process engine: /healthz (failing while a worker
 * loop is stuck), /readyz flipping when a
 * sink's peer goes down and comes back (the capture sink's fail mode), /metrics families,
 * /api/v1/components with the last error, the reload token, and that nothing listens when
 * the API is disabled or not requested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "core/log.h"
#include "httpc.h"
#include "runner.h"

static int setup(void **state)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_capture_setup();
    (void)state;
    return 0;
}

static const char *api_addr;

static int get_status(const char *path, char **body)
{
    struct httpc_resp r;
    assert_int_equal(httpc_request(api_addr, "GET", path, NULL, &r), 0);
    int st = r.status;
    if (body)
        *body = strdup(r.body);
    httpc_resp_fini(&r);
    return st;
}

static bool not_ready(void *arg)
{
    char *body = NULL;
    int st = get_status("/readyz", &body);
    bool yes = st == 503 && strstr(body, arg);
    free(body);
    return yes;
}

static bool ready(void *arg)
{
    (void)arg;
    return get_status("/readyz", NULL) == 200;
}

static const char *const pipeline =
    "api: {address: \"127.0.0.1:0\", token: t0k3n, readiness: sinks, sink_failure_threshold: 3}\n"
    "sources:\n"
    "  gen: {type: demo, rate: 500}\n"
    "sinks:\n"
    "  cap: {type: capture, inputs: [gen],\n"
    "        retry: {initial_backoff: 5ms, max_backoff: 10ms}}\n";

static void test_readiness_follows_sink_failures(void **state)
{
    struct mars_bg b = {0};
    char *body;
    mars_bg_start(&b, pipeline, 1, true);
    api_addr = mars_bg_api(&b);
    mars_wait_until(ready, NULL, 10, "/readyz 200");
    assert_int_equal(get_status("/healthz", &body), 200);
    assert_non_null(strstr(body, "\"ok\""));
    free(body);

    /* the peer goes down: requests fail, retries pile up, readiness drops */
    mars_capture_fail("cap", true);
    mars_wait_until(not_ready, "sink 'cap' has failed", 10, "/readyz 503 naming cap");
    assert_int_equal(get_status("/readyz", &body), 503);
    assert_non_null(strstr(body, "\"component\":\"cap\""));
    free(body);
    assert_int_equal(get_status("/healthz", NULL), 200); /* alive all the same */
    assert_int_equal(get_status("/api/v1/components", &body), 200);
    assert_non_null(strstr(body, "\"id\":\"cap\",\"type\":\"capture\",\"kind\":\"sink\""));
    assert_non_null(strstr(body, "failed; retrying"));
    assert_non_null(strstr(body, "\"fill\":"));
    free(body);

    /* and comes back */
    mars_capture_fail("cap", false);
    mars_wait_until(ready, NULL, 10, "/readyz 200 again");
    assert_int_equal(get_status("/metrics", &body), 200);
    assert_non_null(strstr(body, "# TYPE mars_component_sent_events_total counter\n"));
    assert_non_null(strstr(body, "mars_sink_consecutive_failures{component_id=\"cap\","
                                 "component_type=\"capture\",component_kind=\"sink\"} 0\n"));
    assert_non_null(strstr(body, "mars_component_errors_total{component_id=\"cap\","
                                 "component_type=\"capture\",component_kind=\"sink\","
                                 "error_type=\"retry\",stage=\"sending\"}"));
    assert_non_null(strstr(body, "mars_batch_latency_seconds_bucket{component_id=\"cap\""));
    assert_non_null(strstr(body, "mars_build_info{version=\"" MARS_VERSION "\",io_backend=\""));
    free(body);
    mars_bg_stop(&b);
    (void)state;
}

static bool sink_failing(void *arg)
{
    char *body = NULL;
    bool yes = get_status("/api/v1/components", &body) == 200 && strstr(body, arg);
    free(body);
    return yes;
}

/* The default readiness is "the pipeline runs": a failing backend shows in the components
 * and the metrics, never in /readyz. */
static void test_readiness_default_ignores_sinks(void **state)
{
    struct mars_bg b = {0};
    char *body;
    mars_bg_start(&b,
                  "api: {address: \"127.0.0.1:0\", sink_failure_threshold: 1}\n"
                  "sources:\n"
                  "  gen: {type: demo, rate: 500}\n"
                  "sinks:\n"
                  "  cap: {type: capture, inputs: [gen],\n"
                  "        retry: {initial_backoff: 5ms, max_backoff: 10ms}}\n",
                  1, true);
    api_addr = mars_bg_api(&b);
    mars_wait_until(ready, NULL, 10, "/readyz 200");
    mars_capture_fail("cap", true);
    mars_wait_until(sink_failing, "failed; retrying", 10, "the last error of cap");
    assert_int_equal(get_status("/metrics", &body), 200);
    const char *g = strstr(body, "mars_sink_consecutive_failures{component_id=\"cap\",");
    assert_non_null(g);
    assert_true(strtoull(strchr(g, '}') + 2, NULL, 10) >= 1);
    free(body);
    assert_int_equal(get_status("/readyz", &body), 200);
    assert_string_equal(body, "{\"status\":\"ready\"}\n");
    free(body);
    mars_capture_fail("cap", false);
    mars_bg_stop(&b);
    (void)state;
}

static int post_reload(const char *headers)
{
    struct httpc_resp r;
    assert_int_equal(httpc_request(api_addr, "POST", "/api/v1/reload", headers, &r), 0);
    int st = r.status;
    httpc_resp_fini(&r);
    return st;
}

static void test_reload_token(void **state)
{
    struct mars_bg b = {0};
    mars_bg_start(&b, pipeline, 1, true);
    api_addr = mars_bg_api(&b);
    assert_int_equal(post_reload(NULL), 401);
    assert_int_equal(post_reload("Authorization: Basic dTpw\r\n"), 401);
    assert_int_equal(post_reload("Authorization: Bearer t0k3\r\n"), 403);
    assert_int_equal(post_reload("Authorization: Bearer t0k3n-and-more\r\n"), 403);
    assert_int_equal(post_reload("Authorization: Bearer t0k3n\r\n"), 501); /* not yet */
    assert_int_equal(get_status("/api/v1/reload", NULL), 405);
    mars_bg_stop(&b);

    /* without a token, reload is refused whatever the request says */
    mars_bg_start(&b,
                  "api: {address: \"127.0.0.1:0\"}\n"
                  "sources: {gen: {type: demo, rate: 10}}\n"
                  "sinks: {cap: {type: capture, inputs: [gen]}}\n",
                  1, true);
    api_addr = mars_bg_api(&b);
    assert_int_equal(post_reload("Authorization: Bearer anything\r\n"), 403);
    mars_bg_stop(&b);
    (void)state;
}

static void test_no_api_unless_enabled_and_requested(void **state)
{
    struct mars_bg b = {0};
    struct mars_stats st;
    /* enabled in the config but not requested by the embedder (tests' default) */
    mars_bg_start(&b,
                  "sources: {gen: {type: demo, rate: 0, count: 100}}\n"
                  "sinks: {cap: {type: capture, inputs: [gen]}}\n",
                  1, false);
    pthread_join(b.th, NULL);
    assert_int_equal(b.rc, 0);
    assert_null(mars_bg_api_address(&b));
    mars_engine_destroy(b.e);
    mars_config_destroy(b.cfg);
    /* requested but disabled */
    assert_int_equal(mars_test_run("api: {enabled: false}\n"
                                   "sources: {gen: {type: demo, rate: 0, count: 100}}\n"
                                   "sinks: {cap: {type: capture, inputs: [gen]}}\n",
                                   1, "cap", &st),
                     0);
    mars_bg_start(&b,
                  "api: {enabled: false}\n"
                  "sources: {gen: {type: demo, rate: 10}}\n"
                  "sinks: {cap: {type: capture, inputs: [gen]}}\n",
                  1, true);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    assert_null(mars_bg_api_address(&b));
    mars_bg_stop(&b);
    (void)state;
}

static bool unhealthy(void *arg)
{
    char *body = NULL;
    bool yes = get_status("/healthz", &body) == 503 && strstr(body, arg);
    free(body);
    return yes;
}

static bool healthy(void *arg)
{
    (void)arg;
    return get_status("/healthz", NULL) == 200;
}

static void test_healthz_fails_while_a_loop_is_stuck(void **state)
{
    struct mars_bg b = {0};
    mars_bg_start(&b,
                  "api: {address: \"127.0.0.1:0\", heartbeat_timeout: 1s}\n"
                  "sources: {gen: {type: demo, rate: 100}}\n"
                  "sinks: {cap: {type: capture, inputs: [gen], stall: 3s}}\n",
                  1, true);
    api_addr = mars_bg_api(&b);
    /* the capture sink blocks worker 0 for 3 s in its first request */
    mars_wait_until(unhealthy, "worker 0 has not turned", 10, "/healthz 503 naming worker 0");
    mars_wait_until(healthy, NULL, 10, "/healthz 200 once the loop turns again");
    mars_bg_stop(&b);
    (void)state;
}

static bool held(void *id)
{
    return mars_capture_held(id) > 0;
}

static void test_readyz_while_stopping(void **state)
{
    struct mars_bg b = {0};
    char *body;
    /* a blocked sink keeps the engine draining after the stop request */
    mars_bg_start(&b,
                  "api: {address: \"127.0.0.1:0\"}\n"
                  "runtime: {shutdown_timeout: 30s}\n"
                  "sources: {gen: {type: demo, rate: 100}}\n"
                  "sinks: {cap: {type: capture, inputs: [gen], block: true}}\n",
                  1, true);
    api_addr = mars_bg_api(&b);
    mars_wait_until(ready, NULL, 10, "/readyz 200");
    mars_wait_until(held, "cap", 10, "a request held by the sink");
    mars_engine_request_stop(b.e);
    mars_wait_until(not_ready, "shutting down", 10, "/readyz 503 shutting down");
    assert_int_equal(get_status("/readyz", &body), 503);
    free(body);
    mars_capture_unblock("cap"); /* the drain completes */
    pthread_join(b.th, NULL);
    assert_int_equal(b.rc, 0);
    mars_engine_destroy(b.e);
    mars_config_destroy(b.cfg);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_readiness_follows_sink_failures, setup),
        cmocka_unit_test_setup(test_reload_token, setup),
        cmocka_unit_test_setup(test_no_api_unless_enabled_and_requested, setup),
        cmocka_unit_test_setup(test_readiness_default_ignores_sinks, setup),
        cmocka_unit_test_setup(test_readyz_while_stopping, setup),
        cmocka_unit_test_setup(test_healthz_fails_while_a_loop_is_stuck, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
