/*
 * schema.c - typed option tables: apply a config MAP node to a component's conf struct
 * (schema_free.c frees what was applied, schema_describe.c describes the table).
 *
 * How it works: mars_schema_apply() runs three passes over one mapping. (1) Every option
 * with a default gets it, parsed from its config text by the same setter as user input, so a
 * default can never mean something a user could not write. (2) Every key the user wrote, in
 * file order, is matched to an option and set, or reported as unknown with a suggestion.
 * (3) Options still unset are checked: missing required options are reported at the mapping,
 * and absent SECTIONs are applied with no node so they still receive their own defaults.
 * Nested sections recurse with a dotted name ("buffer.max_events", "probes[2].url") that
 * every message uses, so a message reads the same as the `mars describe` row.
 *
 * Rules a reader may not guess: an empty value (`key:` or `key: ~`) leaves an option unset,
 * like not writing it; a section given as something other than a mapping reports an error
 * and stays zero. Defaults of LIST and MAP options are YAML flow text ("[a, b]", "{k: v}").
 * Errors in defaults are programming errors and are reported at "<schema>".
 *
 * Invariants: `out` starts zeroed (or as left by mars_schema_fini()); a setter frees the
 * value it replaces (a default overridden by the user), so apply never leaks; every owned
 * pointer it stores is either NULL or freeable by mars_schema_fini(), even after errors.
 *
 * Thread: the control thread (config load and reload).
 */
#include "core/schema.h"
#include "core/schema_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"

#define NAME_BUF              256 /* dotted option names in messages */
#define QUOTE_BUF             80  /* user values quoted in messages */
#define SECRET_FILE_MAX_BYTES (1u << 20)
#define SCHEMA_FILE           "<schema>" /* where errors in defaults are reported */

struct apply_ctx {
    struct mars_diag *diag;
    unsigned errors;
};

__attribute__((format(printf, 3, 4))) static void
opt_error(struct apply_ctx *c, const struct mars_cfg_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mars_diag_addv(c->diag, at ? at->file : NULL, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
    c->errors++;
}

/* "prefix.name", or "name" without a prefix. */
const char *mars_schema_join_name(char *buf, size_t len, const char *prefix, const char *name)
{
    if (prefix && *prefix)
        snprintf(buf, len, "%s.%s", prefix, name);
    else
        snprintf(buf, len, "%s", name);
    return buf;
}

/* A user value in double quotes for a message: long values cut (not inside a UTF-8
 * sequence) and control characters shown as '?', so a message stays one short line. */
static const char *quote(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s), max = len - 6, at = 0; /* room for 2 quotes, "...", NUL */
    bool cut = n > max;

    if (cut) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    buf[at++] = '"';
    for (size_t i = 0; i < n; i++)
        buf[at++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (cut) {
        memcpy(buf + at, "...", 3);
        at += 3;
    }
    buf[at++] = '"';
    buf[at] = '\0';
    return buf;
}

static const char *got_what(const struct mars_cfg_node *n)
{
    switch (n->kind) {
    case MARS_CFG_NULL:
        return "an empty value";
    case MARS_CFG_SCALAR:
        return "a string";
    case MARS_CFG_MAP:
        return "a mapping";
    case MARS_CFG_SEQ:
        return "a list";
    }
    return "something else";
}

/* The node's text when it is a usable scalar; otherwise reports and returns NULL. */
static const char *scalar_text(struct apply_ctx *c, const struct mars_cfg_node *v, const char *name,
                               const char *expected)
{
    if (v->kind != MARS_CFG_SCALAR) {
        opt_error(c, v, "option '%s': expected %s, got %s", name, expected, got_what(v));
        return NULL;
    }
    if (strlen(v->str) != v->len) {
        opt_error(c, v, "option '%s': value contains a NUL character", name);
        return NULL;
    }
    return v->str;
}

/* Replaces *dst with a copy of s. */
static void store_string(struct apply_ctx *c, const struct mars_cfg_node *at, char **dst,
                         const char *s)
{
    char *p = strdup(s);

    if (!p) {
        opt_error(c, at, "out of memory");
        return;
    }
    free(*dst);
    *dst = p;
}

/* ---- scalar setters ------------------------------------------------------------------- */

static int parse_int64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    /* -(INT64_MAX + 1) without overflow. */
    *out = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
    return 0;
}

