/*
 * log_to_metric_series.c - the data path of `log_to_metric` (see log_to_metric.c): values
 * and label templates per event, the series table with its cap, and per-batch summing.
 *
 * Series live in an open-addressing table (grown by doubling up to twice max_series
 * slots); a series' label values are one malloc'd NUL-separated string, made once when the
 * series first appears. Per batch, each touched series gets one accumulator slot (found
 * through a generation stamp, so nothing is cleared between batches), histograms also a
 * run of bucket counters in a pool reset per batch.
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/arena.h"
#include "core/log.h"
#include "log_to_metric_internal.h"
#include "component.h"
#include "transforms_internal.h"

struct def {
    const struct mars_l2m_metric_conf *conf;
    struct mars_path *field;
    struct mars_cond *cond;
    struct mars_template **labels;
    double *bounds; /* histogram */
    size_t nbounds;
};

/* One series, allocated once (so accumulators may point at it while the table grows). */
struct series {
    uint64_t hash;
    uint32_t len;
    uint32_t gen, slot; /* accumulator of the current batch, when gen matches */
    char key[];         /* metric index (4 bytes), then label values, each NUL-terminated */
};

struct accum {
    struct series *s;
    double value; /* counter: sum of increments; gauge: last value; histogram: sum */
    uint64_t count;
    size_t buckets; /* histogram: offset of its counters in the bucket pool */
    int64_t ts;
};

struct mars_l2m {
    struct mars_transform *t;
    struct def *defs;
    size_t ndefs;
    struct series **tab;
    uint32_t mask, nseries, max_series, gen;
    struct accum *acc;
    uint32_t nacc;
    size_t acc_cap;
    uint64_t *pool; /* histogram bucket counters of this batch */
    size_t npool, pool_cap;
    uint64_t *cumulative;
    const char **values;
    char *scratch;
    size_t scap;
    size_t klen;
    char key[8192];
};

void mars_l2m_destroy(struct mars_l2m *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->ndefs; i++) {
        mars_path_destroy(l->defs[i].field);
        mars_cond_destroy(l->defs[i].cond);
        for (size_t k = 0; l->defs[i].labels && k < l->defs[i].conf->labels.n; k++)
            mars_template_destroy(l->defs[i].labels[k]);
        free(l->defs[i].labels);
        free(l->defs[i].bounds);
    }
    for (uint32_t i = 0; l->tab && i <= l->mask; i++)
        free(l->tab[i]);
    free(l->defs);
    free(l->tab);
    free(l->acc);
    free(l->pool);
    free(l->cumulative);
    free(l->values);
    free(l->scratch);
    free(l);
}

static int compile_def(struct def *d, const struct mars_l2m_metric_conf *mc)
{
    struct mars_cond_error err;
    char why[160];
    size_t bad;
    d->conf = mc;
    d->labels = calloc(mc->labels.n + 1, sizeof(*d->labels));
    d->bounds = calloc(mc->buckets.n + 1, sizeof(*d->bounds));
    if (!d->labels || !d->bounds)
        return -ENOMEM;
    if (mc->type == MARS_METRIC_HISTOGRAM) {
        if (mars_l2m_buckets(&mc->buckets, d->bounds, &bad))
            return -EINVAL;
        d->nbounds = mc->buckets.n;
    }
    if (mc->field && !(d->field = mars_transform_path(mc->field)))
        return -ENOMEM;
    if (mc->condition && !(d->cond = mars_cond_compile(mc->condition, &err)))
        return -ENOMEM;
    for (size_t k = 0; k < mc->labels.n; k++)
        if (!(d->labels[k] = mars_template_compile(mc->labels.vals[k], 0, why, sizeof(why))))
            return -ENOMEM;
    return 0;
}

struct mars_l2m *mars_l2m_create(struct mars_transform *t, const struct mars_l2m_metric_conf *m,
                                 size_t n, uint32_t max_series)
{
    struct mars_l2m *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->t = t;
    l->max_series = max_series;
    l->mask = 63;
    l->defs = calloc(n, sizeof(*l->defs));
    l->tab = calloc(l->mask + 1, sizeof(*l->tab));
    if (!l->defs || !l->tab) {
        mars_l2m_destroy(l);
        return NULL;
    }
    size_t maxl = 1, maxb = 1;
    for (; l->ndefs < n; l->ndefs++) {
        if (compile_def(&l->defs[l->ndefs], &m[l->ndefs])) {
            l->ndefs++;
            mars_l2m_destroy(l);
            return NULL;
        }
        maxl = m[l->ndefs].labels.n > maxl ? m[l->ndefs].labels.n : maxl;
        maxb = m[l->ndefs].buckets.n > maxb ? m[l->ndefs].buckets.n : maxb;
    }
    l->values = calloc(maxl, sizeof(*l->values));
    l->cumulative = calloc(maxb, sizeof(*l->cumulative));
    if (!l->values || !l->cumulative) {
        mars_l2m_destroy(l);
        return NULL;
    }
    return l;
}

