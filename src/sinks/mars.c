/*
 * mars.c - the `mars` sink: ships events to another mars (the `mars` source of an
 * aggregator) over the mars native protocol (docs/mars-protocol.md, wire/wire.h).
 *
 * Connection: core/conn (name resolved off the loop, connect timeout, optional TLS),
 * opened when a request arrives and none is up, kept between requests. Once it is up the
 * sink sends HELLO with the token; the receiver's HELLO says it accepted and how big a
 * frame it takes (connect_timeout also bounds this exchange). A request is cut into BATCH
 * frames of at most frame_bytes (packed protobuf, before lz4), each with the next sequence
 * number of the connection. Up to `window` frames are unacknowledged at once; the unsent
 * ones go out together in one send. The receiver acknowledges in order and cumulatively
 * (ACK n covers every frame up to n) only once its own pipeline has delivered them, so a
 * request is reported OK only when the ACK of its last frame arrives: at-least-once holds
 * across the hop. Several requests (request.concurrency) share the connection in order.
 *
 * Failure: a lost connection, an ERROR frame (bad token, too large, the receiver stopping),
 * a protocol violation or a timeout closes the connection; once core/conn is idle again
 * (it owned the frame buffers until then), every open request fails with MARS_SINK_RETRY
 * and the engine resends it after its backoff (which doubles with jitter: that is the
 * reconnect backoff). What the receiver may already hold is sent again (duplicates, never
 * losses), except frames already acknowledged: the request's sink_data remembers how many
 * of its events were, and the retry resumes after them. There is no ACK timeout (and
 * request.timeout does not apply): a receiver whose pipeline is blocked holds ACKs back on
 * purpose, which is the backpressure that keeps this side's memory bounded; a dead peer
 * is found by TCP keepalive.
 *
 * Names: this end is the protocol's sender (sender_*, struct sender): mars_sink_* is the
 * engine's API for every sink.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/conn.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/tls.h"
#include "component.h"
#include "wire/wire.h"

#define KEEPALIVE_NS (30 * 1000000000LL)

static const char *const compression_names[] = {"none", "lz4", NULL};

struct sender_conf {
    char *address;
    char *token;
    int compression;
    int64_t window;
    uint64_t frame_bytes;
    int64_t connect_timeout;
    struct mars_tls_conf tls;
};

#define OFF(f) offsetof(struct sender_conf, f)
static const struct mars_opt sender_options[] = {
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(address),
     .flags = MARS_OPT_REQUIRED,
     .desc = "host:port of the receiving mars source ([v6]:port for IPv6); a name is resolved "
             "on every connect, off the worker thread."},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = OFF(token),
     .desc = "Shared token the receiver checks (token_file or ${ENV} keep it out of the "
             "config); unset sends none."},
    {.name = "compression",
     .type = MARS_OPT_ENUM,
     .offset = OFF(compression),
     .def = "lz4",
     .choices = compression_names,
     .desc = "lz4 compresses every batch frame (a frame lz4 does not shrink goes plain); none "
             "never does."},
    {.name = "window",
     .type = MARS_OPT_INT,
     .offset = OFF(window),
     .def = "8",
     .min = 1,
     .max = 1024,
     .desc = "Most batch frames sent and not yet acknowledged on the connection."},
    {.name = "frame_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(frame_bytes),
     .def = "1MiB",
     .min = 4096,
     .max = (int64_t)256 << 20,
     .desc = "Largest batch frame before compression (lowered to what the receiver accepts); "
             "a single event larger than this is dropped and counted."},
    {.name = "connect_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(connect_timeout),
     .def = "10s",
     .min = 1000000,
     .max = (int64_t)600 * 1000000000,
     .desc = "How long resolving, connecting, the TLS handshake and the HELLO exchange may "
             "each take before the attempt fails (and the request is retried)."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = OFF(tls),
     .sub = mars_tls_options,
     .desc = "TLS to the receiver (verified against ca_file or the system store; "
             "cert_file/key_file for mutual TLS)."},
    {.name = NULL},
};

enum sender_state {
    M_DOWN,    /* no connection (core/conn idle) */
    M_OPENING, /* core/conn resolving, connecting, handshaking */
    M_HELLO,   /* our HELLO sent or going, waiting for the receiver's */
    M_READY,   /* frames flow */
    M_CLOSING, /* core/conn told to close; waiting for it to be idle */
};

