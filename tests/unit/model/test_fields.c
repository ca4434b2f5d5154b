/*
 * Unit tests of event fields (fields.c): path syntax, lookups into objects, arrays and raw
 * JSON, set/remove/move with their edge cases, message and timestamp, merging parser
 * output, copy on write between batches that share events, and the JSON encoding.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/encode.h"
#include "model/fields.h"
#include "model/json.h"

static struct mars_path *P(const char *s)
{
    size_t at;
    const char *why;
    struct mars_path *p = mars_path_compile(s, strlen(s), &at, &why);
    if (!p)
        fail_msg("path '%s': %s at %zu", s, why, at);
    return p;
}

static void test_path_syntax(void **state)
{
    static const struct {
        const char *in;
        uint32_t n;
        const char *last; /* last segment name, or NULL for an index */
    } ok[] = {
        {"message", 1, "message"},
        {".message", 1, "message"},
        {"a.b.c", 3, "c"},
        {"tags[0]", 2, NULL},
        {"a[1][2].b", 4, "b"},
        {"k.\"app.kubernetes.io/name\"", 2, "app.kubernetes.io/name"},
        {"\"with \\\"quote\\\"\"", 1, "with \"quote\""},
        {"@timestamp", 1, "@timestamp"},
        {"x-y_z$", 1, "x-y_z$"},
        {"0", 1, "0"},
        {"", 0, NULL},
        {".", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct mars_path *p = P(ok[i].in);
        assert_int_equal(p->n, ok[i].n);
        if (ok[i].n && ok[i].last) {
            assert_int_equal(p->seg[p->n - 1].len, strlen(ok[i].last));
            assert_memory_equal(p->seg[p->n - 1].name, ok[i].last, strlen(ok[i].last));
        } else if (ok[i].n) {
            assert_null(p->seg[p->n - 1].name);
        }
        mars_path_destroy(p);
    }
    static const struct {
        const char *in;
        size_t at;
    } bad[] = {{"a..b", 2}, {"a.", 2},         {"a[x]", 2}, {"a[1", 3}, {"\"open", 0},
               {"a b", 1},  {"a.\"x\\n\"", 4}, {"[0]", 0},  {"-a", 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t at;
        const char *why;
        struct mars_path *p = mars_path_compile(bad[i].in, strlen(bad[i].in), &at, &why);
        if (p || at != bad[i].at)
            fail_msg("'%s': want an error at %zu, got %s at %zu", bad[i].in, bad[i].at,
                     p ? "a path" : why, at);
    }
    struct mars_path *p = P("tags[3]");
    assert_true(mars_path_has_index(p));
    assert_int_equal(p->seg[1].index, 3);
    mars_path_destroy(p);
    (void)state;
}

/* One event in a new batch, with `json` parsed at the root. */
static struct mars_batch *event_with(const char *line, const char *json)
{
    struct mars_batch *b = mars_batch_create(4);
    struct mars_event *ev = mars_batch_push(b);
    ev->msg = (struct mars_slice){line, (uint32_t)strlen(line)};
    ev->ts_ns = 1704067200123000000LL;
    b->bytes = ev->msg.len;
    if (json) {
        struct mars_fbuild fb;
        size_t at;
        mars_fbuild_init(&fb);
        mars_fbuild_reset(&fb, &b->arena);
        assert_int_equal(mars_json_parse(json, strlen(json), 64, &fb, 0, &at), MARS_JSON_OK);
        assert_int_equal(mars_fields_merge(b, ev, &fb, NULL), 0);
        mars_fbuild_fini(&fb);
    }
    return b;
}

static char *encode(const struct mars_event *ev)
{
    struct mars_encoder e = {0};
    assert_int_equal(mars_encode_json_event(&e, ev), 0);
    char *s = strndup(e.out, e.out_len);
    mars_encoder_fini(&e);
    return s;
}

static void expect_json(const struct mars_event *ev, const char *want)
{
    char *got = encode(ev);
    if (strcmp(got, want) != 0)
        fail_msg("\n  want %s\n  got  %s", want, got);
    free(got);
}

static bool get(const struct mars_event *ev, const char *path, struct mars_value *v)
{
    struct mars_path *p = P(path);
    bool r = mars_fields_get(ev, p, v);
    mars_path_destroy(p);
    return r;
}

static void expect_text(const struct mars_event *ev, const char *path, const char *want)
{
    struct mars_value v;
    char *scratch = NULL;
    size_t scap = 0;
    uint32_t len;
    if (!get(ev, path, &v))
        fail_msg("'%s' is missing", path);
    const char *s = mars_value_text(&v, &scratch, &scap, &len);
    if (len != strlen(want) || memcmp(s, want, len) != 0)
        fail_msg("'%s' is '%.*s', want '%s'", path, (int)len, s, want);
    free(scratch);
}

static void test_lookup(void **state)
{
    const char *json = "{\"a\":{\"b\":{\"c\":\"deep\"}},\"tags\":[\"x\",{\"k\":\"v\\\"q\"},[1,2]],"
                       "\"esc\":\"\\u00e9\\n\",\"n\":42,\"odd.key\":true,\"nil\":null}";
    struct mars_batch *b = event_with("raw line", json);
    const struct mars_event *ev = &b->ev[0];
    struct mars_value v;
    expect_text(ev, "a.b.c", "deep");
    expect_text(ev, "tags[0]", "x");
    expect_text(ev, "tags[1].k", "v\"q");
    expect_text(ev, "tags[2][1]", "2");
    expect_text(ev, "esc", "\xc3\xa9\n");
    expect_text(ev, "n", "42");
    expect_text(ev, "\"odd.key\"", "true");
    expect_text(ev, "timestamp", "2024-01-01T00:00:00.123000000Z");
    assert_true(get(ev, "nil", &v) && v.kind == MARS_FIELD_NULL);
    assert_true(get(ev, "a.b", &v) && v.kind == MARS_FIELD_OBJECT);
    assert_true(get(ev, "tags[1]", &v) && v.kind == MARS_FIELD_OBJECT && (v.flags & MARS_FF_RAW));
    assert_false(get(ev, "a.x", &v));
    assert_false(get(ev, "n.x", &v));
    assert_false(get(ev, "tags[3]", &v));
    assert_false(get(ev, "a[0]", &v));
    expect_text(ev, "message", "raw line"); /* merging leaves the message (parse removes it) */
    double d;
    assert_true(get(ev, "n", &v) && mars_value_number(&v, &d) && d == 42);
    mars_batch_release(b);
    b = event_with("just a line", NULL);
    expect_text(&b->ev[0], "message", "just a line");
    mars_batch_release(b);
    (void)state;
}

static void test_set_remove_move(void **state)
{
    struct mars_batch *b = event_with("line", "{\"a\":{\"b\":1},\"s\":\"str\",\"keep\":2}");
    struct mars_event *ev = &b->ev[0];
    ev->flags |= MARS_EVF_NO_MESSAGE;
    struct mars_path *ab = P("a.b"), *xyz = P("x.y.z"), *s = P("s"), *sq = P("s.q"), *a = P("a"),
                     *moved = P("m.n"), *t0 = P("tags[0]"), *nope = P("nope");
    assert_int_equal(mars_fields_set(b, ev, ab, MARS_FIELD_STRING, "one", 3, 0), 0);
    assert_int_equal(mars_fields_set(b, ev, xyz, MARS_FIELD_NUMBER, "7", 1, 0), 0);
    assert_int_equal(mars_fields_set(b, ev, sq, MARS_FIELD_STRING, "v", 1, 0), -EINVAL);
    assert_int_equal(mars_fields_set(b, ev, t0, MARS_FIELD_STRING, "v", 1, 0), -EINVAL);
    expect_json(ev, "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\",\"a\":{\"b\":\"one\"},"
                    "\"s\":\"str\",\"keep\":2,\"x\":{\"y\":{\"z\":7}}}");
    assert_int_equal(mars_fields_move(b, ev, a, moved, false), 0);
    assert_int_equal(mars_fields_move(b, ev, s, a, true), 0);
    assert_int_equal(mars_fields_move(b, ev, nope, a, true), -ENOENT);
    struct mars_path *inside = P("m.n.o");
    assert_int_equal(mars_fields_move(b, ev, moved, inside, false), -EINVAL);
    mars_path_destroy(inside);
    assert_int_equal(mars_fields_remove(b, ev, xyz), 0);
    assert_int_equal(mars_fields_remove(b, ev, xyz), -ENOENT);
    expect_json(ev, "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\",\"s\":\"str\","
                    "\"keep\":2,\"x\":{\"y\":{}},\"m\":{\"n\":{\"b\":\"one\"}},\"a\":\"str\"}");
    mars_batch_release(b); /* before the paths its keys point into */
    mars_path_destroy(ab);
    mars_path_destroy(xyz);
    mars_path_destroy(s);
    mars_path_destroy(sq);
    mars_path_destroy(a);
    mars_path_destroy(moved);
    mars_path_destroy(t0);
    mars_path_destroy(nope);
    (void)state;
}

static void test_message_and_timestamp(void **state)
{
    char line[] = "abc\ndef";
    struct mars_batch *b = mars_batch_create(2);
    struct mars_event *ev = mars_batch_push(b);
    ev->msg = (struct mars_slice){line, 3};
    ev->flags = MARS_EVF_NL_FOLLOWS;
    b->bytes = 3;
    struct mars_path *msg = P("message"), *ts = P("timestamp"), *copy = P("copy");
    assert_int_equal(mars_fields_move(b, ev, ts, copy, true), 0);
    assert_int_equal(mars_fields_set(b, ev, msg, MARS_FIELD_STRING, "changed", 7, 0), 0);
    assert_int_equal(ev->flags & MARS_EVF_NL_FOLLOWS, 0); /* the newline no longer follows */
    assert_int_equal(b->bytes, 7);
    assert_int_equal(mars_fields_set(b, ev, ts, MARS_FIELD_STRING, "yesterday", 9, 0), 0);
    expect_json(ev, "{\"timestamp\":\"yesterday\",\"message\":\"changed\","
                    "\"copy\":\"1970-01-01T00:00:00.000000000Z\"}");
    assert_int_equal(mars_fields_remove(b, ev, msg), 0);
    assert_true(ev->flags & MARS_EVF_NO_MESSAGE);
    assert_int_equal(mars_fields_set(b, ev, msg, MARS_FIELD_NUMBER, "5", 1, 0), 0);
    expect_json(ev, "{\"timestamp\":\"yesterday\",\"message\":5,"
                    "\"copy\":\"1970-01-01T00:00:00.000000000Z\"}");
    mars_batch_release(b);
    mars_path_destroy(msg);
    mars_path_destroy(ts);
    mars_path_destroy(copy);
    (void)state;
}

static void test_copy_on_write(void **state)
{
    struct mars_batch *b = event_with("x", "{\"a\":1,\"o\":{\"p\":2}}");
    struct mars_batch *shared = mars_batch_ref(b);
    assert_int_equal(mars_batch_exclusive(&b), 0); /* b is now a clone */
    assert_ptr_not_equal(b, shared);
    struct mars_path *op = P("o.p"), *a = P("a");
    assert_int_equal(mars_fields_set(b, &b->ev[0], op, MARS_FIELD_STRING, "new", 3, 0), 0);
    assert_int_equal(mars_fields_remove(b, &b->ev[0], a), 0);
    assert_ptr_not_equal(b->ev[0].fields, shared->ev[0].fields);
    expect_json(&shared->ev[0],
                "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\",\"message\":\"x\","
                "\"a\":1,\"o\":{\"p\":2}}");
    expect_json(&b->ev[0], "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\","
                           "\"message\":\"x\",\"o\":{\"p\":\"new\"}}");
    /* a narrowed batch (route, filter) copies on write too */
    bool keep[1] = {true};
    struct mars_batch *sel = mars_batch_select(shared, keep, 0);
    assert_int_equal(mars_fields_set(sel, &sel->ev[0], a, MARS_FIELD_BOOL, "true", 4, 0), 0);
    expect_json(&shared->ev[0],
                "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\",\"message\":\"x\","
                "\"a\":1,\"o\":{\"p\":2}}");
    mars_batch_release(sel);
    mars_batch_release(b);
    mars_batch_release(shared);
    mars_path_destroy(op);
    mars_path_destroy(a);
    (void)state;
}

static void test_merge_under_target_and_growth(void **state)
{
    struct mars_batch *b = event_with("x", "{\"a\":1}");
    struct mars_event *ev = &b->ev[0];
    struct mars_fbuild fb;
    size_t at;
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    const char *j = "{\"b\":{\"c\":1},\"message\":\"not at root\"}";
    assert_int_equal(mars_json_parse(j, strlen(j), 64, &fb, 0, &at), 0);
    struct mars_path *t = P("p.q");
    assert_int_equal(mars_fields_merge(b, ev, &fb, t), 0);
    expect_json(ev, "{\"timestamp\":\"2024-01-01T00:00:00.123000000Z\",\"message\":\"x\","
                    "\"a\":1,\"p\":{\"q\":{\"b\":{\"c\":1},\"message\":\"not at root\"}}}");
    /* hundreds of sets: the array grows in the arena (new keys point into their paths,
     * which must outlive the batch) */
    static struct mars_path *paths[500];
    for (int i = 0; i < 500; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        paths[i] = P(name);
        char *v = mars_arena_strndup(&b->arena, name, strlen(name));
        assert_int_equal(
            mars_fields_set(b, ev, paths[i], MARS_FIELD_STRING, v, (uint32_t)strlen(v), 0), 0);
    }
    struct mars_value v;
    assert_true(get(ev, "f499", &v));
    assert_true(get(ev, "p.q.b.c", &v));
    mars_fbuild_fini(&fb);
    mars_batch_release(b);
    mars_path_destroy(t);
    for (int i = 0; i < 500; i++)
        mars_path_destroy(paths[i]);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_syntax),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_set_remove_move),
        cmocka_unit_test(test_message_and_timestamp),
        cmocka_unit_test(test_copy_on_write),
        cmocka_unit_test(test_merge_under_target_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
