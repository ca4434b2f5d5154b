/*
 * apollo_config.c - mars's own configuration from an Apollo namespace (apollo_config.h).
 *
 * One watcher thread with its own ev loop and HTTP client (core/http_client.h): it fetches the
 * namespace from /configs, then long-polls /notifications/v2 (90 s timeout over the
 * server's 60 s hold) and fetches again on each notification with the last releaseKey and
 * the notification's messages. Requests go to the config services in turn; after a failure
 * on every one, retries back off from 1 s to 120 s. With a secret_file, requests carry the
 * access-key signature (wire/apollo.h).
 *
 * Start: main waits until the first fetch answered, or every config service failed once;
 * then the release is the fetched one or the cached one (wire/apollo_cache.c, in cache_dir,
 * default /var/lib/mars/apollo), logged once as a warning. A release is cached only after
 * it was accepted (it parsed and validated), so the cache always holds a good config.
 *
 * Change: the new text becomes `pending` and the current engine is asked to reload with
 * this module as its loader; the loader parses `pending` under the apollo:// name. Accepted:
 * pending becomes current and is cached. Refused (-EINVAL): the problems are logged line by
 * line, the engine recorded them (GET /api/v1/config, mars_config_reloads_total) and the
 * running pipeline goes on. No engine yet or a reload under way: tried again after 1 s.
 *
 * Thread: the watcher; `current`, `pending` and `engine` are under `lock`.
 */
#include "control/apollo_config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "config/config.h"
#include "engine/engine.h"
#include "wire/apollo.h"

#define S_NS     1000000000LL
#define LOG_NAME "apollo-config"

struct mars_apollo_config {
    char *name; /* "apollo://APP/NAMESPACE": the "file" of messages and diagnostics */
    char *uri, *app, *cluster, *ns, *secret, *cache_dir, *ip;
    char **cs;
    size_t ncs, cs_cap, cs_at;
    /* watcher */
    pthread_t thread;
    bool thread_started;
    struct mars_ev_loop *loop;
    struct mars_http *http;
    struct mars_ev_async wake;
    struct mars_http_req req;
    struct mars_apollo_buf url;
    char auth[320], ts[64];
    const char *hdrs[3];
    bool busy, polling, timer_armed;
    struct mars_ev_op timer;
    unsigned fails;
    int64_t notif_id;
    char *messages;
    char *release_key; /* of `current` */
    bool cache_used;
    /* shared */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
    atomic_bool stopping;
    char *current, *current_rk, *pending, *pending_rk;
    bool current_cached; /* current is in the cache */
    struct mars_engine *engine;
};

bool mars_apollo_config_is(const char *path)
{
    return path && strncmp(path, "apollo://", 9) == 0;
}

/* ---- the URI ---- */

static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; out && i < n; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < n + 0 + 1 && sscanf(s + i + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    if (out)
        *o = '\0';
    return out;
}

