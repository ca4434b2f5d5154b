/*
 * apollo.c - the `apollo` source: follows namespaces of Apollo config services and emits
 * one event per published change (shared/protocols.md §1, §11).
 *
 * Per app, one long poll of /notifications/v2 (held up to 60 s by the server; our timeout
 * is poll_timeout, 90 s) carries the notification id of each of its namespaces. A 200
 * names the namespaces that changed: each is fetched from /configs with its last
 * releaseKey and the notification's `messages` (304: unchanged), and the poll starts again
 * at once. Every refresh_interval all namespaces are fetched again, in case a notification
 * was missed. Config services come from `config_service` or from a meta server's
 * /services/config (refreshed every meta_refresh_interval). A failed request moves the app
 * to the next config service; once every service failed in a row, retries back off from
 * 1 s to 120 s with ±25 % jitter.
 *
 * Each change emits a log event with fields app_id, cluster, namespace, format,
 * release_key, origin (remote or cache), `configurations` (properties namespaces) or
 * `content` (json, yaml, yml, xml, txt namespaces) and `changes` {added, modified,
 * deleted}: the keys that differ from the configuration emitted before.
 *
 * Cache: the last good configuration of each namespace is kept in cache_dir
 * (apollo_cache.c). A namespace that has not been fetched yet when every config service
 * failed (or none is known) is emitted from its cache at once, counted in
 * mars_apollo_cache_loads_total and logged once; the fetch retries go on and a later
 * answer replaces it (and emits only if it differs).
 *
 * The source has one instance (on one worker), so each app is polled once however many
 * workers run.
 *
 * Thread: the source's worker; all requests run on its loop through core/http_client.h.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/ev.h"
#include "core/grow.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"
#include "wire/apollo.h"

#include "apollo_internal.h"

#define BACKOFF_MIN_NS (1 * S_NS)
#define BACKOFF_MAX_NS (120 * S_NS)
#define MAX_BODY       (8u << 20)

/* ---- helpers ---- */

static int64_t backoff_ns(struct ap *ap, unsigned fails)
{
    int64_t d = BACKOFF_MIN_NS;
    for (unsigned i = 1; i < fails && d < BACKOFF_MAX_NS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_NS)
        d = BACKOFF_MAX_NS;
    ap->rng ^= ap->rng << 13;
    ap->rng ^= ap->rng >> 7;
    ap->rng ^= ap->rng << 17;
    double j = 0.75 + (double)(ap->rng % 1000) / 2000.0; /* 0.75 .. 1.25 */
    d = (int64_t)((double)d * j);
    return d > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : d;
}

/* Delay before retrying after `fails` failures in a row: none while other config services
 * are left to try, then the backoff. */
static int64_t retry_delay(struct ap *ap, unsigned fails)
{
    if (ap->ncs > 1 && fails < ap->ncs)
        return 0;
    return backoff_ns(ap, fails - (ap->ncs > 1 ? (unsigned)ap->ncs - 1 : 0));
}

static void default_ip(char *out, size_t len)
{
    struct ifaddrs *ifa = NULL;
    snprintf(out, len, "127.0.0.1");
    if (getifaddrs(&ifa) != 0)
        return;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct sockaddr_in *sa = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        if ((ntohl(sa->sin_addr.s_addr) >> 24) == 127)
            continue;
        inet_ntop(AF_INET, &sa->sin_addr, out, (socklen_t)len);
        break;
    }
    freeifaddrs(ifa);
}

/* A request of app through r failed: the app moves on from the service r used (unless
 * another failure already moved it, so concurrent failures do not cycle back to it). */
static void fail_over(struct ap_app *app, const struct ap_req *r)
{
    if (app->cs == r->cs)
        app->cs++;
}

/* The config service r went to, for messages. */
static const char *req_url(const struct ap *ap, const struct ap_req *r)
{
    return ap->ncs ? ap->cs[r->cs % ap->ncs] : "-";
}

static const char *cs_url(struct ap_app *app)
{
    struct ap *ap = app->ap;
    return ap->ncs ? ap->cs[app->cs % ap->ncs] : NULL;
}

