/*
 * conn.c - one outbound stream connection, plain or TLS, on the ev loop (see conn.h).
 *
 * How it works: open() arms the connect timeout and resolves the host (an IP literal in
 * place; a name on a detached thread that reports through an eventfd the loop reads),
 * then connects to each address in turn until one answers, then runs the TLS handshake
 * when a ctx is set. READY keeps a RECV (or TLS read) pending as the watch for the peer
 * going away. send() is SENDMSG ops over the caller's iovec array, resubmitted after
 * short writes, at most IOV_MAX entries each (TLS: one mars_tls_write).
 *
 * Teardown: every failure and close() go through begin_close(), which cancels whatever
 * is in flight (with zero-copy sends, resetting the connection when close() cuts a request
 * off, see reset_socket()) and moves to CLOSING. Each op completion in CLOSING calls maybe_idle(),
 * which finishes the teardown (closes the socket, frees the TLS session, IDLE) once no op
 * is left, and only then runs the pending callbacks with the error. The TLS session's own
 * ops are waited for through its idle callback; it is never freed from inside one of its
 * request callbacks (in_tls_cb), where OpenSSL's state is still in use. fail() runs
 * maybe_idle() itself, since the op whose completion failed may have been the last one.
 *
 * Resolver jobs are shared by the thread and the conn with a reference count of two; the
 * last one out closes the eventfd and frees the result. A conn that gives up on a
 * resolution (timeout, close) cancels its read and drops its reference; the thread
 * finishes alone.
 *
 * Thread: the loop's (plus the resolver threads, which touch only their job).
 */
#include "core/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/tls.h"

#define CONN_DEFAULT_TIMEOUT_NS 10000000000LL

struct resolve_job {
    atomic_int refs;
    int efd;
    char *host, *port;
    struct addrinfo *res; /* taken by the conn on success */
    int rc;               /* getaddrinfo's */
};

struct mars_conn {
    struct mars_ev_loop *loop;
    char *host, *port, *server_name;
    char peer[300];
    int64_t timeout_ns, keepalive_ns;
    struct mars_tls_ctx *tls_ctx;
    void (*on_data)(struct mars_conn *c, const char *p, size_t n);
    mars_conn_cb on_close, on_idle;
    void *data;

    enum mars_conn_state state;
    int fd;
    struct mars_tls *tls;
    struct addrinfo *ai, *ai_next;

    struct resolve_job *job;
    struct mars_ev_op job_op, conn_op, timer_op, recv_op, send_op;
    uint64_t job_buf;
    bool job_reading, connecting, timer_armed, receiving, sending, in_tls_cb;
    struct iovec *siov;
    int sniov, spos;

    mars_conn_cb open_cb, send_cb;
    int fail_err;
    bool user_close, was_ready;
    char err[512];
    char tls_info[96];
    char rbuf[4096];
};

static void begin_close(struct mars_conn *c);
static void maybe_idle(struct mars_conn *c);
static void try_connect(struct mars_conn *c);

__attribute__((format(printf, 3, 4))) static void fail(struct mars_conn *c, int err,
                                                       const char *fmt, ...)
{
    if (c->state == MARS_CONN_IDLE || c->state == MARS_CONN_CLOSING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->fail_err = err;
    begin_close(c);
    maybe_idle(c); /* nothing may be left in flight to finish the teardown */
}

/* ---- resolution ---- */

static void job_put(struct resolve_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->efd >= 0)
        close(j->efd);
    if (j->res)
        freeaddrinfo(j->res);
    free(j->host);
    free(j->port);
    free(j);
}

static void *resolve_main(void *arg)
{
    struct resolve_job *j = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    uint64_t one = 1;

    j->rc = getaddrinfo(j->host, j->port, &hints, &j->res);
    if (write(j->efd, &one, sizeof(one)) < 0) {
        /* cannot happen with a counter far from overflow; the conn then times out */
    }
    job_put(j);
    return NULL;
}

