/*
 * cfg.h - the configuration tree: YAML parsed by libyaml into nodes that remember their
 * file, line and column, so every later error can point at the spot in the user's file.
 *
 * ${VAR} and ${VAR:-default} are expanded in scalar values while loading ("$$" is a literal
 * "$"); an unset variable without a default is an error at its position. YAML anchors and
 * aliases are rejected (a log agent config has no need for them, and they make positions
 * ambiguous). Duplicate keys in a mapping are errors.
 *
 * The whole tree is owned by its mars_cfg_doc; nodes are borrowed from it.
 */
#ifndef MARS_CFG_H
#define MARS_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"

enum mars_cfg_kind {
    MARS_CFG_NULL,   /* empty value or ~ / null */
    MARS_CFG_SCALAR, /* string as written (after interpolation) */
    MARS_CFG_MAP,
    MARS_CFG_SEQ,
};

struct mars_cfg_node {
    enum mars_cfg_kind kind;
    const char *file; /* borrowed from the doc */
    int line, col;    /* 1-based */
    /* SCALAR: NUL-terminated value; len excludes the NUL. */
    char *str;
    size_t len;
    bool quoted; /* scalar was written in quotes (so "true" is a string) */
    /* MAP: n key/value pairs (keys[i] are SCALAR nodes); SEQ: n items in vals. */
    size_t n;
    struct mars_cfg_node **keys;
    struct mars_cfg_node **vals;
};

struct mars_cfg_doc {
    char *file;                 /* owned copy of the name */
    struct mars_cfg_node *root; /* NULL for an empty document */
    /* private: node arena; for a merged doc, the docs its nodes come from */
    void *priv;
    struct mars_cfg_doc **parts;
    size_t nparts;
};

/* Parses a file. Returns an owned doc (free with mars_cfg_doc_destroy) or NULL with every
 * problem added to diag as FILE:LINE:COL. An empty file gives a doc with root NULL. */
struct mars_cfg_doc *mars_cfg_load_file(const char *path, struct mars_diag *diag);
/* Same for text in memory; name is used in messages. */
struct mars_cfg_doc *mars_cfg_load_string(const char *name, const char *text, size_t len,
                                          struct mars_diag *diag);
/* mars_cfg_load_file without ${VAR} expansion: values exactly as written (for files of other
 * programs, such as the old mars-agent's config that `mars convert-legacy` reads). */
struct mars_cfg_doc *mars_cfg_load_file_literal(const char *path, struct mars_diag *diag);
void mars_cfg_doc_destroy(struct mars_cfg_doc *doc);

/*
 * Merges several parsed files into one tree (cfg_merge.c), so a pipeline can be split over
 * files (-c a.yaml -c b.yaml, or a conf.d directory). Every root must be a mapping (or
 * empty). A key found in one root is taken as is; a key in several roots is merged:
 *   - a key listed in flat_keys ("sources", ...) gathers the entries of every file's mapping
 *     in file order, and an entry name found twice is an error at the second, naming the
 *     first's FILE:LINE:COL;
 *   - any other key whose values are all mappings merges the same way, recursively, down to
 *     scalars; a scalar (or a list, or a scalar against a mapping) set in two files is an
 *     error at the second, naming the first.
 * Nodes keep their own file, line and column. Takes ownership of docs[0..n) in every case;
 * returns an owned doc named `name` (free with mars_cfg_doc_destroy, which frees the parts),
 * or NULL with the problems in diag. With n == 1 returns docs[0] itself.
 */
struct mars_cfg_doc *mars_cfg_merge(const char *name, struct mars_cfg_doc **docs, size_t n,
                                    const char *const *flat_keys, struct mars_diag *diag);

/* Looks up a key in a MAP node; NULL when absent or when map is not a MAP. */
const struct mars_cfg_node *mars_cfg_get(const struct mars_cfg_node *map, const char *key);
/* Key node for a key in a MAP node (for positions of the key itself). */
const struct mars_cfg_node *mars_cfg_get_key(const struct mars_cfg_node *map, const char *key);

/*
 * Where a diagnostic about option `key` of the mapping `map` (a component's options, a
 * section) points: the option's value, or map itself when the key is absent (the option
 * took its default). With `sub`, for an option that is a mapping: the value of its entry
 * sub when that is a scalar, else the entry's key, else the option's value. NULL only when
 * map is NULL.
 */
const struct mars_cfg_node *mars_cfg_at(const struct mars_cfg_node *map, const char *key,
                                        const char *sub);
/* The same for item i of the list option key: that item when the list has it, else as
 * mars_cfg_at(map, key, NULL). */
const struct mars_cfg_node *mars_cfg_item_at(const struct mars_cfg_node *map, const char *key,
                                             size_t i);
/* The same for the key of entry sub of the mapping option key (a name the user chose): that
 * key node when present, else as mars_cfg_at(map, key, NULL). */
const struct mars_cfg_node *mars_cfg_key_at(const struct mars_cfg_node *map, const char *key,
                                            const char *sub);
const char *mars_cfg_kind_name(enum mars_cfg_kind k);

#endif
