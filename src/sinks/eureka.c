/*
 * eureka.c - the `eureka` sink: registers instances with a Eureka server (Spring Cloud
 * Netflix or Netflix's own), keeps their leases alive, and sets their status from
 * health_check events and from their pods, so a service without a Eureka client library
 * joins a Spring Cloud registry and leaves it when it is unhealthy, when its pod goes, or
 * when mars stops. What goes on the wire is eureka_client.c; the pods eureka_pods.c.
 *
 * Instances: the static `instances`, the annotated pods of `pods`, and, for a moment after
 * a reload, those the previous engine left registered (ADOPTED) until the new
 * configuration claims them (same app and instance id) or drops them (DELETE). Each has a
 * small state machine run by step(): its wanted status (pod state, then its health check,
 * else UP) against what the registry was told; a change is sent at once by registering
 * again with the new status and a new lastDirtyTimestamp, as Eureka's Java client does
 * (mars never sets a status override, which the server would keep after mars is gone);
 * otherwise a heartbeat every renewal_interval, a register after a 404; a removed one is
 * DELETEd and then forgotten.
 *
 * Workers: the engine makes one instance of this sink per worker with an upstream, but
 * each Eureka instance must be registered once. The sink's instances share one
 * `struct eu_reg` (mars_shared_acquire under the sink id): the first to acquire it owns
 * the registrar (HTTP client, timers, the pod subscription) and runs it on its loop; every
 * instance, owner or not, posts the check states its events carry into the reg (under its
 * mutex). The owner acts on its own events at once and on others' on its tick (200 ms).
 *
 * Stop: on SIGTERM (the sink's abort, which the worker calls when the pipeline stops)
 * every instance that was registered is DELETEd, within deregister_timeout. On a stop for
 * a reload (mars_obs_reloading) nothing is deleted: the registrations go to the next
 * engine's sink of the same id (eureka_handover.c).
 *
 * Thread: each instance's worker; the reg's checks are under its mutex, the rest of the
 * registrar is touched only by the owner's worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"
#include "sinks/eureka_internal.h"

#define TICK_NS     200000000LL
#define MAX_DELETES 3 /* tries of the DELETE of a removed instance */

int64_t mars_eureka_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the shared registrar: check states from every worker ---- */

static void *reg_create(void *arg)
{
    struct eu_reg *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->owner = arg; /* the first instance to acquire runs the registrar */
    return r;
}

static void reg_destroy(void *obj)
{
    struct eu_reg *r = obj;
    for (size_t i = 0; i < r->nchecks; i++)
        free(r->checks[i].name);
    free(r->checks);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* The state of check `name` (STARTING until its first result). */
static int reg_check(struct eu_reg *r, const char *name)
{
    int st = EU_STARTING;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0) {
            st = r->checks[i].status;
            break;
        }
    pthread_mutex_unlock(&r->lock);
    return st;
}

/* Keeps at most this many checks: names come from the configuration and from pod
 * annotations, and an unknown name stays STARTING. */
#define MAX_CHECKS 1024

