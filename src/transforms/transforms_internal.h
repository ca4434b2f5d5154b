/*
 * transforms_internal.h - helpers shared by the transforms: keep-flags and passing on the
 * kept events (filter, sample, throttle, parse), and compiling a field path that the check
 * callback already validated. Defined in transforms_common.c.
 */
#ifndef MARS_TRANSFORMS_INTERNAL_H
#define MARS_TRANSFORMS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component.h"

/* A per-instance array of n flags, grown (core/grow.h) when a bigger batch comes (reused,
 * so steady state allocates nothing). NULL on -ENOMEM. */
bool *mars_transform_flags(bool **buf, size_t *cap, uint32_t n);
/* Passes on the `kept` events of b with keep[i] set and counts the others as discarded on
 * purpose. Takes b: unchanged when all are kept, released when none is, compacted when
 * exclusive, narrowed with mars_batch_select() when shared. */
void mars_transform_emit_kept(struct mars_transform *t, struct mars_batch *b, const bool *keep,
                              uint32_t kept);
/* Compiles the field path `text`, which the check callback validated (mars_check_path), for
 * init. Returns an owned path (free with mars_path_destroy()), NULL only when out of memory. */
struct mars_path *mars_transform_path(const char *text);

#endif
