/*
 * http2_direct.c - h2c by prior knowledge without libcurl: the requests with .direct and
 * .http2_prior_knowledge to an http:// URL (gRPC to a plain peer, core/grpc.c) run as
 * streams of an HTTP/2 session over mars's own connection (core/conn), with libnghttp2
 * doing the framing, HPACK and flow control.
 *
 * Why not libcurl for these: loading it initialises OpenSSL and maps about twenty libraries
 * (1.5 MiB or more of resident memory for a pipeline whose only HTTP is gRPC to a plain
 * OAP), and libcurl 7.88 cannot reuse an h2c connection (protocols.md §13), so every call
 * paid a TCP handshake. Here a client keeps one session per host and port, and calls share
 * it as concurrent streams.
 *
 * How it works. A session (struct h2_conn) is an nghttp2 client session fed by hand:
 * nghttp2_session_mem_recv() gets what core/conn reads, and nghttp2_session_mem_send()'s
 * frames are gathered into our own buffer and written with one mars_conn_send() at a time
 * (core/conn allows one in flight); the next batch goes when it completes. The session
 * opens with the client preface and SETTINGS (no push, a 1 MiB stream window) and raises
 * the connection window to 1 MiB, so answers are not throttled. A request (struct
 * h2_stream) is one nghttp2_submit_request(): the pseudo-headers, the caller's headers with
 * names in lower case and the connection-specific ones dropped, user-agent, authorization,
 * content-length, and the body through a data provider reading body or body_iov. Requests
 * past the peer's SETTINGS_MAX_CONCURRENT_STREAMS wait in nghttp2's queue until a stream
 * closes. What comes back: :status to the status, every other header and every trailer to
 * mars_http_priv_header() as "name: value\r\n", DATA to mars_http_priv_body(); the stream's
 * close ends the request.
 *
 * Failures. A stream reset by the peer fails with -ECONNRESET; REFUSED_STREAM, a stream
 * above a GOAWAY's last stream id, or one whose HEADERS never left, was not processed and
 * is sent once more (on a new session when this one is going away). When the connection
 * is lost, the same streams and those on a kept session that had heard nothing since they
 * went out (the peer had closed it while idle) go once more on a new connection; the rest
 * fail. Cancel and the per-request deadline (one timer per session, for its earliest
 * deadline) reset just their stream with CANCEL; the session lives on. fresh_connection
 * gets a session of its own, closed when its stream ends.
 *
 * Reentrancy and lifetimes. nghttp2 calls back from inside mem_recv and mem_send, and a
 * request's done() may submit, cancel or shut the client down from there: a session is
 * never sent on while inside nghttp2 (in_session; the send goes out when nghttp2 returns),
 * a killed session is only marked and its connection closed, and the session and its
 * connection are freed from the client's deferred work once core/conn and its timer have
 * no op in flight, never inside one of its own callbacks (core/direct_conn.c, shared with
 * http_direct.c).
 *
 * Thread: the client's loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/conn.h"
#include "core/grow.h"
#include "core/http2_nv.h"
#include "core/http_client_internal.h"

#define KEEPALIVE_NS (60LL * 1000000000)
#define WINDOW       (1 << 20)     /* our receive window, per stream and for the session */
#define OUT_BATCH    (256u * 1024) /* frames gathered for one send */

struct h2_conn {
    struct mars_direct_conn d; /* client, connection, peer, timer, lists */
    nghttp2_session *s;
    struct h2_stream *streams; /* submitted on this session and not ended */
    uint8_t *out;              /* frames of the send in flight */
    size_t out_len, out_cap;
    struct iovec iov;
    uint64_t rx; /* bytes received so far */
    int32_t goaway_last;
    uint32_t goaway_error;
    bool opened;     /* was READY */
    bool single;     /* fresh_connection: for one stream only */
    bool draining;   /* GOAWAY received or stream ids used up: no new streams */
    bool goaway;     /* goaway_last is set */
    bool in_session; /* inside nghttp2_session_mem_recv / mem_send */
    bool sending;
};

static struct h2_conn *h2_of(struct mars_direct_conn *d)
{
    return MARS_CONTAINER_OF(d, struct h2_conn, d);
}

