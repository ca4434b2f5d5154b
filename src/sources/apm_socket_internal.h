/*
 * apm_socket_internal.h - what the files of the `apm_socket` source share: apm_socket.c
 * (options, listener, connections, register replies) and apm_socket_records.c (decoding
 * records into metric events, uri templates, series limits). See apm_socket.c for how the
 * source works.
 *
 * Thread: the source's worker.
 */
#ifndef MARS_SOURCE_APM_SOCKET_INTERNAL_H
#define MARS_SOURCE_APM_SOCKET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "component.h"

#define APM_MAX_BOUNDS 32

enum apm_protocol { APM_PROTO_SKYAPM, APM_PROTO_RIG, APM_PROTO_AUTO };

/* Why a record was refused: the `reason` label of mars_apm_socket_bad_records_total. */
enum apm_bad {
    APM_BAD_TYPE,        /* first byte not 0, 1 or 2 */
    APM_BAD_JSON,        /* not a JSON object */
    APM_BAD_TOO_LONG,    /* longer than max_record_bytes */
    APM_BAD_MISSING,     /* a required field is missing or has the wrong type */
    APM_BAD_NAME,        /* a business metric name that is not a valid metric name */
    APM_BAD_PARTIAL,     /* the connection closed inside a record */
    APM_BAD_UNSUPPORTED, /* no longer produced (segments and summaries are taken); kept so
                          * the label set of the metric does not change */
    APM_BAD__COUNT
};

struct apm_conf {
    char *path;
    char *mode;
    char *group;
    int64_t max_connections;
    uint64_t max_record_bytes;
    int64_t idle_timeout;
    int protocol; /* enum apm_protocol */
    char *skywalking;
    struct mars_strlist latency_buckets;
    struct mars_strlist size_buckets;
    struct mars_strlist uri_patterns;
    int64_t max_series;
};

/* A uri pattern: a path whose segments are literal or "*" / "{name}" (any one segment),
 * mapped to itself as the template. */
struct apm_pattern {
    char **seg;
    size_t nseg, segcap;
    const char *tmpl;
};

/* The series seen so far, for max_series per metric name. Open addressing on 64-bit
 * hashes of name + labels (a collision counts two series as one: harmless for a bound). */
struct apm_series_set {
    uint64_t *slots; /* 0 = empty */
    size_t cap, n;
    struct apm_name_count {
        char *name;
        int64_t n;
    } * names;
    size_t nnames, names_cap;
};

struct apm_records {
    const struct apm_conf *conf;
    const char *id;
    double lat_bounds[APM_MAX_BOUNDS], size_bounds[APM_MAX_BOUNDS];
    size_t nlat, nsize;
    struct apm_pattern *patterns;
    size_t npatterns;
    struct apm_series_set series;
    struct mars_mseries *bad[APM_BAD__COUNT];
    struct mars_mseries *overflow, *records;
    char *scratch; /* decoded strings */
    size_t scap;
};

/* Parses buckets and patterns of conf. Returns 0 or -EINVAL / -ENOMEM. */
int mars_apm_records_init(struct apm_records *r, const struct apm_conf *conf, const char *id,
                          struct mars_obs *obs);
void mars_apm_records_fini(struct apm_records *r);
/* Parses a bucket list ("0.005", "1") into bounds (at most APM_MAX_BOUNDS, increasing).
 * Returns the count, or -1 with *bad the index of the bad entry. */
int mars_apm_parse_bounds(const struct mars_strlist *l, double *out, size_t *bad);
/* Handles a `1` (trace) or `2` (business metric) record body (after the type byte),
 * appending metric events to b. Returns 0, or an enum apm_bad + 1 when refused. */
int mars_apm_record_trace(struct apm_records *r, struct mars_batch *b, const char *s, size_t n,
                          int64_t ts);
int mars_apm_record_biz(struct apm_records *r, struct mars_batch *b, const char *s, size_t n,
                        int64_t ts);
/* Counts a refused record. */
void mars_apm_bad(struct apm_records *r, enum apm_bad why);
const char *mars_apm_bad_name(enum apm_bad why);
/* Writes the template of a url (scheme and host removed, query and fragment dropped,
 * numeric and id-like segments collapsed to {id}, uri_patterns applied) into out. */
void mars_apm_uri_template(const struct apm_records *r, const char *url, size_t n, char *out,
                           size_t cap);

#endif
