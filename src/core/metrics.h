/*
 * metrics.h - mars's metrics registry and the Prometheus text exposition (format 0.0.4).
 *
 * Families (name, help, type, label names, histogram bounds) hold series (one per set of
 * label values, at most `max_series` per family so labels stay bounded). Every series keeps
 * one block of cells per shard: shard k is written only by thread k (a worker), with a
 * relaxed load and store and no read-modify-write, so the hot path never contends on a
 * cache line; the extra MARS_METRICS_SHARED shard takes atomic adds from any thread for
 * slow paths. A scrape merges the shards (sums for counters, gauges and histogram cells).
 *
 * Collectors are callbacks run at scrape time that report values kept elsewhere (the
 * engine's per-component counters), so the same visitor sees registry series and
 * collected ones. A visitor gets one family() call per family, then its samples; the text
 * writer (mars_prom_text) is one visitor, the internal_metrics source another.
 *
 * Thread: family and series creation, collector registration and collection take the
 * registry's mutex (any thread). mars_mseries_add/set/observe with a shard index belong to
 * that shard's thread; with MARS_METRICS_SHARED to any thread. Series pointers stay valid
 * until mars_metrics_destroy().
 */
#ifndef MARS_METRICS_H
#define MARS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct mars_metrics;
struct mars_mfamily;
struct mars_mseries;

/* Registry families are counters, gauges or histograms; summaries only pass through
 * visitors (the prometheus_exporter sink's). */
enum mars_mtype { MARS_MT_COUNTER, MARS_MT_GAUGE, MARS_MT_HISTOGRAM, MARS_MT_SUMMARY };

#define MARS_METRICS_SHARED             UINT32_MAX /* shard index for writers on any thread */
#define MARS_METRICS_MAX_LABELS         8
#define MARS_METRICS_MAX_BOUNDS         32
#define MARS_METRICS_DEFAULT_MAX_SERIES 1000

struct mars_mfamily_desc {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total */
    const char *help; /* one line */
    enum mars_mtype type;
    const char *const *labels; /* NULL-terminated label names, or NULL for none */
    const double *bounds;      /* histograms: strictly increasing upper bounds (+Inf implied) */
    size_t nbounds;
    uint32_t max_series; /* 0: MARS_METRICS_DEFAULT_MAX_SERIES */
};

/* Returns an owned registry with `nshards` single-writer shards, or NULL. */
struct mars_metrics *mars_metrics_create(unsigned nshards);
void mars_metrics_destroy(struct mars_metrics *m);
unsigned mars_metrics_shards(const struct mars_metrics *m);

/* Registers a family (strings are copied). Registering the same name again with the same
 * type returns the existing family. Returns NULL (logged) on an invalid name, a clash or
 * -ENOMEM. Borrowed from the registry. */
struct mars_mfamily *mars_metrics_family(struct mars_metrics *m, const struct mars_mfamily_desc *d);
/* The series for these label values (one per label name, copied), created on first use.
 * NULL when the family already has max_series series (counted, logged once) or on -ENOMEM;
 * every update function accepts NULL and does nothing. */
struct mars_mseries *mars_mfamily_series(struct mars_mfamily *f, const char *const *values);

/* Counter: adds n. Gauge: adds n (as a signed delta when cast). Histogram: not allowed. */
void mars_mseries_add(struct mars_mseries *s, unsigned shard, uint64_t n);
/* Gauge: this shard's part becomes v (the scrape shows the sum over shards). */
void mars_mseries_set(struct mars_mseries *s, unsigned shard, double v);
/* Histogram: counts one observation of v. */
void mars_mseries_observe(struct mars_mseries *s, unsigned shard, double v);

/* ---- collection ---- */

struct mars_mfamily_info {
    const char *name, *help;
    enum mars_mtype type;
};

struct mars_mlabels {
    const char *const *names;
    const char *const *values;
    size_t n;
};

/* Embed in your own struct and recover it with MARS_CONTAINER_OF (core/ev.h). */
struct mars_mvisitor {
    void (*family)(struct mars_mvisitor *v, const struct mars_mfamily_info *f);
    /* counter or gauge sample of the current family */
    void (*value)(struct mars_mvisitor *v, const struct mars_mlabels *l, double x);
    /* histogram sample: cumulative[i] observations <= bounds[i]; count includes +Inf */
    void (*histogram)(struct mars_mvisitor *v, const struct mars_mlabels *l, const double *bounds,
                      const uint64_t *cumulative, size_t nbounds, uint64_t count, double sum);
    /* summary sample: values[i] is quantile qs[i] (NaN when unknown); may be NULL in
     * visitors that never see summaries (the registry has none) */
    void (*summary)(struct mars_mvisitor *v, const struct mars_mlabels *l, const double *qs,
                    const double *values, size_t nq, uint64_t count, double sum);
};

/* fn reports families and samples to v at every collection; it runs with the registry
 * locked, so it must not create families or series. arg is borrowed. */
typedef void (*mars_metrics_collector)(struct mars_mvisitor *v, void *arg);
int mars_metrics_add_collector(struct mars_metrics *m, mars_metrics_collector fn, void *arg);

/* Visits every registry family (in registration order; families without series are still
 * announced), then runs the collectors. */
void mars_metrics_collect(struct mars_metrics *m, struct mars_mvisitor *v);

/* ---- Prometheus text format 0.0.4 ---- */

#define MARS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A visitor that appends exposition text to `out`: HELP and TYPE once per family, label
 * values escaped, histogram _bucket/_sum/_count series, summary {quantile=}/_sum/_count
 * series. Families must not repeat. */
struct mars_prom_text {
    struct mars_mvisitor v;
    struct evbuffer *out;
    const char *family;
    enum mars_mtype type;
    int err; /* -ENOMEM once an append failed */
};
void mars_prom_text_init(struct mars_prom_text *t, struct evbuffer *out);
/* Collects m as text into out. Returns 0 or -ENOMEM. */
int mars_metrics_write_text(struct mars_metrics *m, struct evbuffer *out);

/* Name checks of the exposition format. */
bool mars_metric_name_valid(const char *s, size_t n);
bool mars_label_name_valid(const char *s, size_t n);
/* Appends s escaped for a label value (\\, \", \n) or HELP text (\\, \n). Returns 0 or -1. */
int mars_prom_escape(struct evbuffer *out, const char *s, size_t n, bool label_value);
/* The same into out, which has room for 2n bytes. Returns the bytes written. */
size_t mars_prom_escape_to(char *out, const char *s, size_t n, bool label_value);
/* Formats a sample value as the format wants it: integers exactly, NaN, +Inf, -Inf. len
 * must be at least 32. Returns the length written. */
size_t mars_prom_format_value(double x, char *buf, size_t len);
/* v in decimal into buf (room for 20 bytes). Returns the length written. */
size_t mars_fmt_u64(char *buf, uint64_t v);

#endif
