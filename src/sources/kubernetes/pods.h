/*
 * pods.h - the shared pod watch: what any component may ask of the Kubernetes API server
 * about the pods of this node, without a watch of its own.
 *
 * One list+watch of this node's pods (fieldSelector=spec.nodeName=<node>) and of
 * namespaces runs per (API server, node) in the engine, on a thread of its own
 * (watch.c), whoever asks first: a kubernetes_logs source, a eureka sink with `pods`, an
 * iptables source. It lives in the engine's shared-object table (mars_shared_acquire),
 * refcounted by its users; the first one's connection options start it, later users with
 * the same API server and node share it whatever their other options say.
 *
 * A user that wants to know when pods change subscribes with its own loop: the watch
 * thread only wakes that loop (an eventfd, mars_ev_async), and the user's callback runs on
 * its own thread, where it takes a copy of the pods (mars_kubernetes_pods_list) and
 * compares it with what it had. Nothing of the watch thread ever touches a user's state.
 *
 * Options: components that start the watch take the connection options below, with the
 * names and descriptions kubernetes_logs has always had: MARS_KUBERNETES_API_OPTIONS puts
 * them in an option table (flat, or in a section of their own).
 *
 * Thread: any, except where a function says otherwise.
 */
#ifndef MARS_SOURCES_KUBERNETES_PODS_H
#define MARS_SOURCES_KUBERNETES_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/schema.h"

struct mars_ev_loop;
struct mars_obs;

/* Where the API server is and which node's pods to watch. */
struct mars_kubernetes_api_conf {
    char *api_url, *node_name, *token_file, *ca_file;
    bool tls_verify;
    int64_t watch_timeout;
};

/* The option table entries of a struct mars_kubernetes_api_conf at `member` of `stype`. */
/* clang-format off */
#define MARS_KUBERNETES_API_OPTIONS(stype, member)                                                 \
    {.name = "api_url",                                                                            \
     .type = MARS_OPT_URL,                                                                         \
     .offset = offsetof(stype, member.api_url),                                                    \
     .desc = "API server address; unset: in-cluster, https://$KUBERNETES_SERVICE_HOST:"            \
             "$KUBERNETES_SERVICE_PORT."},                                                         \
    {.name = "node_name",                                                                          \
     .type = MARS_OPT_STRING,                                                                      \
     .offset = offsetof(stype, member.node_name),                                                  \
     .desc = "This node's name, whose pods are watched; unset: the NODE_NAME environment "         \
             "variable (set it from the downward API)."},                                          \
    {.name = "token_file",                                                                         \
     .type = MARS_OPT_STRING,                                                                      \
     .offset = offsetof(stype, member.token_file),                                                 \
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/token",                                 \
     .desc = "Service account token sent as a bearer token; re-read every minute (bound "          \
             "tokens rotate). A missing file sends none."},                                        \
    {.name = "ca_file",                                                                            \
     .type = MARS_OPT_STRING,                                                                      \
     .offset = offsetof(stype, member.ca_file),                                                    \
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",                                \
     .desc = "CA bundle that signed the API server's certificate (https only)."},                  \
    {.name = "tls_verify",                                                                         \
     .type = MARS_OPT_BOOL,                                                                        \
     .offset = offsetof(stype, member.tls_verify),                                                 \
     .def = "true",                                                                                \
     .desc = "Verify the API server's certificate and name."},                                     \
    {.name = "watch_timeout",                                                                      \
     .type = MARS_OPT_DURATION,                                                                    \
     .offset = offsetof(stype, member.watch_timeout),                                              \
     .def = "5m",                                                                                  \
     .min = 1000000000,                                                                            \
     .max = (int64_t)3600 * 1000000000,                                                            \
     .desc = "A watch is ended and resumed from its resourceVersion after this long."}
/* clang-format on */

struct mars_kubernetes_kv {
    const char *k, *v;
    uint32_t kl, vl;
};

/* One pod of this node, as a user's copy sees it (strings NUL-terminated). */
struct mars_kubernetes_pod {
    const char *ns, *name, *uid, *node;
    const char *phase;      /* status.phase (Pending, Running, ...); NULL when absent */
    const char *const *ips; /* status.podIPs, else status.podIP; nips may be 0 */
    uint32_t nips;
    const struct mars_kubernetes_kv *labels, *annotations;
    uint32_t nlabels, nannotations;
    bool ready;       /* condition Ready is "True" */
    bool terminating; /* metadata.deletionTimestamp is set */
};

/* A copy of the node's live pods (deleted ones are left out). Owned by the caller. */
struct mars_kubernetes_pod_list {
    struct mars_kubernetes_pod *v;
    size_t n;
    bool synced;      /* the watch has listed the pods once: absence means gone */
    uint64_t version; /* grows with every change the watch applied */
    struct mars_arena a;
};

struct mars_kubernetes_pods;
struct mars_kubernetes_pods_sub;

/*
 * The pod watch of the API server and node `api` names, started (with `api`'s options,
 * copied) if this engine has none yet. id names the component in log lines; loop is the
 * caller's (the watch thread uses the same io backend). Returns a reference (release with
 * mars_kubernetes_pods_release), or NULL when the API server or node cannot be worked out
 * or the thread cannot start (logged). Does not wait for the first list.
 */
struct mars_kubernetes_pods *
mars_kubernetes_pods_acquire(struct mars_obs *obs, const char *id,
                             const struct mars_kubernetes_api_conf *api, struct mars_ev_loop *loop);
void mars_kubernetes_pods_release(struct mars_kubernetes_pods *p);

/*
 * Calls changed(arg) on `loop`'s thread (the caller's, which must run it) soon after
 * subscribing and after every change of the pods, at least once per change (changes
 * coalesce). Call from loop's thread. Returns owned (free with
 * mars_kubernetes_pods_unsubscribe, on the same thread, before the loop stops running),
 * or NULL on -ENOMEM or when the loop has no wakeup left.
 */
struct mars_kubernetes_pods_sub *mars_kubernetes_pods_subscribe(struct mars_kubernetes_pods *p,
                                                                struct mars_ev_loop *loop,
                                                                void (*changed)(void *arg),
                                                                void *arg);
void mars_kubernetes_pods_unsubscribe(struct mars_kubernetes_pods_sub *s);

/* Copies the live pods into *out (caller-owned storage; free with
 * mars_kubernetes_pod_list_fini). Returns 0 or -ENOMEM (out is then empty). */
int mars_kubernetes_pods_list(struct mars_kubernetes_pods *p, struct mars_kubernetes_pod_list *out);
void mars_kubernetes_pod_list_fini(struct mars_kubernetes_pod_list *l);

/* Annotation `key` of pod, or NULL. */
const char *mars_kubernetes_pod_annotation(const struct mars_kubernetes_pod *pod, const char *key);

#endif
