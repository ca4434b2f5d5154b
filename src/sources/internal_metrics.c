/*
 * internal_metrics.c - the `internal_metrics` source: mars's own metrics (everything
 * /metrics shows: the DESIGN §7 component families, buffer gauges, batch latency, build
 * info) as metric events every `interval`, so they can be shipped anywhere, for example to
 * a prometheus_exporter sink or a file.
 *
 * How: a timer on the source's worker collects the engine's metrics registry through a
 * visitor that appends one metric event per sample to a fresh batch (names, labels and
 * buckets copied into the batch arena, see metric_event.h), then emits the batch. A tick
 * that finds the source paused by backpressure is skipped: metrics are snapshots, the next
 * one supersedes it. Families get a `namespace` prefix instead of "mars" when set.
 *
 * Thread: the source's worker; the collection reads other workers' counters with relaxed
 * atomic loads (observe.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ev.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"

struct internal_metrics_conf {
    int64_t interval;
    char *namespace_;
};

#define OFF(f) offsetof(struct internal_metrics_conf, f)
static const struct mars_opt internal_metrics_options[] = {
    {.name = "interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(interval),
     .def = "10s",
     .min = 10000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "How often a snapshot of mars's metrics is emitted."},
    {.name = "namespace",
     .type = MARS_OPT_STRING,
     .offset = OFF(namespace_),
     .def = "mars",
     .desc = "Prefix of the metric names in place of \"mars\" (mars_workers becomes "
             "<namespace>_workers)."},
    {.name = NULL},
};

struct internal_metrics {
    struct mars_source *src;
    const struct internal_metrics_conf *conf;
    struct mars_ev_op timer;
    bool armed, stopping;
};

/* Collection state: the visitor appends to one batch. */
struct internal_metrics_visit {
    struct mars_mvisitor v;
    struct internal_metrics *im;
    struct mars_batch *b;
    const char *family, *help;
    enum mars_mtype type;
    char name[256];
    int64_t ts;
    int err;
};

static int internal_metrics_check(void *conf, const struct mars_cfg_node *node,
                                  struct mars_diag *diag)
{
    const struct internal_metrics_conf *c = conf;
    if (c->namespace_ && !mars_metric_name_valid(c->namespace_, strlen(c->namespace_))) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "namespace", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "option 'namespace': '%s' is not a valid metric name prefix", c->namespace_);
        return -EINVAL;
    }
    return 0;
}

static void on_family(struct mars_mvisitor *v, const struct mars_mfamily_info *f)
{
    struct internal_metrics_visit *x = MARS_CONTAINER_OF(v, struct internal_metrics_visit, v);
    const char *ns = x->im->conf->namespace_;
    x->type = f->type;
    x->help = f->help;
    if (strncmp(f->name, "mars_", 5) == 0 && strcmp(ns, "mars") != 0)
        snprintf(x->name, sizeof(x->name), "%s_%s", ns, f->name + 5);
    else
        snprintf(x->name, sizeof(x->name), "%s", f->name);
}

static void push(struct internal_metrics_visit *x, const struct mars_metric_sample *m)
{
    if (!x->err)
        x->err = mars_batch_push_metric(x->b, m, x->ts);
}

static void on_value(struct mars_mvisitor *v, const struct mars_mlabels *l, double val)
{
    struct internal_metrics_visit *x = MARS_CONTAINER_OF(v, struct internal_metrics_visit, v);
    push(x, &(struct mars_metric_sample){.name = x->name,
                                         .help = x->help,
                                         .kind = x->type == MARS_MT_COUNTER ? MARS_METRIC_COUNTER
                                                                            : MARS_METRIC_GAUGE,
                                         .label_names = l->names,
                                         .label_values = l->values,
                                         .nlabels = l->n,
                                         .value = val});
}

