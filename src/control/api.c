/*
 * api.c - mars's admin HTTP API: the endpoints of DESIGN §7 on a core/admin.c server.
 *
 *   GET  /healthz            200 while every live event loop turns, else 503 + reason
 *   GET  /readyz             200 while running (api.readiness: sinks: and no sink is
 *                            failing beyond api.sink_failure_threshold), else 503 + reason
 *   GET  /metrics            Prometheus text 0.0.4: the engine's registry and families
 *   GET  /api/v1/components  JSON: per component id, type, kind, counters, buffer, last error
 *   POST /api/v1/reload      needs api.token as "Authorization: Bearer <token>" (compared
 *                            in constant time): 401 without credentials, 403 with wrong
 *                            ones or when no token is configured; then 202 when the
 *                            file is valid (mars drains and runs it, see engine.h), 400
 *                            with the problems (the running config is kept), 409 when a
 *                            stop or reload is already under way
 *   GET  /api/v1/config      JSON: the reloads asked of the running pipeline (SIGHUP, API,
 *                            Apollo): accepted, rejected, the last one's time and result,
 *                            and the problems of the last rejected one
 *   GET  /health, /health/<name>  health_check results, Spring style: 200 {"status":"UP"}
 *                            or 503 {"status":"DOWN",...}; 404 for an unknown name
 *
 * Deviation from DESIGN.md §1: the server runs on its own thread with its own libevent
 * event_base (core/admin.c), not on the control loop, because the control loop may be
 * io_uring. Handlers only read thread-safe state through observe.h.
 *
 * Thread: start/stop on the control thread; handlers on the API server's thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/log.h"
#include "core/metrics.h"
#include "config/config.h"
#include "control/api.h"
#include "engine/engine.h"
#include "engine/observe.h"

struct mars_api {
    struct mars_engine *e;
    struct mars_admin *srv;
    struct mars_obs *obs;
    const struct mars_api_conf *conf;
};

static void reply_reason(struct mars_admin_req *r, int code, const char *status, const char *reason,
                         const char *component)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        mars_admin_reply(r, 500, NULL, NULL);
        return;
    }
    evbuffer_add_printf(b, "{\"status\":\"%s\"", status);
    if (reason) {
        evbuffer_add(b, ",\"reason\":", 10);
        mars_json_string(b, reason);
    }
    if (component && *component) {
        evbuffer_add(b, ",\"component\":", 13);
        mars_json_string(b, component);
    }
    evbuffer_add(b, "}\n", 2);
    mars_admin_reply(r, code, "application/json", b);
    evbuffer_free(b);
}

static void on_healthz(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    char why[160];
    if (mars_obs_healthz(api->obs, why, sizeof(why)) == 0)
        reply_reason(r, 200, "ok", NULL, NULL);
    else
        reply_reason(r, 503, "unhealthy", why, NULL);
}

static void on_readyz(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    char why[256], comp[128];
    if (mars_obs_readyz(api->obs, why, sizeof(why), comp, sizeof(comp)) == 0)
        reply_reason(r, 200, "ready", NULL, NULL);
    else
        reply_reason(r, 503, "not ready", why, comp);
}

/* The API's own connection limits, after the registry's families. */
static int api_metrics_text(struct mars_api *api, struct evbuffer *b)
{
    struct mars_admin_stats st;
    mars_admin_stats(api->srv, &st);
    return evbuffer_add_printf(
               b,
               "# HELP mars_api_connections_closed_total Admin API connections closed by a "
               "limit: request_timeout (no whole request in time) or max_connections (evicted "
               "to make room).\n"
               "# TYPE mars_api_connections_closed_total counter\n"
               "mars_api_connections_closed_total{reason=\"request_timeout\"} %llu\n"
               "mars_api_connections_closed_total{reason=\"max_connections\"} %llu\n",
               (unsigned long long)st.timed_out, (unsigned long long)st.evicted) < 0
               ? -ENOMEM
               : 0;
}

