/*
 * modify.c - the `modify` transform: edits fields of log events.
 *
 * Operations run in this order on each event, each option's entries in file order:
 * rename, copy, set, coerce, lowercase, uppercase, truncate, remove, dedot. So `set` can
 * build a value from fields that `remove` then drops, and renamed fields are seen under
 * their new name by everything after.
 *
 * Only changed bytes are written: a `set` value without template parts points at the
 * config text; rendered values, case changes, numbers written differently and truncations
 * with a suffix go to the batch arena; a truncation without a suffix, a rename, a copy, a
 * removal and most coercions only move slices. Field arrays are copied on write when the
 * batch was shared (fields.h). A missing field makes an operation a no-op; an operation
 * that cannot be done (a value that is not a number, a path through a non-object) leaves
 * the event as it was and is counted (errors{error_type="convert"}).
 *
 * Values are read with mars_fields_get() and written back with the fields.h setters.
 *
 * Layout: options and their checks, the compiled form of an instance, the operations on
 * one event, then the hooks.
 *
 * Thread: each worker has its own instance.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "component.h"
#include "transforms_internal.h"

struct modify_trunc_conf {
    char *field;
    int64_t max_bytes;
    char *suffix;
};

struct modify_conf {
    struct mars_strmap rename, copy, set, coerce;
    struct mars_strlist lowercase, uppercase, remove, dedot;
    struct mars_seclist truncate;
};

static const struct mars_opt trunc_options[] = {
    {.name = "field",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct modify_trunc_conf, field),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Field to shorten."},
    {.name = "max_bytes",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct modify_trunc_conf, max_bytes),
     .flags = MARS_OPT_REQUIRED,
     .min = 0,
     .max = INT32_MAX,
     .desc = "Longest value kept, in bytes (cut at a UTF-8 character boundary)."},
    {.name = "suffix",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct modify_trunc_conf, suffix),
     .def = "",
     .desc = "Appended to a value that was cut, such as \"...\"."},
    {.name = NULL},
};

#define OFF(f) offsetof(struct modify_conf, f)
static const struct mars_opt modify_options[] = {
    {.name = "rename",
     .type = MARS_OPT_MAP,
     .offset = OFF(rename),
     .desc = "Fields to move: {from: to}; objects move with everything in them."},
    {.name = "copy",
     .type = MARS_OPT_MAP,
     .offset = OFF(copy),
     .desc = "Fields to copy: {from: to}."},
    {.name = "set",
     .type = MARS_OPT_MAP,
     .offset = OFF(set),
     .desc = "Fields to set: {path: value}. A value keeps its YAML type (replicas: 3 is a "
             "number, ok: true a boolean, x: null a null, \"3\" a string); text is a template "
             "(e.g. route: \"{{ method }} {{ path }}\", class: \"{{ div(status, 100) }}xx\", "
             "strftime % conversions from the event time, %% is a %), and a template that is "
             "one expression alone keeps its kind (bytes: \"{{ number(size) }}\" is a "
             "number)."},
    {.name = "coerce",
     .type = MARS_OPT_MAP,
     .offset = OFF(coerce),
     .desc = "Fields to convert: {path: type}, type one of string, int, float, bool."},
    {.name = "lowercase",
     .type = MARS_OPT_LIST,
     .offset = OFF(lowercase),
     .desc = "String fields to lowercase (ASCII letters)."},
    {.name = "uppercase",
     .type = MARS_OPT_LIST,
     .offset = OFF(uppercase),
     .desc = "String fields to uppercase (ASCII letters)."},
    {.name = "truncate",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(truncate),
     .sub = trunc_options,
     .sub_size = sizeof(struct modify_trunc_conf),
     .desc = "String fields to shorten: [{field, max_bytes, suffix}]."},
    {.name = "remove",
     .type = MARS_OPT_LIST,
     .offset = OFF(remove),
     .desc = "Fields to remove (removing message leaves it out of JSON output)."},
    {.name = "dedot",
     .type = MARS_OPT_LIST,
     .offset = OFF(dedot),
     .desc = "Objects whose keys (and their objects' keys) get '.' replaced by '_', run last: "
             "[kubernetes.labels] turns app.kubernetes.io/name into app_kubernetes_io/name, "
             "so Elasticsearch does not map `app` both as a value and as an object."},
    {.name = NULL},
};

/* ---- the compiled form of an instance ---- */

