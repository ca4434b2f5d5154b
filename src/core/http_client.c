/*
 * http_client.c - the HTTP client of http_client.h: libcurl's multi interface driven by a
 * mars ev loop.
 *
 * libcurl tells us which sockets it wants watched (socket callback) and when it next needs
 * the clock (timer callback); we turn those into one-shot ev POLL ops and one ev TIMER op,
 * and when one completes we hand the event back with curl_multi_socket_action() and collect
 * finished transfers with curl_multi_info_read(). Everything runs on the loop's thread, so
 * there is no locking; the multi handle keeps the connection cache, so keep-alive and h2
 * multiplexing work across requests.
 *
 * Lifetimes. A watched socket is a struct http_sock owned by the client; curl's REMOVE frees
 * it, unless its poll op is in flight (then the op is cancelled and its callback frees it)
 * or we are inside that socket's own callback (freed when the callback returns). The timer
 * is re-armed only when curl asks for an earlier deadline than the armed one; a later
 * deadline just waits for the armed one to fire, which then re-arms for the rest.
 * Completions that do not come from curl (cancel, shutdown) are queued and delivered from a
 * zero-delay "kick" op, so done() never runs inside a caller's call into the client.
 *
 * Thread: the loop's thread only.
 */
#include "core/http_client.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/ev.h"
#include "core/grow.h"
#include "core/http_client_internal.h"
#include "core/log.h"

#define DEFAULT_MAX_BODY           (64u * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
/* libcurl copies a request body through an upload buffer and sends each fill with one
 * send(): 64 KiB by default. On loopback each send also wakes the reader, and a 1 MiB
 * body took 16 of them; 256 KiB cut mars's CPU for file -> http by ~15% for 192 KiB more
 * per request in flight. Only bodies above libcurl's default get the larger buffer. */
#define UPLOAD_BUFFER_SIZE (256L * 1024)
#define UPLOAD_BUFFER_MIN  (64u * 1024)

struct http_sock {
    struct mars_http *h;
    curl_socket_t fd;
    struct mars_ev_op op;
    short want; /* POLLIN/POLLOUT curl asked for */
    short armed_for;
    bool armed; /* op in flight */
    bool removed;
    bool busy; /* inside this socket's callback */
    struct http_sock *prev, *next;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static char global_err[320]; /* empty: libcurl is loaded and initialised */
static void global_init(void)
{
    if (mars_curl_load(global_err, sizeof(global_err))) {
        mars_error("-", "%s", global_err); /* once; every client then fails with ENOPKG */
        return;
    }
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    mars_info("-", "loaded libcurl %s%s", v && v->version ? v->version : "(unknown version)",
              mars_curl_env_added() ? " (GnuTLS's implicit initialisation off)" : "");
}

/* ---- results ---- */

static int curl_errno(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return -ECONNRESET;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return -EPROTO;
    default:
        return -EIO;
    }
}

static void priv_destroy(struct mars_http_priv *p)
{
    mars_http_direct_free(p);
    if (p->easy) { /* a direct request made nothing of libcurl's, which may not be loaded */
        curl_easy_cleanup(p->easy);
        curl_slist_free_all(p->hdrs);
        curl_slist_free_all(p->connect_to);
    }
    free(p->connect_to_entry);
    free(p->url);
    free(p->body);
    free(p);
}

static void active_unlink(struct mars_http *h, struct mars_http_priv *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        h->active_list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    h->active--;
}

/* Delivers the outcome of p and frees it; p is already out of the multi and active list.
 * err: 0 or a negative errno, with text. */
static void finish(struct mars_http_priv *p, int status, int err, const char *text)
{
    struct mars_http_req *r = p->req;
    struct mars_http_resp resp = {.status = status, .retry_after_ns = p->retry_after_ns};
    if (p->cancelled || p->aborted) {
        resp.error = -ECANCELED;
        resp.error_text = "request cancelled";
    } else if (err) {
        resp.error = err;
        resp.error_text = text;
    }
    resp.body = p->body ? p->body : "";
    resp.body_len = p->len;
    resp.body_truncated = p->truncated;
    r->priv = NULL;
    r->done(r, &resp);
    priv_destroy(p);
}

