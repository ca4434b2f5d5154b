/*
 * watch.c - keeps the shared pod cache (meta.c) in step with the API server: one
 * list+watch of this node's pods (fieldSelector=spec.nodeName=<node>) and one of
 * namespaces, whatever the number of pods, lines or components that use them.
 *
 * Why a thread of its own. The design puts the watch on the control thread, but a
 * component instance has no handle on the control loop, only on its worker's; the cache
 * therefore runs one metadata thread with its own ev loop (same backend as the workers)
 * and its own HTTP client (core/http_client.h), started by its first user and stopped by
 * the last (meta.c). Workers never wait on it: a line whose pod is not in the cache yet
 * is shipped without metadata and counted; subscribers are woken after each change.
 *
 * Per resource, a small state machine:
 *   LIST   GET the collection; every item goes into the cache stamped with a new
 *          generation, items of older generations are marked deleted (missed while
 *          disconnected), and the list's resourceVersion is kept.
 *   WATCH  GET ...&watch=1&allowWatchBookmarks=true&resourceVersion=<rv>: one JSON event
 *          a line, streamed (on_data); ADDED/MODIFIED replace the record, DELETED marks it
 *          (kept for delete_grace), BOOKMARK only moves rv. A watch that ends normally
 *          (timeoutSeconds) or breaks resumes from rv; 410 Gone (as a status or an ERROR
 *          event) means rv is too old: LIST again.
 *   WAIT   after a failure, exponential backoff (0.5 s .. 30 s, reset by success), then
 *          WATCH if there is an rv, else LIST.
 * The bearer token is read from token_file again every minute (bound tokens rotate).
 *
 * Thread: the metadata thread, except mars_kubernetes_watch_start/stop (the caller's).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/grow.h"
#include "core/http_client.h"
#include "core/log.h"
#include "kubernetes_internal.h"
#include "component.h"

#define TICK_NS        1000000000LL
#define TOKEN_TTL_NS   (60LL * 1000000000)
#define BACKOFF_MIN_NS 500000000LL
#define BACKOFF_MAX_NS (30LL * 1000000000)
#define LIST_MAX_BODY  ((size_t)512 << 20)
#define LINE_MAX       ((size_t)64 << 20)

enum res_state { RS_IDLE, RS_LIST, RS_WATCH, RS_WAIT };

struct kubernetes_watch;

struct kubernetes_res {
    struct kubernetes_watch *w;
    bool pods;
    enum res_state state;
    char rv[128];
    unsigned gen;
    bool gone; /* a 410 arrived in the stream */
    int64_t backoff_ns;
    struct mars_http_req req;
    char url[2048];
    char *line; /* the watch stream's unfinished line */
    size_t len, cap;
    struct mars_ev_op timer;
    bool timer_armed;
};

struct kubernetes_watch {
    struct mars_kubernetes_pods *m;
    const struct mars_kubernetes_api_conf *api;
    char id[128];
    char base[1024], node[256];
    char backend[32];
    pthread_t th;
    pthread_mutex_t mu; /* start handshake: ready 1 (running) or -1 (failed) */
    pthread_cond_t cv;
    int ready;
    struct mars_ev_loop *loop;
    struct mars_http *http;
    struct mars_http_tls tls;
    struct mars_ev_async async;
    atomic_bool stop;
    bool stopping;
    char *token;
    int64_t token_at;
    struct mars_ev_op tick;
    bool tick_armed;
    struct mars_fbuild fb;
    struct kubernetes_res pods, nss;
    uint64_t requests;
};

static void res_next(struct kubernetes_res *r);

/* ---- token ---- */

static void read_token(struct kubernetes_watch *w, int64_t now)
{
    if (w->token && now - w->token_at < TOKEN_TTL_NS)
        return;
    w->token_at = now;
    FILE *f = w->api->token_file ? fopen(w->api->token_file, "re") : NULL;
    if (!f)
        return; /* no token: requests go without one (a local or test API server) */
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    char *t = n ? strdup(buf) : NULL;
    if (n && !t)
        return;
    free(w->token);
    w->token = t;
}

/* ---- requests ---- */

