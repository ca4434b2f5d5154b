/*
 * legacy.c - `mars convert-legacy`: the old mars-agent's YAML to a mars pipeline.
 *
 * The old file has one root key `mars` (worker_number, pid_file, core: env, name, http,
 * health, skywalking, promethean, apollo). Each job maps to components:
 *   core.http          -> api.address (so /health/<app> keeps its port)
 *   core.health[]      -> a health_check source (checks named after the app)
 *   core.promethean    -> an apm_socket source and a prometheus_exporter sink
 *   core.skywalking    -> a skywalking sink (protocol v6) the apm_socket answers from
 *   core.apollo        -> an apollo source and an apollo_files sink
 * Whatever does not carry over is listed in a comment at the top with its line and why;
 * settings whose meaning changes get a NOTE comment where they land. The old agent's
 * quirks are not copied: a health_timeout that is clearly milliseconds is converted as such
 * and flagged.
 *
 * The old file is read without ${VAR} expansion (the old agent had none) and every string
 * written is double-quoted with '$' doubled, so mars reads back exactly the old value.
 *
 * Thread: the main thread (a CLI command).
 */
#include "control/legacy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfg.h"
#include "core/grow.h"

/* A health_timeout at or above this many "seconds" is surely milliseconds (the old sample
 * used 7000): converted as milliseconds and flagged. */
#define MS_THRESHOLD 100.0

struct skipped {
    int line;
    char *text;
};

struct conv {
    const char *file;
    struct mars_diag *diag;
    unsigned errors;
    FILE *out; /* the pipeline, written into out_buf */
    char *out_buf;
    size_t out_len;
    struct skipped *skipped; /* the "not carried over" lines, printed in line order */
    size_t nskipped, cap_skipped;
    bool oom;
};

__attribute__((format(printf, 3, 4))) static void
fail(struct conv *c, const struct mars_cfg_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mars_diag_addv(c->diag, at ? at->file : c->file, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
    c->errors++;
}

/* A line of the "not carried over" comment, about the setting at `at`. */
__attribute__((format(printf, 3, 4))) static void
skip(struct conv *c, const struct mars_cfg_node *at, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0 || mars_grow(&c->skipped, &c->cap_skipped, c->nskipped + 1, sizeof(*c->skipped))) {
        if (n >= 0)
            free(text);
        c->oom = true;
        return;
    }
    c->skipped[c->nskipped++] = (struct skipped){.line = at ? at->line : 0, .text = text};
}

static int by_line(const void *a, const void *b)
{
    const struct skipped *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* ---- reading the old file ---- */

/* The scalar under key, NULL when absent or null; a non-scalar is an error. */
static const char *str_at(struct conv *c, const struct mars_cfg_node *map, const char *key)
{
    const struct mars_cfg_node *n = mars_cfg_get(map, key);
    if (!n || n->kind == MARS_CFG_NULL)
        return NULL;
    if (n->kind != MARS_CFG_SCALAR) {
        fail(c, n, "%s must be a single value, not a %s", key, mars_cfg_kind_name(n->kind));
        return NULL;
    }
    return n->str;
}

/* A number under key into *v; false when absent (or wrong, then an error). */
static bool num_at(struct conv *c, const struct mars_cfg_node *map, const char *key, double *v)
{
    const char *s = str_at(c, map, key);
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !isfinite(d) || d < 0) {
        fail(c, mars_cfg_get(map, key), "%s must be a non-negative number, got \"%s\"", key, s);
        return false;
    }
    *v = d;
    return true;
}

/* A whole number under key in [lo, hi]; false when absent or wrong (then an error). */
static bool int_at(struct conv *c, const struct mars_cfg_node *map, const char *key, long lo,
                   long hi, long *v)
{
    double d;
    if (!num_at(c, map, key, &d))
        return false;
    if (d != floor(d) || d < (double)lo || d > (double)hi) {
        fail(c, mars_cfg_get(map, key), "%s must be a whole number from %ld to %ld", key, lo, hi);
        return false;
    }
    *v = (long)d;
    return true;
}

