/*
 * eureka_pods.c - the eureka sink's `pods`: every pod of this node annotated
 * eureka.mars.io/app is an instance, at its pod IP, for as long as the pod lives.
 *
 * Source: the engine's shared pod watch (sources/kubernetes/pods.h), the one
 * kubernetes_logs uses, started with the `pods` section's connection options if nobody
 * runs it yet. The owner instance subscribes with its own loop; on each wakeup it takes a
 * copy of the node's pods and reconciles its pod instances with it: a new annotated pod
 * is added, a changed one updated (registered again when what is sent changed), and once
 * the watch has listed the pods, an instance whose pod is gone is deregistered (DELETE)
 * at once, not left to lease expiry.
 *
 * Annotations (docs/kubernetes.md):
 *   eureka.mars.io/app                 application name (required)
 *   eureka.mars.io/port                plain port (this or secure-port)
 *   eureka.mars.io/secure-port         TLS port
 *   eureka.mars.io/instance-id         default <pod ip>:<app>:<port>
 *   eureka.mars.io/vip, /secure-vip    default the app in lower case
 *   eureka.mars.io/health-check        a health_check check wired to the sink
 *   eureka.mars.io/home-page-url, /status-page-url, /health-check-url
 *   eureka.mars.io/metadata.<key>      one metadata entry each
 * hostName is the pod IP (pod names do not resolve).
 *
 * Status: a terminating pod (deletion timestamp) is OUT_OF_SERVICE at once, a Pending one
 * STARTING, another one not Ready DOWN; a Ready one follows its health check if it names
 * one, else it is UP.
 *
 * Thread: the owner instance's worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sinks/eureka_internal.h"

#define ANN      "eureka.mars.io/"
#define ANN_META ANN "metadata."

static const char *ann(const struct mars_kubernetes_pod *p, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), ANN "%s", name);
    const char *v = mars_kubernetes_pod_annotation(p, key);
    return v && *v ? v : NULL;
}

/* A port annotation: 0 when absent, -1 when not a port. */
static long port_ann(const struct mars_kubernetes_pod *p, const char *name)
{
    const char *v = ann(p, name);
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 1 || n > 65535 ? -1 : n;
}

static int add_metadata(const struct mars_kubernetes_pod *p, struct eu_desc *d)
{
    size_t plen = strlen(ANN_META), n = 0;
    for (uint32_t i = 0; i < p->nannotations; i++)
        n += p->annotations[i].kl > plen && strncmp(p->annotations[i].k, ANN_META, plen) == 0;
    if (n == 0)
        return 0;
    d->mkeys = calloc(n, sizeof(char *));
    d->mvals = calloc(n, sizeof(char *));
    if (!d->mkeys || !d->mvals)
        return -ENOMEM;
    for (uint32_t i = 0; i < p->nannotations; i++) {
        const struct mars_kubernetes_kv *kv = &p->annotations[i];
        if (kv->kl <= plen || strncmp(kv->k, ANN_META, plen) != 0)
            continue;
        d->mkeys[d->nmeta] = strdup(kv->k + plen);
        d->mvals[d->nmeta] = strdup(kv->v);
        d->nmeta++;
        if (!d->mkeys[d->nmeta - 1] || !d->mvals[d->nmeta - 1])
            return -ENOMEM;
    }
    return 0;
}

/* The instance of pod p: 0 (d filled), 1 (not one: no app annotation or no IP yet, or
 * annotations that do not make one, logged) or -ENOMEM. */
static int pod_desc(struct eu_sink *es, const struct mars_kubernetes_pod *p, struct eu_desc *d)
{
    const char *app = ann(p, "app");
    memset(d, 0, sizeof(*d));
    if (!app || p->nips == 0)
        return 1;
    long port = port_ann(p, "port"), sport = port_ann(p, "secure-port");
    if (port < 0 || sport < 0 || (port == 0 && sport == 0)) {
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(es->sink),
                    "pod %s/%s: %s needs %sport or %ssecure-port set to a port (1-65535): not "
                    "registered",
                    p->ns, p->name, ANN "app", ANN, ANN);
        return 1;
    }
    const char *ip = p->ips[0], *scheme = port ? "http" : "https";
    long main_port = port ? port : sport;
    const char *v;
    d->app = mars_eureka_strdup_case(app, true);
    d->ip = strdup(ip);
    d->host = strdup(ip);
    d->port = port;
    d->secure_port = sport;
    d->id = (v = ann(p, "instance-id"))
                ? strdup(v)
                : mars_eureka_strdup_printf("%s:%s:%ld", ip, app, main_port);
    d->home = (v = ann(p, "home-page-url"))
                  ? strdup(v)
                  : mars_eureka_strdup_printf("%s://%s:%ld/", scheme, ip, main_port);
    d->status_url =
        (v = ann(p, "status-page-url"))
            ? strdup(v)
            : mars_eureka_strdup_printf("%s://%s:%ld/actuator/info", scheme, ip, main_port);
    const char *hc = ann(p, "health-check");
    if ((v = ann(p, "health-check-url")))
        d->health_url = strdup(v);
    else if (hc && es->conf->admin_url)
        d->health_url = mars_eureka_strdup_printf("%s/health/%s", es->conf->admin_url, hc);
    else
        d->health_url =
            mars_eureka_strdup_printf("%s://%s:%ld/actuator/health", scheme, ip, main_port);
    d->vip = (v = ann(p, "vip")) ? strdup(v) : mars_eureka_strdup_case(app, false);
    d->svip = strdup((v = ann(p, "secure-vip")) ? v : d->vip ? d->vip : "");
    d->health_check = hc ? strdup(hc) : NULL;
    bool ok = d->app && d->ip && d->host && d->id && d->home && d->status_url && d->health_url &&
              d->vip && d->svip && (d->health_check || !hc) && add_metadata(p, d) == 0;
    if (!ok) {
        mars_eureka_desc_fini(d);
        return -ENOMEM;
    }
    return 0;
}