static void got_addresses(struct mars_conn *c, int rc, struct addrinfo *res)
{
    if (rc != 0) {
        fail(c, -EHOSTUNREACH, "cannot resolve %s: %s", c->host,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return;
    }
    c->ai = c->ai_next = res;
    c->state = MARS_CONN_CONNECTING;
    try_connect(c);
}

static void on_job(struct mars_ev_op *op, int res)
{
    struct mars_conn *c = op->data;
    struct resolve_job *j = c->job;

    c->job_reading = false;
    if (c->state == MARS_CONN_CLOSING) {
        c->job = NULL;
        job_put(j);
        maybe_idle(c);
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        if (mars_ev_submit(c->loop, op) == 0) {
            c->job_reading = true;
            return;
        }
    }
    struct addrinfo *ai = NULL;
    int rc = res < 0 ? EAI_AGAIN : j->rc;
    if (rc == 0) {
        ai = j->res; /* ours now */
        j->res = NULL;
    }
    c->job = NULL;
    job_put(j);
    got_addresses(c, rc, ai);
}

/* Starts resolution; an IP literal is converted here, a name on a thread. */
static void resolve(struct mars_conn *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;

    c->state = MARS_CONN_RESOLVING;
    if (getaddrinfo(c->host, c->port, &hints, &res) == 0) {
        got_addresses(c, 0, res);
        return;
    }
    struct resolve_job *j = calloc(1, sizeof(*j));
    if (!j) {
        fail(c, -ENOMEM, "out of memory");
        return;
    }
    atomic_init(&j->refs, 2);
    j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    j->host = strdup(c->host);
    j->port = strdup(c->port);
    pthread_t th;
    pthread_attr_t attr;
    int rc = (j->efd < 0 || !j->host || !j->port) ? ENOMEM : pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &attr, resolve_main, j);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        atomic_store(&j->refs, 1);
        job_put(j);
        fail(c, -rc, "cannot start a resolver thread: %s", strerror(rc));
        return;
    }
    c->job = j;
    mars_ev_prep_read(&c->job_op, j->efd, &c->job_buf, sizeof(c->job_buf), MARS_EV_CUR, on_job, c);
    rc = mars_ev_submit(c->loop, &c->job_op);
    if (rc) {
        c->job = NULL;
        job_put(j);
        fail(c, rc, "cannot wait for the resolver: %s", strerror(-rc));
        return;
    }
    c->job_reading = true;
}

/* ---- connect, handshake ---- */

static void start_watch(struct mars_conn *c);

static void ready(struct mars_conn *c)
{
    c->state = MARS_CONN_READY;
    if (c->timer_armed)
        mars_ev_cancel(c->loop, &c->timer_op);
    start_watch(c);
    if (c->state != MARS_CONN_READY)
        return;
    mars_conn_cb cb = c->open_cb;
    c->open_cb = NULL;
    if (cb)
        cb(c, 0);
}

static void on_tls_idle(struct mars_tls *t, int res)
{
    maybe_idle(mars_tls_data(t));
}

static void on_handshake(struct mars_tls *t, int res)
{
    struct mars_conn *c = mars_tls_data(t);
    if (c->state != MARS_CONN_HANDSHAKING)
        return; /* cancelled: the teardown has the error already */
    c->in_tls_cb = true;
    if (res < 0) {
        fail(c, res, "TLS handshake with %s: %s", c->peer, mars_tls_error(t));
    } else {
        snprintf(c->tls_info, sizeof(c->tls_info), "%s %s", mars_tls_version(t),
                 mars_tls_cipher(t));
        ready(c);
    }
    c->in_tls_cb = false;
}

static void connected(struct mars_conn *c)
{
    if (!c->tls_ctx) {
        ready(c);
        return;
    }
    c->tls =
        mars_tls_create(c->tls_ctx, c->loop, c->fd, c->server_name ? c->server_name : c->host, c);
    if (!c->tls) {
        fail(c, -ENOMEM, "cannot create a TLS session: out of memory");
        return;
    }
    mars_tls_set_idle_cb(c->tls, on_tls_idle);
    c->state = MARS_CONN_HANDSHAKING;
    int rc = mars_tls_handshake(c->tls, on_handshake);
    if (rc)
        fail(c, rc, "cannot start the TLS handshake: %s", strerror(-rc));
}

static void on_connect(struct mars_ev_op *op, int res)
{
    struct mars_conn *c = op->data;
    c->connecting = false;
    if (c->state == MARS_CONN_CLOSING) {
        maybe_idle(c);
        return;
    }
    if (res < 0) {
        snprintf(c->err, sizeof(c->err), "connect to %s: %s", c->peer, strerror(-res));
        c->fail_err = res;
        close(c->fd);
        c->fd = -1;
        if (c->ai_next) {
            try_connect(c);
            return;
        }
        char why[512];
        snprintf(why, sizeof(why), "%s", c->err);
        fail(c, res, "%s", why);
        return;
    }
    connected(c);
}

