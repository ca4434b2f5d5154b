/*
 * event.h - what flows through a pipeline: log lines and metric samples.
 *
 * A log event is a slice of the chunk its bytes were read into (no copy), a timestamp and a
 * pointer to lazily parsed fields. Its bytes stay valid as long as the batch that holds it
 * (which holds the chunk references). A metric event points at a struct mars_metric in the
 * batch arena. Events are small and copied by value inside batch arrays.
 */
#ifndef MARS_EVENT_H
#define MARS_EVENT_H

#include <stdint.h>

struct mars_slice {
    const char *ptr;
    uint32_t len;
};

enum mars_event_kind { MARS_EVENT_LOG = 0, MARS_EVENT_METRIC = 1 };

enum {
    /* The byte right after msg is a '\n' in the same buffer, so an encoder may write the line
     * and its newline as one contiguous span (and merge neighbouring lines into one iovec). */
    MARS_EVF_NL_FOLLOWS = 1u << 0,
    /* The line was cut at max_line_bytes (split or truncated). */
    MARS_EVF_OVERSIZE = 1u << 1,
    /* The line had no newline at end of input. */
    MARS_EVF_PARTIAL = 1u << 2,
    /* The `message` field was removed (a parser took the line apart; see fields.h). Text
     * encodings still write msg, the raw line; JSON leaves "message" out. */
    MARS_EVF_NO_MESSAGE = 1u << 3,
    /* msg is known to be valid UTF-8: the source validated the bytes it was cut from (the
     * JSON parser then skips its own per-string checks). Whoever changes msg clears it;
     * whoever joins messages keeps it only when every piece had it. */
    MARS_EVF_UTF8 = 1u << 4,
    /* msg is a trace segment: a SkyAPM `1` record's JSON (shared/protocols.md §14), made by
     * the apm_socket source. The skywalking sink forwards it as a trace segment; to every
     * other component it is a log line holding that JSON. Whoever changes msg clears it. */
    MARS_EVF_TRACE = 1u << 5,
};

enum mars_metric_kind {
    MARS_METRIC_COUNTER,
    MARS_METRIC_GAUGE,
    MARS_METRIC_HISTOGRAM,
    MARS_METRIC_SUMMARY
};

struct mars_metric_label {
    struct mars_slice name, value;
};

/* Summary quantile: q in [0, 1] (increasing along the array) and its value. */
struct mars_metric_quantile {
    double q, value;
};

/* Histogram bucket: observations <= le, cumulative (le increases along the array). */
struct mars_metric_bucket {
    double le;
    uint64_t count;
};

struct mars_metric {
    struct mars_slice name;
    enum mars_metric_kind kind;
    double value; /* counter, gauge: the value; histogram, summary: the sum of observations */
    uint32_t nlabels;
    struct mars_metric_label *labels;
    /* histogram, summary: observations (for a histogram, the implied +Inf bucket) */
    uint64_t count;
    /* histogram only: the finite buckets */
    uint32_t nbuckets;
    struct mars_metric_bucket *buckets;
    /* summary only: the quantiles. An absolute summary gives their values; an incremental
     * one names the quantiles its aggregator should estimate (values NaN) and carries its
     * `count` observations themselves, whose sum is `value`. */
    uint32_t nquantiles;
    struct mars_metric_quantile *quantiles;
    double *observations;
    struct mars_slice help; /* optional one-line description; empty when unknown */
    /* 0: value (and buckets, quantiles) are the series' current absolute state
     * (internal_metrics, health_check); 1: deltas to add to it (log_to_metric counters,
     * apm_socket counters, histograms and summaries). */
    uint8_t incremental;
};

struct mars_fields; /* parsed fields: model/fields.h */

struct mars_event {
    struct mars_slice msg;
    int64_t ts_ns;   /* wall clock (CLOCK_REALTIME) nanoseconds; 0 = unknown */
    uint8_t kind;    /* enum mars_event_kind */
    uint8_t flags;   /* MARS_EVF_* */
    uint16_t source; /* index of the source node that made it */
    uint32_t reserved;
    struct mars_fields *fields; /* NULL until a parser runs */
    struct mars_metric *metric; /* kind == METRIC */
    /* Path of the file the line was read from (file sources), NUL-terminated, in the batch
     * arena; NULL otherwise. Read as the field `file`. */
    const char *file;
    /* Name of the machine whose log this is (sources that read this machine's logs, when
     * host.add is on; the sender's for events received over the mars protocol),
     * NUL-terminated and living as long as the batch; NULL otherwise. Read as the field
     * `host` unless a root member of that name exists. */
    const char *host;
};

#endif
