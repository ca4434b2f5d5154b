/*
 * apm_socket.c - the `apm_socket` source: the unix socket PHP APM extensions write to
 * (SkyAPM-php-sdk 3.x and the seed agent's "RIG" records, shared/protocols.md §14).
 * Options, listener, connections and register replies here; trace and business metric
 * records are decoded in apm_socket_records.c.
 *
 * Listener: a unix stream socket at `path` (a stale socket file is replaced, a file that
 * is not a socket is left alone and start fails), chmod'ed to `mode` and chgrp'ed to
 * `group`; one multishot accept stays armed, and a 1 s tick closes idle connections and
 * re-arms accept after a failure. A connection beyond max_connections is closed at once
 * (counted under errors{error_type="limit"}).
 *
 * Records: lines whose first byte is the type. A client may send one record per connection
 * (SkyAPM) or many (the seed). Each connection reads into its own buffer of at most
 * max_record_bytes + 1 bytes; a line that does not fit is counted (too_long) and skipped up
 * to its newline, and the connection goes on. Bad records (unknown type, bad JSON, missing
 * fields) are counted by reason and logged rate-limited; none closes the connection.
 *
 *   0 register  answered at once with no terminator: `appId,instanceId,uuid` (SkyAPM v6/7),
 *               `service,serviceInstance,uuid` (SkyAPM v8) or `instanceId,pid,uuid` (the
 *               seed). With `skywalking` set, ids come from that sink, which registers
 *               each app_code as a service in the background (an empty reply until the
 *               OAP has answered: the client asks again on its next request, as with
 *               SkyAPM's own agent); otherwise mars derives stable ids from the host
 *               name, app_code and pid.
 *   1 trace     HTTP request and response size histograms; a SkyAPM segment also becomes
 *               one trace event (MARS_EVF_TRACE) for the skywalking sink
 *               (apm_socket_records.c)
 *   2 business  `[RIG:BIZ]={...}` counters, gauges, histograms (apm_socket_records.c)
 *
 * The metric events of one read form one batch, emitted at the end of the read. Nothing
 * here can be replayed, so acknowledgements only count; while the pipeline is paused
 * (backpressure) connections stop reading and resume() re-arms them.
 *
 * Thread: the source's worker (one instance; every connection on that worker).
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/hash.h"
#include "core/log.h"
#include "apm_socket_internal.h"
#include "sinks/skywalking.h"

#define TICK_NS 1000000000LL
#define BUF_MIN 4096u
#define OUT_CAP 1024u

static const char *const protocol_names[] = {"skyapm", "rig", "auto", NULL};

#define OFF(f) offsetof(struct apm_conf, f)
static const struct mars_opt apm_options[] = {
    {.name = "path",
     .type = MARS_OPT_STRING,
     .offset = OFF(path),
     .def = "/tmp/sky-agent.sock",
     .desc = "Unix stream socket the PHP extension writes to (SkyAPM's skywalking.sock_path); "
             "a stale socket file there is replaced."},
    {.name = "mode",
     .type = MARS_OPT_STRING,
     .offset = OFF(mode),
     .def = "0660",
     .desc = "Permissions of the socket file, in octal."},
    {.name = "group",
     .type = MARS_OPT_STRING,
     .offset = OFF(group),
     .desc = "Group the socket file is given to (for example the php-fpm workers' group); "
             "unset keeps mars's group."},
    {.name = "max_connections",
     .type = MARS_OPT_INT,
     .offset = OFF(max_connections),
     .def = "4096",
     .min = 1,
     .max = 1000000,
     .desc = "Most open connections; one more is closed at once and counted."},
    {.name = "max_record_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_record_bytes),
     .def = "64KiB",
     .min = 256,
     .max = (int64_t)64 << 20,
     .desc = "Longest record (one line); a longer one is skipped and counted, the connection "
             "goes on."},
    {.name = "idle_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(idle_timeout),
     .def = "60s",
     .min = 1000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "A connection that sends nothing for this long is closed."},
    {.name = "protocol",
     .type = MARS_OPT_ENUM,
     .offset = OFF(protocol),
     .def = "auto",
     .choices = protocol_names,
     .desc = "How register requests are answered: skyapm (`appId,instanceId,uuid`, v8 "
             "`service,serviceInstance,uuid`), rig (`instanceId,pid,uuid`), or auto (skyapm "
             "when the request has `version` and no `url`)."},
    {.name = "skywalking",
     .type = MARS_OPT_STRING,
     .offset = OFF(skywalking),
     .desc = "Id of a skywalking sink whose registration answers register requests; unset: "
             "mars makes stable local ids."},
    {.name = "latency_buckets",
     .type = MARS_OPT_LIST,
     .offset = OFF(latency_buckets),
     .def = "[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20]",
     .desc = "Upper bounds in seconds of the request duration histograms (and of business "
             "histograms without `sla`), increasing."},
    {.name = "size_buckets",
     .type = MARS_OPT_LIST,
     .offset = OFF(size_buckets),
     .def = "[1024, 2048, 4096, 8192, 15360]",
     .desc = "Upper bounds in bytes of the response size histograms, increasing."},
    {.name = "uri_patterns",
     .type = MARS_OPT_LIST,
     .offset = OFF(uri_patterns),
     .desc = "Route templates such as /users/{id}/orders or /static/*: a request path that "
             "matches one segment by segment gets it as its `uri` label."},
    {.name = "max_series",
     .type = MARS_OPT_INT,
     .offset = OFF(max_series),
     .def = "1000",
     .min = 1,
     .max = 10000000,
     .desc = "Most label sets per metric name; samples of new ones beyond it are dropped and "
             "counted."},
    {.name = NULL},
};

struct apm;

struct aconn {
    struct aconn *next, *prev;
    struct apm *a;
    int fd;
    bool receiving, sending, closing, eof, discarding;
    struct mars_ev_op op_recv, op_send;
    char *buf;
    size_t len, cap;
    char out[OUT_CAP];
    size_t olen, osent;
    int64_t last_ns;
};

struct apm {
    struct mars_source *src;
    const struct apm_conf *conf;
    const char *id;
    int lfd;
    bool accepting, ticking, accept_failed, stopping, bound;
    struct mars_ev_op op_accept, op_tick;
    struct aconn *conns;
    unsigned nopen;
    struct apm_records rec;
    char host[128];
};

static void maybe_finished(struct apm *a);

static struct mars_stats *stats(struct apm *a)
{
    return mars_source_stats(a->src);
}

static int check_bounds(const struct mars_strlist *l, const char *opt,
                        const struct mars_cfg_node *node, struct mars_diag *diag)
{
    double b[APM_MAX_BOUNDS];
    size_t bad;
    if (mars_apm_parse_bounds(l, b, &bad) >= 0)
        return 0;
    const struct mars_cfg_node *n = mars_cfg_item_at(node, opt, bad);
    mars_diag_add(diag, n->file, n->line, n->col,
                  "option '%s': at most %d increasing numbers (entry %zu is not)", opt,
                  APM_MAX_BOUNDS, bad);
    return -EINVAL;
}

static int apm_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct apm_conf *c = conf;
    int rc = check_bounds(&c->latency_buckets, "latency_buckets", node, diag);
    rc |= check_bounds(&c->size_buckets, "size_buckets", node, diag);
    char *end;
    long mode = strtol(c->mode, &end, 8);
    if (end == c->mode || *end || mode < 0 || mode > 07777) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "mode", NULL);
        mars_diag_add(diag, n->file, n->line, n->col, "option 'mode': '%s' is not an octal mode",
                      c->mode);
        rc = -EINVAL;
    }
    if (strlen(c->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "path", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "option 'path': longer than a unix socket "
                      "path may be (107 bytes)");
        rc = -EINVAL;
    }
    return rc ? -EINVAL : 0;
}

/* ---- register replies ---- */

