/*
 * test_grow.c - core/grow.c: mars_grow() from an empty array, keeping what is there,
 * doubling (so n pushes reallocate O(log n) times), leaving a big enough array alone, and
 * refusing a size that overflows without touching the array.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/grow.h"

static void test_push(void **state)
{
    (void)state;
    uint64_t *v = NULL;
    size_t cap = 0, n = 0, grows = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        size_t before = cap;
        assert_int_equal(mars_grow(&v, &cap, n + 1, sizeof(*v)), 0);
        assert_true(cap >= n + 1);
        grows += cap != before;
        v[n++] = i * 3;
    }
    assert_true(grows <= 14); /* 8, 16, ... 16384 */
    for (uint64_t i = 0; i < 10000; i++)
        assert_int_equal(v[i], i * 3);
    free(v);
}

static void test_sizes(void **state)
{
    (void)state;
    char *p = NULL;
    size_t cap = 0;
    assert_int_equal(mars_grow(&p, &cap, 1, 1), 0);
    assert_int_equal(cap, 64); /* the first allocation is not a byte at a time */
    assert_int_equal(mars_grow(&p, &cap, 64, 1), 0);
    assert_int_equal(cap, 64); /* room already: unchanged */
    assert_int_equal(mars_grow(&p, &cap, 65, 1), 0);
    assert_int_equal(cap, 128); /* doubled */
    assert_int_equal(mars_grow(&p, &cap, 1000, 1), 0);
    assert_int_equal(cap, 1000); /* a jump past double takes what is needed */
    free(p);
}

static void test_overflow(void **state)
{
    (void)state;
    uint64_t *v = NULL;
    size_t cap = 0;
    assert_int_equal(mars_grow(&v, &cap, 4, sizeof(*v)), 0);
    uint64_t *was = v;
    size_t was_cap = cap;
    assert_int_equal(mars_grow(&v, &cap, SIZE_MAX / 4, sizeof(*v)), -ENOMEM);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, was_cap);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
