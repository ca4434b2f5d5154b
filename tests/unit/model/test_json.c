/*
 * Unit tests of the JSON scanner (json.c), table-driven from RFC 8259: every escape,
 * surrogate pairs and unpaired surrogates, UTF-8 edge cases (RFC 3629), the number grammar
 * at its edges, nesting limits, duplicate keys, truncated and invalid input with the error
 * and its offset, zero-copy recording, and reading raw arrays and objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/utf8.h"
#include "model/json.h"

struct vcase {
    const char *in;
    size_t len; /* 0: strlen */
    enum mars_json_error err;
    size_t at; /* offset of the error */
};

#define OK(s)                                                                                      \
    {                                                                                              \
        s, 0, MARS_JSON_OK, 0                                                                      \
    }
#define BAD(s, e, off)                                                                             \
    {                                                                                              \
        s, 0, e, off                                                                               \
    }

/* Parsing text known to be valid UTF-8 with MARS_JSON_VALID_UTF8 gives what parsing it
 * without the option gives: the same error at the same offset, the same entries. */
static void same_with_utf8_option(const char *in, size_t len)
{
    if (mars_utf8_invalid((const unsigned char *)in, len) != 0)
        return; /* the option is only for valid UTF-8 */
    struct mars_arena a;
    struct mars_fbuild plain, opt;
    mars_arena_init(&a);
    mars_fbuild_init(&plain);
    mars_fbuild_init(&opt);
    mars_fbuild_reset(&plain, &a);
    mars_fbuild_reset(&opt, &a);
    size_t at1 = 0, at2 = 0;
    enum mars_json_error e1 = mars_json_parse(in, len, 64, &plain, 0, &at1);
    enum mars_json_error e2 =
        mars_json_parse_opts(in, len, 64, &opt, 0, MARS_JSON_VALID_UTF8, &at2);
    if (e1 != e2 || at1 != at2 || (e1 == MARS_JSON_OK && plain.n != opt.n))
        fail_msg("'%s': %s at %zu without the option, %s at %zu with it", in,
                 mars_json_strerror(e1), at1, mars_json_strerror(e2), at2);
    mars_fbuild_fini(&plain);
    mars_fbuild_fini(&opt);
    mars_arena_fini(&a);
}

static void run_cases(const struct vcase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = c[i].len ? c[i].len : strlen(c[i].in), at = 0;
        enum mars_json_error e = mars_json_validate(c[i].in, len, 64, &at);
        if (e != c[i].err || (e != MARS_JSON_OK && at != c[i].at))
            fail_msg("case %zu '%s': got %s at %zu, want %s at %zu", i, c[i].in,
                     mars_json_strerror(e), at, mars_json_strerror(c[i].err), c[i].at);
        same_with_utf8_option(c[i].in, len);
    }
}