static void on_list_done(struct mars_http_req *req, const struct mars_http_resp *resp);
static void on_watch_done(struct mars_http_req *req, const struct mars_http_resp *resp);
static bool on_watch_data(struct mars_http_req *req, const char *p, size_t n);

static const char *collection(const struct kubernetes_res *r)
{
    return r->pods ? "/api/v1/pods" : "/api/v1/namespaces";
}

static int submit(struct kubernetes_res *r, bool watch)
{
    struct kubernetes_watch *w = r->w;
    char sel[320] = "";
    if (r->pods)
        snprintf(sel, sizeof(sel), "fieldSelector=spec.nodeName%%3D%s&", w->node);
    if (watch)
        snprintf(r->url, sizeof(r->url),
                 "%s%s?%swatch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%lld",
                 w->base, collection(r), sel, r->rv,
                 (long long)(w->api->watch_timeout / 1000000000));
    else
        snprintf(r->url, sizeof(r->url), "%s%s?%s", w->base, collection(r), sel);
    read_token(w, mars_ev_now(w->loop));
    r->req = (struct mars_http_req){
        .url = r->url,
        .tls = w->base[4] == 's' ? &w->tls : NULL,
        .bearer = w->token,
        .timeout_ns = watch ? w->api->watch_timeout + 30 * 1000000000LL : 60 * 1000000000LL,
        .max_body = watch ? 0 : LIST_MAX_BODY,
        .direct = true,
        .on_data = watch ? on_watch_data : NULL,
        .done = watch ? on_watch_done : on_list_done,
        .data = r,
    };
    r->len = 0;
    r->gone = false;
    r->state = watch ? RS_WATCH : RS_LIST;
    w->requests++;
    int rc = mars_http_submit(w->http, &r->req);
    if (rc)
        r->state = RS_IDLE;
    return rc;
}

static void on_backoff(struct mars_ev_op *op, int res)
{
    struct kubernetes_res *r = op->data;
    r->timer_armed = false;
    if (r->w->stopping)
        return;
    res_next(r);
}

static void fail(struct kubernetes_res *r, const char *what, int status, const char *why)
{
    struct kubernetes_watch *w = r->w;
    r->state = RS_WAIT;
    r->backoff_ns = r->backoff_ns ? r->backoff_ns * 2 : BACKOFF_MIN_NS;
    if (r->backoff_ns > BACKOFF_MAX_NS)
        r->backoff_ns = BACKOFF_MAX_NS;
    MARS_LOG_RL(MARS_LOG_WARN, w->id, "%s of %s failed (%s%s%d); again in %lld ms", what,
                collection(r), why ? why : "", why ? ", status " : "status ", status,
                (long long)(r->backoff_ns / 1000000));
    mars_ev_prep_timer(&r->timer, r->backoff_ns, on_backoff, r);
    r->timer_armed = mars_ev_submit(w->loop, &r->timer) == 0;
}

/* Starts what comes next: a watch from rv, or a list. */
static void res_next(struct kubernetes_res *r)
{
    if (r->w->stopping)
        return;
    if (submit(r, r->rv[0] != '\0') != 0)
        fail(r, "request", 0, "cannot start");
}

/* ---- objects ---- */

static void set_rv(struct kubernetes_res *r, const struct mars_fbuild *fb, uint32_t obj)
{
    uint32_t m = mars_kubernetes_fb_at(fb, obj, "metadata.resourceVersion");
    if (m != MARS_FIELD_NIL && fb->v[m].kind == MARS_FIELD_STRING &&
        fb->v[m].value_len < sizeof(r->rv) && !(fb->v[m].flags & MARS_FF_ESCAPED)) {
        memcpy(r->rv, fb->v[m].value, fb->v[m].value_len);
        r->rv[fb->v[m].value_len] = '\0';
    }
}

static void put_object(struct kubernetes_res *r, const struct mars_fbuild *fb, uint32_t obj)
{
    if (r->pods) {
        struct kubernetes_pod *p = mars_kubernetes_pod_from_fb(fb, obj, r->gen);
        if (p)
            mars_kubernetes_meta_put_pod(r->w->m, p);
    } else {
        struct kubernetes_ns *n = mars_kubernetes_ns_from_fb(fb, obj, r->gen);
        if (n)
            mars_kubernetes_meta_put_ns(r->w->m, n);
    }
}

