/*
 * meta.c - the pod and namespace metadata cache of one kubernetes_logs source.
 *
 * Shared by the source's instances (one per worker): a registry keyed by source id hands
 * out one cache per source, refcounted; the first acquire starts the list+watch thread
 * (watch.c), the last release stops it and frees the cache.
 *
 * Concurrency. The watch thread is the only writer: it builds each record outside the
 * lock (meta_json.c), swaps it in under the lock, and frees the record it replaced after
 * unlocking. Workers look a pod up once per batch of a file: under the lock they copy the
 * few strings their events need into the batch arena, so nothing they keep points into
 * the cache, and the lock is held for a hash lookup and a few copies, never per line.
 *
 * Deleted pods stay (marked with their deletion time) for delete_grace, so lines written
 * just before the deletion and read after it are still enriched; expiry runs from the
 * watch thread's periodic timer.
 *
 * Thread: lookup and count_unknown on any worker; updates on the watch thread; acquire and
 * release on whatever thread creates and destroys source instances.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "core/log.h"
#include "kubernetes_internal.h"

#define BUCKETS     4096u
#define SYNC_WAIT_S 3 /* startup: how long the first instance waits for the first pod list */

struct kubernetes_meta {
    char *id;
    unsigned refs;
    struct kubernetes_meta *next_reg;
    const struct kubernetes_conf *conf;
    pthread_mutex_t lock;
    struct kubernetes_pod *pods[BUCKETS]; /* by uid */
    size_t npods;
    struct kubernetes_ns *nss;
    _Atomic uint64_t unknown;
    bool synced; /* the first pod list is in */
    pthread_cond_t synced_cv;
    struct kubernetes_watch *watch;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kubernetes_meta *registry;

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

static void meta_destroy(struct kubernetes_meta *m)
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
    pthread_cond_destroy(&m->synced_cv);
    free(m->id);
    free(m);
}

/* Files are read as soon as the source starts: give the first pod list a moment, so the
 * lines already on disk are enriched. Bounded (an API server that is down only delays the
 * start by SYNC_WAIT_S; lines then go without metadata until it answers). */
static void wait_synced(struct kubernetes_meta *m)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SYNC_WAIT_S;
    pthread_mutex_lock(&m->lock);
    while (!m->synced)
        if (pthread_cond_timedwait(&m->synced_cv, &m->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&m->lock);
}

struct kubernetes_meta *mars_kubernetes_meta_acquire(const char *id,
                                                     const struct kubernetes_conf *conf,
                                                     const char *backend)
{
    pthread_mutex_lock(&registry_lock);
    struct kubernetes_meta *m = registry;
    while (m && strcmp(m->id, id) != 0)
        m = m->next_reg;
    if (m) {
        m->refs++;
        pthread_mutex_unlock(&registry_lock);
        return m;
    }
    m = calloc(1, sizeof(*m));
    if (!m || !(m->id = strdup(id))) {
        free(m);
        pthread_mutex_unlock(&registry_lock);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->synced_cv, NULL);
    m->conf = conf;
    m->refs = 1;
    if (!(m->watch = mars_kubernetes_watch_start(m, conf, id, backend))) {
        meta_destroy(m);
        pthread_mutex_unlock(&registry_lock);
        return NULL;
    }
    m->next_reg = registry;
    registry = m;
    wait_synced(m);
    pthread_mutex_unlock(&registry_lock);
    return m;
}

void mars_kubernetes_meta_release(struct kubernetes_meta *m)
{
    pthread_mutex_lock(&registry_lock);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (struct kubernetes_meta **pp = &registry; *pp; pp = &(*pp)->next_reg)
        if (*pp == m) {
            *pp = m->next_reg;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    mars_kubernetes_watch_stop(m->watch);
    uint64_t unknown = atomic_load(&m->unknown);
    if (unknown)
        mars_info(m->id, "%llu lines were shipped without metadata (pod not known yet)",
                  (unsigned long long)unknown);
    meta_destroy(m);
}

void mars_kubernetes_meta_count_unknown(struct kubernetes_meta *m, uint64_t n)
{
    atomic_fetch_add_explicit(&m->unknown, n, memory_order_relaxed);
}

/* ---- lookup (workers) ---- */

static const char *dup_a(struct mars_arena *a, const char *s)
{
    return s ? mars_arena_strndup(a, s, strlen(s)) : NULL;
}

static struct kubernetes_kv *dup_kvs(struct mars_arena *a, const struct kubernetes_kv *v,
                                     uint32_t n)
{
    if (n == 0)
        return NULL;
    struct kubernetes_kv *out = mars_arena_alloc(a, n * sizeof(*out));
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

static struct kubernetes_pod *find_pod(struct kubernetes_meta *m, const char *uid)
{
    struct kubernetes_pod *p = m->pods[bucket(uid)];
    while (p && strcmp(p->uid, uid) != 0)
        p = p->next;
    return p;
}

static struct kubernetes_ns *find_ns(struct kubernetes_meta *m, const char *name)
{
    struct kubernetes_ns *n = m->nss;
    while (n && strcmp(n->name, name) != 0)
        n = n->next;
    return n;
}

int mars_kubernetes_meta_lookup(struct kubernetes_meta *m, const char *uid, const char *container,
                                struct mars_arena *a, struct kubernetes_view *out)
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
        const struct kubernetes_kv *kv = &p->annotations[i];
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

void mars_kubernetes_meta_put_pod(struct kubernetes_meta *m, struct kubernetes_pod *p)
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
    pthread_mutex_unlock(&m->lock);
    mars_kubernetes_pod_destroy(old);
}

void mars_kubernetes_meta_delete_pod(struct kubernetes_meta *m, const char *uid, int64_t now)
{
    pthread_mutex_lock(&m->lock);
    struct kubernetes_pod *p = find_pod(m, uid);
    if (p && !p->deleted_ns)
        p->deleted_ns = now ? now : 1;
    pthread_mutex_unlock(&m->lock);
}

void mars_kubernetes_meta_put_ns(struct kubernetes_meta *m, struct kubernetes_ns *n)
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

void mars_kubernetes_meta_delete_ns(struct kubernetes_meta *m, const char *name)
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

void mars_kubernetes_meta_list_done(struct kubernetes_meta *m, bool pods, unsigned gen, int64_t now)
{
    struct kubernetes_ns *gone = NULL;
    pthread_mutex_lock(&m->lock);
    if (pods) {
        for (unsigned i = 0; i < BUCKETS; i++)
            for (struct kubernetes_pod *p = m->pods[i]; p; p = p->next)
                if (p->gen != gen && !p->deleted_ns)
                    p->deleted_ns = now ? now : 1;
        m->synced = true;
        pthread_cond_broadcast(&m->synced_cv);
    } else {
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
}

void mars_kubernetes_meta_expire(struct kubernetes_meta *m, int64_t now)
{
    struct kubernetes_pod *gone = NULL;
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < BUCKETS; i++)
        for (struct kubernetes_pod **pp = &m->pods[i]; *pp;) {
            struct kubernetes_pod *p = *pp;
            if (p->deleted_ns && now - p->deleted_ns >= m->conf->delete_grace) {
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
