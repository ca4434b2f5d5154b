/*
 * multiline_internal.h - state of a `multiline` instance, shared by multiline.c (options,
 * instances, rules) and multiline_groups.c (groups, joining, the timeout timer).
 *
 * Thread: one instance per worker.
 */
#ifndef MARS_MULTILINE_INTERNAL_H
#define MARS_MULTILINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ev.h"
#include "component.h"

struct mars_regex;

struct mars_ml_piece {
    const char *ptr;
    uint32_t len;
    uint8_t flags; /* the line's MARS_EVF_* */
};

/* Lines of one source/file/stream waiting to be completed. */
struct mars_ml_group {
    bool used;
    uint64_t hash;
    char *key;
    uint32_t key_len;
    struct mars_event first;      /* the first line: time, fields, flags */
    struct mars_ml_piece *pieces; /* lines so far (reused) */
    uint32_t n;
    size_t cap;
    uint64_t bytes;           /* joined length so far */
    struct mars_batch **held; /* references to the batches of the lines */
    uint32_t nheld;
    size_t held_cap;
    int64_t last_ns; /* loop time of the last line */
};

struct mars_multiline {
    struct mars_transform *t;
    struct mars_regex *start, *cont;
    struct mars_path **group_by;
    size_t ngroup_by;
    int64_t timeout;
    uint32_t max_lines, max_groups;
    uint64_t max_bytes;
    struct mars_ml_group *groups; /* open addressing, mask + 1 slots */
    uint32_t mask, used, pending;
    struct mars_ev_op timer;
    bool timer_armed, flushed;
    char *scratch;
    size_t scap;
    char key[4096];
};

int mars_multiline_groups_init(struct mars_multiline *m);
/* Releases every held batch and frees the groups. */
void mars_multiline_groups_fini(struct mars_multiline *m);
/* Does ev continue the event before it (multiline.c)? */
bool mars_multiline_joins(struct mars_multiline *m, const struct mars_event *ev);
/* Takes b: lines join their groups; completed events go out in one batch. */
void mars_multiline_batch(struct mars_multiline *m, struct mars_batch *b);
/* Emits every pending event now. */
void mars_multiline_flush_all(struct mars_multiline *m);

#endif
