/*
 * test_encode.c - model/encode.c's JSON string escaping against a plain byte-by-byte
 * reference written here from RFC 8259: random strings over every byte value, with runs of
 * plain ASCII (the 8-byte fast path), quotes, backslashes, control bytes, valid multi-byte
 * UTF-8 and invalid bytes, at every length from 0 to 80 and at odd offsets; invalid UTF-8
 * must become U+FFFD and be counted. Also a summary metric event in JSON and as text, and a
 * message the source marked valid UTF-8 (MARS_EVF_UTF8) escaped without the check.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/utf8.h"
#include "model/encode.h"
#include "model/fields.h"
#include "model/json.h"
#include "model/metric_event.h"

static size_t reference(const unsigned char *s, size_t n, char *out, uint64_t *invalid)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t seq = c >= 0x80 ? mars_utf8_seq(s + i, n - i) : 0;
        if (seq) {
            memcpy(out + o, s + i, seq);
            o += seq;
            i += seq;
            continue;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            o += (size_t)sprintf(out + o, "\\n");
        } else if (c == '\r') {
            o += (size_t)sprintf(out + o, "\\r");
        } else if (c == '\t') {
            o += (size_t)sprintf(out + o, "\\t");
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else if (c >= 0x80) {
            o += (size_t)sprintf(out + o, "\\ufffd");
            (*invalid)++;
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o++] = '"';
    return o;
}

/* Bytes of plain text with one of the pieces below in about one of every `every` draws. */
static void fill_sparse(unsigned char *b, size_t n, uint32_t *seed, uint32_t every);

static void fill(unsigned char *b, size_t n, uint32_t *seed)
{
    fill_sparse(b, n, seed, 4);
}

static void fill_sparse(unsigned char *b, size_t n, uint32_t *seed, uint32_t every)
{
    static const char *const pieces[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\"", "\\", "\n", "\x01", "\x7f",
        "\xff",     "\xc3",         "\xed\xa0\x80"};
    size_t i = 0;
    while (i < n) {
        *seed = *seed * 1103515245u + 12345u;
        uint32_t r = *seed >> 8;
        if (r % every) { /* mostly plain text, so the fast paths run */
            b[i++] = (unsigned char)('a' + r % 26);
            continue;
        }
        const char *p = pieces[r % (sizeof(pieces) / sizeof(pieces[0]))];
        for (size_t k = 0; p[k] && i < n; k++)
            b[i++] = (unsigned char)p[k];
    }
}

static void test_matches_reference(void **state)
{
    (void)state;
    unsigned char buf[128];
    char want[128 * 6 + 2];
    uint32_t seed = 42;
    struct mars_encoder e = {0};
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 81), off = (size_t)(round % 7);
        fill(buf + off, n, &seed);
        uint64_t inv = 0, before = e.invalid_utf8;
        size_t wl = reference(buf + off, n, want, &inv);
        e.out_len = 0;
        assert_int_equal(mars_encode_json_string(&e, (const char *)buf + off, n), 0);
        assert_int_equal(e.out_len, wl);
        assert_memory_equal(e.out, want, wl);
        assert_int_equal(e.invalid_utf8 - before, inv);
    }
    /* long strings with rare specials: the 32-byte blocks of the wide path, and blocks
     * with one special handed to the byte loop */
    static unsigned char lbuf[512];
    static char lwant[512 * 6 + 2];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(round % 480), off = (size_t)(round % 5);
        fill_sparse(lbuf + off, n, &seed, 16 + (uint32_t)(round % 200));
        uint64_t inv = 0, before = e.invalid_utf8;
        size_t wl = reference(lbuf + off, n, lwant, &inv);
        e.out_len = 0;
        assert_int_equal(mars_encode_json_string(&e, (const char *)lbuf + off, n), 0);
        assert_int_equal(e.out_len, wl);
        assert_memory_equal(e.out, lwant, wl);
        assert_int_equal(e.invalid_utf8 - before, inv);
    }
    /* every single byte value */
    for (int c = 0; c < 256; c++) {
        unsigned char one = (unsigned char)c;
        uint64_t inv = 0;
        size_t wl = reference(&one, 1, want, &inv);
        e.out_len = 0;
        assert_int_equal(mars_encode_json_string(&e, (const char *)&one, 1), 0);
        assert_int_equal(e.out_len, wl);
        assert_memory_equal(e.out, want, wl);
    }
    mars_encoder_fini(&e);
}