static void delete_object(struct kubernetes_res *r, const struct mars_fbuild *fb, uint32_t obj)
{
    uint32_t m = mars_kubernetes_fb_at(fb, obj, r->pods ? "metadata.uid" : "metadata.name");
    char key[256];
    if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_STRING ||
        fb->v[m].value_len >= sizeof(key))
        return;
    memcpy(key, fb->v[m].value, fb->v[m].value_len);
    key[fb->v[m].value_len] = '\0';
    if (r->pods)
        mars_kubernetes_meta_delete_pod(r->w->m, key, mars_ev_now(r->w->loop));
    else
        mars_kubernetes_meta_delete_ns(r->w->m, key);
}

/* ---- list ---- */

static void on_list_done(struct mars_http_req *req, const struct mars_http_resp *resp)
{
    struct kubernetes_res *r = req->data;
    struct kubernetes_watch *w = r->w;
    struct mars_fbuild *fb = &w->fb;
    struct mars_arena scratch;
    r->state = RS_IDLE;
    if (w->stopping)
        return;
    if (resp->error || resp->status != 200 || resp->body_truncated) {
        fail(r, "list", resp->status, resp->error ? resp->error_text : NULL);
        return;
    }
    mars_arena_init(&scratch);
    mars_fbuild_reset(fb, &scratch);
    uint32_t items;
    if (mars_json_parse(resp->body, resp->body_len, 64, fb, 0, NULL) != MARS_JSON_OK ||
        (items = mars_fbuild_find(fb, 0, "items", 5)) == MARS_FIELD_NIL ||
        fb->v[items].kind != MARS_FIELD_ARRAY) {
        mars_arena_fini(&scratch);
        fail(r, "list", resp->status, "not a list");
        return;
    }
    r->rv[0] = '\0';
    set_rv(r, fb, 0);
    r->gen++;
    const char *p = fb->v[items].value, *end = p + fb->v[items].value_len;
    struct mars_fbuild item;
    mars_fbuild_init(&item);
    size_t n = 0;
    for (p += p < end && *p == '['; p < end;) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ','))
            p++;
        size_t len = p < end && *p == '{' ? mars_kubernetes_json_skip(p, (size_t)(end - p)) : 0;
        if (len == 0)
            break;
        mars_fbuild_reset(&item, &scratch);
        if (mars_json_parse(p, len, 64, &item, 0, NULL) == MARS_JSON_OK)
            put_object(r, &item, 0);
        p += len;
        n++;
    }
    mars_fbuild_fini(&item);
    mars_arena_fini(&scratch);
    mars_kubernetes_meta_list_done(w->m, r->pods, r->gen, mars_ev_now(w->loop));
    mars_debug(w->id, "listed %zu %s at resourceVersion %s", n, collection(r), r->rv);
    r->backoff_ns = 0;
    if (!r->rv[0]) {
        fail(r, "list", resp->status, "no resourceVersion");
        return;
    }
    res_next(r);
}

/* ---- watch ---- */

