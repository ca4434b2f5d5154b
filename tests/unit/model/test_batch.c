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

/* A batch of a few lines that is the only holder of a chunk gives the chunk back and keeps
 * its lines (copied, newline included, still contiguous); a shared one, a dense one and a
 * clone are left alone; the ack still waits for the batch. */
static void test_unpin_sparse(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 1 << 20);
    acks = delivered_acks = 0;
    struct mars_batch *b = mars_batch_create(2);
    struct mars_chunk *c = mars_chunk_get(&p, 0);
    assert_int_equal(mars_batch_hold_chunk(b, c), 0);
    mars_chunk_unref(c);
    memcpy(c->data, "ab\ncd\n", 6);
    for (int i = 0; i < 2; i++) {
        struct mars_event *e = mars_batch_push(b);
        e->msg = (struct mars_slice){(char *)c->data + 3 * i, 2};
        e->flags = MARS_EVF_NL_FOLLOWS;
        e->host = "node-1";
        b->bytes += 2;
    }
    b->ack = (struct mars_batch_ack){.fn = on_ack, .a = 42};

    struct mars_batch *other = mars_batch_ref(b); /* shared: left alone */
    assert_int_equal(mars_batch_unpin(b), 0);
    mars_batch_release(other);
    assert_int_equal(p.live, 1);

    assert_int_equal(mars_batch_unpin(b), 1);
    assert_int_equal(p.live, 0); /* the chunk went back */
    assert_int_equal(b->nchunks, 0);
    assert_memory_equal(b->ev[0].msg.ptr, "ab\n", 3);
    assert_memory_equal(b->ev[1].msg.ptr, "cd\n", 3);
    assert_ptr_equal(b->ev[0].msg.ptr + 3, b->ev[1].msg.ptr);
    assert_string_equal(b->ev[0].host, "node-1");
    assert_int_equal(mars_batch_unpin(b), 0); /* nothing left to give back */
    assert_int_equal(acks, 0);
    mars_batch_release(b);
    assert_int_equal(acks, 1);
    assert_int_equal(delivered_acks, 1);

    /* dense: the lines fill most of the chunk */
    struct mars_batch *d = make(&p, 4000);
    assert_int_equal(mars_batch_unpin(d), 0);
    /* a clone keeps its parent's chunks: not unpinned */
    struct mars_batch *keep = mars_batch_ref(d), *cl = d;
    assert_int_equal(mars_batch_exclusive(&cl), 0);
    mars_batch_release(keep);
    assert_int_equal(mars_batch_unpin(cl), 0);
    mars_batch_release(cl);
    assert_int_equal(p.live, 0);
    mars_chunk_pool_fini(&p);
    (void)state;
}

/* Held waiters run once, at release, and only when a chunk came back meanwhile. */
static int waited;
static void on_memory(void *arg)
{
    (void)arg;
    waited++;
}

static void test_pool_hold_waiters(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 4096);
    waited = 0;
    struct mars_chunk *c = mars_chunk_get(&p, 0);
    assert_null(mars_chunk_get(&p, 0));
    assert_int_equal(mars_chunk_pool_on_free(&p, on_memory, NULL), 0);
    mars_chunk_pool_hold(&p);
    mars_chunk_pool_release(&p);
    assert_int_equal(waited, 0); /* nothing came back */
    mars_chunk_pool_hold(&p);
    mars_chunk_unref(c);
    assert_int_equal(waited, 0);
    mars_chunk_pool_release(&p);
    assert_int_equal(waited, 1);
    mars_chunk_pool_fini(&p);
    (void)state;
}

/* The stand-in carries the source's ack away: releasing it acknowledges, while the batch
 * keeps its events and chunk for whoever holds it, with no ack of its own. */
static void test_split_ack(void **state)
{
    struct mars_chunk_pool p;
    mars_chunk_pool_init(&p, 4096, 1 << 20);
    acks = delivered_acks = 0;
    struct mars_batch *b = make(&p, 3);
    mars_batch_ref(b);
    assert_null(mars_batch_split_ack(b)); /* shared: not allowed */
    mars_batch_release(b);
    struct mars_batch *t = mars_batch_split_ack(b);
    assert_non_null(t);
    assert_int_equal(t->n, 3);
    assert_int_equal(t->bytes, 3);
    assert_null(b->ack.fn);
    mars_batch_release(t);
    assert_int_equal(acks, 1);
    assert_int_equal(delivered_acks, 1);
    assert_int_equal(p.live, 1); /* b still holds its chunk */
    assert_memory_equal(b->ev[2].msg.ptr, "x", 1);
    mars_batch_release(b);
    assert_int_equal(acks, 1); /* no second ack */
    assert_int_equal(p.live, 0);
    mars_chunk_pool_fini(&p);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_after_last_reference),
        cmocka_unit_test(test_clone_keeps_parent_and_abandon),
        cmocka_unit_test(test_exclusive_unshared_is_noop),
        cmocka_unit_test(test_unpin_sparse),
        cmocka_unit_test(test_split_ack),
        cmocka_unit_test(test_pool_hold_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
