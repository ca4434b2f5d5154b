/*
 * mars.c - the `mars` source: the receiving end of the mars native protocol
 * (docs/mars-protocol.md, wire/wire.h), for an aggregator tier that other mars agents
 * ship to with the `mars` sink. Options, listener and instance here; one connection's
 * protocol in conn.c.
 *
 * Listener: one TCP listener (default 127.0.0.1:6277, "mars" on a phone keypad: loopback
 * unless an address is configured) with an accept op always in flight, and a 1 s tick that
 * closes connections stuck in their handshake and retries accept after a failure (out of
 * descriptors). Each connection (conn.c) may run a TLS handshake, then must send a HELLO
 * with the protocol version and, when a token is configured, the same token (compared in
 * constant time); the source answers with its own HELLO (which tells the sender
 * max_frame_bytes). Every BATCH frame (sequence numbers consecutive from 1) is
 * decompressed, decoded into one batch with its fields and emitted; its acknowledgement
 * callback marks the sequence done, and the source sends ACK for the highest sequence below
 * which everything is done (ACKs are cumulative and in order). So an ACK means the events
 * went through this mars's pipeline (its sinks have them): at-least-once holds across the
 * hop.
 *
 * Bad peers: a malformed frame, a frame over max_frame_bytes, a wrong token or version, a
 * failed TLS handshake, no HELLO within handshake_timeout, or too many connections: the
 * peer gets an ERROR frame with the reason where the protocol allows, the connection
 * closes, the error is counted and logged (rate-limited); nothing of that connection is
 * emitted past the bad frame, and the other connections go on.
 *
 * Memory: frames bigger than a connection's 64 KiB buffer share one budget,
 * max_buffer_bytes, across the connections (conn.c); a connection whose frame does not fit
 * stops reading until another frame's memory comes back. Freed big buffers are returned
 * to the OS (malloc_trim) over the next ticks: glibc raises its mmap threshold after the
 * first big free, and later big buffers would otherwise stay in the heap for good.
 *
 * Stop: closes the listener and every connection (in-flight batches are not acknowledged:
 * the sender resends them) and finishes once their I/O has completed.
 *
 * Thread: the source's worker (one instance; all connections on that worker).
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "mars_internal.h"

#define TICK_NS 1000000000LL /* handshake timeouts are checked this often */

#define OFF(f) offsetof(struct receiver_conf, f)
static const struct mars_opt receiver_options[] = {
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(address),
     .def = "127.0.0.1:6277",
     .desc = "host:port to listen on ([v6]:port for IPv6; 0.0.0.0:6277 for every interface); "
             "the default takes loopback connections only."},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = OFF(token),
     .desc = "Shared token every sender must present (token_file or ${ENV} keep it out of the "
             "config); unset accepts any sender."},
    {.name = "max_connections",
     .type = MARS_OPT_INT,
     .offset = OFF(max_connections),
     .def = "256",
     .min = 1,
     .max = 65536,
     .desc = "Most open connections; one more is refused with a busy error."},
    {.name = "max_frame_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_frame_bytes),
     .def = "16MiB",
     .min = 4096,
     .max = (int64_t)256 << 20,
     .desc = "Largest batch frame accepted (after decompression); senders are told, and a "
             "bigger frame closes the connection."},
    {.name = "max_buffer_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_buffer_bytes),
     .def = "64MiB",
     .min = 65536,
     .max = (int64_t)16 << 30,
     .desc = "Memory for frames bigger than 64 KiB, across all connections (a frame and, for "
             "lz4, its decompressed size); a connection whose frame does not fit stops reading "
             "until others give theirs back. At least twice max_frame_bytes."},
    {.name = "handshake_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(handshake_timeout),
     .def = "10s",
     .min = 1000000,
     .max = (int64_t)600 * 1000000000,
     .desc = "How long a new connection may take to send its HELLO (and finish the TLS "
             "handshake) before it is closed."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = OFF(tls),
     .sub = mars_tls_options,
     .desc = "TLS for senders: cert_file and key_file are this server's certificate; with "
             "ca_file, senders must present a certificate signed by it (mutual TLS)."},
    {.name = NULL},
};

