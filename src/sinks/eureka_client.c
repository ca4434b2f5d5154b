/*
 * eureka_client.c - the eureka sink's registry HTTP client: what is sent to a Eureka
 * server and what its answers mean (protocols.md §2, §12). The state machine that decides
 * when to send is eureka.c.
 *
 * Requests: register is POST {server}/apps/{APP} with the instance JSON, and only 204
 * counts; a heartbeat is PUT {server}/apps/{APP}/{id}?status=S&lastDirtyTimestamp=MS
 * (body {}), and a 404 on it (lease unknown, or the server wants newer info) means
 * register again at once; deregister is DELETE {server}/apps/{APP}/{id}, where 404 (not
 * there) is as good as 200.
 *
 * Servers: tried in order; a transport error or a 5xx moves to the next one (the request
 * is retried there at once, then with a backoff while every server fails), and
 * failback_after later the first is tried again (eureka.c's tick), like the Java client's
 * endpoint rotation. Basic auth comes from the URL (user:pass@, percent-decoded) or from
 * username/password.
 *
 * Thread: the owner instance's worker.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/grpc.h"
#include "core/hash.h"
#include "core/log.h"
#include "sinks/eureka_internal.h"

#define BACKOFF_MIN_NS 500000000LL

const char *const mars_eureka_status_names[] = {"UP",      "DOWN", "STARTING", "OUT_OF_SERVICE",
                                                "UNKNOWN", NULL};
const char *const mars_eureka_op_names[] = {"register", "heartbeat", "deregister"};
static const char *const reason_names[] = {"transport", "server_error", "not_found", "rejected"};

char *mars_eureka_strdup_printf(const char *fmt, ...)
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
#define xprintf mars_eureka_strdup_printf

/* Percent-encodes a path segment (instance ids hold ':' and may hold anything). */
char *mars_eureka_escape_segment(const char *s)
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

int mars_eureka_parse_server(const char *text, struct eu_server *sv)
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

/* ---- what is registered ---- */

