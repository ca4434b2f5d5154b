/*
 * skywalking.c - the `skywalking` sink: log events and trace segments to an Apache
 * SkyWalking OAP, plus the instance registration of mars itself (and of the PHP apps of
 * an apm_socket source) and, optionally, metric events as meters. Options are in
 * skywalking_conf.c, segments in skywalking_trace.c, meters in skywalking_meter.c,
 * registration in skywalking_mgmt.c and skywalking_apps.c.
 *
 * Logs. Each engine request becomes one call: on gRPC (the default, port 11800) a client
 * stream LogReportService/collect of one LogData per event; on `transport: http` one POST
 * of a JSON array of LogData to the OAP's /v3/logs (port 12800). A LogData carries the
 * service, instance, layer, the endpoint (from `endpoint_field`), the time in ms, the body
 * (`body: text`: the message as a TextLog; `json`: the whole event as a JSONLog), the
 * configured `tags` fields as tags, and a trace context when the event has trace_id (plus
 * segment_id, span_id). Every message names the service and instance, so none depends on
 * the stream's inheritance rule.
 *
 * Answers: the request is OK only when its call ends with status OK. UNAVAILABLE,
 * RESOURCE_EXHAUSTED, timeouts and transport errors are RETRY (the engine backs off and
 * sends the same events again, so nothing is lost while the OAP is down); UNAUTHENTICATED
 * and PERMISSION_DENIED are permanent, logged as a token problem and kept as the sink's
 * last error; other statuses are permanent too.
 *
 * Phases: a request goes as up to three calls in a row, each only when it has events: its
 * logs, its trace segments (events flagged MARS_EVF_TRACE: one TraceSegmentReportService/
 * collect stream) and, with `meters: true`, its metric events (one MeterReportService/
 * collectBatch call). A phase delivered is remembered in r->sink_data, so a retry sends
 * only the phases still missing.
 *
 * Registration runs once per sink, not once per worker: the instances share one object
 * (mars_shared_acquire), and the first to take it runs skywalking_mgmt.c on its worker's
 * loop. On `protocol: v6` there is no log or meter service: log and metric events are
 * counted as discarded; segments go in the v6 form. On `transport: http` segments and
 * metrics are discarded the same way.
 *
 * Memory: per-slot call buffers and the per-sink string copies are reused across requests.
 *
 * Thread: the sink's worker (the HTTP client and the gRPC calls run on its loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"
#include "component.h"
#include "sinks/skywalking_internal.h"
#include "skywalking/logging.pb-c.h"

#define LOGS_PATH   "/skywalking.v3.LogReportService/collect"
#define METERS_PATH "/skywalking.v3.MeterReportService/collectBatch"
#define TRACES_PATH "/skywalking.v3.TraceSegmentReportService/collect"
/* v6/7 OAPs: language-agent-v2, no package */
#define TRACES_V6_PATH "/TraceSegmentReportService/collect"

/* The parts of a request, sent in this order, one call each. */
enum sw_phase { PH_LOGS, PH_TRACES, PH_METERS, PH__COUNT };
static const char *const phase_names[] = {"logs", "trace segments", "meters"};

/* A NUL-terminated copy that protobuf-c can pack; reused across events. */
struct sw_str {
    char *p;
    size_t cap;
};

struct sw_slot {
    struct sw_sink *sw;
    struct mars_sink_req *r; /* NULL when free */
    struct mars_grpc_call call;
    struct mars_http_req http;
    struct mars_grpc_buf buf;
    struct mars_encoder json;
    enum sw_phase phase;
    uint64_t bytes, count[PH__COUNT];
};

/* Encoding scratch of a sink: only used while one request is encoded. */
struct sw_scratch {
    struct sw_str msg, endpoint, trace, segment;
    struct sw_str *tags;
    Skywalking__V3__KeyStringValuePair *kv;
    Skywalking__V3__KeyStringValuePair **kvp;
    struct mars_encoder line;
    char *text;
    size_t tcap;
};

static struct sw_scratch *scratch_of(struct sw_sink *sw)
{
    return (struct sw_scratch *)(void *)(sw + 1);
}

