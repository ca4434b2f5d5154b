/*
 * Runtime tests of the `modify` transform: every operation with exact output, the order
 * of operations, the message field, copy on write when the batch is shared, conversion
 * errors counted, and config errors.
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

static void test_set_rename_copy_remove(void **state)
{
    mars_expect_run(
        "['{\"method\":\"GET\",\"path\":\"/x\",\"user\":{\"id\":7,\"name\":\"ann\"},"
        "\"tmp\":1}']",
        NULL,
        "  p: {type: parse, inputs: [in], format: json}\n"
        "  m: {type: modify, inputs: [p],\n"
        "      rename: {user: account, method: http.method},\n"
        "      copy: {account.id: uid, path: http.path},\n"
        "      set: {env: prod, route: '{{ http.method }} {{ path }}', day: '%Y-%m-%d'},\n"
        "      remove: [tmp, path, nothing]}",
        "m", NULL, NULL);
    MARS_EXPECT("cap", "{" T0 ",\"account\":{\"id\":7,\"name\":\"ann\"},\"http\":{\"method\":"
                       "\"GET\",\"path\":\"/x\"},\"uid\":7,\"env\":\"prod\",\"route\":\"GET /x\","
                       "\"day\":\"2024-01-01\"}");
    (void)state;
}

static void test_case_coerce_truncate(void **state)
{
    struct mars_stats st;
    mars_expect_run(
        "['{\"a\":\"MiXed\",\"b\":\"low\",\"n\":\"0042\",\"f\":\"1.50\",\"g\":\"+2\","
        "\"ok\":\"Yes\",\"s\":12,\"bad\":\"x1\",\"long\":\"h\\u00e9llo w\\u00f6rld\"}']",
        NULL,
        "  p: {type: parse, inputs: [in], format: json}\n"
        "  m: {type: modify, inputs: [p], lowercase: [a], uppercase: [b],\n"
        "      coerce: {n: int, f: float, g: float, ok: bool, s: string, bad: int},\n"
        "      truncate: [{field: long, max_bytes: 2, suffix: '...'},\n"
        "                 {field: a, max_bytes: 3}]}",
        "m", "m", &st);
    MARS_EXPECT("cap", "{" T0 ",\"a\":\"mix\",\"b\":\"LOW\",\"n\":42,\"f\":1.50,\"g\":2,"
                       "\"ok\":true,\"s\":\"12\",\"bad\":\"x1\",\"long\":\"h...\"}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_CONVERT]), 1); /* bad: int */
    (void)state;
}

static void test_typed_set_and_functions(void **state)
{
    mars_expect_run(
        "['{\"status\":503,\"size\":\"2048\",\"path\":\"/u/42\",\"level\":\"WARN\","
        "\"email\":\"ann@example.com\"}', '{\"status\":200}']",
        NULL,
        "  p: {type: parse, inputs: [in], format: json}\n"
        "  m: {type: modify, inputs: [p],\n"
        "      set: {replicas: 3, ratio: -0.5, on: true, gone: null, none: ~, quoted: '3',\n"
        "            word: yes, class: '{{ div(status, 100) }}xx', code: '{{ status }}',\n"
        "            kb: '{{ div(number(size), 1024) }}', route: '{{ replace(path, \"[0-9]+\", "
        "\":id\") }}',\n"
        "            lvl: '{{ lower(default(level, \"info\")) }}', who: '{{ redact(email, "
        "\"^[^@]+\") }}'},\n"
        "      remove: [size, email]}",
        "m", NULL, NULL);
    MARS_EXPECT("cap",
                "{" T0 ",\"status\":503,\"path\":\"/u/42\",\"level\":\"WARN\","
                "\"replicas\":3,\"ratio\":-0.5,\"on\":true,\"gone\":null,\"none\":null,"
                "\"quoted\":\"3\",\"word\":\"yes\",\"class\":\"5xx\",\"code\":503,"
                "\"kb\":2,\"route\":\"/u/:id\",\"lvl\":\"warn\","
                "\"who\":\"[REDACTED]@example.com\"}",
                "{" T0 ",\"status\":200,\"replicas\":3,\"ratio\":-0.5,\"on\":true,"
                "\"gone\":null,\"none\":null,\"quoted\":\"3\",\"word\":\"yes\","
                "\"class\":\"2xx\",\"code\":200,\"kb\":\"\",\"route\":\"\","
                "\"lvl\":\"info\",\"who\":\"\"}");
    (void)state;
}

static void test_dedot(void **state)
{
    struct mars_stats st;
    mars_expect_run("['{\"kubernetes\":{\"labels\":{\"app\":\"web\",\"app.kubernetes.io/name\":"
                    "\"web\",\"x\":{\"a.b\":1}},\"pod.name\":\"p\"},\"s\":\"v\"}', '{\"s\":1}']",
                    NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  m: {type: modify, inputs: [p], dedot: [kubernetes.labels, s]}",
                    "m", "m", &st);
    MARS_EXPECT("cap",
                "{" T0 ",\"kubernetes\":{\"labels\":{\"app\":\"web\","
                "\"app_kubernetes_io/name\":\"web\",\"x\":{\"a_b\":1}},\"pod.name\":\"p\"},"
                "\"s\":\"v\"}",
                "{" T0 ",\"s\":1}");
    /* s is no object: counted, the event is kept as it was */
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_CONVERT]), 2);
    (void)state;
}

