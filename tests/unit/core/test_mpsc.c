/*
 * test_mpsc.c - core/mpsc: FIFO order on one thread, then NPROD producer threads pushing
 * PER_PROD nodes each while one consumer takes them: all arrive exactly once and each
 * producer's nodes arrive in the order it pushed them. Last, the documented pairing with
 * mars_ev_async: producers push then send, the loop drains from the async callback.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/ev.h"
#include "core/mpsc.h"

#define NPROD       4
#define PER_PROD    100000
#define DEADLINE_NS (30LL * 1000000000LL)

struct item {
    struct mars_mpsc_node node;
    int producer;
    int seq;
};

struct producer {
    pthread_t tid;
    struct mars_mpsc *q;
    struct mars_ev_async *wake; /* NULL: consumer polls */
    struct item *items;
    int id;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;

    for (int i = 0; i < PER_PROD; i++) {
        p->items[i].producer = p->id;
        p->items[i].seq = i;
        mars_mpsc_push(p->q, &p->items[i].node);
        if (p->wake != NULL && (i % 64 == 63 || i == PER_PROD - 1))
            mars_ev_async_send(p->wake);
    }
    return NULL;
}

/* Consumer-side bookkeeping: next expected seq per producer. */
struct tally {
    int next[NPROD];
    long total;
    long out_of_order;
};

static void take(struct tally *t, struct mars_mpsc_node *n)
{
    struct item *it = MARS_CONTAINER_OF(n, struct item, node);

    if (it->producer < 0 || it->producer >= NPROD || it->seq != t->next[it->producer])
        t->out_of_order++;
    else
        t->next[it->producer]++;
    t->total++;
}

static void start_producers(struct producer *p, struct mars_mpsc *q, struct mars_ev_async *wake)
{
    for (int i = 0; i < NPROD; i++) {
        p[i].q = q;
        p[i].wake = wake;
        p[i].id = i;
        p[i].items = calloc(PER_PROD, sizeof(struct item));
        assert_non_null(p[i].items);
    }
    for (int i = 0; i < NPROD; i++)
        assert_int_equal(pthread_create(&p[i].tid, NULL, producer_main, &p[i]), 0);
}

static void join_producers(struct producer *p)
{
    for (int i = 0; i < NPROD; i++) {
        pthread_join(p[i].tid, NULL);
        free(p[i].items);
    }
}

static void test_single_thread_fifo(void **state)
{
    struct mars_mpsc q;
    struct item it[10];

    (void)state;
    mars_mpsc_init(&q);
    assert_true(mars_mpsc_empty(&q));
    assert_null(mars_mpsc_pop(&q));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            it[i].seq = i;
            mars_mpsc_push(&q, &it[i].node);
        }
        assert_false(mars_mpsc_empty(&q));
        for (int i = 0; i < 10; i++) {
            struct mars_mpsc_node *n = mars_mpsc_pop(&q);

            assert_non_null(n);
            assert_int_equal(MARS_CONTAINER_OF(n, struct item, node)->seq, i);
        }
        assert_null(mars_mpsc_pop(&q));
        assert_true(mars_mpsc_empty(&q));
    }
    /* Interleaved push and pop, the queue never fully drained in between. */
    mars_mpsc_push(&q, &it[0].node);
    mars_mpsc_push(&q, &it[1].node);
    assert_ptr_equal(mars_mpsc_pop(&q), &it[0].node);
    mars_mpsc_push(&q, &it[2].node);
    assert_ptr_equal(mars_mpsc_pop(&q), &it[1].node);
    assert_ptr_equal(mars_mpsc_pop(&q), &it[2].node);
    assert_null(mars_mpsc_pop(&q));
    assert_true(mars_mpsc_empty(&q));
}

static void test_producers_threads(void **state)
{
    struct mars_mpsc q;
    struct producer p[NPROD];
    struct tally t = {{0}, 0, 0};
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;

    (void)state;
    memset(p, 0, sizeof(p));
    mars_mpsc_init(&q);
    start_producers(p, &q, NULL);
    while (t.total < (long)NPROD * PER_PROD && mars_ev_clock_ns() < deadline) {
        struct mars_mpsc_node *n = mars_mpsc_pop(&q);

        if (n == NULL)
            sched_yield(); /* empty, or a push half done */
        else
            take(&t, n);
    }
    join_producers(p);
    assert_int_equal(t.total, (long)NPROD * PER_PROD);
    assert_int_equal(t.out_of_order, 0);
    for (int i = 0; i < NPROD; i++)
        assert_int_equal(t.next[i], PER_PROD);
    assert_null(mars_mpsc_pop(&q));
    assert_true(mars_mpsc_empty(&q));
}

struct consumer {
    struct mars_ev_async wake;
    struct mars_mpsc q;
    struct tally t;
    long drains;
};

static void drain_cb(struct mars_ev_async *a)
{
    struct consumer *c = MARS_CONTAINER_OF(a, struct consumer, wake);
    struct mars_mpsc_node *n;

    c->drains++;
    while ((n = mars_mpsc_pop(&c->q)) != NULL)
        take(&c->t, n);
}

static void test_with_async_wakeup(void **state)
{
    struct mars_ev_loop *loop = mars_ev_loop_create(mars_ev_backend_select("auto", NULL, 0));
    struct consumer *c = calloc(1, sizeof(*c));
    struct producer p[NPROD];
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;

    (void)state;
    assert_non_null(loop);
    assert_non_null(c);
    memset(p, 0, sizeof(p));
    mars_mpsc_init(&c->q);
    assert_int_equal(mars_ev_async_init(loop, &c->wake, drain_cb, NULL), 0);
    start_producers(p, &c->q, &c->wake);
    /* Only the async callback pops: every node must arrive through a wakeup. */
    while (c->t.total < (long)NPROD * PER_PROD && mars_ev_clock_ns() < deadline)
        assert_true(mars_ev_run_once(loop, 100 * 1000000LL) >= 0);
    join_producers(p);
    assert_int_equal(c->t.total, (long)NPROD * PER_PROD);
    assert_int_equal(c->t.out_of_order, 0);
    assert_true(c->drains > 0);
    mars_ev_async_fini(&c->wake);
    assert_int_equal(mars_ev_pending(loop), 0);
    mars_ev_loop_destroy(loop);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_fifo),
        cmocka_unit_test(test_producers_threads),
        cmocka_unit_test(test_with_async_wakeup),
    };

    return cmocka_run_group_tests_name("mpsc", tests, NULL, NULL);
}