/* ---- shared helpers ---- */

int64_t mars_skywalking_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum mars_sink_result mars_skywalking_classify(struct sw_sink *sw, const char *what,
                                               const struct mars_grpc_result *res, uint64_t events)
{
    struct mars_stats *st = mars_sink_stats(sw->sink);
    const char *code = mars_grpc_code_name(res->code);
    if (res->code == MARS_GRPC_OK)
        return MARS_SINK_OK;
    if (res->code == MARS_GRPC_CANCELLED && res->transport)
        return MARS_SINK_ABORTED;
    if (mars_grpc_retryable(res->code)) {
        mars_stat_add(&st->errors[MARS_ERR_WRITE], 1);
        MARS_LOG_RL(MARS_LOG_WARN, sw->id, "%s failed (%s: %s); will retry", what, code,
                    res->message);
        mars_sink_last_error(sw->sink, "%s: %s: %s", what, code, res->message);
        return MARS_SINK_RETRY;
    }
    if (res->code == MARS_GRPC_UNAUTHENTICATED || res->code == MARS_GRPC_PERMISSION_DENIED) {
        MARS_LOG_RL(MARS_LOG_ERROR, sw->id,
                    "%s refused: the OAP does not accept the token (%s: %s); check `token` "
                    "(permanent, dropping %llu events)",
                    what, code, res->message, (unsigned long long)events);
        mars_sink_last_error(sw->sink, "%s: the OAP does not accept the token (%s: %s)", what, code,
                             res->message);
    } else {
        MARS_LOG_RL(MARS_LOG_ERROR, sw->id, "%s refused (%s: %s; permanent, dropping %llu events)",
                    what, code, res->message, (unsigned long long)events);
        mars_sink_last_error(sw->sink, "%s: %s: %s", what, code, res->message);
    }
    return MARS_SINK_REJECTED;
}

static const char *str_set(struct sw_str *s, const char *p, size_t n)
{
    if (mars_grow(&s->p, &s->cap, n + 1, 1))
        return NULL;
    if (n)
        memcpy(s->p, p, n);
    s->p[n] = '\0';
    return s->p;
}

/* The text of field p on ev, copied into s; "" when absent; NULL on -ENOMEM. */
static const char *field_text(struct sw_sink *sw, const struct mars_event *ev,
                              const struct mars_path *p, struct sw_str *s)
{
    struct mars_value v;
    struct sw_scratch *sc = scratch_of(sw);
    uint32_t len = 0;
    if (!p || !mars_fields_get(ev, p, &v) || v.kind == MARS_FIELD_NULL ||
        v.kind == MARS_FIELD_OBJECT)
        return "";
    const char *t = mars_value_text(&v, &sc->text, &sc->tcap, &len);
    return t ? str_set(s, t, len) : NULL;
}

/* ---- logs over gRPC ---- */

/* A log event for the log service (trace segments go their own way). */
static bool is_log(const struct mars_event *ev)
{
    return ev->kind == MARS_EVENT_LOG && !(ev->flags & MARS_EVF_TRACE);
}