static int receiver_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct receiver_conf *c = conf;
    int rc = mars_netconf_check(&c->tls, NULL, node, diag);
    if (c->max_buffer_bytes < 2 * c->max_frame_bytes + MARS_WIRE_HDR) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "max_buffer_bytes", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "max_buffer_bytes (%llu) must be at least twice max_frame_bytes (%llu), or "
                      "a largest lz4 frame could never be read",
                      (unsigned long long)c->max_buffer_bytes,
                      (unsigned long long)c->max_frame_bytes);
        rc = -EINVAL;
    }
    if (c->tls.enabled && (!c->tls.cert_file || !c->tls.key_file)) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "tls", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "tls: a mars source needs cert_file and key_file (its certificate)");
        rc = -EINVAL;
    }
    return rc;
}

static struct mars_stats *stats(struct receiver *ms)
{
    return mars_source_stats(ms->src);
}

/* ---- listener ---- */

static void on_accept(struct mars_ev_op *op, int res);

/* One multishot accept stays armed for the listener's life: its callback runs once per
 * connection (op->more) until stop cancels it or an error ends it. */
static void accept_next(struct receiver *ms)
{
    if (ms->accepting || ms->stopping || ms->lfd < 0)
        return;
    mars_ev_prep_accept_multishot(&ms->op_accept, ms->lfd, on_accept, ms);
    if (mars_ev_submit(mars_source_loop(ms->src), &ms->op_accept)) {
        ms->accept_failed = true; /* the tick tries again */
        return;
    }
    ms->accepting = true;
}

static void on_accept(struct mars_ev_op *op, int res)
{
    struct receiver *ms = op->data;
    bool ended = !op->more; /* the op is ours again: re-arm below, or at the tick */
    if (ended)
        ms->accepting = false;
    if (res >= 0) {
        if (ms->stopping)
            close(res);
        else
            mars_receiver_conn_start(ms, res);
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
        mars_stat_add(&stats(ms)->errors[MARS_ERR_READ], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, ms->id, "accept failed: %s", strerror(-res));
        ms->accept_failed = true; /* out of descriptors, say: the tick tries again */
    }
    if (ms->stopping) {
        if (ended)
            mars_receiver_maybe_finished(ms);
        return;
    }
    if (ended && !ms->accept_failed)
        accept_next(ms);
}

static void on_tick(struct mars_ev_op *op, int res);

static void tick_arm(struct receiver *ms)
{
    mars_ev_prep_timer(&ms->op_tick, TICK_NS, on_tick, ms);
    ms->ticking = mars_ev_submit(mars_source_loop(ms->src), &ms->op_tick) == 0;
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct receiver *ms = op->data;
    ms->ticking = false;
    if (ms->stopping) {
        mars_receiver_maybe_finished(ms);
        return;
    }
    int64_t now = mars_ev_now(mars_source_loop(ms->src));
    for (struct receiver_conn *c = ms->conns, *next; c; c = next) {
        next = c->next; /* c may be freed */
        mars_receiver_conn_tick(c, now);
    }
    if (ms->accept_failed) {
        ms->accept_failed = false;
        accept_next(ms);
    }
    if (ms->nwait)
        mars_receiver_conn_wake(ms); /* a safety net: memory frees also wake at once */
    if (ms->trim_ticks) {
        /* batches of a big frame are released when delivered, after the frame: a few
         * ticks catch them */
        ms->trim_ticks--;
        malloc_trim(0);
    }
    tick_arm(ms);
}

static void on_wake(struct mars_ev_op *op, int res)
{
    struct receiver *ms = op->data;
    (void)res;
    ms->waking = false;
    if (ms->stopping)
        mars_receiver_maybe_finished(ms);
    else
        mars_receiver_conn_wake(ms);
}

void mars_receiver_mem_freed(struct receiver *ms, bool big)
{
    if (big)
        ms->trim_ticks = 3;
    if (!ms->nwait || ms->waking || ms->stopping)
        return;
    /* not from here: this runs inside another connection's frame loop or ack */
    mars_ev_prep_timer(&ms->op_wake, 0, on_wake, ms);
    ms->waking = mars_ev_submit(mars_source_loop(ms->src), &ms->op_wake) == 0;
}