/* A request the engine handed over, with its encoding cursor. */
struct preq {
    struct preq *next;
    struct mars_sink_req *r;
    uint32_t bi, ei;     /* next event to encode: batch bi, event ei */
    uint64_t consumed;   /* events the cursor passed (resumed ones included) */
    uint64_t acked;      /* events covered by acknowledged frames (or resumed) */
    uint32_t frames_out; /* frames of this request not acknowledged yet */
    bool encoded_all;
    uint64_t wire_bytes;
};

/* What a failed request remembers for its retry (mars_sink_req.sink_data). */
struct resume {
    uint64_t acked; /* leading events the receiver has acknowledged */
};

struct frame {
    struct preq *req;
    uint64_t seq;
    uint32_t nevents; /* events the frame covers (dropped oversize ones included) */
    uint8_t *buf;     /* owned; reused */
    size_t cap, len;
};

struct sender {
    struct mars_sink *sink;
    const struct sender_conf *conf;
    const char *id;
    struct mars_conn *conn;
    struct mars_tls_ctx *tls;
    char host[256], port[16];
    enum sender_state state;
    bool sending, aborting, pumping, hello_timing, deferring;
    struct mars_ev_op op_hello_timer, op_defer;
    uint32_t send_upto;     /* frames (from ack_i) covered by the send in flight */
    int64_t hello_deadline; /* monotonic ns: the receiver's HELLO is due by then */
    char why[160];          /* reason of a close waiting for op_defer */

    struct preq *reqs, **reqs_tail;           /* open requests, oldest first */
    struct frame *ring;                       /* window slots: [ack_i, ack_i + nframes) */
    uint32_t ring_cap, ack_i, nframes, nsent; /* nsent: frames fully handed to the kernel */
    uint64_t next_seq, acked_seq;
    size_t limit; /* frame payload limit: min(frame_bytes, receiver's max) */

    struct mars_wire_enc enc;
    struct iovec *iov;
    uint8_t rbuf[2 * (MARS_WIRE_CONTROL_MAX + MARS_WIRE_HDR)];
    size_t rlen;
    uint8_t hello[MARS_WIRE_CONTROL_MAX + MARS_WIRE_HDR];
    struct iovec hello_iov;
};

static void pump(struct sender *ms);
static void drop(struct sender *ms, const char *why);

static struct frame *slot(struct sender *ms, uint32_t k)
{
    return &ms->ring[(ms->ack_i + k) % ms->ring_cap];
}

static int sender_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct sender_conf *c = conf;
    int rc = mars_netconf_check_address(c->address, node, diag);
    if (mars_netconf_check(&c->tls, NULL, node, diag))
        rc = -EINVAL;
    return rc;
}

/* ---- requests ---- */

static void finish_req(struct sender *ms, struct preq *p, enum mars_sink_result res)
{
    struct preq **pp = &ms->reqs;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    if (ms->reqs_tail == &p->next)
        ms->reqs_tail = pp;
    struct mars_sink_req *r = p->r;
    uint64_t bytes = p->wire_bytes;
    if (res == MARS_SINK_RETRY && p->acked > 0) {
        struct resume *rs = r->sink_data ? r->sink_data : malloc(sizeof(*rs));
        if (rs) { /* without it the retry sends everything again: duplicates only */
            rs->acked = p->acked;
            r->sink_data = rs;
        }
    } else if (res != MARS_SINK_RETRY) {
        free(r->sink_data);
        r->sink_data = NULL;
    }
    free(p);
    mars_sink_done(ms->sink, r, res, bytes); /* may call write again at once */
}

