/*
 * apm_socket_records.c - the `apm_socket` source's record decoding: trace records (`1`)
 * become HTTP request and response size histograms, business metric records (`2`) become
 * counters, gauges and histograms; uri templating and the per-name series bound live here.
 *
 * Every sample is one metric event in the batch of the read it came from (names, labels
 * and buckets copied into the batch arena by mars_batch_push_metric). Counters and
 * histograms are sent as increments (mars_metric.incremental), so a metric sink such as
 * prometheus_exporter adds them up and the exposition shows exact counts and sums; gauges
 * are absolute (a gauge sets).
 *
 * Cardinality: `uri` is a template (see mars_apm_uri_template), and each metric name may
 * have at most `max_series` label sets; a record that would add one more is dropped from
 * that metric and counted (mars_apm_socket_series_overflow_total).
 *
 * Thread: the source's worker.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
#include "apm_socket_internal.h"

#define JSON_DEPTH 64
#define STR_MAX    1024 /* longest label value kept (longer ones are cut) */

static const char *const bad_names[APM_BAD__COUNT] = {
    "unknown_type", "bad_json", "too_long", "missing_field", "bad_name", "partial", "unsupported",
};

const char *mars_apm_bad_name(enum apm_bad why)
{
    return why < APM_BAD__COUNT ? bad_names[why] : "unknown";
}

void mars_apm_bad(struct apm_records *r, enum apm_bad why)
{
    mars_mseries_add(r->bad[why], MARS_METRICS_SHARED, 1);
}

/* ---- configuration ---- */

int mars_apm_parse_bounds(const struct mars_strlist *l, double *out, size_t *bad)
{
    if (l->n > APM_MAX_BOUNDS) {
        *bad = APM_MAX_BOUNDS;
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        char *end;
        out[i] = strtod(l->v[i], &end);
        if (end == l->v[i] || *end || !isfinite(out[i]) || (i > 0 && out[i] <= out[i - 1])) {
            *bad = i;
            return -1;
        }
    }
    return (int)l->n;
}

static int pattern_parse(struct apm_pattern *p, const char *s)
{
    p->tmpl = s;
    for (const char *q = s; *q;) {
        while (*q == '/')
            q++;
        if (!*q)
            break;
        const char *e = strchr(q, '/');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        if (mars_grow(&p->seg, &p->segcap, p->nseg + 1, sizeof(*p->seg)) ||
            !(p->seg[p->nseg] = strndup(q, len)))
            return -ENOMEM;
        p->nseg++;
        q += len;
    }
    return 0;
}

int mars_apm_records_init(struct apm_records *r, const struct apm_conf *conf, const char *id,
                          struct mars_obs *obs)
{
    size_t bad;
    int n;
    memset(r, 0, sizeof(*r));
    r->conf = conf;
    r->id = id;
    if ((n = mars_apm_parse_bounds(&conf->latency_buckets, r->lat_bounds, &bad)) < 0)
        return -EINVAL;
    r->nlat = (size_t)n;
    if ((n = mars_apm_parse_bounds(&conf->size_buckets, r->size_bounds, &bad)) < 0)
        return -EINVAL;
    r->nsize = (size_t)n;
    if (conf->uri_patterns.n) {
        r->patterns = calloc(conf->uri_patterns.n, sizeof(*r->patterns));
        if (!r->patterns)
            return -ENOMEM;
        r->npatterns = conf->uri_patterns.n;
        for (size_t i = 0; i < r->npatterns; i++)
            if (pattern_parse(&r->patterns[i], conf->uri_patterns.v[i]))
                return -ENOMEM;
    }
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    if (!m)
        return 0;
    static const char *const bad_labels[] = {"component_id", "reason", NULL};
    static const char *const id_label[] = {"component_id", NULL};
    struct mars_mfamily *fb = mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "mars_apm_socket_bad_records_total",
                                       .help = "Records the apm_socket source refused, by reason.",
                                       .type = MARS_MT_COUNTER,
                                       .labels = bad_labels});
    struct mars_mfamily *fo = mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "mars_apm_socket_series_overflow_total",
                                       .help = "Samples dropped because their metric name had "
                                               "max_series label sets already.",
                                       .type = MARS_MT_COUNTER,
                                       .labels = id_label});
    struct mars_mfamily *fr = mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "mars_apm_socket_records_total",
                                       .help = "Records the apm_socket source accepted.",
                                       .type = MARS_MT_COUNTER,
                                       .labels = id_label});
    for (int i = 0; fb && i < APM_BAD__COUNT; i++)
        r->bad[i] = mars_mfamily_series(fb, (const char *const[]){id, bad_names[i]});
    if (fo)
        r->overflow = mars_mfamily_series(fo, (const char *const[]){id});
    if (fr)
        r->records = mars_mfamily_series(fr, (const char *const[]){id});
    return 0;
}