static void on_metrics(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    struct evbuffer *b = evbuffer_new();
    if (!b || mars_metrics_write_text(mars_obs_metrics(api->obs), b) || api_metrics_text(api, b)) {
        if (b)
            evbuffer_free(b);
        mars_admin_reply_json(r, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    mars_admin_reply(r, 200, MARS_PROM_CONTENT_TYPE, b);
    evbuffer_free(b);
}

static void on_components(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    struct evbuffer *b = evbuffer_new();
    if (!b || mars_obs_components_json(api->obs, b)) {
        if (b)
            evbuffer_free(b);
        mars_admin_reply_json(r, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    mars_admin_reply(r, 200, "application/json", b);
    evbuffer_free(b);
}

/* Compares in time that depends only on the configured token's length. */
static bool token_equal(const char *given, const char *want)
{
    size_t glen = strlen(given), wlen = strlen(want);
    volatile unsigned char d = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        d |= (unsigned char)(want[i] ^ (i < glen ? given[i] : 0));
    return d == 0;
}

/* Each line of text as a JSON string, comma separated. */
static void add_json_lines(struct evbuffer *b, const char *text)
{
    bool first = true;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (n) {
            if (!first)
                evbuffer_add(b, ",", 1);
            mars_json_string_n(b, text, n);
            first = false;
        }
        text += n + (nl ? 1 : 0);
    }
}

static void on_reload(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    const char *auth = mars_admin_header(r, "Authorization");
    const char *token = api->conf->token;

    if (!token || !*token) {
        mars_admin_reply_json(r, 403,
                              "{\"error\":\"reload over the API is disabled; set "
                              "api.token to enable it\"}");
        return;
    }
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        mars_admin_add_header(r, "WWW-Authenticate", "Bearer");
        mars_admin_reply_json(r, 401, "{\"error\":\"missing bearer token\"}");
        return;
    }
    if (!token_equal(auth + 7, token)) {
        mars_warn("api", "POST /api/v1/reload with a wrong token refused");
        mars_admin_reply_json(r, 403, "{\"error\":\"wrong token\"}");
        return;
    }
    char *problems = NULL;
    int rc = mars_engine_reload(api->e, &problems);
    if (rc == 0) {
        mars_admin_reply_json(r, 202, "{\"status\":\"reloading\"}");
    } else if (rc == -EINVAL) {
        struct evbuffer *b = evbuffer_new();
        if (b) {
            evbuffer_add_printf(b, "{\"error\":\"the configuration has problems; the running "
                                   "one is kept\",\"problems\":[");
            add_json_lines(b, problems ? problems : "");
            evbuffer_add_printf(b, "]}");
            mars_admin_reply(r, 400, "application/json", b);
            evbuffer_free(b);
        } else {
            mars_admin_reply(r, 500, NULL, NULL);
        }
    } else if (rc == -EBUSY) {
        mars_admin_reply_json(r, 409, "{\"error\":\"mars is already stopping or reloading\"}");
    } else {
        mars_admin_reply_json(r, 501, "{\"error\":\"no configuration file to reload\"}");
    }
    free(problems);
}

static void on_config(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    struct mars_reload_status st;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        mars_admin_reply(r, 500, NULL, NULL);
        return;
    }
    mars_engine_reload_status(api->e, &st);
    evbuffer_add_printf(b,
                        "{\"reloads\":{\"accepted\":%llu,\"rejected\":%llu,\"last_unix_ms\":%lld,"
                        "\"last_ok\":%s,\"problems\":[",
                        (unsigned long long)st.accepted, (unsigned long long)st.rejected,
                        (long long)st.last_unix_ms, st.last_ok ? "true" : "false");
    add_json_lines(b, st.problems ? st.problems : "");
    evbuffer_add_printf(b, "]}}");
    mars_admin_reply(r, 200, "application/json", b);
    evbuffer_free(b);
    free(st.problems);
}

static void on_health(struct mars_admin_req *r, void *arg)
{
    struct mars_api *api = arg;
    const char *name = strcmp(r->path, "/health") == 0 ? NULL : r->path + strlen("/health/");
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        mars_admin_reply(r, 500, NULL, NULL);
        return;
    }
    int code = mars_health_json(api->obs, name, b);
    if (code == 404)
        mars_admin_reply_json(r, 404, "{\"error\":\"no such health check\"}");
    else
        mars_admin_reply(r, code, "application/json", b);
    evbuffer_free(b);
}

static int add_routes(struct mars_api *api)
{
    struct mars_admin *s = api->srv;
    int rc = mars_admin_route(s, "/healthz", false, MARS_HTTP_GET, on_healthz, api);
    rc = rc ? rc : mars_admin_route(s, "/readyz", false, MARS_HTTP_GET, on_readyz, api);
    rc = rc ? rc : mars_admin_route(s, "/metrics", false, MARS_HTTP_GET, on_metrics, api);
    rc = rc ? rc
            : mars_admin_route(s, "/api/v1/components", false, MARS_HTTP_GET, on_components, api);
    rc = rc ? rc : mars_admin_route(s, "/api/v1/reload", false, MARS_HTTP_POST, on_reload, api);
    rc = rc ? rc : mars_admin_route(s, "/api/v1/config", false, MARS_HTTP_GET, on_config, api);
    rc = rc ? rc : mars_admin_route(s, "/health", false, MARS_HTTP_GET, on_health, api);
    rc = rc ? rc : mars_admin_route(s, "/health/", true, MARS_HTTP_GET, on_health, api);
    return rc;
}

struct mars_api *mars_api_start(struct mars_engine *e, const char *address)
{
    const struct mars_api_conf *c = &mars_engine_config(e)->top.api;
    struct mars_api *api;

    if (!c->enabled)
        return NULL;
    api = calloc(1, sizeof(*api));
    if (!api) {
        mars_error("api", "the admin API is not available: out of memory");
        return NULL;
    }
    api->e = e;
    api->obs = mars_engine_obs(e);
    api->conf = c;
    api->srv = mars_admin_create(&(struct mars_admin_opts){
        .name = "api",
        .address = address && *address ? address : c->address,
        .max_connections = (unsigned)c->max_connections,
        .max_headers_size = c->max_headers_size,
        .max_body_size = c->max_body_size,
        .idle_timeout_s = 10,
        .request_timeout_ms = (uint64_t)c->request_timeout / 1000000u,
    });
    if (!api->srv || add_routes(api) || mars_admin_start(api->srv)) {
        mars_error("api", "the admin API is not available");
        mars_admin_destroy(api->srv);
        free(api);
        return NULL;
    }
    return api;
}

const char *mars_api_address(const struct mars_api *api)
{
    return mars_admin_address(api->srv);
}

void mars_api_stop(struct mars_api *api)
{
    if (!api)
        return;
    mars_admin_destroy(api->srv);
    free(api);
}