int mars_eureka_pod_status(const struct eu_inst *in)
{
    if (in->pod_terminating)
        return EU_OUT_OF_SERVICE;
    if (!in->pod_ready)
        return in->pod_pending ? EU_STARTING : EU_DOWN;
    return -1;
}

static void set_pod_state(struct eu_inst *in, const struct mars_kubernetes_pod *p)
{
    in->pod_ready = p->ready;
    in->pod_terminating = p->terminating;
    in->pod_pending = p->phase && strcmp(p->phase, "Pending") == 0;
    in->seen = true;
}

static void claim(struct eu_sink *es, const struct mars_kubernetes_pod *p, struct eu_desc *d)
{
    struct eu_inst *in = mars_eureka_inst_find(es, d->app, d->id);
    if (in && in->origin == EU_STATIC) {
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(es->sink),
                    "pod %s/%s would register %s/%s, which `instances` has: not registered", p->ns,
                    p->name, d->app, d->id);
        mars_eureka_desc_fini(d);
        return;
    }
    if (in && in->seen) { /* two pods, one instance id: the first keeps it */
        mars_eureka_desc_fini(d);
        return;
    }
    if (in) {
        bool adopted = in->origin == EU_ADOPTED;
        in->origin = EU_POD;
        if (in->removing && !in->busy) /* it came back before its DELETE went out */
            in->removing = false;
        mars_eureka_inst_update(in, d);
        set_pod_state(in, p);
        if (adopted)
            mars_info(mars_sink_id(es->sink), "pod %s/%s is %s/%s again (kept over the reload)",
                      p->ns, p->name, in->d.app, in->d.id);
        return;
    }
    in = mars_eureka_inst_add(es, d, EU_POD);
    if (!in) {
        mars_error(mars_sink_id(es->sink), "pod %s/%s: out of memory", p->ns, p->name);
        return;
    }
    set_pod_state(in, p);
    int st = mars_eureka_pod_status(in);
    if (st >= 0)
        in->status = st; /* its first registration says it, not a second one */
    mars_eureka_set_status_metric(in);
    mars_info(mars_sink_id(es->sink), "pod %s/%s is %s/%s at %s", p->ns, p->name, in->d.app,
              in->d.id, in->d.ip);
}

static void on_pods_changed(void *arg)
{
    struct eu_sink *es = arg;
    struct mars_kubernetes_pod_list l;
    if (es->stopping)
        return;
    if (mars_kubernetes_pods_list(es->pods, &l) != 0) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(es->sink), "pods: out of memory");
        return;
    }
    if (l.version == es->pods_version && l.synced == es->pods_synced) {
        mars_kubernetes_pod_list_fini(&l);
        return;
    }
    for (size_t i = 0; i < es->ninst; i++)
        es->inst[i]->seen = false;
    for (size_t i = 0; i < l.n; i++) {
        struct eu_desc d;
        int rc = pod_desc(es, &l.v[i], &d);
        if (rc < 0)
            MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(es->sink), "pods: out of memory");
        if (rc == 0)
            claim(es, &l.v[i], &d);
    }
    if (l.synced) /* absence means gone only once the pods were listed */
        for (size_t i = 0; i < es->ninst; i++) {
            struct eu_inst *in = es->inst[i];
            bool podish = in->origin == EU_POD || (in->origin == EU_ADOPTED && in->was_pod);
            if (podish && !in->seen)
                mars_eureka_inst_remove(in);
        }
    es->pods_version = l.version;
    es->pods_synced = l.synced;
    mars_kubernetes_pod_list_fini(&l);
    for (size_t i = es->ninst; i-- > 0;)
        if (i < es->ninst)
            mars_eureka_step(es->inst[i]);
}

int mars_eureka_pods_start(struct eu_sink *es)
{
    es->pods = mars_kubernetes_pods_acquire(mars_sink_obs(es->sink), mars_sink_id(es->sink),
                                            &es->conf->pods.api, es->loop);
    if (!es->pods)
        return -EINVAL;
    es->pods_sub = mars_kubernetes_pods_subscribe(es->pods, es->loop, on_pods_changed, es);
    return es->pods_sub ? 0 : -ENOMEM;
}

void mars_eureka_pods_stop(struct eu_sink *es)
{
    mars_kubernetes_pods_unsubscribe(es->pods_sub);
    es->pods_sub = NULL;
    mars_kubernetes_pods_release(es->pods);
    es->pods = NULL;
}