void mars_apm_records_fini(struct apm_records *r)
{
    for (size_t i = 0; i < r->npatterns; i++) {
        for (size_t j = 0; j < r->patterns[i].nseg; j++)
            free(r->patterns[i].seg[j]);
        free(r->patterns[i].seg);
    }
    free(r->patterns);
    free(r->series.slots);
    for (size_t i = 0; i < r->series.nnames; i++)
        free(r->series.names[i].name);
    free(r->series.names);
    free(r->scratch);
    memset(r, 0, sizeof(*r));
}

/* ---- series bound ---- */

static int64_t *name_count(struct apm_series_set *s, const char *name)
{
    for (size_t i = 0; i < s->nnames; i++)
        if (strcmp(s->names[i].name, name) == 0)
            return &s->names[i].n;
    if (mars_grow(&s->names, &s->names_cap, s->nnames + 1, sizeof(*s->names)))
        return NULL;
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    s->names[s->nnames] = (struct apm_name_count){.name = copy};
    return &s->names[s->nnames++].n;
}

static bool set_insert(struct apm_series_set *s, uint64_t h)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *v = calloc(cap, sizeof(*v));
        if (!v)
            return false;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t j = s->slots[i] & (cap - 1);
            while (v[j])
                j = (j + 1) & (cap - 1);
            v[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = v;
        s->cap = cap;
    }
    size_t j = h & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == h)
            return true;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = h;
    s->n++;
    return true;
}

static bool set_has(const struct apm_series_set *s, uint64_t h)
{
    if (!s->cap)
        return false;
    for (size_t j = h & (s->cap - 1); s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == h)
            return true;
    return false;
}

/* True when the series (name, labels) exists or may be added under max_series. */
static bool admit(struct apm_records *r, const struct mars_metric_sample *m)
{
    uint64_t h = mars_hash64(m->name, strlen(m->name));
    for (size_t i = 0; i < m->nlabels; i++) {
        h = h * 31 + mars_hash64(m->label_names[i], strlen(m->label_names[i]));
        h = h * 31 + mars_hash64(m->label_values[i], strlen(m->label_values[i]));
    }
    h = h ? h : 1;
    if (set_has(&r->series, h))
        return true;
    int64_t *cnt = name_count(&r->series, m->name);
    if (!cnt || *cnt >= r->conf->max_series) {
        mars_mseries_add(r->overflow, MARS_METRICS_SHARED, 1);
        MARS_LOG_RL(MARS_LOG_WARN, r->id,
                    "metric %s has max_series (%lld) series; new ones dropped", m->name,
                    (long long)r->conf->max_series);
        return false;
    }
    if (!set_insert(&r->series, h))
        return false;
    (*cnt)++;
    return true;
}

/* Appends m when admitted; counters and histograms as increments. */
static int push(struct apm_records *r, struct mars_batch *b, const struct mars_metric_sample *m,
                int64_t ts)
{
    if (!admit(r, m))
        return 0;
    int rc = mars_batch_push_metric(b, m, ts);
    if (rc == 0)
        b->ev[b->n - 1].metric->incremental = m->kind != MARS_METRIC_GAUGE;
    return rc;
}

