/*
 * test_http_client.c - core/http_client.c (libcurl multi on the ev loop) against a small HTTP/1.1
 * server running in a thread of this test, once per ev backend (MARS_IO_BACKEND).
 *
 * The server speaks keep-alive HTTP/1.1 with Content-Length bodies and picks its answer by
 * path: /ok, /big (256 KiB), /echo (answers with the number of body bytes it read and their
 * FNV-1a hash),
 * /429 (Retry-After: 7), /hang (reads, never answers); and for the direct HTTP/1.1 path
 * (core/http_direct.c) answers libcurl reads for us: /chunked (chunks with an extension and
 * a trailer, written a few bytes at a time), /eof (HTTP/1.0, no length: the close ends the
 * body), /continue (a 100 first), /close (answers, then closes without saying so),
 * /garbage (not HTTP), /auth (answers with the request's Authorization header), /host
 * (answers with its Host header). It counts accepted connections, so connection reuse is
 * observable. The same server also listens with TLS (OpenSSL, blocking, certificates from
 * tests/support/gen_certs.sh). Every test runs through libcurl, direct over http:// and
 * direct over https://; each runs its loop only until a condition holds, with a deadline,
 * and leaves no op in flight.
 *
 * h2c by prior knowledge, direct (core/http2_direct.c), against nghttpd (Debian's
 * nghttp2-server, a real HTTP/2 peer serving a temporary folder, echoing uploads, adding a
 * trailer to every answer with a body) reached through a relay thread that counts
 * connections, so multiplexing is observable; and two raw peers of our own: one that opens
 * the session and then never answers (deadlines), one that answers every connection with a
 * GOAWAY that processed nothing (the retry on a new connection).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend.h"
#include "core/ev.h"
#include "core/http_client.h"

#define MS          1000000LL
#define DEADLINE_NS (10000 * MS)
#define BIG_LEN     (256 * 1024)

static struct mars_http *g_http;
static bool g_direct; /* requests go by core/http_direct.c */
static bool g_https;  /* ... to the TLS listener */
static int g_port, g_tls_port;
static int g_listen = -1, g_tls_listen = -1;
static SSL_CTX *g_server_ctx;
static char g_certs[256];
static struct mars_http_tls g_tls; /* verifies with the test CA */
static atomic_int g_conns;
static atomic_long g_echo_bytes;

/* ---- server ---- */

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* A server connection: plain, or TLS when ssl is set. */
struct peer {
    int fd;
    SSL *ssl;
};

static ssize_t peer_read(struct peer *p, void *buf, size_t n)
{
    if (!p->ssl)
        return read(p->fd, buf, n);
    int r = SSL_read(p->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return r > 0 ? r : -1;
}

static ssize_t peer_write(struct peer *p, const void *buf, size_t n)
{
    if (!p->ssl)
        return write(p->fd, buf, n);
    int r = SSL_write(p->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return r > 0 ? r : -1;
}

static int read_request(struct peer *fd, char *path, size_t pathlen, long *body_len, uint64_t *hash,
                        char *auth, size_t authlen, char *host, size_t hostlen)
{
    char buf[8192];
    size_t have = 0;
    char *end;
    for (;;) {
        ssize_t n = peer_read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")))
            break;
        if (have == sizeof(buf) - 1)
            return -1;
    }
    if (sscanf(buf, "%*s %255s", path) != 1 || pathlen < 256)
        return -1;
    long clen = 0;
    auth[0] = host[0] = '\0';
    for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "content-length:", 15) == 0)
            clen = strtol(l + 17, NULL, 10);
        if (strncasecmp(l + 2, "authorization: ", 15) == 0)
            snprintf(auth, authlen, "%.*s", (int)strcspn(l + 17, "\r"), l + 17);
        if (strncasecmp(l + 2, "host: ", 6) == 0)
            snprintf(host, hostlen, "%.*s", (int)strcspn(l + 8, "\r"), l + 8);
    }
    long got = (long)(have - (size_t)(end + 4 - buf));
    char sink[65536];
    *hash = fnv1a(FNV_INIT, end + 4, (size_t)got);
    while (got < clen) {
        ssize_t n = peer_read(fd, sink, sizeof(sink));
        if (n <= 0)
            return -1;
        *hash = fnv1a(*hash, sink, (size_t)n);
        got += n;
    }
    *body_len = clen;
    return 0;
}