static int put_log(struct sw_sink *sw, const struct mars_event *ev, struct mars_grpc_buf *b)
{
    struct sw_scratch *sc = scratch_of(sw);
    const struct sw_conf *c = sw->conf;
    Skywalking__V3__LogData ld = SKYWALKING__V3__LOG_DATA__INIT;
    Skywalking__V3__LogDataBody body = SKYWALKING__V3__LOG_DATA_BODY__INIT;
    Skywalking__V3__TextLog text = SKYWALKING__V3__TEXT_LOG__INIT;
    Skywalking__V3__JSONLog json = SKYWALKING__V3__JSONLOG__INIT;
    Skywalking__V3__TraceContext tc = SKYWALKING__V3__TRACE_CONTEXT__INIT;
    Skywalking__V3__LogTags tags = SKYWALKING__V3__LOG_TAGS__INIT;

    ld.timestamp = ev->ts_ns > 0 ? ev->ts_ns / 1000000 : 0;
    ld.service = c->service;
    ld.serviceinstance = sw->instance;
    ld.layer = c->layer ? c->layer : "";
    ld.endpoint = (char *)field_text(sw, ev, sw->endpoint, &sc->endpoint);
    ld.body = &body;
    if (c->body == SW_BODY_JSON) {
        mars_encoder_reset(&sc->line);
        if (mars_encode_json_event(&sc->line, ev) || mars_encoder_put(&sc->line, "", 1))
            return -ENOMEM;
        json.json = sc->line.out;
        body.content_case = SKYWALKING__V3__LOG_DATA_BODY__CONTENT_JSON;
        body.json = &json;
    } else {
        text.text = (char *)str_set(&sc->msg, ev->msg.ptr, ev->msg.len);
        body.content_case = SKYWALKING__V3__LOG_DATA_BODY__CONTENT_TEXT;
        body.text = &text;
    }
    const char *tid = field_text(sw, ev, sw->trace_id, &sc->trace);
    if (tid && tid[0]) {
        struct mars_value v;
        double span = 0;
        tc.traceid = (char *)tid;
        tc.tracesegmentid = (char *)field_text(sw, ev, sw->segment_id, &sc->segment);
        if (mars_fields_get(ev, sw->span_id, &v) && mars_value_number(&v, &span) &&
            span >= INT32_MIN && span <= INT32_MAX)
            tc.spanid = (int32_t)span;
        ld.tracecontext = &tc;
    }
    for (size_t i = 0; i < sw->ntags; i++) {
        const char *t = field_text(sw, ev, sw->tags[i], &sc->tags[i]);
        if (!t)
            return -ENOMEM;
        if (!t[0])
            continue;
        sc->kv[tags.n_data] =
            (Skywalking__V3__KeyStringValuePair)SKYWALKING__V3__KEY_STRING_VALUE_PAIR__INIT;
        sc->kv[tags.n_data].key = c->tags.v[i];
        sc->kv[tags.n_data].value = (char *)t;
        sc->kvp[tags.n_data] = &sc->kv[tags.n_data];
        tags.n_data++;
    }
    if (tags.n_data) {
        tags.data = sc->kvp;
        ld.tags = &tags;
    }
    if (!ld.endpoint || !tid ||
        (body.content_case == SKYWALKING__V3__LOG_DATA_BODY__CONTENT_TEXT && !text.text))
        return -ENOMEM;
    return mars_grpc_buf_add(b, &ld.base);
}

/* ---- logs over HTTP (proto3 JSON) ---- */

static int json_member(struct mars_encoder *e, const char *key, const char *v, bool comma)
{
    int rc = comma ? PUT_LIT(e, ",") : 0;
    rc = rc ? rc : mars_encode_json_string(e, key, strlen(key));
    rc = rc ? rc : PUT_LIT(e, ":");
    return rc ? rc : mars_encode_json_string(e, v, strlen(v));
}

