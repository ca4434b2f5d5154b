/*
 * throttle.c - the `throttle` transform: at most `threshold` events per `window`, per key.
 *
 * Windows are fixed: the first event after a window ended opens the next one, and every
 * count starts again from zero. With `key` (a template, e.g. "{{ service }}"), each key has
 * its own budget; keys live in an open-addressing table whose entries carry the window
 * generation, so a new window empties it in O(1), and key bytes live in a slab that is
 * reset with it (nothing is allocated per event). At most `max_keys` keys are tracked per
 * window; further keys share one overflow budget, which is counted as a limit error.
 *
 * Dropped events are counted as discarded on purpose; at the end of a window that dropped
 * something, one line (rate-limited) says how many and for how many keys. The clock is the
 * loop's cached monotonic time, so a batch costs no system call.
 *
 * Thread: each worker has its own instance; a threshold applies per worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/ev.h"
#include "core/log.h"
#include "component.h"
#include "transforms_internal.h"

struct throttle_conf {
    int64_t threshold;
    int64_t window;
    char *key;
    char *exclude;
    int64_t max_keys;
};

#define OFF(f) offsetof(struct throttle_conf, f)
static const struct mars_opt throttle_options[] = {
    {.name = "threshold",
     .type = MARS_OPT_INT,
     .offset = OFF(threshold),
     .flags = MARS_OPT_REQUIRED,
     .min = 1,
     .max = INT32_MAX,
     .desc = "Events let through per window (per key, per worker)."},
    {.name = "window",
     .type = MARS_OPT_DURATION,
     .offset = OFF(window),
     .def = "1s",
     .min = 1000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "Length of the window the threshold applies to."},
    {.name = "key",
     .type = MARS_OPT_STRING,
     .offset = OFF(key),
     .desc = "Template of the key that has its own budget, such as \"{{ service }}\"; unset "
             "gives all events one budget."},
    {.name = "exclude",
     .type = MARS_OPT_STRING,
     .offset = OFF(exclude),
     .desc = "Condition of events that are never throttled (and not counted)."},
    {.name = "max_keys",
     .type = MARS_OPT_INT,
     .offset = OFF(max_keys),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .desc = "Keys tracked per window; events of further keys share one budget."},
    {.name = NULL},
};

struct tkey {
    uint64_t hash;
    uint32_t off, len; /* key bytes in the slab */
    uint32_t count;
    uint32_t gen; /* window generation the entry belongs to */
};

struct throttle {
    struct mars_transform *t;
    uint32_t threshold, max_keys;
    int64_t window_ns, window_start;
    struct mars_template *key;
    struct mars_cond *exclude;
    struct tkey *tab;
    uint32_t mask, used, gen, overflow, single;
    char *slab;
    size_t slab_len, slab_cap;
    uint64_t dropped; /* in the current window */
    uint32_t keys_hit;
    bool started;
    bool *keep;
    size_t cap;
    char buf[4096];
};

static int throttle_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct throttle_conf *c = conf;
    return mars_check_key_exclude(c->key, c->exclude, node, diag);
}

static void throttle_destroy(struct mars_transform *t)
{
    struct throttle *th = mars_transform_state(t);
    if (!th)
        return;
    mars_template_destroy(th->key);
    mars_cond_destroy(th->exclude);
    free(th->tab);
    free(th->slab);
    free(th->keep);
    free(th);
}

static int throttle_init(struct mars_transform *t)
{
    const struct throttle_conf *c = mars_transform_conf(t);
    struct mars_cond_error err;
    char why[160];
    struct throttle *th = calloc(1, sizeof(*th));
    if (!th)
        return -ENOMEM;
    mars_transform_set_state(t, th);
    th->t = t;
    th->threshold = (uint32_t)c->threshold;
    th->window_ns = c->window;
    th->max_keys = (uint32_t)c->max_keys;
    th->gen = 1;
    th->mask = 63;
    if ((c->key && (!(th->key = mars_template_compile(c->key, 0, why, sizeof(why))) ||
                    !(th->tab = calloc(th->mask + 1, sizeof(*th->tab))))) ||
        (c->exclude && !(th->exclude = mars_cond_compile(c->exclude, &err)))) {
        throttle_destroy(t);
        mars_transform_set_state(t, NULL);
        return -ENOMEM;
    }
    return 0;
}

