/*
 * eureka_handover.c - the eureka sink's registrations across a reload.
 *
 * A reload rebuilds the pipeline, but a registration must not blink: DELETE and register
 * again would take the instance out of every client's cache for up to a minute. So when
 * the owner instance stops for a reload (mars_obs_reloading) it puts what the next sink
 * needs into the engine's hand-over store (mars_keep_put, key "eureka:<sink id>"): each
 * registered instance's app, id, status, lastDirtyTimestamp, a hash of what was sent, and
 * whether a pod made it; the last state of each health check; the servers and TLS
 * settings. The next engine's sink of the same id takes it in init: an instance its
 * configuration still has is heartbeated at once with the same lastDirtyTimestamp, with no
 * register (a 404 registers again as usual, and one whose data changed registers with the
 * new data); a pod's instance waits for the first pod list; the others are DELETEd. If no
 * sink takes it (the sink is gone from the configuration, or mars exits before the next
 * engine starts), the store destroys it with mars_eureka_deregister_leftovers, which
 * DELETEs every instance from the thread that drops it (the control thread), with a loop
 * and HTTP client of its own, for at most deregister_timeout.
 *
 * Thread: hand-over and take-over on the owner instance's worker; leftovers on the
 * control thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sinks/eureka_internal.h"

struct eu_kept_inst {
    char *app, *id;
    int status;
    int64_t dirty_ms;
    uint64_t hash;
    bool registered, was_pod, removing;
};

/* What a sink leaves for the next engine: its registrations, and what it takes to
 * deregister them should nobody take them over. */
struct eu_kept {
    char id[128];
    struct eu_kept_inst *v;
    size_t n;
    struct eu_check *checks; /* the last state of each health check */
    size_t nchecks;
    struct eu_server *servers;
    size_t nservers, cur;
    char *username, *password;
    char *ca_file, *cert_file, *key_file, *server_name;
    bool verify;
    int64_t timeout;
};

static void kept_free(struct eu_kept *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i].app), free(k->v[i].id);
    free(k->v);
    for (size_t i = 0; i < k->nchecks; i++)
        free(k->checks[i].name);
    free(k->checks);
    for (size_t i = 0; i < k->nservers; i++)
        free(k->servers[i].url), free(k->servers[i].user), free(k->servers[i].password);
    free(k->servers);
    free(k->username), free(k->password);
    free(k->ca_file), free(k->cert_file), free(k->key_file), free(k->server_name);
    free(k);
}

static char *dup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

void mars_eureka_hand_over(struct eu_sink *es)
{
    const char *id = mars_sink_id(es->sink);
    struct eu_kept *k = calloc(1, sizeof(*k));
    bool ok = k && (k->v = calloc(es->ninst ? es->ninst : 1, sizeof(*k->v))) &&
              (k->servers = calloc(es->nservers, sizeof(*k->servers)));
    for (size_t i = 0; ok && i < es->nservers; i++, k->nservers++)
        ok = (k->servers[i].url = strdup(es->servers[i].url)) &&
             ((k->servers[i].user = dup0(es->servers[i].user)) || !es->servers[i].user) &&
             ((k->servers[i].password = dup0(es->servers[i].password)) || !es->servers[i].password);
    for (size_t i = 0; ok && i < es->ninst; i++) {
        struct eu_inst *in = es->inst[i];
        bool maybe = in->registered || (in->busy && in->op == OP_REGISTER);
        if (!maybe)
            continue;
        struct eu_kept_inst *ki = &k->v[k->n++];
        *ki = (struct eu_kept_inst){.app = strdup(in->d.app),
                                    .id = strdup(in->d.id),
                                    .status = in->status,
                                    .dirty_ms = in->dirty_ms,
                                    .hash = in->hash,
                                    .registered = true,
                                    .was_pod = in->origin == EU_POD || in->was_pod,
                                    .removing = in->removing};
        ok = ki->app && ki->id;
    }
    pthread_mutex_lock(&es->reg->lock);
    if (ok && es->reg->nchecks)
        ok = (k->checks = calloc(es->reg->nchecks, sizeof(*k->checks))) != NULL;
    for (size_t i = 0; ok && i < es->reg->nchecks; i++, k->nchecks++)
        ok = (k->checks[i] = (struct eu_check){.name = strdup(es->reg->checks[i].name),
                                               .status = es->reg->checks[i].status})
                 .name != NULL;
    pthread_mutex_unlock(&es->reg->lock);
    if (ok) {
        const struct eu_conf *c = es->conf;
        snprintf(k->id, sizeof(k->id), "%s", id);
        k->cur = es->cur;
        k->username = dup0(c->username);
        k->password = dup0(c->password);
        k->ca_file = dup0(es->tls.ca_file);
        k->cert_file = dup0(es->tls.cert_file);
        k->key_file = dup0(es->tls.key_file);
        k->server_name = dup0(es->tls.server_name);
        k->verify = es->tls.verify;
        k->timeout = c->deregister_timeout;
    }
    char key[160];
    snprintf(key, sizeof(key), "eureka:%s", id);
    if (!ok || mars_keep_put(key, k, mars_eureka_deregister_leftovers) != 0) {
        mars_error(id, "reload: cannot keep the registrations for the new configuration (out of "
                       "memory): they stay until their leases expire");
        if (k)
            kept_free(k);
        return;
    }
    mars_info(id, "reload: %zu registered instances kept for the new configuration", k->n);
}