static int write_all(struct peer *fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = peer_write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* write_all on a plain descriptor (the h2c relay and raw peers) */
static int fd_write_all(int fd, const char *p, size_t n)
{
    struct peer pe = {.fd = fd};
    return write_all(&pe, p, n);
}

static void *serve_conn(void *arg)
{
    struct peer *fd = arg;
    char path[256], head[256], auth[128], host[128];
    long body;
    uint64_t hash;
    static char big[BIG_LEN];
    memset(big, 'b', sizeof(big));
    if (fd->ssl && (SSL_set_fd(fd->ssl, fd->fd) != 1 || SSL_accept(fd->ssl) != 1))
        goto out; /* a client that refused our certificate, as some tests want */
    while (read_request(fd, path, sizeof(path), &body, &hash, auth, sizeof(auth), host,
                        sizeof(host)) == 0) {
        const char *status = "200 OK", *extra = "", *payload = "hello";
        char num[64];
        size_t plen = 5;
        if (strcmp(path, "/big") == 0) {
            payload = big;
            plen = BIG_LEN;
        } else if (strcmp(path, "/echo") == 0) {
            atomic_fetch_add(&g_echo_bytes, body);
            plen =
                (size_t)snprintf(num, sizeof(num), "%ld %016llx", body, (unsigned long long)hash);
            payload = num;
        } else if (strcmp(path, "/429") == 0) {
            status = "429 Too Many Requests";
            extra = "Retry-After: 7\r\n";
            payload = "slow down";
            plen = 9;
        } else if (strcmp(path, "/chunked") == 0) {
            static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n";
            size_t i = 0;
            for (; i + 3 < sizeof(r) - 1; i += 3)
                if (write_all(fd, r + i, 3))
                    break;
            if (write_all(fd, r + i, sizeof(r) - 1 - i))
                break;
            continue;
        } else if (strcmp(path, "/eof") == 0) {
            static const char r[] = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
            write_all(fd, r, sizeof(r) - 1);
            break;
        } else if (strcmp(path, "/continue") == 0) {
            static const char r[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                    "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone";
            if (write_all(fd, r, sizeof(r) - 1))
                break;
            continue;
        } else if (strcmp(path, "/close") == 0) {
            static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye";
            write_all(fd, r, sizeof(r) - 1);
            break;
        } else if (strcmp(path, "/garbage") == 0) {
            static const char r[] = "SPDY/9 what\r\n\r\n";
            write_all(fd, r, sizeof(r) - 1);
            break;
        } else if (strcmp(path, "/auth") == 0) {
            payload = auth;
            plen = strlen(auth);
        } else if (strcmp(path, "/host") == 0) {
            payload = host;
            plen = strlen(host);
        } else if (strcmp(path, "/hang") == 0) {
            char c;
            while (peer_read(fd, &c, 1) > 0) /* until the client gives up */
                ;
            break;
        }
        int hl = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n",
                          status, extra, plen);
        if (write_all(fd, head, (size_t)hl) || write_all(fd, payload, plen))
            break;
    }
out:
    if (fd->ssl)
        SSL_free(fd->ssl);
    close(fd->fd);
    free(fd);
    return NULL;
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            return NULL; /* listener shut down */
        atomic_fetch_add(&g_conns, 1);
        struct peer *p = calloc(1, sizeof(*p));
        p->fd = c;
        p->ssl = lfd == g_tls_listen ? SSL_new(g_server_ctx) : NULL;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, p);
        pthread_detach(t);
    }
}

static int listen_any(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    *port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
    pthread_detach(t);
    return fd;
}

static const char *cert(const char *name)
{
    static char path[4][320];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", g_certs, name);
    return p;
}

/* The plain and the TLS listener; 0 or -1. */
static int start_server(void)
{
    const char *src = getenv("MARS_SRC");
    char cmd[800];
    snprintf(g_certs, sizeof(g_certs), "%s/mars-httpc-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_certs))
        return -1;
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/support/gen_certs.sh' '%s'", src ? src : ".", g_certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make test certificates with: %s\n", cmd);
        return -1;
    }
    g_server_ctx = SSL_CTX_new(TLS_server_method());
    if (!g_server_ctx ||
        SSL_CTX_use_certificate_chain_file(g_server_ctx, cert("server.pem")) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_server_ctx, cert("server.key"), SSL_FILETYPE_PEM) != 1)
        return -1;
    static char ca[320];
    snprintf(ca, sizeof(ca), "%s", cert("ca.pem"));
    g_tls = (struct mars_http_tls){.ca_file = ca, .verify = true};
    g_listen = listen_any(&g_port);
    g_tls_listen = listen_any(&g_tls_port);
    return g_listen >= 0 && g_tls_listen >= 0 ? 0 : -1;
}

/* ---- client side ---- */

struct call {
    struct mars_http_req req;
    char url[128];
    int done, status, error;
    size_t body_len;
    char body[64];
    bool truncated;
    int64_t retry_after;
    char text[256];
};

static void on_done(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct call *c = MARS_CONTAINER_OF(r, struct call, req);
    c->done++;
    c->status = resp->status;
    c->error = resp->error;
    c->body_len = resp->body_len;
    c->truncated = resp->body_truncated;
    c->retry_after = resp->retry_after_ns;
    snprintf(c->text, sizeof(c->text), "%s", resp->error_text ? resp->error_text : "");
    snprintf(c->body, sizeof(c->body), "%.*s", (int)(resp->body_len < 63 ? resp->body_len : 63),
             resp->body);
}

static void call_init(struct call *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->url, sizeof(c->url), "%s://127.0.0.1:%d%s", g_https ? "https" : "http",
             g_https ? g_tls_port : g_port, path);
    c->req.url = c->url;
    c->req.done = on_done;
    c->req.timeout_ns = 5000 * MS;
    c->req.direct = g_direct;
    c->req.tls = g_https ? &g_tls : NULL;
}