/* Fills r's headers (signature over the path and query of r->url when the app has a
 * secret) and submits it. Returns 0 or -errno. */
static int submit(struct ap *ap, struct ap_req *r, const struct ap_app_conf *a, int64_t timeout)
{
    size_t nh = 0;
    if (a && a->secret && *a->secret) {
        const char *p = strstr(r->url.p, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        if (!p || mars_apollo_sign(a->app_id, a->secret, p, mars_apollo_source_wall_ms(), r->auth,
                                   sizeof(r->auth), r->ts, sizeof(r->ts)))
            return -EIO;
        r->hdrs[nh++] = r->auth;
        r->hdrs[nh++] = r->ts;
    }
    r->hdrs[nh] = NULL;
    r->http.method = "GET";
    r->http.url = r->url.p;
    r->http.headers = r->hdrs;
    r->http.timeout_ns = timeout;
    r->http.connect_timeout_ns = ap->conf->connect_timeout;
    r->http.max_body = MAX_BODY;
    r->http.direct = true;
    int rc = mars_http_submit(ap->http, &r->http);
    r->busy = rc == 0;
    return rc;
}

/* Common query parameters. */
static int add_client_params(struct mars_apollo_buf *u, const struct ap *ap)
{
    int rc = mars_apollo_buf_add(u, "&ip=", 4) || mars_apollo_buf_urlenc(u, ap->ip);
    if (rc == 0 && ap->conf->data_center)
        rc = mars_apollo_buf_add(u, "&dataCenter=", 12) ||
             mars_apollo_buf_urlenc(u, ap->conf->data_center);
    return rc ? -ENOMEM : 0;
}

static void maybe_finish(struct ap *ap);

/* ---- fetch /configs ---- */

static void fetch(struct ap_ns *ns);

static void on_ns_retry(struct mars_ev_op *op, int res)
{
    struct ap_ns *ns = op->data;
    ns->retry_armed = false;
    if (res == -ECANCELED || ns->app->ap->stopping) {
        maybe_finish(ns->app->ap);
        return;
    }
    fetch(ns);
}

static void fetch_failed(struct ap_ns *ns, const char *why)
{
    struct ap_app *app = ns->app;
    struct ap *ap = app->ap;
    ns->fails++;
    fail_over(app, &ns->fetch);
    mars_stat_add(&mars_source_stats(ap->src)->errors[MARS_ERR_READ], 1);
    mars_source_last_error(ap->src, "app %s namespace %s: %s", app->conf->app_id, ns->name, why);
    if (ns->fails >= (ap->ncs ? ap->ncs : 1))
        mars_apollo_source_use_cache(ap, ns, why);
    if (ns->retry_armed || ap->stopping)
        return;
    mars_ev_prep_timer(&ns->retry, retry_delay(ap, ns->fails), on_ns_retry, ns);
    ns->retry_armed = mars_ev_submit(mars_source_loop(ap->src), &ns->retry) == 0;
}

static void on_fetch(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct ap_ns *ns = r->data;
    struct ap_app *app = ns->app;
    struct ap *ap = app->ap;
    const char *id = mars_source_id(ap->src);
    char why[256];
    ns->fetch.busy = false;
    if (ap->stopping) {
        maybe_finish(ap);
        return;
    }
    if (resp->error) {
        snprintf(why, sizeof(why), "%s: %s", req_url(ap, &ns->fetch), resp->error_text);
        fetch_failed(ns, why);
    } else if (resp->status == 304) {
        ns->fails = 0;
    } else if (resp->status == 200) {
        struct mars_apollo_configs c;
        int rc = mars_apollo_configs_parse(resp->body, resp->body_len, ns->have ? &ns->map : NULL,
                                           &c, why, sizeof(why));
        if (rc == -ESTALE) {
            mars_warn(id, "app %s namespace %s: %s; fetching the whole configuration",
                      app->conf->app_id, ns->name, why);
            ns->full = ns->again = true;
        } else if (rc) {
            char w2[300];
            snprintf(w2, sizeof(w2), "bad /configs answer: %s", why);
            fetch_failed(ns, w2);
        } else {
            ns->fails = 0;
            ns->full = false;
            ns->from_remote = true;
            if (ap->cache_dir &&
                (rc = mars_apollo_cache_save(ap->cache_dir, app->conf->app_id, app->conf->cluster,
                                             ns->name, c.release_key, &c.map)))
                mars_warn(id, "app %s namespace %s: cannot write the cache in %s: %s",
                          app->conf->app_id, ns->name, ap->cache_dir, strerror(-rc));
            mars_apollo_source_apply(ap, ns, c.release_key, &c.map, "remote");
            c.release_key = NULL;
            mars_apollo_configs_fini(&c);
        }
    } else if (resp->status == 401) {
        snprintf(why, sizeof(why),
                 "HTTP 401: the config service refused app %s's signature (bad secret, or "
                 "this host's clock is off by more than the server's tolerance)",
                 app->conf->app_id);
        mars_error(id, "%s", why);
        ns->fails = ns->fails < ap->ncs ? (unsigned)ap->ncs : ns->fails;
        fetch_failed(ns, why);
    } else if (resp->status == 404) {
        snprintf(why, sizeof(why),
                 "HTTP 404: app %s, cluster %s or namespace %s is unknown, or nothing is "
                 "published",
                 app->conf->app_id, app->conf->cluster, ns->name);
        mars_warn(id, "%s", why);
        ns->fails = ns->fails < ap->ncs ? (unsigned)ap->ncs : ns->fails;
        fetch_failed(ns, why);
    } else {
        snprintf(why, sizeof(why), "%s: HTTP %d", req_url(ap, &ns->fetch), resp->status);
        fetch_failed(ns, why);
    }
    if (ns->again && !ns->retry_armed) {
        ns->again = false;
        fetch(ns);
    }
}

static void fetch(struct ap_ns *ns)
{
    struct ap_app *app = ns->app;
    struct ap *ap = app->ap;
    const struct ap_app_conf *c = app->conf;
    struct mars_apollo_buf *u = &ns->fetch.url;
    if (ap->stopping)
        return;
    if (ns->fetch.busy) {
        ns->again = true;
        return;
    }
    if (!cs_url(app)) {
        fetch_failed(ns, "no config service known (the meta server did not answer)");
        return;
    }
    u->n = 0;
    ns->fetch.cs = app->cs;
    int rc = mars_apollo_buf_addf(u, "%s/configs/", cs_url(app)) ||
             mars_apollo_buf_urlenc(u, c->app_id) || mars_apollo_buf_add(u, "/", 1) ||
             mars_apollo_buf_urlenc(u, c->cluster) || mars_apollo_buf_add(u, "/", 1) ||
             mars_apollo_buf_urlenc(u, ns->name) || mars_apollo_buf_add(u, "?", 1);
    if (rc == 0 && ns->release_key && ns->from_remote && !ns->full)
        rc = mars_apollo_buf_add(u, "releaseKey=", 11) ||
             mars_apollo_buf_urlenc(u, ns->release_key) || mars_apollo_buf_add(u, "&", 1);
    if (rc == 0 && ns->messages)
        rc = mars_apollo_buf_add(u, "messages=", 9) || mars_apollo_buf_urlenc(u, ns->messages) ||
             mars_apollo_buf_add(u, "&", 1);
    if (rc == 0 && c->label)
        rc = mars_apollo_buf_add(u, "label=", 6) || mars_apollo_buf_urlenc(u, c->label) ||
             mars_apollo_buf_add(u, "&", 1);
    if (rc == 0)
        rc = mars_apollo_buf_add(u, "ip=", 3) || mars_apollo_buf_urlenc(u, ap->ip);
    if (rc == 0 && ap->conf->data_center)
        rc = mars_apollo_buf_add(u, "&dataCenter=", 12) ||
             mars_apollo_buf_urlenc(u, ap->conf->data_center);
    ns->fetch.http = (struct mars_http_req){.done = on_fetch, .data = ns};
    if (rc == 0)
        rc = submit(ap, &ns->fetch, c, ap->conf->timeout);
    if (rc)
        fetch_failed(ns, "cannot start the request");
}

/* ---- long poll /notifications/v2 ---- */

static void poll_app(struct ap_app *app);

static void on_app_timer(struct mars_ev_op *op, int res)
{
    struct ap_app *app = op->data;
    app->timer_armed = false;
    if (res == -ECANCELED || app->ap->stopping) {
        maybe_finish(app->ap);
        return;
    }
    poll_app(app);
}

static void poll_later(struct ap_app *app, int64_t delay)
{
    struct ap *ap = app->ap;
    if (ap->stopping || app->timer_armed)
        return;
    mars_ev_prep_timer(&app->timer, delay, on_app_timer, app);
    app->timer_armed = mars_ev_submit(mars_source_loop(ap->src), &app->timer) == 0;
}

static void poll_failed(struct ap_app *app, const char *why)
{
    struct ap *ap = app->ap;
    app->fails++;
    fail_over(app, &app->poll);
    mars_stat_add(&mars_source_stats(ap->src)->errors[MARS_ERR_READ], 1);
    mars_source_last_error(ap->src, "app %s: long poll: %s", app->conf->app_id, why);
    if (app->fails == 1 || app->fails % 10 == 0)
        mars_warn(mars_source_id(ap->src), "app %s: long poll failed (%u in a row): %s",
                  app->conf->app_id, app->fails, why);
    poll_later(app, retry_delay(ap, app->fails));
}

static void on_notifications(struct ap_app *app, const struct mars_http_resp *resp)
{
    struct mars_apollo_notif *v;
    size_t n;
    if (mars_apollo_notifs_parse(resp->body, resp->body_len, &v, &n)) {
        poll_failed(app, "bad /notifications/v2 answer");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < app->nns; j++) {
            struct ap_ns *ns = &app->ns[j];
            if (strcmp(ns->name, v[i].ns) != 0 || ns->notif_id == v[i].id)
                continue;
            ns->notif_id = v[i].id;
            free(ns->messages);
            ns->messages = v[i].messages;
            v[i].messages = NULL;
            fetch(ns);
        }
    }
    mars_apollo_notifs_free(v, n);
    app->fails = 0;
    poll_later(app, 0);
}

