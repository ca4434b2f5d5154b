/*
 * cfg_merge.c - one configuration tree from several files (-c a.yaml -c b.yaml, a conf.d
 * directory): see mars_cfg_merge() in cfg.h for the rules.
 *
 * How it works: the merged tree is made of new MAP nodes, in the merged doc's arena, whose
 * keys and values point at the nodes of the files' own trees, so every later diagnostic
 * still names the file, line and column it came from. The files' docs become the merged
 * doc's parts and live as long as it. Two mappings under the same key are merged pairwise
 * (a third file merges into the result), which keeps the code small; configuration maps are
 * small, so lookups are linear.
 *
 * Thread: any; touches only its own docs and diag.
 */
#include "core/cfg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg_internal.h"

struct merge {
    struct mars_cfg_doc *out;
    const char *const *flat; /* root keys whose entries are taken whole */
    struct mars_diag *diag;
    unsigned errors;
};

static bool is_flat(const struct merge *m, const char *key)
{
    for (size_t i = 0; m->flat && m->flat[i]; i++)
        if (strcmp(m->flat[i], key) == 0)
            return true;
    return false;
}

static ptrdiff_t find(const struct mars_cfg_node *map, const struct mars_cfg_node *key)
{
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == key->len && memcmp(map->keys[i]->str, key->str, key->len) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static struct mars_cfg_node *merge_maps(struct merge *m, const struct mars_cfg_node *a,
                                        const struct mars_cfg_node *b, bool flat, const char *path);

/* Entry (key, val) of a later file meets entry e of the merged map `to`. */
static void merge_entry(struct merge *m, struct mars_cfg_node *to, size_t e,
                        const struct mars_cfg_node *key, struct mars_cfg_node *val, bool flat,
                        const char *path)
{
    const struct mars_cfg_node *first = to->keys[e], *old = to->vals[e];
    char sub[256];

    if (flat) {
        mars_diag_add(m->diag, key->file, key->line, key->col,
                      "duplicate '%s' in '%s': first defined at %s:%d:%d", key->str, path,
                      first->file, first->line, first->col);
        m->errors++;
        return;
    }
    if (val->kind == MARS_CFG_NULL)
        return;
    if (old->kind == MARS_CFG_NULL) {
        to->vals[e] = val;
        return;
    }
    snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key->str);
    if (old->kind == MARS_CFG_MAP && val->kind == MARS_CFG_MAP) {
        struct mars_cfg_node *merged = merge_maps(m, old, val, !*path && is_flat(m, key->str), sub);
        if (merged)
            to->vals[e] = merged;
        return;
    }
    mars_diag_add(m->diag, key->file, key->line, key->col, "'%s' is set twice: first at %s:%d:%d",
                  sub, first->file, first->line, first->col);
    m->errors++;
}

/* A new mapping with a's entries, then b's (merged into a's where the keys are equal). */
static struct mars_cfg_node *merge_maps(struct merge *m, const struct mars_cfg_node *a,
                                        const struct mars_cfg_node *b, bool flat, const char *path)
{
    size_t cap = a->n + b->n;
    struct mars_cfg_node *to = mars_cfg_doc_alloc(m->out, sizeof(*to));
    struct mars_cfg_node **keys = mars_cfg_doc_alloc(m->out, (cap ? cap : 1) * sizeof(*keys));
    struct mars_cfg_node **vals = mars_cfg_doc_alloc(m->out, (cap ? cap : 1) * sizeof(*vals));

    if (!to || !keys || !vals) {
        mars_diag_add(m->diag, a->file, 0, 0, "out of memory while loading the configuration");
        m->errors++;
        return NULL;
    }
    *to = *a; /* a's kind and position */
    to->keys = keys;
    to->vals = vals;
    memcpy(keys, a->keys, a->n * sizeof(*keys));
    memcpy(vals, a->vals, a->n * sizeof(*vals));
    for (size_t i = 0; i < b->n; i++) {
        ptrdiff_t e = find(to, b->keys[i]);
        if (e >= 0) {
            merge_entry(m, to, (size_t)e, b->keys[i], b->vals[i], flat, path);
            continue;
        }
        to->keys[to->n] = b->keys[i];
        to->vals[to->n++] = b->vals[i];
    }
    return to;
}

struct mars_cfg_doc *mars_cfg_merge(const char *name, struct mars_cfg_doc **docs, size_t n,
                                    const char *const *flat_keys, struct mars_diag *diag)
{
    if (n == 1)
        return docs[0];
    struct merge m = {.out = mars_cfg_doc_create(name), .flat = flat_keys, .diag = diag};
    if (!m.out || !(m.out->parts = calloc(n ? n : 1, sizeof(*m.out->parts)))) {
        mars_diag_add(diag, name, 0, 0, "out of memory while loading the configuration");
        mars_cfg_doc_destroy(m.out);
        for (size_t i = 0; i < n; i++)
            mars_cfg_doc_destroy(docs[i]);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct mars_cfg_node *root = docs[i]->root;
        m.out->parts[m.out->nparts++] = docs[i];
        if (!root || root->kind == MARS_CFG_NULL)
            continue;
        if (root->kind != MARS_CFG_MAP) {
            mars_diag_add(diag, root->file, root->line, root->col,
                          "the configuration must be a mapping (data_dir, sources, sinks, ...)");
            m.errors++;
        } else if (!m.out->root) {
            m.out->root = root;
        } else {
            m.out->root = merge_maps(&m, m.out->root, root, false, "");
            if (!m.out->root)
                break;
        }
    }
    if (m.errors) {
        mars_cfg_doc_destroy(m.out);
        return NULL;
    }
    return m.out;
}