static int put_log_json(struct sw_sink *sw, const struct mars_event *ev, struct mars_encoder *e)
{
    struct sw_scratch *sc = scratch_of(sw);
    const struct sw_conf *c = sw->conf;
    char num[64];
    int rc = PUT_LIT(e, "{");
    int n = snprintf(num, sizeof(num), "\"timestamp\":%lld,",
                     (long long)(ev->ts_ns > 0 ? ev->ts_ns / 1000000 : 0));
    rc = rc ? rc : mars_encoder_put(e, num, (size_t)n);
    rc = rc ? rc : json_member(e, "service", c->service, false);
    rc = rc ? rc : json_member(e, "serviceInstance", sw->instance, true);
    if (rc == 0 && c->layer && c->layer[0])
        rc = json_member(e, "layer", c->layer, true);
    const char *ep = field_text(sw, ev, sw->endpoint, &sc->endpoint);
    if (!ep)
        return -ENOMEM;
    if (rc == 0 && ep[0])
        rc = json_member(e, "endpoint", ep, true);
    if (c->body == SW_BODY_JSON) {
        mars_encoder_reset(&sc->line);
        rc = rc ? rc : mars_encode_json_event(&sc->line, ev);
        rc = rc ? rc : PUT_LIT(e, ",\"body\":{\"json\":{\"json\":");
        rc = rc ? rc : mars_encode_json_string(e, sc->line.out, sc->line.out_len);
    } else {
        rc = rc ? rc : PUT_LIT(e, ",\"body\":{\"text\":{\"text\":");
        rc = rc ? rc : mars_encode_json_string(e, ev->msg.ptr, ev->msg.len);
    }
    rc = rc ? rc : PUT_LIT(e, "}}");
    const char *tid = field_text(sw, ev, sw->trace_id, &sc->trace);
    if (rc == 0 && tid && tid[0]) {
        struct mars_value v;
        double span = 0;
        const char *seg = field_text(sw, ev, sw->segment_id, &sc->segment);
        if (!mars_fields_get(ev, sw->span_id, &v) || !mars_value_number(&v, &span))
            span = 0;
        rc = PUT_LIT(e, ",\"traceContext\":{");
        rc = rc ? rc : json_member(e, "traceId", tid, false);
        rc = rc ? rc : json_member(e, "traceSegmentId", seg ? seg : "", true);
        n = snprintf(num, sizeof(num), ",\"spanId\":%d}", (int)span);
        rc = rc ? rc : mars_encoder_put(e, num, (size_t)n);
    }
    bool first = true;
    for (size_t i = 0; rc == 0 && i < sw->ntags; i++) {
        const char *t = field_text(sw, ev, sw->tags[i], &sc->tags[i]);
        if (!t)
            return -ENOMEM;
        if (!t[0])
            continue;
        rc = (first ? PUT_LIT(e, ",\"tags\":{\"data\":[{") : PUT_LIT(e, ",{"));
        rc = rc ? rc : json_member(e, "key", c->tags.v[i], false);
        rc = rc ? rc : json_member(e, "value", t, true);
        rc = rc ? rc : PUT_LIT(e, "}");
        first = false;
    }
    if (rc == 0 && !first)
        rc = PUT_LIT(e, "]}");
    return rc ? rc : PUT_LIT(e, "}");
}

/* ---- requests ---- */

static void slot_finish(struct sw_slot *sl, enum mars_sink_result res)
{
    struct mars_sink_req *r = sl->r;
    sl->r = NULL;
    if (res != MARS_SINK_RETRY) {
        free(r->sink_data);
        r->sink_data = NULL;
    }
    mars_sink_done(sl->sw->sink, r, res, res == MARS_SINK_OK ? sl->bytes : 0);
}

static int start_phase(struct sw_slot *sl, enum sw_phase from, bool *none);

/* r->sink_data: the phases delivered by earlier tries of this request, so a retry sends
 * only what is left (bit 1 << phase), and which of its discards were counted already. */
#define BAD_COUNTED     (1u << PH__COUNT)
#define SKIPPED_COUNTED (2u << PH__COUNT)
#define IGNORED_COUNTED (4u << PH__COUNT)

static unsigned phases_done(const struct mars_sink_req *r)
{
    return r->sink_data ? *(const unsigned *)r->sink_data : 0;
}

/* Sets bits in r->sink_data. Returns false on -ENOMEM. */
static bool mark_done(struct mars_sink_req *r, unsigned bits)
{
    if (!r->sink_data)
        r->sink_data = calloc(1, sizeof(unsigned));
    if (!r->sink_data)
        return false;
    *(unsigned *)r->sink_data |= bits;
    return true;
}

static void on_call_done(struct mars_grpc_call *c, const struct mars_grpc_result *res)
{
    struct sw_slot *sl = MARS_CONTAINER_OF(c, struct sw_slot, call);
    struct sw_sink *sw = sl->sw;
    enum mars_sink_result out =
        mars_skywalking_classify(sw, phase_names[sl->phase], res, sl->count[sl->phase]);
    if (out == MARS_SINK_OK) {
        sl->bytes += sl->buf.len;
        if (!mark_done(sl->r, 1u << sl->phase)) {
            out = MARS_SINK_RETRY;
        } else {
            bool none;
            int rc = start_phase(sl, sl->phase + 1, &none);
            if (rc == 0 && !none)
                return;
            if (rc)
                out = MARS_SINK_RETRY;
        }
    }
    slot_finish(sl, out);
}

