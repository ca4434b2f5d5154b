/*
 * test_json_escape.c - core/json_escape.c: the escapes with and without each flag (control
 * bytes, quote, backslash, DEL, UTF-8 passed through, invalid UTF-8 replaced and counted or
 * passed), the word-at-a-time path giving the same bytes as the byte loop at every offset,
 * a bounded dst cut only between whole characters and escapes, and the vector path (long
 * strings into a dst that takes everything) giving the same bytes as the byte path (a
 * bounded dst) on random strings dense in escapes and UTF-8 sequences, and on text without
 * control bytes (whole blocks through the vector code). Run once per vector level
 * (unit/core/test_json_escape@avx2, @none: the test hook simd).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json_escape.h"

#define ALL (MARS_JSON_ESC_SHORT | MARS_JSON_ESC_DEL | MARS_JSON_ESC_UTF8)

/* Escapes the NUL-terminated s with room for all of it; returns a static string. */
static const char *esc(const char *s, unsigned flags, uint64_t *invalid)
{
    static char out[1024];
    size_t n = strlen(s);
    struct mars_json_esc r = mars_json_escape(out, sizeof(out) - 1, s, n, flags);
    assert_int_equal(r.in, n);
    out[r.out] = '\0';
    if (invalid)
        *invalid = r.invalid;
    return out;
}

static void test_always_escaped(void **state)
{
    (void)state;
    for (unsigned flags = 0; flags <= ALL; flags++) {
        assert_string_equal(esc("a\"b\\c", flags, NULL), "a\\\"b\\\\c");
        assert_string_equal(esc("\x01\x1f x", flags, NULL), "\\u0001\\u001f x");
        assert_string_equal(esc("plain text, no escapes at all", flags, NULL),
                            "plain text, no escapes at all");
    }
    char zero[4] = {'a', 0, 'b'};
    char out[32];
    struct mars_json_esc r = mars_json_escape(out, sizeof(out), zero, 3, 0);
    assert_int_equal(r.out, 8);
    assert_memory_equal(out, "a\\u0000b", 8);
}

static void test_flags(void **state)
{
    (void)state;
    assert_string_equal(esc("\n\r\t", 0, NULL), "\\u000a\\u000d\\u0009");
    assert_string_equal(esc("\n\r\t", MARS_JSON_ESC_SHORT, NULL), "\\n\\r\\t");
    assert_string_equal(esc("\x7f", 0, NULL), "\x7f");
    assert_string_equal(esc("\x7f", MARS_JSON_ESC_DEL, NULL), "\\u007f");
    assert_string_equal(esc("0123456\x7f", MARS_JSON_ESC_DEL, NULL), "0123456\\u007f");
}

static void test_utf8(void **state)
{
    (void)state;
    uint64_t invalid;
    const char *valid = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok";
    assert_string_equal(esc(valid, ALL, &invalid), valid);
    assert_int_equal(invalid, 0);
    /* a lone continuation, a cut sequence, an overlong, a surrogate, above U+10FFFF */
    assert_string_equal(esc("\x80|\xc3|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80", ALL, &invalid),
                        "\\ufffd|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
                        "\\ufffd\\ufffd\\ufffd\\ufffd");
    assert_int_equal(invalid, 11);
    /* without MARS_JSON_ESC_UTF8 every byte >= 0x80 goes out as it is */
    assert_string_equal(esc("\xff\xc3\xa9\x80", 0, &invalid), "\xff\xc3\xa9\x80");
    assert_int_equal(invalid, 0);
}

/* Byte by byte, the plain definition the word loop must agree with. */
static size_t reference(const unsigned char *s, size_t n, unsigned flags, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(out + o, "\\%c", c);
        else if ((flags & MARS_JSON_ESC_SHORT) && (c == '\n' || c == '\r' || c == '\t'))
            o += (size_t)sprintf(out + o, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        else if (c < 0x20 || (c == 0x7f && (flags & MARS_JSON_ESC_DEL)))
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        else if (c >= 0x80 && (flags & MARS_JSON_ESC_UTF8))
            o += (size_t)sprintf(out + o, "\\ufffd"); /* alone among ASCII: invalid */
        else
            out[o++] = (char)c;
    }
    return o;
}

static void test_words_match_bytes(void **state)
{
    (void)state;
    static const unsigned char specials[] = {'"',  '\\', '\n', '\t', 0x01, 0x1f, 0x20,
                                             0x7f, 0x7e, '!',  0x80, 0xff, 0xc3};
    unsigned char buf[40];
    char want[40 * 6], got[40 * 6];
    for (unsigned flags = 0; flags <= ALL; flags++) {
        for (size_t k = 0; k < sizeof(specials); k++) {
            for (size_t at = 0; at < 24; at++) {
                memset(buf, 'x', sizeof(buf));
                buf[at] = specials[k];
                size_t wl = reference(buf, sizeof(buf), flags, want);
                struct mars_json_esc r =
                    mars_json_escape(got, sizeof(got), (const char *)buf, sizeof(buf), flags);
                assert_int_equal(r.in, sizeof(buf));
                assert_int_equal(r.out, wl);
                assert_memory_equal(got, want, wl);
            }
        }
    }
}

/* Two bytes of interest in one word: a byte that needs a look may make its higher
 * neighbours look flagged too (a borrow), and the word loop copies the bytes below the
 * lowest flagged one at once: 0x20, '#' and ']' are one above a flagged value, where a
 * borrow lands. Every pair of positions in the first 16 bytes, every pair of values. */