void mars_schema_bound_text(const struct mars_opt *o, int64_t b, char *buf, size_t len)
{
    if (o->type == MARS_OPT_SIZE)
        mars_format_size((uint64_t)b, buf, len);
    else if (o->type == MARS_OPT_DURATION)
        mars_format_duration(b, buf, len);
    else
        snprintf(buf, len, "%" PRId64, b);
}

/* Reports a value outside [min, max] (when min < max); `text` is the value as written. */
static bool check_bounds(struct apply_ctx *c, const struct mars_opt *o,
                         const struct mars_cfg_node *at, const char *name, const char *text,
                         bool below, bool above)
{
    char bound[64];

    if (o->min >= o->max || (!below && !above))
        return true;
    mars_schema_bound_text(o, below ? o->min : o->max, bound, sizeof(bound));
    opt_error(c, at, "option '%s': %s is %s %s", name, text,
              below ? "below the minimum" : "above the maximum", bound);
    return false;
}

static void set_int(struct apply_ctx *c, const struct mars_opt *o, const struct mars_cfg_node *v,
                    int64_t *dst, const char *name)
{
    const char *s = scalar_text(c, v, name, "an integer");
    char q[QUOTE_BUF];
    int64_t x;

    if (!s)
        return;
    int rc = parse_int64(s, &x);
    if (rc == -ERANGE) {
        opt_error(c, v, "option '%s': %s is out of the 64-bit integer range", name,
                  quote(s, q, sizeof(q)));
    } else if (rc < 0) {
        opt_error(c, v, "option '%s': expected an integer, got %s", name, quote(s, q, sizeof(q)));
    } else {
        bool below = x<o->min, above = x> o->max;
        if (check_bounds(c, o, v, name, s, below, above))
            *dst = x;
    }
}

static void set_float(struct apply_ctx *c, const struct mars_cfg_node *v, double *dst,
                      const char *name)
{
    const char *s = scalar_text(c, v, name, "a number");
    char q[QUOTE_BUF], *end;

    if (!s)
        return;
    errno = 0;
    double x = strtod(s, &end);
    /* strtod skips leading blanks and reads "inf"/"nan": neither is a config number. */
    if (!*s || *s == ' ' || *s == '\t' || *end || errno == ERANGE || !isfinite(x)) {
        opt_error(c, v, "option '%s': expected a number, got %s", name, quote(s, q, sizeof(q)));
        return;
    }
    *dst = x;
}

static void set_bool(struct apply_ctx *c, const struct mars_cfg_node *v, bool *dst,
                     const char *name)
{
    const char *s = scalar_text(c, v, name, "a boolean");
    char q[QUOTE_BUF];

    if (s && mars_parse_bool(s, dst) < 0)
        opt_error(c, v, "option '%s': expected a boolean (true/false, yes/no, on/off), got %s",
                  name, quote(s, q, sizeof(q)));
}

static void set_size(struct apply_ctx *c, const struct mars_opt *o, const struct mars_cfg_node *v,
                     uint64_t *dst, const char *name)
{
    const char *s = scalar_text(c, v, name, "a size");
    const char *err;
    char q[QUOTE_BUF];
    uint64_t x;

    if (!s)
        return;
    if (mars_parse_size(s, &x, &err) < 0) {
        opt_error(c, v, "option '%s': invalid size %s: %s", name, quote(s, q, sizeof(q)), err);
        return;
    }
    bool below = o->min > 0 && x < (uint64_t)o->min;
    bool above = o->max < 0 || x > (uint64_t)o->max;
    if (check_bounds(c, o, v, name, s, below, above))
        *dst = x;
}

static void set_duration(struct apply_ctx *c, const struct mars_opt *o,
                         const struct mars_cfg_node *v, int64_t *dst, const char *name)
{
    const char *s = scalar_text(c, v, name, "a duration");
    const char *err;
    char q[QUOTE_BUF];
    int64_t x;

    if (!s)
        return;
    if (mars_parse_duration(s, &x, &err) < 0) {
        opt_error(c, v, "option '%s': invalid duration %s: %s", name, quote(s, q, sizeof(q)), err);
        return;
    }
    bool below = x<o->min, above = x> o->max;
    if (check_bounds(c, o, v, name, s, below, above))
        *dst = x;
}

