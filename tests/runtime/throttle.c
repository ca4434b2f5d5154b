/*
 * Runtime tests of the `throttle` transform: threshold per key within a window, exclude,
 * counts of what was dropped, the key cap, and a new window restoring the budget.
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

static void test_per_key_threshold(void **state)
{
    struct mars_stats st;
    assert_int_equal(
        mars_test_run(
            "sources:\n"
            "  in: {type: lines, batch_size: 2, lines: ['{\"svc\":\"a\",\"n\":1}', "
            "'{\"svc\":\"b\",\"n\":2}', '{\"svc\":\"a\",\"n\":3}', '{\"svc\":\"a\",\"n\":4}', "
            "'{\"svc\":\"b\",\"n\":5}', '{\"svc\":\"b\",\"n\":6}', '{\"svc\":\"c\",\"n\":7}', "
            "'{\"svc\":\"a\",\"n\":8,\"vip\":true}']}\n"
            "transforms:\n"
            "  p: {type: parse, inputs: [in], format: json}\n"
            "  t: {type: throttle, inputs: [p], threshold: 2, window: 1h,\n"
            "      key: '{{ svc }}', exclude: vip}\n"
            "sinks:\n"
            "  c: {type: capture, inputs: [t], encoding: json}\n",
            1, "t", &st),
        0);
    size_t n = mars_capture_count("c");
    char got[64] = "";
    for (size_t i = 0; i < n; i++) {
        const char *m = strstr(mars_capture_get("c", i), "\"n\":");
        strncat(got, m + 4, 1);
    }
    assert_string_equal(got, "123578");
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 2);
    (void)state;
}

static void test_key_cap_shares_budget(void **state)
{
    struct mars_stats st;
    assert_int_equal(mars_test_run("sources:\n"
                                   "  in: {type: lines, lines: [a, b, c, d, e, f]}\n"
                                   "transforms:\n"
                                   "  t: {type: throttle, inputs: [in], threshold: 1, window: 1h,\n"
                                   "      key: '{{ message }}', max_keys: 2}\n"
                                   "sinks:\n"
                                   "  c: {type: capture, inputs: [t]}\n",
                                   1, "t", &st),
                     0);
    MARS_EXPECT("c", "a", "b", "c"); /* c opens the shared overflow budget; d, e, f exceed it */
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_LIMIT]), 4);
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 3);
    (void)state;
}

static void test_new_window_restores_budget(void **state)
{
    struct mars_stats st;
    assert_int_equal(
        mars_test_run("sources:\n"
                      "  in: {type: lines, lines: [a, b, c, d], batch_size: 2,\n"
                      "       interval: 300ms}\n"
                      "transforms:\n"
                      "  t: {type: throttle, inputs: [in], threshold: 1, window: 100ms}\n"
                      "sinks:\n"
                      "  c: {type: capture, inputs: [t]}\n",
                      1, "t", &st),
        0);
    MARS_EXPECT("c", "a", "c");
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 2);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_per_key_threshold, mars_expect_setup),
        cmocka_unit_test_setup(test_key_cap_shares_budget, mars_expect_setup),
        cmocka_unit_test_setup(test_new_window_restores_budget, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
