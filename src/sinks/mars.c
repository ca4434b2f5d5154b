/*
 * mars.c - the `mars` sink: ships events to another mars (the `mars` source of an
 * aggregator) over the mars native protocol (docs/mars-protocol.md, pipeline/wire.h).
 *
 * Connection: made when a request arrives and none is up (connect, then HELLO with the
 * token; the server's HELLO says it accepted and how big a frame it takes), kept between
 * requests. A request is cut into BATCH frames of at most frame_bytes (packed protobuf,
 * before lz4), each with the next sequence number of the connection. Up to `window` frames
 * are unacknowledged at once; the unsent ones go out together in one sendmsg. The receiver
 * acknowledges in order and cumulatively (ACK n covers every frame up to n) only once its
 * own pipeline has delivered them, so a request is reported OK only when the ACK of its last
 * frame arrives: at-least-once holds across the hop.
 *
 * Failure: a lost connection, an ERROR frame (bad token, too large, the receiver stopping),
 * a protocol violation or the connect timeout closes the connection; once its ops have
 * completed, every request still open fails with MARS_SINK_RETRY and the engine resends it
 * after its backoff (which doubles with jitter: that is the reconnect backoff). What the
 * receiver may already hold is sent again (duplicates, never losses), except the frames of
 * a retried request that were already acknowledged: a retry of the same request resumes
 * after them. A dead peer that never closes is found by TCP keepalive; there is no ACK
 * timeout, because a receiver whose pipeline is blocked legitimately holds ACKs back (that
 * is the backpressure that keeps this side's memory bounded).
 *
 * Addresses are resolved on every connect (an IP literal at once; a name blocks the worker
 * for the lookup, once per connect, never per request). TLS is not available yet.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/log.h"
#include "pipeline/component.h"
#include "pipeline/wire.h"

static const char *const compression_names[] = {"none", "lz4", NULL};

struct msink_conf {
    char *address;
    char *token;
    int compression;
    int64_t window;
    uint64_t frame_bytes;
    int64_t connect_timeout;
};

#define OFF(f) offsetof(struct msink_conf, f)
static const struct mars_opt msink_options[] = {
    {.name = "address", .type = MARS_OPT_STRING, .offset = OFF(address), .flags = MARS_OPT_REQUIRED,
     .desc = "host:port of the receiving mars source ([v6]:port for IPv6); a name is resolved "
             "on every connect."},
    {.name = "token", .type = MARS_OPT_SECRET, .offset = OFF(token),
     .desc = "Shared token the receiver checks (token_file or ${ENV} keep it out of the "
             "config); unset sends none."},
    {.name = "compression", .type = MARS_OPT_ENUM, .offset = OFF(compression), .def = "lz4",
     .choices = compression_names,
     .desc = "lz4 compresses every batch frame (a frame lz4 does not shrink goes plain); none "
             "never does."},
    {.name = "window", .type = MARS_OPT_INT, .offset = OFF(window), .def = "8", .min = 1,
     .max = 1024, .desc = "Most batch frames sent and not yet acknowledged on the connection."},
    {.name = "frame_bytes", .type = MARS_OPT_SIZE, .offset = OFF(frame_bytes), .def = "1MiB",
     .min = 4096, .max = (int64_t)256 << 20,
     .desc = "Largest batch frame before compression (lowered to what the receiver accepts); "
             "a single event larger than this is dropped and counted."},
    {.name = "connect_timeout", .type = MARS_OPT_DURATION, .offset = OFF(connect_timeout),
     .def = "10s", .min = 1000000, .max = (int64_t)600 * 1000000000,
     .desc = "How long connecting and the HELLO exchange may take before the attempt fails "
             "(and the request is retried)."},
    {.name = NULL},
};

enum conn_state { C_DOWN, C_CONNECTING, C_HELLO, C_READY, C_CLOSING };

/* A request the engine handed over, with its encoding cursor. */
struct preq {
    struct preq *next;
    struct mars_sink_req *r;
    uint32_t bi, ei;      /* next event to encode: batch bi, event ei */
    uint64_t consumed;    /* events the cursor passed (resumed ones included) */
    uint64_t acked;       /* events covered by acknowledged frames (or resumed) */
    uint32_t frames_out;  /* frames of this request not acknowledged yet */
    bool encoded_all;
    uint64_t wire_bytes;
};

struct frame {
    struct preq *req;
    uint64_t seq;
    uint32_t nevents; /* events the frame covers (dropped oversize ones included) */
    uint8_t *buf;     /* owned; reused */
    size_t cap, len, sent;
};

