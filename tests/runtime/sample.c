/*
 * Runtime tests of the `sample` transform: one in N exactly, keys that keep related events
 * together, exclude, and the counts of what was dropped.
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
#include "expect.h"
#include "component.h"
#include "engine/instance.h"

static void test_one_in_n(void **state)
{
    struct mars_stats st;
    mars_expect_run("[l0, l1, l2, l3, l4, l5, l6]", "batch_size: 3",
                    "  s: {type: sample, inputs: [in], rate: 3}", "s", "s", &st);
    MARS_EXPECT("cap", "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"message\":\"l0\"}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"message\":\"l3\"}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"message\":\"l6\"}");
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 4);
    (void)state;
}

static void test_exclude_always_kept(void **state)
{
    assert_int_equal(mars_test_run("sources:\n"
                                   "  in: {type: lines, lines: [a, ERROR x, b, c, ERROR y, d]}\n"
                                   "transforms:\n"
                                   "  s: {type: sample, inputs: [in], rate: 100,\n"
                                   "      exclude: 'starts_with(message, \"ERROR\")'}\n"
                                   "sinks:\n"
                                   "  c: {type: capture, inputs: [s]}\n",
                                   1, NULL, NULL),
                     0);
    MARS_EXPECT("c", "a", "ERROR x", "ERROR y"); /* a is the counter's first */
    (void)state;
}

static void test_key_keeps_traces_together(void **state)
{
    /* 40 traces of 5 events each, interleaved; a trace is kept whole or dropped whole */
    char lines[16384];
    size_t o = 0;
    o += (size_t)snprintf(lines + o, sizeof(lines) - o, "[");
    for (int e = 0; e < 5; e++)
        for (int tr = 0; tr < 40; tr++)
            o += (size_t)snprintf(lines + o, sizeof(lines) - o, "%s'{\"trace\":\"t%d\",\"e\":%d}'",
                                  o > 1 ? ", " : "", tr, e);
    snprintf(lines + o, sizeof(lines) - o, "]");
    mars_expect_run(lines, "batch_size: 7",
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  s: {type: sample, inputs: [p], rate: 4, key: '{{ trace }}'}",
                    "s", NULL, NULL);
    int per_trace[40] = {0};
    size_t n = mars_capture_count("cap");
    for (size_t i = 0; i < n; i++) {
        const char *m = strstr(mars_capture_get("cap", i), "\"trace\":\"t");
        assert_non_null(m);
        per_trace[atoi(m + 10)]++;
    }
    int kept = 0;
    for (int tr = 0; tr < 40; tr++) {
        assert_true(per_trace[tr] == 0 || per_trace[tr] == 5);
        kept += per_trace[tr] == 5;
    }
    assert_true(kept >= 3 && kept <= 20); /* about a quarter of 40 */
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_one_in_n, mars_expect_setup),
        cmocka_unit_test_setup(test_exclude_always_kept, mars_expect_setup),
        cmocka_unit_test_setup(test_key_keeps_traces_together, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