static int add_services(struct mars_apollo_config *ac, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (mars_grow(&ac->cs, &ac->cs_cap, ac->ncs + 1, sizeof(*ac->cs)))
                return -ENOMEM;
            char *u = strndup(p, n);
            if (!u)
                return -ENOMEM;
            while (n && u[n - 1] == '/')
                u[--n] = '\0';
            ac->cs[ac->ncs++] = u;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static int read_secret(struct mars_apollo_config *ac, const char *path, char *why, size_t wlen)
{
    char buf[1024];
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    if (!f || n == 0) {
        snprintf(why, wlen, "cannot read secret_file %s", path);
        return -EINVAL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    ac->secret = strndup(buf, n);
    return ac->secret ? 0 : -ENOMEM;
}

static int parse_uri(struct mars_apollo_config *ac, const char *uri, char *why, size_t wlen)
{
    const char *p = uri + 9, *q = strchr(p, '?');
    const char *slash = strchr(p, '/');
    if (!slash || (q && slash > q) || slash == p) {
        snprintf(why, wlen, "expected apollo://APP_ID/NAMESPACE?config_service=URL");
        return -EINVAL;
    }
    ac->app = strndup(p, (size_t)(slash - p));
    ac->ns = pct_decode(slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1));
    if (!ac->app || !ac->ns)
        return -ENOMEM;
    enum mars_apollo_format f = mars_apollo_format_of(ac->ns);
    size_t nl = strlen(ac->app) + strlen(ac->ns) + 12;
    if (!(ac->name = malloc(nl)))
        return -ENOMEM;
    snprintf(ac->name, nl, "apollo://%s/%s", ac->app, ac->ns);
    if (f != MARS_APOLLO_YAML && f != MARS_APOLLO_YML) {
        snprintf(why, wlen, "namespace '%s' must be a yaml or yml namespace (mars.yaml)", ac->ns);
        return -EINVAL;
    }
    for (const char *a = q ? q + 1 : NULL; a && *a;) {
        size_t n = strcspn(a, "&");
        const char *eq = memchr(a, '=', n);
        char *v = eq ? pct_decode(eq + 1, (size_t)(a + n - eq - 1)) : NULL;
        size_t kl = eq ? (size_t)(eq - a) : n;
        int rc = 0;
        if (!v)
            rc = -EINVAL;
        else if (kl == 14 && !strncmp(a, "config_service", kl))
            rc = add_services(ac, v);
        else if (kl == 7 && !strncmp(a, "cluster", kl))
            free(ac->cluster), ac->cluster = v, v = NULL;
        else if (kl == 9 && !strncmp(a, "cache_dir", kl))
            free(ac->cache_dir), ac->cache_dir = v, v = NULL;
        else if (kl == 2 && !strncmp(a, "ip", kl))
            free(ac->ip), ac->ip = v, v = NULL;
        else if (kl == 11 && !strncmp(a, "secret_file", kl))
            rc = read_secret(ac, v, why, wlen);
        else
            rc = -EINVAL;
        if (rc == -EINVAL && !*why)
            snprintf(why, wlen,
                     "unknown or malformed parameter '%.*s' (config_service, cluster, "
                     "secret_file, cache_dir, ip)",
                     (int)kl, a);
        free(v);
        if (rc)
            return rc;
        a += n + (a[n] == '&');
    }
    if (!ac->ncs) {
        snprintf(why, wlen, "config_service=URL is required");
        return -EINVAL;
    }
    if (!ac->cluster)
        ac->cluster = strdup("default");
    if (!ac->cache_dir)
        ac->cache_dir = strdup("/var/lib/mars/apollo");
    if (!ac->ip)
        ac->ip = strdup("127.0.0.1");
    return ac->cluster && ac->cache_dir && ac->ip ? 0 : -ENOMEM;
}

/* ---- requests ---- */

static void request(struct mars_apollo_config *ac, bool poll);

static void on_timer(struct mars_ev_op *op, int res)
{
    struct mars_apollo_config *ac = op->data;
    ac->timer_armed = false;
    if (res == -ECANCELED || ac->stopping)
        return;
    request(ac, ac->polling);
}

static void later(struct mars_apollo_config *ac, int64_t delay, bool poll)
{
    ac->polling = poll;
    if (ac->timer_armed || ac->stopping)
        return;
    mars_ev_prep_timer(&ac->timer, delay, on_timer, ac);
    ac->timer_armed = mars_ev_submit(ac->loop, &ac->timer) == 0;
}

static void set_ready(struct mars_apollo_config *ac)
{
    pthread_mutex_lock(&ac->lock);
    ac->ready = true;
    pthread_cond_broadcast(&ac->cond);
    pthread_mutex_unlock(&ac->lock);
}

/* The first fetch failed everywhere: start from the cache. */
static void use_cache(struct mars_apollo_config *ac, const char *why)
{
    struct mars_apollo_map m;
    char *rk = NULL;
    if (ac->cache_used || ac->ready)
        return;
    ac->cache_used = true;
    int rc = mars_apollo_cache_load(ac->cache_dir, ac->app, ac->cluster, ac->ns, &rk, &m);
    const struct mars_apollo_kv *kv = rc == 0 ? mars_apollo_map_get(&m, "content") : NULL;
    if (kv) {
        mars_warn(LOG_NAME,
                  "%s: no config service answered (%s); starting from the cached "
                  "release %s in %s",
                  ac->name, why, rk, ac->cache_dir);
        pthread_mutex_lock(&ac->lock);
        ac->current = strdup(kv->v);
        ac->current_rk = strdup(rk);
        ac->current_cached = true;
        pthread_mutex_unlock(&ac->lock);
    } else {
        mars_error(LOG_NAME,
                   "%s: no config service answered (%s) and there is no cached "
                   "release in %s",
                   ac->name, why, ac->cache_dir);
    }
    free(rk);
    if (rc == 0)
        mars_apollo_map_free(&m);
    set_ready(ac);
}

static void failed(struct mars_apollo_config *ac, bool poll, const char *why)
{
    ac->fails++;
    ac->cs_at++;
    if (ac->fails == 1 || ac->fails % 10 == 0)
        mars_warn(LOG_NAME, "%s: %s (%u failures in a row)", ac->name, why, ac->fails);
    if (!ac->ready && ac->fails >= ac->ncs)
        use_cache(ac, why);
    int64_t d = 0;
    if (ac->fails >= ac->ncs) {
        d = S_NS;
        for (unsigned i = (unsigned)ac->ncs; i < ac->fails && d < 120 * S_NS; i++)
            d *= 2;
        d = d > 120 * S_NS ? 120 * S_NS : d;
    }
    later(ac, d, poll);
}

/* Caches the current release once it has been accepted (parsed and validated), so the
 * cache only ever holds a good configuration. Any thread. */
static void save_current(struct mars_apollo_config *ac)
{
    struct mars_apollo_map m = {0};
    char *rk = NULL;
    pthread_mutex_lock(&ac->lock);
    bool todo = ac->current && !ac->current_cached;
    int rc = todo ? mars_apollo_map_set(&m, "content", 7, ac->current, strlen(ac->current)) : 0;
    if (todo && ac->current_rk)
        rk = strdup(ac->current_rk);
    ac->current_cached = true;
    pthread_mutex_unlock(&ac->lock);
    if (todo && (rc || mars_apollo_cache_save(ac->cache_dir, ac->app, ac->cluster, ac->ns, rk, &m)))
        mars_warn(LOG_NAME, "%s: cannot write the cache in %s", ac->name, ac->cache_dir);
    mars_apollo_map_free(&m);
    free(rk);
}

/* Hands a new release to the engine; keeps it pending while no engine can take it. */
static void apply(struct mars_apollo_config *ac)
{
    char *problems = NULL;
    pthread_mutex_lock(&ac->lock);
    struct mars_engine *e = ac->engine;
    bool have = ac->pending != NULL;
    pthread_mutex_unlock(&ac->lock);
    if (!have)
        return;
    int rc = e ? mars_engine_reload(e, &problems) : -EBUSY;
    if (rc == -EBUSY) {
        later(ac, S_NS, true); /* between engines: try again */
        free(problems);
        return;
    }
    pthread_mutex_lock(&ac->lock);
    char *text = ac->pending, *rk = ac->pending_rk;
    ac->pending = ac->pending_rk = NULL;
    if (rc == 0) {
        free(ac->current);
        free(ac->current_rk);
        ac->current = text;
        ac->current_rk = rk ? strdup(rk) : NULL;
        ac->current_cached = false;
        text = NULL;
    }
    pthread_mutex_unlock(&ac->lock);
    if (rc == 0) {
        save_current(ac);
        mars_info(LOG_NAME, "%s: release %s accepted: reloading", ac->name, rk);
    } else {
        mars_error(LOG_NAME, "%s: release %s has problems; keeping the running configuration",
                   ac->name, rk);
        for (char *line = problems, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            if ((nl = strchr(line, '\n')))
                *nl = '\0';
            mars_error(LOG_NAME, "%s", line);
        }
    }
    free(text);
    free(rk);
    free(problems);
}

static void on_configs(struct mars_apollo_config *ac, const struct mars_http_resp *resp)
{
    struct mars_apollo_configs c;
    char why[256];
    int rc = mars_apollo_configs_parse(resp->body, resp->body_len, NULL, &c, why, sizeof(why));
    const struct mars_apollo_kv *kv = rc == 0 ? mars_apollo_map_get(&c.map, "content") : NULL;
    if (!kv) {
        if (rc == 0)
            mars_apollo_configs_fini(&c);
        failed(ac, false, rc ? why : "the namespace has no content");
        return;
    }
    ac->fails = 0;
    free(ac->release_key);
    ac->release_key = strdup(c.release_key);
    pthread_mutex_lock(&ac->lock);
    bool same = ac->current && strcmp(ac->current, kv->v) == 0;
    pthread_mutex_unlock(&ac->lock);
    if (!ac->ready) {
        /* the first release: main parses it; cached once it parsed (the loader) */
        pthread_mutex_lock(&ac->lock);
        ac->current = strdup(kv->v);
        ac->current_rk = strdup(c.release_key);
        pthread_mutex_unlock(&ac->lock);
        set_ready(ac);
    } else if (same) {
        mars_info(LOG_NAME, "%s: release %s has the running configuration", ac->name,
                  c.release_key);
    } else {
        pthread_mutex_lock(&ac->lock);
        free(ac->pending);
        free(ac->pending_rk);
        ac->pending = strdup(kv->v);
        ac->pending_rk = strdup(c.release_key);
        pthread_mutex_unlock(&ac->lock);
        apply(ac);
    }
    mars_apollo_configs_fini(&c);
    later(ac, 0, true);
}

static void on_notifications(struct mars_apollo_config *ac, const struct mars_http_resp *resp)
{
    struct mars_apollo_notif *v;
    size_t n;
    bool changed = false;
    if (mars_apollo_notifs_parse(resp->body, resp->body_len, &v, &n)) {
        failed(ac, true, "bad /notifications/v2 answer");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].ns, ac->ns) || v[i].id == ac->notif_id)
            continue;
        ac->notif_id = v[i].id;
        free(ac->messages);
        ac->messages = v[i].messages;
        v[i].messages = NULL;
        changed = true;
    }
    mars_apollo_notifs_free(v, n);
    ac->fails = 0;
    later(ac, 0, !changed);
}

