/*
 * mpsc.c - Vyukov's intrusive MPSC queue (contract in mpsc.h).
 *
 * How it works: the queue is a singly linked list from `tail` (oldest, consumer side) to
 * `head` (newest, producer side). A producer links its node in two steps: it swaps itself
 * into `head` (this orders it against other producers), then stores itself into the old
 * head's `next`. Between the steps the list is cut at that point, which is why pop may
 * return NULL while a push is in progress. The stub node keeps the list non-empty, so
 * producers never see a NULL head: when the consumer would take the last real node, it
 * first pushes the stub back behind it.
 *
 * Memory order: the release store of `prev->next` publishes the node's contents to the
 * consumer's acquire load of that `next`; the swap on `head` is acq_rel so producers see
 * each other's nodes in one total order.
 *
 * Threads: push on any thread; pop and empty on the consumer's thread only.
 */
#include <stddef.h>

#include "core/mpsc.h"

void mars_mpsc_init(struct mars_mpsc *q)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
}

void mars_mpsc_push(struct mars_mpsc *q, struct mars_mpsc_node *n)
{
    struct mars_mpsc_node *prev;

    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    /* From here until the next line the list is cut between prev and n. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

struct mars_mpsc_node *mars_mpsc_pop(struct mars_mpsc *q)
{
    struct mars_mpsc_node *tail = q->tail;
    struct mars_mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);

    if (tail == &q->stub) {
        if (next == NULL)
            return NULL; /* empty, or the first push is half done */
        /* Step over the stub. */
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    /* `tail` is the last linked node. If it is not the newest pushed, a producer is between
     * its two steps: wait for it (by returning NULL) rather than taking a node whose
     * successor is about to be linked. */
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL;
    /* Put the stub behind the last node so the list never becomes empty, then take it. */
    mars_mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL; /* another producer got in between; its link is still pending */
}

bool mars_mpsc_empty(struct mars_mpsc *q)
{
    /* Fully drained means the stub is both the oldest and the newest node. */
    return q->tail == &q->stub && atomic_load_explicit(&q->head, memory_order_acquire) == &q->stub;
}
