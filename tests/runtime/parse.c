/*
 * Runtime tests of the `parse` transform: exact lines in (test source `lines`), exact JSON
 * events out (capture with encoding: json), one test per format and per option.
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

static void run(const char *transform, const char *lines, struct mars_stats *st)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "sources:\n"
             "  in: {type: lines, lines: %s}\n"
             "transforms:\n"
             "  p: %s\n"
             "sinks:\n"
             "  cap: {type: capture, inputs: [p], encoding: json}\n",
             lines, transform);
    struct mars_stats local;
    assert_int_equal(mars_test_run(yaml, 1, "p", st ? st : &local), 0);
}

static void test_json_root(void **state)
{
    run("{type: parse, inputs: [in], format: json}",
        "['{\"level\":\"info\",\"msg\":\"hi\",\"n\":-1.5e3,\"ok\":true,\"x\":null,"
        "\"user\":{\"id\":7,\"tags\":[\"a\",{\"b\":1}]}}', "
        "'{\"message\":\"replaced \\u00e9\",\"a\":1}']",
        NULL);
    MARS_EXPECT("cap",
                "{" T0 ",\"level\":\"info\",\"msg\":\"hi\",\"n\":-1.5e3,\"ok\":true,\"x\":null,"
                "\"user\":{\"id\":7,\"tags\":[\"a\",{\"b\":1}]}}",
                "{" T0 ",\"message\":\"replaced \xc3\xa9\",\"a\":1}");
    (void)state;
}

static void test_json_target_keep_original(void **state)
{
    run("{type: parse, inputs: [in], format: json, target: data.parsed, keep_original: true}",
        "['{\"a\":\"b\\\"c\"}']", NULL);
    MARS_EXPECT("cap", "{" T0 ",\"message\":\"{\\\"a\\\":\\\"b\\\\\\\"c\\\"}\","
                       "\"data\":{\"parsed\":{\"a\":\"b\\\"c\"}}}");
    (void)state;
}

static void test_json_duplicates_last_wins(void **state)
{
    run("{type: parse, inputs: [in], format: json}",
        "['{\"a\":1,\"b\":2,\"a\":{\"c\":3},\"a\":\"last\"}']", NULL);
    MARS_EXPECT("cap", "{" T0 ",\"a\":\"last\",\"b\":2}");
    (void)state;
}

static void test_on_error_keep_drop_tag(void **state)
{
    struct mars_stats st;
    const char *lines = "['{\"ok\":1}', 'not json', '{\"a\":', '[1,2]']";
    run("{type: parse, inputs: [in], format: json}", lines, &st);
    MARS_EXPECT("cap", "{" T0 ",\"ok\":1}", "{" T0 ",\"message\":\"not json\"}",
                "{" T0 ",\"message\":\"{\\\"a\\\":\"}", "{" T0 ",\"message\":\"[1,2]\"}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_PARSE]), 3);
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 0);

    mars_expect_setup(NULL);
    run("{type: parse, inputs: [in], format: json, on_error: drop}", lines, &st);
    MARS_EXPECT("cap", "{" T0 ",\"ok\":1}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_PARSE]), 3);
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 3);

    mars_expect_setup(NULL);
    run("{type: parse, inputs: [in], format: json, on_error: tag, error_field: err.why}", lines,
        &st);
    MARS_EXPECT("cap", "{" T0 ",\"ok\":1}",
                "{" T0 ",\"message\":\"not json\",\"err\":{\"why\":\"unexpected character\"}}",
                "{" T0 ",\"message\":\"{\\\"a\\\":\",\"err\":{\"why\":\"input ends inside a "
                "value\"}}",
                "{" T0 ",\"message\":\"[1,2]\",\"err\":{\"why\":\"not a JSON object\"}}");
    (void)state;
}

static void test_logfmt(void **state)
{
    run("{type: parse, inputs: [in], format: logfmt}",
        "['level=info msg=\"hello \\\"world\\\"\" dur=1.5s debug', 'a=1 a=2 b=']", NULL);
    MARS_EXPECT("cap",
                "{" T0 ",\"level\":\"info\",\"msg\":\"hello \\\"world\\\"\",\"dur\":\"1.5s\","
                "\"debug\":true}",
                "{" T0 ",\"a\":\"2\",\"b\":\"\"}");
    (void)state;
}

static void test_key_value(void **state)
{
    run("{type: parse, inputs: [in], format: key_value, field_delimiter: ';', "
        "value_delimiter: ':'}",
        "[\"user: alice ; role:'ops team';flag\"]", NULL);
    MARS_EXPECT("cap", "{" T0 ",\"user\":\"alice\",\"role\":\"ops team\",\"flag\":true}");
    (void)state;
}

static void test_regex(void **state)
{
    run("{type: parse, inputs: [in], format: regex, "
        "pattern: '^(?<level>[A-Z]+) \\[(?<thread>[^\\]]+)\\] (?<message>.*)$'}",
        "['WARN [main] disk almost full', 'no match']", NULL);
    MARS_EXPECT("cap",
                "{" T0 ",\"message\":\"disk almost full\",\"level\":\"WARN\","
                "\"thread\":\"main\"}",
                "{" T0 ",\"message\":\"no match\"}");
    (void)state;
}

static void test_cri_sets_time_and_message(void **state)
{
    run("{type: parse, inputs: [in], format: cri}",
        "['2023-10-06T00:17:09.669794202Z stdout F hello world', "
        "'2023-10-06T00:17:10.1+02:00 stderr P part', 'bad line']",
        NULL);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2023-10-06T00:17:09.669794202Z\",\"message\":\"hello world\","
                "\"stream\":\"stdout\",\"logtag\":\"F\"}",
                "{\"timestamp\":\"2023-10-05T22:17:10.100000000Z\",\"message\":\"part\","
                "\"stream\":\"stderr\",\"logtag\":\"P\"}",
                "{" T0 ",\"message\":\"bad line\"}");
    (void)state;
}

static void test_cri_then_json_of_message(void **state)
{
    struct mars_stats st;
    assert_int_equal(mars_test_run("sources:\n"
                                   "  in: {type: lines, lines: ['2024-02-01T10:00:00Z stdout F "
                                   "{\"level\":\"warn\",\"message\":\"m\"}']}\n"
                                   "transforms:\n"
                                   "  p: {type: parse, inputs: [in], format: cri}\n"
                                   "  j: {type: parse, inputs: [p], format: json}\n"
                                   "sinks:\n"
                                   "  cap2: {type: capture, inputs: [j], encoding: json}\n",
                                   1, "j", &st),
                     0);
    MARS_EXPECT("cap2", "{\"timestamp\":\"2024-02-01T10:00:00.000000000Z\",\"message\":\"m\","
                        "\"stream\":\"stdout\",\"logtag\":\"F\",\"level\":\"warn\"}");
    (void)state;
}

static void test_docker(void **state)
{
    run("{type: parse, inputs: [in], format: docker}",
        "['{\"log\":\"Started \\\"app\\\"\\n\",\"stream\":\"stderr\","
        "\"time\":\"2019-01-01T11:11:11.111111111Z\"}']",
        NULL);
    MARS_EXPECT("cap", "{\"timestamp\":\"2019-01-01T11:11:11.111111111Z\","
                       "\"message\":\"Started \\\"app\\\"\",\"stream\":\"stderr\"}");
    (void)state;
}

static void test_syslog(void **state)
{
    run("{type: parse, inputs: [in], format: syslog}",
        "['<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\]cation\"] An application event', "
        "'<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 1234 - - msg']",
        NULL);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2003-10-11T22:14:15.003000000Z\",\"message\":\"An application "
                "event\",\"facility\":\"local4\",\"severity\":\"notice\",\"version\":1,"
                "\"hostname\":\"mymachine.example.com\",\"appname\":\"evntslog\",\"msgid\":"
                "\"ID47\",\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\","
                "\"eventSource\":\"Appli]cation\"}}}",
                "{\"timestamp\":\"2003-10-11T22:14:15.003000000Z\",\"message\":\"msg\","
                "\"facility\":\"auth\",\"severity\":\"crit\",\"version\":1,\"hostname\":"
                "\"mymachine.example.com\",\"appname\":\"su\",\"procid\":1234}");
}

static void test_syslog_3164(void **state)
{
    run("{type: parse, inputs: [in], format: syslog}",
        "['<13>Feb  5 17:32:18 host1 sshd[42]: Accepted key']", NULL);
    assert_int_equal(mars_capture_count("cap"), 1);
    const char *third = mars_capture_get("cap", 0);
    assert_non_null(strstr(third, "-02-05T17:32:18.000000000Z\",\"message\":\"Accepted key\","
                                  "\"facility\":\"user\",\"severity\":\"notice\",\"hostname\":"
                                  "\"host1\",\"appname\":\"sshd\",\"procid\":42}"));
    (void)state;
}

static void test_nginx_and_timestamp_field(void **state)
{
    run("{type: parse, inputs: [in], format: nginx}",
        "['10.1.2.3 - bob [10/Oct/2000:13:55:36 -0700] \"GET /a?b=1 HTTP/1.1\" 200 2326 "
        "\"-\" \"curl/8\" \"1.1.1.1\"', '1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"\\x16\\x03\" "
        "400 - \"-\" \"-\"']",
        NULL);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2000-10-10T20:55:36.000000000Z\",\"client\":\"10.1.2.3\","
                "\"user\":\"bob\",\"request\":\"GET /a?b=1 HTTP/1.1\",\"method\":\"GET\","
                "\"path\":\"/a?b=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"size\":2326,"
                "\"agent\":\"curl/8\",\"forwarded_for\":\"1.1.1.1\"}",
                "{\"timestamp\":\"2000-10-10T13:55:36.000000000Z\",\"client\":\"1.2.3.4\","
                "\"request\":\"\\\\x16\\\\x03\",\"status\":400,\"size\":0}");
    (void)state;
}

static void test_explicit_timestamp(void **state)
{
    run("{type: parse, inputs: [in], format: json, timestamp: {field: timestamp, format: "
        "'%Y-%m-%d %H:%M:%S', timezone: Europe/Berlin}}",
        "['{\"timestamp\":\"2024-07-01 12:00:00\",\"a\":1}', '{\"timestamp\":\"junk\"}']", NULL);
    /* a time that does not read is not a failed parse: the fields stay (this one shadows
     * the read time in JSON output, as any parsed root `timestamp` does) */
    MARS_EXPECT("cap", "{\"timestamp\":\"2024-07-01T10:00:00.000000000Z\",\"a\":1}",
                "{\"timestamp\":\"junk\"}");
    (void)state;
}

