/* Unit tests of the chunk pool: bound, reuse, large chunks, waiters, the region. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/chunk.h"

static void test_bound_and_reuse(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 3 * 4096);
    struct mars_chunk *a = mars_chunk_get(&p, 0), *b = mars_chunk_get(&p, 100);
    struct mars_chunk *c = mars_chunk_get(&p, 4096);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(a->cap, 4096);
    assert_int_equal(a->refs, 1);
    assert_null(mars_chunk_get(&p, 0)); /* at the bound */
    assert_int_equal(p.exhausted, 1);
    mars_chunk_ref(b);
    mars_chunk_unref(b);
    assert_null(mars_chunk_get(&p, 0)); /* b still referenced once */
    mars_chunk_unref(b);
    struct mars_chunk *d = mars_chunk_get(&p, 0);
    assert_ptr_equal(d, b); /* recycled from the free list */
    mars_chunk_unref(a);
    mars_chunk_unref(c);
    mars_chunk_unref(d);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.live_bytes, 0);
    mars_chunk_pool_fini(&p);
    (void)state;
}

static void test_large_chunk(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 8192);
    struct mars_chunk *big = mars_chunk_get(&p, 100000);
    assert_non_null(big); /* first chunk always granted, even above the bound */
    assert_true(big->cap >= 100000);
    assert_null(mars_chunk_get(&p, 0));
    mars_chunk_unref(big);
    assert_int_equal(p.nfree, 0); /* large chunks are not pooled */
    assert_non_null(big = mars_chunk_get(&p, 0));
    mars_chunk_unref(big);
    mars_chunk_pool_fini(&p);
    (void)state;
}

static int calls;
static void waiter(void *arg)
{
    calls += *(int *)arg;
}

static void test_waiters_run_once(void **state)
{
    struct mars_chunk_pool p;
    int one = 1, ten = 10;
    mars_chunk_pool_init(&p, 4096, 4096);
    struct mars_chunk *a = mars_chunk_get(&p, 0);
    assert_null(mars_chunk_get(&p, 0));
    assert_int_equal(mars_chunk_pool_on_free(&p, waiter, &one), 0);
    assert_int_equal(mars_chunk_pool_on_free(&p, waiter, &one), 0); /* deduplicated */
    assert_int_equal(mars_chunk_pool_on_free(&p, waiter, &ten), 0);
    mars_chunk_pool_cancel_wait(&p, waiter, &ten);
    calls = 0;
    mars_chunk_unref(a);
    assert_int_equal(calls, 1);
    a = mars_chunk_get(&p, 0);
    mars_chunk_unref(a);
    assert_int_equal(calls, 1); /* waiters were consumed */
    mars_chunk_pool_fini(&p);
    (void)state;
}

/* Regular chunks come from the region, one page-aligned slot each, data inside its slot;
 * large chunks do not. (The worker registers exactly this layout with its loop.) */
static void test_region_layout(void **state)
{
    struct mars_chunk_pool p;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct mars_chunk *c[4], *big;
    mars_chunk_pool_init(&p, 10000, 4 * 10000);
    assert_non_null(p.region);
    assert_int_equal(p.region_count, 4);
    assert_int_equal(p.region_stride % page, 0);
    assert_true(p.region_stride >= sizeof(struct mars_chunk) + 10000);
    for (int i = 0; i < 4; i++) {
        c[i] = mars_chunk_get(&p, 0);
        assert_non_null(c[i]);
        unsigned char *slot = p.region + (size_t)i * p.region_stride;
        assert_ptr_equal(c[i], slot); /* handed out in order the first time */
        assert_true(c[i]->data + c[i]->cap <= slot + p.region_stride);
        memset(c[i]->data, 'a' + i, c[i]->cap); /* the whole data area is writable */
    }
    assert_int_equal(p.region_used, 4);
    mars_chunk_unref(c[2]);
    big = mars_chunk_get(&p, 20000); /* too big for a slot, and for the bound: refused */
    assert_null(big);
    assert_ptr_equal(mars_chunk_get(&p, 0), c[2]); /* a freed slot comes back */
    for (int i = 0; i < 4; i++)
        mars_chunk_unref(c[i]);
    assert_int_equal(p.nfree, 4);
    big = mars_chunk_get(&p, 20000);
    assert_non_null(big);
    assert_true((unsigned char *)big < p.region ||
                (unsigned char *)big >= p.region + p.region_count * p.region_stride);
    mars_chunk_unref(big);
    mars_chunk_pool_fini(&p);
    assert_null(p.region);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_and_reuse),
        cmocka_unit_test(test_large_chunk),
        cmocka_unit_test(test_waiters_run_once),
        cmocka_unit_test(test_region_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