/* Stable ids of (app_code, pid) on this host: the same answer every time and after a
 * restart, so a php-fpm worker keeps its identity. */
static void local_ids(struct apm *a, const char *app, long pid, int32_t *app_id, int32_t *inst_id,
                      char *uuid, size_t cap)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "%s\n%s\n%ld", a->host, app, pid);
    size_t kl = n < 0 ? 0 : (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1;
    uint64_t h1 = mars_hash64(key, kl), h2 = mars_hash64(key + 1, kl ? kl - 1 : 0) ^ h1;
    *app_id = (int32_t)(mars_hash64(app, strlen(app)) % 2147483646u) + 1;
    *inst_id = (int32_t)(h1 % 2147483646u) + 1;
    snprintf(uuid, cap, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(h1 >> 32),
             (unsigned)(h1 >> 16) & 0xffff, (unsigned)h1 & 0xfff,
             (unsigned)((h2 >> 48) & 0x3fff) | 0x8000,
             (unsigned long long)(h2 & 0xffffffffffffULL));
}

/* The reply to a register body (JSON after the `0`): written into out (possibly empty).
 * Returns 0, or an enum apm_bad + 1. */
static int register_reply(struct apm *a, const char *s, size_t n, char *out, size_t cap)
{
    struct mars_value v;
    char app[256], uuid[48];
    double pid, version = 0;
    uint32_t len;
    out[0] = '\0';
    if (mars_json_validate(s, n, 64, NULL) != MARS_JSON_OK)
        return APM_BAD_JSON + 1;
    if (!mars_json_object_get(s, n, "app_code", 8, &v) || v.kind != MARS_FIELD_STRING ||
        !mars_json_object_get(s, n, "pid", 3, &v) || !mars_value_number(&v, &pid))
        return APM_BAD_MISSING + 1;
    mars_json_object_get(s, n, "app_code", 8, &v);
    const char *t = mars_value_text(&v, &a->rec.scratch, &a->rec.scap, &len);
    if (!t || len == 0)
        return APM_BAD_MISSING + 1;
    len = len < sizeof(app) - 1 ? len : (uint32_t)sizeof(app) - 1;
    memcpy(app, t, len);
    app[len] = '\0';
    if (strchr(app, ','))
        return APM_BAD_NAME + 1; /* the reply is comma-separated */
    bool has_version =
        mars_json_object_get(s, n, "version", 7, &v) && mars_value_number(&v, &version);
    bool has_url = mars_json_object_get(s, n, "url", 3, &v);
    enum apm_protocol form = (enum apm_protocol)a->conf->protocol;
    if (form == APM_PROTO_AUTO)
        form = has_version && !has_url ? APM_PROTO_SKYAPM : APM_PROTO_RIG;

    int32_t app_id, inst_id;
    local_ids(a, app, (long)pid, &app_id, &inst_id, uuid, sizeof(uuid));
    struct mars_skywalking_ids ids;
    bool sw = a->conf->skywalking != NULL;
    int rc =
        sw ? mars_skywalking_app_ids(mars_source_obs(a->src), a->conf->skywalking, app, &ids) : 0;
    if (rc == -ENOENT) {
        MARS_LOG_RL(MARS_LOG_WARN, a->id, "skywalking sink '%s' is not running: empty replies",
                    a->conf->skywalking);
        return 0;
    }
    if (rc == -ENOSPC) {
        MARS_LOG_RL(MARS_LOG_WARN, a->id,
                    "skywalking sink '%s' registers max_services apps already: app %s gets "
                    "empty replies",
                    a->conf->skywalking, app);
        return 0;
    }
    if (form == APM_PROTO_RIG) {
        if (sw && (!ids.registered || (ids.protocol == 6 && !ids.instance_id)))
            return 0;
        snprintf(out, cap, "%ld,%ld,%s",
                 sw && ids.protocol == 6 ? (long)ids.instance_id : (long)inst_id, (long)pid, uuid);
    } else if (version >= 8) {
        if (sw && !ids.registered)
            return 0;
        if (sw)
            snprintf(out, cap, "%s,%s,%s", ids.service, ids.instance, uuid);
        else
            snprintf(out, cap, "%s,%s@%s,%s", app, uuid, a->host, uuid);
    } else {
        if (sw && (!ids.registered || !ids.service_id || !ids.instance_id))
            return 0;
        snprintf(out, cap, "%ld,%ld,%s", (long)(sw ? ids.service_id : app_id),
                 (long)(sw ? ids.instance_id : inst_id), uuid);
    }
    return 0;
}