static void complete_ready(struct sender *ms)
{
    while (ms->reqs && ms->reqs->encoded_all && ms->reqs->frames_out == 0)
        finish_req(ms, ms->reqs, MARS_SINK_OK);
}

/* Moves p's cursor past n events. */
static void skip_events(struct preq *p, uint64_t n)
{
    while (n > 0 && p->bi < p->r->n) {
        uint32_t left = p->r->batches[p->bi]->n - p->ei;
        uint32_t take = n < left ? (uint32_t)n : left;
        p->ei += take;
        p->consumed += take;
        n -= take;
        if (p->ei == p->r->batches[p->bi]->n) {
            p->bi++;
            p->ei = 0;
        }
    }
    while (p->bi < p->r->n && p->ei == p->r->batches[p->bi]->n) { /* empty batches */
        p->bi++;
        p->ei = 0;
    }
    p->encoded_all = p->bi == p->r->n;
}

static void sender_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct sender *ms = mars_sink_state(s);
    struct preq *p = calloc(1, sizeof(*p));
    if (!p) {
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    p->r = r;
    const struct resume *rs = r->sink_data;
    skip_events(p, rs ? rs->acked : 0); /* the receiver has those already */
    p->acked = p->consumed;
    *ms->reqs_tail = p;
    ms->reqs_tail = &p->next;
    pump(ms);
}

/* Every open request fails (the connection is gone and idle): RETRY, or ABORTED while
 * shutting down. */
static void fail_all(struct sender *ms)
{
    for (struct preq *p = ms->reqs; p; p = p->next)
        p->frames_out = 0;
    ms->nframes = ms->nsent = ms->ack_i = 0;
    ms->sending = false;
    enum mars_sink_result res = ms->aborting ? MARS_SINK_ABORTED : MARS_SINK_RETRY;
    while (ms->reqs) /* RETRY and ABORTED never call write back synchronously */
        finish_req(ms, ms->reqs, res);
}

/* ---- frames out ---- */

/* Encodes the next frame of the oldest request that has events left into a free slot.
 * Returns 1 when it made progress, 0 when there is nothing to encode, -errno. */
static int encode_frame(struct sender *ms)
{
    struct preq *p = ms->reqs;
    while (p && p->encoded_all)
        p = p->next;
    if (!p)
        return 0;
    uint64_t start = p->consumed;
    mars_wire_enc_reset(&ms->enc);
    while (!p->encoded_all) {
        const struct mars_event *ev = &p->r->batches[p->bi]->ev[p->ei];
        int rc = mars_wire_enc_add(&ms->enc, ev, ms->limit);
        if (rc == -ENOSPC)
            break;
        if (rc == -ENOMEM)
            return rc;
        if (rc == -EMSGSIZE) { /* counted as lost when the request ends (rejected_events) */
            mars_stat_add(&mars_sink_stats(ms->sink)->errors[MARS_ERR_OVERSIZE], 1);
            p->r->rejected_events++;
            MARS_LOG_RL(MARS_LOG_ERROR, ms->id,
                        "dropped an event of %u bytes: it does not fit a frame of %zu bytes",
                        ev->msg.len, ms->limit);
        }
        skip_events(p, 1);
    }
    uint32_t n = (uint32_t)(p->consumed - start);
    if (ms->enc.nev == 0) { /* only oversize events: nothing to send for them */
        p->acked += n;
        return 1;
    }
    int rc = mars_wire_enc_finish(&ms->enc, ms->next_seq, ms->conf->compression == 1);
    if (rc)
        return rc;
    struct frame *f = slot(ms, ms->nframes);
    /* the encoder's buffer becomes the frame's; the frame's old one goes back to it */
    uint8_t *old = f->buf;
    size_t oldcap = f->cap;
    f->buf = ms->enc.frame;
    f->cap = ms->enc.framecap;
    ms->enc.frame = old;
    ms->enc.framecap = oldcap;
    f->len = ms->enc.framelen;
    f->seq = ms->next_seq++;
    f->req = p;
    f->nevents = n;
    p->frames_out++;
    ms->nframes++;
    return 1;
}