struct h2_stream {
    struct mars_http_priv *p;
    struct h2_conn *conn; /* NULL when not on a session */
    int32_t id;
    char *host, *port;
    struct mars_h2_headers hdr; /* the request's header block */
    bool has_body;
    int up_iov;       /* the body piece being sent */
    size_t up_off;    /* bytes of it sent */
    int status;       /* final :status */
    int64_t deadline; /* monotonic ns; 0: none */
    uint64_t rx_mark; /* conn->rx when submitted on a session already open */
    bool reused, retried, headers_sent, interim, end_seen, peer_reset;
    struct h2_stream *prev, *next; /* on conn->streams, or a list being failed */
};

/* nghttp2 reads the body: body, or body_iov piece by piece, copied into its DATA frame. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)src;
    (void)ud;
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* cancelled: its RST goes first */
    const struct mars_http_req *r = st->p->req;
    const struct iovec one = {.iov_base = (void *)r->body, .iov_len = r->body_len};
    const struct iovec *v = r->body ? &one : r->body_iov;
    int cnt = r->body ? 1 : r->body_iovcnt;
    size_t done = 0;
    while (st->up_iov < cnt) {
        size_t left = v[st->up_iov].iov_len - st->up_off;
        if (left == 0) {
            st->up_iov++;
            st->up_off = 0;
            continue;
        }
        if (done == len)
            break;
        size_t take = left < len - done ? left : len - done;
        memcpy(buf + done, (const char *)v[st->up_iov].iov_base + st->up_off, take);
        done += take;
        st->up_off += take;
    }
    if (st->up_iov >= cnt)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)done;
}

/* ---- sessions ---- */

static void conn_flush(struct h2_conn *hc);
static void conn_lost(struct h2_conn *hc, int err, const char *text);
static int stream_go(struct h2_stream *st);
static void on_timer(struct mars_ev_op *op, int res);

static void stream_unlink(struct h2_stream **head, struct h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        *head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
}

/* Takes every stream off hc's session (nghttp2 forgets them) into a list of its own. */
static struct h2_stream *conn_take_streams(struct h2_conn *hc)
{
    struct h2_stream *list = hc->streams;
    hc->streams = NULL;
    for (struct h2_stream *st = list; st; st = st->next) {
        if (st->id > 0)
            nghttp2_session_set_stream_user_data(hc->s, st->id, NULL);
        st->conn = NULL;
    }
    return list;
}

/* Closes hc for good: to the graveyard, freed by mars_http2_direct_reap. Streams still on
 * it are dropped silently (the callers have ended or moved theirs). */
static void conn_kill(struct h2_conn *hc)
{
    if (hc->d.closed)
        return;
    struct mars_http *h = hc->d.h;
    struct h2_stream *left = conn_take_streams(hc);
    while (left)
        stream_unlink(&left, left);
    mars_direct_conn_bury(&hc->d, &h->h2_conns, &h->h2_graveyard);
}

/* Frees hc, which is on no list and has no op of its own in flight. */
static void conn_free(struct mars_direct_conn *d)
{
    struct h2_conn *hc = h2_of(d);
    nghttp2_session_del(hc->s);
    mars_direct_conn_fini(d);
    free(hc->out);
    free(hc);
}

static void timer_arm(struct h2_conn *hc, int64_t due)
{
    mars_direct_conn_timer_arm(&hc->d, due, on_timer);
}

static void on_sent(struct mars_conn *c, int err)
{
    struct h2_conn *hc = mars_conn_data(c);
    hc->sending = false;
    if (hc->d.closed)
        return;
    if (err)
        conn_lost(hc, err, mars_conn_error(c));
    else
        conn_flush(hc);
}

/* Sends what nghttp2 has queued, a batch at a time; ends the session when neither side has
 * anything left to say (after a GOAWAY). */