void mars_eureka_reg_post(struct eu_reg *r, const struct mars_slice *name, int st, bool if_new)
{
    pthread_mutex_lock(&r->lock);
    size_t i = 0;
    while (i < r->nchecks && (strlen(r->checks[i].name) != name->len ||
                              memcmp(r->checks[i].name, name->ptr, name->len) != 0))
        i++;
    if (i == r->nchecks && r->nchecks < MAX_CHECKS) {
        char *n = strndup(name->ptr, name->len);
        if (n && r->nchecks == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 8;
            struct eu_check *c = realloc(r->checks, cap * sizeof(*c));
            if (c) {
                r->checks = c;
                r->cap = cap;
            }
        }
        if (n && r->nchecks < r->cap)
            r->checks[r->nchecks++] = (struct eu_check){.name = n, .status = st};
        else
            free(n);
    } else if (i < r->nchecks && !if_new) {
        r->checks[i].status = st;
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- the instance table (owner) ---- */

struct eu_inst *mars_eureka_inst_find(struct eu_sink *es, const char *app, const char *id)
{
    for (size_t i = 0; i < es->ninst; i++) {
        struct eu_inst *in = es->inst[i];
        if (strcmp(in->d.app, app) == 0 && strcmp(in->d.id, id) == 0)
            return in;
    }
    return NULL;
}

struct eu_inst *mars_eureka_inst_add(struct eu_sink *es, struct eu_desc *d, enum eu_origin o)
{
    struct eu_inst *in = calloc(1, sizeof(*in));
    if (!in || (es->ninst == es->cap &&
                mars_grow(&es->inst, &es->cap, es->ninst + 1, sizeof(*es->inst)) != 0)) {
        free(in);
        mars_eureka_desc_fini(d);
        return NULL;
    }
    in->es = es;
    in->d = *d;
    memset(d, 0, sizeof(*d));
    in->id_esc = mars_eureka_escape_segment(in->d.id);
    if (!in->id_esc) {
        mars_eureka_desc_fini(&in->d);
        free(in);
        return NULL;
    }
    in->origin = o;
    in->hash = mars_eureka_desc_hash(&in->d);
    in->status = in->d.health_check ? EU_STARTING : EU_UP;
    in->dirty_ms = mars_eureka_wall_ms();
    in->need_register = o != EU_ADOPTED;
    es->inst[es->ninst++] = in;
    mars_eureka_inst_metrics(in);
    return in;
}

void mars_eureka_inst_update(struct eu_inst *in, struct eu_desc *d)
{
    uint64_t h = mars_eureka_desc_hash(d);
    mars_eureka_desc_fini(&in->d);
    in->d = *d;
    memset(d, 0, sizeof(*d));
    if (h != in->hash) {
        in->hash = h;
        in->dirty_ms = mars_eureka_wall_ms();
        in->need_register = true;
        if (in->fails == 0)
            in->next_ns = 0;
    }
}

void mars_eureka_inst_remove(struct eu_inst *in)
{
    if (in->removing)
        return;
    mars_info(mars_sink_id(in->es->sink), "%s/%s is no longer wanted: deregistering", in->d.app,
              in->d.id);
    in->removing = true;
    in->fails = 0;
    in->next_ns = 0;
}

void mars_eureka_inst_forget(struct eu_inst *in)
{
    struct eu_sink *es = in->es;
    mars_mseries_set(in->m_registered, es->shard, 0);
    for (int s = 0; s < EU__COUNT; s++)
        mars_mseries_set(in->m_status[s], es->shard, 0);
    for (size_t i = 0; i < es->ninst; i++)
        if (es->inst[i] == in) {
            es->inst[i] = es->inst[--es->ninst];
            break;
        }
    mars_eureka_desc_fini(&in->d);
    free(in->id_esc), free(in->url), free(in->del_url), free(in->body);
    free(in);
}

/* ---- each instance's state machine (owner) ---- */

static int want_status(struct eu_inst *in)
{
    if (in->origin == EU_ADOPTED)
        return in->status; /* nobody decides it until it is claimed */
    int st = in->origin == EU_POD ? mars_eureka_pod_status(in) : -1;
    if (st >= 0)
        return st; /* a pod not ready or terminating wins over its check */
    return in->d.health_check ? reg_check(in->es->reg, in->d.health_check) : EU_UP;
}

/* Sends what is due for one instance; may forget it (a removed one). */
void mars_eureka_step(struct eu_inst *in)
{
    struct eu_sink *es = in->es;
    if (in->busy || es->stopping)
        return;
    int64_t now = mars_ev_now(es->loop);
    if (in->removing) {
        if (!in->registered) {
            mars_eureka_inst_forget(in);
        } else if (in->fails >= MAX_DELETES) {
            mars_warn(mars_sink_id(es->sink),
                      "giving up the DELETE of %s/%s after %u tries: it leaves the registry "
                      "when its lease expires",
                      in->d.app, in->d.id, in->fails);
            mars_eureka_inst_forget(in);
        } else if (now >= in->next_ns) {
            mars_eureka_send(in, OP_DELETE);
        }
        return;
    }
    int want = want_status(in);
    if (want != in->status) {
        mars_info(mars_sink_id(es->sink), "%s/%s is now %s (was %s)", in->d.app, in->d.id,
                  mars_eureka_status_names[want], mars_eureka_status_names[in->status]);
        in->status = want;
        in->dirty_ms = mars_eureka_wall_ms();
        in->need_register = true;
        mars_eureka_set_status_metric(in);
        if (in->fails == 0)
            in->next_ns = 0; /* at once, unless the servers are failing */
    }
    if (now < in->next_ns)
        return;
    bool reg = in->need_register || !in->registered;
    if (in->origin == EU_ADOPTED && reg)
        return; /* not registered again before the new configuration claims it */
    mars_eureka_send(in, reg ? OP_REGISTER : OP_RENEW);
}

static void step_all(struct eu_sink *es)
{
    for (size_t i = es->ninst; i-- > 0;) /* backwards: step may forget inst[i] */
        if (i < es->ninst)
            mars_eureka_step(es->inst[i]);
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
    step_all(es);
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

/* ---- stop: DELETE every registered instance, or keep them for a reload ---- */

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
        mars_info(id, "deregistered %s/%s from %s", in->d.app, in->d.id, es->servers[es->cur].url);
        mars_mseries_set(in->m_registered, es->shard, 0);
        in->registered = false;
    } else {
        mars_eureka_count_failure(in, OP_DELETE,
                                  resp->error           ? R_TRANSPORT
                                  : resp->status >= 500 ? R_SERVER_ERROR
                                                        : R_REJECTED);
        mars_warn(id, "deregistering %s/%s from Eureka server %s failed: %s%d", in->d.app, in->d.id,
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
    struct mars_obs *obs = mars_sink_obs(s);
    bool reload = obs && mars_obs_reloading(obs);
    if (reload)
        mars_eureka_hand_over(es);
    for (size_t i = 0; i < es->ninst; i++) {
        struct eu_inst *in = es->inst[i];
        bool maybe = in->registered || (in->busy && in->op == OP_REGISTER);
        if (in->busy)
            mars_http_cancel(es->http, &in->req);
        if (!maybe || reload)
            continue;
        if (mars_eureka_send_delete(in, es->conf->deregister_timeout, on_deleted) == 0)
            es->deleting++;
    }
    if (es->deleting == 0)
        mars_http_shutdown(es->http);
    /* last: ending the subscription runs the loop until its wakeup is cancelled, and the
     * answers that arrive meanwhile must find the registrations already kept or deleted */
    mars_eureka_pods_stop(es);
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

static void eureka_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct eu_sink *es = mars_sink_state(s);
    bool posted = false;
    for (uint32_t bi = 0; bi < r->n; bi++) {
        const struct mars_batch *b = r->batches[bi];
        for (uint32_t i = 0; i < b->n; i++) {
            const struct mars_event *ev = &b->ev[i];
            struct mars_slice name;
            int st = ev->kind == MARS_EVENT_METRIC && ev->metric ? metric_state(ev->metric, &name)
                                                                 : state_event(ev, &name);
            if (st >= 0) {
                mars_eureka_reg_post(es->reg, &name, st, false);
                posted = true;
            }
        }
    }
    if (posted && es->owner)
        step_all(es);
    mars_sink_done(s, r, MARS_SINK_OK, 0);
}

/* ---- setup ---- */

static void eu_free(struct eu_sink *es)
{
    mars_eureka_pods_stop(es);
    if (es->http)
        mars_http_destroy(es->http);
    while (es->ninst > 0)
        mars_eureka_inst_forget(es->inst[es->ninst - 1]);
    free(es->inst);
    for (size_t i = 0; es->servers && i < es->nservers; i++)
        free(es->servers[i].url), free(es->servers[i].user), free(es->servers[i].password);
    free(es->servers);
    if (es->reg)
        mars_shared_release(mars_sink_obs(es->sink), mars_sink_id(es->sink), reg_destroy);
    free(es);
}

static int start_registrar(struct eu_sink *es)
{
    if (gethostname(es->node_host, sizeof(es->node_host) - 1) != 0)
        snprintf(es->node_host, sizeof(es->node_host), "localhost");
    mars_eureka_metrics(es);
    for (size_t i = 0; i < es->conf->instances.n; i++) {
        struct eu_desc d;
        int rc = mars_eureka_desc_static(es->conf, eu_instance_at(es->conf, i), es->node_host, &d);
        if (rc)
            return rc;
        if (mars_eureka_inst_find(es, d.app, d.id)) {
            mars_warn(mars_sink_id(es->sink), "instance %s/%s is listed twice: registered once",
                      d.app, d.id);
            mars_eureka_desc_fini(&d);
            continue;
        }
        if (!mars_eureka_inst_add(es, &d, EU_STATIC))
            return -ENOMEM;
    }
    /* libcurl only if a server needs it (https://, a proxy): loaded at that request */
    struct mars_http_opts ho = {.curl_on_demand = true};
    for (size_t i = 0; i < es->nservers; i++)
        if (!mars_http_url_direct(es->servers[i].url))
            ho.curl_on_demand = false;
    es->http = mars_http_create(es->loop, &ho);
    if (!es->http)
        return -errno;
    mars_eureka_take_over(es);
    int rc = es->conf->pods.on ? mars_eureka_pods_start(es) : 0;
    if (rc)
        return rc;
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
    es->headers[0] = "Content-Type: application/json";
    es->headers[1] = "Accept: application/json";
    mars_netconf_http_tls(&conf->tls, mars_sink_id(s), &es->tls);
    es->servers = calloc(conf->servers.n ? conf->servers.n : 1, sizeof(*es->servers));
    if (!es->servers)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < conf->servers.n; i++, es->nservers++)
        rc = mars_eureka_parse_server(conf->servers.v[i], &es->servers[i]);
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
    .description = "Registers instances (static, or this node's annotated pods) with Eureka and "
                   "keeps their leases, with status from health_check events and pod "
                   "readiness; deregisters them when they go or mars stops.",
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
