/*
 * tcp.c - the `tcp` sink: newline-delimited text or JSON lines over one TCP connection
 * per worker, optionally in TLS.
 *
 * How it works: each request is encoded once (text lines still point into the chunks
 * they were read into; JSON lines are built in the encoder's buffer) and written with
 * SENDMSG ops over the iovec array through core/conn (or core/tls with TLS). The
 * connection is opened on the first request and kept; conn keeps a read pending so a peer
 * that closes or resets it between requests is noticed at once, and the next request
 * reconnects. A request that meets no connection, a refused or timed-out connect, a
 * failed TLS handshake or a send error is answered MARS_SINK_RETRY: the engine keeps the
 * batches and resends them after its exponential backoff with jitter, so reconnects are
 * paced by retry.initial_backoff / retry.max_backoff and nothing is dropped.
 *
 * Delivery: a request is OK once all its bytes are in the kernel's send buffer (with
 * io_uring's zero-copy sends, once the peer's kernel acknowledged them). TCP has
 * no application acknowledgement, so bytes still in the local send buffer or the peer's
 * receive buffer when the peer crashes are lost without either side knowing (the `mars`
 * sink and source acknowledge end to end). A request cut off by a connection failure is
 * resent whole: the peer may see its first lines twice, and possibly a torn last line.
 *
 * Failed requests are counted by error type (connect, tls, write) and logged rate-limited
 * with the reason; a connection the peer closes between requests is only logged (INFO).
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/tls.h"
#include "component.h"

struct tcp_conf {
    char *address;
    int encoding;
    struct mars_strlist fields, except_fields;
    int64_t connect_timeout;
    int64_t keepalive;
    struct mars_tls_conf tls;
};

#define OFF(f) offsetof(struct tcp_conf, f)
static const struct mars_opt tcp_options[] = {
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(address),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Peer to connect to as host:port ([v6addr]:port for IPv6); a name is resolved "
             "again at each reconnect."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = OFF(encoding),
     .def = "text",
     .choices = mars_encoding_names,
     .desc = "text sends each message as a line; json and ndjson send one JSON object per "
             "line."},
    MARS_ENCODE_FIELDS_OPTIONS(struct tcp_conf, fields, except_fields),
    {.name = "connect_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(connect_timeout),
     .def = "10s",
     .min = 1000000,
     .max = (int64_t)600 * 1000000000,
     .desc = "Longest time for name resolution, connect and TLS handshake together."},
    {.name = "keepalive",
     .type = MARS_OPT_DURATION,
     .offset = OFF(keepalive),
     .def = "60s",
     .min = 0,
     .max = (int64_t)86400 * 1000000000,
     .desc = "Idle time before TCP keepalive probes find a peer that vanished; 0 turns "
             "keepalive off."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = OFF(tls),
     .sub = mars_tls_options,
     .desc = "TLS on the connection (enabled: true); verify is on by default."},
    {.name = NULL},
};

struct tcp_sink {
    struct mars_sink *sink;
    const struct tcp_conf *conf;
    struct mars_tls_ctx *tls;
    struct mars_conn *conn;
    struct mars_encoder enc;
    struct mars_field_select sel;
    struct mars_sink_req *req; /* in flight */
    uint64_t bytes;            /* of req */
    uint64_t utf8_before;
    char host[256], port[32];
};

static int tcp_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct tcp_conf *c = conf;
    int rc = mars_netconf_check_address(c->address, node, diag);
    if (mars_netconf_check(&c->tls, NULL, node, diag))
        rc = -EINVAL;
    if (mars_check_field_select(&c->fields, &c->except_fields, node, diag))
        rc = -EINVAL;
    return rc;
}

/* ---- data path ---- */

static void finish(struct tcp_sink *ts, enum mars_sink_result res)
{
    struct mars_sink_req *r = ts->req;
    struct mars_stats *st = mars_sink_stats(ts->sink);
    ts->req = NULL;
    if (ts->enc.invalid_utf8 > ts->utf8_before)
        mars_stat_add(&st->errors[MARS_ERR_INVALID_UTF8], ts->enc.invalid_utf8 - ts->utf8_before);
    mars_sink_done(ts->sink, r, res, res == MARS_SINK_OK ? ts->bytes : 0);
}

static enum mars_error_type error_type(int err)
{
    if (err == -EKEYREJECTED || err == -EPROTO)
        return MARS_ERR_TLS;
    return MARS_ERR_CONNECT;
}

static void on_sent(struct mars_conn *c, int err)
{
    struct tcp_sink *ts = mars_conn_data(c);
    if (err == 0) {
        finish(ts, MARS_SINK_OK);
        return;
    }
    if (err == -ECANCELED) {
        finish(ts, MARS_SINK_ABORTED);
        return;
    }
    mars_stat_add(&mars_sink_stats(ts->sink)->errors[MARS_ERR_WRITE], 1);
    MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(ts->sink), "%s; the request will be sent again",
                mars_conn_error(c));
    finish(ts, MARS_SINK_RETRY);
}

static void send_request(struct tcp_sink *ts)
{
    int rc = mars_conn_send(ts->conn, ts->enc.iov, ts->enc.niov, on_sent);
    if (rc) {
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(ts->sink), "cannot send to %s: %s",
                    mars_conn_peer(ts->conn), strerror(-rc));
        finish(ts, MARS_SINK_RETRY);
    }
}

