/*
 * conn.c - one connection of the `mars` source: optional TLS handshake, HELLO and token
 * check, BATCH frames decoded and emitted, cumulative in-order ACKs once the pipeline has
 * delivered, ERROR frames for bad peers, and the connection's lifetime.
 *
 * I/O: plain connections use ev recv/send ops; TLS ones the core/tls session's read and
 * write (a TLS read cannot be cancelled alone, so a connection that is refusing its peer
 * just ignores what it reads). Control frames out (HELLO, PONG, ACK, ERROR) are coalesced
 * into one small buffer with one send in flight.
 *
 * Flow control: frames are read and decoded only while the pipeline is not paused
 * (backpressure) and fewer than MAX_INFLIGHT batches of the connection wait for their ack;
 * otherwise the socket is not read, TCP fills up, and the sender's window stops it.
 *
 * Memory: each connection has a RBUF_MIN receive buffer. A bigger frame needs its whole
 * size (and its decompressed size for lz4) at once, charged to the source's
 * max_buffer_bytes across all its connections when its header arrives; when that is spent
 * the connection stops reading (mem_wait) until another gives memory back, which happens
 * as soon as a big frame has been handled: buffers beyond RBUF_MIN are freed right after
 * use, so an idle connection holds only RBUF_MIN.
 *
 * Lifetime: a connection is referenced by its open socket, by each emitted batch not yet
 * acknowledged, and by each callback or frame loop while it runs, so a close never frees it
 * under anyone, and an ack that arrives after the close finds it (and sends nothing). The
 * socket closes once no I/O is in flight; a TLS session is never destroyed inside one of
 * its own callbacks: its idle callback finishes the close instead.
 *
 * Thread: the source's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "mars.pb-c.h"
#include "mars_internal.h"

static void flush_out(struct receiver_conn *c);
static void conn_fail(struct receiver_conn *c, int code, enum mars_error_type err, uint64_t seq,
                      const char *reason);

static struct mars_stats *stats(struct receiver *ms)
{
    return mars_source_stats(ms->src);
}

/* Still talking to the peer (frames are read and answered). */
static bool is_open(const struct receiver_conn *c)
{
    return c->state == S_HELLO || c->state == S_READY;
}

/* ---- connection lifetime ---- */

/* What c has charged to max_buffer_bytes. */
static size_t conn_mem(const struct receiver_conn *c)
{
    return (c->rcap > RBUF_MIN ? c->rcap - RBUF_MIN : 0) + c->dcap;
}

static void conn_unref(struct receiver_conn *c)
{
    if (--c->refs > 0)
        return;
    struct receiver *ms = c->ms;
    if (c->prev)
        c->prev->next = c->next;
    else
        ms->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->mem_wait)
        ms->nwait--;
    size_t held = conn_mem(c);
    ms->mem -= held;
    free(c->rbuf);
    free(c->dbuf);
    free(c);
    if (held)
        mars_receiver_mem_freed(ms, held >= TRIM_MIN);
}

/* Finishes a close once no I/O is in flight. A TLS session is never destroyed inside one
 * of its own callbacks: there its idle callback (on_tls_idle) comes back here. */
static void maybe_finalize(struct receiver_conn *c)
{
    if (c->state != S_CLOSING || c->receiving || c->sending || c->handshaking || c->in_tls_cb ||
        (c->tls && mars_tls_busy(c->tls)))
        return;
    struct receiver *ms = c->ms;
    mars_tls_destroy(c->tls);
    c->tls = NULL;
    close(c->fd);
    c->fd = -1;
    c->state = S_CLOSED;
    ms->nopen--;
    conn_unref(c);
    mars_receiver_maybe_finished(ms);
}

void mars_receiver_conn_close(struct receiver_conn *c)
{
    if (c->state == S_CLOSING || c->state == S_CLOSED)
        return;
    c->state = S_CLOSING;
    struct mars_ev_loop *loop = mars_source_loop(c->ms->src);
    if (c->tls) {
        mars_tls_cancel(c->tls); /* pending requests complete with -ECANCELED */
    } else {
        if (c->receiving)
            mars_ev_cancel(loop, &c->op_recv);
        if (c->sending)
            mars_ev_cancel(loop, &c->op_send);
    }
    maybe_finalize(c);
}

