/*
 * observe.c - the engine's self-knowledge (contract in observe.h): the metrics registry
 * with the DESIGN §7 families, heartbeats, run state, last errors and health checks.
 *
 * Component families are not copied into the registry: a collector (observe_report.c)
 * reads the per-worker struct mars_stats at scrape time, so the hot path pays nothing new.
 * The registry itself holds what has no other home: the per-sink batch latency histogram
 * (source read to sink acknowledgement, observed once per batch on the sink's worker,
 * shard = worker id).
 *
 * Heartbeats: every worker loop and the control loop re-arm a 1 s timer that stores the
 * monotonic clock in its slot; /healthz fails when a live loop's slot is older than
 * api.heartbeat_timeout. A worker that has finished (done) is not expected to beat.
 *
 * Last errors and the health table are small mutex-protected arrays: they change on
 * failures and probe results, never per event.
 *
 * Thread: any; the heartbeat timer callbacks on their own loops.
 */
#include "engine/observe.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/metrics.h"
#include "engine/engine_internal.h"
#include "engine/observe_internal.h"
#include "config/registry.h"

static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,     2.5,  5,     10,   30,  60};
static const char *const component_labels[] = {"component_id", "component_type", "component_kind",
                                               NULL};

int64_t mars_obs_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mars_obs_node_labels(const struct mars_node *nd, const char **v)
{
    v[0] = nd->id;
    v[1] = nd->desc->name;
    v[2] = mars_kind_name(nd->kind);
}

struct mars_obs *mars_obs_create(struct mars_engine *e)
{
    const struct mars_config *c = e->cfg;
    struct mars_obs *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->e = e;
    pthread_mutex_init(&o->lock, NULL);
    o->start_wall_ns = mars_obs_wall_ns();
    o->start_mono_ns = mars_ev_clock_ns();
    o->metrics = mars_metrics_create(e->nworkers);
    o->latency = calloc(c->n + 1, sizeof(*o->latency));
    o->errors = calloc(c->n + 1, sizeof(*o->errors));
    o->beats = calloc(e->nworkers + 1, sizeof(*o->beats));
    if (!o->metrics || !o->latency || !o->errors || !o->beats ||
        mars_metrics_add_collector(o->metrics, mars_obs_collect, o)) {
        mars_obs_destroy(o);
        return NULL;
    }
    struct mars_mfamily *lat = mars_metrics_family(
        o->metrics,
        &(struct mars_mfamily_desc){.name = "mars_batch_latency_seconds",
                                    .help = "Time from a batch's creation by its source to its "
                                            "acknowledgement by this sink.",
                                    .type = MARS_MT_HISTOGRAM,
                                    .labels = component_labels,
                                    .bounds = latency_bounds,
                                    .nbounds = sizeof(latency_bounds) / sizeof(latency_bounds[0])});
    for (uint32_t i = 0; lat && i < c->n; i++) {
        const char *v[3];
        if (c->nodes[i].kind != MARS_KIND_SINK)
            continue;
        mars_obs_node_labels(&c->nodes[i], v);
        o->latency[i] = mars_mfamily_series(lat, v);
    }
    return o;
}

void mars_obs_destroy(struct mars_obs *o)
{
    if (!o)
        return;
    mars_metrics_destroy(o->metrics);
    pthread_mutex_destroy(&o->lock);
    free(o->latency);
    free(o->errors);
    free(o->beats);
    free(o);
}

void mars_obs_set_state(struct mars_obs *o, enum mars_run_state st)
{
    atomic_store(&o->state, (int)st);
}

struct mars_metrics *mars_obs_metrics(struct mars_obs *o)
{
    return o->metrics;
}

/* ---- heartbeats ---- */

static void on_worker_beat(struct mars_ev_op *op, int res)
{
    struct mars_worker *w = op->data;
    w->heartbeat_armed = false;
    atomic_store_explicit(&w->e->obs->beats[w->id], mars_ev_clock_ns(), memory_order_relaxed);
    if (res == -ECANCELED || w->heartbeat_stopping)
        return;
    mars_ev_prep_timer(&w->heartbeat, mars_ev_until_aligned(HEARTBEAT_NS), on_worker_beat, w);
    w->heartbeat_armed = mars_ev_submit(w->loop, &w->heartbeat) == 0;
}

void mars_obs_worker_start(struct mars_worker *w)
{
    if (!w->e->obs)
        return;
    atomic_store(&w->e->obs->beats[w->id], mars_ev_clock_ns());
    mars_ev_prep_timer(&w->heartbeat, mars_ev_until_aligned(HEARTBEAT_NS), on_worker_beat, w);
    w->heartbeat_armed = mars_ev_submit(w->loop, &w->heartbeat) == 0;
}

void mars_obs_worker_stop(struct mars_worker *w)
{
    w->heartbeat_stopping = true;
    if (w->heartbeat_armed)
        mars_ev_cancel(w->loop, &w->heartbeat);
}

