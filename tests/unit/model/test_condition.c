/*
 * Unit tests of the condition language (condition.c): the grammar, precedence, every
 * function, comparison rules across kinds, missing fields, escaped strings, and compile
 * errors with their offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/condition.h"
#include "model/fields.h"
#include "model/json.h"

static struct mars_batch *event_with(const char *line, const char *json)
{
    struct mars_batch *b = mars_batch_create(1);
    struct mars_event *ev = mars_batch_push(b);
    struct mars_fbuild fb;
    size_t at;
    ev->msg = (struct mars_slice){line, (uint32_t)strlen(line)};
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    assert_int_equal(mars_json_parse(json, strlen(json), 64, &fb, 0, &at), MARS_JSON_OK);
    assert_int_equal(mars_fields_merge(b, ev, &fb, NULL), 0);
    mars_fbuild_fini(&fb);
    return b;
}

static void test_evaluation(void **state)
{
    struct mars_batch *b = event_with(
        "GET /api/v1 took 20ms",
        "{\"level\":\"error\",\"code\":500,\"code_s\":\"500\",\"ratio\":0.25,\"ok\":false,"
        "\"on\":true,\"nil\":null,\"tags\":[\"a\",\"b c\",2],\"user\":{\"name\":\"J\\u00f6rg\","
        "\"id\":7},\"esc\":\"x\\\"y\",\"empty\":\"\",\"odd.key\":1,\"neg\":-3}");
    static const struct {
        const char *cond;
        bool want;
    } cases[] = {
        {"level == \"error\"", true},
        {"level == 'error'", true},
        {"\"error\" == level", true},
        {"level != \"error\"", false},
        {"code == 500", true},
        {"code == 500.0", true},
        {"code_s == 500", true},
        {"code == \"500\"", true},
        {"code > 499 && code < 501", true},
        {"ratio <= 0.25", true},
        {"ratio < 0.25", false},
        {"neg < -2", true},
        {"level < \"f\"", true},
        {"level >= \"error\"", true},
        {"level > \"error\"", false},
        {"ok == false", true},
        {"ok == true", false},
        {"ok != true", true},
        {"on", true},
        {"ok", false},
        {"nil", false},
        {"nil == null", true},
        {"level == null", false},
        {"code == true", false},
        {"missing", false},
        {"missing == 1", false},
        {"missing != 1", true},
        {"missing < 1", false},
        {"!missing", true},
        {"exists(user.id)", true},
        {"exists(user.x)", false},
        {"exists(nil)", true},
        {"exists(message)", true},
        {"exists(timestamp)", true},
        {"user.id == 7 && user.name == \"J\xc3\xb6rg\"", true},
        {"esc == 'x\"y'", true},
        {"esc == \"x\\\"y\"", true},
        {"contains(message, \"/api/\")", true},
        {"contains(message, \"\")", true},
        {"contains(tags, \"b c\")", true},
        {"contains(tags, \"b\")", false},
        {"starts_with(message, \"GET \")", true},
        {"starts_with(message, \"get\")", false},
        {"ends_with(message, \"ms\")", true},
        {"ends_with(empty, \"\")", true},
        {"match(message, \"took [0-9]+ms$\")", true},
        {"match(message, \"^POST\")", false},
        {"match(code, \"^5\\\\d\\\\d$\")", true},
        {"in(level, [\"warn\", \"error\"])", true},
        {"in(level, [])", false},
        {"in(code, [404, 500])", true},
        {"in(ok, [false])", true},
        {"in(nil, [null])", true},
        {"tags[0] == \"a\"", true},
        {"tags[2] == 2", true},
        {"tags[5] == 1", false},
        {".\"odd.key\" == 1", true},
        {"user == \"x\"", false},
        {"user != \"x\"", true},
        {"true", true},
        {"false", false},
        {"!true || true", true},
        {"false || false && true", false},
        {"true || false && false", true},
        {"!(false || true)", false},
        {"!!on", true},
        {"((((on))))", true},
        {"code == code_s", true},
        {"ratio < code", true},
        {"level == level", true},
        {"message == \"GET /api/v1 took 20ms\"", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mars_cond_error err;
        struct mars_cond *c = mars_cond_compile(cases[i].cond, &err);
        if (!c)
            fail_msg("'%s' does not compile: %s at %zu", cases[i].cond, err.msg, err.offset);
        bool got = mars_cond_eval(c, &b->ev[0]);
        if (got != cases[i].want)
            fail_msg("'%s' is %s, want %s", cases[i].cond, got ? "true" : "false",
                     cases[i].want ? "true" : "false");
        mars_cond_destroy(c);
    }
    mars_batch_release(b);
    (void)state;
}

static void test_compile_errors(void **state)
{
    static const struct {
        const char *cond;
        size_t at;
        const char *msg;
    } cases[] = {
        {"", 0, "the condition is empty"},
        {"   ", 0, "the condition is empty"},
        {"a = 1", 2, "use '=='"},
        {"a ==", 4, "expected a field, string or number before the end"},
        {"a == 1 &&", 9, "expected a field"},
        {"a == 1 ||| b", 9, "expected a field, string or number, found '|'"},
        {"(a == 1", 7, "expected ')' before the end"},
        {"a == 1)", 6, "unexpected ')'"},
        {"a == 'x", 5, "unterminated string"},
        {"a == \"\\q\"", 6, "unknown escape"},
        {"a == 1.2.3", 5, "invalid number '1.2.3'"},
        {"a == -", 5, "found '-'"},
        {"a == -x", 5, "invalid number '-'"},
        {"1", 0, "expected a comparison after the value"},
        {"\"x\"", 0, "expected a comparison"},
        {"foo(a)", 0, "unknown function 'foo'"},
        {"exist(a)", 0, "did you mean 'exists'?"},
        {"exists(\"a\")", 7, "expected a field path as the first argument"},
        {"contains(a)", 10, "expected ',' and a second argument"},
        {"contains(a, b)", 12, "expected a string"},
        {"contains(a, 1)", 12, "expected a string"},
        {"in(a, \"x\")", 6, "expected '[' starting the list"},
        {"in(a, [b])", 7, "expected a literal"},
        {"in(a, [1, 2)", 11, "expected ',' or ']'"},
        {"match(a, \"[\")", 11, "bad regular expression: missing terminating ]"},
        {"exists(a) == true", 10, "unexpected '='"},
        {"a == exists(b)", 5, "a function call cannot be compared"},
        {"a < true", 4, "can only be compared with == or !="},
        {"null >= a", 8, "can only be compared with == or !="},
        {"a.", 2, "expected a field name"},
        {"a[x] == 1", 2, "expected an array index"},
        {"a == 1 b", 7, "unexpected 'b'"},
        {"# == 1", 0, "found '#'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mars_cond_error err;
        struct mars_cond *c = mars_cond_compile(cases[i].cond, &err);
        if (c)
            fail_msg("'%s' compiled", cases[i].cond);
        if (err.offset != cases[i].at || !strstr(err.msg, cases[i].msg))
            fail_msg("'%s': got '%s' at %zu, want '%s' at %zu", cases[i].cond, err.msg, err.offset,
                     cases[i].msg, cases[i].at);
    }
    (void)state;
}

/* in() lists and contains()'s needle: members are literals, compared with the field (or
 * each array element) by the rules of ==, and never looked up in the event. */
