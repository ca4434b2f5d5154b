/*
 * http_direct.c - http:// and https:// requests without libcurl: HTTP/1.1 written and read
 * by mars over core/conn (TLS by core/tls), for the requests that ask for it
 * (mars_http_req.direct: the sinks that ship data, http, elasticsearch and loki, and the
 * control-plane clients).
 *
 * Why not libcurl for these: libcurl copies every request body through its upload buffer
 * and sends it a buffer at a time (on loopback each send also runs the receiver), and its
 * global initialisation sets up OpenSSL even for http://; together about a third of
 * file -> http's CPU above file -> tcp and 1.7 MiB of resident memory. Here the request
 * head and the body's iovecs (the encoder's buffers, or the read chunks themselves) go to
 * the kernel in one sendmsg, and a pipeline whose HTTP is all direct never loads libcurl
 * (the ~25 libraries it maps cost more resident memory than OpenSSL itself). https:// runs
 * over core/tls with one ctx per distinct set of TLS files in the client, HTTP/1.1 only (no
 * ALPN). h2c by prior knowledge (gRPC to a plain peer) is core/http2_direct.c's: this file
 * hands those requests and their sessions on. HTTP/2 over TLS, proxies from the environment
 * and URLs with a user stay with libcurl (http_client.c decides per request).
 *
 * An exchange (struct h1_xfer) runs on a connection (struct h1_conn) kept per client and
 * reused for the same host and port after a complete response that allows it. A request
 * on a reused connection that fails before any byte of the answer (the peer closed it
 * while idle) is sent once more on a new connection, as browsers and libcurl do.
 * Responses: status line, headers (Content-Length, Transfer-Encoding: chunked,
 * Connection), a body by length, chunks (trailers are passed on like headers) or up to the
 * close; 1xx answers are skipped. Each connection has one timer for its exchange's
 * deadline (request timeout_ns); connect_timeout_ns is core/conn's.
 *
 * Lifetimes: a closed connection goes to the client's graveyard and is freed from the
 * client's deferred work once core/conn has no op of it in flight and its timer is done,
 * never inside one of its own callbacks (core/direct_conn.c, shared with http2_direct.c).
 *
 * Thread: the client's loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conn.h"
#include "core/grow.h"
#include "core/http1_parse.h"
#include "core/http_client_internal.h"
#include "core/tls.h"

#define KEEPALIVE_NS (60LL * 1000000000)

struct h1_conn {
    struct mars_direct_conn d; /* client, connection, peer, timer, lists */
    struct mars_tls_ctx *tls;  /* NULL: plain */
    char *server_name;         /* TLS name when not the host */
    struct h1_xfer *x;         /* the exchange on it; NULL when idle */
};

static struct h1_conn *h1_of(struct mars_direct_conn *d)
{
    return MARS_CONTAINER_OF(d, struct h1_conn, d);
}

struct h1_xfer {
    struct mars_http_priv *p;
    struct h1_conn *conn;
    char *host, *port;
    struct mars_tls_ctx *tls;
    char *server_name;
    char *head;
    size_t head_len, head_cap;
    struct iovec *iov; /* head + body, copied for each send (core/conn advances it) */
    int niov;
    int64_t deadline; /* monotonic ns; 0: none */
    bool fresh, reused, retried, sent, got_bytes;
    struct mars_h1_parser resp;
};

/* ---- the URL ---- */

bool mars_http_url_parse(const char *url, struct mars_http_url *u)
{
    memset(u, 0, sizeof(*u));
    if (!url)
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        u->tls = true;
    else if (strncasecmp(url, "http://", 7) != 0)
        return false;
    for (const unsigned char *s = (const unsigned char *)url; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    const char *a = url + (u->tls ? 8 : 7);
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || memchr(a, '@', alen))
        return false;
    u->authority = a;
    u->authority_len = alen;
    const char *hp_end = a + alen, *colon;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close)
            return false;
        u->host = a + 1;
        u->host_len = (size_t)(close - a - 1);
        colon = close + 1 < hp_end ? close + 1 : NULL;
        if (colon && *colon != ':')
            return false;
    } else {
        colon = memchr(a, ':', alen);
        u->host = a;
        u->host_len = colon ? (size_t)(colon - a) : alen;
    }
    if (u->host_len == 0)
        return false;
    if (colon && colon + 1 < hp_end) {
        u->port = colon + 1;
        u->port_len = (size_t)(hp_end - u->port);
        unsigned long v = 0;
        if (u->port_len > 5)
            return false;
        for (size_t i = 0; i < u->port_len; i++) {
            if (u->port[i] < '0' || u->port[i] > '9')
                return false;
            v = v * 10 + (unsigned long)(u->port[i] - '0');
        }
        if (v == 0 || v > 65535)
            return false;
    }
    u->path = hp_end;
    u->path_len = strcspn(hp_end, "#");
    return true;
}