static int setup(void **state)
{
    const struct mars_http_opts opts = {.curl_on_demand = g_direct};
    g_http = mars_test_loop_setup(state) == 0 ? mars_http_create(mars_test_loop, &opts) : NULL;
    return g_http ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    mars_http_shutdown(g_http);
    while (mars_ev_pending(mars_test_loop) > 0) {
        if (mars_ev_clock_ns() > deadline)
            return -1;
        mars_ev_run_once(mars_test_loop, 50 * MS);
    }
    if (mars_http_active(g_http) != 0)
        return -1;
    mars_http_destroy(g_http);
    mars_ev_loop_destroy(mars_test_loop);
    return 0;
}

/* ---- tests ---- */

static void test_get(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/ok");
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    assert_int_equal(c.done, 0); /* never inside submit */
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.error, 0);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "hello");
    assert_int_equal(c.retry_after, -1);
    assert_int_equal(mars_http_active(g_http), 0);
}

static void test_post_body_and_big_response(void **state)
{
    (void)state;
    size_t n = 3 * 1024 * 1024 + 17;
    char *body = malloc(n);
    memset(body, 'x', n);
    struct call post, big, small;
    call_init(&post, "/echo");
    post.req.body = body;
    post.req.body_len = n;
    call_init(&big, "/big");
    big.req.max_body = BIG_LEN;
    call_init(&small, "/big");
    small.req.max_body = 100;
    long before = atomic_load(&g_echo_bytes);
    assert_int_equal(mars_http_submit(g_http, &post.req), 0);
    assert_int_equal(mars_http_submit(g_http, &big.req), 0);
    assert_int_equal(mars_http_submit(g_http, &small.req), 0);
    mars_test_run_until(&post.done, 1, DEADLINE_NS);
    mars_test_run_until(&big.done, 1, DEADLINE_NS);
    mars_test_run_until(&small.done, 1, DEADLINE_NS);
    assert_int_equal(post.status, 200);
    assert_int_equal(strtol(post.body, NULL, 10), (long)n);
    assert_int_equal(atomic_load(&g_echo_bytes) - before, (long)n);
    assert_int_equal(big.body_len, BIG_LEN);
    assert_false(big.truncated);
    assert_int_equal(small.body_len, 100);
    assert_true(small.truncated);
    free(body);
}

/* A body in pieces (body_iov), larger than libcurl's upload buffer, arrives whole and in
 * order, with its Content-Length. */
static void test_post_iov_body(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 300 * 1024 + 5, 7, 0, 700 * 1024};
    struct iovec iov[5];
    size_t total = 0;
    uint64_t want = FNV_INIT;
    for (size_t i = 0; i < 5; i++) {
        char *p = malloc(sizes[i] + 1);
        for (size_t k = 0; k < sizes[i]; k++)
            p[k] = (char)('a' + (k * 7 + i) % 26);
        iov[i] = (struct iovec){.iov_base = p, .iov_len = sizes[i]};
        want = fnv1a(want, p, sizes[i]);
        total += sizes[i];
    }
    struct call post;
    call_init(&post, "/echo");
    post.req.body_iov = iov;
    post.req.body_iovcnt = 5;
    post.req.body_len = total;
    assert_int_equal(mars_http_submit(g_http, &post.req), 0);
    mars_test_run_until(&post.done, 1, DEADLINE_NS);
    assert_int_equal(post.status, 200);
    char expect[64];
    snprintf(expect, sizeof(expect), "%zu %016llx", total, (unsigned long long)want);
    assert_string_equal(post.body, expect);
    for (size_t i = 0; i < 5; i++)
        free(iov[i].iov_base);
}

static void test_retry_after(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/429");
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.status, 429);
    assert_int_equal(c.retry_after, 7 * 1000 * MS);
}

static void test_refused(void **state)
{
    (void)state;
    /* a port nobody listens on: bind one, note it, close it */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    struct call c;
    call_init(&c, "/ok");
    snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/ok", ntohs(a.sin_port));
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.error, -ECONNREFUSED);
    assert_int_equal(c.status, 0);
}

static void test_timeout(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/hang");
    c.req.timeout_ns = 300 * MS;
    int64_t t0 = mars_ev_clock_ns();
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.error, -ETIMEDOUT);
    assert_true(mars_ev_clock_ns() - t0 >= 250 * MS);
}

static void test_cancel(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/hang");
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    for (int i = 0; i < 5; i++) /* let it connect and send */
        mars_ev_run_once(mars_test_loop, 10 * MS);
    assert_int_equal(c.done, 0);
    mars_http_cancel(g_http, &c.req);
    assert_int_equal(c.done, 0); /* delivered from the loop, not inside cancel */
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.error, -ECANCELED);
    mars_http_cancel(g_http, &c.req); /* no longer in flight: no-op */
    assert_int_equal(c.done, 1);
}

static void test_keepalive_reuse(void **state)
{
    (void)state;
    int before = atomic_load(&g_conns);
    for (int i = 0; i < 20; i++) {
        struct call c;
        call_init(&c, "/ok");
        assert_int_equal(mars_http_submit(g_http, &c.req), 0);
        mars_test_run_until(&c.done, 1, DEADLINE_NS);
        assert_int_equal(c.status, 200);
    }
    assert_int_equal(atomic_load(&g_conns) - before, 1);
}

