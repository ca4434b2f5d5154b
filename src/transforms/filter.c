/*
 * filter.c - the `filter` transform: keeps the log events for which `condition` holds (or,
 * with invert, those for which it does not). Dropped events are counted as discarded on
 * purpose; their batch is finished for this path, so acknowledgement is not held up.
 *
 * A batch passes untouched when every event is kept; when some go, an exclusive batch is
 * compacted in place and a shared one is narrowed into a new batch that references it
 * (mars_batch_select), so no event bytes are copied either way.
 *
 * Thread: each worker has its own instance (the compiled condition is per thread).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "transforms_internal.h"

struct filter_conf {
    char *condition;
    bool invert;
};

#define OFF(f) offsetof(struct filter_conf, f)
static const struct mars_opt filter_options[] = {
    {.name = "condition",
     .type = MARS_OPT_STRING,
     .offset = OFF(condition),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Events for which this condition holds are kept, e.g. 'level == \"error\" && "
             "http.status >= 500' (the language is in docs/transforms.md)."},
    {.name = "invert",
     .type = MARS_OPT_BOOL,
     .offset = OFF(invert),
     .def = "false",
     .desc = "Drop the events that match instead of keeping them."},
    {.name = NULL},
};

struct filter {
    struct mars_cond *cond;
    bool invert;
    bool *keep;
    size_t cap;
};

static int filter_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct filter_conf *c = conf;
    return mars_check_condition(c->condition, mars_cfg_at(node, "condition", NULL), "condition",
                                diag);
}

static int filter_init(struct mars_transform *t)
{
    const struct filter_conf *c = mars_transform_conf(t);
    struct mars_cond_error err;
    struct filter *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->invert = c->invert;
    f->cond = mars_cond_compile(c->condition, &err);
    if (!f->cond) {
        free(f);
        return -EINVAL;
    }
    mars_transform_set_state(t, f);
    return 0;
}

static void filter_process(struct mars_transform *t, struct mars_batch *b)
{
    struct filter *f = mars_transform_state(t);
    uint32_t kept = 0;
    if (!mars_transform_flags(&f->keep, &f->cap, b->n)) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b); /* unfiltered rather than lost */
        return;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        f->keep[i] = mars_cond_eval(f->cond, &b->ev[i]) != f->invert;
        kept += f->keep[i];
    }
    mars_transform_emit_kept(t, b, f->keep, kept);
}

static void filter_destroy(struct mars_transform *t)
{
    struct filter *f = mars_transform_state(t);
    mars_cond_destroy(f->cond);
    free(f->keep);
    free(f);
}

const struct mars_component_desc mars_transform_filter = {
    .name = "filter",
    .description = "Keeps the events that match a condition (or drops them, with invert).",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = filter_options,
    .conf_size = sizeof(struct filter_conf),
    .check = filter_check,
    .transform = {.init = filter_init, .process = filter_process, .destroy = filter_destroy},
};