/* ---- connections ---- */

static void conn_arm(struct aconn *c);
static void conn_flush(struct aconn *c);

static void conn_maybe_free(struct aconn *c)
{
    if (!c->closing || c->receiving || c->sending)
        return;
    struct apm *a = c->a;
    close(c->fd);
    a->nopen--;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->buf);
    free(c);
    maybe_finished(a);
}

static void conn_close(struct aconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct mars_ev_loop *loop = mars_source_loop(c->a->src);
    if (c->receiving)
        mars_ev_cancel(loop, &c->op_recv);
    if (c->sending && c->a->stopping)
        mars_ev_cancel(loop, &c->op_send);
    conn_maybe_free(c);
}

static void on_send(struct mars_ev_op *op, int res)
{
    struct aconn *c = op->data;
    c->sending = false;
    if (res > 0) {
        c->osent += (size_t)res;
    } else if (res != -EAGAIN && res != -EINTR) {
        c->olen = c->osent = 0; /* the client is gone, and its reply with it */
        conn_close(c);
    }
    if (!c->a->stopping)
        conn_flush(c); /* the rest of a short send, even while closing after EOF */
    conn_maybe_free(c);
}

static void conn_flush(struct aconn *c)
{
    if (c->sending || c->osent == c->olen) {
        if (c->osent == c->olen)
            c->olen = c->osent = 0;
        return;
    }
    mars_ev_prep_send(&c->op_send, c->fd, c->out + c->osent, c->olen - c->osent, on_send, c);
    if (mars_ev_submit(mars_source_loop(c->a->src), &c->op_send) == 0)
        c->sending = true;
    else
        c->olen = c->osent = 0;
}

