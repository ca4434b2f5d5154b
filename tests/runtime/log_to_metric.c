/*
 * Runtime tests of the `log_to_metric` transform: counters by label from nginx lines,
 * per-batch sums, gauges, histogram buckets, conditions, the series cap, the JSON and text
 * forms of the metric events.
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

#define NGX(status, size)                                                                          \
    "'10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /x HTTP/1.1\" " status " " size              \
    " \"-\" \"curl\"'"

static void test_requests_by_status(void **state)
{
    struct mars_stats st;
    mars_expect_run(
        "[" NGX("200", "10") ", " NGX("404", "5") ", " NGX("200", "30") ", " NGX("500", "-") "]",
        NULL,
        "  p: {type: parse, inputs: [in], format: nginx}\n"
        "  l: {type: log_to_metric, inputs: [p], metrics: [\n"
        "      {type: counter, name: http_requests_total,\n"
        "       labels: {status: '{{ status }}', method: '{{ method }}'}},\n"
        "      {type: counter, name: http_bytes_total, field: size,\n"
        "       increment_by_value: true},\n"
        "      {type: histogram, name: http_response_bytes, field: size,\n"
        "       condition: 'status < 500', buckets: [10, 100]},\n"
        "      {type: gauge, name: last_size, field: size}]}",
        "l", "l", &st);
    MARS_EXPECT("cap",
                "{" T0 ",\"name\":\"http_requests_total\",\"kind\":\"counter\",\"value\":2,"
                "\"labels\":{\"status\":\"200\",\"method\":\"GET\"}}",
                "{" T0 ",\"name\":\"http_bytes_total\",\"kind\":\"counter\",\"value\":45,"
                "\"labels\":{}}",
                "{" T0 ",\"name\":\"http_response_bytes\",\"kind\":\"histogram\",\"value\":45,"
                "\"count\":3,\"buckets\":[{\"le\":10,\"count\":2},{\"le\":100,\"count\":3}],"
                "\"labels\":{}}",
                "{" T0 ",\"name\":\"last_size\",\"kind\":\"gauge\",\"value\":0,\"labels\":{}}",
                "{" T0 ",\"name\":\"http_requests_total\",\"kind\":\"counter\",\"value\":1,"
                "\"labels\":{\"status\":\"404\",\"method\":\"GET\"}}",
                "{" T0 ",\"name\":\"http_requests_total\",\"kind\":\"counter\",\"value\":1,"
                "\"labels\":{\"status\":\"500\",\"method\":\"GET\"}}");
    assert_int_equal(mars_stat_get(&st.received_events), 4);
    assert_int_equal(mars_stat_get(&st.sent_events), 6);
    (void)state;
}

static void test_series_cap(void **state)
{
    struct mars_stats st;
    mars_expect_run("[a, b, a, c, d, b]", "batch_size: 2",
                    "  l: {type: log_to_metric, inputs: [in], max_series: 2, metrics: [\n"
                    "      {type: counter, name: lines, labels: {text: '{{ message }}'}}]}",
                    "l", "l", &st);
    MARS_EXPECT("cap",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"name\":\"lines\","
                "\"kind\":\"counter\",\"value\":1,\"labels\":{\"text\":\"a\"}}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"name\":\"lines\","
                "\"kind\":\"counter\",\"value\":1,\"labels\":{\"text\":\"b\"}}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"name\":\"lines\","
                "\"kind\":\"counter\",\"value\":1,\"labels\":{\"text\":\"a\"}}",
                "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"name\":\"lines\","
                "\"kind\":\"counter\",\"value\":1,\"labels\":{\"text\":\"b\"}}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_LIMIT]), 2); /* c and d */
    (void)state;
}

static void test_not_a_number_is_counted(void **state)
{
    struct mars_stats st;
    mars_expect_run("['{\"v\":\"abc\"}', '{\"v\":\"2.5\"}', '{\"w\":1}']", NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  l: {type: log_to_metric, inputs: [p], metrics: [\n"
                    "      {type: gauge, name: g, field: v}]}",
                    "l", "l", &st);
    MARS_EXPECT("cap", "{\"timestamp\":\"2024-01-01T00:00:00.000000000Z\",\"name\":\"g\","
                       "\"kind\":\"gauge\",\"value\":2.5,\"labels\":{}}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_CONVERT]), 1);
    (void)state;
}

static void test_text_form(void **state)
{
    assert_int_equal(
        mars_test_run("sources:\n"
                      "  in: {type: lines, lines: ['a \"q\"', b, 'a \"q\"']}\n"
                      "transforms:\n"
                      "  l: {type: log_to_metric, inputs: [in], metrics: [\n"
                      "      {type: counter, name: lines_total, labels: {l: '{{ message }}'}},\n"
                      "      {type: histogram, name: len, field: message, buckets: [1]}]}\n"
                      "sinks:\n"
                      "  t: {type: capture, inputs: [l]}\n",
                      1, NULL, NULL),
        0);
    MARS_EXPECT("t", "lines_total{l=\"a \\\"q\\\"\"} 2", "lines_total{l=\"b\"} 1");
    (void)state;
}

static void test_config_errors(void **state)
{
    struct mars_config *cfg = NULL;
    struct mars_diag d;
    mars_diag_init(&d);
    assert_int_not_equal(
        mars_config_load_string("t.yaml",
                                "sources:\n  in: {type: lines, lines: [a]}\n"
                                "transforms:\n"
                                "  l: {type: log_to_metric, inputs: [in], metrics: [\n"
                                "      {type: gauge, name: 'bad name'},\n"
                                "      {type: counter, name: ok, labels: {'a-b': x}}]}\n"
                                "sinks:\n  c: {type: capture, inputs: [l]}\n",
                                &cfg, &d),
        0);
    assert_int_equal(mars_diag_count(&d), 3);
    assert_non_null(strstr(d.msgs[0].text, "'bad name' is not a metric name"));
    assert_non_null(strstr(d.msgs[1].text, "a gauge needs a 'field'"));
    assert_non_null(strstr(d.msgs[2].text, "'a-b' is not a label name"));
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_requests_by_status, mars_expect_setup),
        cmocka_unit_test_setup(test_series_cap, mars_expect_setup),
        cmocka_unit_test_setup(test_not_a_number_is_counted, mars_expect_setup),
        cmocka_unit_test_setup(test_text_form, mars_expect_setup),
        cmocka_unit_test_setup(test_config_errors, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
