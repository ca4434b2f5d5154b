/*
 * sample.c - the `sample` transform: keeps one event in `rate`.
 *
 * Without a key, every rate-th event is kept (a counter per instance, so the choice is
 * deterministic). With `key` (a template such as "{{ trace_id }}"), the rendered key is
 * hashed and an event is kept when its hash falls in the kept 1/rate of the hash space, so
 * all events of one trace are kept or dropped together, on every worker alike; events
 * whose key renders empty fall back to the counter. Events matching `exclude` are always
 * kept and do not count. Dropped events are counted as discarded on purpose.
 *
 * Thread: each worker has its own instance.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "component.h"
#include "transforms_internal.h"

struct sample_conf {
    int64_t rate;
    char *key;
    char *exclude;
};

#define OFF(f) offsetof(struct sample_conf, f)
static const struct mars_opt sample_options[] = {
    {.name = "rate",
     .type = MARS_OPT_INT,
     .offset = OFF(rate),
     .flags = MARS_OPT_REQUIRED,
     .min = 1,
     .max = INT32_MAX,
     .desc = "Keep one event in this many."},
    {.name = "key",
     .type = MARS_OPT_STRING,
     .offset = OFF(key),
     .desc = "Template of a key (such as \"{{ trace_id }}\") whose events are kept or dropped "
             "together; unset samples events one by one."},
    {.name = "exclude",
     .type = MARS_OPT_STRING,
     .offset = OFF(exclude),
     .desc = "Condition of events that are always kept, never sampled out."},
    {.name = NULL},
};

#define KEY_MAX 4096

struct sample {
    uint64_t rate, counter;
    struct mars_template *key;
    struct mars_cond *exclude;
    bool *keep;
    size_t cap;
    char buf[KEY_MAX];
};

static int sample_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct sample_conf *c = conf;
    return mars_check_key_exclude(c->key, c->exclude, node, diag);
}

static void sample_destroy(struct mars_transform *t)
{
    struct sample *s = mars_transform_state(t);
    if (!s)
        return;
    mars_template_destroy(s->key);
    mars_cond_destroy(s->exclude);
    free(s->keep);
    free(s);
}

static int sample_init(struct mars_transform *t)
{
    const struct sample_conf *c = mars_transform_conf(t);
    struct mars_cond_error err;
    char why[160];
    struct sample *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    mars_transform_set_state(t, s);
    s->rate = (uint64_t)c->rate;
    if ((c->key && !(s->key = mars_template_compile(c->key, 0, why, sizeof(why)))) ||
        (c->exclude && !(s->exclude = mars_cond_compile(c->exclude, &err)))) {
        sample_destroy(t);
        mars_transform_set_state(t, NULL);
        return -ENOMEM;
    }
    return 0;
}

/* FNV-1a, then a finalizer so that low bits are as good as high ones. */
static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = mars_hash64(s, n); /* FNV-1a */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static bool keep_one(struct sample *s, const struct mars_event *ev)
{
    if (s->exclude && mars_cond_eval(s->exclude, ev))
        return true;
    if (s->key) {
        int n = mars_template_render(s->key, ev, s->buf, sizeof(s->buf));
        if (n > 0)
            return hash(s->buf, (size_t)n) % s->rate == 0;
    }
    return s->counter++ % s->rate == 0;
}

static void sample_process(struct mars_transform *t, struct mars_batch *b)
{
    struct sample *s = mars_transform_state(t);
    uint32_t kept = 0;
    if (!mars_transform_flags(&s->keep, &s->cap, b->n)) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b);
        return;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        s->keep[i] = keep_one(s, &b->ev[i]);
        kept += s->keep[i];
    }
    mars_transform_emit_kept(t, b, s->keep, kept);
}

const struct mars_component_desc mars_transform_sample = {
    .name = "sample",
    .description = "Keeps one event in N, optionally by a key so that related events stay "
                   "together, never dropping events that match `exclude`.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = sample_options,
    .conf_size = sizeof(struct sample_conf),
    .check = sample_check,
    .transform = {.init = sample_init, .process = sample_process, .destroy = sample_destroy},
};