static int push_observation(struct apm_records *r, struct mars_batch *b,
                            struct mars_metric_sample *m, const double *bounds, size_t nb, double v,
                            int64_t ts)
{
    uint64_t cum[APM_MAX_BOUNDS];
    for (size_t i = 0; i < nb; i++)
        cum[i] = v <= bounds[i];
    m->kind = MARS_METRIC_HISTOGRAM;
    m->value = v;
    m->bounds = bounds;
    m->cumulative = cum;
    m->nbounds = nb;
    m->count = 1;
    return push(r, b, m, ts);
}

/* ---- JSON helpers (on validated raw text) ---- */

static bool get(const char *s, size_t n, const char *key, struct mars_value *v)
{
    return mars_json_object_get(s, n, key, (uint32_t)strlen(key), v);
}

/* The string (or number / bool text) at key, decoded and cut to cap-1 bytes. */
static bool get_str(struct apm_records *r, const char *s, size_t n, const char *key, char *out,
                    size_t cap)
{
    struct mars_value v;
    uint32_t len;
    if (!get(s, n, key, &v) || v.kind == MARS_FIELD_NULL || v.kind == MARS_FIELD_OBJECT ||
        v.kind == MARS_FIELD_ARRAY)
        return false;
    const char *t = mars_value_text(&v, &r->scratch, &r->scap, &len);
    if (!t)
        return false;
    len = len < cap - 1 ? len : (uint32_t)(cap - 1);
    memcpy(out, t, len);
    out[len] = '\0';
    return true;
}

static bool get_num(const char *s, size_t n, const char *key, double *out)
{
    struct mars_value v;
    return get(s, n, key, &v) && mars_value_number(&v, out) && isfinite(*out);
}

/* A boolean given as true/false or 0/1 (or "true"/"1"). */
static bool get_bool(const char *s, size_t n, const char *key, bool *out)
{
    struct mars_value v;
    if (!get(s, n, key, &v))
        return false;
    if (v.kind == MARS_FIELD_BOOL) {
        *out = v.len == 4;
        return true;
    }
    double d;
    if (mars_value_number(&v, &d)) {
        *out = d != 0;
        return true;
    }
    if (v.kind == MARS_FIELD_STRING && (v.len == 4 || v.len == 5)) {
        *out = v.len == 4 && memcmp(v.ptr, "true", 4) == 0;
        return v.len == 4 ? *out : memcmp(v.ptr, "false", 5) == 0;
    }
    return false;
}

static bool get_object(const char *s, size_t n, const char *key, const char **p, size_t *len)
{
    struct mars_value v;
    if (!get(s, n, key, &v) || v.kind != MARS_FIELD_OBJECT)
        return false;
    *p = v.ptr;
    *len = v.len;
    return true;
}

/* ---- uri templates ---- */

static bool id_like(const char *s, size_t n)
{
    size_t digits = 0, hex = 0, dashes = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        digits += c >= '0' && c <= '9';
        hex += (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        dashes += c == '-';
    }
    if (n && digits == n)
        return true; /* 42 */
    if (n == 36 && dashes == 4 && hex == 32)
        return true;                          /* a UUID */
    return n >= 16 && hex == n && digits > 0; /* an object id, a hash */
}

static bool pattern_match(const struct apm_pattern *p, const char *path, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && path[i] == '/')
            i++;
        if (i == n)
            break;
        size_t e = i;
        while (e < n && path[e] != '/')
            e++;
        if (k == p->nseg)
            return false;
        const char *seg = p->seg[k++];
        bool any = strcmp(seg, "*") == 0 || seg[0] == '{';
        if (!any && (strlen(seg) != e - i || memcmp(seg, path + i, e - i) != 0))
            return false;
        i = e;
    }
    return k == p->nseg;
}