static void handle_record(struct aconn *c, struct mars_batch **b, const char *s, size_t n,
                          int64_t ts)
{
    struct apm *a = c->a;
    int rc;
    if (n && s[n - 1] == '\r')
        n--;
    if (n == 0)
        return;
    if (s[0] == '0') {
        char reply[OUT_CAP];
        rc = register_reply(a, s + 1, n - 1, reply, sizeof(reply));
        size_t rl = strlen(reply);
        if (rc == 0 && rl && c->olen + rl <= OUT_CAP) {
            memcpy(c->out + c->olen, reply, rl);
            c->olen += rl;
            conn_flush(c);
        }
    } else if (s[0] == '1' || s[0] == '2') {
        if (!*b && !(*b = mars_source_batch(a->src, 16))) {
            mars_stat_add(&stats(a)->errors[MARS_ERR_MEMORY], 1);
            return;
        }
        rc = s[0] == '1' ? mars_apm_record_trace(&a->rec, *b, s + 1, n - 1, ts)
                         : mars_apm_record_biz(&a->rec, *b, s + 1, n - 1, ts);
        if (rc < 0) {
            mars_stat_add(&stats(a)->errors[MARS_ERR_MEMORY], 1);
            return;
        }
    } else {
        rc = APM_BAD_TYPE + 1;
    }
    if (rc > 0) {
        mars_apm_bad(&a->rec, (enum apm_bad)(rc - 1));
        mars_stat_add(&stats(a)->errors[MARS_ERR_PARSE], 1);
        MARS_LOG_RL(MARS_LOG_WARN, a->id, "record refused (%s): %.*s",
                    mars_apm_bad_name((enum apm_bad)(rc - 1)), (int)(n < 80 ? n : 80), s);
        return;
    }
    mars_mseries_add(a->rec.records, MARS_METRICS_SHARED, 1);
}

/* Handles every complete line in c->buf; keeps the tail. */
static void conn_lines(struct aconn *c)
{
    struct apm *a = c->a;
    struct mars_batch *b = NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ts = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    size_t start = 0;
    for (;;) {
        char *nl = memchr(c->buf + start, '\n', c->len - start);
        if (!nl)
            break;
        size_t end = (size_t)(nl - c->buf);
        if (c->discarding)
            c->discarding = false; /* the end of an over-long record */
        else
            handle_record(c, &b, c->buf + start, end - start, ts);
        start = end + 1;
    }
    if (start > 0) {
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
    }
    if (c->len > a->conf->max_record_bytes) {
        if (!c->discarding) {
            mars_apm_bad(&a->rec, APM_BAD_TOO_LONG);
            mars_stat_add(&stats(a)->errors[MARS_ERR_OVERSIZE], 1);
            MARS_LOG_RL(MARS_LOG_WARN, a->id, "record longer than max_record_bytes (%llu): skipped",
                        (unsigned long long)a->conf->max_record_bytes);
        }
        c->discarding = true;
        c->len = 0;
    }
    if (b) {
        if (b->n)
            mars_source_emit(a->src, b);
        else
            mars_batch_release(b);
    }
}

