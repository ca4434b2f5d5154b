/*
 * loki.c - the `loki` sink: pushes events to Loki's /loki/api/v1/push as JSON streams.
 *
 * Each engine request becomes one push. Every event's labels are rendered from the
 * `labels` templates into a canonical JSON object text ("k":"v",... in config order,
 * empty values left out); events with the same text form one stream (a small open-
 * addressing table over the request, reset each time). The entries are then sorted by
 * (stream, timestamp, arrival) so each stream's values are in time order, as Loki wants
 * (equal times are spread 1 ns apart, so Loki's dedup keeps repeated lines),
 * and written as {"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]},...]},
 * gzip-compressed by default. The line is the message (text) or the event as JSON (json),
 * where remove_label_fields leaves out the fields that became labels.
 *
 * Answers (the shared HTTP-sink mapping, http_common.h): 2xx ok; 408, 429, 5xx and transport
 * errors retried (Retry-After passed to the engine); 400 and other 4xx permanent (REJECTED:
 * counted by the engine, logged with Loki's reason).
 *
 * Memory: the grouping arrays, the label buffer and each in-flight slot's body are reused
 * across requests; nothing is allocated per event.
 *
 * Thread: the sink's worker (the HTTP client runs on its loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"
#include "sinks/http_common.h"

#define LABEL_MAX 1024
#define PUSH_PATH "/loki/api/v1/push"

enum loki_line { LINE_TEXT, LINE_JSON };
static const char *const line_names[] = {"text", "json", NULL};

struct loki_conf {
    char *endpoint;
    struct mars_strmap labels;
    char *tenant_id;
    bool remove_label_fields;
    int encoding;
    struct mars_http_common_conf http; /* tls, auth, headers, compression (gzip or none) */
};

