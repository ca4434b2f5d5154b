/*
 * tls.c - TLS sessions on ev sockets through OpenSSL memory BIOs (contract in tls.h).
 *
 * How it works: each session has an SSL object whose read BIO (rbio) and write BIO (wbio)
 * are memory BIOs, two socket ops of its own (one SEND, one RECV) and buffers of its own
 * for them (sbuf, rbuf). The caller's buffers are never lent to the kernel: plaintext is
 * handed to SSL_write / filled by SSL_read synchronously, so a request can complete or
 * fail at any time without waiting for an op. The state machine:
 *
 *   NEW --handshake()--> HANDSHAKING --SSL_do_handshake() == 1--> OPEN
 *     any state --socket error, alert, failed verify, cancel--> FAILED (final)
 *
 * pump() is the one place that makes progress. It runs after every request call and every
 * op completion and, in order: drives the handshake, feeds the pending write's plaintext
 * to SSL_write (only while less than TLS_WBIO_HIGH bytes of ciphertext wait, so memory is
 * bounded), moves ciphertext from wbio to sbuf and starts a SEND when none is in flight,
 * serves the pending read from SSL_read, and starts a RECV when OpenSSL wants more input
 * (handshake or read). A write completes when all its plaintext went through SSL_write and
 * wbio and sbuf are empty with no SEND in flight.
 *
 * Re-entrancy: callbacks run from pump(); a callback may start new requests. A depth guard
 * turns a nested pump() into another round of the outer one, so callbacks never nest. A
 * request call made from outside any callback does not pump itself (a read could complete
 * at once and its callback would run inside the call); it arms a 0 ns timer op instead.
 *
 * Small writes are gathered into a 16 KiB staging buffer (one record) before SSL_write; an
 * iovec of 16 KiB or more goes to SSL_write straight from the caller's memory.
 *
 * On failure the session tries to send what OpenSSL queued (an alert telling the peer why)
 * with one non-blocking send(2), then cancels its ops and fails every pending request.
 *
 * Thread: the loop's thread; OpenSSL's error queue is per thread, cleared before each call.
 */
#include "core/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/ev.h"
#include "core/log.h"

#define TLS_SBUF      (128u << 10) /* ciphertext per SEND */
#define TLS_RBUF      (32u << 10)  /* ciphertext per RECV: two full records */
#define TLS_STAGE     (16u << 10)  /* small plaintext pieces gathered into one record */
#define TLS_DIRECT    (64u << 10)  /* most plaintext given to one SSL_write from an iovec */
#define TLS_WBIO_HIGH (128u << 10) /* stop feeding SSL_write above this much ciphertext */

struct mars_tls_ctx {
    SSL_CTX *ssl_ctx;
    enum mars_tls_role role;
    bool verify;
};

enum tls_state { TLS_NEW, TLS_HANDSHAKING, TLS_OPEN, TLS_FAILED };

struct mars_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    struct mars_ev_loop *loop;
    int fd;
    void *data;
    bool server;
    enum tls_state state;
    int err; /* once FAILED */
    char errbuf[256];

    /* socket side */
    struct mars_ev_op send_op, recv_op, defer_op;
    bool sending, receiving, deferred, peer_eof;
    char *sbuf;
    size_t s_off, s_len;
    char *rbuf;
    char *stage;

    /* requests */
    mars_tls_cb hs_cb;
    struct {
        const struct iovec *iov;
        int niov, i;
        size_t off;
        mars_tls_cb cb;
    } wr;
    struct {
        void *buf;
        size_t len;
        mars_tls_cb cb;
    } rd;

    int depth;
    bool again;
    mars_tls_cb idle_cb;
};

/* ---- context ---- */

static void ssl_reason(char *buf, size_t len)
{
    unsigned long code = ERR_peek_last_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
}

static int load_file(const char *what, const char *path, int ok, char *err, size_t errlen)
{
    if (ok == 1)
        return 0;
    char why[128];
    if (access(path, R_OK) != 0)
        snprintf(why, sizeof(why), "%s", strerror(errno));
    else
        ssl_reason(why, sizeof(why));
    /* OpenSSL says "PEM lib" or "no start line" for a file that holds no such PEM block */
    bool pem = strstr(why, "PEM") || strstr(why, "no start line");
    snprintf(err, errlen, "cannot load %s %s: %s%s", what, path, why,
             pem ? " (not a PEM file of the expected kind?)" : "");
    return -EINVAL;
}

