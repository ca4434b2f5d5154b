/*
 * schema.h - typed option tables: the single source of truth for every config option.
 *
 * A component declares `static const struct mars_opt opts[]` (ended by an entry with a NULL
 * name), each entry naming the option, its type, its default written as config text, its
 * offset in the component's conf struct, and a one-sentence description. mars_schema_apply()
 * fills the struct from a config MAP node (defaults first, then what the user wrote),
 * checks types, units, bounds and enums, rejects unknown keys with a "did you mean", and
 * reports every problem at its FILE:LINE:COL. mars_schema_describe() prints the same table
 * as reference text, so docs cannot drift from the code.
 *
 * Storage per type (the field at `offset` must have this C type):
 *   STRING, SECRET  char *                 owned; NULL when unset without default
 *   INT             int64_t
 *   FLOAT           double
 *   BOOL            bool
 *   SIZE            uint64_t               bytes; text needs a unit: B KB MB GB KiB MiB GiB TiB
 *   DURATION        int64_t                nanoseconds; text needs a unit: ns us ms s m h d,
 *                                          compounds like "1m30s" allowed
 *   ENUM            int                    index into `choices`
 *   LIST            struct mars_strlist    sequence of scalars (a lone scalar is a list of one)
 *   MAP             struct mars_strmap     mapping of scalar to scalar, in file order
 *   SECTION         the sub-struct itself  nested mapping applied with `sub`
 *   SECTION_LIST    struct mars_seclist    sequence of mappings, each applied with `sub` into an
 *                                          element of `sub_size` bytes
 *   URL             char *                 a STRING that must start with http:// or https://;
 *                                          an empty string (what `${VAR:-}` gives) leaves it unset
 *   URL_LIST        struct mars_strlist    a LIST whose every item is such a URL
 * A SECRET option `x` may instead be given as `x_file: PATH`; the file's content (one trailing
 * newline removed) becomes the value. Describe output never prints a secret's value.
 *
 * Everything allocated by apply is freed by mars_schema_fini() on the same struct.
 */
#ifndef MARS_SCHEMA_H
#define MARS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/cfg.h"
#include "core/diag.h"

enum mars_opt_type {
    MARS_OPT_STRING,
    MARS_OPT_SECRET,
    MARS_OPT_INT,
    MARS_OPT_FLOAT,
    MARS_OPT_BOOL,
    MARS_OPT_SIZE,
    MARS_OPT_DURATION,
    MARS_OPT_ENUM,
    MARS_OPT_LIST,
    MARS_OPT_MAP,
    MARS_OPT_SECTION,
    MARS_OPT_SECTION_LIST,
    MARS_OPT_URL,
    MARS_OPT_URL_LIST,
};

enum {
    MARS_OPT_REQUIRED = 1u << 0, /* must be set (a default makes no sense with it) */
};

struct mars_strlist {
    char **v;
    size_t n;
};

/* How a map value was written, for options whose values keep their YAML type (modify's
 * set: 42 is a number, "42" a string). */
enum mars_strmap_style {
    MARS_STRMAP_PLAIN,  /* an unquoted scalar */
    MARS_STRMAP_QUOTED, /* a quoted scalar: always a string */
    MARS_STRMAP_NULL,   /* no value, ~ or null (vals[i] is "") */
};

struct mars_strmap {
    char **keys;
    char **vals;
    unsigned char *style; /* enum mars_strmap_style per entry */
    size_t n;
};

struct mars_seclist {
    void *items; /* n elements of the option's sub_size bytes */
    size_t n;
};

struct mars_opt {
    const char *name;
    enum mars_opt_type type;
    size_t offset;
    const char *def;  /* default as config text ("64MiB", "true", "info"); NULL = none */
    const char *desc; /* one sentence; required (a test checks every registered schema) */
    unsigned flags;
    const char *const *choices; /* ENUM: NULL-terminated allowed names */
    int64_t min, max;           /* INT/SIZE/DURATION bounds, checked when min < max */
    const struct mars_opt *sub; /* SECTION, SECTION_LIST: nested table */
    size_t sub_size;            /* SECTION_LIST: element size */
};

/*
 * Fills `out` from `map` (a MAP node, or NULL to apply only defaults); the option fields of
 * `out` must start zeroed (calloc'd, or after mars_schema_fini()). Keys listed in
 * `reserved` (NULL-terminated, may be NULL) are skipped: the caller handles them. Returns 0,
 * or -EINVAL after adding every problem to diag. On error `out` is still safe to pass to
 * mars_schema_fini().
 */
int mars_schema_apply(const struct mars_opt *schema, const struct mars_cfg_node *map, void *out,
                      const char *const *reserved, struct mars_diag *diag);
/* Frees what apply allocated in `out` and zeroes those fields. */
void mars_schema_fini(const struct mars_opt *schema, void *out);

/* MAN: roff for a man page, one .TP paragraph per option (escaped for roff). */
enum mars_describe_format { MARS_DESCRIBE_TEXT, MARS_DESCRIBE_MARKDOWN, MARS_DESCRIBE_MAN };
/* Prints the table: name, type, default, required flag, choices, description; nested
 * sections as dotted names ("buffer.max_events"). `prefix` is prepended to names (or NULL). */
void mars_schema_describe(const struct mars_opt *schema, const char *prefix,
                          enum mars_describe_format fmt, FILE *f);
/* Type name shown to users ("size", "duration", "enum", ...). */
const char *mars_opt_type_name(enum mars_opt_type t);

/* Unit parsers shared with the rest of mars. Return 0, or -EINVAL with *err set to a static
 * human-readable reason. */
int mars_parse_size(const char *s, uint64_t *out, const char **err);
int mars_parse_duration(const char *s, int64_t *out_ns, const char **err);
int mars_parse_bool(const char *s, bool *out);
/* Formats into buf ("64MiB", "1.5s"); returns buf. */
char *mars_format_size(uint64_t bytes, char *buf, size_t len);
char *mars_format_duration(int64_t ns, char *buf, size_t len);

/* Closest candidate to `word` by edit distance when it is close enough to be a likely typo,
 * else NULL. Used for "did you mean" on option keys, component types and input names. */
const char *mars_suggest(const char *word, const char *const *candidates, size_t n);

#endif