#define OFF(f) offsetof(struct loki_conf, f)
static const struct mars_opt loki_options[] = {
    {.name = "endpoint",
     .type = MARS_OPT_URL,
     .offset = OFF(endpoint),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Base URL of Loki (http://host:3100); " PUSH_PATH " is appended unless present."},
    {.name = "labels",
     .type = MARS_OPT_MAP,
     .offset = OFF(labels),
     .desc = "Stream labels, name to template ({{ kubernetes.namespace }}); keep them few and "
             "low-cardinality (namespace, app, container), never per-line values; default "
             "job: mars."},
    {.name = "tenant_id",
     .type = MARS_OPT_STRING,
     .offset = OFF(tenant_id),
     .desc = "Tenant sent as X-Scope-OrgID, for multi-tenant Loki."},
    {.name = "remove_label_fields",
     .type = MARS_OPT_BOOL,
     .offset = OFF(remove_label_fields),
     .def = "false",
     .desc = "With encoding json, leave the fields used by labels written as {{ field }} out "
             "of the line."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = OFF(encoding),
     .def = "text",
     .choices = line_names,
     .desc = "text sends the message as the line; json sends the event with all its fields as "
             "a JSON object."},
    MARS_HTTP_COMMON_OPTIONS(struct loki_conf, http, "gzip"),
    {.name = NULL},
};

struct label {
    const char *name;
    struct mars_template *tpl;
    struct mars_path *path; /* the template is exactly {{ path }}: read the field directly */
};

struct entry {
    uint32_t stream, seq;
    int64_t ts;
    const struct mars_event *ev;
    uint32_t skip[8]; /* label field entries to leave out of a json line */
    uint32_t nskip;
};

struct stream {
    uint64_t hash;
    uint32_t off, len; /* label text in labels.out */
};

struct loki_slot {
    struct mars_http_common_call call; /* call.r: the engine request, NULL when free */
    struct loki_sink *ls;
    struct mars_encoder body;
};

struct loki_sink {
    struct mars_sink *sink;
    const struct loki_conf *conf;
    struct mars_http_common hs;
    bool hs_ready;
    char *url;
    struct label *labels;
    size_t nlabels;
    /* grouping scratch, reused */
    struct mars_encoder lab;  /* label texts of the request's streams */
    struct mars_encoder line; /* one json line */
    struct entry *ent;
    uint32_t nent;
    size_t ent_cap;
    struct stream *streams;
    uint32_t nstreams;
    size_t streams_cap;
    uint32_t *table; /* stream index + 1; 0 empty */
    uint32_t table_cap;
    char *scratch;
    size_t scap;
    char render[LABEL_MAX];
    struct loki_slot *slots; /* request.concurrency of them */
    unsigned nslots;
};

/* ---- config ---- */

/* The path of a template that is exactly "{{ path }}", or NULL. */
static struct mars_path *pure_field(const char *t)
{
    size_t n = strlen(t), at;
    const char *why;
    if (n < 5 || strncmp(t, "{{", 2) != 0 || strcmp(t + n - 2, "}}") != 0)
        return NULL;
    const char *b = t + 2, *e = t + n - 2;
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    if (memchr(b, '{', (size_t)(e - b)) || memchr(b, '}', (size_t)(e - b)))
        return NULL;
    return mars_path_compile(b, (size_t)(e - b), &at, &why);
}

/* Fields whose values are usually unique per line make a stream per line. */
static bool looks_high_cardinality(const char *tpl)
{
    static const char *const words[] = {"message", "timestamp", "trace", "span", "request_id",
                                        "uuid",    "_id",       "msg",   "time", NULL};
    if (strchr(tpl, '%'))
        return true; /* time parts */
    for (size_t i = 0; words[i]; i++)
        if (strstr(tpl, words[i]))
            return true;
    return false;
}

static int loki_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct loki_conf *c = conf;
    int rc = mars_http_common_check(&c->http, node, diag);
    const struct mars_cfg_node *n = mars_cfg_at(node, "labels", NULL);
    char err[160];
    for (size_t i = 0; i < c->labels.n; i++) {
        struct mars_template *t = mars_template_compile(c->labels.vals[i], 0, err, sizeof(err));
        if (!mars_label_name_valid(c->labels.keys[i], strlen(c->labels.keys[i]))) {
            mars_diag_add(diag, n->file, n->line, n->col,
                          "labels: '%s' is not a Loki label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                          c->labels.keys[i]);
            rc = -EINVAL;
        } else if (!t) {
            mars_diag_add(diag, n->file, n->line, n->col, "labels.%s: %s", c->labels.keys[i], err);
            rc = -EINVAL;
        } else if (looks_high_cardinality(c->labels.vals[i])) {
            mars_warn("loki",
                      "%s:%d: label %s = '%s' looks high-cardinality (a stream per "
                      "value): keep labels to namespace/app/container-like values",
                      n->file, n->line, c->labels.keys[i], c->labels.vals[i]);
        }
        mars_template_destroy(t);
    }
    if (c->http.compression != MARS_CODEC_NONE && c->http.compression != MARS_CODEC_GZIP) {
        n = mars_cfg_at(node, "compression", NULL);
        mars_diag_add(diag, n->file, n->line, n->col, "compression '%s': Loki takes none or gzip",
                      mars_compression_names[c->http.compression]);
        rc = -EINVAL;
    }
    return rc;
}

/* ---- grouping a request into streams ---- */

/* Renders ev's labels into ls->lab (appended) and records which fields they came from. */
static int put_labels(struct loki_sink *ls, const struct mars_event *ev, struct entry *en)
{
    bool first = true;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ls->nlabels; i++) {
        const struct label *l = &ls->labels[i];
        const char *v;
        uint32_t len = 0;
        struct mars_value fv;
        bool found = l->path && mars_fields_get(ev, l->path, &fv);
        if (l->path && !found && !mars_path_is(l->path, "host"))
            continue; /* (a missing host is this machine's name, as in every template) */
        if (found) {
            if (fv.kind == MARS_FIELD_OBJECT || fv.kind == MARS_FIELD_NULL)
                continue;
            if (!(v = mars_value_text(&fv, &ls->scratch, &ls->scap, &len)))
                return -ENOMEM;
            if (len > 0 && fv.idx != MARS_FIELD_NIL && en->nskip < 8)
                en->skip[en->nskip++] = fv.idx;
        } else {
            int n = mars_template_render(l->tpl, ev, ls->render, sizeof(ls->render));
            if (n < 0)
                continue; /* too long for a label: left out */
            v = ls->render;
            len = (uint32_t)n;
        }
        if (len == 0)
            continue;
        rc = first ? 0 : mars_encoder_put(&ls->lab, ",", 1);
        first = false;
        rc = rc ? rc : mars_encode_json_string(&ls->lab, l->name, strlen(l->name));
        rc = rc ? rc : mars_encoder_put(&ls->lab, ":", 1);
        rc = rc ? rc : mars_encode_json_string(&ls->lab, v, len);
    }
    if (rc == 0 && first) /* Loki needs at least one label */
        rc = mars_encoder_put(&ls->lab, "\"job\":\"mars\"", 12);
    return rc;
}

/* Index of the stream whose labels are lab.out[off, lab.out_len): an existing one (and
 * the text is dropped again) or a new one. Returns the index or -ENOMEM. */
static int64_t find_stream(struct loki_sink *ls, size_t off)
{
    const char *text = ls->lab.out + off;
    uint32_t len = (uint32_t)(ls->lab.out_len - off);
    uint64_t h = mars_hash64(text, len);
    if (ls->nstreams * 2 >= ls->table_cap) { /* keep the table at most half full */
        uint32_t cap = ls->table_cap ? ls->table_cap * 2 : 64;
        uint32_t *t = calloc(cap, sizeof(*t));
        if (!t)
            return -ENOMEM;
        for (uint32_t s = 0; s < ls->nstreams; s++) {
            uint32_t j = (uint32_t)ls->streams[s].hash & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = s + 1;
        }
        free(ls->table);
        ls->table = t;
        ls->table_cap = cap;
    }
    uint32_t j = (uint32_t)h & (ls->table_cap - 1);
    for (; ls->table[j]; j = (j + 1) & (ls->table_cap - 1)) {
        struct stream *s = &ls->streams[ls->table[j] - 1];
        if (s->hash == h && s->len == len && memcmp(ls->lab.out + s->off, text, len) == 0) {
            ls->lab.out_len = off;
            return ls->table[j] - 1;
        }
    }
    if (mars_grow(&ls->streams, &ls->streams_cap, (size_t)ls->nstreams + 1, sizeof(*ls->streams)))
        return -ENOMEM;
    ls->streams[ls->nstreams] = (struct stream){.hash = h, .off = (uint32_t)off, .len = len};
    ls->table[j] = ls->nstreams + 1;
    return ls->nstreams++;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int group(struct loki_sink *ls, const struct mars_sink_req *r, int64_t now)
{
    mars_encoder_reset(&ls->lab);
    ls->nent = ls->nstreams = 0;
    if (ls->table)
        memset(ls->table, 0, ls->table_cap * sizeof(*ls->table));
    if (mars_grow(&ls->ent, &ls->ent_cap, r->events, sizeof(*ls->ent)))
        return -ENOMEM;
    for (uint32_t b = 0; b < r->n; b++) {
        for (uint32_t i = 0; i < r->batches[b]->n; i++) {
            const struct mars_event *ev = &r->batches[b]->ev[i];
            struct entry *en = &ls->ent[ls->nent];
            *en = (struct entry){.seq = ls->nent, .ts = ev->ts_ns > 0 ? ev->ts_ns : now, .ev = ev};
            size_t off = ls->lab.out_len;
            int rc = put_labels(ls, ev, en);
            int64_t s = rc ? rc : find_stream(ls, off);
            if (s < 0)
                return (int)s;
            en->stream = (uint32_t)s;
            ls->nent++;
        }
    }
    qsort(ls->ent, ls->nent, sizeof(*ls->ent), cmp_entry);
    return 0;
}

/* ---- the push body ---- */

static int put_line(struct loki_sink *ls, struct mars_encoder *e, const struct entry *en)
{
    if (ls->conf->encoding == LINE_TEXT)
        return mars_encode_json_string(e, en->ev->msg.ptr, en->ev->msg.len);
    struct mars_json_opts o = {0};
    if (ls->conf->remove_label_fields) {
        o.skip = en->skip;
        o.nskip = en->nskip;
    }
    mars_encoder_reset(&ls->line);
    int rc = mars_encode_json_event_opts(&ls->line, en->ev, &o);
    return rc ? rc : mars_encode_json_string(e, ls->line.out, ls->line.out_len);
}

/* Entries of a stream get strictly increasing timestamps: Loki keeps only one of several
 * entries with the same time and the same line, and lines read together share a time, so
 * an entry at or before the previous one is moved 1 ns after it. */
static int build_body(struct loki_sink *ls, struct mars_encoder *e)
{
    char ts[24];
    int64_t prev = 0;
    mars_encoder_reset(e);
    int rc = mars_encoder_put(e, "{\"streams\":[", 12);
    for (uint32_t i = 0; rc == 0 && i < ls->nent; i++) {
        const struct entry *en = &ls->ent[i];
        bool first = i == 0 || ls->ent[i - 1].stream != en->stream;
        if (first) {
            const struct stream *s = &ls->streams[en->stream];
            rc = mars_encoder_put(e, i ? "]},{\"stream\":{" : "{\"stream\":{", i ? 14 : 11);
            rc = rc ? rc : mars_encoder_put(e, ls->lab.out + s->off, s->len);
            rc = rc ? rc : mars_encoder_put(e, "},\"values\":[", 12);
            prev = en->ts - 1;
        } else {
            rc = mars_encoder_put(e, ",", 1);
        }
        prev = en->ts > prev ? en->ts : prev + 1;
        int n = snprintf(ts, sizeof(ts), "[\"%lld\",", (long long)prev);
        rc = rc ? rc : mars_encoder_put(e, ts, (size_t)n);
        rc = rc ? rc : put_line(ls, e, en);
        rc = rc ? rc : mars_encoder_put(e, "]", 1);
    }
    if (rc == 0 && ls->nent)
        rc = mars_encoder_put(e, "]}", 2);
    return rc ? rc : mars_encoder_put(e, "]}", 2);
}

/* ---- pushing ---- */

static void on_push_done(struct mars_http_common_call *c, const struct mars_http_resp *resp)
{
    struct loki_slot *sl = MARS_CONTAINER_OF(c, struct loki_slot, call);
    struct loki_sink *ls = sl->ls;
    struct mars_sink_req *r = c->r;
    c->r = NULL;
    /* the shared mapping: 2xx ok; transport errors, 408, 429, 5xx retried (Retry-After
     * passed on); 400 (bad labels, too old, out of order) and other 4xx dropped, logged
     * with Loki's reason */
    enum mars_sink_result res = mars_http_common_classify(&ls->hs, r, resp);
    mars_sink_done(ls->sink, r, res, res == MARS_SINK_OK ? c->body_bytes : 0);
}

static void loki_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct loki_sink *ls = mars_sink_state(s);
    struct loki_slot *sl = NULL;
    for (unsigned i = 0; i < ls->nslots && !sl; i++)
        if (!ls->slots[i].call.r)
            sl = &ls->slots[i];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* for events without a time */
    int rc = sl ? group(ls, r, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec) : -EBUSY;
    rc = rc ? rc : build_body(ls, &sl->body);
    if (rc == 0) {
        struct iovec iov = {sl->body.out, sl->body.out_len};
        sl->call.max_body = 4096;
        sl->call.borrow_body = true; /* sl->body is the slot's own, untouched until the answer */
        rc = mars_http_common_send(&ls->hs, &sl->call, r, "POST", ls->url, &iov, 1, on_push_done);
    }
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(s), "cannot send a push: %s", strerror(-rc));
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_ENCODE], 1);
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
    }
}