static void test_concurrent(void **state)
{
    (void)state;
    enum { N = 16 };
    struct call c[N];
    int total = 0;
    for (int i = 0; i < N; i++) {
        call_init(&c[i], i % 2 ? "/big" : "/ok");
        c[i].req.max_body = BIG_LEN;
        assert_int_equal(mars_http_submit(g_http, &c[i].req), 0);
    }
    assert_int_equal(mars_http_active(g_http), N);
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while (total < N) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 50 * MS);
        total = 0;
        for (int i = 0; i < N; i++)
            total += c[i].done;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].done, 1);
        assert_int_equal(c[i].status, 200);
        assert_int_equal(c[i].body_len, i % 2 ? (size_t)BIG_LEN : 5u);
    }
}

static void test_shutdown_in_flight(void **state)
{
    (void)state;
    struct call a, b;
    call_init(&a, "/hang");
    call_init(&b, "/hang");
    assert_int_equal(mars_http_submit(g_http, &a.req), 0);
    assert_int_equal(mars_http_submit(g_http, &b.req), 0);
    for (int i = 0; i < 5; i++)
        mars_ev_run_once(mars_test_loop, 10 * MS);
    mars_http_shutdown(g_http);
    assert_int_equal(mars_http_submit(g_http, &a.req), -ESHUTDOWN);
    mars_test_run_until(&a.done, 1, DEADLINE_NS);
    mars_test_run_until(&b.done, 1, DEADLINE_NS);
    assert_int_equal(a.error, -ECANCELED);
    assert_int_equal(b.error, -ECANCELED);
    assert_int_equal(mars_http_active(g_http), 0);
}

/* ---- answers libcurl reads for us: the direct path's own ---- */

/* Submits c and waits for its answer, which must be `status` with `body`. */
static void expect_answer(struct call *c, int status, const char *body)
{
    assert_int_equal(mars_http_submit(g_http, &c->req), 0);
    mars_test_run_until(&c->done, 1, DEADLINE_NS);
    assert_int_equal(c->error, 0);
    assert_int_equal(c->status, status);
    assert_string_equal(c->body, body);
}

static void test_chunked(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/chunked");
    expect_answer(&c, 200, "hello, world");
    /* the connection is kept after a chunked answer */
    int before = atomic_load(&g_conns);
    call_init(&c, "/ok");
    expect_answer(&c, 200, "hello");
    assert_int_equal(atomic_load(&g_conns) - before, 0);
}

static void test_eof_body_and_interim(void **state)
{
    (void)state;
    struct call e, k;
    call_init(&e, "/eof");
    expect_answer(&e, 200, "until the end");
    call_init(&k, "/continue");
    k.req.body = "data";
    k.req.body_len = 4;
    expect_answer(&k, 201, "done");
}

/* The peer closes a kept connection after answering, without a Connection: close: the next
 * request goes on a new connection (found closed, or sent once more after the failure). */
static void test_peer_closes_kept(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct call c;
        call_init(&c, "/close");
        expect_answer(&c, 200, "bye");
    }
}

static void test_not_http(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/garbage");
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_true(c.error < 0);
    assert_int_equal(c.status, 0);
}

static void test_basic_auth(void **state)
{
    (void)state;
    struct call c;
    call_init(&c, "/auth");
    c.req.user = "mars";
    c.req.password = "s3cret:x";
    expect_answer(&c, 200, "Basic bWFyczpzM2NyZXQ6eA=="); /* base64("mars:s3cret:x") */
}

/* ---- https:// direct (core/tls) ---- */

/* Submits c, which must fail with err (not inside submit) and a text holding `why`. */
static void expect_failure(struct call *c, int err, const char *why)
{
    assert_int_equal(mars_http_submit(g_http, &c->req), 0);
    assert_int_equal(c->done, 0);
    mars_test_run_until(&c->done, 1, DEADLINE_NS);
    assert_int_equal(c->error, err);
    assert_non_null(strstr(c->text, why));
}

static void test_https_unknown_ca(void **state)
{
    (void)state;
    struct call c;
    struct mars_http_tls other = {.ca_file = cert("other-ca.pem"), .verify = true};
    call_init(&c, "/ok");
    c.req.tls = &other;
    expect_failure(&c, -EPROTO, "certificate verify failed");
}

static void test_https_bad_ca_file(void **state)
{
    (void)state;
    struct call c;
    struct mars_http_tls missing = {.ca_file = cert("no-such-ca.pem"), .verify = true};
    call_init(&c, "/ok");
    c.req.tls = &missing;
    expect_failure(&c, -EPROTO, "no-such-ca.pem");
    /* cancelled before its failure is delivered: one done(), cancelled */
    call_init(&c, "/ok");
    c.req.tls = &missing;
    assert_int_equal(mars_http_submit(g_http, &c.req), 0);
    mars_http_cancel(g_http, &c.req);
    mars_test_run_until(&c.done, 1, DEADLINE_NS);
    assert_int_equal(c.error, -ECANCELED);
    assert_int_equal(mars_http_active(g_http), 0);
}

/* server_name: verified against the certificate instead of the URL's host, and sent as the
 * Host; a name the certificate lacks is refused. */