void mars_apm_uri_template(const struct apm_records *r, const char *url, size_t n, char *out,
                           size_t cap)
{
    const char *p = url, *end = url + n;
    const char *scheme = n > 3 ? strstr(url, "://") : NULL;
    if (scheme && scheme < end) {
        p = scheme + 3;
        while (p < end && *p != '/' && *p != '?' && *p != '#')
            p++;
    }
    const char *q = p;
    while (q < end && *q != '?' && *q != '#')
        q++;
    size_t len = (size_t)(q - p), o = 0;
    for (size_t i = 0; r && i < r->npatterns; i++) {
        if (pattern_match(&r->patterns[i], p, len)) {
            snprintf(out, cap, "%s", r->patterns[i].tmpl);
            return;
        }
    }
    if (len == 0) {
        snprintf(out, cap, "/");
        return;
    }
    for (size_t i = 0; i < len && o + 1 < cap;) {
        if (p[i] == '/') {
            out[o++] = '/';
            i++;
            continue;
        }
        size_t e = i;
        while (e < len && p[e] != '/')
            e++;
        const char *seg = p + i;
        size_t sl = e - i;
        if (id_like(seg, sl)) {
            seg = "{id}";
            sl = 4;
        }
        if (o + sl + 1 > cap)
            break;
        memcpy(out + o, seg, sl);
        o += sl;
        i = e;
    }
    out[o] = '\0';
}

/* ---- trace records ---- */

static const char *outcome_of(int status)
{
    if (status >= 100 && status < 200)
        return "INFORMATIONAL";
    if (status >= 200 && status < 300)
        return "SUCCESS";
    if (status >= 300 && status < 400)
        return "REDIRECTION";
    if (status >= 400 && status < 500)
        return "CLIENT_ERROR";
    if (status >= 500 && status < 600)
        return "SERVER_ERROR";
    return "UNKNOWN";
}

struct http_span {
    bool entry;
    double seconds;
    bool has_size;
    double size;
    int status;
    char method[32], exception[256], uri[512], client[256], component[128];
};

static int push_span(struct apm_records *r, struct mars_batch *b, const struct http_span *sp,
                     int64_t ts)
{
    char status[16];
    snprintf(status, sizeof(status), "%d", sp->status);
    const char *names[] = {"exception", "method",      "outcome",  "status",
                           "uri",       "client_name", "component"};
    const char *values[] = {sp->exception[0] ? sp->exception : "None",
                            sp->method[0] ? sp->method : "UNKNOWN",
                            outcome_of(sp->status),
                            status,
                            sp->uri,
                            sp->client[0] ? sp->client : "none",
                            sp->component[0] ? sp->component : "none"};
    struct mars_metric_sample m = {
        .label_names = names, .label_values = values, .nlabels = sp->entry ? 5 : 7};
    m.name = sp->entry ? "http_server_requests_seconds" : "http_client_requests_seconds";
    m.help = sp->entry ? "HTTP server requests of the PHP services behind the apm_socket."
                       : "HTTP client requests of the PHP services behind the apm_socket.";
    int rc = push_observation(r, b, &m, r->lat_bounds, r->nlat, sp->seconds, ts);
    if (rc || !sp->has_size)
        return rc;
    m.name = sp->entry ? "http_server_response_size_bytes" : "http_client_response_size_bytes";
    m.help = "HTTP response sizes of the PHP services behind the apm_socket.";
    return push_observation(r, b, &m, r->size_bounds, r->nsize, sp->size, ts);
}