static void conn_flush(struct h2_conn *hc)
{
    if (hc->d.closed || hc->sending || hc->in_session ||
        mars_conn_state(hc->d.c) != MARS_CONN_READY)
        return;
    ssize_t n = 0;
    hc->out_len = 0;
    hc->in_session = true;
    while (hc->out_len < OUT_BATCH && !hc->d.closed) {
        const uint8_t *d;
        n = nghttp2_session_mem_send(hc->s, &d);
        if (n <= 0)
            break;
        if (mars_grow(&hc->out, &hc->out_cap, hc->out_len + (size_t)n, 1)) {
            n = NGHTTP2_ERR_NOMEM;
            break;
        }
        memcpy(hc->out + hc->out_len, d, (size_t)n);
        hc->out_len += (size_t)n;
    }
    hc->in_session = false;
    if (hc->d.closed)
        return;
    if (n < 0) {
        char text[128];
        snprintf(text, sizeof(text), "HTTP/2 session to %s: %s", mars_conn_peer(hc->d.c),
                 nghttp2_strerror((int)n));
        conn_lost(hc, n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO, text);
        return;
    }
    if (hc->out_len == 0) {
        if (!nghttp2_session_want_read(hc->s) && !nghttp2_session_want_write(hc->s)) {
            char text[128];
            snprintf(text, sizeof(text), "%s ended the HTTP/2 session (GOAWAY, %s)",
                     mars_conn_peer(hc->d.c), nghttp2_http2_strerror(hc->goaway_error));
            conn_lost(hc, -ECONNRESET, text);
        }
        return;
    }
    hc->iov = (struct iovec){.iov_base = hc->out, .iov_len = hc->out_len};
    int rc = mars_conn_send(hc->d.c, &hc->iov, 1, on_sent);
    if (rc)
        conn_lost(hc, rc, strerror(-rc));
    else
        hc->sending = true;
}

static void on_open(struct mars_conn *c, int err)
{
    struct h2_conn *hc = mars_conn_data(c);
    if (hc->d.closed)
        return;
    if (err) {
        conn_lost(hc, err, mars_conn_error(c));
        return;
    }
    hc->opened = true;
    conn_flush(hc);
}

static void on_conn_data(struct mars_conn *c, const char *s, size_t n)
{
    struct h2_conn *hc = mars_conn_data(c);
    if (hc->d.closed)
        return;
    hc->rx += n;
    hc->in_session = true;
    ssize_t rv = nghttp2_session_mem_recv(hc->s, (const uint8_t *)s, n);
    hc->in_session = false;
    if (hc->d.closed)
        return;
    if (rv < 0) {
        char text[128];
        snprintf(text, sizeof(text), "%s broke HTTP/2: %s", mars_conn_peer(c),
                 nghttp2_strerror((int)rv));
        conn_lost(hc, rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO, text);
        return;
    }
    conn_flush(hc);
}

static void on_conn_close(struct mars_conn *c, int err)
{
    struct h2_conn *hc = mars_conn_data(c);
    char text[CURL_ERROR_SIZE];
    if (hc->d.closed)
        return;
    snprintf(text, sizeof(text), "%s before the answer was complete",
             err ? mars_conn_error(c) : "connection closed");
    conn_lost(hc, -ECONNRESET, text);
}

static void on_conn_idle(struct mars_conn *c, int err)
{
    struct h2_conn *hc = mars_conn_data(c);
    (void)err;
    mars_http_kick(hc->d.h);
}

/* ---- nghttp2's callbacks ---- */

static struct h2_stream *stream_of(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2_stream *st = stream_of(s, f->hd.stream_id);
    (void)ud;
    if (st && f->hd.type == NGHTTP2_HEADERS)
        st->headers_sent = true;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *st = stream_of(s, f->hd.stream_id);
    switch (f->hd.type) {
    case NGHTTP2_GOAWAY:
        hc->draining = hc->goaway = true;
        hc->goaway_last = f->goaway.last_stream_id;
        hc->goaway_error = f->goaway.error_code;
        break;
    case NGHTTP2_RST_STREAM:
        if (st)
            st->peer_reset = true;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            st->end_seen = true;
        break;
    default:
        break;
    }
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct h2_stream *st = stream_of(s, f->hd.stream_id);
    (void)flags;
    (void)ud;
    if (!st || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        int v = 0; /* nghttp2 checked it: three digits */
        for (size_t i = 0; i < vl && i < 3; i++)
            v = v * 10 + (value[i] - '0');
        st->interim = v >= 100 && v < 200;
        if (!st->interim)
            st->status = v;
        return 0;
    }
    if (st->interim || (nl > 0 && name[0] == ':'))
        return 0;
    char small[512], *line = small;
    size_t n = nl + vl + 4;
    if (n > sizeof(small) && !(line = malloc(n)))
        return 0; /* a header lost to memory pressure; the body still arrives */
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl);
    memcpy(line + nl + 2 + vl, "\r\n", 2);
    mars_http_priv_header(st->p, line, n);
    if (line != small)
        free(line);
    return 0;
}