enum coerce_type { COERCE_STRING, COERCE_INT, COERCE_FLOAT, COERCE_BOOL };
static const char *const coerce_names[] = {"string", "int", "float", "bool", NULL};

struct modify_move {
    struct mars_path *from, *to;
};

struct modify_set {
    struct mars_path *path;
    struct mars_template *tpl;
    const char *literal; /* the value when the template is plain text (config-owned) */
    uint32_t lit_len;
    enum mars_field_kind lit_kind; /* what an unquoted YAML literal is */
};

struct modify_coerce {
    struct mars_path *path;
    int type; /* enum coerce_type */
};

struct modify_trunc {
    struct mars_path *path;
    uint32_t max;
    const char *suffix; /* config-owned */
    uint32_t slen;
};

struct modify {
    struct mars_transform *t;
    struct modify_move *rename, *copy;
    size_t nrename, ncopy;
    struct modify_set *set;
    size_t nset;
    struct modify_coerce *coerce;
    size_t ncoerce;
    struct mars_path **lower, **upper, **remove, **dedot;
    size_t nlower, nupper, nremove, ndedot;
    struct modify_trunc *trunc;
    size_t ntrunc;
    char *scratch; /* decoded values (mars_value_text) */
    size_t scap;
    char render[65536];
};

/* Index of a coerce type name, or -1. */
static int coerce_type_index(const char *name)
{
    for (int i = 0; coerce_names[i]; i++)
        if (strcmp(name, coerce_names[i]) == 0)
            return i;
    return -1;
}

/* True when one path is a prefix of the other (a move into itself). */
static bool paths_overlap(const char *a, const char *b)
{
    size_t at;
    const char *why;
    struct mars_path *pa = mars_path_compile(a, strlen(a), &at, &why);
    struct mars_path *pb = mars_path_compile(b, strlen(b), &at, &why);
    bool overlap = false;
    if (pa && pb) {
        uint32_t n = pa->n < pb->n ? pa->n : pb->n;
        overlap = true;
        for (uint32_t i = 0; i < n && overlap; i++)
            overlap = pa->seg[i].name && pb->seg[i].name && pa->seg[i].len == pb->seg[i].len &&
                      memcmp(pa->seg[i].name, pb->seg[i].name, pa->seg[i].len) == 0;
    }
    mars_path_destroy(pa);
    mars_path_destroy(pb);
    return overlap;
}

/* ---- config ---- */

static int check_moves(const struct mars_strmap *m, const char *opt,
                       const struct mars_cfg_node *node, struct mars_diag *diag)
{
    int rc = 0;
    char what[128];
    for (size_t i = 0; i < m->n; i++) {
        snprintf(what, sizeof(what), "%s.%s", opt, m->keys[i]);
        if (mars_check_path(m->keys[i], mars_cfg_key_at(node, opt, m->keys[i]), what, false,
                            diag) ||
            mars_check_path(m->vals[i], mars_cfg_at(node, opt, m->keys[i]), what, true, diag))
            rc = -EINVAL;
        else if (paths_overlap(m->keys[i], m->vals[i])) {
            const struct mars_cfg_node *at = mars_cfg_at(node, opt, m->keys[i]);
            mars_diag_add(diag, at->file, at->line, at->col,
                          "option '%s': '%s' and '%s' contain one another", what, m->keys[i],
                          m->vals[i]);
            rc = -EINVAL;
        }
    }
    return rc;
}

static int check_lists(const struct modify_conf *c, const struct mars_cfg_node *node,
                       struct mars_diag *diag)
{
    const struct mars_strlist *lists[] = {&c->lowercase, &c->uppercase, &c->remove, &c->dedot};
    static const char *const names[] = {"lowercase", "uppercase", "remove", "dedot"};
    int rc = 0;
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < lists[k]->n; i++)
            if (mars_check_path(lists[k]->v[i], mars_cfg_item_at(node, names[k], i), names[k], true,
                                diag))
                rc = -EINVAL;
    const struct modify_trunc_conf *tr = c->truncate.items;
    for (size_t i = 0; i < c->truncate.n; i++)
        if (mars_check_path(tr[i].field, mars_cfg_item_at(node, "truncate", i), "truncate", true,
                            diag))
            rc = -EINVAL;
    return rc;
}

