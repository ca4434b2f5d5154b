/*
 * meta.c - the pod and namespace cache of one (API server, node): the shared pod watch.
 *
 * One cache per (API server, node) in the engine, in the engine's shared-object table
 * (mars_shared_acquire under "kubernetes-pods:<hash of URL and node>"), refcounted by
 * whoever uses it: kubernetes_logs instances (for metadata), eureka sinks and other
 * components (pods.h). The first acquire starts the list+watch thread (watch.c) with its
 * connection options, the last release stops it and frees the cache.
 *
 * Concurrency. The watch thread is the only writer: it builds each record outside the
 * lock (meta_json.c), swaps it in under the lock, and frees the record it replaced after
 * unlocking. Readers copy what they need under the lock: kubernetes_logs looks a pod up
 * once per batch of a file and copies the few strings its events need into the batch
 * arena; subscribers copy the whole node's live pods (a node runs ~100) when woken. So
 * nothing outside points into the cache, and the lock is held for a lookup and a few
 * copies, never per line. After every change the watch thread bumps `version` and wakes
 * each subscriber's loop (mars_ev_async_send, under subs_lock so no subscriber goes away
 * in between); the subscriber's callback runs on its own thread.
 *
 * Deleted pods stay (marked with their deletion time) for delete_grace, so lines written
 * just before the deletion and read after it are still enriched; expiry runs from the
 * watch thread's periodic timer. Subscribers never see them.
 *
 * Thread: lookups, lists and count_unknown on any thread; updates on the watch thread;
 * acquire and release on whatever thread creates and destroys component instances;
 * subscribe, unsubscribe and the callback on the subscriber's loop thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ev.h"
#include "core/hash.h"
#include "core/log.h"
#include "kubernetes_internal.h"

#define BUCKETS 4096u

struct mars_kubernetes_pods_sub {
    struct mars_kubernetes_pods *m;
    struct mars_ev_async async;
    void (*changed)(void *arg);
    void *arg;
    struct mars_kubernetes_pods_sub *next;
};

struct mars_kubernetes_pods {
    char *id;
    char key[64];
    struct mars_obs *obs;
    struct mars_kubernetes_api_conf api; /* a copy: the starter's options */
    _Atomic int64_t delete_grace;
    pthread_mutex_t lock;
    struct kubernetes_pod *pods[BUCKETS]; /* by uid */
    size_t npods;
    struct kubernetes_ns *nss;
    _Atomic uint64_t unknown;
    bool synced;     /* the first pod list is in */
    bool nss_synced; /* the first namespace list is in */
    uint64_t version;
    pthread_cond_t synced_cv;
    pthread_mutex_t subs_lock;
    struct mars_kubernetes_pods_sub *subs;
    struct kubernetes_watch *watch;
};

void mars_kubernetes_pod_destroy(struct kubernetes_pod *p)
{
    if (p) {
        mars_arena_fini(&p->a);
        free(p);
    }
}

void mars_kubernetes_ns_destroy(struct kubernetes_ns *n)
{
    if (n) {
        mars_arena_fini(&n->a);
        free(n);
    }
}

static unsigned bucket(const char *uid)
{
    return (unsigned)(mars_hash64(uid, strlen(uid)) % BUCKETS);
}

/* ---- life cycle ---- */

static void free_api(struct mars_kubernetes_api_conf *c)
{
    free(c->api_url), free(c->node_name), free(c->token_file), free(c->ca_file);
}

static void meta_destroy(struct mars_kubernetes_pods *m)
{
    for (unsigned i = 0; i < BUCKETS; i++)
        while (m->pods[i]) {
            struct kubernetes_pod *p = m->pods[i];
            m->pods[i] = p->next;
            mars_kubernetes_pod_destroy(p);
        }
    while (m->nss) {
        struct kubernetes_ns *n = m->nss;
        m->nss = n->next;
        mars_kubernetes_ns_destroy(n);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->subs_lock);
    pthread_cond_destroy(&m->synced_cv);
    free_api(&m->api);
    free(m->id);
    free(m);
}