/* The seed's span: {isEntry, body{url, path, startTime, endTime, responseCode, ...}}. */
static int seed_span(struct apm_records *r, struct mars_batch *b, const char *s, size_t n,
                     const char *body, size_t bn, int64_t ts)
{
    struct http_span sp = {0};
    double start, end, code;
    char url[2048];
    if (!get_bool(s, n, "isEntry", &sp.entry) || !get_num(body, bn, "startTime", &start) ||
        !get_num(body, bn, "endTime", &end) || !get_num(body, bn, "responseCode", &code))
        return APM_BAD_MISSING + 1;
    sp.seconds = end >= start ? (end - start) / 1000.0 : 0;
    sp.status = (int)code;
    sp.has_size = get_num(body, bn, "responseSize", &sp.size);
    get_str(r, body, bn, "method", sp.method, sizeof(sp.method));
    get_str(r, body, bn, "exception", sp.exception, sizeof(sp.exception));
    if (!get_str(r, body, bn, "path", sp.uri, sizeof(sp.uri)) || !sp.uri[0]) {
        if (!get_str(r, body, bn, "url", url, sizeof(url)))
            return APM_BAD_MISSING + 1;
        mars_apm_uri_template(r, url, strlen(url), sp.uri, sizeof(sp.uri));
    }
    if (!sp.entry) {
        get_str(r, body, bn, "peer", sp.client, sizeof(sp.client));
        get_str(r, body, bn, "component", sp.component, sizeof(sp.component));
    }
    return push_span(r, b, &sp, ts) ? -ENOMEM : 0;
}

/* SkyAPM writes spanType as 0/1/2 (Entry/Exit/Local); a name is accepted too. Returns
 * 0 entry, 1 exit, 2 local, -1 unknown. */
static int span_type(const char *s, size_t n)
{
    struct mars_value v;
    double d;
    if (!get(s, n, "spanType", &v))
        return -1;
    if (mars_value_number(&v, &d))
        return d == 0 ? 0 : d == 1 ? 1 : d == 2 ? 2 : -1;
    if (v.kind != MARS_FIELD_STRING)
        return -1;
    if (v.len == 5 && memcmp(v.ptr, "Entry", 5) == 0)
        return 0;
    if (v.len == 4 && memcmp(v.ptr, "Exit", 4) == 0)
        return 1;
    return v.len == 5 && memcmp(v.ptr, "Local", 5) == 0 ? 2 : -1;
}

/* A SkyAPM segment: its entry and exit spans that carry an HTTP status tag feed the same
 * histograms as the seed's spans. */
static int skyapm_segment(struct apm_records *r, struct mars_batch *b, const char *seg, size_t sn,
                          int64_t ts)
{
    struct mars_value spans, v;
    if (!get(seg, sn, "spans", &spans) || spans.kind != MARS_FIELD_ARRAY)
        return APM_BAD_MISSING + 1;
    size_t pos = 0;
    while (mars_json_array_next(spans.ptr, spans.len, &pos, &v)) {
        if (v.kind != MARS_FIELD_OBJECT)
            continue;
        const char *s = v.ptr, *tags;
        size_t n = v.len, tn;
        struct http_span sp = {0};
        double start, end, code;
        char url[2048] = "";
        int type = span_type(s, n);
        if ((type != 0 && type != 1) || !get_num(s, n, "startTime", &start) ||
            !get_num(s, n, "endTime", &end) || !get_object(s, n, "tags", &tags, &tn))
            continue;
        if (!get_num(tags, tn, "status_code", &code) &&
            !get_num(tags, tn, "http.status_code", &code))
            continue;
        sp.entry = type == 0;
        sp.seconds = end >= start ? (end - start) / 1000.0 : 0;
        sp.status = (int)code;
        if (!get_str(r, tags, tn, "http.method", sp.method, sizeof(sp.method)))
            get_str(r, tags, tn, "method", sp.method, sizeof(sp.method));
        if (!get_str(r, tags, tn, "url", url, sizeof(url)))
            get_str(r, s, n, "operationName", url, sizeof(url));
        mars_apm_uri_template(r, url, strlen(url), sp.uri, sizeof(sp.uri));
        if (!sp.entry) {
            get_str(r, s, n, "peer", sp.client, sizeof(sp.client));
            get_str(r, s, n, "component", sp.component, sizeof(sp.component));
        }
        if (push_span(r, b, &sp, ts))
            return -ENOMEM;
    }
    return 0;
}

/* The whole record as one trace event (MARS_EVF_TRACE) for the skywalking sink: the JSON
 * is copied into the batch arena as the event's message. */
