/*
 * meta_json.c - Kubernetes API objects into metadata cache records.
 *
 * The watch thread parses each object with mars's JSON scanner into a field builder
 * (objects become entries, arrays stay raw text); this file walks the builder for the
 * members the events need and copies them, unescaped, into the record's own arena:
 *   Pod        metadata.{uid,namespace,name,labels,annotations,ownerReferences,
 *              deletionTimestamp}, spec.{nodeName,containers,initContainers},
 *              status.{podIP,podIPs,phase,conditions[type=Ready]}
 *   Namespace  metadata.{name,labels}
 * The owner is the controller reference (else the first); a ReplicaSet whose name is its
 * Deployment's name plus a pod-template hash is reported as that Deployment.
 *
 * Thread: the watch thread.
 */
#include <stdlib.h>
#include <string.h>

#include "kubernetes_internal.h"
#include "component.h"

uint32_t mars_kubernetes_fb_at(const struct mars_fbuild *fb, uint32_t obj, const char *path)
{
    while (obj != MARS_FIELD_NIL && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (fb->v[obj].kind != MARS_FIELD_OBJECT)
            return MARS_FIELD_NIL;
        obj = mars_fbuild_find(fb, obj, path, (uint32_t)len);
        path += len + (dot != NULL);
    }
    return obj;
}

size_t mars_kubernetes_json_skip(const char *p, size_t n)
{
    size_t i = 0;
    int depth = 0;
    bool in_str = false;
    for (; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
                if (depth == 0)
                    return i + 1;
            }
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t'))
            return i;
    }
    return depth == 0 && !in_str ? i : 0;
}

/* A string value (decoded) in arena a, or NULL. */
static const char *text(struct mars_arena *a, const char *v, uint32_t n, bool escaped,
                        uint32_t *len)
{
    char *out = mars_arena_alloc(a, n + 1);
    if (!out)
        return NULL;
    size_t l = escaped ? mars_json_unescape(v, n, out) : (memcpy(out, v, n), n);
    out[l] = '\0';
    if (len)
        *len = (uint32_t)l;
    return out;
}

static const char *str_at(struct mars_arena *a, const struct mars_fbuild *fb, uint32_t obj,
                          const char *path)
{
    uint32_t m = mars_kubernetes_fb_at(fb, obj, path);
    if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_STRING)
        return NULL;
    return text(a, fb->v[m].value, fb->v[m].value_len, fb->v[m].flags & MARS_FF_ESCAPED, NULL);
}

/* The string members of object `path` as key/value pairs. */
static struct mars_kubernetes_kv *kvs_at(struct mars_arena *a, const struct mars_fbuild *fb,
                                         uint32_t obj, const char *path, uint32_t *n)
{
    uint32_t o = mars_kubernetes_fb_at(fb, obj, path), count = 0;
    *n = 0;
    if (o == MARS_FIELD_NIL || fb->v[o].kind != MARS_FIELD_OBJECT)
        return NULL;
    for (uint32_t m = fb->v[o].first; m != MARS_FIELD_NIL; m = fb->v[m].next)
        count += fb->v[m].kind == MARS_FIELD_STRING;
    struct mars_kubernetes_kv *kv = count ? mars_arena_alloc(a, count * sizeof(*kv)) : NULL;
    if (!kv)
        return NULL;
    for (uint32_t m = fb->v[o].first; m != MARS_FIELD_NIL; m = fb->v[m].next) {
        const struct mars_field *f = &fb->v[m];
        if (f->kind != MARS_FIELD_STRING)
            continue;
        struct mars_kubernetes_kv *x = &kv[*n];
        x->k = text(a, f->key, f->key_len, false, &x->kl);
        x->v = text(a, f->value, f->value_len, f->flags & MARS_FF_ESCAPED, &x->vl);
        if (!x->k || !x->v)
            return NULL;
        (*n)++;
    }
    return kv;
}