static void test_timestamp_missing_keeps_fields(void **state)
{
    struct mars_stats st;
    run("{type: parse, inputs: [in], format: json, timestamp: {field: ts}}",
        "['{\"ts\":\"2024-05-01T10:00:00Z\",\"a\":1}', '{\"a\":2}', "
        "'{\"ts\":\"garbage\",\"a\":3}', '{\"ts\":null,\"a\":4}']",
        &st);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2024-05-01T10:00:00.000000000Z\",\"ts\":"
                "\"2024-05-01T10:00:00Z\",\"a\":1}",
                "{" T0 ",\"a\":2}", "{" T0 ",\"ts\":\"garbage\",\"a\":3}",
                "{" T0 ",\"ts\":null,\"a\":4}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_PARSE]), 0);
    (void)state;
}

static void test_on_error_pass(void **state)
{
    struct mars_stats st;
    run("{type: parse, inputs: [in], format: json, on_error: pass}",
        "['{\"ok\":1}', 'Starting app v1.2', 'panic: boom', '{\"ok\":2}']", &st);
    MARS_EXPECT("cap", "{" T0 ",\"ok\":1}", "{" T0 ",\"message\":\"Starting app v1.2\"}",
                "{" T0 ",\"message\":\"panic: boom\"}", "{" T0 ",\"ok\":2}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_PARSE]), 0);
    assert_int_equal(mars_stat_get(&st.discarded_intentional), 0);
    (void)state;
}

static void test_message_key(void **state)
{
    run("{type: parse, inputs: [in], format: json, message_key: [msg, log, '@message']}",
        "['{\"msg\":\"m1\",\"log\":\"l1\"}', '{\"level\":\"i\",\"log\":\"l2\"}', "
        "'{\"@message\":\"a1\",\"message\":\"lower\"}', '{\"message\":\"x\"}', "
        "'{\"msg\":{\"o\":1},\"log\":\"l3\"}']",
        NULL);
    MARS_EXPECT("cap", "{" T0 ",\"message\":\"m1\",\"log\":\"l1\"}",
                "{" T0 ",\"message\":\"l2\",\"level\":\"i\"}", "{" T0 ",\"message\":\"a1\"}",
                "{" T0 ",\"message\":\"x\"}", "{" T0 ",\"message\":\"l3\",\"msg\":{\"o\":1}}");
    (void)state;
}

static void test_config_errors(void **state)
{
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    mars_diag_init(&d);
    int rc = mars_config_load_string(
        "t.yaml",
        "sources:\n  in: {type: lines, lines: [a]}\n"
        "transforms:\n  p: {type: parse, inputs: [in], format: regex, pattern: 'a(?<x>b'}\n"
        "  q: {type: parse, inputs: [in], format: json, timestamp: {field: t, timezone: "
        "Mars/Base}}\n"
        "sinks:\n  c: {type: capture, inputs: [p, q]}\n",
        &cfg, &d);
    assert_int_not_equal(rc, 0);
    assert_int_equal(mars_diag_count(&d), 2);
    assert_non_null(strstr(d.msgs[0].text, "t.yaml:4:66: option 'pattern': bad regular"));
    assert_non_null(strstr(d.msgs[1].text, "t.yaml:5:80: option 'timestamp': unknown time zone"));
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_json_root, mars_expect_setup),
        cmocka_unit_test_setup(test_json_target_keep_original, mars_expect_setup),
        cmocka_unit_test_setup(test_json_duplicates_last_wins, mars_expect_setup),
        cmocka_unit_test_setup(test_on_error_keep_drop_tag, mars_expect_setup),
        cmocka_unit_test_setup(test_logfmt, mars_expect_setup),
        cmocka_unit_test_setup(test_key_value, mars_expect_setup),
        cmocka_unit_test_setup(test_regex, mars_expect_setup),
        cmocka_unit_test_setup(test_cri_sets_time_and_message, mars_expect_setup),
        cmocka_unit_test_setup(test_cri_then_json_of_message, mars_expect_setup),
        cmocka_unit_test_setup(test_docker, mars_expect_setup),
        cmocka_unit_test_setup(test_syslog, mars_expect_setup),
        cmocka_unit_test_setup(test_syslog_3164, mars_expect_setup),
        cmocka_unit_test_setup(test_nginx_and_timestamp_field, mars_expect_setup),
        cmocka_unit_test_setup(test_explicit_timestamp, mars_expect_setup),
        cmocka_unit_test_setup(test_timestamp_missing_keeps_fields, mars_expect_setup),
        cmocka_unit_test_setup(test_on_error_pass, mars_expect_setup),
        cmocka_unit_test_setup(test_message_key, mars_expect_setup),
        cmocka_unit_test_setup(test_config_errors, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