static void on_resp(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct mars_apollo_config *ac = r->data;
    char why[300];
    bool poll = ac->polling;
    ac->busy = false;
    if (ac->stopping)
        return;
    if (resp->error) {
        snprintf(why, sizeof(why), "%s: %s", ac->cs[ac->cs_at % ac->ncs], resp->error_text);
        failed(ac, poll, why);
    } else if (resp->status == 304) {
        ac->fails = 0;
        later(ac, 0, true);
    } else if (resp->status == 200 && poll) {
        on_notifications(ac, resp);
    } else if (resp->status == 200) {
        on_configs(ac, resp);
    } else {
        snprintf(why, sizeof(why), "%s: HTTP %d%s", ac->cs[ac->cs_at % ac->ncs], resp->status,
                 resp->status == 401 ? " (bad secret or clock skew)" : "");
        failed(ac, poll, why);
    }
}

static void request(struct mars_apollo_config *ac, bool poll)
{
    struct mars_apollo_buf *u = &ac->url;
    const char *cs = ac->cs[ac->cs_at % ac->ncs];
    int rc;
    ac->polling = poll;
    u->n = 0;
    if (poll) {
        char n[512];
        snprintf(n, sizeof(n), "[{\"namespaceName\":\"%s\",\"notificationId\":%lld}]", ac->ns,
                 (long long)ac->notif_id);
        rc = mars_apollo_buf_addf(u, "%s/notifications/v2?appId=", cs) ||
             mars_apollo_buf_urlenc(u, ac->app) || mars_apollo_buf_add(u, "&cluster=", 9) ||
             mars_apollo_buf_urlenc(u, ac->cluster) ||
             mars_apollo_buf_add(u, "&notifications=", 15) || mars_apollo_buf_urlenc(u, n);
    } else {
        rc = mars_apollo_buf_addf(u, "%s/configs/", cs) || mars_apollo_buf_urlenc(u, ac->app) ||
             mars_apollo_buf_add(u, "/", 1) || mars_apollo_buf_urlenc(u, ac->cluster) ||
             mars_apollo_buf_add(u, "/", 1) || mars_apollo_buf_urlenc(u, ac->ns) ||
             mars_apollo_buf_add(u, "?", 1);
        if (rc == 0 && ac->release_key && ac->ready)
            rc = mars_apollo_buf_add(u, "releaseKey=", 11) ||
                 mars_apollo_buf_urlenc(u, ac->release_key) || mars_apollo_buf_add(u, "&", 1);
        if (rc == 0 && ac->messages)
            rc = mars_apollo_buf_add(u, "messages=", 9) ||
                 mars_apollo_buf_urlenc(u, ac->messages) || mars_apollo_buf_add(u, "&", 1);
    }
    rc = rc || mars_apollo_buf_add(u, poll ? "&ip=" : "ip=", poll ? 4 : 3) ||
         mars_apollo_buf_urlenc(u, ac->ip);
    size_t nh = 0;
    if (rc == 0 && ac->secret) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const char *p = strchr(strstr(u->p, "://") + 3, '/');
        rc = !p || mars_apollo_sign(ac->app, ac->secret, p,
                                    (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ac->auth,
                                    sizeof(ac->auth), ac->ts, sizeof(ac->ts));
        ac->hdrs[nh++] = ac->auth;
        ac->hdrs[nh++] = ac->ts;
    }
    ac->hdrs[nh] = NULL;
    ac->req = (struct mars_http_req){.method = "GET",
                                     .url = u->p,
                                     .headers = ac->hdrs,
                                     .timeout_ns = poll ? 90 * S_NS : 5 * S_NS,
                                     .connect_timeout_ns = S_NS,
                                     .max_body = 8u << 20,
                                     .direct = true,
                                     .done = on_resp,
                                     .data = ac};
    if (rc == 0)
        rc = mars_http_submit(ac->http, &ac->req);
    ac->busy = rc == 0;
    if (rc)
        failed(ac, poll, "cannot start the request");
}

