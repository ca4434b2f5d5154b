/*
 * Runtime tests of the `multiline` transform: presets on real stack traces, start and
 * continuation patterns, lines joined across batches, groups per stream, the timeout
 * completing a quiet event, max_lines, and acknowledgement only after delivery.
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

static void run(const char *lines, const char *src_opts, const char *ml, struct mars_stats *st)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             "sources:\n  in: {type: lines, lines: %s%s%s}\n"
             "transforms:\n  m: %s\n"
             "sinks:\n  c: {type: capture, inputs: [m]}\n",
             lines, src_opts ? ", " : "", src_opts ? src_opts : "", ml);
    struct mars_stats local;
    assert_int_equal(mars_test_run(yaml, 1, "in", st ? st : &local), 0);
}

static void test_java_preset(void **state)
{
    struct mars_stats st;
    run("['2024-01-01 ERROR Request failed', 'java.lang.IllegalStateException: boom', "
        "'\tat com.acme.Service.handle(Service.java:42)', '\tat com.acme.Main.main(Main.java:7)', "
        "'Caused by: java.io.IOException: disk', '\t... 2 more', '2024-01-01 INFO next', "
        "'2024-01-01 INFO last']",
        NULL, "{type: multiline, inputs: [in], preset: java}", &st);
    MARS_EXPECT(
        "c",
        "2024-01-01 ERROR Request failed\njava.lang.IllegalStateException: boom\n"
        "\tat com.acme.Service.handle(Service.java:42)\n\tat com.acme.Main.main(Main.java:7)\n"
        "Caused by: java.io.IOException: disk\n\t... 2 more",
        "2024-01-01 INFO next", "2024-01-01 INFO last");
    assert_int_equal(mars_stat_get(&st.acked_events), 8);
    (void)state;
}

static void test_python_and_go_presets(void **state)
{
    run("['ERROR:root:failed', 'Traceback (most recent call last):', "
        "'  File \"x.py\", line 1, in <module>', '    foo()', 'ValueError: bad', 'INFO:root:ok']",
        NULL, "{type: multiline, inputs: [in], preset: python}", NULL);
    MARS_EXPECT("c",
                "ERROR:root:failed\nTraceback (most recent call last):\n"
                "  File \"x.py\", line 1, in <module>\n    foo()\nValueError: bad",
                "INFO:root:ok");
    mars_expect_setup(NULL);
    run("['panic: runtime error: index out of range [5] with length 3', '', "
        "'goroutine 1 [running]:', 'main.main()', '\t/tmp/x.go:8 +0x1d', 'exit status 2', "
        "'server started']",
        NULL, "{type: multiline, inputs: [in], preset: go}", NULL);
    MARS_EXPECT("c",
                "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 "
                "[running]:\nmain.main()\n\t/tmp/x.go:8 +0x1d\nexit status 2",
                "server started");
    (void)state;
}

static void test_start_pattern_across_batches(void **state)
{
    /* one line per batch: joined lines are copied, not sliced */
    run("['[1] begin', 'more', 'and more', '[2] second', '[3] third', 'tail']", "batch_size: 1",
        "{type: multiline, inputs: [in], start_pattern: '^\\[\\d+\\]'}", NULL);
    MARS_EXPECT("c", "[1] begin\nmore\nand more", "[2] second", "[3] third\ntail");
    (void)state;
}

static void test_groups_per_stream(void **state)
{
    /* stdout and stderr lines interleave; each stream joins only its own lines */
    mars_expect_run("['2024-01-01T00:00:00Z stdout F Exception in thread main', "
                    "'2024-01-01T00:00:00Z stderr F warn: one', "
                    "'2024-01-01T00:00:01Z stdout F \tat A.b(A.java:1)', "
                    "'2024-01-01T00:00:01Z stderr F   continued', "
                    "'2024-01-01T00:00:02Z stdout F done']",
                    NULL,
                    "  p: {type: parse, inputs: [in], format: cri}\n"
                    "  m: {type: multiline, inputs: [p], continuation_pattern: '^\\s'}",
                    "m", NULL, NULL);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"message\":\"Exception in "
                "thread main\\n\\tat A.b(A.java:1)\",\"stream\":\"stdout\",\"logtag\":\"F\"}",
                "{\"timestamp\":\"2024-01-01T00:00:02.000000000Z\",\"message\":\"done\","
                "\"stream\":\"stdout\",\"logtag\":\"F\"}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"message\":\"warn: one\\n  "
                "continued\",\"stream\":\"stderr\",\"logtag\":\"F\"}");
    (void)state;
}

static void test_timeout_completes_quiet_event(void **state)
{
    /* the second batch comes 300 ms after the first: the timeout (50 ms) has completed the
     * first event by then, so the indented line cannot join it any more */
    run("['first', '  cont', '  late']", "batch_size: 2, interval: 300ms",
        "{type: multiline, inputs: [in], continuation_pattern: '^\\s', timeout: 50ms}", NULL);
    MARS_EXPECT("c", "first\n  cont", "  late");
    (void)state;
}

static void test_max_lines(void **state)
{
    struct mars_stats st;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "sources:\n  in: {type: lines, lines: [a, ' 1', ' 2', ' 3', ' 4', b]}\n"
             "transforms:\n  m: {type: multiline, inputs: [in], continuation_pattern: '^ ',"
             " max_lines: 3}\n"
             "sinks:\n  c: {type: capture, inputs: [m]}\n");
    assert_int_equal(mars_test_run(yaml, 1, "m", &st), 0);
    MARS_EXPECT("c", "a\n 1\n 2", " 3\n 4", "b");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_LIMIT]), 1);
    (void)state;
}

static void test_config_errors(void **state)
{
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    mars_diag_init(&d);
    assert_int_not_equal(
        mars_config_load_string(
            "t.yaml",
            "sources:\n  in: {type: lines, lines: [a]}\n"
            "transforms:\n"
            "  m: {type: multiline, inputs: [in], preset: java, start_pattern: '('}\n"
            "sinks:\n  c: {type: capture, inputs: [m]}\n",
            &cfg, &d),
        0);
    assert_int_equal(mars_diag_count(&d), 2);
    assert_non_null(strstr(d.msgs[0].text, "either a preset or start_pattern"));
    assert_non_null(strstr(d.msgs[1].text, "t.yaml:4:69: option 'start_pattern': bad regular"));
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_java_preset, mars_expect_setup),
        cmocka_unit_test_setup(test_python_and_go_presets, mars_expect_setup),
        cmocka_unit_test_setup(test_start_pattern_across_batches, mars_expect_setup),
        cmocka_unit_test_setup(test_groups_per_stream, mars_expect_setup),
        cmocka_unit_test_setup(test_timeout_completes_quiet_event, mars_expect_setup),
        cmocka_unit_test_setup(test_max_lines, mars_expect_setup),
        cmocka_unit_test_setup(test_config_errors, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
