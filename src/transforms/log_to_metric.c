/*
 * log_to_metric.c - the `log_to_metric` transform: turns log events into metric samples.
 *
 *   requests: {type: log_to_metric, inputs: [nginx],
 *              metrics: [{type: counter, name: http_requests_total,
 *                         labels: {status: "{{ status }}", method: "{{ method }}"}},
 *                        {type: histogram, name: http_response_bytes, field: size}]}
 *
 * Per event and metric: the optional condition must hold; a counter adds 1 (or the
 * field's number with increment_by_value), and needs its field to exist when one is given;
 * a gauge sets, and a histogram observes, the field's number into its buckets. Labels are
 * templates.
 *
 * Series (metric + label values) are tracked per instance, at most max_series: a sample of
 * a new series beyond the cap is dropped and counted (errors{error_type="limit"}), so a
 * label fed from request paths cannot blow up memory downstream. Within a batch, the
 * samples of a series are summed: a batch of ten thousand requests becomes one event per
 * series. Counters and histograms are sent as increments (struct mars_metric.incremental:
 * metric sinks add them up), gauges as their last value.
 *
 * Output: one batch of MARS_EVENT_METRIC events per input batch, built with
 * mars_batch_push_metric() (everything in that batch's arena; the text form is the
 * exposition line). The log events are consumed; the metric batch references the log
 * batch, so the source's acknowledgement waits for the metrics.
 *
 * Series live in an open-addressing table (grown by doubling up to twice max_series
 * slots); a series' label values are one malloc'd NUL-separated string, made once when the
 * series first appears. Per batch, each touched series gets one accumulator slot (found
 * through a generation stamp, so nothing is cleared between batches), histograms also a
 * run of bucket counters in a pool reset per batch.
 *
 * Layout: options and their checks, the compiled instance and its series table, the
 * per-event and per-batch work, then the hooks.
 *
 * Thread: each worker has its own instance; counts are per worker (merged when read).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"
#include "transforms_internal.h"

/* One entry of the `metrics` option. */
struct metric_conf {
    int type; /* enum mars_metric_kind */
    char *name;
    char *help;
    char *field;
    bool increment_by_value;
    struct mars_strmap labels;
    char *condition;
    struct mars_strlist buckets; /* histogram upper bounds, increasing numbers */
};

static const char *const kind_names[] = {"counter", "gauge", "histogram", NULL};

