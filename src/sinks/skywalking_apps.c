/*
 * skywalking_apps.c - background registration of the PHP apps behind the apm_socket
 * source: each app_code a register request names becomes a service of that name, with
 * this sink's instance name, registered and kept alive by the sink like mars's own
 * (skywalking_mgmt.c), so the PHP side gets real ids on its next register request.
 *
 * The apps live in the sink's shared object (struct sw_shared, under its lock): the
 * apm_socket source adds them from its worker (mars_skywalking_app_ids, at most
 * max_services), the owner instance registers them here, on its worker's loop, one call at
 * a time, beside the calls for mars's own instance:
 *
 *   v8+  NEW    reportInstanceProperties(app, instance)  -> registered, READY
 *        READY  keepAlive every keepalive_interval; every 10th goes through NEW again
 *   v6   NEW    doServiceRegister(app)                   -> service id: SERVICE
 *        SERVICE doServiceInstanceRegister(id, instance) -> instance id: registered, READY
 *        READY  doPing(instance id) every keepalive_interval; ServiceMetadataReset -> NEW
 *
 * A failed call or an empty v6 answer (the OAP registers asynchronously) is tried again
 * after 3 s. A poll timer (200 ms) picks up apps the source added: the source runs on
 * another worker and must not wait, and a poll costs one lock and a scan of max_services
 * entries at most.
 *
 * Thread: the owner instance's worker; struct sw_shared under its lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "sinks/skywalking_internal.h"

#define POLL_NS      200000000LL
#define RETRY_NS     3000000000LL
#define REPORT_EVERY 10

static void apps_arm(struct sw_mgmt *m, int64_t ns);

/* The call an app needs in its state. */
static enum sw_call call_of(const struct sw_sink *sw, const struct sw_app *a)
{
    bool v6 = sw->conf->protocol == SW_V6;
    switch (a->state) {
    case SW_APP_NEW:
        return v6 ? SW_CALL_V6_SERVICE : SW_CALL_REPORT;
    case SW_APP_SERVICE:
        return SW_CALL_V6_INSTANCE;
    default:
        return v6 ? SW_CALL_V6_PING : SW_CALL_PING;
    }
}

/* What follows a finished call for a (under the lock). */
static void after(struct sw_sink *sw, struct sw_app *a, enum sw_call c,
                  const struct mars_grpc_result *res, int64_t now)
{
    int64_t keepalive = sw->conf->keepalive_interval;
    a->due_ns = now + RETRY_NS;
    if (res->code != MARS_GRPC_OK) {
        if (c == SW_CALL_PING)
            a->state = SW_APP_NEW; /* the OAP may have lost it: report again */
        if (a->registered)
            a->due_ns = now + keepalive;
        return;
    }
    switch (c) {
    case SW_CALL_REPORT:
        a->registered = true;
        a->state = SW_APP_READY;
        a->pings = 0;
        a->due_ns = now; /* the first keepAlive at once, as for mars's own */
        break;
    case SW_CALL_PING:
        a->due_ns = now + keepalive;
        if (++a->pings >= REPORT_EVERY)
            a->state = SW_APP_NEW;
        break;
    case SW_CALL_V6_SERVICE:
        if ((a->service_id = mars_skywalking_v6_mapped(c, res, a->name))) {
            a->state = SW_APP_SERVICE;
            a->due_ns = now;
        }
        break;
    case SW_CALL_V6_INSTANCE:
        if ((a->instance_id = mars_skywalking_v6_mapped(c, res, sw->instance))) {
            a->registered = true;
            a->state = SW_APP_READY;
            a->due_ns = now;
            mars_info(sw->id, "app %s registered with the OAP (v6): service id %d, instance id %d",
                      a->name, (int)a->service_id, (int)a->instance_id);
        }
        break;
    case SW_CALL_V6_PING:
        a->due_ns = now + keepalive;
        if (mars_skywalking_v6_reset(res)) {
            a->state = SW_APP_NEW;
            a->registered = false;
            a->service_id = a->instance_id = 0;
            a->due_ns = now;
        }
        break;
    }
}