static bool bool_at(struct conv *c, const struct mars_cfg_node *map, const char *key, bool def)
{
    const char *s = str_at(c, map, key);
    if (!s)
        return def;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1"))
        return true;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0"))
        return false;
    fail(c, mars_cfg_get(map, key), "%s must be true or false, got \"%s\"", key, s);
    return def;
}

/* The mapping under key, NULL when absent; anything else is an error. */
static const struct mars_cfg_node *map_at(struct conv *c, const struct mars_cfg_node *map,
                                          const char *key)
{
    const struct mars_cfg_node *n = mars_cfg_get(map, key);
    if (!n || n->kind == MARS_CFG_NULL)
        return NULL;
    if (n->kind != MARS_CFG_MAP) {
        fail(c, n, "%s must be a mapping, not a %s", key, mars_cfg_kind_name(n->kind));
        return NULL;
    }
    return n;
}

static const struct mars_cfg_node *seq_at(struct conv *c, const struct mars_cfg_node *map,
                                          const char *key)
{
    const struct mars_cfg_node *n = mars_cfg_get(map, key);
    if (!n || n->kind == MARS_CFG_NULL)
        return NULL;
    if (n->kind != MARS_CFG_SEQ) {
        fail(c, n, "%s must be a list, not a %s", key, mars_cfg_kind_name(n->kind));
        return NULL;
    }
    return n;
}

/* Keys of map not in known[] go to the "not carried over" list. */
static void unknown_keys(struct conv *c, const struct mars_cfg_node *map, const char *where,
                         const char *const *known)
{
    for (size_t i = 0; map && i < map->n; i++) {
        const char *k = map->keys[i]->str;
        bool ok = false;
        for (size_t j = 0; known[j] && !ok; j++)
            ok = strcmp(k, known[j]) == 0;
        if (!ok)
            skip(c, map->keys[i], "%s%s: not a setting the old agent read", where, k);
    }
}

/* ---- writing mars's file ---- */

/* A double-quoted YAML string that mars reads back as exactly s. */
static void put_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(o, "\\%c", *p);
        else if (*p == '$')
            fputs("$$", o);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(o, "\\x%02x", *p);
        else
            fputc(*p, o);
    }
    fputc('"', o);
}

/* A duration in seconds as mars writes it (7s, 1500ms). */
static void put_secs(FILE *o, double secs)
{
    double ms = round(secs * 1000);
    if (fmod(ms, 1000) == 0)
        fprintf(o, "%.0fs", ms / 1000);
    else
        fprintf(o, "%.0fms", ms < 1 ? 1 : ms);
}

/* ---- the jobs ---- */

struct outputs {
    bool health, apm, skywalking, apollo;
    const char *listen_ip; /* core.http */
    long listen_port;
    const char *metrics_path; /* core.promethean.http_path */
};

static void convert_http(struct conv *c, const struct mars_cfg_node *core, struct outputs *st)
{
    static const char *const known[] = {"http_ip", "http_port", "http_timeout", NULL};
    const struct mars_cfg_node *http = map_at(c, core, "http");
    /* the old loader read these from core itself too */
    const struct mars_cfg_node *from = http ? http : core;
    if (http)
        unknown_keys(c, http, "mars.core.http.", known);
    const char *ip = str_at(c, from, "http_ip");
    if (!ip && http)
        ip = str_at(c, core, "http_ip");
    long port = 11900;
    if (!int_at(c, from, "http_port", 1, 65535, &port) && http)
        int_at(c, core, "http_port", 1, 65535, &port);
    double timeout = 0;
    bool has_timeout = num_at(c, from, "http_timeout", &timeout) ||
                       (http && num_at(c, core, "http_timeout", &timeout));
    st->listen_ip = ip && *ip ? ip : "0.0.0.0";
    st->listen_port = port;

    FILE *o = c->out;
    fputs("# core.http: the admin API takes the old agent's port, so /health/<app> answers\n"
          "# where it did. It also serves mars's own /metrics and /api/v1.\n"
          "api:\n  address: ",
          o);
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(st->listen_ip, ':') ? "[%s]:%ld" : "%s:%ld", st->listen_ip,
             port);
    put_str(o, addr);
    fputc('\n', o);
    if (has_timeout) {
        if (timeout < 0.1 || timeout > 3600) {
            skip(c, mars_cfg_get(from, "http_timeout"),
                 "http_timeout: %g s is outside what mars takes (0.1 s to 1 h); default 5s kept",
                 timeout);
        } else {
            fputs("  request_timeout: ", o);
            put_secs(o, timeout);
            fputc('\n', o);
        }
    }
    fputc('\n', o);
}