static void on_poll(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct ap_app *app = r->data;
    struct ap *ap = app->ap;
    char why[256];
    app->poll.busy = false;
    if (ap->stopping) {
        maybe_finish(ap);
        return;
    }
    if (resp->error) {
        snprintf(why, sizeof(why), "%s: %s", req_url(ap, &app->poll), resp->error_text);
        poll_failed(app, why);
    } else if (resp->status == 304) {
        app->fails = 0;
        poll_later(app, 0);
    } else if (resp->status == 200) {
        on_notifications(app, resp);
    } else if (resp->status == 401) {
        snprintf(why, sizeof(why),
                 "HTTP 401: the config service refused app %s's signature (bad secret, or clock "
                 "skew)",
                 app->conf->app_id);
        app->fails = app->fails < ap->ncs ? (unsigned)ap->ncs : app->fails;
        poll_failed(app, why);
    } else {
        snprintf(why, sizeof(why), "%s: HTTP %d", req_url(ap, &app->poll), resp->status);
        poll_failed(app, why);
    }
}

static void poll_app(struct ap_app *app)
{
    struct ap *ap = app->ap;
    const struct ap_app_conf *c = app->conf;
    struct mars_apollo_buf *u = &app->poll.url;
    if (ap->stopping || app->poll.busy)
        return;
    if (!cs_url(app)) {
        poll_failed(app, "no config service known");
        return;
    }
    struct evbuffer *nb = evbuffer_new();
    if (!nb) {
        poll_failed(app, "out of memory");
        return;
    }
    evbuffer_add(nb, "[", 1);
    for (size_t i = 0; i < app->nns; i++) {
        evbuffer_add_printf(nb, "%s{\"namespaceName\":", i ? "," : "");
        mars_json_string(nb, app->ns[i].name);
        evbuffer_add_printf(nb, ",\"notificationId\":%lld}", (long long)app->ns[i].notif_id);
    }
    evbuffer_add(nb, "]", 2); /* with its NUL */
    const char *notifs = (const char *)evbuffer_pullup(nb, -1);
    u->n = 0;
    app->poll.cs = app->cs;
    int rc = !notifs || mars_apollo_buf_addf(u, "%s/notifications/v2?appId=", cs_url(app)) ||
             mars_apollo_buf_urlenc(u, c->app_id) || mars_apollo_buf_add(u, "&cluster=", 9) ||
             mars_apollo_buf_urlenc(u, c->cluster) ||
             mars_apollo_buf_add(u, "&notifications=", 15) || mars_apollo_buf_urlenc(u, notifs) ||
             add_client_params(u, ap);
    evbuffer_free(nb);
    app->poll.http = (struct mars_http_req){.done = on_poll, .data = app};
    if (rc == 0)
        rc = submit(ap, &app->poll, c, ap->conf->poll_timeout);
    if (rc)
        poll_failed(app, "cannot start the request");
}

