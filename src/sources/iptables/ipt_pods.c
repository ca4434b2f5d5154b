/*
 * ipt_pods.c - `pods: true` of the iptables source (ipt_pods.h): the pods of this node as
 * accounting rules.
 *
 * On every change the watch reports, the worker takes a copy of the pods, builds the rules
 * of every pod IP and, when they differ from the last ones it handed over, hands them to
 * the source (which adds the configured rules and posts the whole set to its dump thread:
 * the kernel changes by the difference). It keeps uid -> namespace/name of the pods it saw,
 * for the labels of rules named by uid.
 *
 * Thread: the source's worker.
 */
#include "sources/iptables/ipt_pods.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* Most pods taken; beyond it pods go without rules (logged). A node runs ~110. */
#define IPT_PODS_MAX 4096

struct pod_name {
    char uid[64], ns[64], name[256];
};

struct ipt_pods {
    struct mars_source *src;
    struct mars_kubernetes_pods *watch;
    struct mars_kubernetes_pods_sub *sub;
    ipt_pods_fn fn;
    void *arg;
    uint64_t version;
    bool synced, posted;
    struct ipt_ruleset last; /* what was handed over last */
    struct pod_name *names;
    size_t nnames;
};

static bool same_rules(const struct ipt_ruleset *a, const struct ipt_ruleset *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* The two rules of one pod IP. Returns 0, 1 when ip is not an address, or -ENOMEM. */
static int add_ip(struct ipt_ruleset *s, const struct mars_kubernetes_pod *pod, const char *ip)
{
    struct ipt_krule k;
    memset(&k, 0, sizeof(k));
    bool v6 = strchr(ip, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, k.dst) != 1)
        return 1;
    char base[IPT_NAME_MAX + 1 - 4]; /* room for ":out" */
    int n = snprintf(base, sizeof(base), "pod:%s/%s", pod->ns, pod->name);
    if (n < 0 || (size_t)n >= sizeof(base))
        snprintf(base, sizeof(base), "pod:%.60s", pod->uid);
    k.dir = IPT_DIR_FORWARD;
    k.action = IPT_ACT_COUNT;
    k.family = v6 ? 6 : 4;
    k.proto = -1;
    k.src_len = -1;
    k.dst_len = v6 ? 128 : 32;
    snprintf(k.name, sizeof(k.name), "%s:in", base);
    int rc = mars_iptables_ruleset_add(s, &k);
    memcpy(k.src, k.dst, sizeof(k.src));
    memset(k.dst, 0, sizeof(k.dst));
    k.src_len = k.dst_len;
    k.dst_len = -1;
    snprintf(k.name, sizeof(k.name), "%s:out", base);
    return rc ? rc : mars_iptables_ruleset_add(s, &k);
}

static void keep_names(struct ipt_pods *p, const struct mars_kubernetes_pod_list *l, size_t n)
{
    struct pod_name *v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v)
        return; /* keep the old names: labels of new uid-named pods stay empty */
    for (size_t i = 0; i < n; i++) {
        snprintf(v[i].uid, sizeof(v[i].uid), "%s", l->v[i].uid ? l->v[i].uid : "");
        snprintf(v[i].ns, sizeof(v[i].ns), "%s", l->v[i].ns ? l->v[i].ns : "");
        snprintf(v[i].name, sizeof(v[i].name), "%s", l->v[i].name ? l->v[i].name : "");
    }
    free(p->names);
    p->names = v;
    p->nnames = n;
}

