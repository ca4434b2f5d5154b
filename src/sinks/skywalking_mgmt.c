/*
 * skywalking_mgmt.c - mars's own registration with the OAP, and the sink's shared identity
 * (sinks/skywalking.h).
 *
 * One instance per sink runs this (the first to take the shared object; see
 * skywalking.c), on its worker's loop, one call at a time, as a small state machine driven
 * by call completions and one timer:
 *
 *   v8+  REPORT  ManagementService/reportInstanceProperties (OS Name, hostname, ipv4 per
 *                address, Process No., language, agent_version)   -> PING at once
 *        PING    ManagementService/keepAlive, then again every keepalive_interval; every
 *                10th tick goes through REPORT first (the OAP expires properties)
 *   v6   SERVICE  Register/doServiceRegister until the mapping names the service
 *        INSTANCE Register/doServiceInstanceRegister with that service id, until the
 *                 mapping names this instance (the OAP registers asynchronously: empty
 *                 answers at first; retried every 3 s)
 *        PING     ServiceInstancePing/doPing with the instance's own id every
 *                 keepalive_interval; a ServiceMetadataReset command starts over
 *
 * On `transport: http` REPORT and PING are POSTs of the same messages as JSON to
 * /v3/management/reportProperties and /v3/management/keepAlive.
 *
 * A failed call is retried on the next tick (3 s while not registered); a refused token is
 * logged once as an error. What was learnt (registered, v6 ids) goes into the shared
 * object under its lock, where the PHP APM socket reads it.
 *
 * Thread: the owner instance's worker; struct sw_shared from any thread under its lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "sinks/skywalking_internal.h"
#include "skywalking/management.pb-c.h"
#include "skywalking/register_v6.pb-c.h"

#define RETRY_NS     3000000000LL
#define REPORT_EVERY 10
#define MAX_PROPS    16

enum {
    ST_REPORT = SW_CALL_REPORT,
    ST_PING = SW_CALL_PING,
    ST_V6_SERVICE = SW_CALL_V6_SERVICE,
    ST_V6_INSTANCE = SW_CALL_V6_INSTANCE,
    ST_V6_PING = SW_CALL_V6_PING
};

static const char *const paths[] = {
    [ST_REPORT] = "/skywalking.v3.ManagementService/reportInstanceProperties",
    [ST_PING] = "/skywalking.v3.ManagementService/keepAlive",
    [ST_V6_SERVICE] = "/Register/doServiceRegister",
    [ST_V6_INSTANCE] = "/Register/doServiceInstanceRegister",
    [ST_V6_PING] = "/ServiceInstancePing/doPing",
};

/* ---- the shared identity ---- */

static void *shared_create(void *arg)
{
    struct sw_sink *sw = arg;
    struct sw_shared *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return NULL;
    pthread_mutex_init(&sh->lock, NULL);
    snprintf(sh->ids.service, sizeof(sh->ids.service), "%s", sw->conf->service);
    snprintf(sh->ids.instance, sizeof(sh->ids.instance), "%s", sw->instance);
    snprintf(sh->ids.layer, sizeof(sh->ids.layer), "%s", sw->conf->layer ? sw->conf->layer : "");
    sh->ids.protocol = sw->conf->protocol == SW_V6 ? 6 : 8;
    /* the apps' registrations use gRPC management calls only */
    sh->max_apps = sw->conf->transport == SW_GRPC ? (size_t)sw->conf->max_services : 0;
    if (sh->max_apps && !(sh->apps = calloc(sh->max_apps, sizeof(*sh->apps)))) {
        pthread_mutex_destroy(&sh->lock);
        free(sh);
        return NULL;
    }
    static const char *const id_label[] = {"component_id", NULL};
    struct mars_metrics *m = mars_obs_metrics(mars_sink_obs(sw->sink));
    struct mars_mfamily *f =
        m ? mars_metrics_family(m,
                                &(struct mars_mfamily_desc){
                                    .name = "mars_skywalking_services_overflow_total",
                                    .help =
                                        "Apps of the apm_socket source not registered with the OAP "
                                        "because the skywalking sink had max_services already.",
                                    .type = MARS_MT_COUNTER,
                                    .labels = id_label})
          : NULL;
    if (f)
        sh->overflow = mars_mfamily_series(f, (const char *const[]){sw->id});
    return sh;
}