static int modify_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct modify_conf *c = conf;
    int rc = check_moves(&c->rename, "rename", node, diag);
    rc |= check_moves(&c->copy, "copy", node, diag);
    rc |= check_lists(c, node, diag);
    for (size_t i = 0; i < c->set.n; i++) {
        char what[128];
        snprintf(what, sizeof(what), "set.%s", c->set.keys[i]);
        rc |= mars_check_path(c->set.keys[i], mars_cfg_key_at(node, "set", c->set.keys[i]), what,
                              true, diag);
        rc |= mars_check_template(c->set.vals[i], mars_cfg_at(node, "set", c->set.keys[i]), what,
                                  diag);
    }
    for (size_t i = 0; i < c->coerce.n; i++) {
        const struct mars_cfg_node *at = mars_cfg_at(node, "coerce", c->coerce.keys[i]);
        rc |= mars_check_path(c->coerce.keys[i], mars_cfg_key_at(node, "coerce", c->coerce.keys[i]),
                              "coerce", true, diag);
        if (coerce_type_index(c->coerce.vals[i]) < 0) {
            const char *hint = mars_suggest(c->coerce.vals[i], coerce_names, 4);
            mars_diag_add(diag, at->file, at->line, at->col,
                          "option 'coerce.%s': unknown type '%s'%s%s%s", c->coerce.keys[i],
                          c->coerce.vals[i],
                          hint ? " (did you mean '"
                               : " (string, int, float "
                                 "or bool)",
                          hint ? hint : "", hint ? "'?)" : "");
            rc = -EINVAL;
        }
    }
    return rc ? -EINVAL : 0;
}

/* ---- instances ---- */

