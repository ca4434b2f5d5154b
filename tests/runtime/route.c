/*
 * Runtime tests of the `route` transform: named outputs read as id.name, an event in every
 * output whose condition it matches, _unmatched, whole batches passed by reference, and
 * graph errors for outputs that do not exist or a route read without an output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "expect.h"
#include "component.h"
#include "engine/instance.h"

static void test_outputs_and_unmatched(void **state)
{
    struct mars_stats st;
    assert_int_equal(
        mars_test_run("sources:\n"
                      "  in: {type: lines, lines: ['ERROR disk', 'INFO ok', 'ERROR slow db', "
                      "'WARN slow', 'DEBUG x']}\n"
                      "transforms:\n"
                      "  r: {type: route, inputs: [in], route: {errors: 'starts_with(message, "
                      "\"ERROR\")', slow: 'contains(message, \"slow\")', none: 'false'}}\n"
                      "sinks:\n"
                      "  e: {type: capture, inputs: [r.errors]}\n"
                      "  s: {type: capture, inputs: [r.slow]}\n"
                      "  u: {type: capture, inputs: [r._unmatched]}\n"
                      "  both: {type: capture, inputs: [r.errors, r.slow]}\n",
                      1, "in", &st),
        0);
    MARS_EXPECT("e", "ERROR disk", "ERROR slow db");
    MARS_EXPECT("s", "ERROR slow db", "WARN slow");
    MARS_EXPECT("u", "INFO ok", "DEBUG x");
    assert_int_equal(mars_capture_count("both"), 4); /* one per output it reads */
    assert_int_equal(mars_stat_get(&st.acked_events), 5);
    (void)state;
}

static void test_whole_batch_and_chain(void **state)
{
    mars_expect_run("['{\"level\":\"error\",\"n\":1}', '{\"level\":\"error\",\"n\":2}']", NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  r: {type: route, inputs: [p], route: {err: 'level == \"error\"'}}\n"
                    "  m: {type: modify, inputs: [r.err], set: {routed: yes}}",
                    "m", NULL, NULL);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"level\":\"error\",\"n\":1,"
                "\"routed\":\"yes\"}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"level\":\"error\",\"n\":2,"
                "\"routed\":\"yes\"}");
    (void)state;
}

static void expect_error(const char *inputs, const char *want)
{
    char yaml[1024];
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    snprintf(yaml, sizeof(yaml),
             "sources:\n  in: {type: lines, lines: [a]}\n"
             "transforms:\n  r: {type: route, inputs: [in], route: {a: 'true', b: 'false'}}\n"
             "sinks:\n  c: {type: capture, inputs: %s}\n",
             inputs);
    mars_diag_init(&d);
    assert_int_not_equal(mars_config_load_string("t.yaml", yaml, &cfg, &d), 0);
    bool found = false;
    for (size_t i = 0; i < mars_diag_count(&d); i++)
        found = found || strstr(d.msgs[i].text, want);
    if (!found)
        fail_msg("%s: no error says '%s' (first: %s)", inputs, want,
                 mars_diag_count(&d) ? d.msgs[0].text : "none");
    mars_diag_fini(&d);
}

static void test_graph_errors(void **state)
{
    expect_error("[r]", "t.yaml:6:31: sink 'c': 'r' has named outputs; read one of them: r.a, "
                        "r.b, r._unmatched");
    expect_error("[r.c]", "sink 'c': 'r' has no output 'c' (it has r.a, r.b, r._unmatched)");
    expect_error("[in.x]", "sink 'c': 'in' has no named outputs");
    expect_error("[r.a, r.a]", "input 'r.a' is listed twice");
    (void)state;
}

static void test_bad_route_names(void **state)
{
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    mars_diag_init(&d);
    assert_int_not_equal(
        mars_config_load_string("t.yaml",
                                "sources:\n  in: {type: lines, lines: [a]}\n"
                                "transforms:\n  r: {type: route, inputs: [in], route: "
                                "{_unmatched: 'true', x.y: 'a ==', ok: 'a'}}\n"
                                "sinks:\n  c: {type: capture, inputs: [r.ok]}\n",
                                &cfg, &d),
        0);
    assert_int_equal(mars_diag_count(&d), 3);
    assert_non_null(strstr(d.msgs[0].text, "output name '_unmatched' must be"));
    assert_non_null(strstr(d.msgs[1].text, "output name 'x.y' must be"));
    assert_non_null(strstr(d.msgs[2].text, "option 'route.x.y': bad condition: expected a field"));
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_outputs_and_unmatched, mars_expect_setup),
        cmocka_unit_test_setup(test_whole_batch_and_chain, mars_expect_setup),
        cmocka_unit_test_setup(test_graph_errors, mars_expect_setup),
        cmocka_unit_test_setup(test_bad_route_names, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
