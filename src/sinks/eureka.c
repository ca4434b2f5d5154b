/*
 * eureka.c - the `eureka` sink: registers instances with a Eureka server (Spring Cloud
 * Netflix or Netflix's own), keeps their leases alive, and sets their status from
 * health_check events, so a service without a Eureka client library joins a Spring Cloud
 * registry and leaves it when it is unhealthy or when mars stops.
 *
 * Protocol (protocols.md §2, §12): register is POST {server}/apps/{APP} with the instance
 * JSON, and only 204 counts; a heartbeat is PUT {server}/apps/{APP}/{id}?status=S&
 * lastDirtyTimestamp=MS every renewal_interval; a 404 on it (lease unknown, or the server
 * wants newer info) means register again at once. A status change is sent at once by
 * registering again with the new status and a new lastDirtyTimestamp, as Eureka's Java
 * client does: mars never sets a status override, which the server would keep after mars
 * is gone. At shutdown (the sink's abort, which the worker calls when the pipeline stops:
 * SIGTERM or reload) every instance that was registered is DELETEd, within
 * deregister_timeout.
 *
 * Servers: tried in order; a transport error or a 5xx moves to the next one (the request
 * is retried there with a short backoff), and failback_after later the first is tried
 * again, like the Java client's endpoint rotation. Basic auth comes from the URL
 * (user:pass@) or from username/password.
 *
 * Status: events from a health_check source wired with inputs: carry the state of each
 * check: its state-change event (fields check and status UP|DOWN, always sent) and its
 * mars_health_check_up metric (1 only while the check is UP). An instance
 * with health_check NAME is STARTING until the first of these, then follows them; one
 * without is UP from the start. Other events are ignored.
 *
 * Workers: the engine makes one instance of this sink per worker with an upstream, but
 * each Eureka instance must be registered once. The sink's instances share one
 * `struct eu_reg` (mars_shared_acquire under the sink id): the first to acquire it owns
 * the registrar (HTTP client, timers) and runs it on its loop; every instance, owner or
 * not, posts the statuses it reads into the reg's atomics. The owner acts on its own
 * events at once and picks up other workers' posts on its tick (200 ms).
 *
 * Thread: each instance's worker; the reg's `want` array is atomic, the rest of the
 * registrar is touched only by the owner's worker.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/ev.h"
#include "core/http_client.h"
#include "core/grpc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "sinks/eureka_internal.h"

#define TICK_NS        200000000LL
#define BACKOFF_MIN_NS 500000000LL

enum eu_status { EU_UP, EU_DOWN, EU_STARTING, EU_OUT_OF_SERVICE, EU_UNKNOWN, EU__COUNT };
static const char *const status_names[] = {"UP",      "DOWN", "STARTING", "OUT_OF_SERVICE",
                                           "UNKNOWN", NULL};

enum eu_op { OP_REGISTER, OP_RENEW, OP_DELETE };
static const char *const op_names[] = {"register", "heartbeat", "deregister"};

/* Bounded failure reasons for mars_eureka_failures_total{reason}. */
enum eu_reason { R_TRANSPORT, R_SERVER_ERROR, R_NOT_FOUND, R_REJECTED, R__COUNT };
static const char *const reason_names[] = {"transport", "server_error", "not_found", "rejected"};

/* Shared by the sink's instances on every worker (mars_shared_acquire). */
struct eu_reg {
    struct eu_sink *owner;
    size_t n;
    _Atomic int *want; /* per configured instance: the status its events ask for */
};

struct eu_server {
    char *url;  /* base without user:pass@ and without a trailing slash */
    char *user; /* NULL: none (or the sink's username) */
    char *password;
};

struct eu_inst {
    struct eu_sink *es;
    size_t idx;
    const struct eu_instance_conf *c;
    char *app, *id, *id_esc, *host, *home, *status_url, *health_url, *vip, *svip;
    int status;       /* what the registry was last told (or is about to be) */
    int64_t dirty_ms; /* lastDirtyTimestamp: when status last changed */
    bool registered, need_register, busy;
    enum eu_op op;
    size_t server;   /* the server of the request in flight */
    unsigned fails;  /* failed requests in a row, for the backoff */
    int64_t next_ns; /* no request before this (monotonic) */
    struct mars_http_req req, del;
    char *url, *del_url, *body;
    struct mars_mseries *m_registered, *m_heartbeats, *m_status[EU__COUNT], *m_fail[R__COUNT];
};

