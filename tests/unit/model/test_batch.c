/* Unit tests of batches: refcounts, chunk references, clones, acks, compaction, arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/batch.h"

static int acks, delivered_acks;
static void on_ack(struct mars_batch *b, bool delivered)
{
    acks++;
    delivered_acks += delivered;
    assert_int_equal(b->ack.a, 42);
}

static struct mars_batch *make(struct mars_chunk_pool *p, uint32_t n)
{
    struct mars_batch *b = mars_batch_create(2);
    struct mars_chunk *c = mars_chunk_get(p, 0);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(mars_batch_hold_chunk(b, c), 0);
    assert_int_equal(mars_batch_hold_chunk(b, c), 0); /* same chunk again: one reference */
    mars_chunk_unref(c);
    for (uint32_t i = 0; i < n; i++) {
        struct mars_event *e = mars_batch_push(b); /* grows past the initial 2 */
        assert_non_null(e);
        memcpy(c->data + i, "x", 1);
        e->msg = (struct mars_slice){(char *)c->data + i, 1};
        b->bytes += 1;
    }
    b->ack = (struct mars_batch_ack){.fn = on_ack, .a = 42};
    return b;
}

static void test_ack_after_last_reference(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 1 << 20);
    acks = delivered_acks = 0;
    struct mars_batch *b = make(&p, 5);
    assert_int_equal(b->nchunks, 1);
    mars_batch_ref(b);
    mars_batch_ref(b);
    mars_batch_release(b);
    mars_batch_release(b);
    assert_int_equal(acks, 0);
    mars_batch_release(b);
    assert_int_equal(acks, 1);
    assert_int_equal(delivered_acks, 1);
    assert_int_equal(p.live, 0); /* the chunk went back */
    mars_chunk_pool_fini(&p);
    (void)state;
}

static void test_clone_keeps_parent_and_abandon(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 1 << 20);
    acks = delivered_acks = 0;
    struct mars_batch *orig = make(&p, 6);
    struct mars_batch *shared = mars_batch_ref(orig); /* a sink's reference */
    struct mars_batch *mine = orig;                   /* a transform's */
    assert_int_equal(mars_batch_exclusive(&mine), 0);
    assert_ptr_not_equal(mine, orig);
    assert_int_equal(mine->n, 6);
    bool keep[6] = {true, false, true, false, false, true};
    mars_batch_compact(mine, keep);
    assert_int_equal(mine->n, 3);
    assert_int_equal(mine->bytes, 3);
    assert_int_equal(shared->n, 6); /* the sink's view is untouched */
    mars_batch_release(shared);
    assert_int_equal(acks, 0); /* the clone still holds the original */
    assert_int_equal(p.live, 1);
    mars_batch_abandon(mine);
    assert_int_equal(acks, 1);
    assert_int_equal(delivered_acks, 0); /* abandoned on some path */
    assert_int_equal(p.live, 0);
    mars_chunk_pool_fini(&p);
    (void)state;
}

static void test_exclusive_unshared_is_noop(void **state)
{
    struct mars_batch *b = mars_batch_create(1), *same = b;
    assert_int_equal(mars_batch_exclusive(&b), 0);
    assert_ptr_equal(b, same);
    char *s = mars_arena_strndup(&b->arena, "hello", 5);
    assert_string_equal(s, "hello");
    void *big = mars_arena_alloc(&b->arena, 100000); /* a dedicated block */
    assert_non_null(big);
    memset(big, 1, 100000);
    assert_string_equal(s, "hello");
    mars_batch_release(b);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_after_last_reference),
        cmocka_unit_test(test_clone_keeps_parent_and_abandon),
        cmocka_unit_test(test_exclusive_unshared_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