static void on_open(struct mars_conn *c, int err)
{
    struct tcp_sink *ts = mars_conn_data(c);
    if (err == -ECANCELED) {
        finish(ts, MARS_SINK_ABORTED);
        return;
    }
    if (err) {
        enum mars_error_type t = error_type(err);
        mars_stat_add(&mars_sink_stats(ts->sink)->errors[t], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(ts->sink), "%s", mars_conn_error(c));
        finish(ts, MARS_SINK_RETRY);
        return;
    }
    if (ts->tls)
        MARS_LOG_RL(MARS_LOG_INFO, mars_sink_id(ts->sink), "connected to %s (%s)",
                    mars_conn_peer(c), mars_conn_tls_info(c));
    else
        MARS_LOG_RL(MARS_LOG_INFO, mars_sink_id(ts->sink), "connected to %s", mars_conn_peer(c));
    send_request(ts);
}

static void start_open(struct tcp_sink *ts)
{
    int rc = mars_conn_open(ts->conn, on_open);
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(ts->sink), "cannot connect to %s: %s",
                    mars_conn_peer(ts->conn), strerror(-rc));
        finish(ts, MARS_SINK_RETRY);
    }
}

/* The connection went away between requests (peer closed or reset it). Not an error:
 * servers close idle connections, and no request was affected; the next one reconnects. */
static void on_lost(struct mars_conn *c, int err)
{
    struct tcp_sink *ts = mars_conn_data(c);
    MARS_LOG_RL(MARS_LOG_INFO, mars_sink_id(ts->sink), "%s; reconnecting for the next request",
                mars_conn_error(c));
    if (ts->req)
        start_open(ts); /* a request came while the teardown ran */
}

static void tcp_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct tcp_sink *ts = mars_sink_state(s);
    ts->req = r;
    ts->utf8_before = ts->enc.invalid_utf8;
    int64_t n = mars_encode_batches(&ts->enc, ts->conf->encoding, r->batches, r->n);
    if (n < 0) {
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_MEMORY], 1);
        finish(ts, MARS_SINK_RETRY);
        return;
    }
    ts->bytes = (uint64_t)n;
    switch (mars_conn_state(ts->conn)) {
    case MARS_CONN_READY:
        send_request(ts);
        break;
    case MARS_CONN_IDLE:
        start_open(ts);
        break;
    case MARS_CONN_CLOSING:
        break; /* on_lost opens when the teardown is over */
    default:   /* cannot happen: only requests open connections, one at a time */
        finish(ts, MARS_SINK_RETRY);
        break;
    }
}

/* After tcp_abort: the teardown is over. A request that was waiting for a teardown caused
 * by the peer (see tcp_write) had no callback of its own. */
static void on_idle(struct mars_conn *c, int err)
{
    struct tcp_sink *ts = mars_conn_data(c);
    if (ts->req)
        finish(ts, MARS_SINK_ABORTED);
}

/* Shutdown timeout, or the worker quiescing: drop the connection; an in-flight request
 * gets MARS_SINK_ABORTED from its callback. */
static void tcp_abort(struct mars_sink *s)
{
    struct tcp_sink *ts = mars_sink_state(s);
    mars_conn_close(ts->conn);
}

/* ---- lifetime ---- */

static int tcp_init(struct mars_sink *s)
{
    const struct tcp_conf *conf = mars_sink_conf(s);
    struct tcp_sink *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    ts->sink = s;
    ts->conf = conf;
    mars_field_select_init(&ts->sel, &conf->fields, &conf->except_fields);
    ts->enc.select = &ts->sel;
    if (mars_netconf_split_address(conf->address, ts->host, sizeof(ts->host), ts->port,
                                   sizeof(ts->port))) {
        free(ts);
        return -EINVAL; /* tcp_check reported it */
    }
    if (conf->tls.enabled) {
        struct mars_tls_opts o;
        char err[512];
        mars_netconf_tls(&conf->tls, &o);
        ts->tls = mars_tls_ctx_create(&o, MARS_TLS_CLIENT, mars_sink_id(s), err, sizeof(err));
        if (!ts->tls) {
            mars_error(mars_sink_id(s), "tls: %s", err);
            free(ts);
            return -EINVAL;
        }
    }
    struct mars_conn_opts co = {
        .host = ts->host,
        .port = ts->port,
        .connect_timeout_ns = conf->connect_timeout,
        .keepalive_ns = conf->keepalive,
        .tls = ts->tls,
        .server_name = conf->tls.server_name,
        .on_close = on_lost,
        .on_idle = on_idle,
        .data = ts,
    };
    ts->conn = mars_conn_create(mars_sink_loop(s), &co);
    if (!ts->conn) {
        mars_tls_ctx_destroy(ts->tls);
        free(ts);
        return -ENOMEM;
    }
    mars_sink_set_state(s, ts);
    return 0;
}

static void tcp_destroy(struct mars_sink *s)
{
    struct tcp_sink *ts = mars_sink_state(s);
    mars_conn_destroy(ts->conn); /* the worker ran the loop dry after abort: nothing in flight */
    mars_tls_ctx_destroy(ts->tls);
    mars_encoder_fini(&ts->enc);
    free(ts);
}

const struct mars_component_desc mars_sink_tcp = {
    .name = "tcp",
    .description = "Sends events as newline-delimited text or JSON lines over TCP, optionally "
                   "with TLS; reconnects and resends on failure.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = tcp_options,
    .conf_size = sizeof(struct tcp_conf),
    .check = tcp_check,
    .sink = {.init = tcp_init, .write = tcp_write, .abort = tcp_abort, .destroy = tcp_destroy},
};
