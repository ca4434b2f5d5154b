/*
 * arena.c - block-chained bump allocator. Blocks grow geometrically from 4 KiB; a request
 * larger than half a block gets a block of its own so small allocations keep packing.
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

#define ARENA_MIN_BLOCK 4096u

void *mars_arena_alloc(struct mars_arena *a, size_t n)
{
    size_t align = alignof(max_align_t);
    size_t off = (a->used + align - 1) & ~(align - 1);

    if (n == 0)
        n = 1;
    if (!a->head || off + n > a->head->cap) {
        size_t cap = a->head ? a->head->cap * 2 : ARENA_MIN_BLOCK;
        if (cap > (1u << 20))
            cap = 1u << 20;
        if (n > cap / 2)
            cap = n;
        struct mars_arena_block *b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
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
        free(b);
        b = next;
    }
    mars_arena_init(a);
}
