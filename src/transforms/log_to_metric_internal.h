/*
 * log_to_metric_internal.h - shared by log_to_metric.c (options, checks, descriptor) and
 * log_to_metric_series.c (series tracking and the data path).
 *
 * Thread: one instance per worker.
 */
#ifndef MARS_LOG_TO_METRIC_INTERNAL_H
#define MARS_LOG_TO_METRIC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component.h"

/* One entry of the `metrics` option. */
struct mars_l2m_metric_conf {
    int type; /* enum mars_metric_kind */
    char *name;
    char *help;
    char *field;
    bool increment_by_value;
    struct mars_strmap labels;
    char *condition;
    struct mars_strlist buckets; /* histogram upper bounds, increasing numbers */
};

/* Reads the buckets option into out (n doubles). Returns 0, or -EINVAL when an entry is not
 * a finite number or they do not increase (*bad is then its index). */
int mars_l2m_buckets(const struct mars_strlist *l, double *out, size_t *bad);

struct mars_l2m;

/* Compiles the n metric definitions (borrowed from the config for the instance's life).
 * Returns an owned instance or NULL. */
struct mars_l2m *mars_l2m_create(struct mars_transform *t, const struct mars_l2m_metric_conf *m,
                                 size_t n, uint32_t max_series);
void mars_l2m_destroy(struct mars_l2m *l);
/* Takes b; emits one batch of metric events made from it. */
void mars_l2m_batch(struct mars_l2m *l, struct mars_batch *b);

#endif
