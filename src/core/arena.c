/*
 * arena.c - block-chained bump allocator. Blocks grow geometrically from 4 KiB; a request
 * larger than half a block gets a block of its own so small allocations keep packing.
 *
 * Block cache: every batch has an arena, and parsing fills it with about the same blocks
 * batch after batch. Freed blocks whose size is a power of two up to 1 MiB go to a small
 * per-thread cache (a few per size, at most ARENA_CACHE_BYTES in all) instead of back to
 * malloc, which would hand large blocks to the kernel and fault them in again for the
 * next batch. Per thread, because a batch lives and dies on one worker.
 */
#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mars_arena_block {
    struct mars_arena_block *next;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_MIN_BLOCK       4096u
#define ARENA_MAX_BLOCK       (1u << 20)
#define ARENA_CLASSES         9 /* 4 KiB .. 1 MiB */
#define ARENA_CACHE_PER_CLASS 8
#define ARENA_CACHE_BYTES     (16u << 20)

struct arena_cache {
    struct mars_arena_block *free[ARENA_CLASSES];
    unsigned count[ARENA_CLASSES];
    size_t bytes;
};

static _Thread_local struct arena_cache cache;

/* Size class of a cacheable capacity, or -1. */
static int size_class(size_t cap)
{
    for (int c = 0; c < ARENA_CLASSES; c++)
        if (cap == (size_t)ARENA_MIN_BLOCK << c)
            return c;
    return -1;
}

static struct mars_arena_block *block_get(size_t cap)
{
    int c = size_class(cap);
    if (c >= 0 && cache.free[c]) {
        struct mars_arena_block *b = cache.free[c];
        cache.free[c] = b->next;
        cache.count[c]--;
        cache.bytes -= cap;
        return b;
    }
    struct mars_arena_block *b = malloc(sizeof(*b) + cap);
    if (b)
        b->cap = cap;
    return b;
}

static void block_put(struct mars_arena_block *b)
{
    int c = size_class(b->cap);
    if (c < 0 || cache.count[c] >= ARENA_CACHE_PER_CLASS ||
        cache.bytes + b->cap > ARENA_CACHE_BYTES) {
        free(b);
        return;
    }
    b->next = cache.free[c];
    cache.free[c] = b;
    cache.count[c]++;
    cache.bytes += b->cap;
}

void mars_arena_cache_drain(void)
{
    for (int c = 0; c < ARENA_CLASSES; c++) {
        while (cache.free[c]) {
            struct mars_arena_block *b = cache.free[c];
            cache.free[c] = b->next;
            free(b);
        }
        cache.count[c] = 0;
    }
    cache.bytes = 0;
}

void *mars_arena_alloc(struct mars_arena *a, size_t n)
{
    size_t align = alignof(max_align_t);
    size_t off = (a->used + align - 1) & ~(align - 1);

    if (n == 0)
        n = 1;
    if (!a->head || off + n > a->head->cap) {
        size_t cap = a->head ? a->head->cap * 2 : ARENA_MIN_BLOCK;
        if (cap > ARENA_MAX_BLOCK)
            cap = ARENA_MAX_BLOCK;
        if (n > cap / 2)
            cap = n;
        struct mars_arena_block *b = block_get(cap);
        if (!b)
            return NULL;
        if (n == cap && a->head) {
            /* dedicated block: keep the current head for further small allocations */
            b->next = a->head->next;
            a->head->next = b;
            a->total += n;
            return b->data;
        }
        b->next = a->head;
        a->head = b;
        off = 0;
    }
    a->used = off + n;
    a->total += n;
    return a->head->data + off;
}

char *mars_arena_strndup(struct mars_arena *a, const char *s, size_t n)
{
    char *p = mars_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void mars_arena_fini(struct mars_arena *a)
{
    struct mars_arena_block *b = a->head;
    while (b) {
        struct mars_arena_block *next = b->next;
        block_put(b);
        b = next;
    }
    mars_arena_init(a);
}