/* ---- thread ---- */

static void on_wake(struct mars_ev_async *a)
{
    struct mars_apollo_config *ac = a->data;
    if (!ac->stopping)
        return;
    if (ac->timer_armed)
        mars_ev_cancel(ac->loop, &ac->timer);
    mars_http_shutdown(ac->http);
    mars_ev_stop(ac->loop);
}

static void *watcher(void *arg)
{
    struct mars_apollo_config *ac = arg;
    request(ac, false);
    mars_ev_run(ac->loop);
    /* run down: cancelled requests and timers complete */
    while (mars_ev_pending(ac->loop) > 1)
        mars_ev_run_once(ac->loop, 100000000);
    return NULL;
}

static void free_all(struct mars_apollo_config *ac)
{
    free(ac->uri);
    free(ac->name);
    free(ac->app);
    free(ac->cluster);
    free(ac->ns);
    free(ac->secret);
    free(ac->cache_dir);
    free(ac->ip);
    for (size_t i = 0; i < ac->ncs; i++)
        free(ac->cs[i]);
    free(ac->cs);
    free(ac->messages);
    free(ac->release_key);
    free(ac->current);
    free(ac->current_rk);
    free(ac->pending);
    free(ac->pending_rk);
    mars_apollo_buf_fini(&ac->url);
    pthread_mutex_destroy(&ac->lock);
    pthread_cond_destroy(&ac->cond);
    free(ac);
}