/* ---- series ---- */

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = mars_hash64(s, n); /* FNV-1a */
    return h ^ (h >> 31);
}

static void grow(struct mars_l2m *l)
{
    uint32_t size = (l->mask + 1) * 2;
    struct series **tab = calloc(size, sizeof(*tab));
    if (!tab)
        return;
    for (uint32_t i = 0; i <= l->mask; i++) {
        if (!l->tab[i])
            continue;
        uint32_t j = (uint32_t)l->tab[i]->hash & (size - 1);
        while (tab[j])
            j = (j + 1) & (size - 1);
        tab[j] = l->tab[i];
    }
    free(l->tab);
    l->tab = tab;
    l->mask = size - 1;
}

/* The series of l->key, added when new and under the cap; NULL otherwise. */
static struct series *series_of(struct mars_l2m *l)
{
    uint64_t h = hash(l->key, l->klen);
    if (l->nseries * 2 >= l->mask + 1 && l->nseries < l->max_series)
        grow(l);
    for (uint32_t i = (uint32_t)h & l->mask;; i = (i + 1) & l->mask) {
        struct series *s = l->tab[i];
        if (s && s->hash == h && s->len == l->klen && memcmp(s->key, l->key, l->klen) == 0)
            return s;
        if (s)
            continue;
        if (l->nseries >= l->max_series || l->nseries >= l->mask ||
            !(s = malloc(sizeof(*s) + l->klen)))
            return NULL;
        memcpy(s->key, l->key, l->klen);
        s->hash = h;
        s->len = (uint32_t)l->klen;
        s->gen = 0;
        l->tab[i] = s;
        l->nseries++;
        return s;
    }
}

/* Metric index and rendered label values into l->key. */
static bool render_key(struct mars_l2m *l, uint32_t d, const struct mars_event *ev)
{
    const struct def *df = &l->defs[d];
    memcpy(l->key, &d, sizeof(d));
    l->klen = sizeof(d);
    for (size_t k = 0; k < df->conf->labels.n; k++) {
        int n = mars_template_render(df->labels[k], ev, l->key + l->klen, sizeof(l->key) - l->klen);
        if (n < 0)
            return false;
        l->klen += (size_t)n + 1; /* keeps the NUL */
    }
    return true;
}

/* ---- samples ---- */

static void count(struct mars_l2m *l, enum mars_error_type e)
{
    mars_stat_add(&mars_transform_stats(l->t)->errors[e], 1);
}

/* The value of metric d for ev; false when ev makes no sample. */
static bool value_of(struct mars_l2m *l, const struct def *d, const struct mars_event *ev,
                     double *v)
{
    struct mars_value fv;
    *v = 1;
    if (d->cond && !mars_cond_eval(d->cond, ev))
        return false;
    if (!d->field)
        return true;
    if (!mars_fields_get(ev, d->field, &fv))
        return false;
    if (d->conf->type == MARS_METRIC_COUNTER && !d->conf->increment_by_value)
        return true;
    uint32_t len;
    struct mars_value plain = fv;
    if (fv.flags & MARS_FF_ESCAPED) {
        plain.ptr = mars_value_text(&fv, &l->scratch, &l->scap, &len);
        plain.len = len;
        plain.flags = 0;
    }
    if (!plain.ptr || !mars_value_number(&plain, v)) {
        count(l, MARS_ERR_CONVERT);
        return false;
    }
    return true;
}