static void on_recv(struct mars_ev_op *op, int res)
{
    struct aconn *c = op->data;
    struct apm *a = c->a;
    c->receiving = false;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (res > 0) {
        c->len += (size_t)res;
        c->last_ns = mars_ev_now(mars_source_loop(a->src));
        conn_lines(c);
        conn_arm(c);
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        conn_arm(c);
        return;
    }
    if (res == 0 && c->len > 0 && !c->discarding) {
        mars_apm_bad(&a->rec, APM_BAD_PARTIAL);
        mars_stat_add(&stats(a)->errors[MARS_ERR_PARSE], 1);
    }
    c->eof = true;
    /* the reply (if any) still goes out: close once it has */
    c->closing = true;
    conn_flush(c);
    conn_maybe_free(c);
}

static void conn_arm(struct aconn *c)
{
    struct apm *a = c->a;
    if (c->receiving || c->closing || a->stopping || mars_source_paused(a->src))
        return;
    size_t want = c->len + BUF_MIN;
    size_t limit = a->conf->max_record_bytes + 1;
    if (c->cap < limit && c->cap - c->len < BUF_MIN / 2) {
        size_t cap = c->cap ? 2 * c->cap : BUF_MIN;
        cap = cap < want ? want : cap;
        cap = cap > limit + BUF_MIN ? limit + BUF_MIN : cap;
        char *p = realloc(c->buf, cap);
        if (!p) {
            mars_stat_add(&stats(a)->errors[MARS_ERR_MEMORY], 1);
            conn_close(c);
            return;
        }
        c->buf = p;
        c->cap = cap;
    }
    mars_ev_prep_recv(&c->op_recv, c->fd, c->buf + c->len, c->cap - c->len, on_recv, c);
    if (mars_ev_submit(mars_source_loop(a->src), &c->op_recv)) {
        conn_close(c);
        return;
    }
    c->receiving = true;
}

static void conn_start(struct apm *a, int fd)
{
    if (a->nopen >= (unsigned)a->conf->max_connections) {
        close(fd);
        mars_stat_add(&stats(a)->errors[MARS_ERR_LIMIT], 1);
        MARS_LOG_RL(MARS_LOG_WARN, a->id, "max_connections (%lld) open: connection refused",
                    (long long)a->conf->max_connections);
        return;
    }
    struct aconn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        mars_stat_add(&stats(a)->errors[MARS_ERR_MEMORY], 1);
        return;
    }
    c->a = a;
    c->fd = fd;
    c->last_ns = mars_ev_now(mars_source_loop(a->src));
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->nopen++;
    conn_arm(c);
}

/* ---- listener ---- */

static void on_accept(struct mars_ev_op *op, int res);

static void accept_next(struct apm *a)
{
    if (a->accepting || a->stopping || a->lfd < 0)
        return;
    mars_ev_prep_accept_multishot(&a->op_accept, a->lfd, on_accept, a);
    if (mars_ev_submit(mars_source_loop(a->src), &a->op_accept)) {
        a->accept_failed = true;
        return;
    }
    a->accepting = true;
}

static void on_accept(struct mars_ev_op *op, int res)
{
    struct apm *a = op->data;
    bool ended = !op->more;
    if (ended)
        a->accepting = false;
    if (res >= 0) {
        if (a->stopping)
            close(res);
        else
            conn_start(a, res);
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
        mars_stat_add(&stats(a)->errors[MARS_ERR_READ], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, a->id, "accept failed: %s", strerror(-res));
        a->accept_failed = true;
    }
    if (a->stopping) {
        if (ended)
            maybe_finished(a);
        return;
    }
    if (ended && !a->accept_failed)
        accept_next(a);
}

static void on_tick(struct mars_ev_op *op, int res);

static void tick_arm(struct apm *a)
{
    mars_ev_prep_timer(&a->op_tick, TICK_NS, on_tick, a);
    a->ticking = mars_ev_submit(mars_source_loop(a->src), &a->op_tick) == 0;
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct apm *a = op->data;
    (void)res;
    a->ticking = false;
    if (a->stopping) {
        maybe_finished(a);
        return;
    }
    int64_t now = mars_ev_now(mars_source_loop(a->src));
    for (struct aconn *c = a->conns, *next; c; c = next) {
        next = c->next; /* c may be freed */
        if (!c->closing && now - c->last_ns > a->conf->idle_timeout)
            conn_close(c);
    }
    if (a->accept_failed) {
        a->accept_failed = false;
        accept_next(a);
    }
    tick_arm(a);
}