static void test_members_are_literals(void **state)
{
    struct mars_batch *b = event_with("m", "{\"level\":\"warn\",\"warn\":\"error\",\"n\":3,"
                                           "\"flag\":true,\"nil\":null,\"esc\":\"x\\\"y\","
                                           "\"tags\":[\"warn\",3,true,null,\"x\\\"y\"]}");
    static const struct {
        const char *cond;
        bool want;
    } cases[] = {
        {"in(level, [\"warn\"])", true},
        {"in(level, [\"error\"])", false}, /* the field named warn is not consulted */
        {"in(level, [1, true, null, \"warn\"])", true},
        {"in(n, [3])", true},
        {"in(n, [\"3\"])", true},
        {"in(n, [3.5, -3])", false},
        {"in(flag, [true])", true},
        {"in(flag, [false, null])", false},
        {"in(level, [true])", false},
        {"in(nil, [null])", true},
        {"in(level, [null])", false},
        {"in(esc, ['x\"y'])", true},
        {"in(missing, [\"warn\", null])", false},
        {"contains(tags, \"warn\")", true},
        {"contains(tags, \"error\")", false},
        {"contains(tags, \"3\")", true},
        {"contains(tags, \"true\")", true},
        {"contains(tags, \"null\")", true},
        {"contains(tags, 'x\"y')", true},
    };
    /* what equals_operand() relies on: no field path gets into a list or a needle */
    static const char *const refused[] = {
        "in(level, [warn])",     "in(level, [\"a\", .warn])", "in(level, [tags[0]])",
        "contains(tags, level)", "contains(tags, .\"warn\")",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mars_cond_error err;
        struct mars_cond *c = mars_cond_compile(cases[i].cond, &err);
        if (!c)
            fail_msg("'%s' does not compile: %s at %zu", cases[i].cond, err.msg, err.offset);
        bool got = mars_cond_eval(c, &b->ev[0]);
        if (got != cases[i].want)
            fail_msg("'%s' is %s, want %s", cases[i].cond, got ? "true" : "false",
                     cases[i].want ? "true" : "false");
        mars_cond_destroy(c);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct mars_cond_error err;
        struct mars_cond *c = mars_cond_compile(refused[i], &err);
        if (c)
            fail_msg("'%s' compiled: a field path as a member", refused[i]);
    }
    mars_batch_release(b);
    (void)state;
}

static void test_nesting_bounded(void **state)
{
    char deep[4096];
    memset(deep, '(', 2000);
    strcpy(deep + 2000, "true");
    memset(deep + 2004, ')', 2000);
    deep[4004] = '\0';
    struct mars_cond_error err;
    assert_null(mars_cond_compile(deep, &err));
    assert_non_null(strstr(err.msg, "nests too deeply"));
    memset(deep, '!', 3000);
    strcpy(deep + 3000, "true");
    assert_null(mars_cond_compile(deep, &err));
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluation),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_members_are_literals),
        cmocka_unit_test(test_nesting_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