/* Takes st off its session; rst: tell the peer (CANCEL) the stream is given up. */
static void stream_detach(struct h2_stream *st, bool rst)
{
    struct h2_conn *hc = st->conn;
    if (!hc)
        return;
    st->conn = NULL;
    stream_unlink(&hc->streams, st);
    if (st->id > 0) {
        nghttp2_session_set_stream_user_data(hc->s, st->id, NULL);
        if (rst)
            nghttp2_submit_rst_stream(hc->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
    if (hc->single)
        conn_kill(hc);
    else if (rst)
        conn_flush(hc);
}

static void stream_fail(struct h2_stream *st, bool rst, int err, const char *text)
{
    struct mars_http_priv *p = st->p;
    snprintf(p->errbuf, sizeof(p->errbuf), "%s", text);
    stream_detach(st, rst);
    mars_http_priv_end(p, st->status, err, p->errbuf);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                   void *ud)
{
    struct h2_stream *st = stream_of(s, id);
    (void)flags;
    (void)ud;
    if (st && !mars_http_priv_body(st->p, (const char *)d, n))
        stream_fail(st, true, st->p->aborted ? -ECANCELED : -ENOMEM,
                    st->p->aborted ? "request cancelled" : "out of memory keeping the answer");
    return 0;
}

/* Sends st once more (it was not processed); false when it had its second chance. */
static bool stream_retry(struct h2_stream *st)
{
    if (st->retried)
        return false;
    st->retried = true;
    stream_detach(st, false);
    int rc = stream_go(st);
    if (rc)
        stream_fail(st, false, rc, strerror(-rc));
    return true;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2_stream *st = stream_of(s, id);
    char text[96];
    (void)ud;
    if (!st)
        return 0;
    if (st->end_seen && st->status) { /* the whole answer arrived, whatever the code */
        struct mars_http_priv *p = st->p;
        stream_detach(st, false);
        mars_http_priv_end(p, st->status, 0, NULL);
        return 0;
    }
    if ((code == NGHTTP2_REFUSED_STREAM || !st->headers_sent) && stream_retry(st))
        return 0;
    snprintf(text, sizeof(text), "stream reset%s (error %u, %s)",
             st->peer_reset ? " by the peer" : "", code, nghttp2_http2_strerror(code));
    stream_fail(st, false, -ECONNRESET, text);
    return 0;
}

static int session_new(struct h2_conn *hc)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb))
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    int rv = nghttp2_session_client_new(&hc->s, cb, hc);
    nghttp2_session_callbacks_del(cb);
    if (rv)
        return -ENOMEM;
    const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW}};
    rv = nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    if (rv == 0)
        rv = nghttp2_session_set_local_window_size(hc->s, NGHTTP2_FLAG_NONE, 0, WINDOW);
    return rv ? -ENOMEM : 0;
}

static struct h2_conn *conn_new(struct mars_http *h, const struct h2_stream *st)
{
    struct h2_conn *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return NULL;
    hc->d.h = h;
    hc->d.host = strdup(st->host);
    hc->d.port = strdup(st->port);
    hc->single = st->p->req->fresh_connection;
    const struct mars_conn_opts o = {
        .host = st->host,
        .port = st->port,
        .connect_timeout_ns = st->p->req->connect_timeout_ns,
        .keepalive_ns = KEEPALIVE_NS,
        .on_data = on_conn_data,
        .on_close = on_conn_close,
        .on_idle = on_conn_idle,
        .data = hc,
    };
    hc->d.c = hc->d.host && hc->d.port ? mars_conn_create(h->loop, &o) : NULL;
    if (!hc->d.c || session_new(hc) || mars_conn_open(hc->d.c, on_open)) {
        conn_free(&hc->d); /* open failed at once: nothing in flight */
        return NULL;
    }
    mars_direct_conn_push(&h->h2_conns, &hc->d);
    return hc;
}

static struct h2_conn *conn_find(struct mars_http *h, const struct h2_stream *st)
{
    for (struct mars_direct_conn *d = h->h2_conns; d; d = d->next) {
        struct h2_conn *hc = h2_of(d);
        if (!hc->single && !hc->draining && strcmp(d->host, st->host) == 0 &&
            strcmp(d->port, st->port) == 0)
            return hc;
    }
    return NULL;
}

/* ---- a stream ---- */

static int stream_submit(struct h2_conn *hc, struct h2_stream *st)
{
    nghttp2_data_provider dp = {.read_callback = read_body};
    int32_t id =
        nghttp2_submit_request(hc->s, NULL, st->hdr.nv, st->hdr.n, st->has_body ? &dp : NULL, st);
    if (id < 0)
        return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -ENOMEM;
    st->id = id;
    st->conn = hc;
    st->up_iov = 0;
    st->up_off = 0;
    st->status = 0;
    st->headers_sent = st->interim = st->end_seen = st->peer_reset = false;
    st->prev = NULL;
    st->next = hc->streams;
    if (hc->streams)
        hc->streams->prev = st;
    hc->streams = st;
    return 0;
}