static int start_call(struct sw_slot *sl, const char *path)
{
    struct sw_sink *sw = sl->sw;
    sl->call.path = path;
    sl->call.body = sl->buf.p;
    sl->call.body_len = sl->buf.len;
    sl->call.timeout_ns = mars_sink_request_timeout(sw->sink);
    sl->call.done = on_call_done;
    return mars_grpc_call_start(sw->ch, &sl->call);
}

/* *none when every metric was a summary (skipped, counted). */
static int start_meters(struct sw_slot *sl, bool *none)
{
    uint64_t n = 0, skipped = 0;
    mars_grpc_buf_reset(&sl->buf);
    int rc = mars_skywalking_meter_encode(sl->sw, sl->r, &sl->buf, &n, &skipped);
    if (rc == 0 && skipped && !(phases_done(sl->r) & SKIPPED_COUNTED) &&
        mark_done(sl->r, SKIPPED_COUNTED))
        mars_stat_add(&mars_sink_stats(sl->sw->sink)->discarded_intentional, skipped);
    *none = rc == 0 && n == 0;
    return rc || n == 0 ? rc : start_call(sl, METERS_PATH);
}

/* Encodes the request's segments; *none when not one could be converted (counted). */
static int start_traces(struct sw_slot *sl, bool *none)
{
    struct sw_sink *sw = sl->sw;
    uint64_t n = 0, bad = 0;
    mars_grpc_buf_reset(&sl->buf);
    int rc = mars_skywalking_trace_encode(sw, sl->r, &sl->buf, &n, &bad);
    if (rc == 0 && bad && !(phases_done(sl->r) & BAD_COUNTED) && mark_done(sl->r, BAD_COUNTED)) {
        struct mars_stats *st = mars_sink_stats(sw->sink);
        mars_stat_add(&st->errors[MARS_ERR_ENCODE], bad);
        mars_stat_add(&st->discarded_unintentional, bad);
        MARS_LOG_RL(MARS_LOG_WARN, sw->id,
                    "%llu trace records are no SkyAPM segment (or have ids that are not "
                    "numbers on v6): dropped",
                    (unsigned long long)bad);
    }
    *none = rc == 0 && n == 0;
    if (rc || n == 0)
        return rc;
    return start_call(sl, sw->conf->protocol == SW_V6 ? TRACES_V6_PATH : TRACES_PATH);
}

static void on_http_done(struct mars_http_req *hr, const struct mars_http_resp *resp)
{
    struct sw_slot *sl = MARS_CONTAINER_OF(hr, struct sw_slot, http);
    struct mars_grpc_result res = {.http_status = resp->status, .message = ""};
    char msg[256];
    if (resp->error) {
        res.code = resp->error == -ECANCELED ? MARS_GRPC_CANCELLED : MARS_GRPC_UNAVAILABLE;
        res.transport = true;
        res.message = resp->error_text;
    } else if (resp->status >= 200 && resp->status < 300) {
        res.code = MARS_GRPC_OK;
    } else {
        /* 5xx, 408 and 429 are the OAP's trouble: retried like UNAVAILABLE */
        res.code = resp->status >= 500 || resp->status == 408 || resp->status == 429
                       ? MARS_GRPC_UNAVAILABLE
                       : mars_grpc_code_from_http(resp->status);
        snprintf(msg, sizeof(msg), "HTTP %d %.*s", resp->status,
                 (int)(resp->body_len < 160 ? resp->body_len : 160), resp->body);
        res.message = msg;
    }
    enum mars_sink_result out = mars_skywalking_classify(sl->sw, "logs", &res, sl->count[PH_LOGS]);
    if (out == MARS_SINK_OK)
        sl->bytes += sl->json.out_len;
    slot_finish(sl, out);
}

