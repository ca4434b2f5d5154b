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
 * Thread: each worker has its own instance; counts are per worker (merged when read).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/metrics.h"
#include "log_to_metric_internal.h"
#include "component.h"

static const char *const kind_names[] = {"counter", "gauge", "histogram", NULL};

#define MOFF(f) offsetof(struct mars_l2m_metric_conf, f)
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

struct l2m_conf {
    struct mars_seclist metrics;
    int64_t max_series;
};

#define OFF(f) offsetof(struct l2m_conf, f)
static const struct mars_opt l2m_options[] = {
    {.name = "metrics",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(metrics),
     .flags = MARS_OPT_REQUIRED,
     .sub = metric_options,
     .sub_size = sizeof(struct mars_l2m_metric_conf),
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

static int check_metric(const struct mars_l2m_metric_conf *mc, const struct mars_cfg_node *item,
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
    if (mc->buckets.n > 256 || mars_l2m_buckets(&mc->buckets, bounds, &bad)) {
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

static int l2m_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct l2m_conf *c = conf;
    const struct mars_l2m_metric_conf *m = c->metrics.items;
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

static int l2m_init(struct mars_transform *t)
{
    const struct l2m_conf *c = mars_transform_conf(t);
    struct mars_l2m *l =
        mars_l2m_create(t, c->metrics.items, c->metrics.n, (uint32_t)c->max_series);
    if (!l)
        return -ENOMEM;
    mars_transform_set_state(t, l);
    return 0;
}

static void l2m_process(struct mars_transform *t, struct mars_batch *b)
{
    mars_l2m_batch(mars_transform_state(t), b);
}

static void l2m_destroy(struct mars_transform *t)
{
    mars_l2m_destroy(mars_transform_state(t));
}

const struct mars_component_desc mars_transform_log_to_metric = {
    .name = "log_to_metric",
    .description = "Makes counters, gauges and histograms from log events, with label "
                   "templates and a cap on the number of series.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_METRIC,
    .accepts = MARS_DATA_LOG,
    .options = l2m_options,
    .conf_size = sizeof(struct l2m_conf),
    .check = l2m_check,
    .transform = {.init = l2m_init, .process = l2m_process, .destroy = l2m_destroy},
};