static int listen_on(struct receiver *ms)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = mars_wire_parse_address(ms->conf->address, &ss, &sl);
    if (rc) {
        mars_error(ms->id, "address %s: %s", ms->conf->address,
                   rc == -EINVAL ? "expected host:port" : "name not resolved");
        return rc;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
        rc = -errno;
        mars_error(ms->id, "cannot listen on %s: %s", ms->conf->address, strerror(-rc));
        close(fd);
        return rc;
    }
    char where[64];
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    mars_wire_format_address((struct sockaddr *)&ss, where, sizeof(where));
    mars_info(ms->id, "listening on %s%s%s", where, ms->tls ? " with TLS" : "",
              ms->conf->token ? "" : " (no token: any sender)");
    ms->lfd = fd;
    return 0;
}

/* ---- instance ---- */

void mars_receiver_maybe_finished(struct receiver *ms)
{
    if (!ms->stopping || ms->accepting || ms->ticking || ms->waking || ms->nopen > 0)
        return;
    if (ms->lfd >= 0) {
        close(ms->lfd);
        ms->lfd = -1;
        mars_source_finished(ms->src);
    }
}

static int receiver_init(struct mars_source *s)
{
    struct receiver *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    ms->src = s;
    ms->conf = mars_source_conf(s);
    ms->id = mars_source_id(s);
    ms->lfd = -1;
    if (ms->conf->tls.enabled) {
        struct mars_tls_opts o;
        char err[512];
        mars_netconf_tls(&ms->conf->tls, &o);
        ms->tls = mars_tls_ctx_create(&o, MARS_TLS_SERVER, ms->id, err, sizeof(err));
        if (!ms->tls) {
            mars_error(ms->id, "tls: %s", err);
            free(ms);
            return -EINVAL;
        }
    }
    mars_source_set_state(s, ms);
    return 0;
}

static int receiver_start(struct mars_source *s)
{
    struct receiver *ms = mars_source_state(s);
    if (mars_source_once(s)) {
        mars_error(ms->id, "the mars source listens until stopped; it cannot run with --once");
        return -ENOTSUP;
    }
    int rc = listen_on(ms);
    if (rc)
        return rc;
    accept_next(ms);
    tick_arm(ms);
    return 0;
}

static void receiver_resume(struct mars_source *s)
{
    struct receiver *ms = mars_source_state(s);
    for (struct receiver_conn *c = ms->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == S_READY || c->state == S_HELLO)
            mars_receiver_conn_process(c);
    }
}

static void receiver_stop(struct mars_source *s)
{
    struct receiver *ms = mars_source_state(s);
    struct mars_ev_loop *loop = mars_source_loop(s);
    ms->stopping = true;
    if (ms->accepting)
        mars_ev_cancel(loop, &ms->op_accept);
    if (ms->ticking)
        mars_ev_cancel(loop, &ms->op_tick);
    if (ms->waking)
        mars_ev_cancel(loop, &ms->op_wake);
    for (struct receiver_conn *c = ms->conns, *next; c; c = next) {
        next = c->next;
        mars_receiver_conn_close(c); /* no ERROR frame: what is in flight stays unacknowledged */
    }
    mars_receiver_maybe_finished(ms);
}

static void receiver_destroy(struct mars_source *s)
{
    struct receiver *ms = mars_source_state(s);
    /* every batch was released before sources are destroyed, so no connection is left
     * but ones that never closed (a failed start) */
    while (ms->conns) {
        struct receiver_conn *c = ms->conns;
        ms->conns = c->next;
        mars_receiver_conn_destroy(c);
    }
    if (ms->lfd >= 0)
        close(ms->lfd);
    mars_tls_ctx_destroy(ms->tls);
    free(ms);
}

const struct mars_component_desc mars_source_mars = {
    .name = "mars",
    .description = "Receives events from other mars agents (their mars sink) over the native "
                   "protocol, acknowledging each batch once this pipeline delivered it.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .options = receiver_options,
    .conf_size = sizeof(struct receiver_conf),
    .check = receiver_check,
    .source = {.init = receiver_init,
               .start = receiver_start,
               .resume = receiver_resume,
               .stop = receiver_stop,
               .destroy = receiver_destroy},
};