static int send_logs_http(struct sw_slot *sl)
{
    struct sw_sink *sw = sl->sw;
    struct mars_sink_req *r = sl->r;
    struct mars_encoder *e = &sl->json;
    bool first = true;
    mars_encoder_reset(e);
    int rc = PUT_LIT(e, "[");
    for (uint32_t b = 0; rc == 0 && b < r->n; b++)
        for (uint32_t i = 0; rc == 0 && i < r->batches[b]->n; i++) {
            const struct mars_event *ev = &r->batches[b]->ev[i];
            if (!is_log(ev))
                continue;
            rc = first ? 0 : PUT_LIT(e, ",");
            rc = rc ? rc : put_log_json(sw, ev, e);
            first = false;
        }
    rc = rc ? rc : PUT_LIT(e, "]");
    if (rc)
        return rc;
    sl->http = (struct mars_http_req){
        .method = "POST",
        .url = sw->base_url,
        .headers = sw->hdrs,
        .body = e->out,
        .body_len = e->out_len,
        .timeout_ns = mars_sink_request_timeout(sw->sink),
        .tls = sw->conf->tls.enabled ? &sw->tls : NULL,
        .max_body = 4096,
        .done = on_http_done,
    };
    return mars_http_submit(sw->http, &sl->http);
}

static int send_logs_grpc(struct sw_slot *sl)
{
    struct mars_sink_req *r = sl->r;
    int rc = 0;
    mars_grpc_buf_reset(&sl->buf);
    for (uint32_t b = 0; rc == 0 && b < r->n; b++)
        for (uint32_t i = 0; rc == 0 && i < r->batches[b]->n; i++)
            if (is_log(&r->batches[b]->ev[i]))
                rc = put_log(sl->sw, &r->batches[b]->ev[i], &sl->buf);
    return rc ? rc : start_call(sl, LOGS_PATH);
}

/* Starts the first phase from `from` on that has events and is not done yet; *none when
 * there is none left. Returns 0 or a negative errno. */
static int start_phase(struct sw_slot *sl, enum sw_phase from, bool *none)
{
    unsigned done = phases_done(sl->r);
    *none = false;
    for (enum sw_phase ph = from; ph < PH__COUNT; ph++) {
        if (!sl->count[ph] || (done & (1u << ph)))
            continue;
        sl->phase = ph;
        if (ph == PH_LOGS)
            return sl->sw->conf->transport == SW_HTTP ? send_logs_http(sl) : send_logs_grpc(sl);
        bool empty;
        int rc = ph == PH_METERS ? start_meters(sl, &empty) : start_traces(sl, &empty);
        if (rc || !empty)
            return rc;
    }
    *none = true;
    return 0;
}

static void sw_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct sw_sink *sw = mars_sink_state(s);
    const struct sw_conf *c = sw->conf;
    uint64_t n[PH__COUNT] = {0};
    for (uint32_t b = 0; b < r->n; b++)
        for (uint32_t i = 0; i < r->batches[b]->n; i++) {
            const struct mars_event *ev = &r->batches[b]->ev[i];
            n[ev->kind == MARS_EVENT_METRIC  ? PH_METERS
              : (ev->flags & MARS_EVF_TRACE) ? PH_TRACES
                                             : PH_LOGS]++;
        }
    /* What has nowhere to go is discarded on purpose (counted as the prometheus_exporter
     * sink counts what it ignores; the engine's sent counter includes them, as the request
     * ends OK): v6 has no log or meter service, http no trace or meter service, and
     * metrics go only with meters: true. */
    bool v6 = c->protocol == SW_V6, http = c->transport == SW_HTTP;
    uint64_t ignored = 0;
    if (v6 || http || !c->meters) {
        ignored += n[PH_METERS];
        n[PH_METERS] = 0;
    }
    if (v6) {
        ignored += n[PH_LOGS];
        n[PH_LOGS] = 0;
    }
    if (http) {
        ignored += n[PH_TRACES];
        n[PH_TRACES] = 0;
    }
    if (ignored && !(phases_done(r) & IGNORED_COUNTED) && mark_done(r, IGNORED_COUNTED))
        mars_stat_add(&mars_sink_stats(s)->discarded_intentional, ignored);
    struct sw_slot *sl = NULL;
    for (unsigned i = 0; i < sw->nslots && !sl; i++)
        if (!sw->slots[i].r)
            sl = &sw->slots[i];
    int rc = -EBUSY;
    bool none = false;
    if (sl) {
        sl->r = r;
        sl->bytes = 0;
        memcpy(sl->count, n, sizeof(n));
        rc = start_phase(sl, PH_LOGS, &none);
        if (rc || none)
            sl->r = NULL;
    }
    if (none) {
        free(r->sink_data);
        r->sink_data = NULL;
        mars_sink_done(s, r, MARS_SINK_OK, 0);
        return;
    }
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, sw->id, "cannot send: %s", strerror(-rc));
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_ENCODE], 1);
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
    }
}

