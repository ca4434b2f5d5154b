/*
 * Runtime tests of the prometheus_exporter sink: instances on two workers share one
 * listener and one series table (internal_metrics on one worker, health_check on the
 * other), every family appears once with HELP and TYPE, histograms keep their buckets, log
 * events are ignored (and counted), stale series expire, max_series bounds the table, and
 * label names are sorted and unreserved, one series per set of labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "core/log.h"
#include "httpc.h"
#include "runner.h"

static char sock[64];

static int setup(void **state)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_capture_setup();
    snprintf(sock, sizeof(sock), "/tmp/mars-pe-test-%d.sock", (int)getpid());
    (void)state;
    return 0;
}

/* The exposition, or NULL while the exporter is not listening yet. */
static char *try_scrape(void)
{
    struct httpc_resp r;
    if (httpc_request(sock, "GET", "/metrics", NULL, &r))
        return NULL;
    char *body = r.status == 200 ? strdup(r.body) : NULL;
    httpc_resp_fini(&r);
    return body;
}

static char *scrape(void)
{
    struct httpc_resp r;
    assert_int_equal(httpc_request(sock, "GET", "/metrics", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "text/plain; version=0.0.4"));
    char *body = strdup(r.body);
    httpc_resp_fini(&r);
    return body;
}

static bool scrape_has(void *text)
{
    char *b = try_scrape();
    bool yes = b && strstr(b, text) != NULL;
    free(b);
    return yes;
}

static bool scrape_lacks(void *text)
{
    char *b = try_scrape();
    bool yes = b && strstr(b, text) == NULL;
    free(b);
    return yes;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_two_workers_one_listener(void **state)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "sources:\n"
             "  im: {type: internal_metrics, interval: 20ms}\n"
             "  hc: {type: health_check, checks: [{name: ok, type: exec, command: ['true'],\n"
             "       interval: 20ms}]}\n"
             "sinks:\n"
             "  prom: {type: prometheus_exporter, inputs: [im, hc], address: '%s'}\n",
             sock);
    struct mars_bg b = {0};
    mars_bg_start(&b, yaml, 2, false);
    mars_wait_until(scrape_has, "mars_health_check_up{check=\"ok\",type=\"exec\"} 1", 20,
                    "the health check's series");
    mars_wait_until(scrape_has, "mars_component_sent_events_total{component_id=\"hc\"", 20,
                    "internal metrics");
    char *body = scrape();
    assert_int_equal(occurrences(body, "# TYPE mars_health_check_up gauge\n"), 1);
    assert_int_equal(occurrences(body, "# HELP mars_health_check_up 1 while"), 1);
    assert_int_equal(occurrences(body, "# TYPE mars_component_sent_events_total counter\n"), 1);
    assert_int_equal(occurrences(body, "# TYPE mars_batch_latency_seconds histogram\n"), 1);
    assert_non_null(strstr(body, "mars_batch_latency_seconds_bucket{component_id=\"prom\","
                                 "component_kind=\"sink\",component_type=\"prometheus_exporter\","
                                 "le=\"+Inf\"}"));
    free(body);
    /* the health check's UP log event reached the exporter and was set aside */
    struct mars_stats st;
    mars_engine_node_stats(b.e, (uint32_t)mars_config_find(b.cfg, "prom"), &st);
    assert_true(mars_stat_get(&st.discarded_intentional) >= 1);
    mars_bg_stop(&b);
    (void)state;
}

static void test_expire_and_bound(void **state)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "sources:\n"
             "  hc: {type: health_check, checks: [\n"
             "       {name: a, type: exec, command: ['true'], interval: 1h},\n"
             "       {name: b, type: exec, command: ['true'], interval: 1h}]}\n"
             "sinks:\n"
             "  prom: {type: prometheus_exporter, inputs: [hc], address: '%s',\n"
             "         expire_after: 300ms, max_series: 4}\n",
             sock);
    struct mars_bg b = {0};
    mars_bg_start(&b, yaml, 1, false);
    mars_wait_until(scrape_has, "mars_health_check_up{check=\"a\"", 20, "check a's series");
    mars_wait_until(scrape_has, "mars_health_check_up{check=\"b\"", 20, "check b's series");
    char *body = scrape();
    /* 2 checks x 3 families = 6 series, 4 kept */
    assert_int_equal(occurrences(body, "{check=\""), 4);
    free(body);
    /* no new samples for an hour: everything expires */
    mars_wait_until(scrape_lacks, "mars_health_check_up", 20, "expiry");
    struct mars_stats st;
    mars_engine_node_stats(b.e, (uint32_t)mars_config_find(b.cfg, "prom"), &st);
    assert_true(mars_stat_get(&st.discarded_intentional) >= 2);
    mars_bg_stop(&b);
    (void)state;
}

#define LABELLED "lines_seen_total{x_p=\"b\",a=\"2\",xe=\"a\",z=\"1\"} "

/* The labelled series counted 20 lines or more (so took samples of several batches). */
static bool counted_20(void *unused)
{
    (void)unused;
    char *b = try_scrape();
    const char *at = b ? strstr(b, LABELLED) : NULL;
    bool yes = at && atof(at + strlen(LABELLED)) >= 20;
    free(b);
    return yes;
}

static void test_label_names(void **state)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "sources:\n"
             "  d: {type: demo, rate: 200, batch_events: 10}\n"
             "transforms:\n"
             "  m:\n"
             "    type: log_to_metric\n"
             "    inputs: [d]\n"
             "    metrics:\n"
             "      - {type: counter, name: lines_seen_total,\n"
             "         labels: {z: '1', le: a, a: '2', __p: b}}\n"
             "sinks:\n"
             "  prom: {type: prometheus_exporter, inputs: [m], address: '%s'}\n",
             sock);
    struct mars_bg b = {0};
    mars_bg_start(&b, yaml, 1, false);
    /* sorted by name, and unreserved (le and __* become x...); the samples of one label set,
     * one per batch, are one series */
    mars_wait_until(counted_20, NULL, 20, "the series with its labels, over 20 lines");
    char *body = scrape();
    assert_int_equal(occurrences(body, "lines_seen_total{"), 1);
    free(body);
    mars_bg_stop(&b);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_two_workers_one_listener, setup),
        cmocka_unit_test_setup(test_expire_and_bound, setup),
        cmocka_unit_test_setup(test_label_names, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
