/*
 * Unit tests of templates: literal and strftime parts, field references, the functions
 * between {{ }} with their edge cases, the kind a lone expression keeps, and compile
 * errors naming the offset.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model/fields.h"
#include "model/json.h"
#include "model/template.h"

static struct mars_batch *event_with(const char *json)
{
    struct mars_batch *b = mars_batch_create(2);
    struct mars_event *ev = mars_batch_push(b);
    ev->msg = (struct mars_slice){"the line", 8};
    ev->ts_ns = 1704067200123000000LL; /* 2024-01-01T00:00:00.123Z */
    struct mars_fbuild fb;
    size_t at;
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    assert_int_equal(mars_json_parse(json, strlen(json), 64, &fb, 0, &at), MARS_JSON_OK);
    assert_int_equal(mars_fields_merge(b, ev, &fb, NULL), 0);
    mars_fbuild_fini(&fb);
    return b;
}

static const char *EV = "{\"level\":\"Error\",\"status\":503,\"size\":\"2048\",\"ok\":true,"
                        "\"nothing\":null,\"path\":\"/api/users/42/orders/7\",\"user\":{\"email\":"
                        "\"ann@example.com\",\"card\":\"4111 1111 1111 1111\"},\"app\":\"shop\","
                        "\"env\":\"prod\",\"empty\":\"\",\"esc\":\"a\\u00e9\\\"b\","
                        "\"tags\":[1,2]}";

/* Renders text for EV, checks the output and the kind. */
static void expect(const char *text, const char *want, enum mars_field_kind want_kind)
{
    char err[256], out[512];
    struct mars_template *t = mars_template_compile(text, 0, err, sizeof(err));
    if (!t)
        fail_msg("%s: %s", text, err);
    struct mars_batch *b = event_with(EV);
    enum mars_field_kind kind;
    int n = mars_template_render_typed(t, &b->ev[0], out, sizeof(out), &kind);
    if (n < 0 || strcmp(out, want) != 0 || kind != want_kind)
        fail_msg("%s: got '%s' (%d, kind %s), want '%s' (%s)", text, n >= 0 ? out : "", n,
                 mars_field_kind_name(kind), want, mars_field_kind_name(want_kind));
    mars_template_destroy(t);
    mars_batch_release(b);
}

static void test_fields_and_kinds(void **state)
{
    expect("{{ level }}", "Error", MARS_FIELD_STRING);
    expect("{{status}}", "503", MARS_FIELD_NUMBER);
    expect("{{ ok }}", "true", MARS_FIELD_BOOL);
    expect("{{ nothing }}", "null", MARS_FIELD_NULL);
    expect("{{ tags }}", "[1,2]", MARS_FIELD_ARRAY);
    expect("{{ esc }}", "a\xc3\xa9\"b", MARS_FIELD_STRING);
    expect("{{ missing }}", "", MARS_FIELD_STRING);
    expect("s={{ status }}", "s=503", MARS_FIELD_STRING);
    expect("%Y-%m-%d/{{ app }}", "2024-01-01/shop", MARS_FIELD_STRING);
    (void)state;
}