static void set_enum(struct apply_ctx *c, const struct mars_opt *o, const struct mars_cfg_node *v,
                     int *dst, const char *name)
{
    char list[512], q[QUOTE_BUF], hint[NAME_BUF];
    size_t n = 0, at = 0;
    const char *s = scalar_text(c, v, name, "a string");

    if (!s)
        return;
    for (; o->choices && o->choices[n]; n++) {
        if (strcmp(s, o->choices[n]) == 0) {
            *dst = (int)n;
            return;
        }
    }
    list[0] = '\0';
    for (size_t i = 0; i < n && at < sizeof(list); i++) {
        int w = snprintf(list + at, sizeof(list) - at, "%s%s", i ? ", " : "", o->choices[i]);
        at += w > 0 ? (size_t)w : 0;
    }
    const char *sugg = mars_suggest(s, o->choices, n);
    hint[0] = '\0';
    if (sugg)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", sugg);
    opt_error(c, v, "option '%s': %s is not one of %s%s", name, quote(s, q, sizeof(q)), list, hint);
}

/* The text of a URL (an option or a list item): a scalar that starts with http:// or
 * https://; otherwise reports and returns NULL. */
static const char *url_text(struct apply_ctx *c, const struct mars_cfg_node *v, const char *name)
{
    char q[QUOTE_BUF];
    const char *s = scalar_text(c, v, name, "a URL");

    if (s && strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        opt_error(c, v, "option '%s': %s must start with http:// or https://", name,
                  quote(s, q, sizeof(q)));
        return NULL;
    }
    return s;
}

/* ---- secrets from files --------------------------------------------------------------- */

/* Reads a secret file into an owned string, one trailing newline removed. 0 or -errno
 * (-EFBIG when too large, -EILSEQ when it holds a NUL byte). */
static int read_secret(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n;
    char *buf;

    if (fd < 0)
        return -errno;
    int err = mars_fd_read_all(fd, SECRET_FILE_MAX_BYTES, &buf, &n);
    close(fd);
    if (err)
        return err;
    if (memchr(buf, '\0', n)) {
        free(buf);
        return -EILSEQ;
    }
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* `name_file: PATH` for the SECRET option o. */
static void set_secret_file(struct apply_ctx *c, const struct mars_opt *o,
                            const struct mars_cfg_node *map, const struct mars_cfg_node *key,
                            const struct mars_cfg_node *v, void *out, const char *prefix)
{
    char name[NAME_BUF], file_name[NAME_BUF], q[QUOTE_BUF];
    const struct mars_cfg_node *plain = mars_cfg_get(map, o->name);
    char *secret = NULL;

    mars_schema_join_name(name, sizeof(name), prefix, o->name);
    mars_schema_join_name(file_name, sizeof(file_name), prefix, key->str);
    if (plain && plain->kind != MARS_CFG_NULL) {
        const struct mars_cfg_node *k2 = mars_cfg_get_key(map, o->name);
        bool key_later = key->line > k2->line || (key->line == k2->line && key->col > k2->col);
        opt_error(c, key_later ? key : k2, "options '%s' and '%s' are both set (use one)", name,
                  file_name);
        return;
    }
    const char *path = scalar_text(c, v, file_name, "a file path");
    if (!path)
        return;
    int rc = read_secret(path, &secret);
    if (rc < 0) {
        opt_error(c, v, "option '%s': cannot read %s: %s", file_name, quote(path, q, sizeof(q)),
                  rc == -EFBIG    ? "file is larger than 1 MiB"
                  : rc == -EILSEQ ? "file contains a NUL byte"
                                  : strerror(-rc));
        return;
    }
    char **dst = mars_schema_field(out, o);
    free(*dst);
    *dst = secret;
}

/* ---- collections ---------------------------------------------------------------------- */

/* url: every item must be a URL (URL_LIST). */
static void set_list(struct apply_ctx *c, const struct mars_cfg_node *v, struct mars_strlist *l,
                     const char *name, bool url)
{
    const struct mars_cfg_node *const *items = (const struct mars_cfg_node *const *)v->vals;
    size_t n = v->kind == MARS_CFG_SEQ ? v->n : 1;
    char item_name[NAME_BUF];

    if (v->kind != MARS_CFG_SEQ && v->kind != MARS_CFG_SCALAR) {
        opt_error(c, v, "option '%s': expected a list", name);
        return;
    }
    mars_schema_free_strlist(l);
    if (v->kind == MARS_CFG_SCALAR)
        items = &v; /* a lone scalar is a list of one */
    if (n == 0)
        return;
    if (!(l->v = calloc(n, sizeof(*l->v)))) {
        opt_error(c, v, "out of memory");
        return;
    }
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(item_name, sizeof(item_name), "%s[%zu]", name, i);
        const char *s = url ? url_text(c, items[i], item_name)
                            : scalar_text(c, items[i], item_name, "a string");
        if (s)
            store_string(c, items[i], &l->v[i], s);
    }
}

