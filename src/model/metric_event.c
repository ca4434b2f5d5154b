/*
 * metric_event.c - metric events in a batch arena (see metric_event.h).
 *
 * Thread: the batch's worker.
 */
#include "model/metric_event.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"

static struct mars_slice arena_slice(struct mars_arena *a, const char *s, size_t n)
{
    char *p = mars_arena_strndup(a, s, n);
    return (struct mars_slice){p, p ? (uint32_t)n : 0};
}

static int copy_str(struct mars_arena *a, const char *s, struct mars_slice *out)
{
    *out = arena_slice(a, s ? s : "", s ? strlen(s) : 0);
    return out->ptr ? 0 : -ENOMEM;
}

static int copy_summary(struct mars_arena *a, const struct mars_metric_sample *m,
                        struct mars_metric *mt)
{
    mt->nquantiles = (uint32_t)m->nquantiles;
    if (m->nquantiles) {
        mt->quantiles = mars_arena_alloc(a, m->nquantiles * sizeof(*mt->quantiles));
        if (!mt->quantiles)
            return -ENOMEM;
        for (size_t i = 0; i < m->nquantiles; i++)
            mt->quantiles[i] = (struct mars_metric_quantile){
                m->quantiles[i], m->quantile_values ? m->quantile_values[i] : NAN};
    }
    if (m->observations && m->count) {
        mt->observations = mars_arena_alloc(a, m->count * sizeof(double));
        if (!mt->observations)
            return -ENOMEM;
        memcpy(mt->observations, m->observations, m->count * sizeof(double));
    }
    return 0;
}

static size_t put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return n;
}

/* msg: the sample as an exposition line (labels escaped as in the text format), written
 * straight into the arena: every metric event has one. */
static int render(struct mars_batch *b, const struct mars_metric_sample *m, struct mars_slice *out)
{
    bool counted = m->kind == MARS_METRIC_HISTOGRAM || m->kind == MARS_METRIC_SUMMARY;
    size_t nn = strlen(m->name), need = nn + 6 + 2 + 1 + 20 + 5 + 32;
    for (size_t i = 0; i < m->nlabels; i++)
        need += 1 + strlen(m->label_names[i]) + 3 + 2 * strlen(m->label_values[i]);
    if (need > UINT32_MAX)
        return -ENOMEM;
    char *p = mars_arena_alloc(&b->arena, need);
    if (!p)
        return -ENOMEM;
    size_t o = put(p, m->name, nn);
    if (counted)
        o += put(p + o, "_count", 6);
    for (size_t i = 0; i < m->nlabels; i++) {
        p[o++] = i ? ',' : '{';
        o += put(p + o, m->label_names[i], strlen(m->label_names[i]));
        o += put(p + o, "=\"", 2);
        o += mars_prom_escape_to(p + o, m->label_values[i], strlen(m->label_values[i]), true);
        p[o++] = '"';
    }
    if (m->nlabels)
        p[o++] = '}';
    p[o++] = ' ';
    if (counted) {
        o += mars_fmt_u64(p + o, m->count);
        o += put(p + o, " sum=", 5);
    }
    o += mars_prom_format_value(m->value, p + o, 32);
    *out = (struct mars_slice){p, (uint32_t)o};
    return 0;
}

int mars_batch_push_metric(struct mars_batch *b, const struct mars_metric_sample *m, int64_t ts_ns)
{
    struct mars_arena *a = &b->arena;
    struct mars_metric *mt = mars_arena_alloc(a, sizeof(*mt));
    if (!mt)
        return -ENOMEM;
    memset(mt, 0, sizeof(*mt));
    mt->kind = m->kind;
    mt->value = m->value;
    int rc = copy_str(a, m->name, &mt->name);
    rc = rc ? rc : copy_str(a, m->help, &mt->help);
    if (rc == 0 && m->nlabels) {
        mt->labels = mars_arena_alloc(a, m->nlabels * sizeof(*mt->labels));
        rc = mt->labels ? 0 : -ENOMEM;
        for (size_t i = 0; rc == 0 && i < m->nlabels; i++) {
            rc = copy_str(a, m->label_names[i], &mt->labels[i].name);
            rc = rc ? rc : copy_str(a, m->label_values[i], &mt->labels[i].value);
        }
        mt->nlabels = (uint32_t)m->nlabels;
    }
    if (rc == 0 && m->kind == MARS_METRIC_HISTOGRAM) {
        mt->count = m->count;
        mt->nbuckets = (uint32_t)m->nbounds;
        mt->buckets = m->nbounds ? mars_arena_alloc(a, m->nbounds * sizeof(*mt->buckets)) : NULL;
        if (m->nbounds && !mt->buckets)
            rc = -ENOMEM;
        for (size_t i = 0; rc == 0 && i < m->nbounds; i++)
            mt->buckets[i] = (struct mars_metric_bucket){m->bounds[i], m->cumulative[i]};
    }
    if (rc == 0 && m->kind == MARS_METRIC_SUMMARY) {
        mt->count = m->count;
        rc = copy_summary(a, m, mt);
    }
    struct mars_slice msg = {0};
    rc = rc ? rc : render(b, m, &msg);
    if (rc)
        return rc;
    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    ev->kind = MARS_EVENT_METRIC;
    ev->metric = mt;
    ev->msg = msg;
    ev->ts_ns = ts_ns;
    ev->source = b->source;
    b->bytes += msg.len;
    return 0;
}
