/*
 * grow.c - the slow path of mars_grow() (see grow.h): the new capacity, checked for
 * overflow, and one realloc.
 *
 * The array's pointer is read and written through memcpy, so one function serves arrays of
 * every element type without storing through a `void **` that does not point to a `void *`.
 *
 * Thread: any; the caller owns the array.
 */
#include "core/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GROW_MIN_BYTES 64 /* first allocation: small arrays skip the 1, 2, 4... steps */

int mars_grow_realloc(void *array, size_t *cap, size_t need, size_t size)
{
    size_t max = size ? SIZE_MAX / size : SIZE_MAX;
    void *old, *p;

    if (need > max)
        return -ENOMEM;
    size_t ncap = *cap <= max / 2 ? *cap * 2 : max;
    if (ncap < need)
        ncap = need;
    if (size && ncap < GROW_MIN_BYTES / size)
        ncap = GROW_MIN_BYTES / size;
    memcpy(&old, array, sizeof(old));
    p = realloc(old, ncap * size);
    if (!p)
        return -ENOMEM; /* old is still in *array */
    memcpy(array, &p, sizeof(p));
    *cap = ncap;
    // cppcheck-suppress memleak ; p is not lost: the memcpy above stored it in *array
    return 0;
}