static bool proxy_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

bool mars_http_direct_ok(const struct mars_http_req *r)
{
    struct mars_http_url u;
    if (!r->direct || !mars_http_url_parse(r->url, &u))
        return false;
    if (r->http2_prior_knowledge && u.tls) /* h2 by ALPN: libcurl's */
        return false;
    /* libcurl takes a proxy from these (http_proxy only in lower case); let it */
    if (proxy_set("all_proxy") || proxy_set("ALL_PROXY"))
        return false;
    return u.tls ? !proxy_set("https_proxy") && !proxy_set("HTTPS_PROXY")
                 : !proxy_set("http_proxy");
}

/* ---- the request head ---- */

static void put(struct h1_xfer *x, bool *ok, const char *s, size_t n)
{
    if (!*ok || mars_grow(&x->head, &x->head_cap, x->head_len + n + 1, 1)) {
        *ok = false;
        return;
    }
    memcpy(x->head + x->head_len, s, n);
    x->head_len += n;
    x->head[x->head_len] = '\0';
}

static void puts_(struct h1_xfer *x, bool *ok, const char *s)
{
    put(x, ok, s, strlen(s));
}

/* base64 of s[0..n) at out, which has room for 4 * ((n + 2) / 3) bytes; returns their count. */
static size_t base64(char *out, const char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

char *mars_http_auth_value(const struct mars_http_req *r, int *err)
{
    *err = 0;
    if (!r->user && !r->bearer)
        return NULL;
    if (!r->user) {
        size_t n = strlen(r->bearer) + 8;
        char *v = malloc(n);
        if (v)
            snprintf(v, n, "Bearer %s", r->bearer);
        else
            *err = -ENOMEM;
        return v;
    }
    size_t ul = strlen(r->user), pl = r->password ? strlen(r->password) : 0, cl = ul + pl + 1;
    char *cred = malloc(cl), *v = malloc(6 + 4 * ((cl + 2) / 3) + 1);
    if (!cred || !v) {
        free(cred);
        free(v);
        *err = -ENOMEM;
        return NULL;
    }
    memcpy(cred, r->user, ul);
    cred[ul] = ':';
    if (pl)
        memcpy(cred + ul + 1, r->password, pl);
    memcpy(v, "Basic ", 6);
    v[6 + base64(v + 6, cred, cl)] = '\0';
    explicit_bzero(cred, cl);
    free(cred);
    return v;
}

/* The caller's header named `name` (case-insensitive), if any. */
static bool caller_has(const struct mars_http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *hd = r->headers; hd && *hd; hd++)
        if (strncasecmp(*hd, name, n) == 0 && (*hd)[n] == ':')
            return true;
    return false;
}