static void finish_curl(struct mars_http_priv *p, CURLcode cc)
{
    long status = 0;
    if (curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    finish(p, (int)status, curl_errno(cc),
           cc == CURLE_OK ? NULL
           : p->errbuf[0] ? p->errbuf
                          : curl_easy_strerror(cc));
}

void mars_http_priv_end(struct mars_http_priv *p, int status, int err, const char *text)
{
    active_unlink(p->h, p);
    finish(p, status, err, text);
}

static void collect(struct mars_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct mars_http_priv *p = NULL;
        CURL *e = m->easy_handle;
        CURLcode cc = m->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&p);
        curl_multi_remove_handle(h->multi, e);
        active_unlink(h, p);
        finish_curl(p, cc);
    }
}

/* ---- deferred completions ---- */

static void on_kick(struct mars_ev_op *op, int res)
{
    struct mars_http *h = op->data;
    (void)res;
    h->kick_armed = false;
    struct mars_http_priv *p = h->done_head;
    h->done_head = h->done_tail = NULL;
    while (p) {
        struct mars_http_priv *next = p->next_done;
        if (p->fail_soon) {
            if (!p->cancelled) /* else mars_http_cancel unlinked it */
                active_unlink(h, p);
            finish(p, 0, p->fail_soon, p->errbuf);
        } else {
            finish(p, 0, 0, NULL); /* cancelled */
        }
        p = next;
    }
    mars_http_direct_reap(h, false);
}

void mars_http_kick(struct mars_http *h)
{
    if (!h->kick_armed) {
        mars_ev_prep_timer(&h->kick, 0, on_kick, h);
        if (mars_ev_submit(h->loop, &h->kick) == 0)
            h->kick_armed = true;
    }
}

static void defer_done(struct mars_http *h, struct mars_http_priv *p)
{
    p->next_done = NULL;
    if (h->done_tail)
        h->done_tail->next_done = p;
    else
        h->done_head = p;
    h->done_tail = p;
    mars_http_kick(h);
}

void mars_http_priv_fail_soon(struct mars_http_priv *p, int err)
{
    p->fail_soon = err;
    defer_done(p->h, p);
}

/* ---- sockets ---- */

static void on_poll(struct mars_ev_op *op, int res);