/* Refuses the peer: sends ERROR(code, reason), then closes. Counted under `err`. */
static void conn_fail(struct receiver_conn *c, int code, enum mars_error_type err, uint64_t seq,
                      const char *reason)
{
    if (!is_open(c))
        return;
    mars_stat_add(&stats(c->ms)->errors[err], 1);
    MARS_LOG_RL(MARS_LOG_WARN, c->ms->id, "closing connection from %s: %s: %s", c->peer,
                mars_wire_error_name(code), reason);
    c->err_code = code;
    c->err_seq = seq;
    snprintf(c->err_reason, sizeof(c->err_reason), "%s", reason);
    c->state = S_DRAIN;
    if (c->receiving && !c->tls) /* a TLS read cannot be cancelled alone: it is ignored */
        mars_ev_cancel(mars_source_loop(c->ms->src), &c->op_recv);
    flush_out(c);
}

/* ---- sending: HELLO, PONG, ACK, ERROR, coalesced into one small buffer ---- */

static void on_send(struct mars_ev_op *op, int res);
static void on_tls_send(struct mars_tls *t, int res);

static void put_empty(struct receiver_conn *c, uint8_t type, uint64_t seq)
{
    struct mars_wire_hdr h = {.type = type, .seq = seq};
    mars_wire_put_hdr(c->obuf + c->olen, &h);
    c->olen += MARS_WIRE_HDR;
}

static void flush_out(struct receiver_conn *c)
{
    if (c->sending || c->state == S_CLOSING || c->state == S_CLOSED)
        return;
    if (c->osent == c->olen) {
        c->olen = c->osent = 0;
        size_t cap = sizeof(c->obuf);
        if (c->want_hello) {
            struct mars_wire_hello h = {.version = MARS_WIRE_VERSION,
                                        .name = c->ms->id,
                                        .max_frame_bytes = (uint32_t)c->ms->conf->max_frame_bytes};
            int n = mars_wire_hello_frame(&h, c->obuf, cap);
            c->olen = n > 0 ? (size_t)n : 0;
            c->want_hello = false;
        }
        if (c->want_pong) {
            put_empty(c, MARS_WIRE_PONG, c->want_pong - 1);
            c->want_pong = 0;
        }
        if (c->state == S_READY && c->done_seq > c->acked_seq) {
            put_empty(c, MARS_WIRE_ACK, c->done_seq);
            c->acked_seq = c->done_seq;
        }
        if (c->state == S_DRAIN && c->err_code >= 0) {
            int n = mars_wire_error_frame(c->err_seq, c->err_code, c->err_reason, c->obuf + c->olen,
                                          cap - c->olen);
            c->olen += n > 0 ? (size_t)n : 0;
            c->err_code = -1;
        }
    }
    if (c->olen == c->osent) {
        if (c->state == S_DRAIN)
            mars_receiver_conn_close(c);
        return;
    }
    int rc;
    if (c->tls) {
        c->oiov = (struct iovec){.iov_base = c->obuf + c->osent, .iov_len = c->olen - c->osent};
        rc = mars_tls_write(c->tls, &c->oiov, 1, on_tls_send);
    } else {
        mars_ev_prep_send(&c->op_send, c->fd, c->obuf + c->osent, c->olen - c->osent, on_send, c);
        rc = mars_ev_submit(mars_source_loop(c->ms->src), &c->op_send);
    }
    if (rc) {
        mars_receiver_conn_close(c);
        return;
    }
    c->sending = true;
}

/* A send finished: res bytes went out, or -errno. */
static void sent(struct receiver_conn *c, int res)
{
    c->sending = false;
    if (res > 0)
        c->osent += (size_t)res;
    else if (res != -EAGAIN && res != -EINTR && (is_open(c) || c->state == S_DRAIN))
        mars_receiver_conn_close(c);
    flush_out(c);
}

/* Callbacks hold a reference while they run, so a close inside cannot free c under them. */
static void on_send(struct mars_ev_op *op, int res)
{
    struct receiver_conn *c = op->data;
    c->refs++;
    sent(c, res);
    maybe_finalize(c);
    conn_unref(c);
}

static void on_tls_send(struct mars_tls *t, int res)
{
    struct receiver_conn *c = mars_tls_data(t);
    c->refs++;
    c->in_tls_cb = true;
    sent(c, res == 0 ? (int)(c->olen - c->osent) : (res > 0 ? -EIO : res));
    c->in_tls_cb = false;
    conn_unref(c); /* never the last: the socket's reference goes in on_tls_idle */
}