static int build_head(struct h1_xfer *x, const struct mars_http_req *r,
                      const struct mars_http_url *u, const char *user_agent)
{
    bool ok = true, has_body = r->body || r->body_iov;
    int rc;
    const char *method = r->method ? r->method : has_body ? "POST" : "GET";
    char num[32];
    x->head_len = 0;
    x->resp.head_method = strcmp(method, "HEAD") == 0;
    puts_(x, &ok, method);
    puts_(x, &ok, " ");
    if (u->path_len == 0 || u->path[0] != '/')
        puts_(x, &ok, "/");
    put(x, &ok, u->path, u->path_len);
    puts_(x, &ok, " HTTP/1.1\r\n");
    if (!caller_has(r, "Host")) {
        /* with tls.server_name the request is for that name, as libcurl's CONNECT_TO does */
        puts_(x, &ok, "Host: ");
        if (x->server_name) {
            puts_(x, &ok, x->server_name);
            if (u->port) {
                puts_(x, &ok, ":");
                put(x, &ok, u->port, u->port_len);
            }
        } else {
            put(x, &ok, u->authority, u->authority_len);
        }
        puts_(x, &ok, "\r\n");
    }
    if (!caller_has(r, "User-Agent")) {
        puts_(x, &ok, "User-Agent: ");
        puts_(x, &ok, user_agent);
        puts_(x, &ok, "\r\n");
    }
    if (!caller_has(r, "Accept"))
        puts_(x, &ok, "Accept: */*\r\n");
    char *auth = mars_http_auth_value(r, &rc);
    if (rc)
        return rc;
    if (auth) {
        puts_(x, &ok, "Authorization: ");
        puts_(x, &ok, auth);
        puts_(x, &ok, "\r\n");
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    for (const char *const *hd = r->headers; hd && *hd; hd++) {
        const char *colon = strchr(*hd, ':');
        if (!colon || colon[strspn(colon + 1, " \t") + 1] == '\0')
            continue; /* "Name:" removes a header in libcurl's terms: nothing to send */
        puts_(x, &ok, *hd);
        puts_(x, &ok, "\r\n");
    }
    if (has_body || (strcmp(method, "GET") != 0 && !x->resp.head_method)) {
        snprintf(num, sizeof(num), "%zu", has_body ? r->body_len : (size_t)0);
        puts_(x, &ok, "Content-Length: ");
        puts_(x, &ok, num);
        puts_(x, &ok, "\r\n");
    }
    puts_(x, &ok, "\r\n");
    return ok ? 0 : -ENOMEM;
}

/* The iovecs of one send: the head, then the body. */
static int fill_iov(struct h1_xfer *x)
{
    const struct mars_http_req *r = x->p->req;
    int n = 1 + (r->body ? 1 : r->body_iov ? r->body_iovcnt : 0);
    free(x->iov);
    x->iov = calloc((size_t)n, sizeof(*x->iov));
    if (!x->iov)
        return -ENOMEM;
    x->iov[0] = (struct iovec){.iov_base = x->head, .iov_len = x->head_len};
    if (r->body)
        x->iov[1] = (struct iovec){.iov_base = (void *)r->body, .iov_len = r->body_len};
    else if (r->body_iov)
        memcpy(x->iov + 1, r->body_iov, (size_t)r->body_iovcnt * sizeof(*x->iov));
    x->niov = n;
    return 0;
}

/* ---- connections ---- */

static void on_conn_data(struct mars_conn *c, const char *s, size_t n);
static void on_conn_close(struct mars_conn *c, int err);
static void on_conn_idle(struct mars_conn *c, int err);
static void on_timer(struct mars_ev_op *op, int res);

/* Closes hc for good: to the graveyard, freed by mars_http_direct_reap. */
static void conn_kill(struct h1_conn *hc)
{
    if (hc->d.closed)
        return;
    hc->x = NULL;
    mars_direct_conn_bury(&hc->d, &hc->d.h->conns, &hc->d.h->graveyard);
}

/* Frees hc, which is on no list and has no op of its own in flight. */
static void conn_free(struct mars_direct_conn *d)
{
    struct h1_conn *hc = h1_of(d);
    mars_direct_conn_fini(d);
    free(hc->server_name);
    free(hc);
}

static struct h1_conn *conn_new(struct mars_http *h, struct h1_xfer *x)
{
    struct h1_conn *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return NULL;
    hc->d.h = h;
    hc->d.host = strdup(x->host);
    hc->d.port = strdup(x->port);
    hc->tls = x->tls;
    hc->server_name = x->server_name ? strdup(x->server_name) : NULL;
    const struct mars_conn_opts o = {
        .host = x->host,
        .port = x->port,
        .tls = x->tls,
        .server_name = x->server_name,
        .connect_timeout_ns = x->p->req->connect_timeout_ns,
        .keepalive_ns = KEEPALIVE_NS,
        .on_data = on_conn_data,
        .on_close = on_conn_close,
        .on_idle = on_conn_idle,
        .data = hc,
    };
    bool ok = hc->d.host && hc->d.port && (hc->server_name || !x->server_name);
    hc->d.c = ok ? mars_conn_create(h->loop, &o) : NULL;
    if (!hc->d.c) {
        conn_free(&hc->d);
        return NULL;
    }
    mars_direct_conn_push(&h->conns, &hc->d);
    return hc;
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static struct h1_conn *conn_idle(struct mars_http *h, const struct h1_xfer *x)
{
    for (struct mars_direct_conn *d = h->conns; d; d = d->next) {
        struct h1_conn *hc = h1_of(d);
        if (!hc->x && mars_conn_state(d->c) == MARS_CONN_READY && strcmp(d->host, x->host) == 0 &&
            strcmp(d->port, x->port) == 0 && hc->tls == x->tls &&
            same(hc->server_name, x->server_name))
            return hc;
    }
    return NULL;
}

static void timer_arm(struct h1_conn *hc, int64_t due)
{
    mars_direct_conn_timer_arm(&hc->d, due, on_timer);
}

/* ---- an exchange ---- */

static void xfer_detach(struct h1_xfer *x, bool keep)
{
    struct h1_conn *hc = x->conn;
    if (!hc)
        return;
    x->conn = NULL;
    hc->x = NULL;
    if (!keep)
        conn_kill(hc);
}

static void xfer_fail(struct h1_xfer *x, int err, const char *text)
{
    struct mars_http_priv *p = x->p;
    snprintf(p->errbuf, sizeof(p->errbuf), "%s", text);
    xfer_detach(x, false);
    mars_http_priv_end(p, x->resp.status, err, p->errbuf);
}

static void xfer_complete(struct h1_xfer *x)
{
    bool keep = mars_h1_reusable(&x->resp) && x->sent && !x->fresh;
    xfer_detach(x, keep);
    mars_http_priv_end(x->p, x->resp.status, 0, NULL);
}

static int xfer_go(struct h1_xfer *x, bool allow_reuse);

/* A reused connection that failed before any byte of the answer had most likely been
 * closed by the peer while idle: once more on a new one. */
static bool xfer_retry(struct h1_xfer *x)
{
    if (!x->reused || x->retried || x->got_bytes)
        return false;
    x->retried = true;
    xfer_detach(x, false);
    int rc = xfer_go(x, false);
    if (rc)
        xfer_fail(x, rc, strerror(-rc));
    return true;
}

static void on_sent(struct mars_conn *c, int err)
{
    struct h1_conn *hc = mars_conn_data(c);
    struct h1_xfer *x = hc->x;
    if (!x)
        return;
    if (err == 0) {
        x->sent = true;
        return;
    }
    if (!xfer_retry(x))
        xfer_fail(x, err, mars_conn_error(c));
}

static int xfer_send(struct h1_xfer *x)
{
    int rc = fill_iov(x);
    if (rc == 0)
        rc = mars_conn_send(x->conn->d.c, x->iov, x->niov, on_sent);
    return rc;
}

static void on_open(struct mars_conn *c, int err)
{
    struct h1_conn *hc = mars_conn_data(c);
    struct h1_xfer *x = hc->x;
    if (!x) {
        conn_kill(hc);
        return;
    }
    if (err) {
        /* the client's contract: TLS failures are -EPROTO (libcurl's path says so too) */
        xfer_fail(x, err == -EKEYREJECTED ? -EPROTO : err, mars_conn_error(c));
        return;
    }
    int rc = xfer_send(x);
    if (rc)
        xfer_fail(x, rc, strerror(-rc));
}

static int xfer_go(struct h1_xfer *x, bool allow_reuse)
{
    struct mars_http *h = x->p->h;
    struct h1_conn *hc = allow_reuse && !x->fresh ? conn_idle(h, x) : NULL;
    x->reused = hc != NULL;
    if (!hc && !(hc = conn_new(h, x)))
        return -ENOMEM;
    hc->x = x;
    x->conn = hc;
    mars_h1_parser_reset(&x->resp);
    x->sent = x->got_bytes = false;
    if (x->deadline)
        timer_arm(hc, x->deadline);
    int rc = x->reused ? xfer_send(x) : mars_conn_open(hc->d.c, on_open);
    if (rc) {
        x->conn = NULL;
        hc->x = NULL;
        conn_kill(hc);
    }
    return rc;
}

static bool resp_body(void *data, const char *s, size_t n)
{
    return mars_http_priv_body(data, s, n);
}

static void resp_header(void *data, const char *line, size_t n)
{
    mars_http_priv_header(data, line, n);
}

int mars_http_direct_start(struct mars_http *h, struct mars_http_priv *p)
{
    const struct mars_http_req *r = p->req;
    struct mars_http_url u;
    if (!mars_http_url_parse(r->url, &u))
        return -EINVAL;
    if (r->http2_prior_knowledge)
        return mars_http2_direct_start(h, p, &u);
    struct h1_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    p->x = x;
    x->p = p;
    x->fresh = r->fresh_connection;
    x->resp.on_body = resp_body;
    x->resp.on_header = resp_header;
    x->resp.data = p;
    x->host = strndup(u.host, u.host_len);
    x->port = u.port ? strndup(u.port, u.port_len) : strdup(u.tls ? "443" : "80");
    if (!x->host || !x->port)
        return -ENOMEM; /* p->x is freed with p */
    if (u.tls && r->tls && r->tls->server_name && !(x->server_name = strdup(r->tls->server_name)))
        return -ENOMEM;
    int rc = build_head(x, r, &u, h->user_agent);
    if (rc)
        return rc;
    if (r->timeout_ns > 0)
        x->deadline = mars_ev_now(h->loop) + r->timeout_ns;
    if (u.tls && !(x->tls = mars_http_tls_ctx(h, r->tls, p->errbuf, sizeof(p->errbuf)))) {
        mars_http_priv_fail_soon(p, -EPROTO); /* the reason is in errbuf */
        return 0;
    }
    return xfer_go(x, true);
}

void mars_http_direct_cancel(struct mars_http *h, struct mars_http_priv *p)
{
    (void)h;
    if (p->x)
        xfer_detach(p->x, false);
    mars_http2_direct_cancel(p);
}

void mars_http_direct_free(struct mars_http_priv *p)
{
    mars_http2_direct_free(p);
    struct h1_xfer *x = p->x;
    if (!x)
        return;
    xfer_detach(x, false);
    free(x->host);
    free(x->port);
    free(x->server_name);
    free(x->head);
    free(x->iov);
    mars_h1_parser_fini(&x->resp);
    free(x);
    p->x = NULL;
}

void mars_http_direct_shutdown(struct mars_http *h)
{
    while (h->conns)
        conn_kill(h1_of(h->conns));
    mars_http2_direct_shutdown(h);
}

bool mars_http_direct_holds_tls(const struct mars_http *h, const struct mars_tls_ctx *ctx)
{
    for (struct mars_direct_conn *d = h->conns; d; d = d->next)
        if (h1_of(d)->tls == ctx)
            return true;
    for (struct mars_direct_conn *d = h->graveyard; d; d = d->next)
        if (h1_of(d)->tls == ctx)
            return true;
    return false;
}

void mars_http_direct_reap(struct mars_http *h, bool all)
{
    mars_direct_conn_reap(&h->conns, &h->graveyard, all, conn_free);
    mars_http2_direct_reap(h, all);
    mars_http_tls_reap(h, all); /* after the connections that held the ctxs */
}

static void on_conn_data(struct mars_conn *c, const char *s, size_t n)
{
    struct h1_conn *hc = mars_conn_data(c);
    struct h1_xfer *x = hc->x;
    if (!x) { /* bytes nobody asked for on an idle connection */
        conn_kill(hc);
        return;
    }
    x->got_bytes = true;
    int rc = mars_h1_parse(&x->resp, s, n);
    if (rc == 1)
        xfer_complete(x);
    else if (rc == -ECANCELED)
        xfer_fail(x, rc, "request cancelled");
    else if (rc < 0)
        xfer_fail(x, rc,
                  rc == -ENOMEM ? "out of memory reading the answer"
                                : "the answer is not valid HTTP/1.1 (bad status line, header, "
                                  "length or chunk)");
}

static void on_conn_close(struct mars_conn *c, int err)
{
    struct h1_conn *hc = mars_conn_data(c);
    struct h1_xfer *x = hc->x;
    char text[CURL_ERROR_SIZE];
    if (!x) { /* an idle connection the peer closed */
        conn_kill(hc);
        return;
    }
    if (mars_h1_parse_close(&x->resp)) { /* the close ends a body without a length */
        xfer_complete(x);
        return;
    }
    if (xfer_retry(x))
        return;
    snprintf(text, sizeof(text), "%s before the answer was complete",
             err ? mars_conn_error(c) : "connection closed");
    xfer_fail(x, -ECONNRESET, text);
}

static void on_conn_idle(struct mars_conn *c, int err)
{
    struct h1_conn *hc = mars_conn_data(c);
    (void)err;
    mars_http_kick(hc->d.h);
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct h1_conn *hc = h1_of(op->data);
    (void)res;
    hc->d.timer_armed = false;
    if (hc->d.closed) {
        mars_http_kick(hc->d.h);
        return;
    }
    struct h1_xfer *x = hc->x;
    if (!x || !x->deadline)
        return;
    if (mars_ev_now(hc->d.h->loop) < x->deadline) {
        timer_arm(hc, x->deadline);
        return;
    }
    char text[96];
    snprintf(text, sizeof(text), "request timed out after %lld ms",
             (long long)(x->p->req->timeout_ns / 1000000));
    xfer_fail(x, -ETIMEDOUT, text);
}