static void on_sent(struct mars_conn *c, int err)
{
    struct sender *ms = mars_conn_data(c);
    ms->sending = false;
    if (err) { /* core/conn is idle: the frames are ours again */
        if (err != -ECANCELED)
            MARS_LOG_RL(MARS_LOG_WARN, ms->id, "%s", mars_conn_error(c));
        ms->state = M_DOWN;
        fail_all(ms);
        return;
    }
    if (ms->state == M_READY)
        ms->nsent = ms->send_upto;
    pump(ms);
}

static void send_more(struct sender *ms)
{
    if (ms->sending || ms->state != M_READY || ms->nsent == ms->nframes)
        return;
    int n = 0;
    for (uint32_t k = ms->nsent; k < ms->nframes; k++, n++) {
        struct frame *f = slot(ms, k);
        ms->iov[n] = (struct iovec){.iov_base = f->buf, .iov_len = f->len};
    }
    int rc = mars_conn_send(ms->conn, ms->iov, n, on_sent);
    if (rc) {
        drop(ms, strerror(-rc));
        return;
    }
    ms->sending = true;
    ms->send_upto = ms->nframes;
}

static void on_open(struct mars_conn *c, int err);

static void pump(struct sender *ms)
{
    if (ms->pumping) /* finish_req -> mars_sink_done -> write -> pump: the loop below goes on */
        return;
    ms->pumping = true;
    if (ms->state == M_DOWN && ms->reqs && !ms->aborting) {
        int rc = mars_conn_open(ms->conn, on_open);
        if (rc == 0) {
            ms->state = M_OPENING;
        } else {
            MARS_LOG_RL(MARS_LOG_WARN, ms->id, "cannot connect to %s: %s", ms->conf->address,
                        strerror(-rc));
            fail_all(ms);
        }
    }
    /* no encoding while a send is in flight: a frame acknowledged before its send completed
     * frees a slot whose buffer the send still owns */
    while (ms->state == M_READY && !ms->sending && ms->nframes < ms->ring_cap) {
        int rc = encode_frame(ms);
        if (rc < 0) {
            drop(ms, "out of memory encoding a frame");
            break;
        }
        if (rc == 0)
            break;
        complete_ready(ms); /* a request of oversize events only */
    }
    send_more(ms);
    ms->pumping = false;
}

/* ---- connection ---- */

/* Closes the connection for `why`, from a timer (never from inside a core/conn callback,
 * where its TLS session may still be in use). The requests fail once it is idle. */
static void on_defer(struct mars_ev_op *op, int res)
{
    struct sender *ms = op->data;
    ms->deferring = false;
    if (ms->state != M_CLOSING)
        return; /* core/conn failed by itself meanwhile (and may be opening anew) */
    mars_conn_close(ms->conn);
    if (mars_conn_state(ms->conn) == MARS_CONN_IDLE) {
        ms->state = M_DOWN; /* nothing was in flight: no callback will come */
        fail_all(ms);
    }
}

static void drop(struct sender *ms, const char *why)
{
    if (ms->state == M_CLOSING || ms->state == M_DOWN)
        return;
    if (ms->aborting)
        mars_debug(ms->id, "connection to %s closed: %s", ms->conf->address, why);
    else
        MARS_LOG_RL(MARS_LOG_WARN, ms->id, "connection to %s closed: %s", ms->conf->address, why);
    ms->state = M_CLOSING;
    if (ms->hello_timing)
        mars_ev_cancel(mars_sink_loop(ms->sink), &ms->op_hello_timer);
    if (ms->deferring)
        return;
    mars_ev_prep_timer(&ms->op_defer, 0, on_defer, ms);
    if (mars_ev_submit(mars_sink_loop(ms->sink), &ms->op_defer) == 0)
        ms->deferring = true;
    else
        on_defer(&ms->op_defer, 0);
}