static int compile_moves(const struct mars_strmap *m, struct modify_move **out, size_t *n)
{
    *out = calloc(m->n + 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (; *n < m->n; ++*n) {
        (*out)[*n].from = mars_transform_path(m->keys[*n]);
        (*out)[*n].to = mars_transform_path(m->vals[*n]);
        if (!(*out)[*n].from || !(*out)[*n].to) {
            ++*n;
            return -ENOMEM;
        }
    }
    return 0;
}

static int compile_list(const struct mars_strlist *l, struct mars_path ***out, size_t *n)
{
    *out = calloc(l->n + 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (; *n < l->n; ++*n)
        if (!((*out)[*n] = mars_transform_path(l->v[*n])))
            return -ENOMEM;
    return 0;
}

/* The kind of an unquoted YAML value: true/false, a JSON number, or a string. */
static enum mars_field_kind yaml_kind(const char *v, unsigned char style)
{
    size_t n = strlen(v);
    if (style == MARS_STRMAP_NULL)
        return MARS_FIELD_NULL;
    if (style != MARS_STRMAP_PLAIN)
        return MARS_FIELD_STRING;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
        return MARS_FIELD_BOOL;
    if (n && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) &&
        mars_json_validate(v, n, 1, NULL) == MARS_JSON_OK)
        return MARS_FIELD_NUMBER;
    return MARS_FIELD_STRING;
}

static int compile_sets(const struct mars_strmap *m, struct modify *md)
{
    char why[160];
    md->set = calloc(m->n + 1, sizeof(*md->set));
    if (!md->set)
        return -ENOMEM;
    for (; md->nset < m->n; md->nset++) {
        struct modify_set *s = &md->set[md->nset];
        s->path = mars_transform_path(m->keys[md->nset]);
        s->tpl = mars_template_compile(m->vals[md->nset], 0, why, sizeof(why));
        if (!s->path || !s->tpl) {
            md->nset++;
            return -ENOMEM;
        }
        if (!mars_template_is_dynamic(s->tpl)) { /* the config text is the value */
            s->lit_kind = yaml_kind(m->vals[md->nset], m->style[md->nset]);
            s->literal = s->lit_kind == MARS_FIELD_NULL ? "null" : m->vals[md->nset];
            s->lit_len = (uint32_t)strlen(s->literal);
        }
    }
    return 0;
}

static int compile_rest(const struct modify_conf *c, struct modify *md)
{
    md->coerce = calloc(c->coerce.n + 1, sizeof(*md->coerce));
    md->trunc = calloc(c->truncate.n + 1, sizeof(*md->trunc));
    if (!md->coerce || !md->trunc)
        return -ENOMEM;
    for (; md->ncoerce < c->coerce.n; md->ncoerce++) {
        md->coerce[md->ncoerce].type = coerce_type_index(c->coerce.vals[md->ncoerce]);
        if (!(md->coerce[md->ncoerce].path = mars_transform_path(c->coerce.keys[md->ncoerce])))
            return -ENOMEM;
    }
    const struct modify_trunc_conf *tr = c->truncate.items;
    for (; md->ntrunc < c->truncate.n; md->ntrunc++) {
        struct modify_trunc *t = &md->trunc[md->ntrunc];
        t->max = (uint32_t)tr[md->ntrunc].max_bytes;
        t->suffix = tr[md->ntrunc].suffix;
        t->slen = (uint32_t)strlen(t->suffix);
        if (!(t->path = mars_transform_path(tr[md->ntrunc].field)))
            return -ENOMEM;
    }
    return 0;
}

/* Frees an instance, also one that modify_init() left half built. */
static void instance_destroy(struct modify *md)
{
    for (size_t i = 0; i < md->nrename; i++) {
        mars_path_destroy(md->rename[i].from);
        mars_path_destroy(md->rename[i].to);
    }
    for (size_t i = 0; i < md->ncopy; i++) {
        mars_path_destroy(md->copy[i].from);
        mars_path_destroy(md->copy[i].to);
    }
    for (size_t i = 0; i < md->nset; i++) {
        mars_path_destroy(md->set[i].path);
        mars_template_destroy(md->set[i].tpl);
    }
    for (size_t i = 0; i < md->ncoerce; i++)
        mars_path_destroy(md->coerce[i].path);
    for (size_t i = 0; i < md->ntrunc; i++)
        mars_path_destroy(md->trunc[i].path);
    for (size_t i = 0; i < md->nlower; i++)
        mars_path_destroy(md->lower[i]);
    for (size_t i = 0; i < md->nupper; i++)
        mars_path_destroy(md->upper[i]);
    for (size_t i = 0; i < md->nremove; i++)
        mars_path_destroy(md->remove[i]);
    for (size_t i = 0; i < md->ndedot; i++)
        mars_path_destroy(md->dedot[i]);
    free(md->rename);
    free(md->copy);
    free(md->set);
    free(md->coerce);
    free(md->trunc);
    free(md->lower);
    free(md->upper);
    free(md->remove);
    free(md->dedot);
    free(md->scratch);
    free(md);
}

/* ---- operations on one event ---- */

static void count_error(struct modify *md)
{
    mars_stat_add(&mars_transform_stats(md->t)->errors[MARS_ERR_CONVERT], 1);
}

static void done(struct modify *md, int rc)
{
    if (rc && rc != -ENOENT)
        count_error(md);
}

static void set_one(struct modify *md, struct mars_batch *b, struct mars_event *ev,
                    const struct modify_set *s)
{
    const char *v = s->literal;
    uint32_t len = s->lit_len;
    enum mars_field_kind kind = s->lit_kind;
    if (!v) {
        int n = mars_template_render_typed(s->tpl, ev, md->render, sizeof(md->render), &kind);
        char *d = n >= 0 ? mars_arena_strndup(&b->arena, md->render, (size_t)n) : NULL;
        if (!d) {
            count_error(md);
            return;
        }
        v = d;
        len = (uint32_t)n;
    }
    done(md, mars_fields_set(b, ev, s->path, kind, v, len, 0));
}

/* ---- coerce ---- */

static bool number_chars(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", s[i]))
            return false;
    return n > 0;
}

/* A NUMBER value for text s: s itself when it is already valid JSON of that type, else the
 * number written again (shortest form that reads back the same) in the arena. */
static int to_number(struct mars_batch *b, const char *s, uint32_t n, bool integer,
                     const char **out, uint32_t *out_len)
{
    char buf[64], fmt[48], *end;
    int len;
    if (!number_chars(s, n) || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (integer) {
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end || errno)
            return -EINVAL;
        len = snprintf(fmt, sizeof(fmt), "%lld", v);
    } else {
        double v = strtod(buf, &end);
        if (*end || !isfinite(v))
            return -EINVAL;
        if (mars_json_validate(s, n, 1, NULL) == MARS_JSON_OK) {
            *out = s;
            *out_len = n;
            return 0;
        }
        len = snprintf(fmt, sizeof(fmt), "%.15g", v);
        if (strtod(fmt, NULL) != v)
            len = snprintf(fmt, sizeof(fmt), "%.17g", v);
    }
    if ((uint32_t)len == n && memcmp(fmt, s, n) == 0) {
        *out = s;
        *out_len = n;
        return 0;
    }
    char *d = mars_arena_strndup(&b->arena, fmt, (size_t)len);
    if (!d)
        return -ENOMEM;
    *out = d;
    *out_len = (uint32_t)len;
    return 0;
}

static int to_bool(const char *s, uint32_t n, const char **out, uint32_t *out_len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (n == strlen(yes[i]) && strncasecmp(s, yes[i], n) == 0) {
            *out = "true", *out_len = 4;
            return 0;
        }
        if (n == strlen(no[i]) && strncasecmp(s, no[i], n) == 0) {
            *out = "false", *out_len = 5;
            return 0;
        }
    }
    return -EINVAL;
}

