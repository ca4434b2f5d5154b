/*
 * grow.h - the one growing array: make room for `need` elements, doubling the capacity so
 * that n pushes cost O(n) copies in all.
 *
 *     if (mars_grow(&v->items, &v->cap, v->n + 1, sizeof(*v->items)))
 *         return -ENOMEM;
 *     v->items[v->n++] = x;
 *
 * The check that there is room already is inline (hot paths push one event at a time);
 * only a growth calls out.
 */
#ifndef MARS_GROW_H
#define MARS_GROW_H

#include <stddef.h>

/* The growth behind mars_grow(); call that instead. */
int mars_grow_realloc(void *array, size_t *cap, size_t need, size_t size);

/* Makes *array (a pointer to the array's pointer, e.g. &v->items; the array may be NULL
 * with *cap 0) hold at least `need` elements of `size` bytes: when *cap is smaller, it is
 * reallocated to the larger of need and twice *cap (64 bytes at least) and *cap updated.
 * Elements already there are kept; new ones are not initialised. Returns 0, or -ENOMEM
 * (out of memory, or need * size overflows) with *array and *cap unchanged. */
static inline int mars_grow(void *array, size_t *cap, size_t need, size_t size)
{
    return need <= *cap ? 0 : mars_grow_realloc(array, cap, need, size);
}

#endif
