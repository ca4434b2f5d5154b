/*
 * metrics.c - the metrics registry: families, bounded series, per-shard cells, collection.
 *
 * Layout: a series owns (nshards + 1) blocks of `stride` 64-bit cells, each block aligned
 * to and padded to a 64-byte line, so two shards never share a cache line. Block k belongs
 * to shard k; the last block is the shared one (atomic adds). A counter or gauge uses one
 * cell (counters as integers, gauges as the bits of a double); a histogram uses nbounds + 1
 * bucket cells (the last is +Inf) and one cell holding the bits of the sum. Count is the sum
 * of the buckets, so a scrape always sees _count equal to the +Inf bucket.
 *
 * Invariants: families and series are only ever added (until destroy), under `lock`; the
 * arrays that list them are only read under `lock` too (collection), so growing them is
 * safe. Cells are read with relaxed loads while their writers run: a scrape may see one
 * shard's update before another's, never a torn value.
 *
 * Thread: see metrics.h.
 */
#include "core/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/log.h"

#define LINE_CELLS 8 /* 64-bit cells per 64-byte line */

struct mars_mseries {
    struct mars_mfamily *f;
    char **values;
    size_t stride;           /* cells per shard block, a multiple of LINE_CELLS */
    _Atomic uint64_t *cells; /* (nshards + 1) * stride */
};

struct mars_mfamily {
    struct mars_metrics *m;
    char *name, *help;
    enum mars_mtype type;
    char *labels[MARS_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds[MARS_METRICS_MAX_BOUNDS];
    size_t nbounds;
    uint32_t max_series;
    struct mars_mseries **series;
    size_t nseries, cap;
    bool warned_full;
};

struct collector {
    mars_metrics_collector fn;
    void *arg;
};

struct mars_metrics {
    unsigned nshards;
    pthread_mutex_t lock;
    struct mars_mfamily **fam;
    size_t nfam, capfam;
    struct collector *col;
    size_t ncol, capcol;
};

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

struct mars_metrics *mars_metrics_create(unsigned nshards)
{
    struct mars_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nshards = nshards;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void series_destroy(struct mars_mseries *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->cells);
    free(s);
}

static void family_destroy(struct mars_mfamily *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        series_destroy(f->series[i], f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void mars_metrics_destroy(struct mars_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfam; i++)
        family_destroy(m->fam[i]);
    free(m->fam);
    free(m->col);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

unsigned mars_metrics_shards(const struct mars_metrics *m)
{
    return m->nshards;
}

/* ---- registration ---- */

static bool same_shape(const struct mars_mfamily *f, const struct mars_mfamily_desc *d)
{
    size_t n = 0;
    while (d->labels && d->labels[n])
        n++;
    if (f->type != d->type || f->nlabels != n || f->nbounds != d->nbounds)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->labels[i], d->labels[i]) != 0)
            return false;
    return true;
}

static int check_desc(const struct mars_mfamily_desc *d, size_t *nlabels)
{
    size_t n = 0;
    if (!d->name || !mars_metric_name_valid(d->name, strlen(d->name)) || !d->help)
        return -EINVAL;
    while (d->labels && d->labels[n]) {
        const char *l = d->labels[n];
        if (!mars_label_name_valid(l, strlen(l)) || strcmp(l, "le") == 0 ||
            strncmp(l, "__", 2) == 0)
            return -EINVAL;
        n++;
    }
    if (n > MARS_METRICS_MAX_LABELS || d->nbounds > MARS_METRICS_MAX_BOUNDS)
        return -EINVAL;
    if (d->type == MARS_MT_HISTOGRAM && d->nbounds == 0)
        return -EINVAL;
    for (size_t i = 1; i < d->nbounds; i++)
        if (!(d->bounds[i] > d->bounds[i - 1]))
            return -EINVAL;
    *nlabels = n;
    return 0;
}

static struct mars_mfamily *family_new(struct mars_metrics *m, const struct mars_mfamily_desc *d,
                                       size_t nlabels)
{
    struct mars_mfamily *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->m = m;
    f->type = d->type;
    f->name = strdup(d->name);
    f->help = strdup(d->help);
    f->max_series = d->max_series ? d->max_series : MARS_METRICS_DEFAULT_MAX_SERIES;
    f->nbounds = d->type == MARS_MT_HISTOGRAM ? d->nbounds : 0;
    if (f->nbounds)
        memcpy(f->bounds, d->bounds, f->nbounds * sizeof(double));
    bool ok = f->name && f->help;
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = strdup(d->labels[i]);
        f->nlabels++;
        ok = ok && f->labels[i];
    }
    if (!ok) {
        family_destroy(f);
        return NULL;
    }
    return f;
}