static void on_control_beat(struct mars_ev_op *op, int res)
{
    struct mars_obs *o = op->data;
    o->control_armed = false;
    atomic_store_explicit(&o->beats[o->e->nworkers], mars_ev_clock_ns(), memory_order_relaxed);
    if (res == -ECANCELED || o->control_stopping)
        return;
    mars_ev_prep_timer(&o->control_beat, mars_ev_until_aligned(HEARTBEAT_NS), on_control_beat, o);
    o->control_armed = mars_ev_submit(o->control_loop, &o->control_beat) == 0;
}

void mars_obs_control_start(struct mars_obs *o, struct mars_ev_loop *loop)
{
    o->control_loop = loop;
    atomic_store(&o->beats[o->e->nworkers], mars_ev_clock_ns());
    mars_ev_prep_timer(&o->control_beat, mars_ev_until_aligned(HEARTBEAT_NS), on_control_beat, o);
    o->control_armed = mars_ev_submit(loop, &o->control_beat) == 0;
}

void mars_obs_control_stop(struct mars_obs *o)
{
    o->control_stopping = true;
    if (o->control_armed)
        mars_ev_cancel(o->control_loop, &o->control_beat);
}

int mars_obs_healthz(struct mars_obs *o, char *why, size_t len)
{
    const struct mars_engine *e = o->e;
    int64_t now = mars_ev_clock_ns(), limit = e->cfg->top.api.heartbeat_timeout;
    for (unsigned i = 0; i <= e->nworkers; i++) {
        bool control = i == e->nworkers;
        if (!control && atomic_load(&e->workers[i].done))
            continue;
        int64_t beat = atomic_load_explicit(&o->beats[i], memory_order_relaxed);
        if (beat && now - beat <= limit)
            continue;
        if (control)
            snprintf(why, len, "the control loop has not turned for %lld ms",
                     (long long)((now - beat) / 1000000));
        else
            snprintf(why, len, "worker %u has not turned for %lld ms", i,
                     (long long)((now - beat) / 1000000));
        return -1;
    }
    return 0;
}

/* ---- sink results ---- */

void mars_obs_sink_result(struct mars_sink *s, const struct mars_sink_req *r,
                          enum mars_sink_result res)
{
    struct mars_obs *o = s->w->e->obs;
    switch (res) {
    case MARS_SINK_OK: {
        int64_t now = mars_ev_clock_ns();
        mars_stat_set(&s->stats->consecutive_failures, 0);
        for (uint32_t i = 0; o && i < r->n; i++) {
            int64_t age = now - r->batches[i]->created_ns;
            mars_mseries_observe(o->latency[s->idx], s->w->id, age > 0 ? (double)age / 1e9 : 0);
        }
        break;
    }
    case MARS_SINK_RETRY:
    case MARS_SINK_REJECTED:
        mars_stat_add(&s->stats->consecutive_failures, 1);
        if (o)
            mars_obs_set_error(
                o, s->idx, "request of %llu events %s (attempt %u)", (unsigned long long)r->events,
                res == MARS_SINK_RETRY ? "failed; retrying" : "rejected", r->attempt + 1);
        break;
    case MARS_SINK_ABORTED:
        break;
    }
}

int mars_obs_readyz(struct mars_obs *o, char *why, size_t len, char *component, size_t clen)
{
    const struct mars_engine *e = o->e;
    const struct mars_config *c = e->cfg;
    int st = atomic_load(&o->state);
    snprintf(component, clen, "%s", "");
    if (st != MARS_RUN_RUNNING) {
        snprintf(why, len, "%s", st == MARS_RUN_STARTING ? "starting" : "shutting down");
        return -1;
    }
    /* by default a failing backend does not make mars unready: every pod of a DaemonSet
     * would go NotReady at once and stall its rollout (docs/observability.md) */
    if (c->top.api.readiness != MARS_READY_SINKS)
        return 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->nodes[i].kind != MARS_KIND_SINK)
            continue;
        for (unsigned w = 0; w < e->nworkers; w++) {
            uint64_t f = mars_stat_get(&e->workers[w].stats[i].consecutive_failures);
            if (f < (uint64_t)c->top.api.sink_failure_threshold)
                continue;
            snprintf(why, len, "sink '%s' has failed %llu requests in a row", c->nodes[i].id,
                     (unsigned long long)f);
            snprintf(component, clen, "%s", c->nodes[i].id);
            return -1;
        }
    }
    return 0;
}

/* ---- last errors ---- */

static void set_error_v(struct mars_obs *o, uint32_t node, const char *fmt, va_list ap)
{
    if (!o || node >= o->e->cfg->n)
        return;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    pthread_mutex_lock(&o->lock);
    struct last_error *le = &o->errors[node];
    memcpy(le->msg, msg, sizeof(msg));
    le->wall_ns = mars_obs_wall_ns();
    le->count++;
    pthread_mutex_unlock(&o->lock);
}

void mars_obs_set_error(struct mars_obs *o, uint32_t node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(o, node, fmt, ap);
    va_end(ap);
}

void mars_source_last_error(struct mars_source *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(s->w->e->obs, s->idx, fmt, ap);
    va_end(ap);
}

void mars_sink_last_error(struct mars_sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(s->w->e->obs, s->idx, fmt, ap);
    va_end(ap);
}