struct mars_apollo_config *mars_apollo_config_start(const char *uri, char *why, size_t wlen)
{
    char bwhy[200];
    struct mars_apollo_config *ac = calloc(1, sizeof(*ac));
    *why = '\0';
    if (!ac) {
        snprintf(why, wlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ac->lock, NULL);
    pthread_cond_init(&ac->cond, NULL);
    ac->notif_id = -1;
    ac->uri = strdup(uri);
    int rc = ac->uri ? parse_uri(ac, uri, why, wlen) : -ENOMEM;
    struct mars_http_opts ho = {.curl_on_demand = true}; /* libcurl only for https:// */
    for (size_t i = 0; i < ac->ncs; i++)
        if (!mars_http_url_direct(ac->cs[i]))
            ho.curl_on_demand = false;
    const struct mars_ev_backend *b =
        rc == 0 ? mars_ev_backend_select("libevent", bwhy, sizeof(bwhy)) : NULL;
    if (rc == 0 && (!b || !(ac->loop = mars_ev_loop_create(b)) ||
                    !(ac->http = mars_http_create(ac->loop, &ho)) ||
                    mars_ev_async_init(ac->loop, &ac->wake, on_wake, ac)))
        rc = -EIO;
    if (rc == 0) {
        /* the watcher takes no signals: mars's are read by the engine's signalfd, which
         * only works while every thread blocks them */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&ac->thread, NULL, watcher, ac) != 0)
            rc = -EAGAIN;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc) {
        if (!*why)
            snprintf(why, wlen, "cannot start the Apollo client");
        ac->thread_started = false;
        mars_apollo_config_destroy(ac);
        return NULL;
    }
    ac->thread_started = true;
    pthread_mutex_lock(&ac->lock);
    while (!ac->ready)
        pthread_cond_wait(&ac->cond, &ac->lock);
    bool have = ac->current != NULL;
    pthread_mutex_unlock(&ac->lock);
    if (!have) {
        snprintf(why, wlen, "no release fetched and no cache to start from");
        mars_apollo_config_destroy(ac);
        return NULL;
    }
    return ac;
}