static void set_options(struct mars_conn *c)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* we batch ourselves */
    if (c->keepalive_ns > 0) {
        int idle = (int)(c->keepalive_ns / 1000000000);
        int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
        idle = idle > 0 ? idle : 1;
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
}

/* Connects to the next address of the resolved list. */
static void try_connect(struct mars_conn *c)
{
    struct addrinfo *a = c->ai_next;
    c->ai_next = a->ai_next;
    c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, -errno, "socket: %s", strerror(errno));
        return;
    }
    set_options(c);
    mars_ev_prep_connect(&c->conn_op, c->fd, a->ai_addr, a->ai_addrlen, on_connect, c);
    int rc = mars_ev_submit(c->loop, &c->conn_op);
    if (rc) {
        fail(c, rc, "cannot submit a connect: %s", strerror(-rc));
        return;
    }
    c->connecting = true;
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct mars_conn *c = op->data;
    c->timer_armed = false;
    if (c->state == MARS_CONN_CLOSING) {
        maybe_idle(c);
        return;
    }
    if (res == 0 && c->state != MARS_CONN_READY && c->state != MARS_CONN_IDLE)
        fail(c, -ETIMEDOUT, "%s to %s timed out after %lld ms",
             c->state == MARS_CONN_HANDSHAKING ? "TLS handshake"
             : c->state == MARS_CONN_RESOLVING ? "name resolution"
                                               : "connect",
             c->peer, (long long)(c->timeout_ns / 1000000));
}

int mars_conn_open(struct mars_conn *c, mars_conn_cb cb)
{
    if (c->state != MARS_CONN_IDLE)
        return -EBUSY;
    c->err[0] = '\0';
    c->tls_info[0] = '\0';
    c->fail_err = 0;
    c->user_close = c->was_ready = false;
    c->open_cb = cb;
    mars_ev_prep_timer(&c->timer_op, c->timeout_ns, on_timer, c);
    int rc = mars_ev_submit(c->loop, &c->timer_op);
    if (rc) {
        c->open_cb = NULL;
        return rc;
    }
    c->timer_armed = true; /* in flight until READY: failures always finish from a completion */
    resolve(c);
    return 0;
}

/* ---- READY: the watch and sends ---- */

static void on_tls_read(struct mars_tls *t, int res)
{
    struct mars_conn *c = mars_tls_data(t);
    if (c->state != MARS_CONN_READY)
        return;
    c->in_tls_cb = true;
    if (res > 0) {
        if (c->on_data)
            c->on_data(c, c->rbuf, (size_t)res);
        if (c->state == MARS_CONN_READY)
            start_watch(c);
    } else if (res == 0) {
        fail(c, -ECONNRESET, "connection to %s closed by the peer", c->peer);
    } else {
        fail(c, res, "connection to %s lost: %s", c->peer, mars_tls_error(t));
    }
    c->in_tls_cb = false;
}

static void on_recv(struct mars_ev_op *op, int res)
{
    struct mars_conn *c = op->data;
    c->receiving = false;
    if (c->state == MARS_CONN_CLOSING) {
        maybe_idle(c);
        return;
    }
    if (res > 0 || res == -EAGAIN || res == -EINTR) {
        if (res > 0 && c->on_data)
            c->on_data(c, c->rbuf, (size_t)res);
        if (c->state == MARS_CONN_READY)
            start_watch(c);
        return;
    }
    if (res == 0)
        fail(c, -ECONNRESET, "connection to %s closed by the peer", c->peer);
    else
        fail(c, res, "connection to %s lost: %s", c->peer, strerror(-res));
}

static void start_watch(struct mars_conn *c)
{
    int rc;
    if (c->tls) {
        rc = mars_tls_read(c->tls, c->rbuf, sizeof(c->rbuf), on_tls_read);
    } else {
        mars_ev_prep_recv(&c->recv_op, c->fd, c->rbuf, sizeof(c->rbuf), on_recv, c);
        rc = mars_ev_submit(c->loop, &c->recv_op);
        c->receiving = rc == 0;
    }
    if (rc)
        fail(c, rc, "cannot watch the connection to %s: %s", c->peer, strerror(-rc));
}