static void *shared_none(void *arg)
{
    (void)arg;
    return NULL;
}

static void shared_destroy(void *obj)
{
    struct sw_shared *sh = obj;
    pthread_mutex_destroy(&sh->lock);
    free(sh->apps);
    free(sh);
}

static void shared_key(const char *id, char *key, size_t n)
{
    snprintf(key, n, "skywalking/%s", id);
}

struct sw_shared *mars_skywalking_shared_acquire(struct sw_sink *sw)
{
    char key[160];
    shared_key(sw->id, key, sizeof(key));
    sw->shared = mars_shared_acquire(mars_sink_obs(sw->sink), key, shared_create, sw);
    return sw->shared;
}

void mars_skywalking_shared_release(struct sw_sink *sw)
{
    char key[160];
    shared_key(sw->id, key, sizeof(key));
    mars_shared_release(mars_sink_obs(sw->sink), key, shared_destroy);
    sw->shared = NULL;
}

int mars_skywalking_ids(struct mars_obs *o, const char *sink_id, struct mars_skywalking_ids *out)
{
    char key[160];
    shared_key(sink_id, key, sizeof(key));
    struct sw_shared *sh = mars_shared_acquire(o, key, shared_none, NULL);
    if (!sh)
        return -ENOENT;
    pthread_mutex_lock(&sh->lock);
    *out = sh->ids;
    pthread_mutex_unlock(&sh->lock);
    mars_shared_release(o, key, shared_destroy);
    return 0;
}

/* The app's entry, added when there is room (callers hold the lock); NULL when full. */
static struct sw_app *app_entry(struct sw_shared *sh, const char *app)
{
    for (size_t i = 0; i < sh->napps; i++)
        if (strcmp(sh->apps[i].name, app) == 0)
            return &sh->apps[i];
    if (sh->napps == sh->max_apps)
        return NULL;
    struct sw_app *a = &sh->apps[sh->napps++];
    snprintf(a->name, sizeof(a->name), "%s", app);
    return a; /* SW_APP_NEW, due at once: the owner's apps timer picks it up */
}

int mars_skywalking_app_ids(struct mars_obs *o, const char *sink_id, const char *app,
                            struct mars_skywalking_ids *out)
{
    char key[160];
    int rc = 0;
    shared_key(sink_id, key, sizeof(key));
    struct sw_shared *sh = mars_shared_acquire(o, key, shared_none, NULL);
    if (!sh)
        return -ENOENT;
    pthread_mutex_lock(&sh->lock);
    *out = sh->ids;
    if (sh->max_apps && strcmp(app, sh->ids.service) != 0) {
        const struct sw_app *a = app_entry(sh, app);
        if (a) {
            snprintf(out->service, sizeof(out->service), "%s", a->name);
            out->registered = a->registered;
            out->service_id = a->service_id;
            out->instance_id = a->instance_id;
        } else {
            rc = -ENOSPC;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (rc)
        mars_mseries_add(sh->overflow, MARS_METRICS_SHARED, 1);
    mars_shared_release(o, key, shared_destroy);
    return rc;
}

static void set_registered(struct sw_sink *sw, bool yes, int32_t service_id, int32_t instance_id)
{
    pthread_mutex_lock(&sw->shared->lock);
    sw->shared->ids.registered = yes;
    sw->shared->ids.service_id = service_id;
    sw->shared->ids.instance_id = instance_id;
    pthread_mutex_unlock(&sw->shared->lock);
}

/* ---- messages ---- */

/* The instance's properties: value strings in `store` (n slots of 64 bytes). */
struct props {
    const char *key[MAX_PROPS];
    char val[MAX_PROPS][64];
    size_t n;
};

static void prop(struct props *p, const char *key, const char *val)
{
    if (p->n == MAX_PROPS)
        return;
    p->key[p->n] = key;
    size_t n = strlen(val);
    n = n < sizeof(p->val[0]) ? n : sizeof(p->val[0]) - 1;
    memcpy(p->val[p->n], val, n);
    p->val[p->n][n] = '\0';
    p->n++;
}

static void collect_props(struct props *p, bool v6)
{
    struct utsname u;
    char host[64], pid[24];
    struct ifaddrs *ifa = NULL;
    if (uname(&u) == 0)
        prop(p, v6 ? "os_name" : "OS Name", u.sysname);
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        prop(p, v6 ? "host_name" : "hostname", host);
    }
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    prop(p, v6 ? "process_no" : "Process No.", pid);
    prop(p, "language", "c");
    prop(p, "agent_version", "mars/" MARS_VERSION);
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
            char a[INET_ADDRSTRLEN];
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
                continue;
            const struct sockaddr_in *sin = (const void *)i->ifa_addr;
            if (inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)))
                prop(p, "ipv4", a);
        }
        freeifaddrs(ifa);
    }
}

