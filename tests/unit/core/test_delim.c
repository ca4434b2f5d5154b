/*
 * test_delim.c - core/delim.c: mars_delim_index() must list exactly the offsets a byte-by-
 * byte walk finds, in order, for buffers of every length from 0 to 300 with random
 * delimiter densities (none, sparse, every byte), at every starting alignment; with a small
 * cap it must stop with *done covering exactly the listed matches and resume from there;
 * and it must never read past the end (the buffer ends at an inaccessible page).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/delim.h"

/* Walks s[0, n) through repeated calls with room for cap offsets, checking each call's
 * contract, and returns the offsets found (relative to s) in all[]. */
static size_t walk(const unsigned char *s, size_t n, unsigned char d, size_t cap, uint32_t *all)
{
    uint32_t out[512];
    size_t pos = 0, total = 0;
    assert_true(cap <= 512);
    do {
        size_t done = 12345;
        size_t k = mars_delim_index(s + pos, n - pos, d, out, cap, &done);
        assert_true(k <= cap);
        assert_true(done <= n - pos);
        assert_true(done == n - pos || k > 0); /* stopping early means out[] filled */
        for (size_t j = 0; j < k; j++) {
            assert_true(out[j] < done);
            assert_true(j == 0 || out[j] > out[j - 1]);
            all[total++] = (uint32_t)pos + out[j];
        }
        pos += done;
    } while (pos < n);
    return total;
}

static void check(const unsigned char *s, size_t n, unsigned char d, size_t cap)
{
    static uint32_t want[4096], got[4096];
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == d)
            want[nw++] = (uint32_t)i;
    size_t ng = walk(s, n, d, cap, got);
    if (ng != nw || memcmp(want, got, nw * sizeof(*want)) != 0) {
        fprintf(stderr, "n=%zu cap=%zu: want %zu matches, got %zu\n", n, cap, nw, ng);
        fail();
    }
}

static void test_random(void **state)
{
    (void)state;
    static unsigned char buf[4096 + 64];
    srand(7);
    for (int density = 0; density <= 4; density++) {
        for (size_t n = 0; n <= 300; n++) {
            for (size_t align = 0; align < 8; align++) {
                unsigned char *s = buf + align * 5;
                for (size_t i = 0; i < n; i++) {
                    int r = rand();
                    /* 0: none; 1: 1/100; 2: 1/8; 3: 1/2; 4: every byte */
                    bool hit = density == 4   ? true
                               : density == 3 ? r % 2 == 0
                               : density == 2 ? r % 8 == 0
                               : density == 1 ? r % 100 == 0
                                              : false;
                    s[i] = hit ? '\n' : (unsigned char)(r % 256 == '\n' ? 'x' : r % 256);
                }
                check(s, n, '\n', 512);
                check(s, n, '\n', MARS_DELIM_MIN_CAP);
                check(s, n, '\n', MARS_DELIM_MIN_CAP + 7);
            }
        }
    }
}

/* Large buffers with every byte a delimiter: each call stops at its cap and resumes. */
static void test_full_cap(void **state)
{
    (void)state;
    static unsigned char s[4000];
    memset(s, '|', sizeof(s));
    s[1000] = 'a';
    check(s, sizeof(s), '|', MARS_DELIM_MIN_CAP);
    check(s, sizeof(s), '|', 100);
    check(s, sizeof(s), 'a', MARS_DELIM_MIN_CAP);
    check(s, sizeof(s), 0, MARS_DELIM_MIN_CAP);
}

/* The buffer's end is the end of a readable page: a read past it would fault. */
static void test_page_end(void **state)
{
    (void)state;
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *m =
        mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    for (size_t n = 0; n <= 200; n++) {
        unsigned char *s = m + pg - n;
        for (size_t i = 0; i < n; i++)
            s[i] = i % 7 == 0 ? '\n' : 'z';
        check(s, n, '\n', 512);
    }
    munmap(m, (size_t)pg * 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_full_cap),
        cmocka_unit_test(test_page_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