/* ---- acknowledgements ---- */

static void on_batch_ack(struct mars_batch *b, bool delivered)
{
    struct receiver_conn *c = b->ack.ctx;
    uint64_t seq = b->ack.a;
    struct receiver *ms = c->ms;

    if (delivered)
        mars_stat_add(&stats(ms)->acked_events, b->ack.b);
    c->inflight--;
    if (!delivered) {
        /* the pipeline gave it up (shutdown): the sender must send it again */
        conn_fail(c, MARS__ERROR__CODE__NOT_DELIVERED, MARS_ERR_RETRY, seq,
                  "batch not delivered by this mars");
    } else if (seq > c->done_seq) {
        c->done[seq % MAX_INFLIGHT] = true;
        while (c->done_seq + 1 < c->next_seq && c->done[(c->done_seq + 1) % MAX_INFLIGHT]) {
            c->done_seq++;
            c->done[c->done_seq % MAX_INFLIGHT] = false;
        }
        if (c->state == S_READY) {
            flush_out(c);
            if (c->inflight == MAX_INFLIGHT - 1) /* it had stopped reading: go on */
                mars_receiver_conn_process(c);
        }
    }
    conn_unref(c);
}

/* ---- frames from the peer ---- */

static void on_hello(struct receiver_conn *c, const uint8_t *p, size_t n)
{
    struct receiver *ms = c->ms;
    struct mars_wire_hello h;
    void *scratch = NULL;
    if (mars_wire_hello_parse(p, n, &h, &scratch)) {
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, 0, "HELLO does not parse");
    } else if (h.version != MARS_WIRE_VERSION) {
        conn_fail(c, MARS__ERROR__CODE__BAD_VERSION, MARS_ERR_REJECTED, 0,
                  "unsupported protocol version");
    } else if (ms->conf->token && !mars_wire_token_equal(ms->conf->token, strlen(ms->conf->token),
                                                         h.token, h.token_len)) {
        conn_fail(c, MARS__ERROR__CODE__BAD_TOKEN, MARS_ERR_REJECTED, 0, "wrong token");
    } else {
        char name[65];
        size_t i = 0;
        for (; i < sizeof(name) - 1 && h.name[i]; i++) /* peer text: no control bytes in logs */
            name[i] = (unsigned char)h.name[i] < 0x20 || h.name[i] == 0x7f ? '?' : h.name[i];
        name[i] = '\0';
        mars_info(ms->id, "accepted %s%s%s", c->peer, i ? " from sender " : "", name);
        c->state = S_READY;
        c->want_hello = true;
        flush_out(c);
    }
    mars_wire_hello_destroy(scratch);
}

static void on_batch(struct receiver_conn *c, const struct mars_wire_hdr *h, const uint8_t *p)
{
    struct receiver *ms = c->ms;
    const char *why = NULL;
    if (h->seq != c->next_seq) {
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, h->seq,
                  "batch sequence number out of order");
        return;
    }
    if (h->flags & MARS_WIRE_F_LZ4) {
        if (h->raw_length > c->dcap) { /* reserved with the frame (reserve_frame) */
            conn_fail(c, MARS__ERROR__CODE__TOO_LARGE, MARS_ERR_MEMORY, h->seq, "out of memory");
            return;
        }
        if (mars_wire_unlz4(p, h->length, c->dbuf, h->raw_length)) {
            conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, h->seq,
                      "lz4 payload does not decompress to its length");
            return;
        }
        p = c->dbuf;
    }
    struct mars_batch *b = mars_source_batch(ms->src, 64);
    int rc = b ? mars_wire_decode_batch(p, h->raw_length, b, &why) : -ENOMEM;
    if (c->dbuf) { /* given back at once (see the top) */
        size_t held = c->dcap;
        free(c->dbuf);
        c->dbuf = NULL;
        c->dcap = 0;
        c->ms->mem -= held;
        mars_receiver_mem_freed(c->ms, held >= TRIM_MIN);
    }
    if (rc) {
        if (b)
            mars_batch_release(b); /* no ack set yet: nothing is acknowledged */
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, rc == -ENOMEM ? MARS_ERR_MEMORY : MARS_ERR_PARSE,
                  h->seq, why ? why : "out of memory");
        return;
    }
    c->next_seq++;
    c->inflight++;
    c->refs++;
    b->ack = (struct mars_batch_ack){.fn = on_batch_ack, .ctx = c, .a = h->seq, .b = b->n};
    mars_source_emit(ms->src, b); /* may acknowledge at once (on_batch_ack runs inside) */
}