void mars_transform_last_error(struct mars_transform *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(t->w->e->obs, t->idx, fmt, ap);
    va_end(ap);
}

struct mars_obs *mars_source_obs(const struct mars_source *s)
{
    return s->w->e->obs;
}

struct mars_obs *mars_sink_obs(const struct mars_sink *s)
{
    return s->w->e->obs;
}

struct mars_obs *mars_transform_obs(const struct mars_transform *t)
{
    return t->w->e->obs;
}

unsigned mars_source_shard(const struct mars_source *s)
{
    return s->w->id;
}

unsigned mars_sink_shard(const struct mars_sink *s)
{
    return s->w->id;
}

unsigned mars_transform_shard(const struct mars_transform *t)
{
    return t->w->id;
}

/* ---- shared objects ---- */

void *mars_shared_acquire(struct mars_obs *o, const char *key, void *(*create)(void *arg),
                          void *arg)
{
    void *obj = NULL;
    struct shared *free_slot = NULL;
    pthread_mutex_lock(&o->lock);
    for (int i = 0; i < MAX_SHARED; i++) {
        struct shared *sh = &o->shared[i];
        if (sh->refs && strcmp(sh->key, key) == 0) {
            sh->refs++;
            obj = sh->obj;
            goto out;
        }
        if (!sh->refs && !free_slot)
            free_slot = sh;
    }
    if (free_slot && strlen(key) < sizeof(free_slot->key) && (obj = create(arg)) != NULL) {
        snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
        free_slot->obj = obj;
        free_slot->refs = 1;
    }
out:
    pthread_mutex_unlock(&o->lock);
    return obj;
}

void mars_shared_release(struct mars_obs *o, const char *key, void (*destroy)(void *obj))
{
    pthread_mutex_lock(&o->lock);
    for (int i = 0; i < MAX_SHARED; i++) {
        struct shared *sh = &o->shared[i];
        if (!sh->refs || strcmp(sh->key, key) != 0)
            continue;
        if (--sh->refs == 0) {
            destroy(sh->obj);
            sh->obj = NULL;
            sh->key[0] = '\0';
        }
        break;
    }
    pthread_mutex_unlock(&o->lock);
}

/* ---- health checks ---- */

const char *mars_health_status_name(enum mars_health_status st)
{
    static const char *const names[] = {"UNKNOWN", "UP", "DOWN"};
    return names[st];
}

int mars_health_register(struct mars_obs *o, const char *name, const char *type)
{
    int id = -ENOSPC;
    pthread_mutex_lock(&o->lock);
    for (int i = 0; i < o->nhealth; i++) {
        if (strcmp(o->health[i].name, name) == 0) {
            id = -EEXIST;
            goto out;
        }
    }
    if (o->nhealth < MAX_HEALTH) {
        id = o->nhealth++;
        struct health_entry *h = &o->health[id];
        snprintf(h->name, sizeof(h->name), "%s", name);
        snprintf(h->type, sizeof(h->type), "%s", type);
        h->status = MARS_HEALTH_UNKNOWN;
        h->detail[0] = '\0';
    }
out:
    pthread_mutex_unlock(&o->lock);
    return id;
}

void mars_health_update(struct mars_obs *o, int id, enum mars_health_status st, const char *detail)
{
    pthread_mutex_lock(&o->lock);
    if (id >= 0 && id < o->nhealth) {
        o->health[id].status = st;
        snprintf(o->health[id].detail, sizeof(o->health[id].detail), "%s", detail ? detail : "");
    }
    pthread_mutex_unlock(&o->lock);
}

static void health_entry_json(const struct health_entry *h, struct evbuffer *out)
{
    evbuffer_add_printf(out, "{\"status\":\"%s\",\"type\":\"%s\"%s%s}",
                        mars_health_status_name(h->status), h->type, h->detail[0] ? "," : "",
                        h->detail);
}

int mars_health_json(struct mars_obs *o, const char *name, struct evbuffer *out)
{
    int code = 404;
    pthread_mutex_lock(&o->lock);
    if (name) {
        for (int i = 0; i < o->nhealth; i++) {
            if (strcmp(o->health[i].name, name) != 0)
                continue;
            health_entry_json(&o->health[i], out);
            code = o->health[i].status == MARS_HEALTH_UP ? 200 : 503;
        }
    } else {
        bool all_up = true;
        for (int i = 0; i < o->nhealth; i++)
            all_up = all_up && o->health[i].status == MARS_HEALTH_UP;
        evbuffer_add_printf(out, "{\"status\":\"%s\",\"components\":{", all_up ? "UP" : "DOWN");
        for (int i = 0; i < o->nhealth; i++) {
            if (i)
                evbuffer_add(out, ",", 1);
            mars_json_string(out, o->health[i].name);
            evbuffer_add(out, ":", 1);
            health_entry_json(&o->health[i], out);
        }
        evbuffer_add(out, "}}", 2);
        code = all_up ? 200 : 503;
    }
    pthread_mutex_unlock(&o->lock);
    return code;
}