static void loki_abort(struct mars_sink *s)
{
    struct loki_sink *ls = mars_sink_state(s);
    if (ls->hs_ready)
        mars_http_common_abort(&ls->hs);
}

static void instance_destroy(struct loki_sink *ls)
{
    for (unsigned i = 0; ls->slots && i < ls->nslots; i++) {
        mars_encoder_fini(&ls->slots[i].body);
        mars_http_common_call_fini(&ls->slots[i].call);
    }
    free(ls->slots);
    if (ls->hs_ready)
        mars_http_common_fini(&ls->hs);
    for (size_t i = 0; i < ls->nlabels; i++) {
        mars_template_destroy(ls->labels[i].tpl);
        mars_path_destroy(ls->labels[i].path);
    }
    free(ls->labels);
    mars_encoder_fini(&ls->lab);
    mars_encoder_fini(&ls->line);
    free(ls->ent);
    free(ls->streams);
    free(ls->table);
    free(ls->scratch);
    free(ls->url);
    free(ls);
}

static int make_labels(struct loki_sink *ls)
{
    const struct loki_conf *c = ls->conf;
    char err[160];
    ls->labels = calloc(c->labels.n ? c->labels.n : 1, sizeof(*ls->labels));
    if (!ls->labels)
        return -ENOMEM;
    for (size_t i = 0; i < c->labels.n; i++) {
        struct label *l = &ls->labels[ls->nlabels++];
        l->name = c->labels.keys[i];
        l->path = pure_field(c->labels.vals[i]);
        l->tpl = mars_template_compile(c->labels.vals[i], 0, err, sizeof(err));
        if (!l->tpl)
            return -EINVAL;
    }
    return 0;
}