void mars_eureka_take_over(struct eu_sink *es)
{
    const char *id = mars_sink_id(es->sink);
    char key[160];
    snprintf(key, sizeof(key), "eureka:%s", id);
    struct eu_kept *k = mars_keep_take(key);
    if (!k)
        return;
    size_t kept = 0, dropped = 0;
    /* health checks start again with the new engine: until their first result, the last
     * engine's state stands (not STARTING, which would be sent to the registry) */
    for (size_t i = 0; i < k->nchecks; i++) {
        struct mars_slice name = {k->checks[i].name, strlen(k->checks[i].name)};
        mars_eureka_reg_post(es->reg, &name, k->checks[i].status, true);
    }
    for (size_t i = 0; i < k->n; i++) {
        struct eu_kept_inst *ki = &k->v[i];
        struct eu_inst *in = mars_eureka_inst_find(es, ki->app, ki->id);
        if (!in) {
            struct eu_desc d = {.app = ki->app, .id = ki->id};
            ki->app = ki->id = NULL;
            if (!(in = mars_eureka_inst_add(es, &d, EU_ADOPTED)))
                continue;
            in->was_pod = ki->was_pod;
            in->hash = ki->hash;
        }
        in->registered = ki->registered;
        in->status = ki->status;
        in->dirty_ms = ki->dirty_ms;
        in->need_register = in->origin != EU_ADOPTED && ki->hash != in->hash;
        in->next_ns = 0; /* a heartbeat at once: the registry still has it, or 404 */
        mars_mseries_set(in->m_registered, es->shard, 1);
        mars_eureka_set_status_metric(in);
        /* a pod's instance waits for the first pod list; any other is kept or dropped now */
        bool wait_pods = in->origin == EU_ADOPTED && ki->was_pod && es->conf->pods.on;
        if (ki->removing || (in->origin == EU_ADOPTED && !wait_pods)) {
            mars_eureka_inst_remove(in);
            dropped++;
        } else {
            kept++;
        }
    }
    mars_info(id, "reload: took over %zu registered instances (%zu to deregister)", kept + dropped,
              dropped);
    kept_free(k);
}

/* ---- deregistering what a reload left and nobody took ---- */

struct leftover {
    unsigned pending;
    const char *id;
};

static void on_leftover_deleted(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct leftover *lo = r->data;
    lo->pending--;
    if (resp->status == 200 || resp->status == 404)
        mars_info(lo->id, "deregistered %s (its sink is gone from the configuration)", r->url);
    else
        mars_warn(lo->id, "deregistering %s failed: %s%d", r->url,
                  resp->error ? "transport error " : "HTTP ",
                  resp->error ? -resp->error : resp->status);
}

void mars_eureka_deregister_leftovers(void *obj)
{
    struct eu_kept *k = obj;
    char why[128];
    const struct mars_ev_backend *be = mars_ev_backend_select("libevent", why, sizeof(why));
    struct mars_ev_loop *loop = be ? mars_ev_loop_create(be) : NULL;
    struct mars_http *http =
        loop ? mars_http_create(loop, &(struct mars_http_opts){.curl_on_demand = true}) : NULL;
    struct mars_http_req *reqs = calloc(k->n ? k->n : 1, sizeof(*reqs));
    char **urls = calloc(k->n ? k->n : 1, sizeof(*urls));
    struct leftover lo = {.id = k->id};
    const struct eu_server *sv = &k->servers[k->cur < k->nservers ? k->cur : 0];
    struct mars_http_tls tls = {.ca_file = k->ca_file,
                                .cert_file = k->cert_file,
                                .key_file = k->key_file,
                                .server_name = k->server_name,
                                .verify = k->verify};
    static const char *const headers[] = {"Accept: application/json", NULL};
    for (size_t i = 0; http && reqs && urls && k->nservers && i < k->n; i++) {
        char *esc = mars_eureka_escape_segment(k->v[i].id);
        urls[i] =
            esc ? mars_eureka_strdup_printf("%s/apps/%s/%s", sv->url, k->v[i].app, esc) : NULL;
        free(esc);
        if (!urls[i])
            continue;
        reqs[i] = (struct mars_http_req){.method = "DELETE",
                                         .url = urls[i],
                                         .headers = headers,
                                         .timeout_ns = k->timeout,
                                         .tls = &tls,
                                         .user = sv->user ? sv->user : k->username,
                                         .password = sv->user ? sv->password : k->password,
                                         .direct = true,
                                         .done = on_leftover_deleted,
                                         .data = &lo};
        if (mars_http_submit(http, &reqs[i]) == 0)
            lo.pending++;
    }
    int64_t deadline = mars_ev_clock_ns() + k->timeout + 500000000LL;
    while (lo.pending > 0 && mars_ev_clock_ns() < deadline)
        mars_ev_run_once(loop, 100000000);
    if (http) {
        mars_http_shutdown(http);
        while (mars_ev_pending(loop) > 0 && mars_ev_clock_ns() < deadline + 1000000000LL)
            mars_ev_run_once(loop, 50000000);
        mars_http_destroy(http);
    }
    if (loop)
        mars_ev_loop_destroy(loop);
    for (size_t i = 0; urls && i < k->n; i++)
        free(urls[i]);
    free(urls);
    free(reqs);
    kept_free(k);
}