static void test_message_operations(void **state)
{
    mars_expect_run("['Hello World', 'short']", NULL,
                    "  m: {type: modify, inputs: [in], uppercase: [message],\n"
                    "      truncate: [{field: message, max_bytes: 8}],\n"
                    "      copy: {message: original}}\n"
                    "  r: {type: modify, inputs: [m], rename: {message: text}}",
                    "r", NULL, NULL);
    MARS_EXPECT("cap", "{" T0 ",\"original\":\"Hello World\",\"text\":\"HELLO WO\"}",
                "{" T0 ",\"original\":\"short\",\"text\":\"SHORT\"}");
    (void)state;
}

static void test_text_output_follows_message(void **state)
{
    assert_int_equal(
        mars_test_run("sources:\n"
                      "  in: {type: lines, lines: [alpha, beta]}\n"
                      "transforms:\n"
                      "  m: {type: modify, inputs: [in], set: {message: 'x-{{ message }}'}}\n"
                      "sinks:\n"
                      "  t: {type: capture, inputs: [m]}\n",
                      1, NULL, NULL),
        0);
    MARS_EXPECT("t", "x-alpha", "x-beta");
    (void)state;
}

static void test_copy_on_write_between_branches(void **state)
{
    /* one parsed batch, two modify branches and a direct reader: none sees another's edits */
    assert_int_equal(
        mars_test_run("sources:\n"
                      "  in: {type: lines, lines: ['{\"a\":1,\"b\":{\"c\":2}}']}\n"
                      "transforms:\n"
                      "  p: {type: parse, inputs: [in], format: json}\n"
                      "  m1: {type: modify, inputs: [p], set: {b.c: one}, remove: [a]}\n"
                      "  m2: {type: modify, inputs: [p], rename: {b: z}, set: {new: two}}\n"
                      "sinks:\n"
                      "  c1: {type: capture, inputs: [m1], encoding: json}\n"
                      "  c2: {type: capture, inputs: [m2], encoding: json}\n"
                      "  c0: {type: capture, inputs: [p], encoding: json}\n",
                      1, NULL, NULL),
        0);
    MARS_EXPECT("c1", "{" T0 ",\"b\":{\"c\":\"one\"}}");
    MARS_EXPECT("c2", "{" T0 ",\"a\":1,\"z\":{\"c\":2},\"new\":\"two\"}");
    MARS_EXPECT("c0", "{" T0 ",\"a\":1,\"b\":{\"c\":2}}");
    (void)state;
}

static void test_set_through_non_object_is_counted(void **state)
{
    struct mars_stats st;
    mars_expect_run("['{\"a\":\"text\"}']", NULL,
                    "  p: {type: parse, inputs: [in], format: json}\n"
                    "  m: {type: modify, inputs: [p], set: {a.b: x, c.d.e: y}}",
                    "m", "m", &st);
    MARS_EXPECT("cap", "{" T0 ",\"a\":\"text\",\"c\":{\"d\":{\"e\":\"y\"}}}");
    assert_int_equal(mars_stat_get(&st.errors[MARS_ERR_CONVERT]), 1);
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
        "transforms:\n"
        "  m: {type: modify, inputs: [in], coerce: {x: floot}, rename: {a: a.b},\n"
        "      set: {'tags[0]': v}, remove: ['bad path']}\n"
        "sinks:\n  c: {type: capture, inputs: [m]}\n",
        &cfg, &d);
    assert_int_not_equal(rc, 0);
    assert_int_equal(mars_diag_count(&d), 4);
    const char *all[4];
    for (int i = 0; i < 4; i++)
        all[i] = d.msgs[i].text;
    bool seen[4] = {false};
    const char *want[4] = {"'a' and 'a.b' contain one another", "cannot write inside an array",
                           "remove': bad field path: unexpected character",
                           "unknown type 'floot' (did you mean 'float'?)"};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            seen[k] = seen[k] || strstr(all[i], want[k]);
    for (int k = 0; k < 4; k++)
        if (!seen[k])
            fail_msg("no error says: %s", want[k]);
    mars_diag_fini(&d);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_set_rename_copy_remove, mars_expect_setup),
        cmocka_unit_test_setup(test_case_coerce_truncate, mars_expect_setup),
        cmocka_unit_test_setup(test_typed_set_and_functions, mars_expect_setup),
        cmocka_unit_test_setup(test_dedot, mars_expect_setup),
        cmocka_unit_test_setup(test_message_operations, mars_expect_setup),
        cmocka_unit_test_setup(test_text_output_follows_message, mars_expect_setup),
        cmocka_unit_test_setup(test_copy_on_write_between_branches, mars_expect_setup),
        cmocka_unit_test_setup(test_set_through_non_object_is_counted, mars_expect_setup),
        cmocka_unit_test_setup(test_config_errors, mars_expect_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
