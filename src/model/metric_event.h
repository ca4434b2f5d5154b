/*
 * metric_event.h - building metric events (struct mars_metric) inside a batch, for the
 * sources that produce them (internal_metrics, health_check).
 *
 * Everything an event points at (name, labels, buckets, help, and a text rendering in
 * `msg`) is copied into the batch arena, so it lives exactly as long as the batch. The text
 * rendering is the sample as a Prometheus exposition line, `name{l="v"} value` (histograms
 * and summaries: `name_count{...} N sum=S`), which is what text encodings and the capture
 * sink show.
 *
 * Thread: the batch's worker.
 */
#ifndef MARS_METRIC_EVENT_H
#define MARS_METRIC_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "model/batch.h"

struct mars_metric_sample {
    const char *name;
    const char *help; /* may be NULL */
    enum mars_metric_kind kind;
    const char *const *label_names;
    const char *const *label_values;
    size_t nlabels;
    double value; /* counter, gauge; histogram: sum */
    /* histograms */
    const double *bounds;
    const uint64_t *cumulative;
    size_t nbounds;
    uint64_t count; /* histograms, summaries */
    /* summaries: the quantiles (increasing, in [0, 1]) with their values (NULL: unknown,
     * NaN), and for an incremental summary its `count` observations */
    const double *quantiles;
    const double *quantile_values;
    size_t nquantiles;
    const double *observations;
};

/* Appends one metric event stamped ts_ns (wall clock). Returns 0 or -ENOMEM. */
int mars_batch_push_metric(struct mars_batch *b, const struct mars_metric_sample *m, int64_t ts_ns);

#endif
