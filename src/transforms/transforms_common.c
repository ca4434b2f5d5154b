/*
 * transforms_common.c - helpers shared by the transforms; see transforms_internal.h.
 *
 * Thread: the calling transform's worker.
 */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "transforms_internal.h"

bool *mars_transform_flags(bool **buf, size_t *cap, uint32_t n)
{
    return mars_grow(buf, cap, n, sizeof(**buf)) ? NULL : *buf;
}

void mars_transform_emit_kept(struct mars_transform *t, struct mars_batch *b, const bool *keep,
                              uint32_t kept)
{
    struct mars_stats *st = mars_transform_stats(t);
    mars_stat_add(&st->discarded_intentional, b->n - kept);
    if (kept == b->n) {
        mars_transform_emit(t, b);
    } else if (kept == 0) {
        mars_batch_release(b);
    } else if (b->refs == 1) {
        mars_batch_compact(b, keep);
        mars_transform_emit(t, b);
    } else {
        struct mars_batch *c = mars_batch_select(b, keep, 0);
        if (!c) {
            mars_stat_add(&st->errors[MARS_ERR_MEMORY], 1);
            mars_batch_abandon(b); /* not delivered: a source that can replays it */
            return;
        }
        mars_batch_release(b);
        mars_transform_emit(t, c);
    }
}

struct mars_path *mars_transform_path(const char *text)
{
    size_t at;
    const char *why;
    return mars_path_compile(text, strlen(text), &at, &why);
}