static void test_https_server_name(void **state)
{
    (void)state;
    struct call c;
    struct mars_http_tls named = g_tls;
    named.server_name = "localhost";
    call_init(&c, "/host");
    c.req.tls = &named;
    char want[64];
    snprintf(want, sizeof(want), "localhost:%d", g_tls_port);
    expect_answer(&c, 200, want);
    named.server_name = "elsewhere.example";
    call_init(&c, "/ok");
    c.req.tls = &named;
    expect_failure(&c, -EPROTO, "certificate verify failed");
}

/* Copies file `from` over `to` by rename, as a certificate rotation does. */
static void replace_file(const char *from, const char *to)
{
    char tmp[400], buf[8192];
    snprintf(tmp, sizeof(tmp), "%s.new", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    assert_non_null(in);
    assert_non_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(rename(tmp, to), 0);
}

/* Runs the loop for a little over the client's TLS file recheck interval (1 s). */
static void pass_recheck(void)
{
    int64_t until = mars_ev_clock_ns() + 1200 * MS;
    while (mars_ev_clock_ns() < until)
        mars_ev_run_once(mars_test_loop, 50 * MS);
}

/* A ca_file rotated in place is read again for the next connections: swapped for an
 * unrelated CA the requests fail, swapped back they pass. */
static void test_https_ca_rotated(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof(path), "%s/rotating-ca.pem", g_certs);
    replace_file(cert("ca.pem"), path);
    struct mars_http_tls rot = {.ca_file = path, .verify = true};
    struct call c;
    call_init(&c, "/ok");
    c.req.tls = &rot;
    expect_answer(&c, 200, "hello");
    replace_file(cert("other-ca.pem"), path);
    pass_recheck();
    call_init(&c, "/ok");
    c.req.tls = &rot;
    expect_failure(&c, -EPROTO, "certificate verify failed");
    replace_file(cert("ca.pem"), path);
    pass_recheck();
    call_init(&c, "/ok");
    c.req.tls = &rot;
    expect_answer(&c, 200, "hello");
}

static void test_https_verify_off(void **state)
{
    (void)state;
    struct call c;
    struct mars_http_tls off = {.verify = false}; /* the system store lacks the test CA */
    call_init(&c, "/ok");
    c.req.tls = &off;
    expect_answer(&c, 200, "hello");
}

static void test_url_direct(void **state)
{
    (void)state;
    assert_true(mars_http_url_direct("http://127.0.0.1:9200"));
    assert_true(mars_http_url_direct("http://[::1]:8080/a?b=c#frag"));
    assert_true(mars_http_url_direct("HTTP://es.logging.svc/"));
    assert_true(mars_http_url_direct("https://es:9200"));
    assert_false(mars_http_url_direct("http://user:pw@es:9200"));
    assert_false(mars_http_url_direct("http://es:99999/"));
    assert_false(mars_http_url_direct("http://es:92a0/"));
    assert_false(mars_http_url_direct("http:///path"));
    assert_false(mars_http_url_direct("http://es/a b"));
}

/* Every request so far went direct: libcurl was never loaded (nor called: its table is
 * empty, so a stray call would have crashed). */
static void test_no_libcurl(void **state)
{
    (void)state;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    bool curl = false, any = false;
    while (fgets(line, sizeof(line), f)) {
        curl |= strstr(line, "libcurl") != NULL;
        any |= strstr(line, "libc.so") != NULL;
    }
    fclose(f);
    assert_true(any);
    assert_false(curl);
}

/* ---- h2c, direct: the peers ---- */

#define H2_BIG_LEN (4 * 1024 * 1024)

static char g_docroot[64];
static pid_t g_nghttpd = -1;
static int g_h2_port;     /* nghttpd's */
static int g_relay_port;  /* the counting relay in front of it */
static int g_hang_port;   /* opens the session, never answers */
static int g_goaway_port; /* GOAWAY, last stream 0, on every connection */
static int g_relay_listen = -1, g_hang_listen = -1, g_goaway_listen = -1;
static atomic_int g_relay_conns, g_hang_conns, g_goaway_conns;