/* Files are read as soon as the source starts: give the first pod and namespace lists a
 * moment, so the lines already on disk are enriched with both (the namespaces come a few
 * milliseconds after the pods). Bounded (an API server that is down, or that refuses the
 * namespaces, only delays the start by secs; lines then go without metadata until it
 * answers). */
void mars_kubernetes_meta_wait_synced(struct mars_kubernetes_pods *m, int secs)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    pthread_mutex_lock(&m->lock);
    while (!m->synced || !m->nss_synced)
        if (pthread_cond_timedwait(&m->synced_cv, &m->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&m->lock);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct create_arg {
    const char *id, *backend, *key;
    struct mars_obs *obs;
    const struct mars_kubernetes_api_conf *api;
    const struct kubernetes_target *t;
};

/* Runs with the engine's shared table locked (mars_shared_acquire). */
static void *meta_create(void *arg)
{
    const struct create_arg *ca = arg;
    struct mars_kubernetes_pods *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->subs_lock, NULL);
    pthread_cond_init(&m->synced_cv, NULL);
    m->id = strdup(ca->id);
    m->obs = ca->obs;
    snprintf(m->key, sizeof(m->key), "%s", ca->key);
    m->api = (struct mars_kubernetes_api_conf){.api_url = dup_or_null(ca->api->api_url),
                                               .node_name = dup_or_null(ca->api->node_name),
                                               .token_file = dup_or_null(ca->api->token_file),
                                               .ca_file = dup_or_null(ca->api->ca_file),
                                               .tls_verify = ca->api->tls_verify,
                                               .watch_timeout = ca->api->watch_timeout};
    if (!m->id || (ca->api->token_file && !m->api.token_file) ||
        (ca->api->ca_file && !m->api.ca_file) ||
        !(m->watch = mars_kubernetes_watch_start(m, &m->api, ca->t, ca->id, ca->backend))) {
        meta_destroy(m);
        return NULL;
    }
    return m;
}

static void meta_stop(void *obj)
{
    struct mars_kubernetes_pods *m = obj;
    mars_kubernetes_watch_stop(m->watch);
    uint64_t unknown = atomic_load(&m->unknown);
    if (unknown)
        mars_info(m->id, "%llu lines were shipped without metadata (pod not known yet)",
                  (unsigned long long)unknown);
    meta_destroy(m);
}

struct mars_kubernetes_pods *
mars_kubernetes_pods_acquire(struct mars_obs *obs, const char *id,
                             const struct mars_kubernetes_api_conf *api, struct mars_ev_loop *loop)
{
    struct kubernetes_target t;
    char key[64];
    if (!obs) {
        mars_error(id, "the pod watch needs an engine to share it in");
        return NULL;
    }
    if (mars_kubernetes_target(api, id, &t) != 0)
        return NULL;
    char both[sizeof(t.base) + sizeof(t.node) + 1];
    int n = snprintf(both, sizeof(both), "%s\n%s", t.base, t.node);
    snprintf(key, sizeof(key), "kubernetes-pods:%016llx",
             (unsigned long long)mars_hash64(both, (size_t)n));
    struct create_arg ca = {.id = id,
                            .key = key,
                            .obs = obs,
                            .backend = loop ? mars_ev_loop_backend_name(loop) : NULL,
                            .api = api,
                            .t = &t};
    struct mars_kubernetes_pods *m = mars_shared_acquire(obs, key, meta_create, &ca);
    if (!m) {
        mars_error(id, "cannot start the pod watch of node %s at %s", t.node, t.base);
        return NULL;
    }
    if (strcmp(m->id, id) != 0)
        mars_debug(id, "using the pod watch of node %s at %s that %s started", t.node, t.base,
                   m->id);
    return m;
}

void mars_kubernetes_pods_release(struct mars_kubernetes_pods *m)
{
    if (m)
        mars_shared_release(m->obs, m->key, meta_stop);
}

void mars_kubernetes_meta_keep_deleted(struct mars_kubernetes_pods *m, int64_t delete_grace)
{
    int64_t cur = atomic_load(&m->delete_grace);
    while (cur < delete_grace &&
           !atomic_compare_exchange_weak(&m->delete_grace, &cur, delete_grace))
        ;
}