static void new_window(struct throttle *th, int64_t now)
{
    if (th->dropped)
        MARS_LOG_RL(MARS_LOG_INFO, mars_transform_id(th->t),
                    "dropped %llu events over the threshold of %u in the last window "
                    "(%u keys over it)",
                    (unsigned long long)th->dropped, th->threshold, th->keys_hit);
    th->gen++;
    th->used = th->overflow = th->single = th->keys_hit = 0;
    th->slab_len = 0;
    th->dropped = 0;
    th->window_start = now;
    th->started = true;
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = mars_hash64(s, n); /* FNV-1a */
    return h ^ (h >> 29);
}

static bool slab_add(struct throttle *th, const char *s, size_t n)
{
    if (mars_grow(&th->slab, &th->slab_cap, th->slab_len + n, 1))
        return false;
    memcpy(th->slab + th->slab_len, s, n);
    th->slab_len += n;
    return true;
}

/* Doubles the table (up to twice max_keys slots), keeping this window's keys. */
static void grow(struct throttle *th)
{
    uint32_t size = (th->mask + 1) * 2;
    struct tkey *tab = calloc(size, sizeof(*tab));
    if (!tab)
        return; /* keep probing the full-ish table; max_keys still bounds it */
    for (uint32_t i = 0; i <= th->mask; i++) {
        const struct tkey *k = &th->tab[i];
        if (k->gen != th->gen)
            continue;
        uint32_t j = (uint32_t)k->hash & (size - 1);
        while (tab[j].gen == th->gen)
            j = (j + 1) & (size - 1);
        tab[j] = *k;
    }
    free(th->tab);
    th->tab = tab;
    th->mask = size - 1;
}

/* The counter of this event's key (the overflow counter when the table is full). */
static uint32_t *counter(struct throttle *th, const struct mars_event *ev)
{
    if (!th->key)
        return &th->single;
    int n = mars_template_render(th->key, ev, th->buf, sizeof(th->buf));
    size_t len = n > 0 ? (size_t)n : 0;
    uint64_t h = hash(th->buf, len);
    if (th->used * 2 >= th->mask + 1 && th->used < th->max_keys)
        grow(th);
    for (uint32_t i = (uint32_t)h & th->mask;; i = (i + 1) & th->mask) {
        struct tkey *k = &th->tab[i];
        if (k->gen != th->gen) {
            if (th->used >= th->max_keys || th->used >= th->mask || !slab_add(th, th->buf, len)) {
                mars_stat_add(&mars_transform_stats(th->t)->errors[MARS_ERR_LIMIT], 1);
                return &th->overflow;
            }
            *k = (struct tkey){.hash = h,
                               .off = (uint32_t)(th->slab_len - len),
                               .len = (uint32_t)len,
                               .gen = th->gen};
            th->used++;
            return &k->count;
        }
        if (k->hash == h && k->len == len && memcmp(th->slab + k->off, th->buf, len) == 0)
            return &k->count;
    }
}

static bool let_through(struct throttle *th, const struct mars_event *ev)
{
    if (th->exclude && mars_cond_eval(th->exclude, ev))
        return true;
    uint32_t *c = counter(th, ev);
    if (*c < th->threshold) {
        ++*c;
        return true;
    }
    if (*c == th->threshold) {
        ++*c; /* first drop for this key in this window */
        th->keys_hit++;
    }
    th->dropped++;
    return false;
}

static void throttle_process(struct mars_transform *t, struct mars_batch *b)
{
    struct throttle *th = mars_transform_state(t);
    int64_t now = mars_ev_now(mars_transform_loop(t));
    uint32_t kept = 0;
    if (!th->started || now - th->window_start >= th->window_ns)
        new_window(th, now);
    if (!mars_transform_flags(&th->keep, &th->cap, b->n)) {
        mars_stat_add(&mars_transform_stats(t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b);
        return;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        th->keep[i] = let_through(th, &b->ev[i]);
        kept += th->keep[i];
    }
    mars_transform_emit_kept(t, b, th->keep, kept);
}

const struct mars_component_desc mars_transform_throttle = {
    .name = "throttle",
    .description = "Lets at most `threshold` events per window through, per key; the rest "
                   "are dropped and counted.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = throttle_options,
    .conf_size = sizeof(struct throttle_conf),
    .check = throttle_check,
    .transform = {.init = throttle_init, .process = throttle_process, .destroy = throttle_destroy},
};