static int push_segment(struct mars_batch *b, const char *s, size_t n, int64_t ts)
{
    char *copy = mars_arena_strndup(&b->arena, s, n);
    struct mars_event *ev = copy ? mars_batch_push(b) : NULL;
    if (!ev)
        return -ENOMEM;
    ev->kind = MARS_EVENT_LOG;
    ev->flags = MARS_EVF_TRACE | MARS_EVF_UTF8; /* validated JSON is UTF-8 */
    ev->msg = (struct mars_slice){copy, (uint32_t)n};
    ev->ts_ns = ts;
    ev->source = b->source;
    b->bytes += n;
    return 0;
}

int mars_apm_record_trace(struct apm_records *r, struct mars_batch *b, const char *s, size_t n,
                          int64_t ts)
{
    const char *o;
    size_t on;
    if (mars_json_validate(s, n, JSON_DEPTH, NULL) != MARS_JSON_OK || n == 0 ||
        (s[0] != '{' && s[0] != ' '))
        return APM_BAD_JSON + 1;
    if (get_object(s, n, "body", &o, &on))
        return seed_span(r, b, s, n, o, on, ts);
    if (!get_object(s, n, "segment", &o, &on))
        return APM_BAD_MISSING + 1;
    struct mars_value v;
    if (!get(o, on, "traceSegmentId", &v) || v.kind != MARS_FIELD_STRING)
        return APM_BAD_MISSING + 1;
    int rc = skyapm_segment(r, b, o, on, ts);
    return rc ? rc : push_segment(b, s, n, ts);
}

/* ---- business metrics ---- */