/* ---- lifecycle ---- */

static char *default_instance(void)
{
    const char *pod = getenv("POD_NAME");
    char host[256];
    if (pod && pod[0])
        return strdup(pod);
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "mars");
    host[sizeof(host) - 1] = '\0';
    return strdup(host);
}

static struct mars_path *path_of(const char *f)
{
    size_t at;
    const char *why;
    return f ? mars_path_compile(f, strlen(f), &at, &why) : NULL;
}

static void sw_free(struct sw_sink *sw)
{
    struct sw_scratch *sc = scratch_of(sw);
    mars_skywalking_mgmt_fini(sw);
    for (unsigned i = 0; sw->slots && i < sw->nslots; i++) {
        mars_grpc_buf_fini(&sw->slots[i].buf);
        mars_encoder_fini(&sw->slots[i].json);
    }
    free(sw->slots);
    mars_grpc_channel_destroy(sw->ch);
    mars_http_destroy(sw->http);
    if (sw->shared)
        mars_skywalking_shared_release(sw);
    mars_path_destroy(sw->endpoint);
    mars_path_destroy(sw->trace_id);
    mars_path_destroy(sw->segment_id);
    mars_path_destroy(sw->span_id);
    for (size_t i = 0; i < sw->ntags; i++) {
        mars_path_destroy(sw->tags[i]);
        free(sc->tags[i].p);
    }
    free(sw->tags);
    free(sc->tags);
    free(sc->kv);
    free(sc->kvp);
    free(sc->msg.p);
    free(sc->endpoint.p);
    free(sc->trace.p);
    free(sc->segment.p);
    free(sc->text);
    mars_encoder_fini(&sc->line);
    if (sw->auth_hdr)
        explicit_bzero(sw->auth_hdr, strlen(sw->auth_hdr));
    if (sw->auth_md)
        explicit_bzero(sw->auth_md, strlen(sw->auth_md));
    free(sw->auth_hdr);
    free(sw->auth_md);
    free(sw->base_url);
    free(sw->instance);
    free(sw);
}

static int setup_transport(struct sw_sink *sw)
{
    const struct sw_conf *c = sw->conf;
    if (c->tls.enabled)
        mars_netconf_http_tls(&c->tls, sw->id, &sw->tls);
    /* a plain OAP's gRPC goes by mars's own h2c: libcurl is loaded only if a request needs
     * it (the JSON transport, a proxy); h2 over TLS is libcurl's */
    const struct mars_http_opts opts = {.curl_on_demand = !c->tls.enabled};
    sw->http = mars_http_create(mars_sink_loop(sw->sink), &opts);
    if (!sw->http)
        return -errno;
    if (c->token) {
        size_t n = strlen(c->token) + 20;
        sw->auth_md = malloc(n);
        if (!sw->auth_md)
            return -ENOMEM;
        snprintf(sw->auth_md, n, "authentication: %s", c->token);
    }
    if (c->transport == SW_HTTP) {
        size_t n = strlen(c->address) + 20;
        sw->base_url = malloc(n);
        if (!sw->base_url)
            return -ENOMEM;
        snprintf(sw->base_url, n, "%s://%s/v3/logs", c->tls.enabled ? "https" : "http", c->address);
        sw->hdrs[0] = "Content-Type: application/json";
        sw->hdrs[1] = sw->auth_md;
        return 0;
    }
    const char *md[2] = {sw->auth_md, NULL};
    struct mars_grpc_channel_opts o = {
        .address = c->address,
        .tls = c->tls.enabled,
        .tls_conf = c->tls.enabled ? &sw->tls : NULL,
        .metadata = md,
    };
    sw->ch = mars_grpc_channel_create(sw->http, &o);
    return sw->ch ? 0 : -ENOMEM;
}