static void on_histogram(struct mars_mvisitor *v, const struct mars_mlabels *l,
                         const double *bounds, const uint64_t *cum, size_t nbounds, uint64_t count,
                         double sum)
{
    struct internal_metrics_visit *x = MARS_CONTAINER_OF(v, struct internal_metrics_visit, v);
    push(x, &(struct mars_metric_sample){.name = x->name,
                                         .help = x->help,
                                         .kind = MARS_METRIC_HISTOGRAM,
                                         .label_names = l->names,
                                         .label_values = l->values,
                                         .nlabels = l->n,
                                         .value = sum,
                                         .bounds = bounds,
                                         .cumulative = cum,
                                         .nbounds = nbounds,
                                         .count = count});
}

static void internal_metrics_acked(struct mars_batch *b, bool delivered)
{
    struct internal_metrics *im = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(im->src)->acked_events, b->ack.a);
}

static void snapshot(struct internal_metrics *im)
{
    struct timespec ts;
    struct mars_batch *b = mars_source_batch(im->src, 256);
    if (!b) {
        mars_stat_add(&mars_source_stats(im->src)->errors[MARS_ERR_MEMORY], 1);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    struct internal_metrics_visit x = {
        .v = {.family = on_family, .value = on_value, .histogram = on_histogram},
        .im = im,
        .b = b,
        .ts = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
    };
    mars_metrics_collect(mars_obs_metrics(mars_source_obs(im->src)), &x.v);
    if (x.err) {
        mars_stat_add(&mars_source_stats(im->src)->errors[MARS_ERR_MEMORY], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(im->src),
                    "out of memory building a "
                    "metrics snapshot of %u events; dropped",
                    b->n);
        mars_batch_release(b);
        return;
    }
    b->ack = (struct mars_batch_ack){.fn = internal_metrics_acked, .ctx = im, .a = b->n};
    mars_source_emit(im->src, b);
}

static void on_tick(struct mars_ev_op *op, int res);

static void arm(struct internal_metrics *im, int64_t ns)
{
    mars_ev_prep_timer(&im->timer, ns, on_tick, im);
    im->armed = mars_ev_submit(mars_source_loop(im->src), &im->timer) == 0;
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct internal_metrics *im = op->data;
    im->armed = false;
    if (res == -ECANCELED || im->stopping) {
        mars_source_finished(im->src);
        return;
    }
    if (!mars_source_paused(im->src))
        snapshot(im);
    if (mars_source_once(im->src)) {
        mars_source_finished(im->src);
        return;
    }
    arm(im, im->conf->interval);
    if (!im->armed)
        mars_source_finished(im->src);
}

static int internal_metrics_init(struct mars_source *s)
{
    struct internal_metrics *im = calloc(1, sizeof(*im));
    if (!im)
        return -ENOMEM;
    im->src = s;
    im->conf = mars_source_conf(s);
    mars_source_set_state(s, im);
    return 0;
}

static int internal_metrics_start(struct mars_source *s)
{
    struct internal_metrics *im = mars_source_state(s);
    /* --once: one snapshot at once; otherwise the first after one interval */
    arm(im, mars_source_once(s) ? 0 : im->conf->interval);
    return im->armed ? 0 : -EIO;
}

static void internal_metrics_stop(struct mars_source *s)
{
    struct internal_metrics *im = mars_source_state(s);
    im->stopping = true;
    if (im->armed)
        mars_ev_cancel(mars_source_loop(s), &im->timer);
    else
        mars_source_finished(s);
}

static void internal_metrics_destroy(struct mars_source *s)
{
    free(mars_source_state(s));
}

const struct mars_component_desc mars_source_internal_metrics = {
    .name = "internal_metrics",
    .description = "Emits mars's own metrics (the /metrics families) as metric events on an "
                   "interval.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_METRIC,
    .options = internal_metrics_options,
    .conf_size = sizeof(struct internal_metrics_conf),
    .check = internal_metrics_check,
    .source = {.init = internal_metrics_init,
               .start = internal_metrics_start,
               .stop = internal_metrics_stop,
               .destroy = internal_metrics_destroy},
};