struct msink {
    struct mars_sink *sink;
    const struct msink_conf *conf;
    const char *id;
    enum conn_state state;
    int fd;
    unsigned ops; /* ops in flight on the connection (connect, send, recv, timer) */
    bool sending, receiving, timing, aborting, pumping;
    struct mars_ev_op op_conn, op_send, op_recv, op_timer;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char peer[64];

    struct preq *reqs, **reqs_tail; /* open requests, oldest first */
    struct frame *ring;             /* window slots: [ack_i, ack_i + nframes) */
    uint32_t ring_cap, ack_i, nframes, nsent; /* nsent: frames fully written, from ack_i */
    uint64_t next_seq, acked_seq;
    size_t limit; /* frame payload limit: min(frame_bytes, receiver's max) */

    struct mars_wire_enc enc;
    struct iovec *iov;
    uint8_t rbuf[2 * MARS_WIRE_CONTROL_MAX + MARS_WIRE_HDR];
    size_t rlen;
    uint8_t hello[MARS_WIRE_CONTROL_MAX + MARS_WIRE_HDR];
    size_t hello_len, hello_sent;

    /* the request that failed last, to resume after its acknowledged frames on retry */
    struct mars_sink_req *resume_r;
    struct mars_batch *resume_b0;
    uint64_t resume_acked;
};

static void pump(struct msink *ms);
static void conn_open(struct msink *ms);
static void conn_close(struct msink *ms, const char *why);

static struct frame *slot(struct msink *ms, uint32_t k)
{
    return &ms->ring[(ms->ack_i + k) % ms->ring_cap];
}

static void op_done(struct msink *ms);

/* ---- requests ---- */

static void finish_req(struct msink *ms, struct preq *p, enum mars_sink_result res)
{
    struct preq **pp = &ms->reqs;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    if (ms->reqs_tail == &p->next)
        ms->reqs_tail = pp;
    struct mars_sink_req *r = p->r;
    uint64_t bytes = p->wire_bytes;
    if (res == MARS_SINK_RETRY && p->acked > 0 && r->n > 0) {
        ms->resume_r = r;
        ms->resume_b0 = r->batches[0];
        ms->resume_acked = p->acked;
    }
    free(p);
    mars_sink_done(ms->sink, r, res, bytes); /* may call write again at once */
}

static void complete_ready(struct msink *ms)
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

static void msink_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct msink *ms = mars_sink_state(s);
    struct preq *p = calloc(1, sizeof(*p));
    if (!p) {
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    p->r = r;
    if (r == ms->resume_r && r->attempt > 0 && r->n > 0 && r->batches[0] == ms->resume_b0) {
        skip_events(p, ms->resume_acked); /* the receiver has those already */
        p->acked = p->consumed;
    } else {
        skip_events(p, 0);
    }
    ms->resume_r = NULL;
    *ms->reqs_tail = p;
    ms->reqs_tail = &p->next;
    pump(ms);
}

/* ---- frames ---- */

/* Encodes the next frame of the oldest request that has events left into a free slot.
 * Returns 1 when a frame was queued, 0 when there is nothing to encode, -errno. */