/* One watch event. Returns false when the watch must end (410 Gone). */
static bool watch_event(struct kubernetes_res *r, const char *line, size_t n)
{
    struct kubernetes_watch *w = r->w;
    struct mars_fbuild *fb = &w->fb;
    struct mars_arena scratch;
    bool go_on = true;
    mars_arena_init(&scratch);
    mars_fbuild_reset(fb, &scratch);
    uint32_t type, obj;
    if (mars_json_parse(line, n, 64, fb, 0, NULL) != MARS_JSON_OK ||
        (type = mars_fbuild_find(fb, 0, "type", 4)) == MARS_FIELD_NIL ||
        (obj = mars_fbuild_find(fb, 0, "object", 6)) == MARS_FIELD_NIL ||
        fb->v[obj].kind != MARS_FIELD_OBJECT) {
        MARS_LOG_RL(MARS_LOG_WARN, w->id, "watch of %s: an event that is not one", collection(r));
        mars_arena_fini(&scratch);
        return true;
    }
    const char *t = fb->v[type].value;
    uint32_t tl = fb->v[type].value_len;
#define IS(lit) (tl == sizeof(lit) - 1 && memcmp(t, lit, tl) == 0)
    if (IS("ERROR")) {
        uint32_t code = mars_fbuild_find(fb, obj, "code", 4);
        r->gone = code != MARS_FIELD_NIL && fb->v[code].value_len == 3 &&
                  memcmp(fb->v[code].value, "410", 3) == 0;
        go_on = false; /* any error event ends the stream; 410 re-lists */
    } else {
        if (IS("ADDED") || IS("MODIFIED"))
            put_object(r, fb, obj);
        else if (IS("DELETED"))
            delete_object(r, fb, obj);
        set_rv(r, fb, obj); /* BOOKMARK only moves it */
        r->backoff_ns = 0;
        if (!IS("BOOKMARK")) /* after the cache has it: lines read from now on see it */
            mars_debug(w->id, "watch of %s: %.*s at resourceVersion %s", collection(r), (int)tl, t,
                       r->rv);
    }
#undef IS
    mars_arena_fini(&scratch);
    return go_on;
}

static bool on_watch_data(struct mars_http_req *req, const char *p, size_t n)
{
    struct kubernetes_res *r = req->data;
    if (r->w->stopping)
        return false;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (r->len + take > LINE_MAX || mars_grow(&r->line, &r->cap, r->len + take, 1))
            return false; /* a line beyond reason: the watch restarts */
        memcpy(r->line + r->len, p, take);
        r->len += take;
        if (!nl)
            break;
        bool go_on = r->len == 0 || watch_event(r, r->line, r->len);
        r->len = 0;
        if (!go_on)
            return false;
        p = nl + 1;
        n -= take + 1;
    }
    return true;
}

static void on_watch_done(struct mars_http_req *req, const struct mars_http_resp *resp)
{
    struct kubernetes_res *r = req->data;
    r->state = RS_IDLE;
    if (r->w->stopping)
        return;
    if (r->gone || resp->status == 410) {
        mars_info(r->w->id, "watch of %s: resourceVersion %s is gone (410): listing again",
                  collection(r), r->rv);
        r->rv[0] = '\0';
        res_next(r);
        return;
    }
    if (resp->status == 200 && (resp->error == 0 || resp->error == -ECANCELED)) {
        res_next(r); /* the server ended it (timeoutSeconds): resume from rv */
        return;
    }
    fail(r, "watch", resp->status, resp->error ? resp->error_text : NULL);
}

/* ---- the thread ---- */

static void on_tick(struct mars_ev_op *op, int res)
{
    struct kubernetes_watch *w = op->data;
    w->tick_armed = false;
    if (w->stopping)
        return;
    mars_kubernetes_meta_expire(w->m, mars_ev_now(w->loop));
    mars_ev_prep_timer(&w->tick, TICK_NS, on_tick, w);
    w->tick_armed = mars_ev_submit(w->loop, &w->tick) == 0;
}

static void on_stop(struct mars_ev_async *a)
{
    struct kubernetes_watch *w = a->data;
    if (!atomic_load(&w->stop) || w->stopping)
        return;
    w->stopping = true;
    mars_http_shutdown(w->http);
    if (w->tick_armed)
        mars_ev_cancel(w->loop, &w->tick);
    if (w->pods.timer_armed)
        mars_ev_cancel(w->loop, &w->pods.timer);
    if (w->nss.timer_armed)
        mars_ev_cancel(w->loop, &w->nss.timer);
    mars_ev_stop(w->loop);
}

/* The loop, HTTP client and wakeup are made on this thread: an io_uring ring may only be
 * used by the thread that set it up. */
static int setup(struct kubernetes_watch *w)
{
    char why[256];
    const struct mars_ev_backend *be = mars_ev_backend_select(w->backend, why, sizeof(why));
    if (!be || !(w->loop = mars_ev_loop_create(be)) ||
        !(w->http = mars_http_create(
              w->loop,
              &(struct mars_http_opts){.curl_on_demand = mars_http_url_direct(w->base)})) ||
        mars_ev_async_init(w->loop, &w->async, on_stop, w) != 0) {
        mars_error(w->id, "metadata: cannot set up its event loop or HTTP client");
        return -EIO;
    }
    return 0;
}

