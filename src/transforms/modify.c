/*
 * modify.c - the `modify` transform: edits fields of log events.
 *
 * Operations run in this order on each event, each option's entries in file order:
 * rename, copy, set, coerce, lowercase, uppercase, truncate, remove. So `set` can build a
 * value from fields that `remove` then drops, and renamed fields are seen under their new
 * name by everything after.
 *
 * Only changed bytes are written: a `set` value without template parts points at the
 * config text; rendered values, case changes, numbers written differently and truncations
 * with a suffix go to the batch arena; a truncation without a suffix, a rename, a copy, a
 * removal and most coercions only move slices. Field arrays are copied on write when the
 * batch was shared (fields.h). A missing field makes an operation a no-op; an operation
 * that cannot be done (a value that is not a number, a path through a non-object) leaves
 * the event as it was and is counted (errors{error_type="convert"}).
 *
 * Thread: each worker has its own instance.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modify_internal.h"
#include "component.h"
#include "transforms_internal.h"

struct modify_trunc_conf {
    char *field;
    int64_t max_bytes;
    char *suffix;
};

struct modify_conf {
    struct mars_strmap rename, copy, set, coerce;
    struct mars_strlist lowercase, uppercase, remove;
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
     .desc = "Fields to set to a string: {path: template}, e.g. {env: prod, route: \"{{ method "
             "}} {{ path }}\"} (strftime % conversions use the event time; %% is a %)."},
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
    {.name = NULL},
};

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
        else if (mars_modify_paths_overlap(m->keys[i], m->vals[i])) {
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
    const struct mars_strlist *lists[] = {&c->lowercase, &c->uppercase, &c->remove};
    static const char *const names[] = {"lowercase", "uppercase", "remove"};
    int rc = 0;
    for (int k = 0; k < 3; k++)
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
        if (mars_modify_coerce_type(c->coerce.vals[i]) < 0) {
            const char *hint = mars_suggest(c->coerce.vals[i], mars_modify_coerce_names, 4);
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

static int compile_moves(const struct mars_strmap *m, struct mars_modify_move **out, size_t *n)
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

static int compile_sets(const struct mars_strmap *m, struct mars_modify *md)
{
    char why[160];
    md->set = calloc(m->n + 1, sizeof(*md->set));
    if (!md->set)
        return -ENOMEM;
    for (; md->nset < m->n; md->nset++) {
        struct mars_modify_set *s = &md->set[md->nset];
        s->path = mars_transform_path(m->keys[md->nset]);
        s->tpl = mars_template_compile(m->vals[md->nset], 0, why, sizeof(why));
        if (!s->path || !s->tpl) {
            md->nset++;
            return -ENOMEM;
        }
        if (!mars_template_is_dynamic(s->tpl)) { /* the config text is the value */
            s->literal = m->vals[md->nset];
            s->lit_len = (uint32_t)strlen(s->literal);
        }
    }
    return 0;
}

static int compile_rest(const struct modify_conf *c, struct mars_modify *md)
{
    md->coerce = calloc(c->coerce.n + 1, sizeof(*md->coerce));
    md->trunc = calloc(c->truncate.n + 1, sizeof(*md->trunc));
    if (!md->coerce || !md->trunc)
        return -ENOMEM;
    for (; md->ncoerce < c->coerce.n; md->ncoerce++) {
        md->coerce[md->ncoerce].type = mars_modify_coerce_type(c->coerce.vals[md->ncoerce]);
        if (!(md->coerce[md->ncoerce].path = mars_transform_path(c->coerce.keys[md->ncoerce])))
            return -ENOMEM;
    }
    const struct modify_trunc_conf *tr = c->truncate.items;
    for (; md->ntrunc < c->truncate.n; md->ntrunc++) {
        struct mars_modify_trunc *t = &md->trunc[md->ntrunc];
        t->max = (uint32_t)tr[md->ntrunc].max_bytes;
        t->suffix = tr[md->ntrunc].suffix;
        t->slen = (uint32_t)strlen(t->suffix);
        if (!(t->path = mars_transform_path(tr[md->ntrunc].field)))
            return -ENOMEM;
    }
    return 0;
}

static void modify_destroy(struct mars_transform *t)
{
    struct mars_modify *md = mars_transform_state(t);
    if (!md)
        return;
    mars_modify_free(md);
}

static int modify_init(struct mars_transform *t)
{
    const struct modify_conf *c = mars_transform_conf(t);
    struct mars_modify *md = calloc(1, sizeof(*md));
    if (!md)
        return -ENOMEM;
    md->t = t;
    int rc = compile_moves(&c->rename, &md->rename, &md->nrename);
    rc = rc ? rc : compile_moves(&c->copy, &md->copy, &md->ncopy);
    rc = rc ? rc : compile_sets(&c->set, md);
    rc = rc ? rc : compile_list(&c->lowercase, &md->lower, &md->nlower);
    rc = rc ? rc : compile_list(&c->uppercase, &md->upper, &md->nupper);
    rc = rc ? rc : compile_list(&c->remove, &md->remove, &md->nremove);
    rc = rc ? rc : compile_rest(c, md);
    if (rc) {
        mars_modify_free(md);
        return rc;
    }
    mars_transform_set_state(t, md);
    return 0;
}

static void modify_process(struct mars_transform *t, struct mars_batch *b)
{
    struct mars_modify *md = mars_transform_state(t);
    if (mars_batch_exclusive(&b)) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b); /* unmodified rather than lost */
        return;
    }
    for (uint32_t i = 0; i < b->n; i++)
        if (b->ev[i].kind == MARS_EVENT_LOG)
            mars_modify_event(md, b, &b->ev[i]);
    mars_transform_emit(t, b);
}

const struct mars_component_desc mars_transform_modify = {
    .name = "modify",
    .description = "Edits fields: rename, copy, set from templates, coerce types, change "
                   "case, truncate, remove.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = modify_options,
    .conf_size = sizeof(struct modify_conf),
    .check = modify_check,
    .transform = {.init = modify_init, .process = modify_process, .destroy = modify_destroy},
};