static void set_map(struct apply_ctx *c, const struct mars_cfg_node *v, struct mars_strmap *m,
                    const char *name)
{
    char item_name[NAME_BUF];

    if (v->kind != MARS_CFG_MAP) {
        opt_error(c, v, "option '%s': expected a mapping", name);
        return;
    }
    mars_schema_free_strmap(m);
    if (v->n == 0)
        return;
    m->keys = calloc(v->n, sizeof(*m->keys));
    m->vals = calloc(v->n, sizeof(*m->vals));
    m->style = calloc(v->n, sizeof(*m->style));
    if (!m->keys || !m->vals || !m->style) {
        free(m->keys);
        free(m->vals);
        free(m->style);
        m->keys = m->vals = NULL;
        m->style = NULL;
        opt_error(c, v, "out of memory");
        return;
    }
    m->n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct mars_cfg_node *val = v->vals[i];
        mars_schema_join_name(item_name, sizeof(item_name), name, v->keys[i]->str);
        const char *s =
            val->kind == MARS_CFG_NULL ? "" : scalar_text(c, val, item_name, "a string");
        if (!s)
            continue;
        store_string(c, v->keys[i], &m->keys[i], v->keys[i]->str);
        store_string(c, val, &m->vals[i], s);
        m->style[i] = val->kind == MARS_CFG_NULL ? MARS_STRMAP_NULL
                      : val->quoted              ? MARS_STRMAP_QUOTED
                                                 : MARS_STRMAP_PLAIN;
    }
}

static void apply_map(struct apply_ctx *c, const struct mars_opt *schema,
                      const struct mars_cfg_node *map, void *out, const char *prefix,
                      const struct mars_cfg_node *where, const char *const *reserved);

/* A section whose options include the bool `enabled` may be given as true or false. */
static bool section_switch(const struct mars_opt *sub)
{
    for (const struct mars_opt *o = sub; o && o->name; o++)
        if (o->type == MARS_OPT_BOOL && strcmp(o->name, "enabled") == 0)
            return true;
    return false;
}

static void set_seclist(struct apply_ctx *c, const struct mars_opt *o,
                        const struct mars_cfg_node *v, struct mars_seclist *sl, const char *name)
{
    char item_name[NAME_BUF];

    if (v->kind != MARS_CFG_SEQ) {
        opt_error(c, v, "option '%s': expected a list", name);
        return;
    }
    mars_schema_free_seclist(o, sl);
    if (v->n == 0)
        return;
    if (!(sl->items = calloc(v->n, o->sub_size ? o->sub_size : 1))) {
        opt_error(c, v, "out of memory");
        return;
    }
    sl->n = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const struct mars_cfg_node *item = v->vals[i];
        snprintf(item_name, sizeof(item_name), "%s[%zu]", name, i);
        if (item->kind != MARS_CFG_MAP)
            opt_error(c, item, "option '%s': expected a mapping", item_name);
        else
            apply_map(c, o->sub, item, (char *)sl->items + i * o->sub_size, item_name, item, NULL);
    }
}

/* ---- apply ---------------------------------------------------------------------------- */