static void finish_send(struct mars_conn *c)
{
    mars_conn_cb cb = c->send_cb;
    c->send_cb = NULL;
    cb(c, 0);
}

static void on_tls_write(struct mars_tls *t, int res)
{
    struct mars_conn *c = mars_tls_data(t);
    if (c->state != MARS_CONN_READY)
        return;
    c->in_tls_cb = true;
    if (res == 0)
        finish_send(c);
    else
        fail(c, res, "send to %s: %s", c->peer, mars_tls_error(t));
    c->in_tls_cb = false;
}

static int submit_send(struct mars_conn *c);

static void on_send(struct mars_ev_op *op, int res)
{
    struct mars_conn *c = op->data;
    c->sending = false;
    if (c->state == MARS_CONN_CLOSING) {
        maybe_idle(c);
        return;
    }
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        if (res == -EPIPE)
            res = -ECONNRESET;
        fail(c, res, "send to %s: %s", c->peer, strerror(-res));
        return;
    }
    size_t n = res > 0 ? (size_t)res : 0;
    while (c->spos < c->sniov && n >= c->siov[c->spos].iov_len)
        n -= c->siov[c->spos++].iov_len;
    if (c->spos < c->sniov && n > 0) {
        c->siov[c->spos].iov_base = (char *)c->siov[c->spos].iov_base + n;
        c->siov[c->spos].iov_len -= n;
    }
    while (c->spos < c->sniov && c->siov[c->spos].iov_len == 0)
        c->spos++;
    if (c->spos >= c->sniov) {
        finish_send(c);
        return;
    }
    int rc = submit_send(c);
    if (rc)
        fail(c, rc, "cannot submit a send: %s", strerror(-rc));
}

static int submit_send(struct mars_conn *c)
{
    int n = c->sniov - c->spos;
    if (n > IOV_MAX)
        n = IOV_MAX;
    mars_ev_prep_sendmsg(&c->send_op, c->fd, c->siov + c->spos, n, on_send, c);
    int rc = mars_ev_submit(c->loop, &c->send_op);
    c->sending = rc == 0;
    return rc;
}

int mars_conn_send(struct mars_conn *c, struct iovec *iov, int niov, mars_conn_cb cb)
{
    if (c->state != MARS_CONN_READY)
        return -ENOTCONN;
    if (c->send_cb)
        return -EBUSY;
    int rc;
    c->send_cb = cb;
    if (c->tls) {
        rc = mars_tls_write(c->tls, iov, niov, on_tls_write);
    } else {
        c->siov = iov;
        c->sniov = niov;
        c->spos = 0;
        /* an empty array still completes through the loop: a 0-byte sendmsg */
        rc = submit_send(c);
    }
    if (rc)
        c->send_cb = NULL;
    return rc;
}

/* ---- teardown ---- */

/* With zero-copy sends live (io_uring, core/ev.h), a request the owner gives up (close()
 * while it is in flight: shutdown timeout, abort) resets the connection: connect(AF_UNSPEC)
 * drops what is unacknowledged and sends RST. A zero-copy send completes only once the
 * kernel lets go of its buffer, for TCP at the peer's ACK, which a dead or stuck peer would
 * hold back until TCP gives up, minutes later, while the owner waits to free the request
 * (the worker's teardown gives it seconds). The cost: bytes of earlier requests still in the
 * send queue are dropped too, on a connection whose data is being abandoned anyway.
 * Failures are not reset: a half-closed peer may still be reading earlier requests, and a
 * failing connection's zero-copy sends end by themselves (the peer's RST or FIN purges the
 * queue). Without zero-copy, close() stays a plain close. */
static void reset_socket(int fd)
{
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    (void)connect(fd, &sa, sizeof(sa));
}