static bool port_answers(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* nghttpd on a free port serving g_docroot; its pid, or -1 when it cannot start. */
static pid_t start_nghttpd(int *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        struct sockaddr_in a;
        int fd = mars_test_tcp_listener(&a, 1);
        close(fd); /* free now; nghttpd binds it next (another may win the race: retried) */
        *port = ntohs(a.sin_port);
        char num[16];
        snprintf(num, sizeof(num), "%d", *port);
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execlp("nghttpd", "nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", g_docroot, "-m", "4",
                   "--echo-upload", "--trailer", "x-sum: 12", num, (char *)NULL);
            _exit(127);
        }
        if (pid < 0)
            return -1;
        int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
        while (mars_ev_clock_ns() < deadline) {
            if (port_answers(*port))
                return pid;
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* exited: the port was taken, or no nghttpd */
            nanosleep(&(struct timespec){.tv_nsec = 10 * MS}, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

static void stop_nghttpd(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* A blocking listener on 127.0.0.1 and the port it got. */
static int plain_listener(int *port)
{
    struct sockaddr_in a;
    int fd = mars_test_tcp_listener(&a, 64);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Copies bytes both ways between a client and nghttpd until either side closes. */
static void *relay_conn(void *arg)
{
    int a = (int)(intptr_t)arg;
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)g_h2_port)};
    int b = socket(AF_INET, SOCK_STREAM, 0);
    if (b >= 0 && connect(b, (struct sockaddr *)&to, sizeof(to)) == 0) {
        struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        char buf[65536];
        bool open = true;
        while (open && poll(p, 2, -1) > 0)
            for (int i = 0; i < 2 && open; i++)
                if (p[i].revents) {
                    ssize_t n = read(p[i].fd, buf, sizeof(buf));
                    open = n > 0 && fd_write_all(p[1 - i].fd, buf, (size_t)n) == 0;
                }
    }
    if (b >= 0)
        close(b);
    close(a);
    return NULL;
}

/* A peer that opens the session (an empty SETTINGS) and reads until the client leaves. */
static void *hang_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static const char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    char buf[4096];
    if (fd_write_all(fd, settings, sizeof(settings)) == 0)
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    close(fd);
    return NULL;
}

/* A peer that, once the client has spoken, says GOAWAY with last stream 0: nothing
 * processed. */
static void *goaway_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static const char frames[] = {0, 0, 0, 4, 0, 0, 0, 0, 0,                          /* SETTINGS */
                                  0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* GOAWAY */
    char buf[4096];
    if (read(fd, buf, sizeof(buf)) > 0 && fd_write_all(fd, frames, sizeof(frames)) == 0)
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    close(fd);
    return NULL;
}

struct raw_peer {
    int *listen;
    atomic_int *conns;
    void *(*serve)(void *);
};

static void *accept_loop(void *arg)
{
    const struct raw_peer *pe = arg;
    for (;;) {
        int c = accept(*pe->listen, NULL, NULL);
        if (c < 0)
            return NULL; /* listener shut down */
        atomic_fetch_add(pe->conns, 1);
        pthread_t t;
        pthread_create(&t, NULL, pe->serve, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

static void start_peer(struct raw_peer *pe, int *port)
{
    *pe->listen = plain_listener(port);
    pthread_t t;
    pthread_create(&t, NULL, accept_loop, pe);
    pthread_detach(t);
}

static void write_file(const char *name, const char *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", g_docroot, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int h2_group_setup(void **state)
{
    static struct raw_peer relay = {&g_relay_listen, &g_relay_conns, relay_conn};
    static struct raw_peer hang = {&g_hang_listen, &g_hang_conns, hang_conn};
    static struct raw_peer goaway = {&g_goaway_listen, &g_goaway_conns, goaway_conn};
    (void)state;
    snprintf(g_docroot, sizeof(g_docroot), "/tmp/mars-h2c-XXXXXX");
    if (!mkdtemp(g_docroot))
        return -1;
    write_file("hello", "hello h2", 8);
    char *big = malloc(H2_BIG_LEN);
    for (size_t i = 0; i < H2_BIG_LEN; i++)
        big[i] = (char)('a' + i % 23);
    write_file("big", big, H2_BIG_LEN);
    free(big);
    g_nghttpd = start_nghttpd(&g_h2_port);
    if (g_nghttpd < 0) {
        fprintf(stderr, "cannot start nghttpd (scripts/deps.sh test installs nghttp2-server)\n");
        return -1;
    }
    start_peer(&relay, &g_relay_port);
    start_peer(&hang, &g_hang_port);
    start_peer(&goaway, &g_goaway_port);
    return 0;
}

static int h2_group_teardown(void **state)
{
    char cmd[128];
    (void)state;
    stop_nghttpd(g_nghttpd);
    int *fds[] = {&g_relay_listen, &g_hang_listen, &g_goaway_listen};
    for (size_t i = 0; i < 3; i++) {
        shutdown(*fds[i], SHUT_RDWR);
        close(*fds[i]);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_docroot);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- h2c, direct: the tests ---- */

struct h2call {
    struct call c;
    size_t got;        /* body bytes streamed to on_data */
    uint64_t hash;     /* and their FNV-1a */
    bool cancel_first; /* mars_http_cancel itself from its first piece */
    bool abort_first;  /* answer false to its first piece */
    char hdrs[1024];   /* header and trailer lines, as delivered */
    size_t hdrs_len;
};

static struct h2call *h2call_of(struct mars_http_req *r)
{
    return MARS_CONTAINER_OF(MARS_CONTAINER_OF(r, struct call, req), struct h2call, c);
}

static bool h2_on_data(struct mars_http_req *r, const char *p, size_t n)
{
    struct h2call *c = h2call_of(r);
    bool first = c->got == 0;
    c->got += n;
    c->hash = fnv1a(c->hash, p, n);
    if (first && c->cancel_first)
        mars_http_cancel(g_http, r);
    return !(first && c->abort_first);
}

static void h2_on_header(struct mars_http_req *r, const char *line, size_t n)
{
    struct h2call *c = h2call_of(r);
    if (c->hdrs_len + n < sizeof(c->hdrs)) {
        memcpy(c->hdrs + c->hdrs_len, line, n);
        c->hdrs_len += n;
        c->hdrs[c->hdrs_len] = '\0';
    }
}

/* A direct h2c request for path on port. */
static void h2call_init(struct h2call *c, int port, const char *path)
{
    memset(c, 0, sizeof(*c));
    call_init(&c->c, path);
    snprintf(c->c.url, sizeof(c->c.url), "http://127.0.0.1:%d%s", port, path);
    c->c.req.direct = true;
    c->c.req.http2_prior_knowledge = true;
    c->c.req.on_header = h2_on_header;
    c->hash = FNV_INIT;
}

static void h2_run_all(struct h2call *c, int n)
{
    for (int i = 0; i < n; i++)
        mars_test_run_until(&c[i].c.done, 1, DEADLINE_NS);
}

/* A GET: the answer, its headers and nghttpd's trailer. */
static void test_h2_get(void **state)
{
    (void)state;
    struct h2call c;
    h2call_init(&c, g_relay_port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
    assert_int_equal(c.c.done, 0); /* never inside submit */
    mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
    assert_int_equal(c.c.error, 0);
    assert_int_equal(c.c.status, 200);
    assert_string_equal(c.c.body, "hello h2");
    assert_non_null(strstr(c.hdrs, "content-length: 8\r\n"));
    assert_non_null(strstr(c.hdrs, "x-sum: 12\r\n")); /* the trailer, after the body */
    assert_null(strstr(c.hdrs, ":status"));
    h2call_init(&c, g_relay_port, "/nothing-here");
    assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
    mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
    assert_int_equal(c.c.error, 0);
    assert_int_equal(c.c.status, 404);
}

/* Requests in flight together share one connection as streams, more of them than the
 * peer's 4 concurrent streams (the rest wait their turn), and the connection is kept. */
static void test_h2_multiplexed(void **state)
{
    (void)state;
    enum { N = 12 };
    static struct h2call c[N];
    int before = atomic_load(&g_relay_conns);
    for (int i = 0; i < N; i++) {
        h2call_init(&c[i], g_relay_port, i % 3 ? "/hello" : "/big");
        c[i].c.req.on_data = i % 3 ? NULL : h2_on_data;
        assert_int_equal(mars_http_submit(g_http, &c[i].c.req), 0);
    }
    assert_int_equal(mars_http_active(g_http), N);
    h2_run_all(c, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].c.error, 0);
        assert_int_equal(c[i].c.status, 200);
        if (i % 3)
            assert_string_equal(c[i].c.body, "hello h2");
        else
            assert_int_equal(c[i].got, H2_BIG_LEN);
    }
    h2call_init(&c[0], g_relay_port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &c[0].c.req), 0);
    mars_test_run_until(&c[0].c.done, 1, DEADLINE_NS);
    assert_int_equal(c[0].c.status, 200);
    assert_int_equal(atomic_load(&g_relay_conns) - before, 1);
}

/* A body in pieces goes up as DATA with its content-length; nghttpd echoes it back. */
static void test_h2_post_iov(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 300 * 1024 + 5, 0, 7, 900 * 1024};
    struct iovec iov[5];
    size_t total = 0;
    uint64_t want = FNV_INIT;
    for (size_t i = 0; i < 5; i++) {
        char *p = malloc(sizes[i] + 1);
        for (size_t k = 0; k < sizes[i]; k++)
            p[k] = (char)('a' + (k * 7 + i) % 26);
        iov[i] = (struct iovec){.iov_base = p, .iov_len = sizes[i]};
        want = fnv1a(want, p, sizes[i]);
        total += sizes[i];
    }
    struct h2call c;
    h2call_init(&c, g_relay_port, "/echo");
    c.c.req.method = "POST";
    c.c.req.body_iov = iov;
    c.c.req.body_iovcnt = 5;
    c.c.req.body_len = total;
    c.c.req.on_data = h2_on_data;
    assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
    mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
    assert_int_equal(c.c.error, 0);
    assert_int_equal(c.c.status, 200);
    assert_int_equal(c.got, total);
    assert_true(c.hash == want);
    for (size_t i = 0; i < 5; i++)
        free(iov[i].iov_base);
}

/* One stream cancelled (from its own on_data) and one aborted (on_data says false) while a
 * third runs on: they end with -ECANCELED, the third completes, and the connection stays. */
static void test_h2_cancel_one(void **state)
{
    (void)state;
    static struct h2call c[4];
    int before = atomic_load(&g_relay_conns);
    for (int i = 0; i < 3; i++) {
        h2call_init(&c[i], g_relay_port, "/big");
        c[i].c.req.on_data = h2_on_data;
    }
    c[0].cancel_first = true;
    c[1].abort_first = true;
    for (int i = 0; i < 3; i++)
        assert_int_equal(mars_http_submit(g_http, &c[i].c.req), 0);
    h2_run_all(c, 3);
    assert_int_equal(c[0].c.error, -ECANCELED);
    assert_int_equal(c[1].c.error, -ECANCELED);
    assert_int_equal(c[2].c.error, 0);
    assert_int_equal(c[2].got, H2_BIG_LEN);
    h2call_init(&c[3], g_relay_port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &c[3].c.req), 0);
    mars_test_run_until(&c[3].c.done, 1, DEADLINE_NS);
    assert_int_equal(c[3].c.status, 200);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i].c.done, 1);
    assert_int_equal(atomic_load(&g_relay_conns) - before, 1);
}