static void test_words_pairs(void **state)
{
    (void)state;
    static const unsigned char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x20, '#',
                                             ']', 0x7f, 0x80, 0xc3, 0xa9, 'a'};
    const size_t ns = sizeof(specials);
    unsigned char buf[24];
    char want[24 * 6], got[24 * 6];
    for (unsigned flags = 0; flags <= ALL; flags++)
        for (size_t a = 0; a < ns; a++)
            for (size_t b = 0; b < ns; b++)
                for (size_t i = 0; i < 16; i++)
                    for (size_t j = i + 1; j < 16; j++) {
                        memset(buf, 'x', sizeof(buf));
                        buf[i] = specials[a];
                        buf[j] = specials[b];
                        if (specials[a] == 0xc3 && (specials[b] & 0xc0) == 0x80 && j == i + 1)
                            continue; /* a valid sequence: the reference knows none */
                        size_t wl = reference(buf, sizeof(buf), flags, want);
                        struct mars_json_esc r = mars_json_escape(
                            got, sizeof(got), (const char *)buf, sizeof(buf), flags);
                        assert_int_equal(r.out, wl);
                        assert_memory_equal(got, want, wl);
                    }
}

static void test_bounded(void **state)
{
    (void)state;
    const char *s = "ab\"\xc3\xa9\x01xxxxxxxxxx";
    size_t n = strlen(s);
    char full[128], out[128];
    struct mars_json_esc all = mars_json_escape(full, sizeof(full), s, n, ALL);
    /* Every cap gives a prefix of the full output that ends on a unit boundary. */
    static const size_t ends[] = {0, 1, 2, 4, 6, 12}; /* output offsets after each unit */
    for (size_t cap = 0; cap <= all.out; cap++) {
        struct mars_json_esc r = mars_json_escape(out, cap, s, n, ALL);
        assert_true(r.out <= cap);
        assert_memory_equal(out, full, r.out);
        size_t fit = 0;
        for (size_t k = 0; k < sizeof(ends) / sizeof(ends[0]) && ends[k] <= cap; k++)
            fit = ends[k];
        if (cap < 12)
            assert_int_equal(r.out, fit);
        else
            assert_int_equal(r.out, cap); /* the x run is one byte per unit */
        assert_int_equal(r.in == n, cap >= all.out);
    }
}

/* Pieces random strings are made of: escapes of every kind, valid sequences of 2-4 bytes
 * (which land across the vector path's 32- and 8-byte boundaries), invalid bytes, plain
 * ASCII (weighted: most bytes of a log line). */
static const char *const pieces[] = {
    "\"",
    "\\",
    "\n",
    "\t",
    "\x01",
    "\x1f",
    "\x7f",
    "\x80",
    "\xff",
    "\xc3",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\xed\xa0\x80",
    " ",
    "a",
    "xyz",
    "key",
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "{\"k\":\"v\"}",
};

/* Random strings of pieces, escaped by the vector path (room for everything) and by the
 * byte path (one byte short of the worst case), must agree. */
static void vector_matches_bytes(const char *const *from, size_t nfrom, int rounds)
{
    static const unsigned flag_sets[] = {MARS_JSON_ESC_SHORT | MARS_JSON_ESC_UTF8,
                                         MARS_JSON_ESC_SHORT, 0, ALL};
    char src[400], got[400 * MARS_JSON_ESC_MAX], want[400 * MARS_JSON_ESC_MAX];
    unsigned seed = 12345;
    for (int round = 0; round < rounds; round++) {
        size_t n = 0, len = (size_t)(rand_r(&seed) % 360);
        while (n < len) {
            const char *p = from[rand_r(&seed) % nfrom];
            size_t k = strlen(p);
            if (n + k > sizeof(src))
                break;
            memcpy(src + n, p, k);
            n += k;
        }
        for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
            unsigned flags = flag_sets[f];
            /* one byte short of the worst case: the bounded (byte) path, which still takes
             * everything unless every byte is a six-byte escape */
            struct mars_json_esc w =
                mars_json_escape(want, n ? n * MARS_JSON_ESC_MAX - 1 : 0, src, n, flags);
            struct mars_json_esc g = mars_json_escape(got, n * MARS_JSON_ESC_MAX, src, n, flags);
            assert_int_equal(g.in, n);
            if (w.in != n)
                continue;
            assert_int_equal(g.out, w.out);
            assert_int_equal(g.invalid, w.invalid);
            assert_memory_equal(got, want, w.out);
        }
    }
}

static void test_vector_matches_bytes(void **state)
{
    (void)state;
    vector_matches_bytes(pieces, sizeof(pieces) / sizeof(pieces[0]), 20000);
}

/* Text as a JSON log line is: no control bytes, so the vector paths take whole blocks
 * (AVX-512: one expand per 32 bytes, up to 32 backslashes in one) rather than the byte
 * path, and the tails of every length. */
static const char *const text_pieces[] = {
    "\"",
    "\\",
    "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
    "\\\\\\\\",
    " ",
    "a",
    "xyz",
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "{\"k\":\"v\"}",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\x7f",
    "\xff",
};

static void test_vector_text(void **state)
{
    (void)state;
    vector_matches_bytes(text_pieces, sizeof(text_pieces) / sizeof(text_pieces[0]), 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_escaped),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_words_match_bytes),
        cmocka_unit_test(test_words_pairs),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_vector_matches_bytes),
        cmocka_unit_test(test_vector_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