static int loki_init(struct mars_sink *s)
{
    const struct loki_conf *conf = mars_sink_conf(s);
    struct loki_sink *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    ls->sink = s;
    ls->conf = conf;
    size_t n = strlen(conf->endpoint);
    while (n > 0 && conf->endpoint[n - 1] == '/')
        n--;
    bool has_path = n >= strlen(PUSH_PATH) && memcmp(conf->endpoint + n - strlen(PUSH_PATH),
                                                     PUSH_PATH, strlen(PUSH_PATH)) == 0;
    ls->url = malloc(n + sizeof(PUSH_PATH));
    int rc = ls->url ? 0 : -ENOMEM;
    if (rc == 0)
        snprintf(ls->url, n + sizeof(PUSH_PATH), "%.*s%s", (int)n, conf->endpoint,
                 has_path ? "" : PUSH_PATH);
    rc = rc ? rc : make_labels(ls);
    ls->nslots = mars_sink_concurrency(s);
    ls->slots = calloc(ls->nslots, sizeof(*ls->slots));
    rc = rc ? rc : ls->slots ? 0 : -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < ls->nslots; i++)
        ls->slots[i].ls = ls;
    if (rc == 0) {
        rc = mars_http_common_init(&ls->hs, s, &conf->http, "application/json",
                                   (const char *const *)&ls->url, 1);
        ls->hs_ready = true; /* fini is safe after a failed init */
    }
    /* the tenant is one more header */
    if (rc == 0 && conf->tenant_id)
        rc = mars_http_common_add_header(&ls->hs, "X-Scope-OrgID", conf->tenant_id);
    if (rc) {
        mars_error(mars_sink_id(s), "cannot start: %s", strerror(-rc));
        instance_destroy(ls);
        return rc;
    }
    mars_sink_set_state(s, ls);
    return 0;
}

static void loki_destroy(struct mars_sink *s)
{
    instance_destroy(mars_sink_state(s));
}

const struct mars_component_desc mars_sink_loki = {
    .name = "loki",
    .description = "Pushes events to Grafana Loki as labelled streams (JSON, gzip).",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG,
    .options = loki_options,
    .conf_size = sizeof(struct loki_conf),
    .check = loki_check,
    .sink = {.init = loki_init, .write = loki_write, .abort = loki_abort, .destroy = loki_destroy},
};