static void test_appends(void **state)
{
    (void)state;
    struct mars_encoder e = {0};
    assert_int_equal(mars_encode_json_string(&e, "a\"b", 3), 0);
    assert_int_equal(mars_encode_json_string(&e, "0123456789abcdef", 16), 0);
    assert_int_equal(e.out_len, 6 + 18);
    assert_memory_equal(e.out, "\"a\\\"b\"\"0123456789abcdef\"", e.out_len);
    mars_encoder_fini(&e);
}

/* The message of an event marked MARS_EVF_UTF8 skips the UTF-8 check: the mark is the
 * source's word, so even a bad byte goes out as it is (here to show the check was skipped);
 * without the mark the same bytes are checked and the bad one replaced and counted. */
static void test_message_utf8_flag(void **state)
{
    (void)state;
    /* long enough for the vector path: quotes, a backslash, a sequence across its blocks */
    static const char msg[] = "{\"k\":\"caf\xc3\xa9\",\"p\":\"a\\\\b\",\"t\":\"\xe2\x82\xac\xe2\x82"
                              "\xac\xe2\x82\xac\xe2\x82\xac\",\"z\":\"\xff\"}";
    static const char esc[] =
        "\"{\\\"k\\\":\\\"caf\xc3\xa9\\\",\\\"p\\\":\\\"a\\\\\\\\b\\\",\\\"t\\\":"
        "\\\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\\\",\\\"z\\\":\\\"";
    struct mars_event ev = {.msg = {msg, sizeof(msg) - 1}};
    struct mars_encoder e = {0};
    char want[256];
    for (int marked = 1; marked >= 0; marked--) {
        ev.flags = marked ? MARS_EVF_UTF8 : 0;
        snprintf(want, sizeof(want),
                 "{\"timestamp\":\"1970-01-01T00:00:00.000000000Z\","
                 "\"message\":%s%s\\\"}\"}",
                 esc, marked ? "\xff" : "\\ufffd");
        mars_encoder_reset(&e);
        uint64_t bad = e.invalid_utf8;
        assert_int_equal(mars_encode_json_event(&e, &ev), 0);
        assert_int_equal(e.out_len, strlen(want));
        assert_memory_equal(e.out, want, e.out_len);
        assert_int_equal(e.invalid_utf8 - bad, marked ? 0 : 1);
    }
    mars_encoder_fini(&e);
}

/* The nanoseconds of a timestamp, every pair of digits at every place (they are written two
 * at a time), against printf. */
static void test_timestamp_digits(void **state)
{
    (void)state;
    struct mars_encoder e = {0};
    struct mars_event ev = {.msg = {"x", 1}, .flags = MARS_EVF_NO_MESSAGE};
    char want[96];
    for (long v = 0; v < 100; v++) {
        long nsec = (v % 10) * 100000000 + v * 1000000 + v * 10000 + v * 100 + v;
        ev.ts_ns = 1700000000 * 1000000000ll + nsec;
        snprintf(want, sizeof(want), "{\"timestamp\":\"2023-11-14T22:13:20.%09ldZ\"}", nsec);
        mars_encoder_reset(&e);
        assert_int_equal(mars_encode_json_event(&e, &ev), 0);
        assert_int_equal(e.out_len, strlen(want));
        assert_memory_equal(e.out, want, e.out_len);
    }
    mars_encoder_fini(&e);
}