static void on_call_done(struct mars_grpc_call *c, const struct mars_grpc_result *res)
{
    struct sw_mgmt *m = MARS_CONTAINER_OF(c, struct sw_mgmt, apps_call);
    struct sw_sink *sw = m->sw;
    m->apps_busy = false;
    if (m->stopping || (res->code == MARS_GRPC_CANCELLED && res->transport))
        return;
    if (res->code != MARS_GRPC_OK)
        MARS_LOG_RL(MARS_LOG_WARN, sw->id, "%s for app %s failed (%s: %s); will retry",
                    mars_skywalking_call_path((enum sw_call)m->apps_call_kind), m->apps_cur->name,
                    mars_grpc_code_name(res->code), res->message);
    pthread_mutex_lock(&sw->shared->lock);
    after(sw, m->apps_cur, (enum sw_call)m->apps_call_kind, res,
          mars_ev_now(mars_sink_loop(sw->sink)));
    pthread_mutex_unlock(&sw->shared->lock);
    apps_arm(m, 0);
}

/* Starts the call of the first app that is due. */
static void apps_step(struct sw_mgmt *m)
{
    struct sw_sink *sw = m->sw;
    struct sw_shared *sh = sw->shared;
    int64_t now = mars_ev_now(mars_sink_loop(sw->sink));
    struct sw_app *a = NULL;
    char name[sizeof(a->name)];
    int32_t sid = 0, iid = 0;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->napps && !a; i++)
        if (sh->apps[i].due_ns <= now)
            a = &sh->apps[i];
    if (a) {
        memcpy(name, a->name, sizeof(name));
        sid = a->service_id;
        iid = a->instance_id;
        m->apps_call_kind = (int)call_of(sw, a);
        a->due_ns = now + RETRY_NS; /* until its call ends */
    }
    pthread_mutex_unlock(&sh->lock);
    if (!a) {
        apps_arm(m, POLL_NS);
        return;
    }
    enum sw_call c = (enum sw_call)m->apps_call_kind;
    mars_grpc_buf_reset(&m->apps_buf);
    int rc = mars_skywalking_call_encode(sw, c, name, sw->instance, sid, iid, &m->apps_buf);
    if (rc == 0) {
        m->apps_cur = a;
        m->apps_call.path = mars_skywalking_call_path(c);
        m->apps_call.body = m->apps_buf.p;
        m->apps_call.body_len = m->apps_buf.len;
        m->apps_call.timeout_ns = 10000000000LL;
        m->apps_call.done = on_call_done;
        rc = mars_grpc_call_start(sw->ch, &m->apps_call);
    }
    if (rc) {
        MARS_LOG_RL(MARS_LOG_WARN, sw->id, "cannot start %s for app %s: %s",
                    mars_skywalking_call_path(c), name, strerror(-rc));
        apps_arm(m, POLL_NS);
        return;
    }
    m->apps_busy = true;
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct sw_mgmt *m = op->data;
    m->apps_armed = false;
    if (res == -ECANCELED || m->stopping || m->apps_busy)
        return;
    apps_step(m);
}

static void apps_arm(struct sw_mgmt *m, int64_t ns)
{
    if (m->stopping || m->apps_armed)
        return;
    mars_ev_prep_timer(&m->apps_timer, ns, on_timer, m);
    if (mars_ev_submit(mars_sink_loop(m->sw->sink), &m->apps_timer) == 0)
        m->apps_armed = true;
}

void mars_skywalking_apps_start(struct sw_sink *sw)
{
    if (sw->shared->max_apps)
        apps_arm(&sw->mgmt, POLL_NS);
}

void mars_skywalking_apps_stop(struct sw_sink *sw)
{
    struct sw_mgmt *m = &sw->mgmt;
    if (m->apps_armed)
        mars_ev_cancel(mars_sink_loop(sw->sink), &m->apps_timer);
    /* a call in flight ends with the HTTP client's shutdown (sw_abort) */
}

void mars_skywalking_apps_fini(struct sw_sink *sw)
{
    mars_grpc_buf_fini(&sw->mgmt.apps_buf);
}