static int listen_on(struct apm *a)
{
    const char *path = a->conf->path;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            mars_error(a->id, "%s exists and is not a socket: not replaced", path);
            return -EEXIST;
        }
        unlink(path); /* stale: left by a crash or by another agent */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 4096))
        rc = -errno;
    if (!rc && chmod(path, (mode_t)strtol(a->conf->mode, NULL, 8)))
        rc = -errno;
    if (!rc && a->conf->group) {
        struct group *g = getgrnam(a->conf->group);
        if (!g)
            rc = -ENOENT;
        else if (chown(path, (uid_t)-1, g->gr_gid))
            rc = -errno;
    }
    if (rc) {
        mars_error(a->id, "cannot listen on %s: %s", path, strerror(-rc));
        close(fd);
        return rc;
    }
    a->bound = true;
    mars_info(a->id, "listening on %s", path);
    a->lfd = fd;
    return 0;
}

/* ---- instance ---- */

static void maybe_finished(struct apm *a)
{
    if (!a->stopping || a->accepting || a->ticking || a->nopen > 0 || a->lfd < 0)
        return;
    close(a->lfd);
    a->lfd = -1;
    if (a->bound)
        unlink(a->conf->path);
    a->bound = false;
    mars_source_finished(a->src);
}

static int apm_init(struct mars_source *s)
{
    struct apm *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->src = s;
    a->conf = mars_source_conf(s);
    a->id = mars_source_id(s);
    a->lfd = -1;
    if (gethostname(a->host, sizeof(a->host) - 1))
        snprintf(a->host, sizeof(a->host), "localhost");
    int rc = mars_apm_records_init(&a->rec, a->conf, a->id, mars_source_obs(s));
    if (rc) {
        mars_apm_records_fini(&a->rec);
        free(a);
        return rc;
    }
    mars_source_set_state(s, a);
    return 0;
}

static int apm_start(struct mars_source *s)
{
    struct apm *a = mars_source_state(s);
    if (mars_source_once(s)) {
        mars_error(a->id, "the apm_socket source listens until stopped; it cannot run with --once");
        return -ENOTSUP;
    }
    int rc = listen_on(a);
    if (rc)
        return rc;
    accept_next(a);
    tick_arm(a);
    return 0;
}

static void apm_resume(struct mars_source *s)
{
    struct apm *a = mars_source_state(s);
    for (struct aconn *c = a->conns; c; c = c->next)
        conn_arm(c);
}

static void apm_stop(struct mars_source *s)
{
    struct apm *a = mars_source_state(s);
    struct mars_ev_loop *loop = mars_source_loop(s);
    a->stopping = true;
    if (a->accepting)
        mars_ev_cancel(loop, &a->op_accept);
    if (a->ticking)
        mars_ev_cancel(loop, &a->op_tick);
    for (struct aconn *c = a->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    maybe_finished(a);
}

static void apm_destroy(struct mars_source *s)
{
    struct apm *a = mars_source_state(s);
    while (a->conns) {
        struct aconn *c = a->conns;
        a->conns = c->next;
        close(c->fd);
        free(c->buf);
        free(c);
    }
    if (a->lfd >= 0) {
        close(a->lfd);
        if (a->bound)
            unlink(a->conf->path);
    }
    mars_apm_records_fini(&a->rec);
    free(a);
}

const struct mars_component_desc mars_source_apm_socket = {
    .name = "apm_socket",
    .description = "Listens on the unix socket of PHP APM extensions (SkyAPM 3.x, the seed "
                   "agent): answers register requests, turns HTTP spans and business metrics "
                   "into metric events and SkyAPM segments into trace events.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_ANY, /* metrics; SkyAPM segments as MARS_EVF_TRACE log events */
    .options = apm_options,
    .conf_size = sizeof(struct apm_conf),
    .check = apm_check,
    .source = {.init = apm_init,
               .start = apm_start,
               .resume = apm_resume,
               .stop = apm_stop,
               .destroy = apm_destroy},
};