static void coerce_one(struct modify *md, struct mars_batch *b, struct mars_event *ev,
                       const struct modify_coerce *c)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, c->path, &v))
        return;
    if (v.kind == MARS_FIELD_OBJECT || v.kind == MARS_FIELD_ARRAY) {
        count_error(md);
        return;
    }
    const char *s = mars_value_text_arena(&v, &b->arena, &len), *out = NULL;
    uint32_t out_len = 0;
    enum mars_field_kind kind = MARS_FIELD_STRING;
    int rc = s ? 0 : -ENOMEM;
    if (rc == 0 && c->type == COERCE_STRING) {
        out = s, out_len = len;
    } else if (rc == 0 && c->type == COERCE_BOOL) {
        kind = MARS_FIELD_BOOL;
        rc = to_bool(s, len, &out, &out_len);
    } else if (rc == 0) {
        kind = MARS_FIELD_NUMBER;
        rc = to_number(b, s, len, c->type == COERCE_INT, &out, &out_len);
    }
    if (rc == 0 && v.kind == kind && out == v.ptr)
        return; /* already that */
    done(md, rc ? rc : mars_fields_replace(b, ev, c->path, &v, kind, out, out_len, 0));
}

/* ---- case and truncation ---- */

static void change_case(struct modify *md, struct mars_batch *b, struct mars_event *ev,
                        const struct mars_path *p, bool upper)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, p, &v) || v.kind != MARS_FIELD_STRING)
        return;
    const char *s = mars_value_text(&v, &md->scratch, &md->scap, &len);
    if (!s) {
        count_error(md);
        return;
    }
    char lo = upper ? 'a' : 'A', hi = upper ? 'z' : 'Z';
    uint32_t i = 0;
    while (i < len && !(s[i] >= lo && s[i] <= hi))
        i++;
    if (i == len)
        return; /* nothing to change: no copy */
    char *d = mars_arena_alloc(&b->arena, len ? len : 1);
    if (!d) {
        count_error(md);
        return;
    }
    for (uint32_t k = 0; k < len; k++)
        d[k] = s[k] >= lo && s[k] <= hi ? (char)(s[k] ^ 0x20) : s[k];
    done(md, mars_fields_replace(b, ev, p, &v, MARS_FIELD_STRING, d, len, 0));
}