static void sock_destroy(struct http_sock *s)
{
    struct mars_http *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void sock_arm(struct http_sock *s)
{
    if (s->armed || s->removed || !s->want || s->h->shutting_down)
        return;
    mars_ev_prep_poll(&s->op, s->fd, s->want, on_poll, s);
    if (mars_ev_submit(s->h->loop, &s->op) == 0) {
        s->armed = true;
        s->armed_for = s->want;
    }
}

static void on_poll(struct mars_ev_op *op, int res)
{
    struct http_sock *s = op->data;
    struct mars_http *h = s->h;
    s->armed = false;
    if (s->removed) {
        sock_destroy(s);
        return;
    }
    if (res == -ECANCELED) { /* curl changed what it wants, or shutdown */
        sock_arm(s);
        return;
    }
    int flags = 0;
    if (res < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (res & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))
            flags |= CURL_CSELECT_IN;
        if (res & POLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (res & POLLERR)
            flags |= CURL_CSELECT_ERR;
    }
    int running;
    s->busy = true;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    s->busy = false;
    if (s->removed)
        sock_destroy(s);
    else
        sock_arm(s);
    collect(h);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct mars_http *h = userp;
    struct http_sock *s = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (!s)
            return 0;
        curl_multi_assign(h->multi, fd, NULL);
        s->removed = true;
        s->want = 0;
        if (s->armed)
            mars_ev_cancel(h->loop, &s->op); /* on_poll frees it */
        else if (!s->busy)
            sock_destroy(s);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->h = h;
        s->fd = fd;
        s->next = h->socks;
        if (h->socks)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    s->want = (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    if (s->armed && s->armed_for != s->want)
        mars_ev_cancel(h->loop, &s->op); /* on_poll re-arms with the new events */
    else if (!s->busy)
        sock_arm(s);
    return 0;
}

/* ---- timer ---- */

static void on_timer(struct mars_ev_op *op, int res);

static void timer_arm(struct mars_http *h)
{
    if (h->timer_armed || h->timer_due < 0 || h->shutting_down)
        return;
    int64_t wait = h->timer_due - mars_ev_now(h->loop);
    mars_ev_prep_timer(&h->timer, wait > 0 ? wait : 0, on_timer, h);
    if (mars_ev_submit(h->loop, &h->timer) == 0) {
        h->timer_armed = true;
        h->timer_armed_due = h->timer_due;
    }
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct mars_http *h = op->data;
    h->timer_armed = false;
    if (res == -ECANCELED || h->timer_due < 0 ||
        h->timer_due > mars_ev_now(h->loop) + 1000000) { /* moved later while armed */
        timer_arm(h);
        return;
    }
    h->timer_due = -1;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(h);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct mars_http *h = userp;
    (void)m;
    if (timeout_ms < 0) {
        h->timer_due = -1;
        if (h->timer_armed) /* no op left waiting for nothing (a loop must be able to drain) */
            mars_ev_cancel(h->loop, &h->timer);
        return 0;
    }
    h->timer_due = mars_ev_now(h->loop) + (int64_t)timeout_ms * 1000000;
    if (h->timer_armed && h->timer_due < h->timer_armed_due)
        mars_ev_cancel(h->loop, &h->timer); /* on_timer re-arms for the earlier deadline */
    else
        timer_arm(h);
    return 0;
}

/* ---- transfers ---- */

bool mars_http_priv_body(struct mars_http_priv *pv, const char *p, size_t len)
{
    if (pv->req->on_data) {
        if (!pv->req->on_data(pv->req, p, len)) {
            pv->aborted = true;
            return false;
        }
        return true;
    }
    size_t room = pv->max - pv->len;
    size_t take = len < room ? len : room;
    if (take < len)
        pv->truncated = true;
    if (take) {
        if (mars_grow(&pv->body, &pv->cap, pv->len + take + 1, 1))
            return false;
        memcpy(pv->body + pv->len, p, take);
        pv->len += take;
        pv->body[pv->len] = '\0';
    }
    return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    /* 0 (short of n) ends the transfer with CURLE_WRITE_ERROR */
    return mars_http_priv_body(ud, p, size * n) ? size * n : 0;
}

/* body_iov: the next bytes of the pieces, as many as fit in buf. */
static size_t on_upload(char *buf, size_t size, size_t n, void *ud)
{
    struct mars_http_priv *pv = ud;
    const struct mars_http_req *r = pv->req;
    size_t room = size * n, done = 0;
    while (done < room && pv->up_iov < r->body_iovcnt) {
        const struct iovec *v = &r->body_iov[pv->up_iov];
        size_t take = v->iov_len - pv->up_off;
        if (take > room - done)
            take = room - done;
        memcpy(buf + done, (const char *)v->iov_base + pv->up_off, take);
        done += take;
        pv->up_off += take;
        if (pv->up_off == v->iov_len) {
            pv->up_iov++;
            pv->up_off = 0;
        }
    }
    return done;
}

/* libcurl rewinds the body to send it again (on a new connection when a reused one had
 * died): any offset from the start. */
static int on_upload_seek(void *ud, curl_off_t offset, int origin)
{
    struct mars_http_priv *pv = ud;
    const struct mars_http_req *r = pv->req;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    size_t left = (size_t)offset;
    pv->up_iov = 0;
    while (pv->up_iov < r->body_iovcnt && left >= r->body_iov[pv->up_iov].iov_len)
        left -= r->body_iov[pv->up_iov++].iov_len;
    pv->up_off = left;
    return left && pv->up_iov == r->body_iovcnt ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

/* An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms)
 * as seconds since the epoch; -1 when it is none of them. */
static time_t http_date(const char *s)
{
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct tm tm = {0};
        const char *end = strptime(s, forms[i], &tm);
        if (end && strspn(end, " \t\r\n") == strlen(end))
            return timegm(&tm);
    }
    return (time_t)-1;
}

/* Retry-After: delay-seconds or an HTTP-date; every line also to the request's on_header. */
void mars_http_priv_header(struct mars_http_priv *pv, const char *p, size_t len)
{
    static const char name[] = "retry-after:";
    if (pv->req->on_header)
        pv->req->on_header(pv->req, p, len);
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        char v[64];
        size_t vl = len - (sizeof(name) - 1);
        if (vl >= sizeof(v))
            vl = sizeof(v) - 1;
        memcpy(v, p + sizeof(name) - 1, vl);
        v[vl] = '\0';
        char *s = v, *end;
        while (*s == ' ' || *s == '\t')
            s++;
        long secs = strtol(s, &end, 10);
        if (end != s && (*end == '\r' || *end == '\n' || *end == '\0' || *end == ' ')) {
            if (secs >= 0)
                pv->retry_after_ns = (int64_t)secs * 1000000000;
        } else {
            time_t t = http_date(s);
            if (t != (time_t)-1) {
                int64_t d = ((int64_t)t - (int64_t)time(NULL)) * 1000000000;
                pv->retry_after_ns = d > 0 ? d : 0;
            }
        }
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    mars_http_priv_header(ud, p, size * n);
    return size * n;
}

/* tls.server_name: ask for that name in the URL (SNI and verification use it) and connect
 * to the URL's real host with CURLOPT_CONNECT_TO. */
static int apply_server_name(struct mars_http_priv *p, const char *url, const char *name)
{
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;
    int rc = -EINVAL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
        goto out;
    size_t n = strlen(name) + strlen(host) + 4;
    p->connect_to_entry = malloc(n);
    p->url = strdup(out);
    if (!p->connect_to_entry || !p->url) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(p->connect_to_entry, n, "%s::%s:", name, host);
    p->connect_to = curl_slist_append(NULL, p->connect_to_entry);
    rc = p->connect_to ? 0 : -ENOMEM;
out:
    curl_free(host);
    curl_free(out);
    curl_url_cleanup(u);
    return rc;
}

static int setup_headers(struct mars_http_priv *p, const struct mars_http_req *r)
{
    struct curl_slist *l = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    char auth[1024];
    if (!l)
        return -ENOMEM;
    for (const char *const *hd = r->headers; hd && *hd; hd++) {
        struct curl_slist *n = curl_slist_append(l, *hd);
        if (!n)
            goto nomem;
        l = n;
    }
    if (r->bearer) {
        if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->bearer) >=
            sizeof(auth))
            goto nomem;
        struct curl_slist *n = curl_slist_append(l, auth);
        explicit_bzero(auth, sizeof(auth));
        if (!n)
            goto nomem;
        l = n;
    }
    p->hdrs = l;
    return 0;
nomem:
    curl_slist_free_all(l);
    return -ENOMEM;
}