/* One old health check; returns false when it had to be left out. */
static bool convert_check(struct conv *c, const struct mars_cfg_node *h, size_t idx)
{
    static const char *const known[] = {
        "app",         "health_way",     "health_path", "health_ip",     "health_port",
        "health_host", "health_timeout", "http_path",   "health_enable", NULL};
    FILE *o = c->out;
    if (h->kind != MARS_CFG_MAP) {
        fail(c, h, "core.health[%zu] must be a mapping with app and health_way", idx);
        return false;
    }
    unknown_keys(c, h, "mars.core.health[].", known);
    const char *app = str_at(c, h, "app");
    const char *way = str_at(c, h, "health_way");
    const char *path = str_at(c, h, "health_path");
    if (!app || !*app) {
        fail(c, h, "core.health[%zu] has no app", idx);
        return false;
    }
    if (strchr(app, '/')) {
        fail(c, mars_cfg_get(h, "app"), "app \"%s\" cannot name a /health/<app> route", app);
        return false;
    }
    bool pidfile = way && strcmp(way, "pid_file") == 0;
    if (!way || (!pidfile && strcmp(way, "http") != 0)) {
        fail(c, way ? mars_cfg_get(h, "health_way") : h,
             "health check '%s': health_way must be pid_file or http", app);
        return false;
    }
    if (!path || !*path) {
        fail(c, h, "health check '%s' has no health_path (the %s)", app,
             pidfile ? "pid file" : "URL path");
        return false;
    }

    fputs("      - name: ", o);
    put_str(o, app);
    fputc('\n', o);
    const char *route = str_at(c, h, "http_path");
    char want[300];
    snprintf(want, sizeof(want), "/health/%s", app);
    if (route && *route && strcmp(route, want) != 0)
        fprintf(o,
                "        # NOTE: the old route %s is not kept: mars serves this check at "
                "/health/%s\n",
                route, app);
    if (mars_cfg_get(h, "health_enable"))
        skip(c, mars_cfg_get(h, "health_enable"),
             "health_enable of '%s': the old agent ignored it too; the check runs", app);
    if (pidfile) {
        fputs("        type: pidfile\n        path: ", o);
        put_str(o, path);
        fputc('\n', o);
        static const char *const http_only[] = {"health_ip", "health_port", "health_host",
                                                "health_timeout", NULL};
        for (size_t i = 0; http_only[i]; i++)
            if (mars_cfg_get(h, http_only[i]))
                skip(c, mars_cfg_get(h, http_only[i]),
                     "%s of '%s': a pid_file check has no use for it", http_only[i], app);
    } else {
        const char *ip = str_at(c, h, "health_ip");
        long port = 80;
        bool has_port = int_at(c, h, "health_port", 1, 65535, &port);
        char url[1024];
        if (!ip || !*ip)
            ip = "127.0.0.1";
        snprintf(url, sizeof(url), strchr(ip, ':') ? "http://[%s]:%ld%s%s" : "http://%s:%ld%s%s",
                 ip, port, path[0] == '/' ? "" : "/", path);
        fputs("        type: http\n        url: ", o);
        put_str(o, url);
        fputc('\n', o);
        if (!has_port)
            fputs("        # NOTE: no health_port: port 80 assumed\n", o);
        fputs("        expect_status: \"200\"  # only 200 was healthy to the old agent\n", o);
        const char *host = str_at(c, h, "health_host");
        if (host && *host) {
            fputs("        headers:\n          Host: ", o);
            put_str(o, host);
            fputc('\n', o);
        }
        double t;
        if (num_at(c, h, "health_timeout", &t)) {
            if (t >= MS_THRESHOLD) {
                fprintf(o,
                        "        # NOTE: health_timeout %g is surely milliseconds (the old agent "
                        "read it as %g seconds)\n",
                        t, t);
                t /= 1000;
            }
            if (t <= 0) {
                fputs("        # NOTE: health_timeout 0 is no timeout; mars's default 2s applies\n",
                      o);
            } else {
                fputs("        timeout: ", o);
                put_secs(o, t);
                fputc('\n', o);
            }
        }
    }
    fputs("        interval: 5s\n        unhealthy_threshold: 1\n", o);
    return true;
}

