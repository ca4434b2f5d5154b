/*
 * skywalking_meter.c - metric events as SkyWalking meters (meters: true): one
 * MeterDataCollection per request for MeterReportService/collectBatch.
 *
 * Counters and gauges become MeterSingleValue (name, labels, value). Histograms become
 * MeterHistogram, whose buckets are SkyWalking's: each has a lower bound and the count of
 * observations in it alone (not cumulative). mars's buckets are Prometheus's cumulative
 * upper bounds (le), so the first SkyWalking bucket starts at negative infinity, bucket i
 * starts at le[i-1] and counts count[i] - count[i-1], and the last starts at the highest
 * le and holds what is above it. The first message names the service and instance; the
 * others leave them empty, which the OAP reads as "the same".
 *
 * Summaries have no SkyWalking form (a MeterHistogram needs buckets, and quantiles over a
 * window cannot be added up by the OAP): they are skipped, and counted by the caller as
 * discarded on purpose.
 *
 * The OAP keeps only meters a meter-analyzer (MAL) rule names (docs/sinks.md).
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/skywalking_internal.h"
#include "skywalking/meter.pb-c.h"

/* Per-request storage: the message tree protobuf-c packs, freed right after packing. */
struct meter_tree {
    Skywalking__V3__MeterData *md, **mdp;
    Skywalking__V3__MeterSingleValue *sv;
    Skywalking__V3__MeterHistogram *hg;
    Skywalking__V3__Label *lab, **labp;
    Skywalking__V3__MeterBucketValue *bv, **bvp;
    char *strs; /* NUL-terminated copies of names and label texts */
    size_t nstr;
};

static void tree_free(struct meter_tree *t)
{
    free(t->md);
    free(t->mdp);
    free(t->sv);
    free(t->hg);
    free(t->lab);
    free(t->labp);
    free(t->bv);
    free(t->bvp);
    free(t->strs);
}

static char *copy(struct meter_tree *t, struct mars_slice s)
{
    char *p = t->strs + t->nstr;
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    t->nstr += (size_t)s.len + 1;
    return p;
}

static bool is_meter(const struct mars_event *ev)
{
    return ev->kind == MARS_EVENT_METRIC && ev->metric && ev->metric->kind != MARS_METRIC_SUMMARY;
}

int mars_skywalking_meter_encode(struct sw_sink *sw, const struct mars_sink_req *r,
                                 struct mars_grpc_buf *b, uint64_t *n, uint64_t *skipped)
{
    size_t nm = 0, nl = 0, nb = 0, ns = 0;
    *skipped = 0;
    for (uint32_t i = 0; i < r->n; i++)
        for (uint32_t j = 0; j < r->batches[i]->n; j++) {
            const struct mars_event *ev = &r->batches[i]->ev[j];
            *skipped += ev->kind == MARS_EVENT_METRIC && !is_meter(ev);
            if (!is_meter(ev))
                continue;
            const struct mars_metric *m = ev->metric;
            nm++;
            nl += m->nlabels;
            nb += m->kind == MARS_METRIC_HISTOGRAM ? m->nbuckets + 1 : 0;
            ns += m->name.len + 1;
            for (uint32_t k = 0; k < m->nlabels; k++)
                ns += m->labels[k].name.len + m->labels[k].value.len + 2;
        }
    *n = nm;
    if (!nm)
        return 0;
    struct meter_tree t = {
        .md = calloc(nm, sizeof(*t.md)),
        .mdp = calloc(nm, sizeof(*t.mdp)),
        .sv = calloc(nm, sizeof(*t.sv)),
        .hg = calloc(nm, sizeof(*t.hg)),
        .lab = calloc(nl + 1, sizeof(*t.lab)),
        .labp = calloc(nl + 1, sizeof(*t.labp)),
        .bv = calloc(nb + 1, sizeof(*t.bv)),
        .bvp = calloc(nb + 1, sizeof(*t.bvp)),
        .strs = malloc(ns + 1),
    };
    int rc = -ENOMEM;
    if (!t.md || !t.mdp || !t.sv || !t.hg || !t.lab || !t.labp || !t.bv || !t.bvp || !t.strs)
        goto out;
    size_t im = 0, il = 0, ib = 0;
    for (uint32_t i = 0; i < r->n; i++)
        for (uint32_t j = 0; j < r->batches[i]->n; j++) {
            const struct mars_event *ev = &r->batches[i]->ev[j];
            if (!is_meter(ev))
                continue;
            const struct mars_metric *m = ev->metric;
            Skywalking__V3__MeterData *d = &t.md[im];
            *d = (Skywalking__V3__MeterData)SKYWALKING__V3__METER_DATA__INIT;
            d->service = im == 0 ? sw->conf->service : "";
            d->serviceinstance = im == 0 ? sw->instance : "";
            d->timestamp = ev->ts_ns > 0 ? ev->ts_ns / 1000000 : mars_skywalking_now_ms();
            Skywalking__V3__Label **labels = &t.labp[il];
            for (uint32_t k = 0; k < m->nlabels; k++, il++) {
                t.lab[il] = (Skywalking__V3__Label)SKYWALKING__V3__LABEL__INIT;
                t.lab[il].name = copy(&t, m->labels[k].name);
                t.lab[il].value = copy(&t, m->labels[k].value);
                t.labp[il] = &t.lab[il];
            }
            char *name = copy(&t, m->name);
            if (m->kind == MARS_METRIC_HISTOGRAM) {
                Skywalking__V3__MeterHistogram *h = &t.hg[im];
                *h = (Skywalking__V3__MeterHistogram)SKYWALKING__V3__METER_HISTOGRAM__INIT;
                h->name = name;
                h->labels = labels;
                h->n_labels = m->nlabels;
                h->values = &t.bvp[ib];
                uint64_t prev = 0;
                for (uint32_t k = 0; k <= m->nbuckets; k++, ib++) {
                    Skywalking__V3__MeterBucketValue *v = &t.bv[ib];
                    *v = (Skywalking__V3__MeterBucketValue)SKYWALKING__V3__METER_BUCKET_VALUE__INIT;
                    uint64_t cum = k < m->nbuckets ? m->buckets[k].count : m->count;
                    if (k == 0)
                        v->isnegativeinfinity = true;
                    else
                        v->bucket = m->buckets[k - 1].le;
                    v->count = (int64_t)(cum >= prev ? cum - prev : 0);
                    prev = cum;
                    t.bvp[ib] = v;
                }
                h->n_values = m->nbuckets + 1;
                d->metric_case = SKYWALKING__V3__METER_DATA__METRIC_HISTOGRAM;
                d->histogram = h;
            } else {
                Skywalking__V3__MeterSingleValue *s = &t.sv[im];
                *s = (Skywalking__V3__MeterSingleValue)SKYWALKING__V3__METER_SINGLE_VALUE__INIT;
                s->name = name;
                s->labels = labels;
                s->n_labels = m->nlabels;
                s->value = m->value;
                d->metric_case = SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE;
                d->singlevalue = s;
            }
            t.mdp[im++] = d;
        }
    Skywalking__V3__MeterDataCollection col = SKYWALKING__V3__METER_DATA_COLLECTION__INIT;
    col.meterdata = t.mdp;
    col.n_meterdata = im;
    rc = mars_grpc_buf_add(b, &col.base);
out:
    tree_free(&t);
    return rc;
}