/* ---- subscribers ---- */

static void on_async(struct mars_ev_async *a)
{
    struct mars_kubernetes_pods_sub *s = a->data;
    s->changed(s->arg);
}

struct mars_kubernetes_pods_sub *mars_kubernetes_pods_subscribe(struct mars_kubernetes_pods *m,
                                                                struct mars_ev_loop *loop,
                                                                void (*changed)(void *arg),
                                                                void *arg)
{
    struct mars_kubernetes_pods_sub *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->m = m;
    s->changed = changed;
    s->arg = arg;
    if (mars_ev_async_init(loop, &s->async, on_async, s) != 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&m->subs_lock);
    s->next = m->subs;
    m->subs = s;
    mars_ev_async_send(&s->async); /* a first look at what is known */
    pthread_mutex_unlock(&m->subs_lock);
    return s;
}

void mars_kubernetes_pods_unsubscribe(struct mars_kubernetes_pods_sub *s)
{
    if (!s)
        return;
    struct mars_kubernetes_pods *m = s->m;
    pthread_mutex_lock(&m->subs_lock);
    for (struct mars_kubernetes_pods_sub **pp = &m->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&m->subs_lock);
    mars_ev_async_fini(&s->async);
    free(s);
}

/* After a change (watch thread): a new version, and every subscriber's loop woken. */
static void notify(struct mars_kubernetes_pods *m)
{
    pthread_mutex_lock(&m->subs_lock);
    for (struct mars_kubernetes_pods_sub *s = m->subs; s; s = s->next)
        mars_ev_async_send(&s->async);
    pthread_mutex_unlock(&m->subs_lock);
}

void mars_kubernetes_meta_count_unknown(struct mars_kubernetes_pods *m, uint64_t n)
{
    atomic_fetch_add_explicit(&m->unknown, n, memory_order_relaxed);
}

/* ---- lookup (workers) ---- */

static const char *dup_a(struct mars_arena *a, const char *s)
{
    return s ? mars_arena_strndup(a, s, strlen(s)) : NULL;
}

static struct mars_kubernetes_kv *dup_kvs(struct mars_arena *a, const struct mars_kubernetes_kv *v,
                                          uint32_t n)
{
    if (n == 0)
        return NULL;
    struct mars_kubernetes_kv *out = mars_arena_alloc(a, n * sizeof(*out));
    if (!out)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        out[i].k = mars_arena_strndup(a, v[i].k, v[i].kl);
        out[i].v = mars_arena_strndup(a, v[i].v, v[i].vl);
        out[i].kl = v[i].kl;
        out[i].vl = v[i].vl;
        if (!out[i].k || !out[i].v)
            return NULL;
    }
    return out;
}

static struct kubernetes_pod *find_pod(struct mars_kubernetes_pods *m, const char *uid)
{
    struct kubernetes_pod *p = m->pods[bucket(uid)];
    while (p && strcmp(p->uid, uid) != 0)
        p = p->next;
    return p;
}

static struct kubernetes_ns *find_ns(struct mars_kubernetes_pods *m, const char *name)
{
    struct kubernetes_ns *n = m->nss;
    while (n && strcmp(n->name, name) != 0)
        n = n->next;
    return n;
}