static const char *value_str(struct mars_arena *a, const char *raw, size_t n, const char *key)
{
    struct mars_value v;
    if (!mars_json_object_get(raw, n, key, (uint32_t)strlen(key), &v) ||
        v.kind != MARS_FIELD_STRING)
        return NULL;
    return text(a, v.ptr, v.len, v.flags & MARS_FF_ESCAPED, NULL);
}

/* Calls fn on each element (raw text) of the raw array at path. */
static void each_raw(const struct mars_fbuild *fb, uint32_t obj, const char *path,
                     void (*fn)(void *ctx, const char *p, size_t n), void *ctx)
{
    uint32_t m = mars_kubernetes_fb_at(fb, obj, path);
    if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_ARRAY)
        return;
    const char *p = fb->v[m].value, *end = p + fb->v[m].value_len;
    if (p < end && *p == '[')
        p++;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ','))
            p++;
        if (p >= end || *p == ']')
            return;
        size_t len = mars_kubernetes_json_skip(p, (size_t)(end - p));
        if (len == 0)
            return;
        fn(ctx, p, len);
        p += len;
    }
}

struct pod_build {
    struct kubernetes_pod *pod;
    uint32_t cap, ips_cap;
    bool controller_found;
};

static void add_ip(void *ctx, const char *p, size_t n)
{
    struct pod_build *pb = ctx;
    struct kubernetes_pod *pod = pb->pod;
    const char *ip = value_str(&pod->a, p, n, "ip");
    if (!ip)
        return;
    if (pod->nips == pb->ips_cap) {
        uint32_t cap = pb->ips_cap ? pb->ips_cap * 2 : 2;
        const char **v = mars_arena_alloc(&pod->a, cap * sizeof(*v));
        if (!v)
            return;
        if (pod->nips)
            memcpy(v, pod->ips, pod->nips * sizeof(*v));
        pod->ips = v;
        pb->ips_cap = cap;
    }
    pod->ips[pod->nips++] = ip;
}

static void add_condition(void *ctx, const char *p, size_t n)
{
    struct pod_build *pb = ctx;
    struct mars_value t, st;
    if (mars_json_object_get(p, n, "type", 4, &t) && t.kind == MARS_FIELD_STRING && t.len == 5 &&
        memcmp(t.ptr, "Ready", 5) == 0 && mars_json_object_get(p, n, "status", 6, &st) &&
        st.kind == MARS_FIELD_STRING)
        pb->pod->ready = st.len == 4 && memcmp(st.ptr, "True", 4) == 0;
}

static void add_container(void *ctx, const char *p, size_t n)
{
    struct pod_build *pb = ctx;
    struct kubernetes_pod *pod = pb->pod;
    if (pod->nctrs == pb->cap) {
        uint32_t cap = pb->cap ? pb->cap * 2 : 4;
        struct kubernetes_ctr *c = mars_arena_alloc(&pod->a, cap * sizeof(*c));
        if (!c)
            return;
        if (pod->nctrs)
            memcpy(c, pod->ctrs, pod->nctrs * sizeof(*c));
        pod->ctrs = c;
        pb->cap = cap;
    }
    struct kubernetes_ctr *c = &pod->ctrs[pod->nctrs];
    c->name = value_str(&pod->a, p, n, "name");
    c->image = value_str(&pod->a, p, n, "image");
    if (c->name)
        pod->nctrs++;
}

static void add_owner(void *ctx, const char *p, size_t n)
{
    struct pod_build *pb = ctx;
    struct kubernetes_pod *pod = pb->pod;
    struct mars_value v;
    bool controller =
        mars_json_object_get(p, n, "controller", 10, &v) && v.kind == MARS_FIELD_BOOL && v.len == 4;
    if (pb->controller_found || (pod->owner_kind && !controller))
        return;
    pod->owner_kind = value_str(&pod->a, p, n, "kind");
    pod->owner_name = value_str(&pod->a, p, n, "name");
    pb->controller_found = controller;
}