static int ctx_load(SSL_CTX *c, const struct mars_tls_opts *o, enum mars_tls_role role, char *err,
                    size_t errlen)
{
    int rc = 0;
    if (o->cert_file) {
        rc = load_file("cert_file", o->cert_file,
                       SSL_CTX_use_certificate_chain_file(c, o->cert_file), err, errlen);
        if (rc == 0)
            rc = load_file("key_file", o->key_file ? o->key_file : o->cert_file,
                           SSL_CTX_use_PrivateKey_file(c, o->key_file ? o->key_file : o->cert_file,
                                                       SSL_FILETYPE_PEM),
                           err, errlen);
        if (rc == 0 && SSL_CTX_check_private_key(c) != 1) {
            snprintf(err, errlen, "key_file %s does not match cert_file %s",
                     o->key_file ? o->key_file : "-", o->cert_file);
            return -EINVAL;
        }
        if (rc)
            return rc;
    } else if (role == MARS_TLS_SERVER) {
        snprintf(err, errlen, "a TLS server needs cert_file and key_file");
        return -EINVAL;
    }
    if (role == MARS_TLS_CLIENT) {
        if (!o->verify) {
            SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
            return 0;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        if (o->ca_file)
            return load_file("ca_file", o->ca_file,
                             SSL_CTX_load_verify_locations(c, o->ca_file, NULL), err, errlen);
        if (SSL_CTX_set_default_verify_paths(c) != 1) {
            snprintf(err, errlen, "cannot load the system CA store");
            return -EINVAL;
        }
        return 0;
    }
    /* server: client certificates only when a CA for them is given */
    if (o->ca_file && o->verify) {
        rc = load_file("ca_file", o->ca_file, SSL_CTX_load_verify_locations(c, o->ca_file, NULL),
                       err, errlen);
        if (rc)
            return rc;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    SSL_CTX_set_num_tickets(c, 0); /* clients do not resume: do not send tickets */
    return 0;
}

struct mars_tls_ctx *mars_tls_ctx_create(const struct mars_tls_opts *opts, enum mars_tls_role role,
                                         const char *log_id, char *err, size_t errlen)
{
    struct mars_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    ctx->role = role;
    ctx->verify = opts->verify;
    ctx->ssl_ctx = SSL_CTX_new(role == MARS_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    if (!ctx->ssl_ctx) {
        ssl_reason(err, errlen);
        free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    if (ctx_load(ctx->ssl_ctx, opts, role, err, errlen) != 0) {
        SSL_CTX_free(ctx->ssl_ctx);
        free(ctx);
        ERR_clear_error();
        return NULL;
    }
    if (role == MARS_TLS_CLIENT && !opts->verify && !opts->quiet)
        mars_warn(log_id, "TLS certificate verification is off (tls.verify: false): the peer is "
                          "not authenticated");
    return ctx;
}

void mars_tls_ctx_destroy(struct mars_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx); /* sessions keep their own reference */
    free(ctx);
}

/* ---- session: failure ---- */

static void pump(struct mars_tls *t);

/* Last statement of every op completion: the owner may destroy t in idle_cb. */
static void check_idle(struct mars_tls *t)
{
    if (t->state == TLS_FAILED && !mars_tls_busy(t) && t->idle_cb) {
        mars_tls_cb cb = t->idle_cb;
        t->idle_cb = NULL;
        cb(t, 0);
    }
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* Hands what OpenSSL queued (an alert) to the kernel once, without waiting. */
static void send_alert(struct mars_tls *t)
{
    char buf[512];
    if (t->sending || t->s_off < t->s_len)
        return;
    int n = BIO_read(t->wbio, buf, sizeof(buf));
    if (n > 0)
        (void)send(t->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void cancel_ops(struct mars_tls *t)
{
    if (t->sending)
        mars_ev_cancel(t->loop, &t->send_op);
    if (t->receiving)
        mars_ev_cancel(t->loop, &t->recv_op);
}

__attribute__((format(printf, 3, 4))) static void fail(struct mars_tls *t, int err, const char *fmt,
                                                       ...)
{
    if (t->state == TLS_FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errbuf, sizeof(t->errbuf), fmt, ap);
    va_end(ap);
    t->state = TLS_FAILED;
    t->err = err;
    send_alert(t);
    cancel_ops(t);
}

/* A failed SSL_* call: a verification failure, an alert from the peer, or a bad record. */
static void fail_ssl(struct mars_tls *t, int ret, const char *phase)
{
    int e = SSL_get_error(t->ssl, ret);
    unsigned long code = ERR_peek_last_error();
    long vr = SSL_get_verify_result(t->ssl);
    int reason = code ? ERR_GET_REASON(code) : 0;

    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
        fail(t, -EKEYREJECTED, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        fail(t, -EKEYREJECTED, "the client sent no certificate (mutual TLS is required)");
    } else if (code) {
        char why[160];
        ssl_reason(why, sizeof(why));
        fail(t, -EPROTO, "TLS %s failed: %s", phase, why);
    } else {
        fail(t, -EPROTO, "TLS %s failed (SSL error %d)", phase, e);
    }
    ERR_clear_error();
}

/* ---- session: socket ops ---- */

static void on_send(struct mars_ev_op *op, int res)
{
    struct mars_tls *t = op->data;
    t->sending = false;
    if (res > 0) {
        t->s_off += (size_t)res;
    } else if (res != -EAGAIN && res != -EINTR && res != 0) {
        if (res == -EPIPE)
            res = -ECONNRESET;
        fail(t, res, "send failed: %s", strerror(-res));
    }
    pump(t);
    check_idle(t);
}

static void on_recv(struct mars_ev_op *op, int res)
{
    struct mars_tls *t = op->data;
    t->receiving = false;
    if (res > 0) {
        if (t->state != TLS_FAILED && BIO_write(t->rbio, t->rbuf, res) != res)
            fail(t, -ENOMEM, "out of memory for received TLS data");
    } else if (res == 0) {
        t->peer_eof = true;
    } else if (res != -EAGAIN && res != -EINTR) {
        fail(t, res, "recv failed: %s", strerror(-res));
    }
    pump(t);
    check_idle(t);
}

static void on_defer(struct mars_ev_op *op, int res)
{
    struct mars_tls *t = op->data;
    t->deferred = false;
    pump(t);
    check_idle(t);
}

/* Moves ciphertext from wbio to sbuf and starts a SEND when none is in flight. */
static void flush(struct mars_tls *t)
{
    if (t->sending || t->state == TLS_FAILED)
        return;
    if (t->s_off == t->s_len) {
        t->s_off = t->s_len = 0;
        int n = BIO_read(t->wbio, t->sbuf, TLS_SBUF);
        if (n <= 0)
            return;
        t->s_len = (size_t)n;
    }
    mars_ev_prep_send(&t->send_op, t->fd, t->sbuf + t->s_off, t->s_len - t->s_off, on_send, t);
    int rc = mars_ev_submit(t->loop, &t->send_op);
    if (rc)
        fail(t, rc, "cannot submit a send: %s", strerror(-rc));
    else
        t->sending = true;
}

static void want_recv(struct mars_tls *t)
{
    if (t->receiving || t->peer_eof || t->state == TLS_FAILED)
        return;
    mars_ev_prep_recv(&t->recv_op, t->fd, t->rbuf, TLS_RBUF, on_recv, t);
    int rc = mars_ev_submit(t->loop, &t->recv_op);
    if (rc)
        fail(t, rc, "cannot submit a recv: %s", strerror(-rc));
    else
        t->receiving = true;
}

/* ---- session: requests ---- */

static void complete_hs(struct mars_tls *t, int res)
{
    mars_tls_cb cb = t->hs_cb;
    t->hs_cb = NULL;
    cb(t, res);
}

static void complete_wr(struct mars_tls *t, int res)
{
    mars_tls_cb cb = t->wr.cb;
    t->wr.cb = NULL;
    cb(t, res);
}

static void complete_rd(struct mars_tls *t, int res)
{
    mars_tls_cb cb = t->rd.cb;
    t->rd.cb = NULL;
    cb(t, res);
}

static void step_handshake(struct mars_tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    flush(t);
    if (r == 1) {
        t->state = TLS_OPEN;
        complete_hs(t, 0);
        return;
    }
    if (SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
        fail_ssl(t, r, "handshake");
        return;
    }
    if (t->peer_eof)
        fail(t, -ECONNRESET, "the peer closed the connection during the TLS handshake");
    else
        want_recv(t);
}

/* Gives SSL_write the next piece of the pending write. Returns false on failure. */
static bool feed(struct mars_tls *t)
{
    const struct iovec *v = &t->wr.iov[t->wr.i];
    size_t rem = v->iov_len - t->wr.off;
    const char *p;
    size_t n;

    if (rem >= TLS_STAGE) {
        p = (const char *)v->iov_base + t->wr.off;
        n = rem < TLS_DIRECT ? rem : TLS_DIRECT;
        t->wr.off += n;
    } else {
        n = 0;
        while (t->wr.i < t->wr.niov && n < TLS_STAGE) {
            v = &t->wr.iov[t->wr.i];
            size_t take = v->iov_len - t->wr.off;
            if (take > TLS_STAGE - n)
                take = TLS_STAGE - n;
            memcpy(t->stage + n, (const char *)v->iov_base + t->wr.off, take);
            n += take;
            t->wr.off += take;
            if (t->wr.off == v->iov_len) {
                t->wr.i++;
                t->wr.off = 0;
            }
        }
        p = t->stage;
    }
    while (t->wr.i < t->wr.niov && t->wr.off == t->wr.iov[t->wr.i].iov_len) {
        t->wr.i++;
        t->wr.off = 0;
    }
    ERR_clear_error();
    int r = SSL_write(t->ssl, p, (int)n); /* a memory BIO takes it all */
    if (r != (int)n) {
        fail_ssl(t, r, "write");
        return false;
    }
    return true;
}

static void step_write(struct mars_tls *t)
{
    while (t->wr.cb && t->state == TLS_OPEN) {
        if (t->wr.i < t->wr.niov && BIO_pending(t->wbio) < (int)TLS_WBIO_HIGH) {
            if (!feed(t))
                return;
            continue;
        }
        flush(t);
        if (t->wr.i >= t->wr.niov && !t->sending && t->s_off == t->s_len &&
            BIO_pending(t->wbio) == 0 && t->state == TLS_OPEN)
            complete_wr(t, 0);
        return;
    }
}

static void step_read(struct mars_tls *t)
{
    if (!t->rd.cb || t->state != TLS_OPEN)
        return;
    ERR_clear_error();
    int r = SSL_read(t->ssl, t->rd.buf, t->rd.len > INT32_MAX ? INT32_MAX : (int)t->rd.len);
    flush(t); /* a read may queue output (key update) */
    if (r > 0) {
        complete_rd(t, r);
        return;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) {
        complete_rd(t, 0); /* close_notify */
    } else if (e != SSL_ERROR_WANT_READ) {
        fail_ssl(t, r, "read");
    } else if (t->peer_eof) {
        complete_rd(t, 0); /* TCP close without close_notify */
    } else {
        want_recv(t);
    }
}

static void fail_pending(struct mars_tls *t)
{
    if (t->hs_cb)
        complete_hs(t, t->err);
    if (t->wr.cb)
        complete_wr(t, t->err);
    if (t->rd.cb)
        complete_rd(t, t->err);
}

static void pump(struct mars_tls *t)
{
    if (t->depth > 0) {
        t->again = true;
        return;
    }
    t->depth++;
    do {
        t->again = false;
        if (t->state == TLS_HANDSHAKING && t->hs_cb)
            step_handshake(t);
        if (t->state == TLS_OPEN) {
            step_write(t);
            step_read(t);
        }
        if (t->state == TLS_FAILED)
            fail_pending(t);
    } while (t->again);
    t->depth--;
}

/* Makes progress after a request call: at once inside a callback (the outer pump runs
 * it after the callback), through a 0 ns timer otherwise. */
static int kick(struct mars_tls *t)
{
    if (t->depth > 0) {
        t->again = true;
        return 0;
    }
    if (t->deferred)
        return 0;
    mars_ev_prep_timer(&t->defer_op, 0, on_defer, t);
    int rc = mars_ev_submit(t->loop, &t->defer_op);
    if (rc == 0)
        t->deferred = true;
    return rc;
}

static int check_request(const struct mars_tls *t, mars_tls_cb pending, mars_tls_cb cb)
{
    if (!cb)
        return -EINVAL;
    if (t->state == TLS_FAILED)
        return t->err;
    return pending ? -EBUSY : 0;
}

int mars_tls_handshake(struct mars_tls *t, mars_tls_cb cb)
{
    int rc = check_request(t, t->hs_cb, cb);
    if (rc)
        return rc;
    if (t->state != TLS_NEW)
        return -EINVAL;
    t->state = TLS_HANDSHAKING;
    t->hs_cb = cb;
    rc = kick(t);
    if (rc) {
        t->hs_cb = NULL;
        t->state = TLS_NEW;
    }
    return rc;
}

int mars_tls_write(struct mars_tls *t, const struct iovec *iov, int niov, mars_tls_cb cb)
{
    int rc = check_request(t, t->wr.cb, cb);
    if (rc)
        return rc;
    if (t->state != TLS_OPEN || niov < 0)
        return -EINVAL;
    t->wr.iov = iov;
    t->wr.niov = niov;
    t->wr.i = 0;
    t->wr.off = 0;
    while (t->wr.i < niov && iov[t->wr.i].iov_len == 0)
        t->wr.i++;
    t->wr.cb = cb;
    rc = kick(t);
    if (rc)
        t->wr.cb = NULL;
    return rc;
}

int mars_tls_read(struct mars_tls *t, void *buf, size_t len, mars_tls_cb cb)
{
    int rc = check_request(t, t->rd.cb, cb);
    if (rc)
        return rc;
    if (t->state != TLS_OPEN || len == 0)
        return -EINVAL;
    t->rd.buf = buf;
    t->rd.len = len;
    t->rd.cb = cb;
    rc = kick(t);
    if (rc)
        t->rd.cb = NULL;
    return rc;
}

/* ---- session: lifetime ---- */

struct mars_tls *mars_tls_create(struct mars_tls_ctx *ctx, struct mars_ev_loop *loop, int fd,
                                 const char *peer_name, void *data)
{
    struct mars_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->loop = loop;
    t->fd = fd;
    t->data = data;
    t->server = ctx->role == MARS_TLS_SERVER;
    t->sbuf = malloc(TLS_SBUF);
    t->rbuf = malloc(TLS_RBUF);
    t->stage = malloc(TLS_STAGE);
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->sbuf || !t->rbuf || !t->stage || !t->ssl || !t->rbio || !t->wbio)
        goto fail;
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* ssl owns both from here */
    if (t->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (peer_name && *peer_name) {
            int ok;
            if (is_ip(peer_name)) {
                ok = !ctx->verify ||
                     X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), peer_name) == 1;
            } else {
                ok = SSL_set_tlsext_host_name(t->ssl, peer_name) == 1 &&
                     (!ctx->verify || SSL_set1_host(t->ssl, peer_name) == 1);
            }
            if (!ok)
                goto fail_ssl;
        }
    }
    return t;

fail:
    BIO_free(t->rbio); /* not yet given to ssl */
    BIO_free(t->wbio);
fail_ssl:
    SSL_free(t->ssl);
    free(t->sbuf);
    free(t->rbuf);
    free(t->stage);
    free(t);
    ERR_clear_error();
    return NULL;
}

void mars_tls_cancel(struct mars_tls *t)
{
    if (t->state != TLS_FAILED) {
        t->state = TLS_FAILED;
        t->err = -ECANCELED;
        snprintf(t->errbuf, sizeof(t->errbuf), "cancelled");
    }
    cancel_ops(t);
    if (t->deferred)
        mars_ev_cancel(t->loop, &t->defer_op);
    else if (t->hs_cb || t->wr.cb || t->rd.cb)
        kick(t); /* pending requests always wait on an op, but be safe */
}

bool mars_tls_busy(const struct mars_tls *t)
{
    return t->sending || t->receiving || t->deferred;
}

void mars_tls_set_idle_cb(struct mars_tls *t, mars_tls_cb cb)
{
    t->idle_cb = cb;
}

void mars_tls_destroy(struct mars_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->sbuf);
    free(t->rbuf);
    free(t->stage);
    free(t);
}

void *mars_tls_data(const struct mars_tls *t)
{
    return t->data;
}

const char *mars_tls_error(const struct mars_tls *t)
{
    return t->errbuf;
}

const char *mars_tls_version(const struct mars_tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *mars_tls_cipher(const struct mars_tls *t)
{
    const char *c = SSL_get_cipher_name(t->ssl);
    return c ? c : "(none)";
}

int mars_tls_peer_cn(const struct mars_tls *t, char *buf, size_t len)
{
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (!cert)
        return -ENOENT;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, (int)len);
    X509_free(cert);
    return n < 0 ? -ENOENT : 0;
}