int mars_kubernetes_meta_lookup(struct mars_kubernetes_pods *m, const char *uid,
                                const char *container, struct mars_arena *a,
                                struct kubernetes_view *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&m->lock);
    struct kubernetes_pod *p = find_pod(m, uid);
    if (!p) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    out->node = dup_a(a, p->node);
    out->pod_ip = dup_a(a, p->ip);
    out->owner_kind = dup_a(a, p->owner_kind);
    out->owner_name = dup_a(a, p->owner_name);
    out->parser = dup_a(a, p->parser);
    out->exclude = p->exclude;
    /* mars.io/parser-<container> and mars.io/exclude-<container> win over the pod's */
    size_t cl = strlen(container);
    for (uint32_t i = 0; i < p->nannotations; i++) {
        const struct mars_kubernetes_kv *kv = &p->annotations[i];
        bool parser = kv->kl == 15 + cl && strncmp(kv->k, "mars.io/parser-", 15) == 0;
        bool exclude = kv->kl == 16 + cl && strncmp(kv->k, "mars.io/exclude-", 16) == 0;
        if (parser && strcmp(kv->k + 15, container) == 0)
            out->parser = dup_a(a, kv->v);
        else if (exclude && strcmp(kv->k + 16, container) == 0)
            out->exclude = strcmp(kv->v, "true") == 0;
    }
    for (uint32_t i = 0; i < p->nctrs; i++)
        if (strcmp(p->ctrs[i].name, container) == 0)
            out->image = dup_a(a, p->ctrs[i].image);
    bool ok = (out->labels = dup_kvs(a, p->labels, p->nlabels)) || !p->nlabels;
    ok = ((out->annotations = dup_kvs(a, p->annotations, p->nannotations)) || !p->nannotations) &&
         ok;
    out->nlabels = out->labels ? p->nlabels : 0;
    out->nannotations = out->annotations ? p->nannotations : 0;
    struct kubernetes_ns *n = find_ns(m, p->ns);
    if (n) {
        ok = ((out->ns_labels = dup_kvs(a, n->labels, n->nlabels)) || !n->nlabels) && ok;
        out->nns_labels = out->ns_labels ? n->nlabels : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return ok ? 1 : -ENOMEM;
}

/* ---- updates (watch thread) ---- */

void mars_kubernetes_meta_put_pod(struct mars_kubernetes_pods *m, struct kubernetes_pod *p)
{
    struct kubernetes_pod *old = NULL;
    pthread_mutex_lock(&m->lock);
    struct kubernetes_pod **pp = &m->pods[bucket(p->uid)];
    while (*pp && strcmp((*pp)->uid, p->uid) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        old = *pp;
        p->next = old->next;
    } else {
        p->next = NULL;
        m->npods++;
    }
    *pp = p;
    m->version++;
    pthread_mutex_unlock(&m->lock);
    mars_kubernetes_pod_destroy(old);
    notify(m);
}

void mars_kubernetes_meta_delete_pod(struct mars_kubernetes_pods *m, const char *uid, int64_t now)
{
    pthread_mutex_lock(&m->lock);
    struct kubernetes_pod *p = find_pod(m, uid);
    bool changed = p && !p->deleted_ns;
    if (changed) {
        p->deleted_ns = now ? now : 1;
        m->version++;
    }
    pthread_mutex_unlock(&m->lock);
    if (changed)
        notify(m);
}

void mars_kubernetes_meta_put_ns(struct mars_kubernetes_pods *m, struct kubernetes_ns *n)
{
    struct kubernetes_ns *old = NULL;
    pthread_mutex_lock(&m->lock);
    struct kubernetes_ns **pp = &m->nss;
    while (*pp && strcmp((*pp)->name, n->name) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        old = *pp;
        n->next = old->next;
    } else {
        n->next = NULL;
    }
    *pp = n;
    pthread_mutex_unlock(&m->lock);
    mars_kubernetes_ns_destroy(old);
}