#define MAX_TAGS      8
#define MAX_QUANTILES 16

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The quantiles of a summary: config.percentile as a list [0.5, 0.9] or a string
 * "0.5,0.9" (the seed's), each in [0, 1]; default 0.5, 0.9, 0.99. Sorted, duplicates
 * dropped. Returns their number, or -1 when one is not a number in [0, 1]. */
static int percentiles(struct apm_records *r, const char *s, size_t n, double *qs)
{
    const char *cfg;
    size_t cn, k = 0;
    struct mars_value v, e;
    char text[512];
    if (!get_object(s, n, "config", &cfg, &cn) || !get(cfg, cn, "percentile", &v)) {
        qs[0] = 0.5, qs[1] = 0.9, qs[2] = 0.99;
        return 3;
    }
    if (v.kind == MARS_FIELD_ARRAY) {
        size_t pos = 0;
        while (k < MAX_QUANTILES && mars_json_array_next(v.ptr, v.len, &pos, &e))
            if (!mars_value_number(&e, &qs[k++]))
                return -1;
    } else if (get_str(r, cfg, cn, "percentile", text, sizeof(text))) {
        for (char *t = strtok(text, ", "); t && k < MAX_QUANTILES; t = strtok(NULL, ", ")) {
            char *end;
            qs[k++] = strtod(t, &end);
            if (end == t || *end)
                return -1;
        }
    }
    for (size_t i = 0; i < k; i++)
        if (!(qs[i] >= 0 && qs[i] <= 1))
            return -1;
    qsort(qs, k, sizeof(*qs), cmp_double);
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        if (o == 0 || qs[i] != qs[o - 1])
            qs[o++] = qs[i];
    return (int)o;
}

int mars_apm_record_biz(struct apm_records *r, struct mars_batch *b, const char *s, size_t n,
                        int64_t ts)
{
    static const char prefix[] = "[RIG:BIZ]=";
    if (n < sizeof(prefix) - 1 || memcmp(s, prefix, sizeof(prefix) - 1) != 0)
        return APM_BAD_MISSING + 1;
    s += sizeof(prefix) - 1;
    n -= sizeof(prefix) - 1;
    if (mars_json_validate(s, n, JSON_DEPTH, NULL) != MARS_JSON_OK)
        return APM_BAD_JSON + 1;
    char name[200], type[16], full[216];
    double val;
    const char *tags, *cfg;
    size_t tn, cn;
    if (!get_str(r, s, n, "name", name, sizeof(name)) ||
        !get_str(r, s, n, "type", type, sizeof(type)) || !get_num(s, n, "val", &val) ||
        !get_object(s, n, "tag", &tags, &tn))
        return APM_BAD_MISSING + 1;
    if (!mars_metric_name_valid(name, strlen(name)))
        return APM_BAD_NAME + 1;

    /* tags become labels: at most MAX_TAGS, valid label names, values cut at STR_MAX */
    char lname[MAX_TAGS][64], lval[MAX_TAGS][STR_MAX];
    const char *names[MAX_TAGS], *values[MAX_TAGS];
    size_t nl = 0;
    struct mars_fbuild fb;
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    int bad = 0;
    if (mars_json_parse(tags, tn, JSON_DEPTH, &fb, 0, NULL) != MARS_JSON_OK)
        bad = APM_BAD_JSON + 1;
    for (uint32_t i = fb.n ? fb.v[0].first : MARS_FIELD_NIL; !bad && i != MARS_FIELD_NIL;
         i = fb.v[i].next) {
        const struct mars_field *f = &fb.v[i];
        if (nl == MAX_TAGS || f->key_len == 0 || f->key_len >= sizeof(lname[0])) {
            bad = APM_BAD_NAME + 1;
            break;
        }
        memcpy(lname[nl], f->key, f->key_len);
        lname[nl][f->key_len] = '\0';
        if (!mars_metric_name_valid(lname[nl], f->key_len) || strchr(lname[nl], ':') ||
            !get_str(r, tags, tn, lname[nl], lval[nl], sizeof(lval[nl]))) {
            bad = APM_BAD_NAME + 1;
            break;
        }
        names[nl] = lname[nl];
        values[nl] = lval[nl];
        nl++;
    }
    mars_fbuild_fini(&fb);
    if (bad)
        return bad;
    if (nl == 0)
        return APM_BAD_MISSING + 1;
    struct mars_metric_sample m = {.name = full,
                                   .help = "Business metric reported through the apm_socket.",
                                   .label_names = names,
                                   .label_values = values,
                                   .nlabels = nl};
    int rc;
    if (strcmp(type, "count") == 0) {
        snprintf(full, sizeof(full), "%s_total", name);
        m.kind = MARS_METRIC_COUNTER;
        m.value = val;
        rc = push(r, b, &m, ts);
    } else if (strcmp(type, "gauge") == 0) {
        snprintf(full, sizeof(full), "%s", name);
        m.kind = MARS_METRIC_GAUGE;
        m.value = val;
        rc = push(r, b, &m, ts);
    } else if (strcmp(type, "histogram") == 0) {
        double bounds[APM_MAX_BOUNDS];
        size_t nb = 0;
        char sla[512];
        snprintf(full, sizeof(full), "%s", name);
        if (get_object(s, n, "config", &cfg, &cn) && get_str(r, cfg, cn, "sla", sla, sizeof(sla))) {
            for (char *t = strtok(sla, ", "); t && nb < APM_MAX_BOUNDS; t = strtok(NULL, ", ")) {
                char *e;
                double d = strtod(t, &e);
                if (e == t || *e || !isfinite(d) || (nb && d <= bounds[nb - 1]))
                    return APM_BAD_MISSING + 1;
                bounds[nb++] = d;
            }
        }
        if (nb == 0) {
            memcpy(bounds, r->lat_bounds, r->nlat * sizeof(double));
            nb = r->nlat;
        }
        rc = push_observation(r, b, &m, bounds, nb, val, ts);
    } else if (strcmp(type, "summary") == 0) {
        double qs[MAX_QUANTILES];
        int nq = percentiles(r, s, n, qs);
        if (nq < 0)
            return APM_BAD_MISSING + 1;
        snprintf(full, sizeof(full), "%s", name);
        m.kind = MARS_METRIC_SUMMARY;
        m.value = val;
        m.count = 1;
        m.observations = &val;
        m.quantiles = qs;
        m.nquantiles = (size_t)nq;
        rc = push(r, b, &m, ts);
    } else {
        return APM_BAD_MISSING + 1;
    }
    return rc ? -ENOMEM : 0;
}