/* fresh_connection: a connection for that request only. */
static void test_h2_fresh(void **state)
{
    (void)state;
    int before = atomic_load(&g_relay_conns);
    for (int i = 0; i < 2; i++) {
        struct h2call c;
        h2call_init(&c, g_relay_port, "/hello");
        c.c.req.fresh_connection = true;
        assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
        mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
        assert_int_equal(c.c.status, 200);
    }
    assert_int_equal(atomic_load(&g_relay_conns) - before, 2);
}

/* A peer that never answers: each request's deadline resets just its stream; the session
 * stays for the next. */
static void test_h2_deadline(void **state)
{
    (void)state;
    int before = atomic_load(&g_hang_conns);
    for (int i = 0; i < 2; i++) {
        struct h2call c;
        h2call_init(&c, g_hang_port, "/never");
        c.c.req.timeout_ns = 300 * MS;
        int64_t t0 = mars_ev_clock_ns();
        assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
        mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
        assert_int_equal(c.c.error, -ETIMEDOUT);
        assert_true(mars_ev_clock_ns() - t0 >= 250 * MS);
    }
    assert_int_equal(atomic_load(&g_hang_conns) - before, 1);
}

/* GOAWAY with last stream 0: the stream was not processed and goes once more, on a new
 * connection; the second refusal fails it. */