char *mars_eureka_strdup_case(const char *s, bool up)
{
    char *c = strdup(s);
    for (char *p = c; p && *p; p++)
        if (up && *p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        else if (!up && *p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return c;
}

int mars_eureka_desc_static(const struct eu_conf *conf, const struct eu_instance_conf *c,
                            const char *node_host, struct eu_desc *d)
{
    memset(d, 0, sizeof(*d));
    long long port = (long long)(c->port ? c->port : c->secure_port);
    const char *scheme = c->port ? "http" : "https";
    d->app = mars_eureka_strdup_case(c->app, true);
    d->host = strdup(c->host_name ? c->host_name : node_host);
    d->ip = strdup(c->ip);
    d->port = c->port;
    d->secure_port = c->secure_port;
    d->id = c->instance_id ? strdup(c->instance_id)
                           : xprintf("%s:%s:%lld", d->host ? d->host : "", c->app, port);
    d->home =
        c->home_page_url ? strdup(c->home_page_url) : xprintf("%s://%s:%lld/", scheme, c->ip, port);
    d->status_url = c->status_page_url ? strdup(c->status_page_url)
                                       : xprintf("%s://%s:%lld/actuator/info", scheme, c->ip, port);
    if (c->health_check_url)
        d->health_url = strdup(c->health_check_url);
    else if (c->health_check && conf->admin_url)
        d->health_url = xprintf("%s/health/%s", conf->admin_url, c->health_check);
    else if (c->health_check)
        d->health_url = xprintf("http://%s:8686/health/%s", c->ip, c->health_check);
    else
        d->health_url = xprintf("%s://%s:%lld/actuator/health", scheme, c->ip, port);
    d->vip = c->vip_address ? strdup(c->vip_address) : mars_eureka_strdup_case(c->app, false);
    d->svip = strdup(c->secure_vip_address ? c->secure_vip_address : d->vip ? d->vip : "");
    d->health_check = c->health_check ? strdup(c->health_check) : NULL;
    bool ok = d->app && d->host && d->ip && d->id && d->home && d->status_url && d->health_url &&
              d->vip && d->svip && (d->health_check || !c->health_check);
    if (ok && c->metadata.n) {
        d->mkeys = calloc(c->metadata.n, sizeof(char *));
        d->mvals = calloc(c->metadata.n, sizeof(char *));
        ok = d->mkeys && d->mvals;
        for (size_t i = 0; ok && i < c->metadata.n; i++, d->nmeta++)
            ok = (d->mkeys[i] = strdup(c->metadata.keys[i])) &&
                 (d->mvals[i] = strdup(c->metadata.vals[i]));
        if (!ok && d->mkeys && d->mvals)
            d->nmeta++; /* the pair that failed half way */
    }
    if (!ok) {
        mars_eureka_desc_fini(d);
        return -ENOMEM;
    }
    return 0;
}

void mars_eureka_desc_fini(struct eu_desc *d)
{
    free(d->app), free(d->id), free(d->host), free(d->ip), free(d->home);
    free(d->status_url), free(d->health_url), free(d->vip), free(d->svip);
    free(d->health_check);
    for (size_t i = 0; i < d->nmeta; i++) {
        free(d->mkeys ? d->mkeys[i] : NULL);
        free(d->mvals ? d->mvals[i] : NULL);
    }
    free(d->mkeys), free(d->mvals);
    memset(d, 0, sizeof(*d));
}

static uint64_t mix(uint64_t h, const char *s)
{
    return mars_hash64(s ? s : "", s ? strlen(s) + 1 : 0) ^ (h * 0x100000001b3ULL);
}

uint64_t mars_eureka_desc_hash(const struct eu_desc *d)
{
    uint64_t h = 0;
    const char *f[] = {d->app,        d->id,         d->host, d->ip,  d->home,
                       d->status_url, d->health_url, d->vip,  d->svip};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        h = mix(h, f[i]);
    char ports[48];
    snprintf(ports, sizeof(ports), "%lld/%lld", (long long)d->port, (long long)d->secure_port);
    h = mix(h, ports);
    for (size_t i = 0; i < d->nmeta; i++)
        h = mix(mix(h, d->mkeys[i]), d->mvals[i]);
    return h ? h : 1;
}

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
    const struct eu_desc *d = &in->d;
    const struct eu_conf *conf = in->es->conf;
    struct evbuffer *b = evbuffer_new();
    char ms[32];
    if (!b)
        return NULL;
    snprintf(ms, sizeof(ms), "%lld", (long long)in->dirty_ms);
    evbuffer_add_printf(b, "{\"instance\":{");
    json_kv(b, "instanceId", d->id, true);
    json_kv(b, "hostName", d->host, true);
    json_kv(b, "app", d->app, true);
    json_kv(b, "ipAddr", d->ip, true);
    json_kv(b, "status", mars_eureka_status_names[in->status], true);
    json_kv(b, "overriddenStatus", "UNKNOWN", true);
    evbuffer_add_printf(b,
                        "\"port\":{\"$\":%lld,\"@enabled\":\"%s\"},"
                        "\"securePort\":{\"$\":%lld,\"@enabled\":\"%s\"},\"countryId\":1,",
                        (long long)(d->port ? d->port : 80), d->port ? "true" : "false",
                        (long long)(d->secure_port ? d->secure_port : 443),
                        d->secure_port ? "true" : "false");
    evbuffer_add_printf(b, "\"dataCenterInfo\":{\"@class\":"
                           "\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\","
                           "\"name\":\"MyOwn\"},");
    evbuffer_add_printf(b,
                        "\"leaseInfo\":{\"renewalIntervalInSecs\":%lld,\"durationInSecs\":%lld},",
                        (long long)((conf->renewal_interval + 999999999) / 1000000000),
                        (long long)(conf->lease_duration / 1000000000));
    evbuffer_add_printf(b, "\"metadata\":{");
    for (size_t i = 0; i < d->nmeta; i++)
        json_kv(b, d->mkeys[i], d->mvals[i], i + 1 < d->nmeta);
    evbuffer_add_printf(b, "},");
    json_kv(b, "homePageUrl", d->home, true);
    json_kv(b, "statusPageUrl", d->status_url, true);
    json_kv(b, "healthCheckUrl", d->health_url, true);
    json_kv(b, "vipAddress", d->vip, true);
    json_kv(b, "secureVipAddress", d->svip, true);
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

void mars_eureka_metrics(struct eu_sink *es)
{
    static const char *const base[] = {"component_id", "app", "instance_id", NULL};
    static const char *const with_status[] = {"component_id", "app", "instance_id", "status", NULL};
    static const char *const with_reason[] = {"component_id", "app",    "instance_id",
                                              "request",      "reason", NULL};
    es->f_registered =
        family(es, "mars_eureka_registered", "1 while the instance is registered with Eureka.",
               MARS_MT_GAUGE, base);
    es->f_heartbeats = family(es, "mars_eureka_heartbeats_total",
                              "Heartbeats the Eureka server accepted.", MARS_MT_COUNTER, base);
    es->f_status = family(es, "mars_eureka_status",
                          "1 for the status the instance has in Eureka, 0 for the others.",
                          MARS_MT_GAUGE, with_status);
    es->f_fail =
        family(es, "mars_eureka_failures_total",
               "Eureka requests that failed, by request and reason.", MARS_MT_COUNTER, with_reason);
}

void mars_eureka_inst_metrics(struct eu_inst *in)
{
    struct eu_sink *es = in->es;
    const char *v[] = {mars_sink_id(es->sink), in->d.app, in->d.id, NULL, NULL, NULL};
    in->m_registered = es->f_registered ? mars_mfamily_series(es->f_registered, v) : NULL;
    in->m_heartbeats = es->f_heartbeats ? mars_mfamily_series(es->f_heartbeats, v) : NULL;
    for (int s = 0; s < EU__COUNT; s++) {
        v[3] = mars_eureka_status_names[s];
        in->m_status[s] = es->f_status ? mars_mfamily_series(es->f_status, v) : NULL;
    }
    for (int r = 0; r < R__COUNT; r++) {
        /* heartbeats are the request that fails in the steady state; the series of the
         * others are looked up when they fail (mars_eureka_count_failure) */
        v[3] = "heartbeat";
        v[4] = reason_names[r];
        in->m_fail[r] = es->f_fail ? mars_mfamily_series(es->f_fail, v) : NULL;
    }
    mars_mseries_set(in->m_registered, es->shard, in->registered ? 1 : 0);
    mars_eureka_set_status_metric(in);
}

void mars_eureka_count_failure(struct eu_inst *in, enum eu_op op, enum eu_reason r)
{
    if (op == OP_RENEW) {
        mars_mseries_add(in->m_fail[r], in->es->shard, 1);
        return;
    }
    struct mars_mfamily *fl = in->es->f_fail;
    const char *v[] = {mars_sink_id(in->es->sink), in->d.app,       in->d.id,
                       mars_eureka_op_names[op],   reason_names[r], NULL};
    mars_mseries_add(fl ? mars_mfamily_series(fl, v) : NULL, in->es->shard, 1);
}

void mars_eureka_set_status_metric(struct eu_inst *in)
{
    for (int s = 0; s < EU__COUNT; s++)
        mars_mseries_set(in->m_status[s], in->es->shard, s == in->status ? 1 : 0);
}

/* ---- requests ---- */

int64_t mars_eureka_backoff_ns(const struct eu_inst *in)
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
                                .max_body = 1024,
                                .direct = true};
    if (sv->user) {
        r->user = sv->user;
        r->password = sv->password;
    } else if (es->conf->username) {
        r->user = es->conf->username;
        r->password = es->conf->password;
    }
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

static void on_ok(struct eu_inst *in, const char *server, int64_t now)
{
    struct eu_sink *es = in->es;
    in->fails = 0;
    in->next_ns = now + es->conf->renewal_interval;
    if (in->op == OP_REGISTER) {
        if (!in->registered)
            mars_info(mars_sink_id(es->sink), "registered %s/%s as %s with %s", in->d.app, in->d.id,
                      mars_eureka_status_names[in->status], server);
        in->registered = true;
        in->need_register = false;
        mars_mseries_set(in->m_registered, es->shard, 1);
    } else if (in->op == OP_RENEW) {
        mars_mseries_add(in->m_heartbeats, es->shard, 1);
    } else {
        mars_info(mars_sink_id(es->sink), "deregistered %s/%s from %s", in->d.app, in->d.id,
                  server);
        in->registered = false;
        mars_mseries_set(in->m_registered, es->shard, 0);
    }
}

static void on_done(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct eu_inst *in = r->data;
    struct eu_sink *es = in->es;
    const char *id = mars_sink_id(es->sink);
    const char *server = es->servers[in->server].url;
    const char *op = mars_eureka_op_names[in->op];
    int64_t now = mars_ev_now(es->loop);
    in->busy = false;
    if (resp->error == -ECANCELED || es->stopping)
        return;
    bool ok = in->op == OP_REGISTER ? resp->status == 204
              : in->op == OP_RENEW  ? resp->status == 200
                                    : resp->status == 200 || resp->status == 404;
    if (ok) {
        on_ok(in, server, now);
        if (in->op == OP_DELETE)
            mars_eureka_inst_forget(in);
        return;
    }
    in->fails++;
    if (in->op == OP_RENEW && resp->status == 404) {
        /* lease unknown (expired, evicted, server restarted) or our info is newer */
        mars_eureka_count_failure(in, in->op, R_NOT_FOUND);
        mars_info(id, "Eureka server %s does not know %s/%s (404 on heartbeat): registering again",
                  server, in->d.app, in->d.id);
        in->registered = false;
        in->need_register = true;
        mars_mseries_set(in->m_registered, es->shard, 0);
        in->next_ns = 0;
        mars_eureka_step(in);
        return;
    }
    if (resp->error || resp->status == 0 || resp->status >= 500) {
        mars_eureka_count_failure(in, in->op, resp->error ? R_TRANSPORT : R_SERVER_ERROR);
        if (resp->error)
            mars_warn(id, "%s of %s/%s at Eureka server %s failed: %s", op, in->d.app, in->d.id,
                      server, resp->error_text ? resp->error_text : strerror(-resp->error));
        else
            mars_warn(id, "%s of %s/%s at Eureka server %s: HTTP %d", op, in->d.app, in->d.id,
                      server, resp->status);
        mars_sink_last_error(es->sink, "%s of %s/%s at %s: %s%d", op, in->d.app, in->d.id, server,
                             resp->error ? "transport error " : "HTTP ",
                             resp->error ? -resp->error : resp->status);
        fail_over(es, in->server);
        in->next_ns =
            now + (es->nservers > 1 && in->fails < es->nservers ? 0 : mars_eureka_backoff_ns(in));
        return;
    }
    mars_eureka_count_failure(in, in->op, R_REJECTED);
    mars_error(id, "%s of %s/%s refused by Eureka server %s: HTTP %d %.*s", op, in->d.app, in->d.id,
               server, resp->status, (int)(resp->body_len > 200 ? 200 : resp->body_len),
               resp->body ? resp->body : "");
    mars_sink_last_error(es->sink, "%s of %s/%s refused by %s: HTTP %d", op, in->d.app, in->d.id,
                         server, resp->status);
    if (in->op == OP_RENEW)
        in->need_register = true;
    in->next_ns = now + es->conf->renewal_interval;
}

void mars_eureka_send(struct eu_inst *in, enum eu_op op)
{
    struct eu_sink *es = in->es;
    const char *base = es->servers[es->cur].url;
    static const char *const methods[] = {"POST", "PUT", "DELETE"};
    free(in->url);
    free(in->body);
    in->body = NULL;
    if (op == OP_REGISTER) {
        in->url = xprintf("%s/apps/%s", base, in->d.app);
        in->body = instance_json(in);
    } else if (op == OP_RENEW) {
        in->url =
            xprintf("%s/apps/%s/%s?status=%s&lastDirtyTimestamp=%lld", base, in->d.app, in->id_esc,
                    mars_eureka_status_names[in->status], (long long)in->dirty_ms);
        in->body = strdup("{}");
    } else {
        in->url = xprintf("%s/apps/%s/%s", base, in->d.app, in->id_esc);
    }
    if (!in->url || (op != OP_DELETE && !in->body)) {
        in->next_ns = mars_ev_now(es->loop) + mars_eureka_backoff_ns(in);
        return;
    }
    fill_req(in, &in->req, methods[op], in->url, in->body,
             op == OP_DELETE ? es->conf->deregister_timeout : es->conf->request_timeout, on_done);
    in->op = op;
    in->server = es->cur;
    int rc = mars_http_submit(es->http, &in->req);
    if (rc) {
        mars_warn(mars_sink_id(es->sink), "%s of %s/%s: %s", mars_eureka_op_names[op], in->d.app,
                  in->d.id, strerror(-rc));
        in->next_ns = mars_ev_now(es->loop) + mars_eureka_backoff_ns(in);
        return;
    }
    in->busy = true;
}

int mars_eureka_send_delete(struct eu_inst *in, int64_t timeout,
                            void (*done)(struct mars_http_req *, const struct mars_http_resp *))
{
    struct eu_sink *es = in->es;
    free(in->del_url);
    in->del_url = xprintf("%s/apps/%s/%s", es->servers[es->cur].url, in->d.app, in->id_esc);
    if (!in->del_url)
        return -ENOMEM;
    fill_req(in, &in->del, "DELETE", in->del_url, NULL, timeout, done);
    return mars_http_submit(es->http, &in->del);
}
