/*
 * chunk.c - the per-worker chunk pool.
 *
 * Regular chunks (chunk_size bytes) are recycled through a free list capped at max_free, so a
 * steady pipeline allocates nothing; large chunks (for a line longer than a chunk) are
 * allocated and freed one by one but count against the same byte bound. When a get fails at
 * the bound, sources register a waiter; the next return runs every waiter once, outside any
 * list walk (the list is swapped out first, so a waiter may register again).
 *
 * Thread: the owning worker only.
 */
#include "core/chunk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void mars_chunk_pool_init(struct mars_chunk_pool *p, size_t chunk_size, size_t max_bytes)
{
    *p = (struct mars_chunk_pool){
        .chunk_size = chunk_size,
        .max_bytes = max_bytes < chunk_size ? chunk_size : max_bytes,
    };
    p->max_free = p->max_bytes / chunk_size;
}

void mars_chunk_pool_fini(struct mars_chunk_pool *p)
{
    while (p->free_list) {
        struct mars_chunk *c = p->free_list;
        p->free_list = c->next_free;
        free(c);
    }
    if (p->live)
        fprintf(stderr, "mars: chunk pool destroyed with %zu chunks still referenced\n", p->live);
    free(p->waiters);
    p->waiters = NULL;
    p->nwaiters = p->waiters_cap = 0;
}

struct mars_chunk *mars_chunk_get(struct mars_chunk_pool *p, size_t min_cap)
{
    size_t cap = min_cap <= p->chunk_size ? p->chunk_size : min_cap;
    struct mars_chunk *c;

    if (cap > UINT32_MAX)
        return NULL;
    /* A first chunk is always granted, so a single oversized line cannot deadlock a worker
     * whose bound is smaller than the line. */
    if (p->live_bytes + cap > p->max_bytes && p->live > 0) {
        p->exhausted++;
        return NULL;
    }
    if (cap == p->chunk_size && p->free_list) {
        c = p->free_list;
        p->free_list = c->next_free;
        p->nfree--;
    } else {
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = (uint32_t)cap;
        c->pool = p;
    }
    c->refs = 1;
    c->len = 0;
    c->next_free = NULL;
    p->live++;
    p->live_bytes += cap;
    return c;
}

static void run_waiters(struct mars_chunk_pool *p)
{
    struct mars_chunk_waiter *w = p->waiters;
    size_t n = p->nwaiters;

    if (n == 0)
        return;
    p->waiters = NULL;
    p->nwaiters = p->waiters_cap = 0;
    for (size_t i = 0; i < n; i++)
        w[i].fn(w[i].arg);
    free(w);
}

void mars_chunk_unref(struct mars_chunk *c)
{
    struct mars_chunk_pool *p = c->pool;

    if (--c->refs > 0)
        return;
    p->live--;
    p->live_bytes -= c->cap;
    if (c->cap == p->chunk_size && p->nfree < p->max_free) {
        c->next_free = p->free_list;
        p->free_list = c;
        p->nfree++;
    } else {
        free(c);
    }
    run_waiters(p);
}

int mars_chunk_pool_on_free(struct mars_chunk_pool *p, mars_chunk_waiter_fn fn, void *arg)
{
    for (size_t i = 0; i < p->nwaiters; i++)
        if (p->waiters[i].fn == fn && p->waiters[i].arg == arg)
            return 0;
    if (p->nwaiters == p->waiters_cap) {
        size_t cap = p->waiters_cap ? p->waiters_cap * 2 : 4;
        struct mars_chunk_waiter *w = realloc(p->waiters, cap * sizeof(*w));
        if (!w)
            return -ENOMEM;
        p->waiters = w;
        p->waiters_cap = cap;
    }
    p->waiters[p->nwaiters++] = (struct mars_chunk_waiter){fn, arg};
    return 0;
}

void mars_chunk_pool_cancel_wait(struct mars_chunk_pool *p, mars_chunk_waiter_fn fn, void *arg)
{
    for (size_t i = 0; i < p->nwaiters; i++) {
        if (p->waiters[i].fn == fn && p->waiters[i].arg == arg) {
            p->waiters[i] = p->waiters[--p->nwaiters];
            return;
        }
    }
}
