/*
 * Runtime tests of the `filter` transform: exact events kept, invert, conditions on parsed
 * fields, counts of what was dropped, a shared batch left intact for the other reader, and
 * condition errors pointing at their column.
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

#define T0 "\"timestamp\":\"2024-01-01T00:00:00.000000000Z\""

static const char *const lines =
    "['{\"level\":\"error\",\"status\":503,\"path\":\"/api/v1/x\",\"tags\":[\"a\",\"b\"]}', "
    "'{\"level\":\"info\",\"status\":200,\"path\":\"/healthz\"}', "
    "'{\"level\":\"warn\",\"status\":\"404\",\"path\":\"/api/v2/y\",\"user\":{\"id\":7}}', "
    "'{\"level\":\"ERROR\",\"status\":500.5,\"path\":\"/\",\"debug\":false}']";

static void test_keep_matching(void **state)
{
    struct mars_stats st;
    mars_expect_run(lines, NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  f: {type: filter, inputs: [p], condition: 'status >= 500'}",
                    "f", "f", &st);
    MARS_EXPECT("cap",
                "{" T0 ",\"level\":\"error\",\"status\":503,\"path\":\"/api/v1/x\","
                "\"tags\":[\"a\",\"b\"]}",
                "{" T0 ",\"level\":\"ERROR\",\"status\":500.5,\"path\":\"/\",\"debug\":false}");
    assert_int_equal(mars_stat_get(&st.received_events), 4);
    assert_int_equal(mars_stat_get(&st.sent_events), 2);
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 2);
    (void)state;
}

static void test_invert(void **state)
{
    mars_expect_run(lines, NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  f: {type: filter, inputs: [p], invert: true,\n"
                    "      condition: 'starts_with(path, \"/api/\") || debug == false'}",
                    "f", NULL, NULL);
    MARS_EXPECT("cap", "{" T0 ",\"level\":\"info\",\"status\":200,\"path\":\"/healthz\"}");
    (void)state;
}

struct case_ {
    const char *cond;
    const char *kept; /* indices of kept lines, e.g. "02" */
};

static void test_condition_table(void **state)
{
    static const struct case_ cases[] = {
        {"level == \"error\"", "0"},
        {"level != \"error\"", "123"},
        {"status == 404", "2"}, /* a numeric string compares as a number */
        {"status == \"404\"", "2"},
        {"status < 300 || status > 500", "013"},
        {"!(status >= 500)", "12"},
        {"exists(user.id) && user.id == 7", "2"},
        {"!exists(user)", "013"},
        {"contains(tags, \"b\")", "0"}, /* element of an array */
        {"contains(path, \"api\")", "02"},
        {"ends_with(path, \"/y\")", "2"},
        {"match(level, \"^(?i)error$\")", "03"},
        {"in(level, [\"warn\", \"info\"])", "12"},
        {"in(status, [200, 404])", "12"},
        {"tags[1] == \"b\"", "0"},
        {"debug == false", "3"},
        {"debug", ""}, /* bare path: exists and not false/null */
        {"level", "0123"},
        {"missing != 1", "0123"},
        {"missing == 1", ""},
        {"level > \"info\"", "2"}, /* bytewise: "warn" > "info" > "error" > "ERROR" */
        {"(level == \"info\" || level == \"warn\") && path != \"/healthz\"", "2"},
        {"message == \"x\"", ""}, /* parse removed the message */
        {"true", "0123"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char tr[512];
        mars_expect_setup(NULL);
        snprintf(tr, sizeof(tr),
                 "  p: {type: parse, inputs: [in], format: json}\n"
                 "  f: {type: filter, inputs: [p], condition: '%s'}",
                 cases[i].cond);
        mars_expect_run(lines, NULL, tr, "f", NULL, NULL);
        size_t want = strlen(cases[i].kept);
        if (mars_capture_count("cap") != want)
            fail_msg("'%s': kept %zu events, want %zu", cases[i].cond, mars_capture_count("cap"),
                     want);
        for (size_t k = 0; k < want; k++) {
            char needle[64];
            static const char *const levels[] = {"\"error\"", "\"info\"", "\"warn\"", "\"ERROR\""};
            snprintf(needle, sizeof(needle), "\"level\":%s", levels[cases[i].kept[k] - '0']);
            if (!strstr(mars_capture_get("cap", k), needle))
                fail_msg("'%s': event %zu is %s", cases[i].cond, k, mars_capture_get("cap", k));
        }
    }
    (void)state;
}

static void test_shared_batch_untouched(void **state)
{
    /* the source's batch goes to the filter and straight to `all`: all must see every line */
    assert_int_equal(
        mars_test_run(
            "sources:\n"
            "  in: {type: lines, lines: [a, b, c, bb]}\n"
            "transforms:\n"
            "  f: {type: filter, inputs: [in], condition: 'starts_with(message, \"b\")'}\n"
            "sinks:\n"
            "  some: {type: capture, inputs: [f]}\n"
            "  all: {type: capture, inputs: [in]}\n",
            1, NULL, NULL),
        0);
    MARS_EXPECT("some", "b", "bb");
    MARS_EXPECT("all", "a", "b", "c", "bb");
    (void)state;
}

static void check_error(const char *cond, const char *want)
{
    char yaml[1024];
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    snprintf(yaml, sizeof(yaml),
             "sources:\n  in: {type: lines, lines: [a]}\n"
             "transforms:\n  f: {type: filter, inputs: [in], condition: '%s'}\n"
             "sinks:\n  c: {type: capture, inputs: [f]}\n",
             cond);
    mars_diag_init(&d);
    assert_int_not_equal(mars_config_load_string("t.yaml", yaml, &cfg, &d), 0);
    assert_int_equal(mars_diag_count(&d), 1);
    if (!strstr(d.msgs[0].text, want))
        fail_msg("'%s': got '%s', want '%s'", cond, d.msgs[0].text, want);
    mars_diag_fini(&d);
}

static void test_condition_errors_point_at_column(void **state)
{
    /* the condition text starts at column 47 of line 4 (after the quote) */
    check_error("level = 1", "t.yaml:4:53: option 'condition': bad condition: use '==' to compare");
    check_error("level == \"x",
                "t.yaml:4:56: option 'condition': bad condition: unterminated string");
    check_error("a == 1 &&", "t.yaml:4:56: option 'condition': bad condition: expected a field");
    check_error("exist(a)", "t.yaml:4:47: option 'condition': bad condition: unknown function "
                            "'exist' (did you mean 'exists'?)");
    check_error("match(a, \"(\")", "t.yaml:4:58: option 'condition': bad condition: bad regular "
                                   "expression: missing closing parenthesis");
    check_error("a == true && b < null", "t.yaml:4:64: option 'condition': bad condition: true, "
                                         "false and null can only be compared with == or !=");
    check_error("(a == 1", "t.yaml:4:54: option 'condition': bad condition: expected ')' before "
                           "the end");
    check_error("a == 1 b", "t.yaml:4:54: option 'condition': bad condition: unexpected 'b'");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_keep_matching, mars_expect_setup),
        cmocka_unit_test_setup(test_invert, mars_expect_setup),
        cmocka_unit_test_setup(test_condition_table, mars_expect_setup),
        cmocka_unit_test_setup(test_shared_batch_untouched, mars_expect_setup),
        cmocka_unit_test_setup(test_condition_errors_point_at_column, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