/* Handles one whole frame. */
static void on_frame(struct receiver_conn *c, const struct mars_wire_hdr *h, const uint8_t *p)
{
    if (c->state == S_HELLO && h->type != MARS_WIRE_HELLO) {
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, 0, "first frame is not HELLO");
        return;
    }
    switch (h->type) {
    case MARS_WIRE_HELLO:
        if (c->state == S_HELLO)
            on_hello(c, p, h->length);
        else
            conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, 0, "second HELLO");
        break;
    case MARS_WIRE_BATCH:
        on_batch(c, h, p);
        break;
    case MARS_WIRE_PING:
        c->want_pong = h->seq + 1;
        flush_out(c);
        break;
    default:
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, h->seq,
                  "unexpected frame type from a sender");
        break;
    }
}

static void on_recv(struct mars_ev_op *op, int res);
static void on_tls_recv(struct mars_tls *t, int res);

static void recv_more(struct receiver_conn *c)
{
    if (c->receiving || !is_open(c) || c->ms->stopping)
        return;
    if (c->rlen ==
        c->rcap) { /* a frame bigger than the buffer: mars_receiver_conn_process grew rcap */
        conn_fail(c, MARS__ERROR__CODE__TOO_LARGE, MARS_ERR_PARSE, 0, "receive buffer full");
        return;
    }
    int rc;
    if (c->tls) {
        rc = mars_tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen, on_tls_recv);
    } else {
        mars_ev_prep_recv(&c->op_recv, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, on_recv, c);
        rc = mars_ev_submit(mars_source_loop(c->ms->src), &c->op_recv);
    }
    if (rc) {
        mars_receiver_conn_close(c);
        return;
    }
    c->receiving = true;
}

/* Makes room for a whole frame of `need` bytes (rbuf starts with it) and, for lz4, its
 * `dneed` decompressed bytes, charged to max_buffer_bytes. Returns 0, -EAGAIN when the
 * budget is spent (c waits: mem_wait) or -ENOMEM. */
static int reserve_frame(struct receiver_conn *c, size_t need, size_t dneed)
{
    struct receiver *ms = c->ms;
    size_t extra = (need > c->rcap ? need - c->rcap : 0) + (dneed > c->dcap ? dneed - c->dcap : 0);
    if (ms->mem + extra > ms->conf->max_buffer_bytes) {
        if (!c->mem_wait) {
            c->mem_wait = true;
            ms->nwait++;
            MARS_LOG_RL(MARS_LOG_INFO, ms->id,
                        "max_buffer_bytes (%llu) is in use: %s waits to read a frame of %zu "
                        "bytes",
                        (unsigned long long)ms->conf->max_buffer_bytes, c->peer, need);
        }
        return -EAGAIN;
    }
    if (c->mem_wait) {
        c->mem_wait = false;
        ms->nwait--;
    }
    if (need > c->rcap) {
        uint8_t *r = realloc(c->rbuf, need);
        if (!r)
            return -ENOMEM;
        ms->mem += need - c->rcap;
        c->rbuf = r;
        c->rcap = need;
    }
    if (dneed > c->dcap) {
        uint8_t *d = realloc(c->dbuf, dneed);
        if (!d)
            return -ENOMEM;
        ms->mem += dneed - c->dcap;
        c->dbuf = d;
        c->dcap = dneed;
    }
    return 0;
}