/* ---- apps, refresh, meta server ---- */

static void start_apps(struct ap *ap)
{
    if (ap->apps_started)
        return;
    ap->apps_started = true;
    for (size_t i = 0; i < ap->napps; i++) {
        for (size_t j = 0; j < ap->apps[i].nns; j++)
            fetch(&ap->apps[i].ns[j]);
        poll_app(&ap->apps[i]);
    }
}

static void on_refresh(struct mars_ev_op *op, int res)
{
    struct ap *ap = op->data;
    ap->refresh_armed = false;
    if (res == -ECANCELED || ap->stopping) {
        maybe_finish(ap);
        return;
    }
    for (size_t i = 0; i < ap->napps; i++)
        for (size_t j = 0; j < ap->apps[i].nns; j++)
            if (!ap->apps[i].ns[j].retry_armed)
                fetch(&ap->apps[i].ns[j]);
    mars_ev_prep_timer(&ap->refresh, ap->conf->refresh_interval, on_refresh, ap);
    ap->refresh_armed = mars_ev_submit(mars_source_loop(ap->src), &ap->refresh) == 0;
}

static void meta_fetch(struct ap *ap);

static void on_meta_timer(struct mars_ev_op *op, int res)
{
    struct ap *ap = op->data;
    ap->meta_armed = false;
    if (res == -ECANCELED || ap->stopping) {
        maybe_finish(ap);
        return;
    }
    meta_fetch(ap);
}

