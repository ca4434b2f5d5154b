/*
 * Runtime tests of the internal_metrics source: snapshots of the engine's metrics arrive
 * as metric events (rendered as exposition lines in the capture sink), with the component
 * families, the batch latency histogram and build info; `namespace` renames them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "core/log.h"
#include "runner.h"

static int setup(void **state)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_capture_setup();
    (void)state;
    return 0;
}

static bool captured(void *text)
{
    size_t n = mars_capture_count("cap");
    for (size_t i = 0; i < n; i++)
        if (strstr(mars_capture_get("cap", i), text))
            return true;
    return false;
}

static void test_snapshots(void **state)
{
    struct mars_bg b = {0};
    mars_bg_start(&b,
                  "sources:\n"
                  "  gen: {type: demo, rate: 0, count: 1000}\n"
                  "  im: {type: internal_metrics, interval: 20ms}\n"
                  "sinks:\n"
                  "  bh: {type: blackhole, inputs: [gen]}\n"
                  "  cap: {type: capture, inputs: [im]}\n",
                  2, false);
    mars_wait_until(captured,
                    "mars_component_sent_events_total{component_id=\"gen\","
                    "component_type=\"demo\",component_kind=\"source\"} 1000",
                    20, "the demo source's final count in a snapshot");
    mars_wait_until(captured,
                    "mars_source_acked_events_total{component_id=\"gen\","
                    "component_type=\"demo\",component_kind=\"source\"} 1000",
                    20, "acknowledged events");
    assert_true(captured("mars_batch_latency_seconds_count{component_id=\"bh\""));
    assert_true(captured("mars_build_info{version=\"" MARS_VERSION "\""));
    assert_true(captured("mars_workers 2"));
    /* its own batches are counted too (an earlier snapshot has reached the sink) */
    mars_wait_until(captured, "mars_component_sent_events_total{component_id=\"cap\"", 20,
                    "the capture sink's own counters");
    mars_bg_stop(&b);
    (void)state;
}

static void test_namespace(void **state)
{
    struct mars_bg b = {0};
    mars_bg_start(&b,
                  "sources:\n"
                  "  im: {type: internal_metrics, interval: 20ms, namespace: agent}\n"
                  "sinks:\n"
                  "  cap: {type: capture, inputs: [im]}\n",
                  1, false);
    mars_wait_until(captured, "agent_workers 1", 20, "renamed family");
    assert_false(captured("mars_workers"));
    mars_bg_stop(&b);
    struct mars_diag d;
    struct mars_config *cfg = NULL;
    mars_diag_init(&d);
    assert_int_not_equal(mars_config_load_string("t.yaml",
                                                 "sources: {im: {type: internal_metrics, "
                                                 "namespace: 'bad-name'}}\n"
                                                 "sinks: {cap: {type: capture, inputs: [im]}}\n",
                                                 &cfg, &d),
                         0);
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_snapshots, setup),
        cmocka_unit_test_setup(test_namespace, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