/* core/conn: a close we asked for is complete. */
static void on_idle(struct mars_conn *c, int err)
{
    struct sender *ms = mars_conn_data(c);
    if (ms->state != M_DOWN) {
        ms->state = M_DOWN;
        fail_all(ms);
    }
}

/* core/conn: the connection was lost between sends (receiver closed or reset). */
static void on_lost(struct mars_conn *c, int err)
{
    struct sender *ms = mars_conn_data(c);
    if (ms->reqs || ms->state != M_READY)
        MARS_LOG_RL(MARS_LOG_WARN, ms->id, "%s", mars_conn_error(c));
    else
        mars_debug(ms->id, "%s", mars_conn_error(c));
    ms->state = M_DOWN;
    fail_all(ms);
}

static void arm_hello_timer(struct sender *ms, int64_t ns);

/* The timer may outlive the connection it was armed for (a cancel completes later): it
 * judges by the deadline of the connection in M_HELLO now, if any. */
static void on_hello_timer(struct mars_ev_op *op, int res)
{
    struct sender *ms = op->data;
    ms->hello_timing = false;
    if (ms->state != M_HELLO || ms->aborting)
        return;
    int64_t left = ms->hello_deadline - mars_ev_now(mars_sink_loop(ms->sink));
    if (left <= 0)
        drop(ms, "no HELLO from the receiver within connect_timeout");
    else
        arm_hello_timer(ms, left);
}

static void arm_hello_timer(struct sender *ms, int64_t ns)
{
    if (ms->hello_timing)
        return; /* still in flight (being cancelled): its callback re-arms */
    mars_ev_prep_timer(&ms->op_hello_timer, ns, on_hello_timer, ms);
    ms->hello_timing = mars_ev_submit(mars_sink_loop(ms->sink), &ms->op_hello_timer) == 0;
}

static void on_open(struct mars_conn *c, int err)
{
    struct sender *ms = mars_conn_data(c);
    struct mars_stats *st = mars_sink_stats(ms->sink);
    if (err) {
        if (err != -ECANCELED) {
            bool tls = err == -EKEYREJECTED || err == -EPROTO;
            mars_stat_add(&st->errors[tls ? MARS_ERR_TLS : MARS_ERR_CONNECT], 1);
            MARS_LOG_RL(MARS_LOG_WARN, ms->id, "%s", mars_conn_error(c));
        }
        ms->state = M_DOWN;
        fail_all(ms);
        return;
    }
    const struct sender_conf *conf = ms->conf;
    struct mars_wire_hello h = {.version = MARS_WIRE_VERSION,
                                .token = (const uint8_t *)conf->token,
                                .token_len = conf->token ? strlen(conf->token) : 0,
                                .name = ms->id,
                                .window = (uint32_t)conf->window};
    int n = mars_wire_hello_frame(&h, ms->hello, sizeof(ms->hello));
    ms->state = M_HELLO;
    ms->next_seq = 1;
    ms->acked_seq = 0;
    ms->rlen = 0;
    ms->limit = conf->frame_bytes;
    if (n < 0) {
        drop(ms, "token too long for a HELLO frame");
        return;
    }
    ms->hello_iov = (struct iovec){.iov_base = ms->hello, .iov_len = (size_t)n};
    int rc = mars_conn_send(c, &ms->hello_iov, 1, on_sent);
    if (rc) {
        drop(ms, strerror(-rc));
        return;
    }
    ms->sending = true;
    ms->send_upto = 0;
    ms->hello_deadline = mars_ev_now(mars_sink_loop(ms->sink)) + conf->connect_timeout;
    arm_hello_timer(ms, conf->connect_timeout);
}

/* ---- frames from the receiver ---- */