const char *mars_skywalking_call_path(enum sw_call c)
{
    return paths[c];
}

static int encode_report(struct sw_sink *sw, const char *service, const char *instance,
                         struct mars_grpc_buf *b)
{
    struct props p = {.n = 0};
    Skywalking__V3__KeyStringValuePair kv[MAX_PROPS], *kvp[MAX_PROPS];
    Skywalking__V3__InstanceProperties ip = SKYWALKING__V3__INSTANCE_PROPERTIES__INIT;
    collect_props(&p, false);
    for (size_t i = 0; i < p.n; i++) {
        kv[i] = (Skywalking__V3__KeyStringValuePair)SKYWALKING__V3__KEY_STRING_VALUE_PAIR__INIT;
        kv[i].key = (char *)p.key[i];
        kv[i].value = p.val[i];
        kvp[i] = &kv[i];
    }
    ip.service = (char *)service;
    ip.serviceinstance = (char *)instance;
    ip.layer = sw->conf->layer ? sw->conf->layer : "";
    ip.properties = kvp;
    ip.n_properties = p.n;
    return mars_grpc_buf_add(b, &ip.base);
}

static int encode_ping(struct sw_sink *sw, const char *service, const char *instance,
                       struct mars_grpc_buf *b)
{
    Skywalking__V3__InstancePingPkg pp = SKYWALKING__V3__INSTANCE_PING_PKG__INIT;
    pp.service = (char *)service;
    pp.serviceinstance = (char *)instance;
    pp.layer = sw->conf->layer ? sw->conf->layer : "";
    return mars_grpc_buf_add(b, &pp.base);
}

static int encode_v6(struct sw_sink *sw, int state, const char *service, const char *instance,
                     int32_t sid, int32_t iid, struct mars_grpc_buf *b)
{
    if (state == ST_V6_SERVICE) {
        V6Service s = V6_SERVICE__INIT, *sp = &s;
        V6Services ss = V6_SERVICES__INIT;
        s.servicename = (char *)service;
        ss.services = &sp;
        ss.n_services = 1;
        return mars_grpc_buf_add(b, &ss.base);
    }
    if (state == ST_V6_INSTANCE) {
        struct props p = {.n = 0};
        V6KeyStringValuePair kv[MAX_PROPS], *kvp[MAX_PROPS];
        V6ServiceInstance si = V6_SERVICE_INSTANCE__INIT, *sip = &si;
        V6ServiceInstances sis = V6_SERVICE_INSTANCES__INIT;
        collect_props(&p, true);
        for (size_t i = 0; i < p.n; i++) {
            kv[i] = (V6KeyStringValuePair)V6_KEY_STRING_VALUE_PAIR__INIT;
            kv[i].key = (char *)p.key[i];
            kv[i].value = p.val[i];
            kvp[i] = &kv[i];
        }
        si.serviceid = sid;
        si.instanceuuid = (char *)instance;
        si.time = mars_skywalking_now_ms();
        si.properties = kvp;
        si.n_properties = p.n;
        sis.instances = &sip;
        sis.n_instances = 1;
        return mars_grpc_buf_add(b, &sis.base);
    }
    V6ServiceInstancePingPkg pp = V6_SERVICE_INSTANCE_PING_PKG__INIT;
    pp.serviceinstanceid = iid; /* the instance's own id, not the service's */
    pp.time = mars_skywalking_now_ms();
    pp.serviceinstanceuuid = (char *)instance;
    return mars_grpc_buf_add(b, &pp.base);
}