static void meta_later(struct ap *ap, int64_t delay)
{
    if (ap->stopping || ap->meta_armed)
        return;
    mars_ev_prep_timer(&ap->meta_timer, delay, on_meta_timer, ap);
    ap->meta_armed = mars_ev_submit(mars_source_loop(ap->src), &ap->meta_timer) == 0;
}

static void set_services(struct ap *ap, char **urls, size_t n)
{
    for (size_t i = 0; i < ap->ncs; i++)
        free(ap->cs[i]);
    free(ap->cs);
    ap->cs = urls;
    ap->ncs = n;
}

static void on_meta(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct ap *ap = r->data;
    char **urls = NULL;
    size_t n = 0;
    ap->meta.busy = false;
    if (ap->stopping) {
        maybe_finish(ap);
        return;
    }
    if (!resp->error && resp->status == 200 &&
        mars_apollo_meta_parse(resp->body, resp->body_len, &urls, &n) == 0 && n > 0) {
        if (ap->meta_fails || !ap->apps_started)
            mars_info(mars_source_id(ap->src), "meta server %s lists %zu config service(s)",
                      ap->conf->meta_server, n);
        set_services(ap, urls, n);
        ap->meta_fails = 0;
        meta_later(ap, ap->conf->meta_refresh_interval);
    } else {
        ap->meta_fails++;
        mars_stat_add(&mars_source_stats(ap->src)->errors[MARS_ERR_READ], 1);
        if (ap->meta_fails == 1 || ap->meta_fails % 10 == 0)
            mars_warn(mars_source_id(ap->src), "meta server %s: %s (%u in a row)",
                      ap->conf->meta_server,
                      resp->error           ? resp->error_text
                      : resp->status == 200 ? "no config service listed"
                                            : "unexpected HTTP status",
                      ap->meta_fails);
        mars_source_last_error(ap->src, "meta server %s did not answer", ap->conf->meta_server);
        meta_later(ap, ap->ncs ? ap->conf->meta_refresh_interval : backoff_ns(ap, ap->meta_fails));
    }
    start_apps(ap);
}