#define MOFF(f) offsetof(struct metric_conf, f)
static const struct mars_opt metric_options[] = {
    {.name = "type",
     .type = MARS_OPT_ENUM,
     .offset = MOFF(type),
     .choices = kind_names,
     .flags = MARS_OPT_REQUIRED,
     .desc = "counter, gauge or histogram."},
    {.name = "name",
     .type = MARS_OPT_STRING,
     .offset = MOFF(name),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Metric name, such as http_requests_total."},
    {.name = "field",
     .type = MARS_OPT_STRING,
     .offset = MOFF(field),
     .desc = "Field whose number is the value (gauge, histogram, counter with "
             "increment_by_value); for a plain counter, only events that have it count."},
    {.name = "increment_by_value",
     .type = MARS_OPT_BOOL,
     .offset = MOFF(increment_by_value),
     .def = "false",
     .desc = "Counter: add the field's number instead of 1."},
    {.name = "labels",
     .type = MARS_OPT_MAP,
     .offset = MOFF(labels),
     .desc = "Label names and their templates, such as {status: \"{{ status }}\"}."},
    {.name = "condition",
     .type = MARS_OPT_STRING,
     .offset = MOFF(condition),
     .desc = "Only events for which this condition holds make a sample."},
    {.name = "buckets",
     .type = MARS_OPT_LIST,
     .offset = MOFF(buckets),
     .def = "[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]",
     .desc = "Histogram: upper bounds of the buckets, increasing (+Inf is implied)."},
    {.name = "help",
     .type = MARS_OPT_STRING,
     .offset = MOFF(help),
     .desc = "One-line description shown by metric sinks (# HELP)."},
    {.name = NULL},
};

struct log_to_metric_conf {
    struct mars_seclist metrics;
    int64_t max_series;
};

#define OFF(f) offsetof(struct log_to_metric_conf, f)
static const struct mars_opt log_to_metric_options[] = {
    {.name = "metrics",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(metrics),
     .flags = MARS_OPT_REQUIRED,
     .sub = metric_options,
     .sub_size = sizeof(struct metric_conf),
     .desc = "The metrics to make: [{type, name, field, increment_by_value, labels, "
             "condition, buckets, help}]."},
    {.name = "max_series",
     .type = MARS_OPT_INT,
     .offset = OFF(max_series),
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .desc = "Most distinct series (name and label values) per worker; samples of further "
             "series are dropped and counted."},
    {.name = NULL},
};

/* Reads the buckets option into out (n doubles). Returns 0, or -EINVAL when an entry is not
 * a finite number or they do not increase (*bad is then its index). */
static int parse_buckets(const struct mars_strlist *list, double *out, size_t *bad)
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

/* ---- config ---- */

static int check_metric(const struct metric_conf *mc, const struct mars_cfg_node *item,
                        struct mars_diag *diag)
{
    int rc = 0;
    const struct mars_cfg_node *at = mars_cfg_at(item, "name", NULL);
    if (!mars_metric_name_valid(mc->name, strlen(mc->name))) {
        mars_diag_add(diag, at->file, at->line, at->col,
                      "option 'metrics.name': '%s' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                      mc->name);
        rc = -EINVAL;
    }
    if ((mc->type != MARS_METRIC_COUNTER || mc->increment_by_value) && !mc->field) {
        mars_diag_add(diag, item->file, item->line, item->col,
                      "metric '%s': a %s needs a 'field' with its value", mc->name,
                      mc->type == MARS_METRIC_COUNTER ? "counter with increment_by_value"
                                                      : kind_names[mc->type]);
        rc = -EINVAL;
    }
    if (mc->field &&
        mars_check_path(mc->field, mars_cfg_at(item, "field", NULL), "metrics.field", false, diag))
        rc = -EINVAL;
    double bounds[256];
    size_t bad;
    if (mc->buckets.n > 256 || parse_buckets(&mc->buckets, bounds, &bad)) {
        at = mc->buckets.n <= 256 ? mars_cfg_item_at(item, "buckets", bad) : item;
        mars_diag_add(diag, at->file, at->line, at->col,
                      "option 'metrics.buckets': at most 256 increasing numbers");
        rc = -EINVAL;
    }
    if (mc->condition && mars_check_condition(mc->condition, mars_cfg_at(item, "condition", NULL),
                                              "metrics.condition", diag))
        rc = -EINVAL;
    for (size_t i = 0; i < mc->labels.n; i++) {
        if (!mars_label_name_valid(mc->labels.keys[i], strlen(mc->labels.keys[i]))) {
            at = mars_cfg_key_at(item, "labels", mc->labels.keys[i]);
            mars_diag_add(diag, at->file, at->line, at->col,
                          "option 'metrics.labels': '%s' is not a label name", mc->labels.keys[i]);
            rc = -EINVAL;
        }
        if (mars_check_template(mc->labels.vals[i], mars_cfg_at(item, "labels", mc->labels.keys[i]),
                                "metrics.labels", diag))
            rc = -EINVAL;
    }
    return rc;
}

static int log_to_metric_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct log_to_metric_conf *c = conf;
    const struct metric_conf *m = c->metrics.items;
    int rc = 0;
    if (c->metrics.n == 0) {
        mars_diag_add(diag, node->file, node->line, node->col, "'metrics' is empty");
        return -EINVAL;
    }
    for (size_t i = 0; i < c->metrics.n; i++) {
        const struct mars_cfg_node *item = mars_cfg_item_at(node, "metrics", i);
        if (check_metric(&m[i], item, diag))
            rc = -EINVAL;
    }
    return rc;
}

/* ---- instances ---- */

struct def {
    const struct metric_conf *conf;
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

struct log_to_metric {
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

static void instance_destroy(struct log_to_metric *l)
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

static int compile_def(struct def *d, const struct metric_conf *mc)
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
        if (parse_buckets(&mc->buckets, d->bounds, &bad))
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

/* Compiles the n metric definitions (borrowed from the config for the instance's life).
 * Returns an owned instance (free with instance_destroy()) or NULL. */
static struct log_to_metric *instance_create(struct mars_transform *t, const struct metric_conf *m,
                                             size_t n, uint32_t max_series)
{
    struct log_to_metric *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->t = t;
    l->max_series = max_series;
    l->mask = 63;
    l->defs = calloc(n, sizeof(*l->defs));
    l->tab = calloc(l->mask + 1, sizeof(*l->tab));
    if (!l->defs || !l->tab) {
        instance_destroy(l);
        return NULL;
    }
    size_t maxl = 1, maxb = 1;
    for (; l->ndefs < n; l->ndefs++) {
        if (compile_def(&l->defs[l->ndefs], &m[l->ndefs])) {
            l->ndefs++;
            instance_destroy(l);
            return NULL;
        }
        maxl = m[l->ndefs].labels.n > maxl ? m[l->ndefs].labels.n : maxl;
        maxb = m[l->ndefs].buckets.n > maxb ? m[l->ndefs].buckets.n : maxb;
    }
    l->values = calloc(maxl, sizeof(*l->values));
    l->cumulative = calloc(maxb, sizeof(*l->cumulative));
    if (!l->values || !l->cumulative) {
        instance_destroy(l);
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

static void grow(struct log_to_metric *l)
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
static struct series *series_of(struct log_to_metric *l)
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
static bool render_key(struct log_to_metric *l, uint32_t d, const struct mars_event *ev)
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

static void count(struct log_to_metric *l, enum mars_error_type e)
{
    mars_stat_add(&mars_transform_stats(l->t)->errors[e], 1);
}

/* The value of metric d for ev; false when ev makes no sample. */
static bool value_of(struct log_to_metric *l, const struct def *d, const struct mars_event *ev,
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
static void emit_sample(struct log_to_metric *l, struct mars_batch *out, const struct accum *a)
{
    uint32_t d;
    memcpy(&d, a->s->key, sizeof(d));
    const struct def *df = &l->defs[d];
    const struct metric_conf *mc = df->conf;
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
static struct accum *accum_of(struct log_to_metric *l, struct series *s, size_t nbounds)
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

static void add(struct log_to_metric *l, const struct def *d, struct series *s, double v,
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

static void one_event(struct log_to_metric *l, const struct mars_event *ev)
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

/* Takes b; emits one batch of metric events made from it. */
static void process_batch(struct log_to_metric *l, struct mars_batch *b)
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

/* ---- hooks ---- */

static int log_to_metric_init(struct mars_transform *t)
{
    const struct log_to_metric_conf *c = mars_transform_conf(t);
    struct log_to_metric *l =
        instance_create(t, c->metrics.items, c->metrics.n, (uint32_t)c->max_series);
    if (!l)
        return -ENOMEM;
    mars_transform_set_state(t, l);
    return 0;
}

static void log_to_metric_process(struct mars_transform *t, struct mars_batch *b)
{
    process_batch(mars_transform_state(t), b);
}

static void log_to_metric_destroy(struct mars_transform *t)
{
    instance_destroy(mars_transform_state(t));
}

const struct mars_component_desc mars_transform_log_to_metric = {
    .name = "log_to_metric",
    .description = "Makes counters, gauges and histograms from log events, with label "
                   "templates and a cap on the number of series.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_METRIC,
    .accepts = MARS_DATA_LOG,
    .options = log_to_metric_options,
    .conf_size = sizeof(struct log_to_metric_conf),
    .check = log_to_metric_check,
    .transform = {.init = log_to_metric_init,
                  .process = log_to_metric_process,
                  .destroy = log_to_metric_destroy},
};