static int setup_easy(struct mars_http *h, struct mars_http_priv *p, struct mars_http_req *r)
{
    CURL *e = p->easy;
    const struct mars_http_tls *tls = r->tls;
    const char *url = r->url;
    int rc;
    if (tls && tls->server_name && (rc = apply_server_name(p, r->url, tls->server_name)))
        return rc;
    if (p->url)
        url = p->url;
    if ((rc = setup_headers(p, r)))
        return rc;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)p);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     r->connect_timeout_ns > 0 ? (long)(r->connect_timeout_ns / 1000000)
                                               : DEFAULT_CONNECT_TIMEOUT_MS);
    if (r->timeout_ns > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(r->timeout_ns / 1000000));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     r->http2_prior_knowledge ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                                              : (long)CURL_HTTP_VERSION_2TLS);
    if (p->connect_to)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, p->connect_to);
    if (r->fresh_connection) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (r->body || r->body_iov) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        if (r->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        } else {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
            curl_easy_setopt(e, CURLOPT_READDATA, p);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_upload_seek);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, p);
        }
        if (r->body_len > UPLOAD_BUFFER_MIN)
            curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_SIZE);
    } else if (r->method && strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    if (r->method && strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (tls) {
        if (tls->ca_file)
            curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file);
        if (tls->cert_file)
            curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert_file);
        if (tls->key_file)
            curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key_file);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls->verify ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls->verify ? 2L : 0L);
    }
    return 0;
}