static void truncate_one(struct modify *md, struct mars_batch *b, struct mars_event *ev,
                         const struct modify_trunc *t)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, t->path, &v) || v.kind != MARS_FIELD_STRING)
        return;
    if (!(v.flags & MARS_FF_ESCAPED) && v.len <= t->max)
        return;
    const char *s = mars_value_text_arena(&v, &b->arena, &len);
    if (!s) {
        count_error(md);
        return;
    }
    if (len <= t->max) {
        if (s != v.ptr) /* decoded, still short enough */
            done(md, mars_fields_replace(b, ev, t->path, &v, MARS_FIELD_STRING, s, len, 0));
        return;
    }
    uint32_t cut = t->max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--; /* do not split a UTF-8 sequence */
    if (t->slen) {
        char *d = mars_arena_alloc(&b->arena, (size_t)cut + t->slen);
        if (!d) {
            count_error(md);
            return;
        }
        memcpy(d, s, cut);
        memcpy(d + cut, t->suffix, t->slen);
        s = d;
    }
    done(md, mars_fields_replace(b, ev, t->path, &v, MARS_FIELD_STRING, s, cut + t->slen, 0));
}

/* Applies every operation to ev (b exclusive). */
static void modify_event(struct modify *md, struct mars_batch *b, struct mars_event *ev)
{
    for (size_t i = 0; i < md->nrename; i++)
        done(md, mars_fields_move(b, ev, md->rename[i].from, md->rename[i].to, false));
    for (size_t i = 0; i < md->ncopy; i++)
        done(md, mars_fields_move(b, ev, md->copy[i].from, md->copy[i].to, true));
    for (size_t i = 0; i < md->nset; i++)
        set_one(md, b, ev, &md->set[i]);
    for (size_t i = 0; i < md->ncoerce; i++)
        coerce_one(md, b, ev, &md->coerce[i]);
    for (size_t i = 0; i < md->nlower; i++)
        change_case(md, b, ev, md->lower[i], false);
    for (size_t i = 0; i < md->nupper; i++)
        change_case(md, b, ev, md->upper[i], true);
    for (size_t i = 0; i < md->ntrunc; i++)
        truncate_one(md, b, ev, &md->trunc[i]);
    for (size_t i = 0; i < md->nremove; i++)
        done(md, mars_fields_remove(b, ev, md->remove[i]));
    for (size_t i = 0; i < md->ndedot; i++) {
        int rc = mars_fields_dedot(b, ev, md->dedot[i]);
        done(md, rc > 0 ? 0 : rc);
    }
}

/* ---- hooks ---- */

static void modify_destroy(struct mars_transform *t)
{
    struct modify *md = mars_transform_state(t);
    if (!md)
        return;
    instance_destroy(md);
}

static int modify_init(struct mars_transform *t)
{
    const struct modify_conf *c = mars_transform_conf(t);
    struct modify *md = calloc(1, sizeof(*md));
    if (!md)
        return -ENOMEM;
    md->t = t;
    int rc = compile_moves(&c->rename, &md->rename, &md->nrename);
    rc = rc ? rc : compile_moves(&c->copy, &md->copy, &md->ncopy);
    rc = rc ? rc : compile_sets(&c->set, md);
    rc = rc ? rc : compile_list(&c->lowercase, &md->lower, &md->nlower);
    rc = rc ? rc : compile_list(&c->uppercase, &md->upper, &md->nupper);
    rc = rc ? rc : compile_list(&c->remove, &md->remove, &md->nremove);
    rc = rc ? rc : compile_list(&c->dedot, &md->dedot, &md->ndedot);
    rc = rc ? rc : compile_rest(c, md);
    if (rc) {
        instance_destroy(md);
        return rc;
    }
    mars_transform_set_state(t, md);
    return 0;
}

static void modify_process(struct mars_transform *t, struct mars_batch *b)
{
    struct modify *md = mars_transform_state(t);
    if (mars_batch_exclusive(&b)) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b); /* unmodified rather than lost */
        return;
    }
    for (uint32_t i = 0; i < b->n; i++)
        if (b->ev[i].kind == MARS_EVENT_LOG)
            modify_event(md, b, &b->ev[i]);
    mars_transform_emit(t, b);
}

const struct mars_component_desc mars_transform_modify = {
    .name = "modify",
    .description = "Edits fields: rename, copy, set typed values and templates (with "
                   "functions), coerce types, change case, truncate, remove, dedot keys.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = modify_options,
    .conf_size = sizeof(struct modify_conf),
    .check = modify_check,
    .transform = {.init = modify_init, .process = modify_process, .destroy = modify_destroy},
};