int mars_skywalking_call_encode(struct sw_sink *sw, enum sw_call c, const char *service,
                                const char *instance, int32_t sid, int32_t iid,
                                struct mars_grpc_buf *b)
{
    if (c == SW_CALL_REPORT)
        return encode_report(sw, service, instance, b);
    if (c == SW_CALL_PING)
        return encode_ping(sw, service, instance, b);
    return encode_v6(sw, (int)c, service, instance, sid, iid, b);
}

/* The JSON of REPORT or PING for transport http, malloc'd into m->http_body. */
static int encode_json(struct sw_sink *sw, int state, struct mars_encoder *e)
{
    const char *layer = sw->conf->layer ? sw->conf->layer : "";
    int rc = PUT_LIT(e, "{\"service\":");
    rc = rc ? rc : mars_encode_json_string(e, sw->conf->service, strlen(sw->conf->service));
    rc = rc ? rc : PUT_LIT(e, ",\"serviceInstance\":");
    rc = rc ? rc : mars_encode_json_string(e, sw->instance, strlen(sw->instance));
    rc = rc ? rc : PUT_LIT(e, ",\"layer\":");
    rc = rc ? rc : mars_encode_json_string(e, layer, strlen(layer));
    if (rc == 0 && state == ST_REPORT) {
        struct props p = {.n = 0};
        collect_props(&p, false);
        rc = PUT_LIT(e, ",\"properties\":[");
        for (size_t i = 0; rc == 0 && i < p.n; i++) {
            rc = (i ? PUT_LIT(e, ",{\"key\":") : PUT_LIT(e, "{\"key\":"));
            rc = rc ? rc : mars_encode_json_string(e, p.key[i], strlen(p.key[i]));
            rc = rc ? rc : PUT_LIT(e, ",\"value\":");
            rc = rc ? rc : mars_encode_json_string(e, p.val[i], strlen(p.val[i]));
            rc = rc ? rc : PUT_LIT(e, "}");
        }
        rc = rc ? rc : PUT_LIT(e, "]");
    }
    return rc ? rc : PUT_LIT(e, "}");
}

/* ---- the state machine ---- */

static void step(struct sw_mgmt *m);

static void on_timer(struct mars_ev_op *op, int res)
{
    struct sw_mgmt *m = op->data;
    m->timer_armed = false;
    if (res == -ECANCELED || m->stopping)
        return;
    step(m);
}

static void arm(struct sw_mgmt *m, int64_t ns)
{
    if (m->stopping || m->timer_armed)
        return;
    mars_ev_prep_timer(&m->timer, ns, on_timer, m);
    if (mars_ev_submit(mars_sink_loop(m->sw->sink), &m->timer) == 0)
        m->timer_armed = true;
}

/* Which key of a v6 mapping names `want`: its id, or 0. */
static int32_t v6_id(V6KeyIntValuePair **kv, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i]->key && strcmp(kv[i]->key, want) == 0)
            return kv[i]->value;
    return 0;
}

int32_t mars_skywalking_v6_mapped(enum sw_call c, const struct mars_grpc_result *res,
                                  const char *want)
{
    int32_t id = 0;
    if (c == SW_CALL_V6_SERVICE) {
        V6ServiceRegisterMapping *map =
            v6_service_register_mapping__unpack(NULL, res->reply_len, res->reply);
        id = map ? v6_id(map->services, map->n_services, want) : 0;
        if (map)
            v6_service_register_mapping__free_unpacked(map, NULL);
    } else {
        V6ServiceInstanceRegisterMapping *map =
            v6_service_instance_register_mapping__unpack(NULL, res->reply_len, res->reply);
        id = map ? v6_id(map->serviceinstances, map->n_serviceinstances, want) : 0;
        if (map)
            v6_service_instance_register_mapping__free_unpacked(map, NULL);
    }
    return id;
}

bool mars_skywalking_v6_reset(const struct mars_grpc_result *res)
{
    V6Commands *cmds = v6_commands__unpack(NULL, res->reply_len, res->reply);
    bool reset = false;
    for (size_t i = 0; cmds && i < cmds->n_commands; i++)
        reset |= cmds->commands[i]->command &&
                 strcmp(cmds->commands[i]->command, "ServiceMetadataReset") == 0;
    if (cmds)
        v6_commands__free_unpacked(cmds, NULL);
    return reset;
}