static void convert_health(struct conv *c, const struct mars_cfg_node *core, struct outputs *st)
{
    const struct mars_cfg_node *list = seq_at(c, core, "health");
    if (!list || list->n == 0)
        return;
    FILE *o = c->out;
    fputs(
        "  # core.health: the old agent probed when /health/<app> was asked; mars probes every\n"
        "  # interval and answers from the last result (one failure is DOWN, as before).\n"
        "  # /health/<app> answers 200 {\"status\":\"UP\"}, or 503 {\"status\":\"DOWN\"} (the old\n"
        "  # agent answered DOWN with 200: a caller that reads the body sees no change).\n"
        "  health:\n    type: health_check\n    checks:\n",
        o);
    size_t kept = 0;
    for (size_t i = 0; i < list->n; i++) {
        const struct mars_cfg_node *h = list->vals[i];
        const char *app = h->kind == MARS_CFG_MAP ? str_at(c, h, "app") : NULL;
        bool dup = false;
        for (size_t j = 0; j < i && app && !dup; j++) {
            const struct mars_cfg_node *p = list->vals[j];
            const char *other = p->kind == MARS_CFG_MAP ? str_at(c, p, "app") : NULL;
            dup = other && strcmp(other, app) == 0;
        }
        if (dup) {
            fail(c, mars_cfg_get(h, "app"), "two health checks for app '%s'", app);
            continue;
        }
        kept += convert_check(c, h, i);
    }
    fputc('\n', o);
    st->health = kept > 0;
}

static void convert_promethean(struct conv *c, const struct mars_cfg_node *core, struct outputs *st,
                               const char *skywalking)
{
    static const char *const known[] = {"unix_path",
                                        "unix_client_max_buffer",
                                        "http_path",
                                        "wheel_idle_time",
                                        "wheel_check_interval",
                                        "max_connection",
                                        NULL};
    const struct mars_cfg_node *p = map_at(c, core, "promethean");
    if (!p)
        return;
    unknown_keys(c, p, "mars.core.promethean.", known);
    FILE *o = c->out;
    fputs("  # core.promethean: the PHP APM socket. Register requests, HTTP spans and business\n"
          "  # metrics as before; both the old agent's records and SkyAPM 3.x's are understood.\n"
          "  apm:\n    type: apm_socket\n",
          o);
    const char *path = str_at(c, p, "unix_path");
    if (path && *path) {
        fputs("    path: ", o);
        put_str(o, path);
        fputc('\n', o);
    }
    long v;
    if (int_at(c, p, "max_connection", 1, 1000000, &v))
        fprintf(o, "    max_connections: %ld\n", v);
    if (int_at(c, p, "unix_client_max_buffer", 256, 64L << 20, &v))
        fprintf(o, "    max_record_bytes: %ldB  # unix_client_max_buffer\n", v);
    double idle;
    if (num_at(c, p, "wheel_idle_time", &idle)) {
        if (idle < 0.001 || idle > 86400) {
            skip(c, mars_cfg_get(p, "wheel_idle_time"),
                 "wheel_idle_time: %g s is outside 1 ms to 1 d; default 60s kept", idle);
        } else {
            fputs("    idle_timeout: ", o);
            put_secs(o, idle);
            fputs("  # wheel_idle_time\n", o);
        }
    }
    if (mars_cfg_get(p, "wheel_check_interval"))
        skip(c, mars_cfg_get(p, "wheel_check_interval"),
             "wheel_check_interval: mars closes each idle connection on its own timer");
    if (skywalking)
        fprintf(o, "    skywalking: %s  # register replies carry the OAP's ids\n", skywalking);
    fputc('\n', o);
    st->apm = true;
}