/* Puts st on the host's session (a new one when there is none, or fresh_connection). */
static int stream_go(struct h2_stream *st)
{
    struct mars_http *h = st->p->h;
    struct h2_conn *hc = st->p->req->fresh_connection ? NULL : conn_find(h, st);
    int rc = hc ? stream_submit(hc, st) : -EAGAIN;
    if (rc == -EAGAIN) {
        if (hc)
            hc->draining = true; /* stream ids used up: let it end */
        if (!(hc = conn_new(h, st)))
            return -ENOMEM;
        rc = stream_submit(hc, st);
        if (rc) {
            conn_kill(hc);
            return rc;
        }
    } else if (rc) {
        return rc;
    }
    st->reused = hc->opened;
    st->rx_mark = hc->rx;
    if (st->deadline)
        timer_arm(hc, st->deadline);
    conn_flush(hc);
    return 0;
}

/* hc is gone (connection lost, the peer's GOAWAY done, a broken session): streams the peer
 * did not process go once more on a new connection, the others fail with err. */
static void conn_lost(struct h2_conn *hc, int err, const char *text)
{
    struct h2_stream *list = conn_take_streams(hc), *st;
    conn_kill(hc);
    while ((st = list)) {
        stream_unlink(&list, st);
        if (st->p->cancelled) /* by an earlier one's done() */
            continue;
        bool unprocessed = !st->headers_sent || (hc->goaway && st->id > hc->goaway_last) ||
                           (st->reused && hc->rx == st->rx_mark);
        if (!(hc->opened && unprocessed && stream_retry(st)))
            stream_fail(st, false, err, text);
    }
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct h2_conn *hc = h2_of(op->data);
    (void)res;
    hc->d.timer_armed = false;
    if (hc->d.closed) {
        mars_http_kick(hc->d.h);
        return;
    }
    int64_t next;
    for (;;) { /* one at a time: a done() may end or add streams */
        struct h2_stream *late = NULL;
        int64_t now = mars_ev_now(hc->d.h->loop);
        next = 0;
        for (struct h2_stream *st = hc->streams; st && !late; st = st->next)
            if (st->deadline && st->deadline <= now)
                late = st;
            else if (st->deadline && (!next || st->deadline < next))
                next = st->deadline;
        if (!late)
            break;
        char text[96];
        snprintf(text, sizeof(text), "request timed out after %lld ms",
                 (long long)(late->p->req->timeout_ns / 1000000));
        stream_fail(late, true, -ETIMEDOUT, text);
        if (hc->d.closed)
            return;
    }
    if (next)
        timer_arm(hc, next);
}

/* ---- the interface (http_direct.c) ---- */

int mars_http2_direct_start(struct mars_http *h, struct mars_http_priv *p,
                            const struct mars_http_url *u)
{
    const struct mars_http_req *r = p->req;
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    p->h2 = st;
    st->p = p;
    st->host = strndup(u->host, u->host_len);
    st->port = u->port ? strndup(u->port, u->port_len) : strdup("80");
    if (!st->host || !st->port)
        return -ENOMEM; /* p->h2 is freed with p */
    int rc = mars_http2_headers_build(&st->hdr, r, u, h->user_agent);
    st->has_body = r->body || r->body_iov;
    if (rc)
        return rc;
    if (r->timeout_ns > 0)
        st->deadline = mars_ev_now(h->loop) + r->timeout_ns;
    return stream_go(st);
}

void mars_http2_direct_cancel(struct mars_http_priv *p)
{
    if (p->h2)
        stream_detach(p->h2, true);
}

void mars_http2_direct_free(struct mars_http_priv *p)
{
    struct h2_stream *st = p->h2;
    if (!st)
        return;
    stream_detach(st, true);
    mars_http2_headers_free(&st->hdr);
    free(st->host);
    free(st->port);
    free(st);
    p->h2 = NULL;
}

void mars_http2_direct_shutdown(struct mars_http *h)
{
    while (h->h2_conns)
        conn_kill(h2_of(h->h2_conns));
}

void mars_http2_direct_reap(struct mars_http *h, bool all)
{
    mars_direct_conn_reap(&h->h2_conns, &h->h2_graveyard, all, conn_free);
}