static void begin_close(struct mars_conn *c)
{
    c->was_ready = c->state == MARS_CONN_READY;
    if (c->user_close && c->was_ready && c->send_cb != NULL && c->fd >= 0 &&
        (mars_ev_caps(c->loop) & MARS_EV_CAP_SEND_ZC))
        reset_socket(c->fd);
    c->state = MARS_CONN_CLOSING;
    if (c->job_reading)
        mars_ev_cancel(c->loop, &c->job_op);
    if (c->connecting)
        mars_ev_cancel(c->loop, &c->conn_op);
    if (c->timer_armed)
        mars_ev_cancel(c->loop, &c->timer_op);
    if (c->receiving)
        mars_ev_cancel(c->loop, &c->recv_op);
    if (c->sending)
        mars_ev_cancel(c->loop, &c->send_op);
    if (c->tls)
        mars_tls_cancel(c->tls);
}

bool mars_conn_busy(const struct mars_conn *c)
{
    return c->job_reading || c->connecting || c->timer_armed || c->receiving || c->sending ||
           (c->tls && mars_tls_busy(c->tls));
}

static void release(struct mars_conn *c)
{
    mars_tls_destroy(c->tls);
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->ai)
        freeaddrinfo(c->ai);
    c->ai = c->ai_next = NULL;
}

/* Finishes a teardown once nothing is in flight, then tells whoever waits. */
static void maybe_idle(struct mars_conn *c)
{
    if (c->state != MARS_CONN_CLOSING || mars_conn_busy(c) || c->in_tls_cb)
        return;
    release(c);
    c->state = MARS_CONN_IDLE;
    int err = c->user_close ? -ECANCELED : c->fail_err;
    mars_conn_cb open_cb = c->open_cb, send_cb = c->send_cb;
    mars_conn_cb lost =
        (!open_cb && !send_cb && c->was_ready && !c->user_close) ? c->on_close : NULL;
    mars_conn_cb idle = c->user_close ? c->on_idle : NULL;
    c->open_cb = c->send_cb = NULL;
    if (open_cb)
        open_cb(c, err);
    if (send_cb)
        send_cb(c, err);
    if (lost)
        lost(c, err);
    if (idle)
        idle(c, 0); /* last: it may destroy c */
}

void mars_conn_close(struct mars_conn *c)
{
    if (c->state == MARS_CONN_IDLE)
        return;
    c->user_close = true;
    if (c->state == MARS_CONN_CLOSING)
        return; /* already going; callbacks will say -ECANCELED */
    snprintf(c->err, sizeof(c->err), "closed");
    begin_close(c);
    if (!mars_conn_busy(c) && !c->in_tls_cb) {
        /* nothing was in flight, so no callback is pending: finish quietly (inside a TLS
         * callback the session's idle callback finishes instead) */
        release(c);
        c->state = MARS_CONN_IDLE;
    }
}

/* ---- lifetime ---- */

struct mars_conn *mars_conn_create(struct mars_ev_loop *loop, const struct mars_conn_opts *o)
{
    struct mars_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->fd = -1;
    c->host = strdup(o->host ? o->host : "");
    c->port = strdup(o->port ? o->port : "");
    c->server_name = o->server_name ? strdup(o->server_name) : NULL;
    if (!c->host || !c->port || (o->server_name && !c->server_name)) {
        free(c->host);
        free(c->port);
        free(c->server_name);
        free(c);
        return NULL;
    }
    bool v6 = strchr(c->host, ':') != NULL;
    snprintf(c->peer, sizeof(c->peer), v6 ? "[%s]:%s" : "%s:%s", c->host, c->port);
    c->timeout_ns = o->connect_timeout_ns > 0 ? o->connect_timeout_ns : CONN_DEFAULT_TIMEOUT_NS;
    c->keepalive_ns = o->keepalive_ns;
    c->tls_ctx = o->tls;
    c->on_data = o->on_data;
    c->on_close = o->on_close;
    c->on_idle = o->on_idle;
    c->data = o->data;
    return c;
}

void mars_conn_destroy(struct mars_conn *c)
{
    if (!c)
        return;
    release(c);
    free(c->host);
    free(c->port);
    free(c->server_name);
    free(c);
}

enum mars_conn_state mars_conn_state(const struct mars_conn *c)
{
    return c->state;
}

void *mars_conn_data(const struct mars_conn *c)
{
    return c->data;
}

const char *mars_conn_error(const struct mars_conn *c)
{
    return c->err;
}

const char *mars_conn_peer(const struct mars_conn *c)
{
    return c->peer;
}

const char *mars_conn_tls_info(const struct mars_conn *c)
{
    return c->tls_info;
}
