/*
 * route.c - the `route` transform: named outputs chosen by conditions.
 *
 *   transforms:
 *     by_level: {type: route, inputs: [app], route: {errors: 'level == "error"',
 *                                                    slow: 'took_ms > 1000'}}
 *   sinks:
 *     pager: {type: http, inputs: [by_level.errors], ...}
 *     rest:  {type: file, inputs: [by_level._unmatched], ...}
 *
 * Each event goes to every output whose condition it matches, and to `_unmatched` when it
 * matches none. The outputs are ports (component.h): a reader names one as `id.name`. Per
 * batch and port, a batch that goes whole is passed on by reference; a part goes as a new
 * batch that references the original (mars_batch_select), so nothing is copied and the
 * source's acknowledgement waits for every port's readers.
 *
 * Thread: each worker has its own instance (compiled conditions are per thread).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "component.h"
#include "transforms_internal.h"

#define UNMATCHED "_unmatched"

struct route_conf {
    struct mars_strmap route;
};

static const struct mars_opt route_options[] = {
    {.name = "route",
     .type = MARS_OPT_MAP,
     .offset = offsetof(struct route_conf, route),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Output names and their conditions; read an output as `<id>.<name>`, and the "
             "events that match no condition as `<id>._unmatched`."},
    {.name = NULL},
};

struct route {
    struct mars_cond **conds;
    uint32_t n;
    bool *match; /* n + 1 rows of a batch's flags; the last row is _unmatched */
    size_t cap;  /* flags allocated */
};

static const char *route_port(const void *conf, size_t i)
{
    const struct route_conf *c = conf;
    if (i < c->route.n)
        return c->route.keys[i];
    return i == c->route.n ? UNMATCHED : NULL;
}

static int route_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct route_conf *c = conf;
    int rc = 0;
    for (size_t i = 0; i < c->route.n; i++) {
        const char *name = c->route.keys[i];
        const struct mars_cfg_node *key = mars_cfg_key_at(node, "route", name);
        if (!name[0] || strchr(name, '.') || strcmp(name, UNMATCHED) == 0) {
            mars_diag_add(diag, key->file, key->line, key->col,
                          "option 'route': output name '%s' must be non-empty, without '.', "
                          "and not " UNMATCHED,
                          name);
            rc = -EINVAL;
        }
        char what[160];
        snprintf(what, sizeof(what), "route.%s", name);
        if (mars_check_condition(c->route.vals[i], mars_cfg_at(node, "route", name), what, diag))
            rc = -EINVAL;
    }
    return rc;
}

static void route_destroy(struct mars_transform *t)
{
    struct route *r = mars_transform_state(t);
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        mars_cond_destroy(r->conds[i]);
    free(r->conds);
    free(r->match);
    free(r);
}

static int route_init(struct mars_transform *t)
{
    const struct route_conf *c = mars_transform_conf(t);
    struct mars_cond_error err;
    struct route *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    mars_transform_set_state(t, r);
    r->conds = calloc(c->route.n + 1, sizeof(*r->conds));
    if (!r->conds)
        goto fail;
    for (; r->n < c->route.n; r->n++)
        if (!(r->conds[r->n] = mars_cond_compile(c->route.vals[r->n], &err)))
            goto fail;
    return 0;
fail:
    route_destroy(t);
    mars_transform_set_state(t, NULL);
    return -ENOMEM;
}

/* Sends the events of b flagged in `sel` (count of them) to port p. */
static void send_port(struct mars_transform *t, struct mars_batch *b, size_t p, const bool *sel,
                      uint32_t count)
{
    if (count == 0)
        return;
    struct mars_batch *part = count == b->n ? mars_batch_ref(b) : mars_batch_select(b, sel, 0);
    if (part)
        mars_transform_emit_port(t, p, part);
    else
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
}

static void route_process(struct mars_transform *t, struct mars_batch *b)
{
    struct route *r = mars_transform_state(t);
    uint32_t n = b->n;
    if (mars_grow(&r->match, &r->cap, (size_t)(r->n + 1) * n, sizeof(*r->match))) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_batch_abandon(b); /* not delivered: a source that can replays it */
        return;
    }
    bool *none = r->match + (size_t)r->n * n;
    uint32_t unmatched = n;
    memset(none, 1, n * sizeof(*none));
    for (uint32_t p = 0; p < r->n; p++) {
        bool *row = r->match + (size_t)p * n;
        uint32_t count = 0;
        for (uint32_t i = 0; i < n; i++) {
            row[i] = mars_cond_eval(r->conds[p], &b->ev[i]);
            count += row[i];
            unmatched -= row[i] && none[i];
            none[i] = none[i] && !row[i];
        }
        send_port(t, b, p, row, count);
    }
    send_port(t, b, r->n, none, unmatched);
    mars_batch_release(b);
}

const struct mars_component_desc mars_transform_route = {
    .name = "route",
    .description = "Sends events to named outputs by condition; events that match none go "
                   "to the _unmatched output.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = route_options,
    .conf_size = sizeof(struct route_conf),
    .check = route_check,
    .port = route_port,
    .transform = {.init = route_init, .process = route_process, .destroy = route_destroy},
};
