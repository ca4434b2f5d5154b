/*
 * chunk.c - the per-worker chunk pool.
 *
 * Regular chunks (chunk_size bytes) come from one region mapped at init: max_bytes /
 * chunk_size slots, each a whole number of pages (header and data), handed out in order the
 * first time and recycled through the free list after, so a steady pipeline allocates
 * nothing and pages of slots never used are never touched (the mapping is MAP_NORESERVE).
 * Slots are page-aligned so that pinning one for a fixed read (see chunk.h) never pins a
 * neighbour's page, and the region is MADV_DONTFORK: a child process (health probes)
 * neither copies pinned pages nor inherits them. If the mapping fails, regular chunks are
 * malloc'd as large ones are, and the free list is capped at max_free. Large chunks (for a
 * line longer than a chunk) are allocated and freed one by one but count against the same
 * byte bound. When a get fails at
 * the bound, sources register a waiter; the next return runs every waiter once, outside any
 * list walk (the list is swapped out first, so a waiter may register again).
 *
 * Thread: the owning worker only.
 */
#include "core/chunk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/grow.h"

/* Under ASan the region is poisoned where no live chunk's bytes are (slot padding, data of
 * free chunks), so overflows and use after the last unref are caught as with malloc. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static void region_map(struct mars_chunk_pool *p)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t stride = sizeof(struct mars_chunk) + p->chunk_size;
    void *m;

    if (page <= 0)
        page = 4096;
    stride = (stride + (size_t)page - 1) / (size_t)page * (size_t)page;
    if (p->max_free == 0 || stride > SIZE_MAX / p->max_free)
        return;
    m = mmap(NULL, stride * p->max_free, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return;
    (void)madvise(m, stride * p->max_free, MADV_DONTFORK);
    POISON(m, stride * p->max_free);
    p->region = m;
    p->region_stride = stride;
    p->region_count = p->max_free;
}

static bool in_region(const struct mars_chunk_pool *p, const struct mars_chunk *c)
{
    const unsigned char *q = (const unsigned char *)c;

    return p->region != NULL && q >= p->region &&
           q < p->region + p->region_stride * p->region_count;
}

void mars_chunk_pool_init(struct mars_chunk_pool *p, size_t chunk_size, size_t max_bytes)
{
    *p = (struct mars_chunk_pool){
        .chunk_size = chunk_size,
        .max_bytes = max_bytes < chunk_size ? chunk_size : max_bytes,
    };
    p->max_free = p->max_bytes / chunk_size;
    region_map(p);
}

void mars_chunk_pool_fini(struct mars_chunk_pool *p)
{
    while (p->free_list) {
        struct mars_chunk *c = p->free_list;
        p->free_list = c->next_free;
        if (!in_region(p, c))
            free(c);
    }
    if (p->region != NULL) {
        UNPOISON(p->region, p->region_stride * p->region_count);
        munmap(p->region, p->region_stride * p->region_count);
    }
    p->region = NULL;
    p->region_used = p->region_count = 0;
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
    } else if (cap == p->chunk_size && p->region_used < p->region_count) {
        c = (struct mars_chunk *)(void *)(p->region + p->region_stride * p->region_used++);
        UNPOISON(c, sizeof(*c));
        c->cap = (uint32_t)cap;
        c->pool = p;
    } else {
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = (uint32_t)cap;
        c->pool = p;
    }
    if (in_region(p, c))
        UNPOISON(c->data, cap);
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

    if (n == 0 || p->hold_waiters > 0)
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
    if (in_region(p, c))
        POISON(c->data, c->cap);
    if (in_region(p, c) || (c->cap == p->chunk_size && p->nfree < p->max_free)) {
        c->next_free = p->free_list;
        p->free_list = c;
        p->nfree++;
    } else {
        free(c);
    }
    if (p->hold_waiters > 0)
        p->returned_held = true;
    run_waiters(p);
}

void mars_chunk_pool_hold(struct mars_chunk_pool *p)
{
    if (p->hold_waiters++ == 0)
        p->returned_held = false;
}

void mars_chunk_pool_release(struct mars_chunk_pool *p)
{
    if (--p->hold_waiters == 0 && p->returned_held)
        run_waiters(p);
}

int mars_chunk_pool_on_free(struct mars_chunk_pool *p, mars_chunk_waiter_fn fn, void *arg)
{
    for (size_t i = 0; i < p->nwaiters; i++)
        if (p->waiters[i].fn == fn && p->waiters[i].arg == arg)
            return 0;
    if (mars_grow(&p->waiters, &p->waiters_cap, p->nwaiters + 1, sizeof(*p->waiters)))
        return -ENOMEM;
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