/* Sets option o in `out` from node v (never a NULL-kind node). */
static void set_value(struct apply_ctx *c, const struct mars_opt *o, const struct mars_cfg_node *v,
                      void *out, const char *name)
{
    void *f = mars_schema_field(out, o);
    const char *s;

    switch (o->type) {
    case MARS_OPT_STRING:
    case MARS_OPT_SECRET:
        if ((s = scalar_text(c, v, name, "a string")))
            store_string(c, v, f, s);
        break;
    case MARS_OPT_INT:
        set_int(c, o, v, f, name);
        break;
    case MARS_OPT_FLOAT:
        set_float(c, v, f, name);
        break;
    case MARS_OPT_BOOL:
        set_bool(c, v, f, name);
        break;
    case MARS_OPT_SIZE:
        set_size(c, o, v, f, name);
        break;
    case MARS_OPT_DURATION:
        set_duration(c, o, v, f, name);
        break;
    case MARS_OPT_ENUM:
        set_enum(c, o, v, f, name);
        break;
    case MARS_OPT_LIST:
    case MARS_OPT_URL_LIST:
        set_list(c, v, f, name, o->type == MARS_OPT_URL_LIST);
        break;
    case MARS_OPT_URL:
        if ((s = url_text(c, v, name)))
            store_string(c, v, f, s);
        break;
    case MARS_OPT_MAP:
        set_map(c, v, f, name);
        break;
    case MARS_OPT_SECTION:
        if (v->kind == MARS_CFG_SCALAR && section_switch(o->sub)) {
            /* `pods: true` is short for `pods: {enabled: true}` */
            struct mars_cfg_node key = {.kind = MARS_CFG_SCALAR,
                                        .file = v->file,
                                        .line = v->line,
                                        .col = v->col,
                                        .str = (char *)"enabled",
                                        .len = 7};
            struct mars_cfg_node *k = &key, *val = (struct mars_cfg_node *)v;
            struct mars_cfg_node map = {.kind = MARS_CFG_MAP,
                                        .file = v->file,
                                        .line = v->line,
                                        .col = v->col,
                                        .n = 1,
                                        .keys = &k,
                                        .vals = &val};
            apply_map(c, o->sub, &map, f, name, v, NULL);
        } else if (v->kind != MARS_CFG_MAP) {
            opt_error(c, v, "option '%s': expected a mapping", name);
        } else {
            apply_map(c, o->sub, v, f, name, v, NULL);
        }
        break;
    case MARS_OPT_SECTION_LIST:
        set_seclist(c, o, v, f, name);
        break;
    }
}

/* Applies o's default text, parsed like user input. */
static void apply_default(struct apply_ctx *c, const struct mars_opt *o, void *out,
                          const char *name)
{
    struct mars_cfg_node at = {.kind = MARS_CFG_SCALAR, .file = SCHEMA_FILE, .quoted = true};
    char q[QUOTE_BUF];

    if (o->type == MARS_OPT_LIST || o->type == MARS_OPT_URL_LIST || o->type == MARS_OPT_MAP) {
        struct mars_cfg_doc *doc =
            mars_cfg_load_string(SCHEMA_FILE, o->def, strlen(o->def), c->diag);
        if (!doc)
            opt_error(c, &at, "option '%s': invalid default %s", name, quote(o->def, q, sizeof(q)));
        else if (doc->root)
            set_value(c, o, doc->root, out, name);
        mars_cfg_doc_destroy(doc);
        return;
    }
    at.str = (char *)o->def; /* the node is only read */
    at.len = strlen(o->def);
    set_value(c, o, &at, out, name);
}