/* Returns the sink id when a skywalking sink is written, else NULL. */
static const char *convert_skywalking(struct conv *c, const struct mars_cfg_node *core,
                                      const char *name, FILE *sinks)
{
    static const char *const known[] = {"grpc", "enable_reg", "heartbeat_time", NULL};
    const struct mars_cfg_node *s = map_at(c, core, "skywalking");
    if (!s)
        return NULL;
    unknown_keys(c, s, "mars.core.skywalking.", known);
    const char *grpc = str_at(c, s, "grpc");
    bool reg = bool_at(c, s, "enable_reg", false);
    if (!reg) {
        skip(c, s,
             "core.skywalking: enable_reg is off, so the old agent did not register; the APM "
             "socket answers with local ids");
        return NULL;
    }
    if (!grpc || !*grpc) {
        fail(c, s, "core.skywalking has enable_reg but no grpc address (host:port)");
        return NULL;
    }
    fputs("  # core.skywalking: registers with the OAP over the pre-v8 protocol, as the old\n"
          "  # agent did; the APM socket's register replies come from it.\n"
          "  skywalking:\n    type: skywalking\n    inputs: []\n    address: ",
          sinks);
    put_str(sinks, grpc);
    fputs("\n    service: ", sinks);
    if (name && *name) {
        put_str(sinks, name);
        fputc('\n', sinks);
    } else {
        fputs("\"mars-agent\"  # NOTE: core.name was not set; name the service\n", sinks);
    }
    fputs("    protocol: v6\n", sinks);
    double hb;
    if (num_at(c, s, "heartbeat_time", &hb)) {
        if (hb < 1 || hb > 3600) {
            skip(c, mars_cfg_get(s, "heartbeat_time"),
                 "heartbeat_time: %g s is outside 1 s to 1 h; default 30s kept", hb);
        } else {
            fputs("    keepalive_interval: ", sinks);
            put_secs(sinks, hb);
            fputs("  # heartbeat_time\n", sinks);
        }
    }
    fputc('\n', sinks);
    return "skywalking";
}

static void convert_apollo(struct conv *c, const struct mars_cfg_node *core, struct outputs *st)
{
    static const char *const known[] = {"server", "port", "api", "app", NULL};
    static const char *const app_known[] = {"appId", "cluster", "env", "localNamespaces", NULL};
    const struct mars_cfg_node *a = map_at(c, core, "apollo");
    if (!a)
        return;
    unknown_keys(c, a, "mars.core.apollo.", known);
    const char *server = str_at(c, a, "server");
    long port = 8080;
    int_at(c, a, "port", 1, 65535, &port);
    const struct mars_cfg_node *apps = seq_at(c, a, "app");
    if (!server || !*server) {
        fail(c, a, "core.apollo has no server (the config service host)");
        return;
    }
    if (!apps || apps->n == 0) {
        fail(c, a, "core.apollo has no app list");
        return;
    }
    if (mars_cfg_get(a, "api"))
        skip(c, mars_cfg_get(a, "api"),
             "core.apollo.api: the portal address; the old agent did not use it either");
    FILE *o = c->out;
    fputs("  # core.apollo: follows the namespaces (long poll) and keeps the last good copy for\n"
          "  # outages; the apollo_files sink writes them where apps read them.\n"
          "  apollo:\n    type: apollo\n    config_service: [",
          o);
    char url[600];
    snprintf(url, sizeof(url), strchr(server, ':') ? "http://[%s]:%ld" : "http://%s:%ld", server,
             port);
    put_str(o, url);
    fputs("]\n    apps:\n", o);
    for (size_t i = 0; i < apps->n; i++) {
        const struct mars_cfg_node *ap = apps->vals[i];
        if (ap->kind != MARS_CFG_MAP) {
            fail(c, ap, "core.apollo.app[%zu] must be a mapping with appId", i);
            continue;
        }
        unknown_keys(c, ap, "mars.core.apollo.app[].", app_known);
        const char *id = str_at(c, ap, "appId");
        if (!id || !*id) {
            fail(c, ap, "core.apollo.app[%zu] has no appId", i);
            continue;
        }
        fputs("      - app_id: ", o);
        put_str(o, id);
        fputc('\n', o);
        const char *cluster = str_at(c, ap, "cluster");
        if (cluster && *cluster) {
            fputs("        cluster: ", o);
            put_str(o, cluster);
            fputc('\n', o);
        }
        const char *env = str_at(c, ap, "env");
        if (env && *env)
            skip(c, mars_cfg_get(ap, "env"),
                 "env %s of app %s: Apollo picks the environment by the config service mars "
                 "asks (server), not by a parameter",
                 env, id);
        const struct mars_cfg_node *ns = seq_at(c, ap, "localNamespaces");
        if (ns && ns->n > 0) {
            fputs("        namespaces: [", o);
            for (size_t j = 0; j < ns->n; j++) {
                if (ns->vals[j]->kind != MARS_CFG_SCALAR) {
                    fail(c, ns->vals[j], "localNamespaces holds namespace names");
                    continue;
                }
                if (j)
                    fputs(", ", o);
                put_str(o, ns->vals[j]->str);
            }
            fputs("]\n", o);
        }
    }
    fputc('\n', o);
    st->apollo = true;
}