static void meta_fetch(struct ap *ap)
{
    struct mars_apollo_buf *u = &ap->meta.url;
    if (ap->stopping || ap->meta.busy)
        return;
    u->n = 0;
    int rc = mars_apollo_buf_addf(u, "%s/services/config?appId=", ap->conf->meta_server) ||
             mars_apollo_buf_urlenc(u, app_at(ap->conf, 0)->app_id) || add_client_params(u, ap);
    ap->meta.http = (struct mars_http_req){.done = on_meta, .data = ap};
    if (rc == 0)
        rc = submit(ap, &ap->meta, NULL, ap->conf->timeout);
    if (rc) {
        ap->meta_fails++;
        meta_later(ap, backoff_ns(ap, ap->meta_fails));
        start_apps(ap);
    }
}

/* ---- life cycle ---- */

static void maybe_finish(struct ap *ap)
{
    if (!ap->stopping || ap->finished || ap->meta.busy || ap->meta_armed || ap->refresh_armed)
        return;
    for (size_t i = 0; i < ap->napps; i++) {
        struct ap_app *app = &ap->apps[i];
        if (app->poll.busy || app->timer_armed)
            return;
        for (size_t j = 0; j < app->nns; j++)
            if (app->ns[j].fetch.busy || app->ns[j].retry_armed)
                return;
    }
    ap->finished = true;
    mars_source_finished(ap->src);
}

static void apollo_free(struct ap *ap)
{
    for (size_t i = 0; ap->apps && i < ap->napps; i++) {
        struct ap_app *app = &ap->apps[i];
        for (size_t j = 0; app->ns && j < app->nns; j++) {
            struct ap_ns *ns = &app->ns[j];
            free(ns->name);
            free(ns->messages);
            free(ns->release_key);
            mars_apollo_map_free(&ns->map);
            mars_apollo_buf_fini(&ns->fetch.url);
        }
        free(app->ns);
        mars_apollo_buf_fini(&app->poll.url);
    }
    free(ap->apps);
    set_services(ap, NULL, 0);
    mars_apollo_buf_fini(&ap->meta.url);
    free(ap->cache_dir);
    if (ap->http)
        mars_http_destroy(ap->http);
    free(ap);
}

static int init_apps(struct ap *ap)
{
    ap->napps = ap->conf->apps.n;
    ap->apps = calloc(ap->napps, sizeof(*ap->apps));
    if (!ap->apps)
        return -ENOMEM;
    for (size_t i = 0; i < ap->napps; i++) {
        struct ap_app *app = &ap->apps[i];
        app->ap = ap;
        app->conf = app_at(ap->conf, i);
        app->nns = app->conf->namespaces.n;
        app->ns = calloc(app->nns ? app->nns : 1, sizeof(*app->ns));
        if (!app->ns)
            return -ENOMEM;
        for (size_t j = 0; j < app->nns; j++) {
            struct ap_ns *ns = &app->ns[j];
            const char *name = app->conf->namespaces.v[j];
            size_t l = strlen(name);
            if (l > 11 && strcmp(name + l - 11, ".properties") == 0)
                l -= 11; /* properties namespaces are named without their suffix */
            ns->app = app;
            ns->notif_id = -1;
            if (!(ns->name = strndup(name, l)))
                return -ENOMEM;
            ns->fmt = mars_apollo_format_of(ns->name);
        }
    }
    return 0;
}