/* libcurl for h: loaded and its multi handle made at the first request that needs it
 * (curl_on_demand) or at create. 0, -ENOPKG (libcurl cannot be loaded: logged once) or
 * -ENOMEM. */
static int curl_start(struct mars_http *h)
{
    if (h->multi)
        return 0;
    pthread_once(&global_once, global_init);
    if (global_err[0])
        return -ENOPKG;
    if (!(h->multi = curl_multi_init()))
        return -ENOMEM;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_host_connections);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return 0;
}

int mars_http_submit(struct mars_http *h, struct mars_http_req *r)
{
    if (!r->url || !r->done)
        return -EINVAL;
    if (h->shutting_down)
        return -ESHUTDOWN;
    bool direct = mars_http_direct_ok(r);
    int rc = direct ? 0 : curl_start(h);
    if (rc)
        return rc;
    struct mars_http_priv *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->h = h;
    p->req = r;
    p->max = r->max_body ? r->max_body : DEFAULT_MAX_BODY;
    p->retry_after_ns = -1;
    if (direct) {
        rc = mars_http_direct_start(h, p);
    } else {
        p->easy = curl_easy_init();
        rc = p->easy ? setup_easy(h, p, r) : -ENOMEM;
        if (rc == 0 && curl_multi_add_handle(h->multi, p->easy) != CURLM_OK)
            rc = -ENOMEM;
    }
    if (rc) {
        priv_destroy(p);
        return rc;
    }
    r->priv = p;
    p->next = h->active_list;
    if (h->active_list)
        h->active_list->prev = p;
    h->active_list = p;
    h->active++;
    return 0;
}

void mars_http_cancel(struct mars_http *h, struct mars_http_req *r)
{
    struct mars_http_priv *p = r->priv;
    if (!p || p->cancelled)
        return;
    p->cancelled = true;
    if (p->fail_soon) { /* queued for the kick already */
        active_unlink(h, p);
        return;
    }
    if (p->easy)
        curl_multi_remove_handle(h->multi, p->easy);
    else
        mars_http_direct_cancel(h, p);
    active_unlink(h, p);
    defer_done(h, p);
}

void mars_http_shutdown(struct mars_http *h)
{
    while (h->active_list)
        mars_http_cancel(h, h->active_list->req);
    mars_http_direct_shutdown(h);
    h->shutting_down = true;
    for (struct http_sock *s = h->socks; s; s = s->next)
        if (s->armed)
            mars_ev_cancel(h->loop, &s->op);
    if (h->timer_armed)
        mars_ev_cancel(h->loop, &h->timer);
}

unsigned mars_http_active(const struct mars_http *h)
{
    return h->active;
}

bool mars_http_url_direct(const char *url)
{
    const struct mars_http_req r = {.url = url, .direct = true};
    return mars_http_direct_ok(&r);
}

struct mars_http *mars_http_create(struct mars_ev_loop *loop, const struct mars_http_opts *opts)
{
    struct mars_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->loop = loop;
    h->timer_due = -1;
    h->max_host_connections = opts && opts->max_host_connections ? opts->max_host_connections : 8;
    const char *ua = opts && opts->user_agent ? opts->user_agent : "mars/" MARS_VERSION;
    h->user_agent = strdup(ua);
    int rc = h->user_agent ? 0 : -ENOMEM;
    if (rc == 0 && !(opts && opts->curl_on_demand))
        rc = curl_start(h);
    if (rc) {
        mars_http_destroy(h);
        errno = -rc;
        return NULL;
    }
    return h;
}

void mars_http_destroy(struct mars_http *h)
{
    if (!h)
        return;
    /* cleanup closes cached connections: curl's REMOVE callbacks free the socks */
    if (h->multi)
        curl_multi_cleanup(h->multi);
    while (h->socks)
        sock_destroy(h->socks);
    mars_http_direct_reap(h, true);
    free(h->user_agent);
    free(h);
}