static void on_changed(void *arg)
{
    struct ipt_pods *p = arg;
    const char *id = mars_source_id(p->src);
    struct mars_kubernetes_pod_list l;
    if (mars_kubernetes_pods_list(p->watch, &l) != 0) {
        MARS_LOG_RL(MARS_LOG_ERROR, id, "pods: out of memory");
        return;
    }
    if (!l.synced || (l.version == p->version && p->posted)) {
        mars_kubernetes_pod_list_fini(&l);
        return; /* before the first list, absence proves nothing: keep what the kernel has */
    }
    p->version = l.version;
    size_t n = l.n < IPT_PODS_MAX ? l.n : IPT_PODS_MAX;
    if (l.n > n)
        MARS_LOG_RL(MARS_LOG_WARN, id, "pods: %zu pods on this node, rules for the first %d", l.n,
                    IPT_PODS_MAX);
    struct ipt_ruleset *set = calloc(1, sizeof(*set));
    int rc = set ? 0 : -ENOMEM;
    for (size_t i = 0; rc >= 0 && i < n; i++)
        for (uint32_t j = 0; rc >= 0 && j < l.v[i].nips; j++)
            if ((rc = add_ip(set, &l.v[i], l.v[i].ips[j])) > 0) {
                MARS_LOG_RL(MARS_LOG_WARN, id, "pods: pod %s/%s has IP '%s', not an address",
                            l.v[i].ns, l.v[i].name, l.v[i].ips[j]);
                rc = 0;
            }
    if (rc < 0) {
        MARS_LOG_RL(MARS_LOG_ERROR, id, "pods: out of memory building the pod rules");
        if (set)
            mars_iptables_ruleset_fini(set);
        free(set);
        mars_kubernetes_pod_list_fini(&l);
        return;
    }
    keep_names(p, &l, n);
    mars_kubernetes_pod_list_fini(&l);
    if (p->posted && same_rules(set, &p->last)) {
        mars_iptables_ruleset_fini(set);
        free(set);
        return;
    }
    mars_iptables_ruleset_fini(&p->last);
    p->last = (struct ipt_ruleset){0};
    for (size_t i = 0; i < set->n; i++)
        if (mars_iptables_ruleset_add(&p->last, &set->v[i]))
            break; /* only costs a needless post next time */
    if (!p->posted)
        mars_info(id, "pods: %zu pod rules for this node's pods", set->n);
    p->posted = true;
    p->fn(p->arg, set);
}

struct ipt_pods *mars_iptables_pods_start(struct mars_source *src,
                                          const struct mars_kubernetes_api_conf *api,
                                          ipt_pods_fn fn, void *arg)
{
    struct ipt_pods *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->src = src;
    p->fn = fn;
    p->arg = arg;
    p->watch = mars_kubernetes_pods_acquire(mars_source_obs(src), mars_source_id(src), api,
                                            mars_source_loop(src));
    if (p->watch)
        p->sub = mars_kubernetes_pods_subscribe(p->watch, mars_source_loop(src), on_changed, p);
    if (!p->sub) {
        mars_iptables_pods_stop(p);
        return NULL;
    }
    return p;
}

void mars_iptables_pods_stop(struct ipt_pods *p)
{
    if (!p)
        return;
    mars_kubernetes_pods_unsubscribe(p->sub);
    mars_kubernetes_pods_release(p->watch);
    mars_iptables_ruleset_fini(&p->last);
    free(p->names);
    free(p);
}

bool mars_iptables_pod_labels(const struct ipt_pods *p, const char *comment, char *ns,
                              size_t ns_len, char *pod, size_t pod_len)
{
    if (strncmp(comment, "pod:", 4) != 0)
        return false;
    const char *s = comment + 4, *end = strrchr(s, ':');
    if (!end || (strcmp(end, ":in") != 0 && strcmp(end, ":out") != 0))
        return false;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    ns[0] = pod[0] = '\0';
    if (slash) {
        snprintf(ns, ns_len, "%.*s", (int)(slash - s), s);
        snprintf(pod, pod_len, "%.*s", (int)(end - slash - 1), slash + 1);
        return true;
    }
    for (size_t i = 0; p && i < p->nnames; i++)
        if (strlen(p->names[i].uid) == (size_t)(end - s) &&
            memcmp(p->names[i].uid, s, (size_t)(end - s)) == 0) {
            snprintf(ns, ns_len, "%s", p->names[i].ns);
            snprintf(pod, pod_len, "%s", p->names[i].name);
            break;
        }
    return true;
}
