/*
 * modify_internal.h - the compiled form of a `modify` instance, shared by modify.c
 * (options, checks, instances) and modify_ops.c (the per-event operations).
 *
 * Thread: one instance per worker.
 */
#ifndef MARS_MODIFY_INTERNAL_H
#define MARS_MODIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component.h"

enum mars_modify_type { MARS_COERCE_STRING, MARS_COERCE_INT, MARS_COERCE_FLOAT, MARS_COERCE_BOOL };
extern const char *const mars_modify_coerce_names[];

struct mars_template;

struct mars_modify_move {
    struct mars_path *from, *to;
};

struct mars_modify_set {
    struct mars_path *path;
    struct mars_template *tpl;
    const char *literal; /* the value when the template is plain text (config-owned) */
    uint32_t lit_len;
};

struct mars_modify_coerce {
    struct mars_path *path;
    int type; /* enum mars_modify_type */
};

struct mars_modify_trunc {
    struct mars_path *path;
    uint32_t max;
    const char *suffix; /* config-owned */
    uint32_t slen;
};

struct mars_modify {
    struct mars_transform *t;
    struct mars_modify_move *rename, *copy;
    size_t nrename, ncopy;
    struct mars_modify_set *set;
    size_t nset;
    struct mars_modify_coerce *coerce;
    size_t ncoerce;
    struct mars_path **lower, **upper, **remove;
    size_t nlower, nupper, nremove;
    struct mars_modify_trunc *trunc;
    size_t ntrunc;
    char *scratch; /* decoded values (mars_value_text) */
    size_t scap;
    char render[65536];
};

/* Index of a coerce type name, or -1. */
int mars_modify_coerce_type(const char *name);
/* True when one path is a prefix of the other (a move into itself). */
bool mars_modify_paths_overlap(const char *a, const char *b);
/* Applies every operation to ev (b exclusive). */
void mars_modify_event(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev);
void mars_modify_free(struct mars_modify *md);

#endif