/* Handles every whole frame in the buffer while the pipeline takes more, then reads on. */
void mars_receiver_conn_process(struct receiver_conn *c)
{
    struct receiver *ms = c->ms;
    size_t off = 0, pending = 0;
    if (c->processing) /* the loop below re-checks the limits before every frame */
        return;
    c->processing = true;
    c->refs++; /* a close below must not free c under this loop */
    while (is_open(c) && c->rlen - off >= MARS_WIRE_HDR) {
        if (mars_source_paused(ms->src) || c->inflight >= MAX_INFLIGHT)
            break; /* resume() or an ack brings us back */
        struct mars_wire_hdr h;
        const char *why = NULL;
        uint32_t max =
            c->state == S_HELLO ? MARS_WIRE_CONTROL_MAX : (uint32_t)ms->conf->max_frame_bytes;
        int rc = mars_wire_get_hdr(c->rbuf + off, max, &h, &why);
        if (rc) {
            conn_fail(c,
                      rc == -EMSGSIZE ? MARS__ERROR__CODE__TOO_LARGE : MARS__ERROR__CODE__MALFORMED,
                      MARS_ERR_PARSE, 0, why);
            break;
        }
        size_t need = MARS_WIRE_HDR + (size_t)h.length;
        size_t dneed = h.type == MARS_WIRE_BATCH && (h.flags & MARS_WIRE_F_LZ4) ? h.raw_length : 0;
        if (need > c->rcap || dneed > c->dcap) {
            if (c->receiving) /* the read in flight lands in rbuf: its completion retries */
                break;
            memmove(c->rbuf, c->rbuf + off, c->rlen - off);
            c->rlen -= off;
            off = 0;
            rc = reserve_frame(c, need, dneed);
            if (rc == -EAGAIN)
                break; /* mem_wait: a wake retries */
            if (rc) {
                conn_fail(c, MARS__ERROR__CODE__TOO_LARGE, MARS_ERR_MEMORY, 0, "out of memory");
                break;
            }
        }
        if (c->rlen - off < need) {
            pending = need;
            break;
        }
        on_frame(c, &h, c->rbuf + off + MARS_WIRE_HDR);
        off += need;
    }
    if (off > 0 && c->rbuf) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->rcap > RBUF_MIN && !c->receiving && c->rlen <= RBUF_MIN && pending <= RBUF_MIN) {
        /* the big frame is handled: give its room back at once (see the top) */
        uint8_t *r = realloc(c->rbuf, RBUF_MIN);
        if (r) {
            size_t held = c->rcap - RBUF_MIN;
            c->rbuf = r;
            c->rcap = RBUF_MIN;
            ms->mem -= held;
            mars_receiver_mem_freed(ms, held >= TRIM_MIN);
        }
    }
    c->processing = false;
    if (!mars_source_paused(ms->src) && c->inflight < MAX_INFLIGHT && !c->mem_wait)
        recv_more(c);
    conn_unref(c);
}

void mars_receiver_conn_wake(struct receiver *ms)
{
    unsigned pass = ++ms->mem_pass;
    /* from the list head each time: processing one connection may free others */
    for (;;) {
        struct receiver_conn *c = ms->conns;
        while (c && (!c->mem_wait || c->mem_pass == pass || !is_open(c)))
            c = c->next;
        if (!c)
            break;
        c->mem_pass = pass;
        mars_receiver_conn_process(c);
    }
}

/* A read finished: res bytes arrived, 0 for the peer's close, or -errno. */
static void received(struct receiver_conn *c, int res)
{
    c->receiving = false;
    if (is_open(c)) {
        if (res > 0) {
            c->rlen += (size_t)res;
            mars_receiver_conn_process(c);
        } else if (res == -EAGAIN || res == -EINTR) {
            recv_more(c);
        } else {
            if (res < 0 && res != -ECONNRESET)
                mars_stat_add(&stats(c->ms)->errors[MARS_ERR_READ], 1);
            if (c->inflight > 0 || res < 0)
                MARS_LOG_RL(MARS_LOG_WARN, c->ms->id, "connection from %s %s", c->peer,
                            res == 0 ? "closed by the sender" : strerror(-res));
            mars_receiver_conn_close(c);
        }
    }
}

static void on_recv(struct mars_ev_op *op, int res)
{
    struct receiver_conn *c = op->data;
    c->refs++;
    received(c, res);
    maybe_finalize(c);
    conn_unref(c);
}

static void on_tls_recv(struct mars_tls *t, int res)
{
    struct receiver_conn *c = mars_tls_data(t);
    c->refs++;
    c->in_tls_cb = true;
    received(c, res);
    c->in_tls_cb = false;
    conn_unref(c);
}

static void on_tls_idle(struct mars_tls *t, int res)
{
    maybe_finalize(mars_tls_data(t));
}