/* ---- the whole file ---- */

static void write_sinks(struct conv *c, const struct outputs *st, const char *sky_text)
{
    FILE *o = c->out;
    fputs("sinks:\n", o);
    if (st->apm || st->health) {
        if (st->apm)
            fputs("  # The old agent served the APM metrics on its admin port, where mars serves "
                  "its own\n"
                  "  # /metrics; they move one port up. NOTE: point the Prometheus scrape (or "
                  "the pod's\n"
                  "  # prometheus.io/port annotation) here.\n",
                  o);
        if (st->health)
            fputs("  # The health checks' results as metrics (mars_health_check_*; new, the old "
                  "agent "
                  "had none).\n",
                  o);
        fprintf(o, "  metrics:\n    type: prometheus_exporter\n    inputs: [%s%s%s]\n",
                st->apm ? "apm" : "", st->apm && st->health ? ", " : "",
                st->health ? "health" : "");
        char addr[300];
        long port = st->listen_port < 65535 ? st->listen_port + 1 : st->listen_port - 1;
        snprintf(addr, sizeof(addr), strchr(st->listen_ip, ':') ? "[%s]:%ld" : "%s:%ld",
                 st->listen_ip, port);
        fputs("    address: ", o);
        put_str(o, addr);
        fputc('\n', o);
        if (st->metrics_path && strcmp(st->metrics_path, "/metrics") != 0) {
            fputs("    path: ", o);
            put_str(o, st->metrics_path);
            fputc('\n', o);
        }
        fputc('\n', o);
    }
    if (sky_text)
        fputs(sky_text, o);
    if (st->apollo)
        fputs("  # NOTE: the old config does not say where its files went: dir is the Apollo Java\n"
              "  # client's own cache (/opt/data/<appId>/config-cache); set it to what apps read.\n"
              "  apollo_files:\n    type: apollo_files\n    inputs: [apollo]\n"
              "    layout: java_cache\n    dir: /opt/data\n\n",
              o);
}