int mars_apollo_config_load(void *arg, struct mars_config **out, struct mars_diag *diag)
{
    struct mars_apollo_config *ac = arg;
    pthread_mutex_lock(&ac->lock);
    bool pending = ac->pending != NULL;
    char *text = strdup(pending ? ac->pending : ac->current ? ac->current : "");
    pthread_mutex_unlock(&ac->lock);
    if (!text)
        return -ENOMEM;
    int rc = mars_config_load_string(ac->name, text, out, diag);
    free(text);
    if (rc == 0 && !pending)
        save_current(ac); /* the first release (or the running one) parsed */
    return rc;
}

void mars_apollo_config_set_engine(struct mars_apollo_config *ac, struct mars_engine *e)
{
    pthread_mutex_lock(&ac->lock);
    ac->engine = e;
    pthread_mutex_unlock(&ac->lock);
}

void mars_apollo_config_destroy(struct mars_apollo_config *ac)
{
    if (!ac)
        return;
    if (ac->thread_started) {
        ac->stopping = true;
        mars_ev_async_send(&ac->wake);
        pthread_join(ac->thread, NULL);
    }
    if (ac->loop) {
        if (ac->http) {
            mars_http_shutdown(ac->http);
            while (mars_ev_pending(ac->loop) > 1)
                mars_ev_run_once(ac->loop, 100000000);
        }
        mars_ev_async_fini(&ac->wake);
        if (ac->http)
            mars_http_destroy(ac->http);
        mars_ev_loop_destroy(ac->loop);
    }
    free_all(ac);
}