/* ReplicaSet `<deployment>-<pod-template-hash>`: the Deployment is what people know. */
static void owner_to_deployment(struct kubernetes_pod *pod)
{
    if (!pod->owner_kind || !pod->owner_name || strcmp(pod->owner_kind, "ReplicaSet") != 0)
        return;
    char *dash = strrchr(pod->owner_name, '-');
    if (!dash || dash == pod->owner_name || strlen(dash + 1) < 5)
        return;
    for (const char *c = dash + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            return;
    *dash = '\0'; /* owner_name is the record's own copy */
    pod->owner_kind = "Deployment";
}

struct kubernetes_pod *mars_kubernetes_pod_from_fb(const struct mars_fbuild *fb, uint32_t obj,
                                                   unsigned gen)
{
    struct kubernetes_pod *pod = calloc(1, sizeof(*pod));
    if (!pod)
        return NULL;
    mars_arena_init(&pod->a);
    struct mars_arena *a = &pod->a;
    pod->gen = gen;
    pod->uid = str_at(a, fb, obj, "metadata.uid");
    pod->ns = str_at(a, fb, obj, "metadata.namespace");
    pod->name = str_at(a, fb, obj, "metadata.name");
    if (!pod->uid || !pod->ns || !pod->name) {
        mars_kubernetes_pod_destroy(pod);
        return NULL;
    }
    pod->node = str_at(a, fb, obj, "spec.nodeName");
    pod->ip = str_at(a, fb, obj, "status.podIP");
    pod->phase = str_at(a, fb, obj, "status.phase");
    uint32_t del = mars_kubernetes_fb_at(fb, obj, "metadata.deletionTimestamp");
    pod->terminating = del != MARS_FIELD_NIL && fb->v[del].kind == MARS_FIELD_STRING;
    pod->labels = kvs_at(a, fb, obj, "metadata.labels", &pod->nlabels);
    pod->annotations = kvs_at(a, fb, obj, "metadata.annotations", &pod->nannotations);
    for (uint32_t i = 0; i < pod->nannotations; i++) {
        const struct mars_kubernetes_kv *kv = &pod->annotations[i];
        if (strcmp(kv->k, "mars.io/exclude") == 0)
            pod->exclude = strcmp(kv->v, "true") == 0;
        else if (strcmp(kv->k, "mars.io/parser") == 0)
            pod->parser = kv->v;
    }
    struct pod_build pb = {.pod = pod};
    each_raw(fb, obj, "spec.containers", add_container, &pb);
    each_raw(fb, obj, "spec.initContainers", add_container, &pb);
    each_raw(fb, obj, "metadata.ownerReferences", add_owner, &pb);
    each_raw(fb, obj, "status.conditions", add_condition, &pb);
    each_raw(fb, obj, "status.podIPs", add_ip, &pb);
    if (pod->nips == 0 && pod->ip) { /* servers before 1.16 send podIP only */
        pod->ips = mars_arena_alloc(a, sizeof(*pod->ips));
        if (pod->ips)
            pod->ips[pod->nips++] = pod->ip;
    }
    owner_to_deployment(pod);
    return pod;
}

struct kubernetes_ns *mars_kubernetes_ns_from_fb(const struct mars_fbuild *fb, uint32_t obj,
                                                 unsigned gen)
{
    struct kubernetes_ns *ns = calloc(1, sizeof(*ns));
    if (!ns)
        return NULL;
    mars_arena_init(&ns->a);
    ns->gen = gen;
    ns->name = str_at(&ns->a, fb, obj, "metadata.name");
    if (!ns->name) {
        mars_kubernetes_ns_destroy(ns);
        return NULL;
    }
    ns->labels = kvs_at(&ns->a, fb, obj, "metadata.labels", &ns->nlabels);
    return ns;
}