/* The metric event of accumulator a into out. */
static void emit_sample(struct mars_l2m *l, struct mars_batch *out, const struct accum *a)
{
    uint32_t d;
    memcpy(&d, a->s->key, sizeof(d));
    const struct def *df = &l->defs[d];
    const struct mars_l2m_metric_conf *mc = df->conf;
    const char *p = a->s->key + sizeof(d);
    for (size_t k = 0; k < mc->labels.n; k++) {
        l->values[k] = p;
        p += strlen(p) + 1;
    }
    uint64_t run = 0;
    for (size_t k = 0; k < df->nbounds; k++)
        l->cumulative[k] = run += l->pool[a->buckets + k];
    struct mars_metric_sample m = {.name = mc->name,
                                   .help = mc->help,
                                   .kind = (enum mars_metric_kind)mc->type,
                                   .label_names = (const char *const *)mc->labels.keys,
                                   .label_values = l->values,
                                   .nlabels = mc->labels.n,
                                   .value = a->value,
                                   .bounds = df->bounds,
                                   .cumulative = l->cumulative,
                                   .nbounds = df->nbounds,
                                   .count = a->count};
    if (mars_batch_push_metric(out, &m, a->ts)) {
        count(l, MARS_ERR_MEMORY);
        return;
    }
    out->ev[out->n - 1].metric->incremental = mc->type != MARS_METRIC_GAUGE;
}

/* The accumulator of series s in this batch (new ones start at zero). */
static struct accum *accum_of(struct mars_l2m *l, struct series *s, size_t nbounds)
{
    if (s->gen == l->gen)
        return &l->acc[s->slot];
    if (mars_grow(&l->acc, &l->acc_cap, (size_t)l->nacc + 1, sizeof(*l->acc)) ||
        mars_grow(&l->pool, &l->pool_cap, l->npool + nbounds, sizeof(*l->pool)))
        return NULL;
    if (nbounds)
        memset(l->pool + l->npool, 0, nbounds * sizeof(*l->pool));
    s->gen = l->gen;
    s->slot = l->nacc++;
    l->acc[s->slot] = (struct accum){.s = s, .buckets = l->npool};
    l->npool += nbounds;
    return &l->acc[s->slot];
}

static void add(struct mars_l2m *l, const struct def *d, struct series *s, double v,
                const struct mars_event *ev)
{
    struct accum *a = accum_of(l, s, d->nbounds);
    if (!a) {
        count(l, MARS_ERR_MEMORY);
        return;
    }
    a->ts = ev->ts_ns;
    a->count++;
    if (d->conf->type == MARS_METRIC_GAUGE) {
        a->value = v;
        return;
    }
    a->value += v;
    for (size_t k = 0; k < d->nbounds; k++)
        if (v <= d->bounds[k]) {
            l->pool[a->buckets + k]++; /* made cumulative when emitted */
            break;
        }
}

static void one_event(struct mars_l2m *l, const struct mars_event *ev)
{
    for (uint32_t d = 0; d < l->ndefs; d++) {
        double v;
        if (!value_of(l, &l->defs[d], ev, &v))
            continue;
        struct series *s = render_key(l, d, ev) ? series_of(l) : NULL;
        if (!s) {
            count(l, MARS_ERR_LIMIT);
            MARS_LOG_RL(MARS_LOG_WARN, mars_transform_id(l->t),
                        "metric %s: more than %u series; samples of new series are dropped",
                        l->defs[d].conf->name, l->max_series);
            continue;
        }
        add(l, &l->defs[d], s, v, ev);
    }
}

void mars_l2m_batch(struct mars_l2m *l, struct mars_batch *b)
{
    struct mars_batch *out = mars_batch_select(b, NULL, 16);
    if (!out) {
        count(l, MARS_ERR_MEMORY);
        mars_batch_abandon(b);
        return;
    }
    l->gen++;
    l->nacc = 0;
    l->npool = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->ev[i].kind == MARS_EVENT_LOG)
            one_event(l, &b->ev[i]);
    for (uint32_t k = 0; k < l->nacc; k++)
        emit_sample(l, out, &l->acc[k]);
    mars_batch_release(b);
    if (out->n)
        mars_transform_emit(l->t, out);
    else
        mars_batch_release(out);
}

int mars_l2m_buckets(const struct mars_strlist *list, double *out, size_t *bad)
{
    for (size_t i = 0; i < list->n; i++) {
        char *end;
        out[i] = strtod(list->v[i], &end);
        if (end == list->v[i] || *end || !(out[i] > -1e308 && out[i] < 1e308) ||
            (i > 0 && out[i] <= out[i - 1])) {
            *bad = i;
            return -EINVAL;
        }
    }
    return 0;
}