struct mars_mfamily *mars_metrics_family(struct mars_metrics *m, const struct mars_mfamily_desc *d)
{
    size_t nlabels = 0;
    struct mars_mfamily *f = NULL;

    if (check_desc(d, &nlabels)) {
        mars_error("-", "metrics: invalid family '%s'", d->name ? d->name : "(null)");
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfam; i++) {
        if (strcmp(m->fam[i]->name, d->name) == 0) {
            f = same_shape(m->fam[i], d) ? m->fam[i] : NULL;
            if (!f)
                mars_error("-", "metrics: family '%s' registered twice with different shapes",
                           d->name);
            goto out;
        }
    }
    if (mars_grow(&m->fam, &m->capfam, m->nfam + 1, sizeof(*m->fam)))
        goto out;
    f = family_new(m, d, nlabels);
    if (f)
        m->fam[m->nfam++] = f;
out:
    pthread_mutex_unlock(&m->lock);
    return f;
}

static struct mars_mseries *series_new(struct mars_mfamily *f, const char *const *values)
{
    struct mars_mseries *s = calloc(1, sizeof(*s));
    size_t cells = f->type == MARS_MT_HISTOGRAM ? f->nbounds + 2 : 1;
    if (!s)
        return NULL;
    s->f = f;
    s->stride = (cells + LINE_CELLS - 1) / LINE_CELLS * LINE_CELLS;
    s->values = calloc(f->nlabels + 1, sizeof(*s->values));
    size_t bytes = (f->m->nshards + 1) * s->stride * sizeof(uint64_t);
    s->cells = aligned_alloc(64, bytes);
    bool ok = s->values && s->cells;
    if (s->cells)
        memset(s->cells, 0, bytes);
    for (size_t i = 0; ok && i < f->nlabels; i++)
        ok = (s->values[i] = strdup(values[i] ? values[i] : "")) != NULL;
    if (!ok) {
        series_destroy(s, f->nlabels);
        return NULL;
    }
    return s;
}

