/*
 * arena.h - a bump allocator for bytes derived while a batch moves through the pipeline
 * (rewritten fields, parsed values, encoded timestamps). Everything is freed at once with
 * the batch. The first allocation of an arena mallocs; a batch that only passes lines
 * through never touches it.
 *
 * Thread: owned by whoever owns the batch (one worker).
 */
#ifndef MARS_ARENA_H
#define MARS_ARENA_H

#include <stddef.h>

struct mars_arena_block;

struct mars_arena {
    struct mars_arena_block *head;
    size_t used; /* bytes used in head */
    size_t total;
};

static inline void mars_arena_init(struct mars_arena *a)
{
    a->head = NULL;
    a->used = 0;
    a->total = 0;
}
/* Returns arena-owned memory aligned for any type, or NULL when malloc fails. */
void *mars_arena_alloc(struct mars_arena *a, size_t n);
/* Copies n bytes and a NUL; returns arena-owned memory or NULL. */
char *mars_arena_strndup(struct mars_arena *a, const char *s, size_t n);
/* Frees every block (into this thread's block cache). The arena is empty and reusable
 * afterwards. */
void mars_arena_fini(struct mars_arena *a);
/* Frees this thread's cached blocks; threads call it before they exit. */
void mars_arena_cache_drain(void);

#endif