static int setup_fields(struct sw_sink *sw)
{
    const struct sw_conf *c = sw->conf;
    struct sw_scratch *sc = scratch_of(sw);
    sw->endpoint = path_of(c->endpoint_field);
    sw->trace_id = path_of("trace_id");
    sw->segment_id = path_of("segment_id");
    sw->span_id = path_of("span_id");
    size_t n = c->tags.n ? c->tags.n : 1;
    sw->tags = calloc(n, sizeof(*sw->tags));
    sc->tags = calloc(n, sizeof(*sc->tags));
    sc->kv = calloc(n, sizeof(*sc->kv));
    sc->kvp = calloc(n, sizeof(*sc->kvp));
    if (!sw->trace_id || !sw->segment_id || !sw->span_id || !sw->tags || !sc->tags || !sc->kv ||
        !sc->kvp || (c->endpoint_field && !sw->endpoint))
        return -ENOMEM;
    for (size_t i = 0; i < c->tags.n; i++)
        if (!(sw->tags[sw->ntags++] = path_of(c->tags.v[i])))
            return -EINVAL;
    return 0;
}

static int sw_init(struct mars_sink *s)
{
    const struct sw_conf *c = mars_sink_conf(s);
    struct sw_sink *sw = calloc(1, sizeof(*sw) + sizeof(struct sw_scratch));
    if (!sw)
        return -ENOMEM;
    sw->sink = s;
    sw->conf = c;
    sw->id = mars_sink_id(s);
    sw->instance = c->instance ? strdup(c->instance) : default_instance();
    int rc = sw->instance ? 0 : -ENOMEM;
    rc = rc ? rc : setup_fields(sw);
    rc = rc ? rc : setup_transport(sw);
    if (rc == 0) {
        sw->nslots = mars_sink_concurrency(s);
        sw->slots = calloc(sw->nslots, sizeof(*sw->slots));
        rc = sw->slots ? 0 : -ENOMEM;
        for (unsigned i = 0; rc == 0 && i < sw->nslots; i++)
            sw->slots[i].sw = sw;
    }
    if (rc == 0 && !mars_skywalking_shared_acquire(sw))
        rc = -ENOMEM;
    if (rc) {
        mars_error(sw->id, "cannot start: %s", strerror(-rc));
        sw_free(sw);
        return rc;
    }
    /* one instance per sink registers mars with the OAP, whatever the number of workers */
    sw->owner = !atomic_exchange(&sw->shared->owned, true);
    if (sw->owner) {
        if (c->protocol == SW_V6)
            mars_warn(sw->id, "protocol v6: the OAP has no log or meter service; events are "
                              "discarded, only the registration and the ping run");
        mars_skywalking_mgmt_start(sw);
    }
    mars_sink_set_state(s, sw);
    return 0;
}

static void sw_abort(struct mars_sink *s)
{
    struct sw_sink *sw = mars_sink_state(s);
    mars_skywalking_mgmt_stop(sw);
    /* every call in flight ends with CANCELLED: its request is reported ABORTED */
    mars_http_shutdown(sw->http);
}

static void sw_destroy(struct mars_sink *s)
{
    sw_free(mars_sink_state(s));
}

const struct mars_component_desc mars_sink_skywalking = {
    .name = "skywalking",
    .description = "Sends logs (and optionally meters) to an Apache SkyWalking OAP over gRPC "
                   "or its HTTP API, and registers mars as a service instance.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG | MARS_DATA_METRIC,
    .options = mars_skywalking_options,
    .conf_size = sizeof(struct sw_conf),
    .check = mars_skywalking_check,
    .sink = {.init = sw_init, .write = sw_write, .abort = sw_abort, .destroy = sw_destroy},
};