struct eu_sink {
    struct mars_sink *sink;
    const struct eu_conf *conf;
    struct eu_reg *reg;
    bool owner;
    struct mars_ev_loop *loop;
    struct mars_http *http;
    struct mars_http_tls tls;
    const char *headers[3];
    struct eu_server *servers;
    size_t nservers, cur;
    int64_t failed_over_ns;
    struct eu_inst *inst;
    size_t ninst;
    struct mars_ev_op tick, fin;
    bool tick_armed, fin_armed, stopping;
    unsigned deleting;
    unsigned shard;
    struct mars_mfamily *f_fail;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Percent-encodes a path segment (instance ids hold ':' and may hold anything). */
static char *escape_segment(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~:@", ch)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- the shared registry of the sink's instances ---- */

static void *reg_create(void *arg)
{
    struct eu_sink *es = arg;
    struct eu_reg *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->n = es->conf->instances.n;
    r->want = calloc(r->n ? r->n : 1, sizeof(*r->want));
    if (!r->want) {
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++)
        atomic_init(&r->want[i], eu_instance_at(es->conf, i)->health_check ? EU_STARTING : EU_UP);
    r->owner = es; /* the first instance to acquire runs the registrar */
    return r;
}

static void reg_destroy(void *obj)
{
    struct eu_reg *r = obj;
    free(r->want);
    free(r);
}

/* ---- metrics ---- */

static struct mars_mfamily *family(struct eu_sink *es, const char *name, const char *help,
                                   enum mars_mtype type, const char *const *labels)
{
    struct mars_obs *obs = mars_sink_obs(es->sink);
    if (!obs)
        return NULL;
    return mars_metrics_family(
        mars_obs_metrics(obs),
        &(struct mars_mfamily_desc){.name = name, .help = help, .type = type, .labels = labels});
}

static void make_metrics(struct eu_sink *es)
{
    static const char *const base[] = {"component_id", "app", "instance_id", NULL};
    static const char *const with_status[] = {"component_id", "app", "instance_id", "status", NULL};
    static const char *const with_reason[] = {"component_id", "app",    "instance_id",
                                              "request",      "reason", NULL};
    struct mars_mfamily *reg =
        family(es, "mars_eureka_registered", "1 while the instance is registered with Eureka.",
               MARS_MT_GAUGE, base);
    struct mars_mfamily *hb =
        family(es, "mars_eureka_heartbeats_total", "Heartbeats the Eureka server accepted.",
               MARS_MT_COUNTER, base);
    struct mars_mfamily *st = family(es, "mars_eureka_status",
                                     "1 for the status the instance has in Eureka, 0 for the "
                                     "others.",
                                     MARS_MT_GAUGE, with_status);
    struct mars_mfamily *fl =
        family(es, "mars_eureka_failures_total",
               "Eureka requests that failed, by request and reason.", MARS_MT_COUNTER, with_reason);
    es->f_fail = fl;
    for (size_t i = 0; i < es->ninst; i++) {
        struct eu_inst *in = &es->inst[i];
        const char *v[] = {mars_sink_id(es->sink), in->app, in->id, NULL, NULL, NULL};
        in->m_registered = reg ? mars_mfamily_series(reg, v) : NULL;
        in->m_heartbeats = hb ? mars_mfamily_series(hb, v) : NULL;
        for (int s = 0; s < EU__COUNT; s++) {
            v[3] = status_names[s];
            in->m_status[s] = st ? mars_mfamily_series(st, v) : NULL;
        }
        for (int r = 0; r < R__COUNT; r++) {
            /* heartbeats are the request that fails in the steady state; the request
             * label of the others is set when they fail (see fail()) */
            v[3] = "heartbeat";
            v[4] = reason_names[r];
            in->m_fail[r] = fl ? mars_mfamily_series(fl, v) : NULL;
        }
    }
}

static void count_failure(struct eu_inst *in, enum eu_op op, enum eu_reason r)
{
    if (op == OP_RENEW) {
        mars_mseries_add(in->m_fail[r], in->es->shard, 1);
        return;
    }
    struct mars_mfamily *fl = in->es->f_fail;
    const char *v[] = {
        mars_sink_id(in->es->sink), in->app, in->id, op_names[op], reason_names[r], NULL};
    mars_mseries_add(fl ? mars_mfamily_series(fl, v) : NULL, in->es->shard, 1);
}

static void set_status_metric(struct eu_inst *in)
{
    for (int s = 0; s < EU__COUNT; s++)
        mars_mseries_set(in->m_status[s], in->es->shard, s == in->status ? 1 : 0);
}

/* ---- instance JSON ---- */

static void json_kv(struct evbuffer *b, const char *k, const char *v, bool comma)
{
    mars_json_string(b, k);
    evbuffer_add(b, ":", 1);
    mars_json_string(b, v);
    if (comma)
        evbuffer_add(b, ",", 1);
}

static char *instance_json(struct eu_inst *in)
{
    const struct eu_instance_conf *c = in->c;
    const struct eu_conf *conf = in->es->conf;
    struct evbuffer *b = evbuffer_new();
    char ms[32];
    if (!b)
        return NULL;
    snprintf(ms, sizeof(ms), "%lld", (long long)in->dirty_ms);
    evbuffer_add_printf(b, "{\"instance\":{");
    json_kv(b, "instanceId", in->id, true);
    json_kv(b, "hostName", in->host, true);
    json_kv(b, "app", in->app, true);
    json_kv(b, "ipAddr", c->ip, true);
    json_kv(b, "status", status_names[in->status], true);
    json_kv(b, "overriddenStatus", "UNKNOWN", true);
    evbuffer_add_printf(b,
                        "\"port\":{\"$\":%lld,\"@enabled\":\"%s\"},"
                        "\"securePort\":{\"$\":%lld,\"@enabled\":\"%s\"},\"countryId\":1,",
                        (long long)(c->port ? c->port : 80), c->port ? "true" : "false",
                        (long long)(c->secure_port ? c->secure_port : 443),
                        c->secure_port ? "true" : "false");
    evbuffer_add_printf(b, "\"dataCenterInfo\":{\"@class\":"
                           "\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\","
                           "\"name\":\"MyOwn\"},");
    evbuffer_add_printf(b,
                        "\"leaseInfo\":{\"renewalIntervalInSecs\":%lld,\"durationInSecs\":%lld},",
                        (long long)((conf->renewal_interval + 999999999) / 1000000000),
                        (long long)(conf->lease_duration / 1000000000));
    evbuffer_add_printf(b, "\"metadata\":{");
    for (size_t i = 0; i < c->metadata.n; i++)
        json_kv(b, c->metadata.keys[i], c->metadata.vals[i], i + 1 < c->metadata.n);
    evbuffer_add_printf(b, "},");
    json_kv(b, "homePageUrl", in->home, true);
    json_kv(b, "statusPageUrl", in->status_url, true);
    json_kv(b, "healthCheckUrl", in->health_url, true);
    json_kv(b, "vipAddress", in->vip, true);
    json_kv(b, "secureVipAddress", in->svip, true);
    json_kv(b, "isCoordinatingDiscoveryServer", "false", true);
    json_kv(b, "lastUpdatedTimestamp", ms, true);
    json_kv(b, "lastDirtyTimestamp", ms, false);
    evbuffer_add_printf(b, "}}");
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    if (s) {
        evbuffer_remove(b, s, n);
        s[n] = '\0';
    }
    evbuffer_free(b);
    return s;
}

/* ---- requests ---- */

static void step(struct eu_inst *in);
static void finish_stop(struct eu_sink *es);

static int64_t backoff_ns(const struct eu_inst *in)
{
    int64_t d = BACKOFF_MIN_NS << (in->fails < 6 ? in->fails : 6);
    int64_t max = in->es->conf->renewal_interval;
    return d < max ? d : max;
}

static void fill_req(struct eu_inst *in, struct mars_http_req *r, const char *method,
                     const char *url, const char *body, int64_t timeout,
                     void (*done)(struct mars_http_req *, const struct mars_http_resp *))
{
    struct eu_sink *es = in->es;
    const struct eu_server *sv = &es->servers[es->cur];
    *r = (struct mars_http_req){.method = method,
                                .url = url,
                                .headers = es->headers,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ns = timeout,
                                .tls = &es->tls,
                                .done = done,
                                .data = in,
                                .max_body = 1024};
    if (sv->user) {
        r->user = sv->user;
        r->password = sv->password;
    } else if (es->conf->username) {
        r->user = es->conf->username;
        r->password = es->conf->password;
    }
}

static void on_done(struct mars_http_req *r, const struct mars_http_resp *resp);

static void send_op(struct eu_inst *in, enum eu_op op)
{
    struct eu_sink *es = in->es;
    const char *base = es->servers[es->cur].url;
    free(in->url);
    free(in->body);
    in->body = NULL;
    if (op == OP_REGISTER) {
        in->url = xprintf("%s/apps/%s", base, in->app);
        in->body = instance_json(in);
    } else {
        in->url = xprintf("%s/apps/%s/%s?status=%s&lastDirtyTimestamp=%lld", base, in->app,
                          in->id_esc, status_names[in->status], (long long)in->dirty_ms);
        in->body = strdup("{}");
    }
    if (!in->url || !in->body) {
        in->next_ns = mars_ev_now(es->loop) + backoff_ns(in);
        return;
    }
    fill_req(in, &in->req, op == OP_REGISTER ? "POST" : "PUT", in->url, in->body,
             es->conf->request_timeout, on_done);
    in->op = op;
    in->server = es->cur;
    int rc = mars_http_submit(es->http, &in->req);
    if (rc) {
        mars_warn(mars_sink_id(es->sink), "%s of %s/%s: %s", op_names[op], in->app, in->id,
                  strerror(-rc));
        in->next_ns = mars_ev_now(es->loop) + backoff_ns(in);
        return;
    }
    in->busy = true;
}

/* The server of a failed request is given up for the next one, if there is another. */
static void fail_over(struct eu_sink *es, size_t server)
{
    if (es->nservers < 2 || server != es->cur)
        return;
    es->cur = (es->cur + 1) % es->nservers;
    es->failed_over_ns = mars_ev_now(es->loop);
    mars_warn(mars_sink_id(es->sink), "failing over to Eureka server %s", es->servers[es->cur].url);
}

static void on_done(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct eu_inst *in = r->data;
    struct eu_sink *es = in->es;
    const char *id = mars_sink_id(es->sink);
    const char *server = es->servers[in->server].url;
    int64_t now = mars_ev_now(es->loop);
    in->busy = false;
    if (resp->error == -ECANCELED || es->stopping)
        return;
    bool ok = in->op == OP_REGISTER ? resp->status == 204 : resp->status == 200;
    if (ok) {
        in->fails = 0;
        in->next_ns = now + es->conf->renewal_interval;
        if (in->op == OP_REGISTER) {
            if (!in->registered)
                mars_info(id, "registered %s/%s as %s with %s", in->app, in->id,
                          status_names[in->status], server);
            in->registered = true;
            in->need_register = false;
            mars_mseries_set(in->m_registered, es->shard, 1);
        } else {
            mars_mseries_add(in->m_heartbeats, es->shard, 1);
        }
        return;
    }
    in->fails++;
    if (in->op == OP_RENEW && resp->status == 404) {
        /* lease unknown (expired, evicted, server restarted) or our info is newer */
        count_failure(in, in->op, R_NOT_FOUND);
        mars_info(id,
                  "Eureka server %s does not know %s/%s (404 on heartbeat): registering "
                  "again",
                  server, in->app, in->id);
        in->registered = false;
        in->need_register = true;
        mars_mseries_set(in->m_registered, es->shard, 0);
        in->next_ns = 0;
        step(in);
        return;
    }
    if (resp->error || resp->status == 0 || resp->status >= 500) {
        count_failure(in, in->op, resp->error ? R_TRANSPORT : R_SERVER_ERROR);
        if (resp->error)
            mars_warn(id, "%s of %s/%s at Eureka server %s failed: %s", op_names[in->op], in->app,
                      in->id, server, resp->error_text ? resp->error_text : strerror(-resp->error));
        else
            mars_warn(id, "%s of %s/%s at Eureka server %s: HTTP %d", op_names[in->op], in->app,
                      in->id, server, resp->status);
        mars_sink_last_error(es->sink, "%s of %s/%s at %s: %s%d", op_names[in->op], in->app, in->id,
                             server, resp->error ? "transport error " : "HTTP ",
                             resp->error ? -resp->error : resp->status);
        fail_over(es, in->server);
        in->next_ns = now + (es->nservers > 1 && in->fails < es->nservers ? 0 : backoff_ns(in));
        return;
    }
    count_failure(in, in->op, R_REJECTED);
    mars_error(id, "%s of %s/%s refused by Eureka server %s: HTTP %d %.*s", op_names[in->op],
               in->app, in->id, server, resp->status,
               (int)(resp->body_len > 200 ? 200 : resp->body_len), resp->body ? resp->body : "");
    mars_sink_last_error(es->sink, "%s of %s/%s refused by %s: HTTP %d", op_names[in->op], in->app,
                         in->id, server, resp->status);
    if (in->op == OP_RENEW)
        in->need_register = true;
    in->next_ns = now + es->conf->renewal_interval;
}

/* Takes up a posted status and sends what is due for one instance. */
static void step(struct eu_inst *in)
{
    struct eu_sink *es = in->es;
    if (in->busy || es->stopping)
        return;
    int want = atomic_load_explicit(&es->reg->want[in->idx], memory_order_relaxed);
    if (want != in->status) {
        mars_info(mars_sink_id(es->sink), "%s/%s is now %s (was %s)", in->app, in->id,
                  status_names[want], status_names[in->status]);
        in->status = want;
        in->dirty_ms = wall_ms();
        in->need_register = true;
        set_status_metric(in);
        if (in->fails == 0)
            in->next_ns = 0; /* at once, unless the servers are failing */
    }
    if (mars_ev_now(es->loop) < in->next_ns)
        return;
    send_op(in, in->need_register || !in->registered ? OP_REGISTER : OP_RENEW);
}

static void arm_tick(struct eu_sink *es, int64_t ns);

static void on_tick(struct mars_ev_op *op, int res)
{
    struct eu_sink *es = op->data;
    es->tick_armed = false;
    if (res == -ECANCELED || es->stopping)
        return;
    if (es->cur != 0 && mars_ev_now(es->loop) - es->failed_over_ns >= es->conf->failback_after) {
        mars_info(mars_sink_id(es->sink), "going back to the first Eureka server %s",
                  es->servers[0].url);
        es->cur = 0;
    }
    for (size_t i = 0; i < es->ninst; i++)
        step(&es->inst[i]);
    arm_tick(es, TICK_NS);
}

static void arm_tick(struct eu_sink *es, int64_t ns)
{
    mars_ev_prep_timer(&es->tick, ns, on_tick, es);
    if (mars_ev_submit(es->loop, &es->tick) == 0)
        es->tick_armed = true;
    else
        mars_error(mars_sink_id(es->sink), "cannot arm the heartbeat timer");
}

/* ---- shutdown: DELETE every registered instance ---- */

static void on_fin(struct mars_ev_op *op, int res)
{
    struct eu_sink *es = op->data;
    (void)res;
    es->fin_armed = false;
    mars_http_shutdown(es->http);
}

static void finish_stop(struct eu_sink *es)
{
    /* not from inside the client's own callback: on the next loop turn */
    mars_ev_prep_timer(&es->fin, 0, on_fin, es);
    if (mars_ev_submit(es->loop, &es->fin) == 0)
        es->fin_armed = true;
    else
        mars_http_shutdown(es->http);
}

static void on_deleted(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct eu_inst *in = r->data;
    struct eu_sink *es = in->es;
    const char *id = mars_sink_id(es->sink);
    if (resp->status == 200 || resp->status == 404) {
        mars_info(id, "deregistered %s/%s from %s", in->app, in->id, es->servers[es->cur].url);
        mars_mseries_set(in->m_registered, es->shard, 0);
        in->registered = false;
    } else {
        count_failure(in, OP_DELETE,
                      resp->error           ? R_TRANSPORT
                      : resp->status >= 500 ? R_SERVER_ERROR
                                            : R_REJECTED);
        mars_warn(id, "deregistering %s/%s from Eureka server %s failed: %s%d", in->app, in->id,
                  es->servers[es->cur].url, resp->error ? "transport error " : "HTTP ",
                  resp->error ? -resp->error : resp->status);
    }
    if (--es->deleting == 0)
        finish_stop(es);
}

static void eureka_abort(struct mars_sink *s)
{
    struct eu_sink *es = mars_sink_state(s);
    if (!es || !es->owner || es->stopping)
        return;
    es->stopping = true;
    if (es->tick_armed)
        mars_ev_cancel(es->loop, &es->tick);
    for (size_t i = 0; i < es->ninst; i++) {
        struct eu_inst *in = &es->inst[i];
        bool maybe = in->registered || (in->busy && in->op == OP_REGISTER);
        if (in->busy)
            mars_http_cancel(es->http, &in->req);
        if (!maybe)
            continue;
        in->del_url = xprintf("%s/apps/%s/%s", es->servers[es->cur].url, in->app, in->id_esc);
        if (!in->del_url)
            continue;
        fill_req(in, &in->del, "DELETE", in->del_url, NULL, es->conf->deregister_timeout,
                 on_deleted);
        if (mars_http_submit(es->http, &in->del) == 0)
            es->deleting++;
    }
    if (es->deleting == 0)
        mars_http_shutdown(es->http);
}

/* ---- events: statuses from health_check ---- */

/* A root string member of ev's fields, or false. */
static bool field_str(const struct mars_event *ev, const char *key, struct mars_slice *out)
{
    const struct mars_fields *f = ev->fields;
    uint32_t k = f ? mars_fields_member(f, 0, key, (uint32_t)strlen(key)) : MARS_FIELD_NIL;
    if (k == MARS_FIELD_NIL || f->v[k].kind != MARS_FIELD_STRING ||
        (f->v[k].flags & MARS_FF_ESCAPED))
        return false;
    *out = (struct mars_slice){f->v[k].value, f->v[k].value_len};
    return true;
}

/* health_check's state-change event: fields check and status (UP or DOWN). */
static int state_event(const struct mars_event *ev, struct mars_slice *name)
{
    struct mars_slice st;
    if (!field_str(ev, "check", name) || !field_str(ev, "status", &st))
        return -1;
    if (st.len == 2 && memcmp(st.ptr, "UP", 2) == 0)
        return EU_UP;
    if (st.len == 4 && memcmp(st.ptr, "DOWN", 4) == 0)
        return EU_DOWN;
    return -1;
}

static int metric_state(const struct mars_metric *m, struct mars_slice *name)
{
    static const char up[] = "mars_health_check_up";
    if (m->name.len != sizeof(up) - 1 || memcmp(m->name.ptr, up, sizeof(up) - 1) != 0 ||
        m->value < 0.5)
        return -1; /* 0 is DOWN or undecided: the state-change event says which */
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (m->labels[i].name.len == 5 && memcmp(m->labels[i].name.ptr, "check", 5) == 0) {
            *name = m->labels[i].value;
            return EU_UP;
        }
    return -1;
}

static void post_status(struct eu_sink *es, const struct mars_slice *check, int st)
{
    for (size_t i = 0; i < es->conf->instances.n; i++) {
        const char *hc = eu_instance_at(es->conf, i)->health_check;
        if (!hc || strlen(hc) != check->len || memcmp(hc, check->ptr, check->len) != 0)
            continue;
        atomic_store_explicit(&es->reg->want[i], st, memory_order_relaxed);
        if (es->owner)
            step(&es->inst[i]);
    }
}

static void eureka_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct eu_sink *es = mars_sink_state(s);
    for (uint32_t bi = 0; bi < r->n; bi++) {
        const struct mars_batch *b = r->batches[bi];
        for (uint32_t i = 0; i < b->n; i++) {
            const struct mars_event *ev = &b->ev[i];
            struct mars_slice name;
            int st = ev->kind == MARS_EVENT_METRIC && ev->metric ? metric_state(ev->metric, &name)
                                                                 : state_event(ev, &name);
            if (st >= 0)
                post_status(es, &name, st);
        }
    }
    mars_sink_done(s, r, MARS_SINK_OK, 0);
}

/* ---- setup ---- */

static int parse_server(const char *text, struct eu_server *sv)
{
    const char *scheme_end = strstr(text, "://");
    const char *host = scheme_end ? scheme_end + 3 : text;
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    size_t n;
    if (at && (!slash || at < slash)) {
        const char *colon = memchr(host, ':', (size_t)(at - host));
        sv->user = strndup(host, (size_t)((colon ? colon : at) - host));
        sv->password = colon ? strndup(colon + 1, (size_t)(at - colon - 1)) : strdup("");
        sv->url = xprintf("%.*s%s", (int)(host - text), text, at + 1);
        if (!sv->user || !sv->password)
            return -ENOMEM;
        /* userinfo is percent-encoded in a URL (ops%40corp for ops@corp, p%3Aw for p:w);
         * the same decoding grpc-message needs */
        mars_grpc_percent_decode(sv->user, strlen(sv->user));
        mars_grpc_percent_decode(sv->password, strlen(sv->password));
    } else {
        sv->url = strdup(text);
    }
    if (!sv->url)
        return -ENOMEM;
    n = strlen(sv->url);
    while (n > 0 && sv->url[n - 1] == '/')
        sv->url[--n] = '\0';
    return 0;
}

static int make_instance(struct eu_sink *es, size_t i, const char *node_host)
{
    struct eu_inst *in = &es->inst[i];
    const struct eu_instance_conf *c = eu_instance_at(es->conf, i);
    in->es = es;
    in->idx = i;
    in->c = c;
    in->app = strdup(c->app);
    if (!in->app)
        return -ENOMEM;
    for (char *p = in->app; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    in->host = strdup(c->host_name ? c->host_name : node_host);
    long long port = (long long)(c->port ? c->port : c->secure_port);
    const char *scheme = c->port ? "http" : "https";
    in->id =
        c->instance_id ? strdup(c->instance_id) : xprintf("%s:%s:%lld", in->host, c->app, port);
    in->home =
        c->home_page_url ? strdup(c->home_page_url) : xprintf("%s://%s:%lld/", scheme, c->ip, port);
    in->status_url = c->status_page_url
                         ? strdup(c->status_page_url)
                         : xprintf("%s://%s:%lld/actuator/info", scheme, c->ip, port);
    if (c->health_check_url)
        in->health_url = strdup(c->health_check_url);
    else if (c->health_check && es->conf->admin_url)
        in->health_url = xprintf("%s/health/%s", es->conf->admin_url, c->health_check);
    else if (c->health_check)
        in->health_url = xprintf("http://%s:8686/health/%s", c->ip, c->health_check);
    else
        in->health_url = xprintf("%s://%s:%lld/actuator/health", scheme, c->ip, port);
    if (c->vip_address)
        in->vip = strdup(c->vip_address);
    else if ((in->vip = strdup(c->app)))
        for (char *p = in->vip; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    in->svip = strdup(c->secure_vip_address ? c->secure_vip_address : in->vip ? in->vip : "");
    in->id_esc = in->id ? escape_segment(in->id) : NULL;
    if (!in->host || !in->id || !in->home || !in->status_url || !in->health_url || !in->vip ||
        !in->svip || !in->id_esc)
        return -ENOMEM;
    in->status = c->health_check ? EU_STARTING : EU_UP;
    in->dirty_ms = wall_ms();
    in->need_register = true;
    return 0;
}

static void eu_free(struct eu_sink *es)
{
    if (es->http)
        mars_http_destroy(es->http);
    for (size_t i = 0; es->inst && i < es->ninst; i++) {
        struct eu_inst *in = &es->inst[i];
        free(in->app), free(in->id), free(in->id_esc), free(in->host), free(in->home);
        free(in->status_url), free(in->health_url), free(in->vip), free(in->svip);
        free(in->url), free(in->del_url), free(in->body);
    }
    free(es->inst);
    for (size_t i = 0; es->servers && i < es->nservers; i++) {
        free(es->servers[i].url), free(es->servers[i].user), free(es->servers[i].password);
    }
    free(es->servers);
    if (es->reg)
        mars_shared_release(mars_sink_obs(es->sink), mars_sink_id(es->sink), reg_destroy);
    free(es);
}

static int start_registrar(struct eu_sink *es)
{
    char node_host[256] = "localhost";
    if (gethostname(node_host, sizeof(node_host) - 1) != 0)
        snprintf(node_host, sizeof(node_host), "localhost");
    es->inst = calloc(es->ninst ? es->ninst : 1, sizeof(*es->inst));
    if (!es->inst)
        return -ENOMEM;
    for (size_t i = 0; i < es->ninst; i++) {
        int rc = make_instance(es, i, node_host);
        if (rc)
            return rc;
    }
    es->http = mars_http_create(es->loop, NULL);
    if (!es->http)
        return -ENOMEM;
    make_metrics(es);
    for (size_t i = 0; i < es->ninst; i++) {
        set_status_metric(&es->inst[i]);
        mars_mseries_set(es->inst[i].m_registered, es->shard, 0);
    }
    arm_tick(es, 0);
    return es->tick_armed ? 0 : -EIO;
}

static int eureka_init(struct mars_sink *s)
{
    const struct eu_conf *conf = mars_sink_conf(s);
    struct eu_sink *es = calloc(1, sizeof(*es));
    int rc = 0;
    if (!es)
        return -ENOMEM;
    es->sink = s;
    es->conf = conf;
    es->loop = mars_sink_loop(s);
    es->shard = mars_sink_shard(s);
    es->ninst = conf->instances.n;
    es->headers[0] = "Content-Type: application/json";
    es->headers[1] = "Accept: application/json";
    mars_netconf_http_tls(&conf->tls, mars_sink_id(s), &es->tls);
    es->servers = calloc(conf->servers.n ? conf->servers.n : 1, sizeof(*es->servers));
    if (!es->servers)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < conf->servers.n; i++, es->nservers++)
        rc = parse_server(conf->servers.v[i], &es->servers[i]);
    if (rc == 0) {
        struct mars_obs *obs = mars_sink_obs(s);
        es->reg = obs ? mars_shared_acquire(obs, mars_sink_id(s), reg_create, es) : NULL;
        rc = es->reg ? 0 : -ENOMEM;
    }
    if (rc == 0 && es->reg->owner == es) {
        es->owner = true;
        rc = start_registrar(es);
    }
    if (rc) {
        mars_error(mars_sink_id(s), "cannot start: %s", strerror(-rc));
        eu_free(es);
        return rc;
    }
    mars_sink_set_state(s, es);
    return 0;
}

static void eureka_destroy(struct mars_sink *s)
{
    struct eu_sink *es = mars_sink_state(s);
    if (es)
        eu_free(es);
}

const struct mars_component_desc mars_sink_eureka = {
    .name = "eureka",
    .description = "Registers instances with Eureka and keeps their leases, with status from "
                   "health_check events; deregisters them when mars stops.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = mars_eureka_options,
    .conf_size = sizeof(struct eu_conf),
    .check = mars_eureka_check,
    .sink = {.init = eureka_init,
             .write = eureka_write,
             .abort = eureka_abort,
             .destroy = eureka_destroy},
};