static ptrdiff_t find_opt(const struct mars_opt *schema, const char *name, size_t len)
{
    for (ptrdiff_t i = 0; schema[i].name; i++) {
        if (strlen(schema[i].name) == len && memcmp(schema[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++) {
        if (strcmp(*list, s) == 0)
            return true;
    }
    return false;
}

static void report_unknown(struct apply_ctx *c, const struct mars_opt *schema,
                           const struct mars_cfg_node *key, const char *prefix,
                           const char *const *reserved)
{
    char name[NAME_BUF], hint[NAME_BUF + 32], sugg_name[NAME_BUF];
    size_t nopts = 0, nres = 0, n = 0;

    while (schema[nopts].name)
        nopts++;
    while (reserved && reserved[nres])
        nres++;
    const char **cands = malloc((nopts + nres + 1) * sizeof(*cands));
    const char *sugg = NULL;
    if (cands) {
        for (size_t i = 0; i < nopts; i++)
            cands[n++] = schema[i].name;
        for (size_t i = 0; i < nres; i++)
            cands[n++] = reserved[i];
        sugg = mars_suggest(key->str, cands, n);
    }
    hint[0] = '\0';
    if (sugg)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)",
                 mars_schema_join_name(sugg_name, sizeof(sugg_name), prefix, sugg));
    opt_error(c, key, "unknown option '%s'%s",
              mars_schema_join_name(name, sizeof(name), prefix, key->str), hint);
    free(cands);
}

/* One key/value pair of the user's mapping. */
static void apply_pair(struct apply_ctx *c, const struct mars_opt *schema, bool *seen,
                       const struct mars_cfg_node *map, size_t i, void *out, const char *prefix,
                       const char *const *reserved)
{
    const struct mars_cfg_node *key = map->keys[i], *val = map->vals[i];
    static const char suffix[] = "_file";
    const size_t slen = sizeof(suffix) - 1;
    char name[NAME_BUF];

    if (in_list(reserved, key->str))
        return;
    ptrdiff_t idx = find_opt(schema, key->str, key->len);
    if (idx >= 0) {
        if (val->kind == MARS_CFG_NULL) /* an empty value leaves the option unset */
            return;
        if (schema[idx].type == MARS_OPT_URL && val->kind == MARS_CFG_SCALAR && val->len == 0)
            return; /* so does an empty URL: `${VAR:-}` with VAR unset */
        seen[idx] = true;
        set_value(c, &schema[idx], val, out,
                  mars_schema_join_name(name, sizeof(name), prefix, key->str));
        return;
    }
    if (key->len > slen && strcmp(key->str + key->len - slen, suffix) == 0) {
        idx = find_opt(schema, key->str, key->len - slen);
        if (idx >= 0 && schema[idx].type == MARS_OPT_SECRET) {
            if (val->kind == MARS_CFG_NULL)
                return;
            seen[idx] = true;
            set_secret_file(c, &schema[idx], map, key, val, out, prefix);
            return;
        }
    }
    report_unknown(c, schema, key, prefix, reserved);
}

/*
 * Applies schema to one mapping (NULL = defaults only) into out. Names in messages get
 * `prefix`; missing required options are reported at `where`.
 */
static void apply_map(struct apply_ctx *c, const struct mars_opt *schema,
                      const struct mars_cfg_node *map, void *out, const char *prefix,
                      const struct mars_cfg_node *where, const char *const *reserved)
{
    char name[NAME_BUF];
    size_t nopts = 0;

    while (schema[nopts].name)
        nopts++;
    bool *seen = calloc(nopts + 1, sizeof(*seen));
    if (!seen) {
        opt_error(c, where, "out of memory");
        return;
    }
    for (size_t i = 0; i < nopts; i++) {
        const struct mars_opt *o = &schema[i];
        if (o->def && o->type != MARS_OPT_SECTION && o->type != MARS_OPT_SECTION_LIST)
            apply_default(c, o, out, mars_schema_join_name(name, sizeof(name), prefix, o->name));
    }
    for (size_t i = 0; map && i < map->n; i++)
        apply_pair(c, schema, seen, map, i, out, prefix, reserved);
    for (size_t i = 0; i < nopts; i++) {
        const struct mars_opt *o = &schema[i];
        if (seen[i])
            continue;
        mars_schema_join_name(name, sizeof(name), prefix, o->name);
        if (o->type == MARS_OPT_SECTION)
            apply_map(c, o->sub, NULL, mars_schema_field(out, o), name, where, NULL);
        else if (o->flags & MARS_OPT_REQUIRED)
            opt_error(c, where, "missing required option '%s'", name);
    }
    free(seen);
}

int mars_schema_apply(const struct mars_opt *schema, const struct mars_cfg_node *map, void *out,
                      const char *const *reserved, struct mars_diag *diag)
{
    struct apply_ctx c = {.diag = diag};

    if (map && map->kind == MARS_CFG_NULL)
        map = NULL;
    if (map && map->kind != MARS_CFG_MAP) {
        opt_error(&c, map, "expected a mapping of options, got %s", got_what(map));
        return -EINVAL;
    }
    apply_map(&c, schema, map, out, NULL, map, reserved);
    return c.errors ? -EINVAL : 0;
}