static void test_valid_values(void **state)
{
    static const struct vcase cases[] = {
        OK("{}"),
        OK("[]"),
        OK("\"\""),
        OK("0"),
        OK("-0"),
        OK("true"),
        OK("false"),
        OK("null"),
        OK(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n"),
        OK("{\"a\":{\"b\":{\"c\":[[],{}]}}}"),
        /* every escape */
        OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
        OK("\"\\u0000\\u001f\\u0020\\u007F\""),
        OK("\"\\u00e9\\u20AC\\uFFFF\""),
        OK("\"\\uD834\\uDD1E\""),
        OK("\"\\ud83d\\ude00\""),
        OK("\"\\uDBFF\\uDFFF\""),
        OK("\"\\uD800\\uDC00\""),
        /* raw UTF-8 of every length, and the extremes */
        OK("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\""),
        OK("\"\xc2\x80\xdf\xbf\""),
        OK("\"\xe0\xa0\x80\xef\xbf\xbf\""),
        OK("\"\xed\x9f\xbf\xee\x80\x80\""),
        OK("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""),
        OK("\"\x7f\""),
        /* numbers at the edges */
        OK("0.5"),
        OK("-0.0"),
        OK("1e5"),
        OK("1E+5"),
        OK("1e-5"),
        OK("-1.25e-300"),
        OK("123456789012345678901234567890"),
        OK("1.7976931348623157e308"),
        OK("5e-324"),
        OK("1e400"),
        OK("-9223372036854775809"),
        OK("[0,-0,0e0,0E-0]"),
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    (void)state;
}

static void test_invalid_values(void **state)
{
    static const struct vcase cases[] = {
        BAD("", MARS_JSON_EMPTY, 0),
        BAD("  \n ", MARS_JSON_EMPTY, 4),
        /* numbers */
        BAD("01", MARS_JSON_BAD_NUMBER, 1),
        BAD("-", MARS_JSON_TRUNCATED, 1),
        BAD("1.", MARS_JSON_TRUNCATED, 2),
        BAD("1.e5", MARS_JSON_BAD_NUMBER, 2),
        BAD(".5", MARS_JSON_UNEXPECTED, 0),
        BAD("+1", MARS_JSON_UNEXPECTED, 0),
        BAD("1e", MARS_JSON_TRUNCATED, 2),
        BAD("1e+", MARS_JSON_TRUNCATED, 3),
        BAD("0x10", MARS_JSON_BAD_NUMBER, 1),
        BAD("-a", MARS_JSON_BAD_NUMBER, 1),
        BAD("NaN", MARS_JSON_UNEXPECTED, 0),
        BAD("Infinity", MARS_JSON_UNEXPECTED, 0),
        BAD("-Infinity", MARS_JSON_BAD_NUMBER, 1),
        BAD("1-2", MARS_JSON_BAD_NUMBER, 1),
        BAD("[1true]", MARS_JSON_BAD_NUMBER, 2),
        BAD("00", MARS_JSON_BAD_NUMBER, 1),
        /* literals */
        BAD("tru", MARS_JSON_TRUNCATED, 3),
        BAD("trux", MARS_JSON_UNEXPECTED, 3),
        BAD("nul", MARS_JSON_TRUNCATED, 3),
        BAD("True", MARS_JSON_UNEXPECTED, 0),
        BAD("truefalse", MARS_JSON_TRAILING, 4),
        /* escapes */
        BAD("\"\\x\"", MARS_JSON_BAD_ESCAPE, 1),
        BAD("\"\\'\"", MARS_JSON_BAD_ESCAPE, 1),
        BAD("\"\\u12\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\u12", MARS_JSON_TRUNCATED, 5),
        BAD("\"\\uGGGG\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\", MARS_JSON_TRUNCATED, 2),
        BAD("\"\\U0041\"", MARS_JSON_BAD_ESCAPE, 1),
        /* surrogates */
        BAD("\"\\uD800\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\uDC00\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\uD800\\u0041\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\uD800\\n\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\uDBFF\\uDBFF\"", MARS_JSON_BAD_UNICODE, 1),
        BAD("\"\\uD800", MARS_JSON_TRUNCATED, 7),
        BAD("\"\\uD800\\uDC", MARS_JSON_TRUNCATED, 11),
        /* control characters */
        BAD("\"a\x01\"", MARS_JSON_CONTROL_CHAR, 2),
        BAD("\"\t\"", MARS_JSON_CONTROL_CHAR, 1),
        BAD("\"\n\"", MARS_JSON_CONTROL_CHAR, 1),
        /* UTF-8 */
        BAD("\"\xc0\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xc1\xbf\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xe0\x80\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xe0\x9f\xbf\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xed\xa0\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xf0\x80\x80\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xf4\x90\x80\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xf5\x80\x80\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\x80\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xff\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xc3\x28\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xe2\x82\"", MARS_JSON_BAD_UTF8, 1),
        BAD("\"\xe2\x82", MARS_JSON_TRUNCATED, 3),
        BAD("\"abc", MARS_JSON_TRUNCATED, 4),
        /* structure */
        BAD("{", MARS_JSON_TRUNCATED, 1),
        BAD("{\"a\"", MARS_JSON_TRUNCATED, 4),
        BAD("{\"a\":", MARS_JSON_TRUNCATED, 5),
        BAD("{\"a\":}", MARS_JSON_UNEXPECTED, 5),
        BAD("{\"a\":1,}", MARS_JSON_UNEXPECTED, 7),
        BAD("[1,]", MARS_JSON_UNEXPECTED, 3),
        BAD("[,1]", MARS_JSON_UNEXPECTED, 1),
        BAD("{a:1}", MARS_JSON_UNEXPECTED, 1),
        BAD("{\"a\" 1}", MARS_JSON_UNEXPECTED, 5),
        BAD("[1 2]", MARS_JSON_UNEXPECTED, 3),
        BAD("{\"a\":1 \"b\":2}", MARS_JSON_UNEXPECTED, 7),
        BAD("{} {}", MARS_JSON_TRAILING, 3),
        BAD("[1]]", MARS_JSON_TRAILING, 3),
        BAD("{\"a\":1}}", MARS_JSON_TRAILING, 7),
        BAD("[", MARS_JSON_TRUNCATED, 1),
        BAD("[1", MARS_JSON_TRUNCATED, 2),
        BAD("{1:2}", MARS_JSON_UNEXPECTED, 1),
        BAD("'a'", MARS_JSON_UNEXPECTED, 0),
        {"[1]\x00", 4, MARS_JSON_TRAILING, 3},
        BAD("\xef\xbb\xbf{}", MARS_JSON_UNEXPECTED, 0),
        BAD("{\"a\":1,\"b\"}", MARS_JSON_UNEXPECTED, 10),
        BAD("[\"a\" : 1]", MARS_JSON_UNEXPECTED, 5),
    };
    struct vcase nul = {"\"a\0b\"", 5, MARS_JSON_CONTROL_CHAR, 2};
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    run_cases(&nul, 1);
    (void)state;
}

static char *nested(const char *open, const char *close, int depth)
{
    size_t o = strlen(open), c = strlen(close);
    char *s = malloc((o + c) * (size_t)depth + 1);
    for (int i = 0; i < depth; i++)
        memcpy(s + o * (size_t)i, open, o);
    for (int i = 0; i < depth; i++)
        memcpy(s + o * (size_t)depth + c * (size_t)i, close, c);
    s[(o + c) * (size_t)depth] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    size_t at;
    char *a64 = nested("[", "]", 64), *a65 = nested("[", "]", 65);
    char *o64 = nested("{\"k\":", "}", 63), *deep = nested("[", "]", 200000);
    assert_int_equal(mars_json_validate(a64, strlen(a64), 64, &at), MARS_JSON_OK);
    assert_int_equal(mars_json_validate(a65, strlen(a65), 64, &at), MARS_JSON_TOO_DEEP);
    assert_int_equal(at, 64);
    /* 63 objects around a number: 63 levels */
    char *o = malloc(strlen(o64) + 2);
    size_t half = 5 * 63;
    memcpy(o, o64, half);
    o[half] = '1';
    strcpy(o + half + 1, o64 + half);
    assert_int_equal(mars_json_validate(o, strlen(o), 63, &at), MARS_JSON_OK);
    assert_int_equal(mars_json_validate(o, strlen(o), 62, &at), MARS_JSON_TOO_DEEP);
    /* far past any limit: an error, not a stack overflow */
    assert_int_equal(mars_json_validate(deep, strlen(deep), MARS_JSON_MAX_DEPTH, &at),
                     MARS_JSON_TOO_DEEP);
    free(a64);
    free(a65);
    free(o64);
    free(o);
    free(deep);
    (void)state;
}

struct parsed {
    struct mars_arena arena;
    struct mars_fbuild fb;
};

static enum mars_json_error parse(struct parsed *p, const char *s)
{
    mars_arena_init(&p->arena);
    mars_fbuild_init(&p->fb);
    mars_fbuild_reset(&p->fb, &p->arena);
    size_t at;
    return mars_json_parse(s, strlen(s), 64, &p->fb, 0, &at);
}

static void parsed_fini(struct parsed *p)
{
    mars_fbuild_fini(&p->fb);
    mars_arena_fini(&p->arena);
}

static const struct mars_field *member(const struct parsed *p, uint32_t obj, const char *key)
{
    uint32_t i = mars_fbuild_find(&p->fb, obj, key, (uint32_t)strlen(key));
    return i == MARS_FIELD_NIL ? NULL : &p->fb.v[i];
}

static void test_parse_records_slices(void **state)
{
    struct parsed p;
    const char *s = "{\"s\":\"plain\",\"e\":\"a\\nb\",\"n\":-1.5e3,\"t\":true,\"z\":null,"
                    "\"arr\":[1, {\"x\":2}],\"o\":{\"in\":\"side\"}}";
    assert_int_equal(parse(&p, s), MARS_JSON_OK);
    const struct mars_field *f = member(&p, 0, "s");
    assert_int_equal(f->kind, MARS_FIELD_STRING);
    assert_ptr_equal(f->value, strstr(s, "plain")); /* zero copy */
    assert_int_equal(f->value_len, 5);
    assert_int_equal(f->flags, 0);
    f = member(&p, 0, "e");
    assert_int_equal(f->flags, MARS_FF_ESCAPED);
    assert_int_equal(f->value_len, 4); /* the raw body a\nb */
    f = member(&p, 0, "n");
    assert_int_equal(f->kind, MARS_FIELD_NUMBER);
    assert_memory_equal(f->value, "-1.5e3", 6);
    assert_int_equal(member(&p, 0, "t")->kind, MARS_FIELD_BOOL);
    assert_int_equal(member(&p, 0, "z")->kind, MARS_FIELD_NULL);
    f = member(&p, 0, "arr");
    assert_int_equal(f->kind, MARS_FIELD_ARRAY);
    assert_int_equal(f->value_len, strlen("[1, {\"x\":2}]"));
    uint32_t o = mars_fbuild_find(&p.fb, 0, "o", 1);
    assert_int_equal(p.fb.v[o].kind, MARS_FIELD_OBJECT);
    assert_memory_equal(member(&p, o, "in")->value, "side", 4);
    assert_int_equal(p.fb.n, 9); /* root + 7 members + 1 nested; nothing inside the array */
    parsed_fini(&p);
    (void)state;
}

static void test_duplicate_keys_last_wins(void **state)
{
    struct parsed p;
    assert_int_equal(parse(&p, "{\"a\":1,\"b\":2,\"a\":{\"c\":3},\"b\":[],\"a\":\"x\"}"),
                     MARS_JSON_OK);
    uint32_t first = p.fb.v[0].first;
    assert_memory_equal(p.fb.v[first].key, "a", 1); /* keeps the first position */
    assert_int_equal(p.fb.v[first].kind, MARS_FIELD_STRING);
    assert_memory_equal(p.fb.v[first].value, "x", 1);
    assert_int_equal(p.fb.v[first].first, MARS_FIELD_NIL); /* the old object's members are gone */
    assert_int_equal(member(&p, 0, "b")->kind, MARS_FIELD_ARRAY);
    assert_int_equal(p.fb.v[p.fb.v[first].next].next, MARS_FIELD_NIL); /* two members */
    parsed_fini(&p);
    /* many keys (past the bloom filter's 64 bits) */
    char big[8192];
    size_t o = 0;
    o += (size_t)snprintf(big + o, sizeof(big) - o, "{");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"k%d\":%d", i ? "," : "", i % 100, i);
    snprintf(big + o, sizeof(big) - o, "}");
    assert_int_equal(parse(&p, big), MARS_JSON_OK);
    const struct mars_field *f = member(&p, 0, "k42");
    assert_memory_equal(f->value, "142", 3);
    uint32_t n = 0;
    for (uint32_t i = p.fb.v[0].first; i != MARS_FIELD_NIL; i = p.fb.v[i].next)
        n++;
    assert_int_equal(n, 100);
    parsed_fini(&p);
    (void)state;
}

static void test_escaped_keys_decoded(void **state)
{
    struct parsed p;
    assert_int_equal(parse(&p, "{\"a\\u002eb\":1,\"\\ud83d\\ude00\":2,\"a.b\":3}"), MARS_JSON_OK);
    const struct mars_field *f = member(&p, 0, "a.b");
    assert_non_null(f);
    assert_memory_equal(f->value, "3", 1); /* "a\u002eb" and "a.b" are the same key */
    assert_non_null(member(&p, 0, "\xf0\x9f\x98\x80"));
    parsed_fini(&p);
    (void)state;
}

static void test_parse_not_object(void **state)
{
    struct parsed p;
    assert_int_equal(parse(&p, "[1,2]"), MARS_JSON_NOT_OBJECT);
    parsed_fini(&p);
    assert_int_equal(parse(&p, "\"str\""), MARS_JSON_NOT_OBJECT);
    parsed_fini(&p);
    assert_int_equal(parse(&p, "[1,"), MARS_JSON_TRUNCATED); /* syntax errors come first */
    parsed_fini(&p);
    assert_int_equal(parse(&p, "{\"a\":1} x"), MARS_JSON_TRAILING);
    parsed_fini(&p);
    (void)state;
}

static void test_unescape(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t"},
        {"\\u0041\\u00e9\\u20ac", "A\xc3\xa9\xe2\x82\xac"},
        {"\\ud834\\udd1e", "\xf0\x9d\x84\x9e"},
        {"x\\u0000y", "x\0y"},
        {"\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        size_t n = mars_json_unescape(cases[i].in, strlen(cases[i].in), out);
        size_t want = strlen(cases[i].out) + (i == 4 ? 2 : 0);
        assert_int_equal(n, want);
        assert_memory_equal(out, cases[i].out, want);
    }
    (void)state;
}

static void test_raw_array_and_object(void **state)
{
    const char *arr = " [ \"a\\\"b\" , 2 ,{\"k\":[1,\"]\"]}, [3], true,null ] ";
    struct mars_value v;
    assert_true(mars_json_array_at(arr, strlen(arr), 0, &v));
    assert_int_equal(v.kind, MARS_FIELD_STRING);
    assert_int_equal(v.flags, MARS_FF_ESCAPED);
    assert_memory_equal(v.ptr, "a\\\"b", 4);
    assert_true(mars_json_array_at(arr, strlen(arr), 1, &v));
    assert_int_equal(v.kind, MARS_FIELD_NUMBER);
    assert_true(mars_json_array_at(arr, strlen(arr), 2, &v));
    assert_int_equal(v.kind, MARS_FIELD_OBJECT);
    assert_int_equal(v.flags, MARS_FF_RAW);
    struct mars_value k;
    assert_true(mars_json_object_get(v.ptr, v.len, "k", 1, &k));
    assert_int_equal(k.kind, MARS_FIELD_ARRAY);
    assert_true(mars_json_array_at(k.ptr, k.len, 1, &v));
    assert_memory_equal(v.ptr, "]", 1);
    assert_true(mars_json_array_at(arr, strlen(arr), 3, &v));
    assert_int_equal(v.kind, MARS_FIELD_ARRAY);
    assert_true(mars_json_array_at(arr, strlen(arr), 5, &v));
    assert_int_equal(v.kind, MARS_FIELD_NULL);
    assert_false(mars_json_array_at(arr, strlen(arr), 6, &v));
    assert_false(mars_json_array_at("[]", 2, 0, &v));
    /* one-pass iteration sees the same elements as array_at */
    size_t pos = 0;
    uint32_t n = 0;
    struct mars_value w;
    while (mars_json_array_next(arr, strlen(arr), &pos, &v)) {
        assert_true(mars_json_array_at(arr, strlen(arr), n++, &w));
        assert_int_equal(v.kind, w.kind);
        assert_ptr_equal(v.ptr, w.ptr);
        assert_int_equal(v.len, w.len);
    }
    assert_int_equal(n, 6);
    assert_false(mars_json_array_next(arr, strlen(arr), &pos, &v)); /* stays at the end */
    pos = 0;
    assert_false(mars_json_array_next(" [ ] ", 5, &pos, &v));
    pos = 0;
    assert_false(mars_json_array_next("{}", 2, &pos, &v));
    const char *obj = "{\"a\":1,\"a\\u0062\":2,\"a\":3}";
    assert_true(mars_json_object_get(obj, strlen(obj), "a", 1, &v));
    assert_memory_equal(v.ptr, "3", 1); /* last wins */
    assert_true(mars_json_object_get(obj, strlen(obj), "ab", 2, &v));
    assert_memory_equal(v.ptr, "2", 1);
    assert_false(mars_json_object_get(obj, strlen(obj), "b", 1, &v));
    (void)state;
}

static void test_raw_object_members(void **state)
{
    const char *obj = " { \"a\" : 1, \"b\\u0063\":\"x\",\"n\":{\"d\":[1,2]} ,\"e\":null} ";
    const char *keys[] = {"a", "b\\u0063", "n", "e"};
    const char *vals[] = {"1", "x", "{\"d\":[1,2]}", "null"};
    struct mars_value k, v;
    size_t pos = 0, n = 0;
    while (mars_json_object_next(obj, strlen(obj), &pos, &k, &v)) {
        assert_true(n < 4);
        assert_int_equal(k.kind, MARS_FIELD_STRING);
        assert_int_equal(k.len, strlen(keys[n]));
        assert_memory_equal(k.ptr, keys[n], k.len);
        assert_int_equal(v.len, strlen(vals[n]));
        assert_memory_equal(v.ptr, vals[n], v.len);
        n++;
    }
    assert_int_equal(n, 4);
    assert_int_equal(k.flags, 0);
    assert_false(mars_json_object_next(obj, strlen(obj), &pos, &k, &v)); /* stays at the end */
    pos = 0;
    assert_false(mars_json_object_next("{ }", 3, &pos, &k, &v));
    pos = 0;
    assert_false(mars_json_object_next("[1]", 3, &pos, &k, &v));
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_parse_records_slices),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_escaped_keys_decoded),
        cmocka_unit_test(test_parse_not_object),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_raw_array_and_object),
        cmocka_unit_test(test_raw_object_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