static void test_functions(void **state)
{
    expect("{{ lower(level) }}", "error", MARS_FIELD_STRING);
    expect("{{ upper(concat(app, '-', env)) }}", "SHOP-PROD", MARS_FIELD_STRING);
    expect("{{ div(status, 100) }}xx", "5xx", MARS_FIELD_STRING);
    expect("{{ div(status, 100) }}", "5", MARS_FIELD_NUMBER);
    expect("{{ mod(status, 100) }}", "3", MARS_FIELD_NUMBER);
    expect("{{ div(size, 1024) }}", "2", MARS_FIELD_NUMBER);
    expect("{{ div(status, 0) }}", "", MARS_FIELD_STRING);
    expect("{{ div(level, 2) }}", "", MARS_FIELD_STRING);
    expect("{{ div(-7, 2) }}", "-3", MARS_FIELD_NUMBER);
    expect("{{ replace(path, \"[0-9]+\", \":id\") }}", "/api/users/:id/orders/:id",
           MARS_FIELD_STRING);
    expect("{{ replace(app, 'x*', '-') }}", "-s-h-o-p-", MARS_FIELD_STRING);
    expect("{{ redact(user.card, '[0-9]{4} [0-9]{4} [0-9]{4}') }}", "[REDACTED] 1111",
           MARS_FIELD_STRING);
    expect("{{ redact(user.email, '^[^@]+', '***') }}", "***@example.com", MARS_FIELD_STRING);
    expect("{{ substr(app, 1) }}", "hop", MARS_FIELD_STRING);
    expect("{{ substr(app, 0, 2) }}", "sh", MARS_FIELD_STRING);
    expect("{{ substr(app, -2) }}", "op", MARS_FIELD_STRING);
    expect("{{ substr(app, 9, 2) }}", "", MARS_FIELD_STRING);
    expect("{{ substr(esc, 1, 1) }}", "", MARS_FIELD_STRING); /* half a character: none */
    expect("{{ substr(esc, 1, 2) }}", "\xc3\xa9", MARS_FIELD_STRING);
    (void)state;
}

static void test_hash_number_default(void **state)
{
    char err[256], a[64], b2[64];
    struct mars_template *t = mars_template_compile("{{ hash(user.email) }}", 0, err, sizeof(err));
    assert_non_null(t);
    struct mars_batch *b = event_with(EV);
    assert_int_equal(mars_template_render(t, &b->ev[0], a, sizeof(a)), 16);
    assert_int_equal(mars_template_render(t, &b->ev[0], b2, sizeof(b2)), 16);
    assert_string_equal(a, b2); /* stable */
    assert_true(strspn(a, "0123456789abcdef") == 16);
    assert_string_not_equal(a, "0000000000000000");
    mars_template_destroy(t);
    mars_batch_release(b);

    expect("{{ number(size) }}", "2048", MARS_FIELD_NUMBER);
    expect("{{ number(level) }}", "", MARS_FIELD_STRING);
    expect("{{ number('-1.5e3') }}", "-1.5e3", MARS_FIELD_NUMBER);
    expect("{{ default(team, 'none') }}", "none", MARS_FIELD_STRING);
    expect("{{ default(empty, nothing) }}", "null", MARS_FIELD_NULL);
    expect("{{ default(level, 'x') }}", "Error", MARS_FIELD_STRING);
    (void)state;
}

static void expect_error(const char *text, const char *want)
{
    char err[256];
    struct mars_template *t = mars_template_compile(text, 0, err, sizeof(err));
    if (t) {
        mars_template_destroy(t);
        fail_msg("%s compiled", text);
    }
    if (!strstr(err, want))
        fail_msg("%s: got '%s', want '%s'", text, err, want);
}

static void test_errors(void **state)
{
    expect_error("a {{ lowr(level) }}", "in '{{ lowr(level) }}' at offset 2: unknown function "
                                        "'lowr'");
    expect_error("{{ lower(a, b) }}", "lower() takes 1 argument at offset");
    expect_error("{{ substr(a) }}", "substr() takes 2 to 3 arguments");
    expect_error("{{ replace(a, '(', 'x') }}", "bad regular expression");
    expect_error("{{ replace(a, b, 'x') }}", "needs its regex as a string literal");
    expect_error("{{ substr(a, 'x') }}", "integer literals");
    expect_error("{{ lower(a }}", "expected ',' or ')'");
    expect_error("{{ concat('a) }}", "unclosed string");
    expect_error("{{ a b }}", "bad field name 'a b'");
    expect_error("{{ }}", "expected a field");
    expect_error("{{ lower(a) x }}", "unexpected text after the expression");
    expect_error("{{ a", "unclosed '{{'");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_kinds),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_hash_number_default),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
