/* Unit tests of the reload hand-over store (engine/keep.c): put and take by key, a second
 * put under a key destroys the first, take hands ownership over, and drop_all destroys
 * exactly what nobody took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/instance.h"

static int destroyed[4];

static void destroy(void *obj)
{
    destroyed[*(int *)obj]++;
}

static void test_put_take(void **state)
{
    (void)state;
    int a = 0, b = 1;
    assert_int_equal(mars_keep_put("eureka:a", &a, destroy), 0);
    assert_int_equal(mars_keep_put("eureka:b", &b, destroy), 0);
    assert_null(mars_keep_take("eureka:c"));
    assert_ptr_equal(mars_keep_take("eureka:a"), &a);
    assert_null(mars_keep_take("eureka:a")); /* taken once */
    mars_keep_drop_all();
    assert_int_equal(destroyed[0], 0); /* taken: the taker's */
    assert_int_equal(destroyed[1], 1); /* left: destroyed */
    assert_null(mars_keep_take("eureka:b"));
}

static void test_replace(void **state)
{
    (void)state;
    int c = 2, d = 3;
    assert_int_equal(mars_keep_put("k", &c, destroy), 0);
    assert_int_equal(mars_keep_put("k", &d, destroy), 0);
    assert_int_equal(destroyed[2], 1);
    assert_ptr_equal(mars_keep_take("k"), &d);
    assert_int_equal(mars_keep_put("n", &d, NULL), 0); /* no destroy: just forgotten */
    mars_keep_drop_all();
    assert_int_equal(destroyed[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_take),
        cmocka_unit_test(test_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