void mars_kubernetes_meta_delete_ns(struct mars_kubernetes_pods *m, const char *name)
{
    struct kubernetes_ns *old = NULL;
    pthread_mutex_lock(&m->lock);
    for (struct kubernetes_ns **pp = &m->nss; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            old = *pp;
            *pp = old->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    mars_kubernetes_ns_destroy(old);
}

void mars_kubernetes_meta_list_done(struct mars_kubernetes_pods *m, bool pods, unsigned gen,
                                    int64_t now)
{
    struct kubernetes_ns *gone = NULL;
    pthread_mutex_lock(&m->lock);
    if (pods) {
        for (unsigned i = 0; i < BUCKETS; i++)
            for (struct kubernetes_pod *p = m->pods[i]; p; p = p->next)
                if (p->gen != gen && !p->deleted_ns)
                    p->deleted_ns = now ? now : 1;
        m->synced = true;
        m->version++;
        pthread_cond_broadcast(&m->synced_cv);
    } else {
        m->nss_synced = true;
        pthread_cond_broadcast(&m->synced_cv);
        for (struct kubernetes_ns **pp = &m->nss; *pp;) {
            struct kubernetes_ns *n = *pp;
            if (n->gen != gen) {
                *pp = n->next;
                n->next = gone;
                gone = n;
            } else {
                pp = &n->next;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    while (gone) {
        struct kubernetes_ns *n = gone;
        gone = n->next;
        mars_kubernetes_ns_destroy(n);
    }
    if (pods)
        notify(m);
}

void mars_kubernetes_meta_expire(struct mars_kubernetes_pods *m, int64_t now)
{
    struct kubernetes_pod *gone = NULL;
    int64_t grace = atomic_load(&m->delete_grace);
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < BUCKETS; i++)
        for (struct kubernetes_pod **pp = &m->pods[i]; *pp;) {
            struct kubernetes_pod *p = *pp;
            if (p->deleted_ns && now - p->deleted_ns >= grace) {
                *pp = p->next;
                p->next = gone;
                gone = p;
                m->npods--;
            } else {
                pp = &p->next;
            }
        }
    pthread_mutex_unlock(&m->lock);
    while (gone) {
        struct kubernetes_pod *p = gone;
        gone = p->next;
        mars_kubernetes_pod_destroy(p);
    }
}

/* ---- copies for subscribers ---- */

static bool copy_pod(struct mars_arena *a, const struct kubernetes_pod *p,
                     struct mars_kubernetes_pod *out)
{
    *out = (struct mars_kubernetes_pod){.ns = dup_a(a, p->ns),
                                        .name = dup_a(a, p->name),
                                        .uid = dup_a(a, p->uid),
                                        .node = dup_a(a, p->node),
                                        .phase = dup_a(a, p->phase),
                                        .ready = p->ready,
                                        .terminating = p->terminating};
    bool ok =
        out->ns && out->name && out->uid && (out->node || !p->node) && (out->phase || !p->phase);
    if (p->nips) {
        const char **ips = mars_arena_alloc(a, p->nips * sizeof(*ips));
        ok = ok && ips;
        for (uint32_t i = 0; ok && i < p->nips; i++)
            ok = (ips[i] = dup_a(a, p->ips[i])) != NULL;
        out->ips = ips;
        out->nips = ok ? p->nips : 0;
    }
    ok = ok && ((out->labels = dup_kvs(a, p->labels, p->nlabels)) || !p->nlabels);
    ok = ok &&
         ((out->annotations = dup_kvs(a, p->annotations, p->nannotations)) || !p->nannotations);
    out->nlabels = out->labels ? p->nlabels : 0;
    out->nannotations = out->annotations ? p->nannotations : 0;
    return ok;
}

int mars_kubernetes_pods_list(struct mars_kubernetes_pods *m, struct mars_kubernetes_pod_list *out)
{
    memset(out, 0, sizeof(*out));
    mars_arena_init(&out->a);
    bool ok = true;
    pthread_mutex_lock(&m->lock);
    out->synced = m->synced;
    out->version = m->version;
    out->v = m->npods ? mars_arena_alloc(&out->a, m->npods * sizeof(*out->v)) : NULL;
    ok = out->v || !m->npods;
    for (unsigned i = 0; ok && i < BUCKETS; i++)
        for (struct kubernetes_pod *p = m->pods[i]; ok && p; p = p->next)
            if (!p->deleted_ns)
                ok = copy_pod(&out->a, p, &out->v[out->n++]);
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        mars_kubernetes_pod_list_fini(out);
        return -ENOMEM;
    }
    return 0;
}

void mars_kubernetes_pod_list_fini(struct mars_kubernetes_pod_list *l)
{
    mars_arena_fini(&l->a);
    l->v = NULL;
    l->n = 0;
}

const char *mars_kubernetes_pod_annotation(const struct mars_kubernetes_pod *pod, const char *key)
{
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < pod->nannotations; i++)
        if (pod->annotations[i].kl == kl && memcmp(pod->annotations[i].k, key, kl) == 0)
            return pod->annotations[i].v;
    return NULL;
}