static void test_h2_goaway_retry(void **state)
{
    (void)state;
    int before = atomic_load(&g_goaway_conns);
    struct h2call c;
    h2call_init(&c, g_goaway_port, "/x");
    assert_int_equal(mars_http_submit(g_http, &c.c.req), 0);
    mars_test_run_until(&c.c.done, 1, DEADLINE_NS);
    assert_int_equal(c.c.error, -ECONNRESET);
    assert_int_equal(c.c.status, 0);
    assert_int_equal(atomic_load(&g_goaway_conns) - before, 2);
}

/* The peer dies: a request on its kept session (which we may not have seen close yet)
 * fails, sent once more on a new connection that is refused; nothing waits for ever. */
static void test_h2_peer_gone(void **state)
{
    (void)state;
    int port;
    pid_t pid = start_nghttpd(&port);
    assert_true(pid > 0);
    struct h2call a, b, d;
    h2call_init(&a, port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &a.c.req), 0);
    mars_test_run_until(&a.c.done, 1, DEADLINE_NS);
    assert_int_equal(a.c.status, 200);
    stop_nghttpd(pid);
    h2call_init(&b, port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &b.c.req), 0);
    mars_test_run_until(&b.c.done, 1, DEADLINE_NS);
    if (b.c.error != -ECONNRESET && b.c.error != -ECONNREFUSED)
        fail_msg("error %d (%s)", b.c.error, strerror(-b.c.error));
    h2call_init(&d, port, "/hello");
    assert_int_equal(mars_http_submit(g_http, &d.c.req), 0);
    mars_test_run_until(&d.c.done, 1, DEADLINE_NS);
    assert_int_equal(d.c.error, -ECONNREFUSED);
    assert_int_equal(d.c.status, 0);
}

int main(void)
{
    mars_test_backend("http client");
    signal(SIGPIPE, SIG_IGN); /* the server's write to a client that went away fails quietly */
    if (start_server())
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get),           T(test_post_body_and_big_response),
        T(test_post_iov_body), T(test_retry_after),
        T(test_refused),       T(test_timeout),
        T(test_cancel),        T(test_keepalive_reuse),
        T(test_concurrent),    T(test_shutdown_in_flight),
    };
    const struct CMUnitTest direct_only[] = {
        T(test_chunked),  T(test_eof_body_and_interim), T(test_peer_closes_kept),
        T(test_not_http), T(test_basic_auth),           T(test_url_direct),
    };
    const struct CMUnitTest https_only[] = {
        T(test_https_unknown_ca), T(test_https_bad_ca_file), T(test_https_server_name),
        T(test_https_verify_off), T(test_https_ca_rotated),  T(test_chunked),
    };
    const struct CMUnitTest h2c[] = {
        T(test_h2_get),          T(test_h2_multiplexed), T(test_h2_post_iov),
        T(test_h2_cancel_one),   T(test_h2_fresh),       T(test_h2_deadline),
        T(test_h2_goaway_retry), T(test_h2_peer_gone),   T(test_no_libcurl),
    };
    /* direct first: those clients never load libcurl (test_no_libcurl checks) */
    g_direct = true;
    int rc = cmocka_run_group_tests_name("direct", tests, NULL, NULL);
    rc += cmocka_run_group_tests_name("direct only", direct_only, NULL, NULL);
    g_https = true;
    rc += cmocka_run_group_tests_name("direct https", tests, NULL, NULL);
    rc += cmocka_run_group_tests_name("direct https only", https_only, NULL, NULL);
    g_https = false;
    rc += cmocka_run_group_tests_name("h2c direct", h2c, h2_group_setup, h2_group_teardown);
    g_direct = false;
    rc += cmocka_run_group_tests_name("libcurl", tests, NULL, NULL);
    shutdown(g_listen, SHUT_RDWR);
    close(g_listen);
    shutdown(g_tls_listen, SHUT_RDWR);
    close(g_tls_listen);
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_certs);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
