/*
 * test_utf8.c - core/utf8.c: mars_utf8_invalid() (with its vector fast path on CPUs that
 * have one) must count exactly what a plain walk with mars_utf8_seq() counts, on every
 * two-byte window and every three- and four-byte window of the interesting byte ranges
 * placed across a 32-byte block boundary, and on random mixes of valid and invalid
 * sequences of every length from 0 to 300 bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/utf8.h"

static size_t reference(const unsigned char *s, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : mars_utf8_seq(s + i, n - i);
        if (len == 0) {
            bad++;
            len = 1;
        }
        i += len;
    }
    return bad;
}

static void check(const unsigned char *s, size_t n)
{
    size_t want = reference(s, n), got = mars_utf8_invalid(s, n);
    if (want != got) {
        char hex[200] = "";
        for (size_t i = 0; i < n && i < 60; i++)
            snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x", s[i]);
        fail_msg("n=%zu: want %zu invalid, got %zu: %s", n, want, got, hex);
    }
}

/* bytes placed at `at` inside 96 bytes of ASCII */
static void window(const unsigned char *b, size_t k, size_t at, size_t n)
{
    unsigned char buf[96];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf + at, b, k);
    check(buf, n);
}

static void test_two_byte_windows(void **state)
{
    (void)state;
    static const size_t ats[] = {0, 30, 31, 32, 62, 63, 94};
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t k = 0; k < sizeof(ats) / sizeof(ats[0]); k++) {
                unsigned char w[2] = {(unsigned char)a, (unsigned char)b};
                window(w, 2, ats[k], 96);
                window(w, 2, ats[k] > 30 ? 30 : ats[k], 64); /* ends right after or near */
            }
}

static void test_long_windows(void **state)
{
    (void)state;
    static const unsigned char seconds[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                            0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
    static const size_t ats[] = {29, 30, 31, 32, 61, 93};
    const size_t ns = sizeof(seconds);
    for (unsigned a = 0xc0; a < 0x100; a++)
        for (size_t b = 0; b < ns; b++)
            for (size_t c = 0; c < ns; c++)
                for (size_t d = 0; d < ns; d++)
                    for (size_t k = 0; k < sizeof(ats) / sizeof(ats[0]); k++) {
                        unsigned char w[4] = {(unsigned char)a, seconds[b], seconds[c], seconds[d]};
                        size_t at = ats[k] + 4 > 96 ? 92 : ats[k];
                        window(w, 4, at, 96);
                    }
}

static void test_random_mixes(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a",    "abcdefgh", "\xc3\xa9",     "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
        "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80",
        "\xff", "\xc3",     "\xe2\x82",     "\xf0\x9f\x98"};
    unsigned char buf[300];
    uint32_t seed = 7;
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(round % 301), i = 0;
        seed = seed * 1103515245u + 12345u;
        int bad_rate = (int)(seed >> 28); /* some buffers all valid, some full of junk */
        while (i < n) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8;
            size_t pick = (int)(r % 16) < bad_rate ? 6 + r % 10 : r % 6;
            const char *p = pieces[pick];
            for (size_t k = 0; p[k] && i < n; k++)
                buf[i++] = (unsigned char)p[k];
        }
        check(buf, n);
    }
}

/* Buffers of several regions: valid text with a few bad bytes, long runs of high bytes
 * (binary data) that push a region's end far, and region ends inside sequences. */
static void test_large_buffers(void **state)
{
    (void)state;
    enum { N = 20000 };
    unsigned char *buf = malloc(N);
    uint32_t seed = 99;
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(round * 67) % N, i = 0;
        while (i < n) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8;
            if (r % 1000 == 0) { /* a run of binary */
                for (size_t k = 0; k < 3000 && i < n; k++) {
                    seed = seed * 1103515245u + 12345u;
                    buf[i++] = (unsigned char)(0x80 | (seed >> 24));
                }
            } else if (r % 97 == 0) {
                buf[i++] = (unsigned char)(0x80 + r % 0x80); /* a stray byte */
            } else if (r % 5 == 0) {
                static const char e[] = "\xe2\x82\xac";
                for (size_t k = 0; k < 3 && i < n; k++)
                    buf[i++] = (unsigned char)e[k];
            } else {
                buf[i++] = (unsigned char)('a' + r % 26);
            }
        }
        check(buf, n);
    }
    free(buf);
}

/* A valid text cut anywhere: the unfinished bytes are exactly those of the sequence the
 * cut falls in, and what comes before them is valid. Bytes that cannot begin a finished
 * sequence (ASCII, a whole sequence, a stray continuation) are never held. */
static void test_unfinished(void **state)
{
    const unsigned char text[] = "a\xc3\xa9"
                                 "b\xe2\x82\xac\xf0\x9f\x99\x82"
                                 "z";
    const size_t starts[] = {0, 1, 3, 4, 7, 11, 12}; /* where each character begins, and the end */
    size_t n = sizeof(text) - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        size_t begin = 0;
        for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
            if (starts[i] <= cut)
                begin = starts[i];
        size_t want = cut == begin ? 0 : cut - begin; /* inside a character */
        assert_int_equal(mars_utf8_unfinished(text, cut), want);
        assert_int_equal(mars_utf8_invalid(text, cut - want), 0);
    }
    assert_int_equal(mars_utf8_unfinished((const unsigned char *)"\x80\x80", 2), 0);
    assert_int_equal(mars_utf8_unfinished((const unsigned char *)"a\x80\x80\x80", 4), 0);
    assert_int_equal(mars_utf8_unfinished((const unsigned char *)"\xc3\xa9", 2), 0);
    assert_int_equal(mars_utf8_unfinished((const unsigned char *)"x\xf0", 2), 1);
    assert_int_equal(mars_utf8_unfinished((const unsigned char *)"", 0), 0);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_byte_windows), cmocka_unit_test(test_long_windows),
        cmocka_unit_test(test_random_mixes),     cmocka_unit_test(test_large_buffers),
        cmocka_unit_test(test_unfinished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