static int on_ack(struct sender *ms, uint64_t seq)
{
    if (seq <= ms->acked_seq || seq >= ms->next_seq)
        return -EPROTO;
    /* a frame of the send in flight may be acknowledged before that send's callback ran
     * (the kernel had its bytes): it counts as sent */
    uint32_t sent = ms->sending ? ms->send_upto : ms->nsent;
    while (ms->nframes > 0 && slot(ms, 0)->seq <= seq) {
        struct frame *f = slot(ms, 0);
        if (sent == 0) /* acknowledged before it was sent */
            return -EPROTO;
        f->req->frames_out--;
        f->req->acked += f->nevents;
        f->req->wire_bytes += f->len;
        ms->ack_i = (ms->ack_i + 1) % ms->ring_cap;
        ms->nframes--;
        sent--;
        if (ms->nsent > 0)
            ms->nsent--;
        if (ms->sending)
            ms->send_upto--;
    }
    ms->acked_seq = seq;
    return 0;
}

static void on_hello(struct sender *ms, const uint8_t *p, size_t n)
{
    struct mars_wire_hello h;
    void *scratch = NULL;
    if (ms->state != M_HELLO || mars_wire_hello_parse(p, n, &h, &scratch)) {
        mars_wire_hello_destroy(scratch);
        drop(ms, "unexpected or malformed HELLO from the receiver");
        return;
    }
    if (h.max_frame_bytes >= 1024 && h.max_frame_bytes < ms->limit)
        ms->limit = h.max_frame_bytes;
    mars_wire_hello_destroy(scratch);
    ms->state = M_READY;
    if (ms->hello_timing)
        mars_ev_cancel(mars_sink_loop(ms->sink), &ms->op_hello_timer);
    const char *tls = mars_conn_tls_info(ms->conn);
    MARS_LOG_RL(MARS_LOG_INFO, ms->id, "connected to %s%s%s", ms->conf->address,
                *tls ? " with " : "", tls);
}

/* Handles one frame; false when the connection is being closed. */
static bool handle(struct sender *ms, const struct mars_wire_hdr *h, const uint8_t *p)
{
    char reason[256];
    int code = 0;
    switch (h->type) {
    case MARS_WIRE_HELLO:
        on_hello(ms, p, h->length);
        break;
    case MARS_WIRE_ACK:
        if (ms->state != M_READY || on_ack(ms, h->seq)) {
            drop(ms, "acknowledgement out of sequence");
            break;
        }
        complete_ready(ms);
        break;
    case MARS_WIRE_ERROR:
        if (mars_wire_error_parse(p, h->length, &code, reason, sizeof(reason)))
            snprintf(reason, sizeof(reason), "(malformed error frame)");
        MARS_LOG_RL(MARS_LOG_ERROR, ms->id, "%s refused: %s: %s", ms->conf->address,
                    mars_wire_error_name(code), reason);
        drop(ms, "refused by the receiver");
        break;
    case MARS_WIRE_PONG:
        break;
    default:
        drop(ms, "unexpected frame type from the receiver");
        break;
    }
    return ms->state != M_CLOSING && ms->state != M_DOWN;
}

/* core/conn: bytes from the receiver (control frames only). */
static void on_data(struct mars_conn *c, const char *data, size_t n)
{
    struct sender *ms = mars_conn_data(c);
    while (n > 0 && ms->state != M_CLOSING) {
        size_t take = sizeof(ms->rbuf) - ms->rlen < n ? sizeof(ms->rbuf) - ms->rlen : n;
        memcpy(ms->rbuf + ms->rlen, data, take);
        ms->rlen += take;
        data += take;
        n -= take;
        size_t off = 0;
        while (ms->rlen - off >= MARS_WIRE_HDR) {
            struct mars_wire_hdr h;
            const char *why = NULL;
            if (mars_wire_get_hdr(ms->rbuf + off, MARS_WIRE_CONTROL_MAX, &h, &why) ||
                h.type == MARS_WIRE_BATCH) {
                drop(ms, why ? why : "batch frame from the receiver");
                return;
            }
            if (ms->rlen - off < MARS_WIRE_HDR + h.length)
                break;
            if (!handle(ms, &h, ms->rbuf + off + MARS_WIRE_HDR))
                return;
            off += MARS_WIRE_HDR + h.length;
        }
        memmove(ms->rbuf, ms->rbuf + off, ms->rlen - off);
        ms->rlen -= off;
    }
    pump(ms);
}