static int apollo_init(struct mars_source *s)
{
    static const char *const labels[] = {"component_id", "app_id", "namespace", NULL};
    struct ap *ap = calloc(1, sizeof(*ap));
    if (!ap)
        return -ENOMEM;
    ap->src = s;
    ap->conf = mars_source_conf(s);
    ap->rng = (uint64_t)mars_ev_clock_ns() | 1;
    int rc = init_apps(ap);
    if (ap->conf->ip)
        snprintf(ap->ip, sizeof(ap->ip), "%s", ap->conf->ip);
    else
        default_ip(ap->ip, sizeof(ap->ip));
    if (rc == 0 && ap->conf->cache) {
        char dir[4096];
        if (ap->conf->cache_dir)
            snprintf(dir, sizeof(dir), "%s", ap->conf->cache_dir);
        else
            snprintf(dir, sizeof(dir), "%s/apollo", mars_source_data_dir(s));
        if (!(ap->cache_dir = strdup(dir)))
            rc = -ENOMEM;
    }
    size_t cs_cap = 0;
    for (size_t i = 0; rc == 0 && i < ap->conf->config_service.n; i++) {
        char *u = mars_grow(&ap->cs, &cs_cap, ap->ncs + 1, sizeof(*ap->cs))
                      ? NULL
                      : strdup(ap->conf->config_service.v[i]);
        if (!u) {
            rc = -ENOMEM;
            break;
        }
        size_t l = strlen(u);
        while (l && u[l - 1] == '/')
            u[--l] = '\0';
        ap->cs[ap->ncs++] = u;
    }
    struct mars_http_opts ho = {.curl_on_demand = true};
    for (size_t i = 0; i < ap->ncs; i++)
        if (!mars_http_url_direct(ap->cs[i]))
            ho.curl_on_demand = false;
    if (rc == 0 && !(ap->http = mars_http_create(mars_source_loop(s), &ho)))
        rc = -errno;
    if (rc) {
        apollo_free(ap);
        return rc;
    }
    struct mars_obs *obs = mars_source_obs(s);
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    ap->cache_loads =
        m ? mars_metrics_family(
                m,
                &(struct mars_mfamily_desc){.name = "mars_apollo_cache_loads_total",
                                            .help = "Namespaces the apollo source emitted from its "
                                                    "cache because no config service answered.",
                                            .type = MARS_MT_COUNTER,
                                            .labels = labels})
          : NULL;
    mars_source_set_state(s, ap);
    return 0;
}

static int apollo_start(struct mars_source *s)
{
    struct ap *ap = mars_source_state(s);
    if (mars_source_once(s)) {
        mars_error(mars_source_id(s), "the apollo source follows changes and cannot run --once");
        return -EINVAL;
    }
    mars_ev_prep_timer(&ap->refresh, ap->conf->refresh_interval, on_refresh, ap);
    ap->refresh_armed = mars_ev_submit(mars_source_loop(s), &ap->refresh) == 0;
    if (ap->conf->meta_server)
        meta_fetch(ap);
    else
        start_apps(ap);
    return 0;
}

static void apollo_stop(struct mars_source *s)
{
    struct ap *ap = mars_source_state(s);
    struct mars_ev_loop *loop = mars_source_loop(s);
    ap->stopping = true;
    if (ap->refresh_armed)
        mars_ev_cancel(loop, &ap->refresh);
    if (ap->meta_armed)
        mars_ev_cancel(loop, &ap->meta_timer);
    for (size_t i = 0; i < ap->napps; i++) {
        struct ap_app *app = &ap->apps[i];
        if (app->timer_armed)
            mars_ev_cancel(loop, &app->timer);
        for (size_t j = 0; j < app->nns; j++)
            if (app->ns[j].retry_armed)
                mars_ev_cancel(loop, &app->ns[j].retry);
    }
    mars_http_shutdown(ap->http);
    maybe_finish(ap);
}

static void apollo_destroy(struct mars_source *s)
{
    struct ap *ap = mars_source_state(s);
    if (ap)
        apollo_free(ap);
}

const struct mars_component_desc mars_source_apollo = {
    .name = "apollo",
    .description = "Follows Apollo config service namespaces (long poll, signatures, "
                   "incremental sync, a cache for outages); emits one event per change.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .flags = MARS_DESC_DATA_DIR,
    .options = mars_apollo_options,
    .conf_size = sizeof(struct ap_conf),
    .check = mars_apollo_check,
    .source = {.init = apollo_init,
               .start = apollo_start,
               .stop = apollo_stop,
               .destroy = apollo_destroy},
};