static int convert(struct conv *c, const struct mars_cfg_doc *doc)
{
    static const char *const top_known[] = {"worker_number", "pid_file", "core", NULL};
    static const char *const core_known[] = {"env",        "name",         "http",   "http_ip",
                                             "http_port",  "http_timeout", "health", "skywalking",
                                             "promethean", "apollo",       NULL};
    const struct mars_cfg_node *root = doc->root;
    const struct mars_cfg_node *m =
        root && root->kind == MARS_CFG_MAP ? mars_cfg_get(root, "mars") : NULL;
    if (!m || m->kind != MARS_CFG_MAP) {
        fail(c, root,
             "not a mars-agent configuration: it has no root key 'mars' holding a mapping");
        return -EINVAL;
    }
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->keys[i]->str, "mars") != 0)
            skip(c, root->keys[i], "%s: not a setting the old agent read", root->keys[i]->str);
    unknown_keys(c, m, "mars.", top_known);
    const struct mars_cfg_node *core = map_at(c, m, "core");
    if (!core) {
        fail(c, m, "mars.core is missing: the old agent required it");
        return -EINVAL;
    }
    unknown_keys(c, core, "mars.core.", core_known);

    struct outputs st = {0};
    long workers = 0;
    if (int_at(c, m, "worker_number", 1, 256, &workers))
        fprintf(c->out, "runtime:\n  workers: %ld  # worker_number\n\n", workers);
    if (mars_cfg_get(m, "pid_file"))
        skip(c, mars_cfg_get(m, "pid_file"),
             "pid_file: mars keeps no pid file; one mars per node is the DaemonSet's or the "
             "systemd unit's job");
    const char *env = str_at(c, core, "env");
    if (env)
        skip(c, mars_cfg_get(core, "env"),
             "core.env %s: mars has no deployment environment setting; name it in the "
             "service or the Apollo config service you point at",
             env);
    const char *name = str_at(c, core, "name");
    convert_http(c, core, &st);

    /* sinks are written after sources, but the skywalking sink decides the apm source's
     * `skywalking:` line, so it is built first into its own buffer */
    char *sky_buf = NULL;
    size_t sky_len = 0;
    FILE *sky = open_memstream(&sky_buf, &sky_len);
    if (!sky)
        return -ENOMEM;
    const char *sky_id = convert_skywalking(c, core, name, sky);
    fclose(sky);
    if (name && !sky_id)
        skip(c, mars_cfg_get(core, "name"),
             "core.name %s: it named the SkyWalking service, and SkyWalking is not "
             "registered",
             name);

    fputs("sources:\n", c->out);
    long sources_at = ftell(c->out);
    convert_health(c, core, &st);
    convert_promethean(c, core, &st, sky_id);
    const struct mars_cfg_node *p = mars_cfg_get(core, "promethean");
    st.metrics_path = p && p->kind == MARS_CFG_MAP ? str_at(c, p, "http_path") : NULL;
    convert_apollo(c, core, &st);
    if (ftell(c->out) == sources_at)
        fail(c, core, "nothing to convert: core has no health, promethean or apollo section");
    else
        write_sinks(c, &st, sky_id ? sky_buf : NULL);
    free(sky_buf);
    return c->errors ? -EINVAL : 0;
}

int mars_legacy_convert(const char *path, FILE *out, struct mars_diag *diag)
{
    struct conv c = {.file = path, .diag = diag};
    struct mars_cfg_doc *doc = mars_cfg_load_file_literal(path, diag);
    if (!doc)
        return -EINVAL;
    c.out = open_memstream(&c.out_buf, &c.out_len);
    int rc = c.out ? convert(&c, doc) : -ENOMEM;
    if (c.out)
        fclose(c.out);
    if (rc == 0 && c.oom)
        rc = -ENOMEM;
    if (rc == 0) {
        fprintf(out,
                "# mars configuration converted by `mars convert-legacy` from %s\n"
                "# (the old mars-agent). Read every NOTE below; `mars validate -c` this file "
                "checks the rest.\n",
                path);
        if (c.nskipped)
            fputs("#\n# Not carried over:\n", out);
        qsort(c.skipped, c.nskipped, sizeof(*c.skipped), by_line);
        for (size_t i = 0; i < c.nskipped; i++)
            fprintf(out, "#   line %d: %s\n", c.skipped[i].line, c.skipped[i].text);
        fputc('\n', out);
        fwrite(c.out_buf, 1, c.out_len, out);
    } else if (rc == -ENOMEM) {
        mars_diag_add(diag, path, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < c.nskipped; i++)
        free(c.skipped[i].text);
    free(c.skipped);
    free(c.out_buf);
    mars_cfg_doc_destroy(doc);
    return rc;
}