/* ---- instance ---- */

static int sender_init(struct mars_sink *s)
{
    const struct sender_conf *c = mars_sink_conf(s);
    struct sender *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    ms->sink = s;
    ms->conf = c;
    ms->id = mars_sink_id(s);
    ms->reqs_tail = &ms->reqs;
    ms->ring_cap = (uint32_t)c->window;
    mars_wire_enc_init(&ms->enc);
    int rc = -ENOMEM;
    if (mars_netconf_split_address(c->address, ms->host, sizeof(ms->host), ms->port,
                                   sizeof(ms->port))) {
        rc = -EINVAL; /* sender_check reported it */
        goto fail;
    }
    ms->ring = calloc(ms->ring_cap, sizeof(*ms->ring));
    ms->iov = calloc(ms->ring_cap, sizeof(*ms->iov));
    if (!ms->ring || !ms->iov)
        goto fail;
    if (c->tls.enabled) {
        struct mars_tls_opts o;
        char err[512];
        mars_netconf_tls(&c->tls, &o);
        ms->tls = mars_tls_ctx_create(&o, MARS_TLS_CLIENT, ms->id, err, sizeof(err));
        if (!ms->tls) {
            mars_error(ms->id, "tls: %s", err);
            rc = -EINVAL;
            goto fail;
        }
    }
    struct mars_conn_opts co = {
        .host = ms->host,
        .port = ms->port,
        .connect_timeout_ns = c->connect_timeout,
        .keepalive_ns = KEEPALIVE_NS,
        .tls = ms->tls,
        .server_name = c->tls.server_name,
        .on_data = on_data,
        .on_close = on_lost,
        .on_idle = on_idle,
        .data = ms,
    };
    ms->conn = mars_conn_create(mars_sink_loop(s), &co);
    if (!ms->conn)
        goto fail;
    mars_sink_set_state(s, ms);
    return 0;
fail:
    mars_tls_ctx_destroy(ms->tls);
    free(ms->ring);
    free(ms->iov);
    free(ms);
    return rc;
}

static void sender_abort(struct mars_sink *s)
{
    struct sender *ms = mars_sink_state(s);
    ms->aborting = true;
    if (ms->hello_timing)
        mars_ev_cancel(mars_sink_loop(s), &ms->op_hello_timer);
    if (ms->state == M_OPENING) { /* no data yet: core/conn's open callback gets -ECANCELED */
        mars_conn_close(ms->conn);
        return;
    }
    drop(ms, "shutting down");
}

static void sender_destroy(struct mars_sink *s)
{
    struct sender *ms = mars_sink_state(s);
    mars_conn_destroy(ms->conn); /* the worker ran the loop dry after abort: nothing in flight */
    mars_tls_ctx_destroy(ms->tls);
    for (uint32_t i = 0; i < ms->ring_cap; i++)
        free(ms->ring[i].buf);
    while (ms->reqs) {
        struct preq *p = ms->reqs;
        ms->reqs = p->next;
        free(p);
    }
    mars_wire_enc_fini(&ms->enc);
    free(ms->ring);
    free(ms->iov);
    free(ms);
}

const struct mars_component_desc mars_sink_mars = {
    .name = "mars",
    .description = "Ships events to another mars (its mars source) over the native protocol, "
                   "acknowledged end to end, optionally with TLS.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG,
    .options = sender_options,
    .conf_size = sizeof(struct sender_conf),
    .check = sender_check,
    .sink = {.init = sender_init,
             .write = sender_write,
             .abort = sender_abort,
             .destroy = sender_destroy},
};