static void signal_ready(struct kubernetes_watch *w, int ready)
{
    pthread_mutex_lock(&w->mu);
    w->ready = ready;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *watch_main(void *arg)
{
    struct kubernetes_watch *w = arg;
    if (setup(w)) {
        signal_ready(w, -1);
        return NULL;
    }
    signal_ready(w, 1);
    w->tick.data = w; /* the first tick runs now */
    on_tick(&w->tick, 0);
    res_next(&w->nss);
    res_next(&w->pods);
    mars_ev_run(w->loop);
    mars_ev_async_fini(&w->async);
    while (mars_ev_pending(w->loop) > 0)
        mars_ev_run_once(w->loop, 50000000);
    mars_info(w->id, "metadata: %llu requests to the API server", (unsigned long long)w->requests);
    mars_arena_cache_drain();
    return NULL;
}

/* The API address and node name: options, else the in-cluster environment. */
int mars_kubernetes_target(const struct mars_kubernetes_api_conf *c, const char *id,
                           struct kubernetes_target *t)
{
    const char *node = c->node_name && *c->node_name ? c->node_name : getenv("NODE_NAME");
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!node || !*node || strlen(node) >= sizeof(t->node) || strpbrk(node, "&?#% /")) {
        mars_error(id, "pod watch: node_name is not set and NODE_NAME is empty (set it "
                       "from the downward API: spec.nodeName), or it is not a node name");
        return -EINVAL;
    }
    snprintf(t->node, sizeof(t->node), "%s", node);
    if (c->api_url && *c->api_url)
        snprintf(t->base, sizeof(t->base), "%s", c->api_url);
    else if (host && *host)
        snprintf(t->base, sizeof(t->base), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
                 host, port && *port ? port : "443");
    else {
        mars_error(id, "pod watch: api_url is not set and KUBERNETES_SERVICE_HOST is empty "
                       "(not in a cluster?); set api_url (kubernetes_logs: or metadata: false)");
        return -EINVAL;
    }
    size_t bl = strlen(t->base);
    while (bl && t->base[bl - 1] == '/')
        t->base[--bl] = '\0';
    return 0;
}

static void watch_destroy(struct kubernetes_watch *w)
{
    if (w->http)
        mars_http_destroy(w->http);
    if (w->loop)
        mars_ev_loop_destroy(w->loop);
    mars_fbuild_fini(&w->fb);
    free(w->pods.line);
    free(w->nss.line);
    free(w->token);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

struct kubernetes_watch *mars_kubernetes_watch_start(struct mars_kubernetes_pods *m,
                                                     const struct mars_kubernetes_api_conf *api,
                                                     const struct kubernetes_target *t,
                                                     const char *id, const char *backend)
{
    struct kubernetes_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    snprintf(w->backend, sizeof(w->backend), "%s", backend ? backend : "auto");
    w->m = m;
    w->api = api;
    snprintf(w->id, sizeof(w->id), "%s", id);
    mars_fbuild_init(&w->fb);
    w->pods = (struct kubernetes_res){.w = w, .pods = true};
    w->nss = (struct kubernetes_res){.w = w, .pods = false};
    snprintf(w->base, sizeof(w->base), "%s", t->base);
    snprintf(w->node, sizeof(w->node), "%s", t->node);
    w->tls = (struct mars_http_tls){
        .ca_file = api->ca_file && access(api->ca_file, R_OK) == 0 ? api->ca_file : NULL,
        .verify = api->tls_verify};
    if (pthread_create(&w->th, NULL, watch_main, w) != 0) {
        watch_destroy(w);
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    while (w->ready == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->ready < 0) {
        pthread_join(w->th, NULL);
        watch_destroy(w);
        return NULL;
    }
    mars_info(id, "metadata: watching pods of node %s and namespaces at %s", w->node, w->base);
    return w;
}

void mars_kubernetes_watch_stop(struct kubernetes_watch *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    mars_ev_async_send(&w->async);
    pthread_join(w->th, NULL);
    watch_destroy(w);
}