static int encode_frame(struct msink *ms)
{
    struct preq *p = ms->reqs;
    while (p && p->encoded_all)
        p = p->next;
    if (!p)
        return 0;
    struct mars_stats *st = mars_sink_stats(ms->sink);
    uint64_t start = p->consumed;
    mars_wire_enc_reset(&ms->enc);
    while (!p->encoded_all) {
        const struct mars_event *ev = &p->r->batches[p->bi]->ev[p->ei];
        int rc = mars_wire_enc_add(&ms->enc, ev, ms->limit);
        if (rc == -ENOSPC)
            break;
        if (rc == -ENOMEM)
            return rc;
        if (rc == -EMSGSIZE) {
            mars_stat_add(&st->errors[MARS_ERR_OVERSIZE], 1);
            mars_stat_add(&st->discarded_unintentional, 1);
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
    f->sent = 0;
    f->seq = ms->next_seq++;
    f->req = p;
    f->nevents = n;
    p->frames_out++;
    ms->nframes++;
    return 1;
}

static void on_send(struct mars_ev_op *op, int res);

static void send_more(struct msink *ms)
{
    if (ms->sending || ms->state != C_READY || ms->nsent == ms->nframes)
        return;
    int n = 0;
    for (uint32_t k = ms->nsent; k < ms->nframes; k++) {
        struct frame *f = slot(ms, k);
        ms->iov[n].iov_base = f->buf + f->sent;
        ms->iov[n].iov_len = f->len - f->sent;
        n++;
    }
    mars_ev_prep_sendmsg(&ms->op_send, ms->fd, ms->iov, n, on_send, ms);
    int rc = mars_ev_submit(mars_sink_loop(ms->sink), &ms->op_send);
    if (rc) {
        conn_close(ms, strerror(-rc));
        return;
    }
    ms->sending = true;
    ms->ops++;
}

static void on_send(struct mars_ev_op *op, int res)
{
    struct msink *ms = op->data;
    ms->sending = false;
    if (ms->state == C_READY && (res == -EAGAIN || res == -EINTR))
        res = 0;
    else if (ms->state == C_READY && res <= 0)
        conn_close(ms, res == 0 ? "connection closed" : strerror(-res));
    size_t left = res > 0 ? (size_t)res : 0;
    while (left > 0 && ms->nsent < ms->nframes) {
        struct frame *f = slot(ms, ms->nsent);
        size_t take = f->len - f->sent < left ? f->len - f->sent : left;
        f->sent += take;
        left -= take;
        if (f->sent == f->len)
            ms->nsent++;
    }
    op_done(ms);
    if (ms->state == C_READY)
        send_more(ms);
}

static void pump(struct msink *ms)
{
    if (ms->pumping) /* finish_req -> mars_sink_done -> write -> pump: the loop below goes on */
        return;
    ms->pumping = true;
    if (ms->state == C_DOWN && ms->reqs && !ms->aborting)
        conn_open(ms);
    while (ms->state == C_READY && ms->nframes < ms->ring_cap) {
        int rc = encode_frame(ms);
        if (rc < 0) {
            conn_close(ms, "out of memory encoding a frame");
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

static void fail_all(struct msink *ms)
{
    for (struct preq *p = ms->reqs; p; p = p->next)
        p->frames_out = 0;
    ms->nframes = ms->nsent = 0;
    ms->ack_i = 0;
    enum mars_sink_result res = ms->aborting ? MARS_SINK_ABORTED : MARS_SINK_RETRY;
    while (ms->reqs) /* RETRY and ABORTED never call write back synchronously */
        finish_req(ms, ms->reqs, res);
}

/* Called as each connection op completes; the last one of a closing connection closes the
 * socket and fails what was open (only now: the ops owned the frame buffers until here). */
static void op_done(struct msink *ms)
{
    ms->ops--;
    if (ms->state != C_CLOSING || ms->ops > 0)
        return;
    close(ms->fd);
    ms->fd = -1;
    ms->state = C_DOWN;
    fail_all(ms);
}

static void conn_close(struct msink *ms, const char *why)
{
    if (ms->state == C_CLOSING || ms->state == C_DOWN)
        return;
    if (!ms->aborting && (ms->reqs || ms->state != C_READY))
        MARS_LOG_RL(MARS_LOG_WARN, ms->id, "connection to %s failed: %s", ms->conf->address, why);
    else
        mars_debug(ms->id, "connection to %s closed: %s", ms->conf->address, why);
    ms->state = C_CLOSING;
    struct mars_ev_loop *loop = mars_sink_loop(ms->sink);
    if (ms->sending)
        mars_ev_cancel(loop, &ms->op_send);
    if (ms->receiving)
        mars_ev_cancel(loop, &ms->op_recv);
    if (ms->timing)
        mars_ev_cancel(loop, &ms->op_timer);
    if (ms->ops == 0) { /* nothing in flight: finish now */
        ms->ops = 1;
        op_done(ms);
    }
}

static void on_recv(struct mars_ev_op *op, int res);

static void recv_more(struct msink *ms)
{
    if (ms->receiving || ms->state == C_CLOSING || ms->state == C_DOWN)
        return;
    mars_ev_prep_recv(&ms->op_recv, ms->fd, ms->rbuf + ms->rlen, sizeof(ms->rbuf) - ms->rlen,
                      on_recv, ms);
    int rc = mars_ev_submit(mars_sink_loop(ms->sink), &ms->op_recv);
    if (rc) {
        conn_close(ms, strerror(-rc));
        return;
    }
    ms->receiving = true;
    ms->ops++;
}

static void on_hello_sent(struct mars_ev_op *op, int res);

static void send_hello(struct msink *ms)
{
    mars_ev_prep_send(&ms->op_send, ms->fd, ms->hello + ms->hello_sent,
                      ms->hello_len - ms->hello_sent, on_hello_sent, ms);
    int rc = mars_ev_submit(mars_sink_loop(ms->sink), &ms->op_send);
    if (rc) {
        conn_close(ms, strerror(-rc));
        return;
    }
    ms->sending = true;
    ms->ops++;
}

static void on_hello_sent(struct mars_ev_op *op, int res)
{
    struct msink *ms = op->data;
    ms->sending = false;
    if (ms->state == C_HELLO) {
        if (res > 0)
            ms->hello_sent += (size_t)res;
        if (res <= 0 && res != -EAGAIN && res != -EINTR)
            conn_close(ms, res == 0 ? "connection closed" : strerror(-res));
        else if (ms->hello_sent < ms->hello_len)
            send_hello(ms);
    }
    op_done(ms);
    /* the receiver's HELLO may have been handled before this completion ran: frames queued
     * meanwhile waited for the send op to be free */
    if (ms->state == C_READY)
        send_more(ms);
}

static void on_connect(struct mars_ev_op *op, int res)
{
    struct msink *ms = op->data;
    if (ms->state == C_CONNECTING) {
        if (res < 0) {
            conn_close(ms, strerror(-res));
        } else {
            const struct msink_conf *c = ms->conf;
            struct mars_wire_hello h = {.version = MARS_WIRE_VERSION,
                                        .token = (const uint8_t *)c->token,
                                        .token_len = c->token ? strlen(c->token) : 0,
                                        .name = ms->id,
                                        .window = (uint32_t)c->window};
            int n = mars_wire_hello_frame(&h, ms->hello, sizeof(ms->hello));
            if (n < 0) {
                conn_close(ms, "token too long for a HELLO frame");
            } else {
                ms->hello_len = (size_t)n;
                ms->hello_sent = 0;
                ms->state = C_HELLO;
                send_hello(ms);
                recv_more(ms);
            }
        }
    }
    op_done(ms);
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct msink *ms = op->data;
    ms->timing = false;
    if (res == 0 && (ms->state == C_CONNECTING || ms->state == C_HELLO))
        conn_close(ms, "connect timeout (no HELLO from the receiver)");
    op_done(ms);
}

static void conn_open(struct msink *ms)
{
    struct mars_ev_loop *loop = mars_sink_loop(ms->sink);
    int rc = mars_wire_parse_address(ms->conf->address, &ms->addr, &ms->addrlen);
    int fd = rc ? rc : mars_wire_socket(ms->addr.ss_family);
    if (fd < 0) {
        MARS_LOG_RL(MARS_LOG_WARN, ms->id, "cannot connect to %s: %s", ms->conf->address,
                    rc == -EHOSTUNREACH ? "name not resolved" : strerror(-fd));
        fail_all(ms);
        return;
    }
    ms->fd = fd;
    ms->state = C_CONNECTING;
    ms->next_seq = 1;
    ms->acked_seq = 0;
    ms->rlen = 0;
    ms->limit = ms->conf->frame_bytes;
    mars_ev_prep_connect(&ms->op_conn, fd, (struct sockaddr *)&ms->addr, ms->addrlen, on_connect,
                         ms);
    rc = mars_ev_submit(loop, &ms->op_conn);
    if (rc) {
        ms->ops = 1;
        ms->state = C_CLOSING;
        op_done(ms); /* closes fd, fails the requests */
        return;
    }
    ms->ops++;
    mars_ev_prep_timer(&ms->op_timer, ms->conf->connect_timeout, on_timer, ms);
    if (mars_ev_submit(loop, &ms->op_timer) == 0) {
        ms->timing = true;
        ms->ops++;
    }
}

/* ---- frames from the receiver ---- */

static int on_ack(struct msink *ms, uint64_t seq)
{
    if (seq <= ms->acked_seq || seq >= ms->next_seq)
        return -EPROTO;
    while (ms->nframes > 0 && slot(ms, 0)->seq <= seq) {
        struct frame *f = slot(ms, 0);
        if (ms->nsent == 0) /* acknowledged before we finished sending it */
            return -EPROTO;
        f->req->frames_out--;
        f->req->acked += f->nevents;
        f->req->wire_bytes += f->len;
        ms->ack_i = (ms->ack_i + 1) % ms->ring_cap;
        ms->nframes--;
        ms->nsent--;
    }
    ms->acked_seq = seq;
    return 0;
}

static void on_hello(struct msink *ms, const uint8_t *p, size_t n)
{
    struct mars_wire_hello h;
    void *scratch = NULL;
    if (ms->state != C_HELLO || mars_wire_hello_parse(p, n, &h, &scratch)) {
        mars_wire_hello_free(scratch);
        conn_close(ms, "unexpected or malformed HELLO from the receiver");
        return;
    }
    if (h.max_frame_bytes >= 1024 && h.max_frame_bytes < ms->limit)
        ms->limit = h.max_frame_bytes;
    mars_wire_hello_free(scratch);
    ms->state = C_READY;
    if (ms->timing)
        mars_ev_cancel(mars_sink_loop(ms->sink), &ms->op_timer);
    mars_info(ms->id, "connected to %s", ms->conf->address);
}

/* Handles one frame; false when the connection was closed. */
static bool handle(struct msink *ms, const struct mars_wire_hdr *h, const uint8_t *p)
{
    char reason[256];
    int code;
    switch (h->type) {
    case MARS_WIRE_HELLO:
        on_hello(ms, p, h->length);
        break;
    case MARS_WIRE_ACK:
        if (ms->state != C_READY || on_ack(ms, h->seq)) {
            conn_close(ms, "acknowledgement out of sequence");
            break;
        }
        complete_ready(ms);
        break;
    case MARS_WIRE_ERROR:
        if (mars_wire_error_parse(p, h->length, &code, reason, sizeof(reason)))
            snprintf(reason, sizeof(reason), "(malformed error frame)");
        MARS_LOG_RL(MARS_LOG_ERROR, ms->id, "%s refused: %s: %s", ms->conf->address,
                    mars_wire_error_name(code), reason);
        conn_close(ms, "refused by the receiver");
        break;
    case MARS_WIRE_PONG:
        break;
    default:
        conn_close(ms, "unexpected frame type from the receiver");
        break;
    }
    return ms->state != C_CLOSING && ms->state != C_DOWN;
}

static void on_recv(struct mars_ev_op *op, int res)
{
    struct msink *ms = op->data;
    ms->receiving = false;
    if (ms->state == C_CLOSING || ms->state == C_DOWN) {
        op_done(ms);
        return;
    }
    if (res == -EAGAIN || res == -EINTR)
        res = -EAGAIN;
    else if (res <= 0)
        conn_close(ms, res == 0 ? "closed by the receiver" : strerror(-res));
    else
        ms->rlen += (size_t)res;
    size_t off = 0;
    while (ms->state != C_CLOSING && ms->rlen - off >= MARS_WIRE_HDR) {
        struct mars_wire_hdr h;
        const char *why = NULL;
        if (mars_wire_get_hdr(ms->rbuf + off, MARS_WIRE_CONTROL_MAX, &h, &why) ||
            h.type == MARS_WIRE_BATCH) {
            conn_close(ms, why ? why : "batch frame from the receiver");
            break;
        }
        if (ms->rlen - off < MARS_WIRE_HDR + h.length)
            break;
        if (!handle(ms, &h, ms->rbuf + off + MARS_WIRE_HDR))
            break;
        off += MARS_WIRE_HDR + h.length;
    }
    if (off > 0 && ms->state != C_CLOSING) {
        memmove(ms->rbuf, ms->rbuf + off, ms->rlen - off);
        ms->rlen -= off;
    }
    recv_more(ms);
    op_done(ms);
    pump(ms);
}

/* ---- instance ---- */

static int msink_init(struct mars_sink *s)
{
    const struct msink_conf *c = mars_sink_conf(s);
    struct msink *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    ms->sink = s;
    ms->conf = c;
    ms->id = mars_sink_id(s);
    ms->fd = -1;
    ms->reqs_tail = &ms->reqs;
    ms->ring_cap = (uint32_t)c->window;
    ms->ring = calloc(ms->ring_cap, sizeof(*ms->ring));
    ms->iov = calloc(ms->ring_cap, sizeof(*ms->iov));
    mars_wire_enc_init(&ms->enc);
    if (!ms->ring || !ms->iov) {
        free(ms->ring);
        free(ms->iov);
        free(ms);
        return -ENOMEM;
    }
    int rc = mars_wire_parse_address(c->address, &ms->addr, &ms->addrlen);
    if (rc == -EINVAL) {
        mars_error(ms->id, "address %s: expected host:port", c->address);
        free(ms->ring);
        free(ms->iov);
        free(ms);
        return rc;
    }
    if (rc)
        mars_warn(ms->id, "address %s does not resolve yet; will retry", c->address);
    mars_sink_set_state(s, ms);
    return 0;
}

static void msink_abort(struct mars_sink *s)
{
    struct msink *ms = mars_sink_state(s);
    ms->aborting = true;
    conn_close(ms, "shutting down");
}

static void msink_destroy(struct mars_sink *s)
{
    struct msink *ms = mars_sink_state(s);
    if (ms->fd >= 0)
        close(ms->fd);
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
                   "acknowledged end to end.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG,
    .options = msink_options,
    .conf_size = sizeof(struct msink_conf),
    .sink = {.init = msink_init, .write = msink_write, .abort = msink_abort,
             .destroy = msink_destroy},
};