static void on_tls_handshake(struct mars_tls *t, int res)
{
    struct receiver_conn *c = mars_tls_data(t);
    c->handshaking = false;
    if (c->state != S_TLS)
        return; /* closing: the idle callback finishes */
    c->refs++;
    c->in_tls_cb = true;
    if (res < 0) {
        mars_stat_add(&stats(c->ms)->errors[MARS_ERR_TLS], 1);
        MARS_LOG_RL(MARS_LOG_WARN, c->ms->id, "TLS handshake with %s failed: %s", c->peer,
                    mars_tls_error(t));
        mars_receiver_conn_close(c);
    } else {
        mars_debug(c->ms->id, "%s: %s %s", c->peer, mars_tls_version(t), mars_tls_cipher(t));
        c->state = S_HELLO;
        recv_more(c);
    }
    c->in_tls_cb = false;
    conn_unref(c);
}

/* Starts the TLS handshake of a new connection. Returns 0 or -errno. */
static int tls_start(struct receiver_conn *c)
{
    c->tls = mars_tls_create(c->ms->tls, mars_source_loop(c->ms->src), c->fd, NULL, c);
    if (!c->tls)
        return -ENOMEM;
    mars_tls_set_idle_cb(c->tls, on_tls_idle);
    int rc = mars_tls_handshake(c->tls, on_tls_handshake);
    if (rc)
        return rc;
    c->state = S_TLS;
    c->handshaking = true;
    return 0;
}

void mars_receiver_conn_start(struct receiver *ms, int fd)
{
    struct receiver_conn *c = calloc(1, sizeof(*c));
    uint8_t *rbuf = malloc(RBUF_MIN);
    if (!c || !rbuf) {
        free(c);
        free(rbuf);
        close(fd);
        mars_stat_add(&stats(ms)->errors[MARS_ERR_MEMORY], 1);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        mars_wire_format_address((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    else
        snprintf(c->peer, sizeof(c->peer), "?");
    mars_wire_tune(fd);
    c->ms = ms;
    c->fd = fd;
    c->state = S_HELLO;
    c->refs = 1;
    c->rbuf = rbuf;
    c->rcap = RBUF_MIN;
    c->next_seq = 1;
    c->err_code = -1;
    c->opened_ns = mars_ev_now(mars_source_loop(ms->src));
    c->next = ms->conns;
    if (ms->conns)
        ms->conns->prev = c;
    ms->conns = c;
    ms->nopen++;
    if (ms->nopen > (unsigned)ms->conf->max_connections) {
        if (!ms->tls) {
            conn_fail(c, MARS__ERROR__CODE__BUSY, MARS_ERR_REJECTED, 0, "too many connections");
            return;
        }
        /* refused before any TLS: a plain ERROR frame would not reach a TLS client anyway */
        mars_stat_add(&stats(ms)->errors[MARS_ERR_REJECTED], 1);
        MARS_LOG_RL(MARS_LOG_WARN, ms->id, "refusing %s: max_connections (%lld) reached", c->peer,
                    (long long)ms->conf->max_connections);
        mars_receiver_conn_close(c);
        return;
    }
    int rc = ms->tls ? tls_start(c) : 0;
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, ms->id, "cannot start TLS with %s: %s", c->peer, strerror(-rc));
        c->state = S_HELLO;
        mars_receiver_conn_close(c);
        return;
    }
    recv_more(c);
}

void mars_receiver_conn_tick(struct receiver_conn *c, int64_t now)
{
    struct receiver *ms = c->ms;
    if ((c->state != S_HELLO && c->state != S_TLS) ||
        now - c->opened_ns <= ms->conf->handshake_timeout)
        return;
    if (c->state == S_TLS) {
        mars_stat_add(&stats(ms)->errors[MARS_ERR_TLS], 1);
        MARS_LOG_RL(MARS_LOG_WARN, ms->id,
                    "closing %s: no TLS handshake within "
                    "handshake_timeout",
                    c->peer);
        mars_receiver_conn_close(c);
    } else {
        conn_fail(c, MARS__ERROR__CODE__MALFORMED, MARS_ERR_PARSE, 0,
                  "no HELLO within handshake_timeout");
    }
}

void mars_receiver_conn_destroy(struct receiver_conn *c)
{
    mars_tls_destroy(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    free(c->dbuf);
    free(c);
}