/* A summary sample: its observations copied, its quantiles in JSON (NaN as null). */
static void test_summary_event(void **state)
{
    (void)state;
    static const char *const names[] = {"k"}, *const values[] = {"v"};
    static const double qs[] = {0.5, 0.9}, obs[] = {2, 4, 6};
    struct mars_batch *b = mars_batch_create(4);
    assert_non_null(b);
    struct mars_metric_sample m = {.name = "t_s",
                                   .kind = MARS_METRIC_SUMMARY,
                                   .label_names = names,
                                   .label_values = values,
                                   .nlabels = 1,
                                   .value = 12,
                                   .count = 3,
                                   .quantiles = qs,
                                   .nquantiles = 2,
                                   .observations = obs};
    assert_int_equal(mars_batch_push_metric(b, &m, 0), 0);
    const struct mars_event *ev = &b->ev[0];
    const struct mars_metric *mt = ev->metric;
    assert_int_equal(mt->nquantiles, 2);
    assert_true(mt->observations && mt->observations != obs);
    assert_true(mt->observations[2] == 6);
    assert_int_equal(ev->msg.len, strlen("t_s_count{k=\"v\"} 3 sum=12"));
    assert_memory_equal(ev->msg.ptr, "t_s_count{k=\"v\"} 3 sum=12", ev->msg.len);
    /* a gauge: labels in order, a value escaped, a fraction */
    static const char *const n2[] = {"a", "path"}, *const v2[] = {"x\"y", "/o\\k\n"};
    struct mars_metric_sample g = {.name = "g",
                                   .kind = MARS_METRIC_GAUGE,
                                   .label_names = n2,
                                   .label_values = v2,
                                   .nlabels = 2,
                                   .value = -0.25};
    assert_int_equal(mars_batch_push_metric(b, &g, 0), 0);
    const char *want = "g{a=\"x\\\"y\",path=\"/o\\\\k\\n\"} -0.25";
    assert_int_equal(b->ev[1].msg.len, strlen(want));
    assert_memory_equal(b->ev[1].msg.ptr, want, strlen(want));
    struct mars_metric_sample bare = {.name = "c_total", .kind = MARS_METRIC_COUNTER, .value = 7};
    assert_int_equal(mars_batch_push_metric(b, &bare, 0), 0);
    assert_int_equal(b->ev[2].msg.len, strlen("c_total 7"));
    assert_memory_equal(b->ev[2].msg.ptr, "c_total 7", 9);
    struct mars_encoder e = {0};
    assert_int_equal(mars_encode_json_event(&e, ev), 0);
    assert_int_equal(mars_encoder_put(&e, "", 1), 0);
    assert_non_null(strstr(e.out, "\"kind\":\"summary\",\"value\":12,\"count\":3,\"quantiles\":"
                                  "[{\"q\":0.5,\"value\":null},{\"q\":0.90000000000000002,"
                                  "\"value\":null}],\"labels\":{\"k\":\"v\"}"));
    mars_encoder_fini(&e);
    mars_batch_release(b);
}

/* One event with parsed fields {"level":"info","code":7}, a file and a host, encoded under
 * `fields` / `except_fields`. */
static void check_select(const char *const *names, size_t n, bool except, const char *want)
{
    struct mars_batch *b = mars_batch_create(1);
    struct mars_event *ev = mars_batch_push(b);
    struct mars_fbuild fb;
    size_t at;
    const char *json = "{\"level\":\"info\",\"code\":7}";
    ev->msg = (struct mars_slice){"the line", 8};
    ev->ts_ns = 1700000000123456789;
    ev->file = "/var/log/a.log";
    ev->host = "node-1";
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    assert_int_equal(mars_json_parse(json, strlen(json), 64, &fb, 0, &at), MARS_JSON_OK);
    assert_int_equal(mars_fields_merge(b, ev, &fb, NULL), 0);
    mars_fbuild_fini(&fb);
    struct mars_strlist list = {(char **)(uintptr_t)names, n}, none = {NULL, 0};
    struct mars_field_select sel;
    assert_int_equal(mars_field_select_init(&sel, except ? &none : &list, except ? &list : &none),
                     0);
    struct mars_encoder e = {.select = &sel};
    assert_int_equal(mars_encode_json_event(&e, ev), 0);
    assert_int_equal(e.out_len, strlen(want));
    assert_memory_equal(e.out, want, e.out_len);
    mars_encoder_fini(&e);
    mars_batch_release(b);
}

static void test_field_select(void **state)
{
    (void)state;
    static const char *const all[] = {"nothing"};
    check_select(all, 0, false,
                 "{\"timestamp\":\"2023-11-14T22:13:20.123456789Z\",\"message\":\"the line\","
                 "\"file\":\"/var/log/a.log\",\"host\":\"node-1\",\"level\":\"info\","
                 "\"code\":7}");
    static const char *const only[] = {"code", "message"};
    check_select(only, 2, false, "{\"message\":\"the line\",\"code\":7}");
    static const char *const only_ts[] = {"timestamp", "level"};
    check_select(only_ts, 2, false,
                 "{\"timestamp\":\"2023-11-14T22:13:20.123456789Z\",\"level\":\"info\"}");
    static const char *const except[] = {"timestamp", "file", "host", "code"};
    check_select(except, 4, true, "{\"message\":\"the line\",\"level\":\"info\"}");
    static const char *const none_left[] = {"zzz"};
    check_select(none_left, 1, false, "{}");
    /* both lists set: refused */
    struct mars_strlist a = {(char **)(uintptr_t)only, 2};
    struct mars_field_select sel;
    assert_int_equal(mars_field_select_init(&sel, &a, &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference), cmocka_unit_test(test_appends),
        cmocka_unit_test(test_message_utf8_flag), cmocka_unit_test(test_timestamp_digits),
        cmocka_unit_test(test_summary_event),     cmocka_unit_test(test_field_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