/* A v6 answer: the next state and the delay before it. */
static int v6_next(struct sw_mgmt *m, const struct mars_grpc_result *res, int64_t *delay)
{
    struct sw_sink *sw = m->sw;
    struct sw_shared *sh = sw->shared;
    pthread_mutex_lock(&sh->lock);
    int32_t sid = sh->ids.service_id, iid = sh->ids.instance_id;
    pthread_mutex_unlock(&sh->lock);
    *delay = RETRY_NS;
    if (m->state == ST_V6_SERVICE) {
        sid = mars_skywalking_v6_mapped(SW_CALL_V6_SERVICE, res, sw->conf->service);
        set_registered(sw, false, sid, 0);
        if (!sid)
            return ST_V6_SERVICE;
        *delay = 0;
        return ST_V6_INSTANCE;
    }
    if (m->state == ST_V6_INSTANCE) {
        iid = mars_skywalking_v6_mapped(SW_CALL_V6_INSTANCE, res, sw->instance);
        if (!iid)
            return ST_V6_INSTANCE;
        set_registered(sw, true, sid, iid);
        mars_info(sw->id, "registered with the OAP (v6): service id %d, instance id %d", (int)sid,
                  (int)iid);
        *delay = 0;
        return ST_V6_PING;
    }
    bool reset = mars_skywalking_v6_reset(res);
    *delay = sw->conf->keepalive_interval;
    if (!reset)
        return ST_V6_PING;
    mars_info(sw->id, "the OAP asked for a new registration (ServiceMetadataReset)");
    set_registered(sw, false, 0, 0);
    *delay = 0;
    return ST_V6_SERVICE;
}

/* What follows a finished call, by state and outcome. */
static void after(struct sw_mgmt *m, const struct mars_grpc_result *res)
{
    struct sw_sink *sw = m->sw;
    if (m->stopping || (res->code == MARS_GRPC_CANCELLED && res->transport))
        return;
    if (res->code != MARS_GRPC_OK) {
        bool auth =
            res->code == MARS_GRPC_UNAUTHENTICATED || res->code == MARS_GRPC_PERMISSION_DENIED;
        if (auth && !m->auth_warned)
            mars_error(sw->id, "registration refused: the OAP does not accept the token (%s: %s)",
                       mars_grpc_code_name(res->code), res->message);
        else
            MARS_LOG_RL(MARS_LOG_WARN, sw->id, "%s failed (%s: %s); will retry", paths[m->state],
                        mars_grpc_code_name(res->code), res->message);
        m->auth_warned |= auth;
        if (m->state == ST_PING)
            m->state = ST_REPORT; /* the OAP may have lost us: report again */
        bool registered;
        pthread_mutex_lock(&sw->shared->lock);
        registered = sw->shared->ids.registered;
        pthread_mutex_unlock(&sw->shared->lock);
        arm(m, registered ? sw->conf->keepalive_interval : RETRY_NS);
        return;
    }
    int64_t delay = 0;
    switch (m->state) {
    case ST_REPORT:
        if (!m->auth_warned)
            mars_debug(sw->id, "instance %s of %s reported", sw->instance, sw->conf->service);
        set_registered(sw, true, 0, 0);
        m->ticks = 0;
        m->state = ST_PING;
        break;
    case ST_PING:
        delay = sw->conf->keepalive_interval;
        if (++m->ticks >= REPORT_EVERY)
            m->state = ST_REPORT;
        break;
    default:
        m->state = v6_next(m, res, &delay);
        break;
    }
    arm(m, delay);
}

static void on_call_done(struct mars_grpc_call *c, const struct mars_grpc_result *res)
{
    after(MARS_CONTAINER_OF(c, struct sw_mgmt, call), res);
}

static void on_http_done(struct mars_http_req *hr, const struct mars_http_resp *resp)
{
    struct sw_mgmt *m = MARS_CONTAINER_OF(hr, struct sw_mgmt, http);
    struct mars_grpc_result res = {.http_status = resp->status, .message = ""};
    char msg[64];
    m->http_active = false;
    if (resp->error) {
        res.code = resp->error == -ECANCELED ? MARS_GRPC_CANCELLED : MARS_GRPC_UNAVAILABLE;
        res.transport = true;
        res.message = resp->error_text;
    } else if (resp->status < 200 || resp->status >= 300) {
        res.code =
            resp->status >= 500 ? MARS_GRPC_UNAVAILABLE : mars_grpc_code_from_http(resp->status);
        snprintf(msg, sizeof(msg), "HTTP %d", resp->status);
        res.message = msg;
    }
    after(m, &res);
}