static bool values_equal(const struct mars_mseries *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

struct mars_mseries *mars_mfamily_series(struct mars_mfamily *f, const char *const *values)
{
    struct mars_metrics *m = f->m;
    struct mars_mseries *s = NULL;

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < f->nseries; i++) {
        if (values_equal(f->series[i], values, f->nlabels)) {
            s = f->series[i];
            goto out;
        }
    }
    if (f->nseries >= f->max_series) {
        if (!f->warned_full)
            mars_warn("-",
                      "metrics: family '%s' has %u series, its limit; new label sets are "
                      "not recorded",
                      f->name, f->max_series);
        f->warned_full = true;
        goto out;
    }
    if (mars_grow(&f->series, &f->cap, f->nseries + 1, sizeof(*f->series)))
        goto out;
    s = series_new(f, values);
    if (s)
        f->series[f->nseries++] = s;
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* ---- updates ---- */

static _Atomic uint64_t *block(struct mars_mseries *s, unsigned shard)
{
    unsigned k = shard >= s->f->m->nshards ? s->f->m->nshards : shard;
    return s->cells + (size_t)k * s->stride;
}

static void cell_add(_Atomic uint64_t *c, uint64_t n, bool shared)
{
    if (shared)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

static void cell_add_double(_Atomic uint64_t *c, double v, bool shared)
{
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    if (!shared) {
        atomic_store_explicit(c, dbits(bitsd(old) + v), memory_order_relaxed);
        return;
    }
    while (!atomic_compare_exchange_weak_explicit(c, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void mars_mseries_add(struct mars_mseries *s, unsigned shard, uint64_t n)
{
    if (!s || s->f->type == MARS_MT_HISTOGRAM)
        return;
    bool shared = shard >= s->f->m->nshards;
    if (s->f->type == MARS_MT_GAUGE)
        cell_add_double(block(s, shard), (double)(int64_t)n, shared);
    else
        cell_add(block(s, shard), n, shared);
}

void mars_mseries_set(struct mars_mseries *s, unsigned shard, double v)
{
    if (!s || s->f->type != MARS_MT_GAUGE)
        return;
    atomic_store_explicit(block(s, shard), dbits(v), memory_order_relaxed);
}

void mars_mseries_observe(struct mars_mseries *s, unsigned shard, double v)
{
    if (!s || s->f->type != MARS_MT_HISTOGRAM)
        return;
    const struct mars_mfamily *f = s->f;
    bool shared = shard >= f->m->nshards;
    _Atomic uint64_t *b = block(s, shard);
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    cell_add(&b[i], 1, shared);
    cell_add_double(&b[f->nbounds + 1], v, shared);
}

/* ---- collection ---- */

int mars_metrics_add_collector(struct mars_metrics *m, mars_metrics_collector fn, void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    if (mars_grow(&m->col, &m->capcol, m->ncol + 1, sizeof(*m->col)) == 0)
        m->col[m->ncol++] = (struct collector){fn, arg};
    else
        rc = -ENOMEM;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void visit_series(struct mars_mvisitor *v, const struct mars_mfamily *f,
                         const struct mars_mseries *s)
{
    unsigned nblocks = f->m->nshards + 1;
    const struct mars_mlabels l = {.names = (const char *const *)f->labels,
                                   .values = (const char *const *)s->values,
                                   .n = f->nlabels};

    if (f->type != MARS_MT_HISTOGRAM) {
        double x = 0;
        for (unsigned k = 0; k < nblocks; k++) {
            uint64_t c = atomic_load_explicit(&s->cells[k * s->stride], memory_order_relaxed);
            x += f->type == MARS_MT_COUNTER ? (double)c : bitsd(c);
        }
        v->value(v, &l, x);
        return;
    }
    uint64_t buckets[MARS_METRICS_MAX_BOUNDS + 1] = {0};
    uint64_t cum[MARS_METRICS_MAX_BOUNDS];
    double sum = 0;
    for (unsigned k = 0; k < nblocks; k++) {
        const _Atomic uint64_t *b = &s->cells[k * s->stride];
        for (size_t i = 0; i <= f->nbounds; i++)
            buckets[i] += atomic_load_explicit(&b[i], memory_order_relaxed);
        sum += bitsd(atomic_load_explicit(&b[f->nbounds + 1], memory_order_relaxed));
    }
    uint64_t run = 0;
    for (size_t i = 0; i < f->nbounds; i++)
        cum[i] = run += buckets[i];
    v->histogram(v, &l, f->bounds, cum, f->nbounds, run + buckets[f->nbounds], sum);
}

void mars_metrics_collect(struct mars_metrics *m, struct mars_mvisitor *v)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfam; i++) {
        const struct mars_mfamily *f = m->fam[i];
        struct mars_mfamily_info info = {.name = f->name, .help = f->help, .type = f->type};
        v->family(v, &info);
        for (size_t k = 0; k < f->nseries; k++)
            visit_series(v, f, f->series[k]);
    }
    for (size_t i = 0; i < m->ncol; i++)
        m->col[i].fn(v, m->col[i].arg);
    pthread_mutex_unlock(&m->lock);
}