static int send_http(struct sw_mgmt *m)
{
    struct sw_sink *sw = m->sw;
    struct mars_encoder e = {0};
    int rc = encode_json(sw, m->state, &e);
    char *url = NULL;
    if (rc == 0) {
        /* base_url ends in /v3/logs: the management paths sit next to it */
        size_t n = strlen(sw->base_url) + 40;
        url = malloc(n);
        free(m->http_body);
        m->http_body = malloc(e.out_len + n);
        if (!url || !m->http_body) {
            rc = -ENOMEM;
        } else {
            snprintf(url, n, "%.*s/v3/management/%s",
                     (int)(strlen(sw->base_url) - strlen("/v3/logs")), sw->base_url,
                     m->state == ST_REPORT ? "reportProperties" : "keepAlive");
            /* one block: the URL after the body */
            memcpy(m->http_body, e.out, e.out_len);
            memcpy(m->http_body + e.out_len, url, strlen(url) + 1);
        }
    }
    size_t blen = e.out_len;
    mars_encoder_fini(&e);
    free(url);
    if (rc)
        return rc;
    m->http = (struct mars_http_req){
        .method = "POST",
        .url = m->http_body + blen,
        .headers = sw->hdrs,
        .body = m->http_body,
        .body_len = blen,
        .timeout_ns = 10000000000LL,
        .tls = sw->conf->tls.enabled ? &sw->tls : NULL,
        .max_body = 4096,
        .done = on_http_done,
    };
    rc = mars_http_submit(sw->http, &m->http);
    m->http_active = rc == 0;
    return rc;
}

static void step(struct sw_mgmt *m)
{
    struct sw_sink *sw = m->sw;
    int rc;
    if (m->stopping)
        return;
    if (sw->conf->transport == SW_HTTP) {
        rc = send_http(m);
    } else {
        struct sw_shared *sh = sw->shared;
        pthread_mutex_lock(&sh->lock);
        int32_t sid = sh->ids.service_id, iid = sh->ids.instance_id;
        pthread_mutex_unlock(&sh->lock);
        mars_grpc_buf_reset(&m->buf);
        rc = mars_skywalking_call_encode(sw, (enum sw_call)m->state, sw->conf->service,
                                         sw->instance, sid, iid, &m->buf);
        if (rc == 0) {
            m->call.path = paths[m->state];
            m->call.body = m->buf.p;
            m->call.body_len = m->buf.len;
            m->call.timeout_ns = 10000000000LL;
            m->call.done = on_call_done;
            rc = mars_grpc_call_start(sw->ch, &m->call);
        }
    }
    if (rc) {
        MARS_LOG_RL(MARS_LOG_WARN, sw->id, "cannot start %s: %s", paths[m->state], strerror(-rc));
        arm(m, RETRY_NS);
    }
}

void mars_skywalking_mgmt_start(struct sw_sink *sw)
{
    struct sw_mgmt *m = &sw->mgmt;
    m->sw = sw;
    m->state = sw->conf->protocol == SW_V6 ? ST_V6_SERVICE : ST_REPORT;
    arm(m, 0); /* from the loop, not inside init */
    mars_skywalking_apps_start(sw);
}

void mars_skywalking_mgmt_stop(struct sw_sink *sw)
{
    struct sw_mgmt *m = &sw->mgmt;
    m->stopping = true;
    if (m->timer_armed)
        mars_ev_cancel(mars_sink_loop(sw->sink), &m->timer);
    /* a call in flight ends with the HTTP client's shutdown (sw_abort) */
    mars_skywalking_apps_stop(sw);
}

void mars_skywalking_mgmt_fini(struct sw_sink *sw)
{
    mars_grpc_buf_fini(&sw->mgmt.buf);
    mars_skywalking_apps_fini(sw);
    free(sw->mgmt.http_body);
    sw->mgmt.http_body = NULL;
}
