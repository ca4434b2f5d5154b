/*
 * test_conn.c - core/conn.h on one ev backend (MARS_IO_BACKEND, default libevent), against
 * listening sockets of the test itself on 127.0.0.1.
 *
 * Cases: open + send of a long iovec array (more than IOV_MAX entries) arrives byte for
 * byte, data from the peer reaches on_data, a peer close is reported by on_close and the
 * conn opens again; a refused connect and a handshake that never ends (timeout) fail with
 * their reasons; "localhost" goes through the resolver thread; close() during an open
 * cancels it and runs on_idle; TLS through conn to a mars_tls server session.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/conn.h"
#include "backend.h"
#include "core/ev.h"
#include "core/tls.h"

#define DEADLINE_NS 10000000000LL

static char g_dir[256];

struct rec {
    int open_res, open_calls;
    int send_res, send_calls;
    int close_res, close_calls;
    int idle_calls;
    char data[64];
    size_t data_len;
};

static void on_open(struct mars_conn *c, int err)
{
    struct rec *r = mars_conn_data(c);
    r->open_res = err;
    r->open_calls++;
}

static void on_sent(struct mars_conn *c, int err)
{
    struct rec *r = mars_conn_data(c);
    r->send_res = err;
    r->send_calls++;
}

static void on_close(struct mars_conn *c, int err)
{
    struct rec *r = mars_conn_data(c);
    r->close_res = err;
    r->close_calls++;
    assert_int_equal(mars_conn_state(c), MARS_CONN_IDLE);
}

static void on_idle(struct mars_conn *c, int err)
{
    struct rec *r = mars_conn_data(c);
    r->idle_calls++;
}

static void on_data(struct mars_conn *c, const char *p, size_t n)
{
    struct rec *r = mars_conn_data(c);
    if (n > sizeof(r->data) - r->data_len)
        n = sizeof(r->data) - r->data_len;
    memcpy(r->data + r->data_len, p, n);
    r->data_len += n;
}

static void run_idle(struct mars_conn *c)
{
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while (mars_conn_busy(c)) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 50000000);
    }
}

/* A listening (or only bound, listen == false) socket on 127.0.0.1; its port in *port. */
static int listener(bool listen_too, char *port, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listen_too)
        assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(port, len, "%u", ntohs(a.sin_port));
    return fd;
}

static struct mars_conn *make(const char *host, const char *port, struct mars_tls_ctx *tls,
                              int64_t timeout_ns, struct rec *r)
{
    struct mars_conn_opts o = {.host = host,
                               .port = port,
                               .connect_timeout_ns = timeout_ns,
                               .keepalive_ns = 30000000000LL,
                               .tls = tls,
                               .on_data = on_data,
                               .on_close = on_close,
                               .on_idle = on_idle,
                               .data = r};
    struct mars_conn *c = mars_conn_create(mars_test_loop, &o);
    assert_non_null(c);
    return c;
}

/* Reads exactly n bytes from a blocking fd while the loop keeps sending. */
static void read_all(int fd, char *buf, size_t n, struct rec *r, int send_calls)
{
    size_t got = 0;
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while (got < n) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t k = read(fd, buf + got, n - got);
            assert_true(k > 0);
            got += (size_t)k;
        }
    }
    mars_test_run_until(&r->send_calls, send_calls, DEADLINE_NS);
}

static void test_send_close_reopen(void **state)
{
    char port[16];
    int lfd = listener(true, port, sizeof(port));
    struct rec r = {0};
    struct mars_conn *c = make("127.0.0.1", port, NULL, 0, &r);
    assert_int_equal(mars_conn_open(c, on_open), 0);
    assert_int_equal(mars_conn_open(c, on_open), -EBUSY);
    assert_int_equal(r.open_calls, 0);
    mars_test_run_until(&r.open_calls, 1, DEADLINE_NS);
    assert_int_equal(r.open_res, 0);
    assert_int_equal(mars_conn_state(c), MARS_CONN_READY);
    int sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);

    /* 3000 pieces: more than IOV_MAX, so several sendmsg ops */
    enum { N = 3000 };
    static char src[N * 10 + 1], dst[N * 10]; /* +1: the last snprintf NUL */
    static struct iovec iov[N];
    for (int i = 0; i < N; i++) {
        snprintf(src + i * 10, 11, "%09d\n", i);
        iov[i] = (struct iovec){src + i * 10, 10};
    }
    assert_int_equal(mars_conn_send(c, iov, N, on_sent), 0);
    assert_int_equal(mars_conn_send(c, iov, N, on_sent), -EBUSY);
    read_all(sfd, dst, sizeof(dst), &r, 1);
    assert_int_equal(r.send_res, 0);
    assert_memory_equal(src, dst, sizeof(dst));

    /* the peer talks, then closes: on_data, then on_close */
    assert_int_equal(write(sfd, "hi", 2), 2);
    close(sfd);
    mars_test_run_until(&r.close_calls, 1, DEADLINE_NS);
    assert_int_equal(r.close_res, -ECONNRESET);
    assert_memory_equal(r.data, "hi", 2);
    assert_non_null(strstr(mars_conn_error(c), "closed by the peer"));
    assert_int_equal(mars_conn_send(c, iov, 1, on_sent), -ENOTCONN);

    /* and it opens again */
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_test_run_until(&r.open_calls, 2, DEADLINE_NS);
    assert_int_equal(r.open_res, 0);
    sfd = accept(lfd, NULL, NULL);
    mars_conn_close(c);
    run_idle(c);
    assert_int_equal(r.idle_calls, 1);
    assert_int_equal(r.close_calls, 1); /* a close we asked for is not a loss */
    assert_int_equal(mars_conn_state(c), MARS_CONN_IDLE);
    mars_conn_destroy(c);
    close(sfd);
    close(lfd);
}

static void test_refused_and_resolver(void **state)
{
    char port[16];
    int bfd = listener(false, port, sizeof(port)); /* bound, not listening: refused */
    struct rec r = {0};
    struct mars_conn *c = make("127.0.0.1", port, NULL, 0, &r);
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_test_run_until(&r.open_calls, 1, DEADLINE_NS);
    assert_int_equal(r.open_res, -ECONNREFUSED);
    printf("%s\n", mars_conn_error(c));
    assert_non_null(strstr(mars_conn_error(c), "Connection refused"));
    assert_int_equal(mars_conn_state(c), MARS_CONN_IDLE);
    run_idle(c);
    mars_conn_destroy(c);

    /* a name: resolved on a thread; ::1 may be refused first, then 127.0.0.1 answers */
    assert_int_equal(listen(bfd, 4), 0);
    c = make("localhost", port, NULL, 0, &r);
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_test_run_until(&r.open_calls, 2, DEADLINE_NS);
    assert_int_equal(r.open_res, 0);
    mars_conn_close(c);
    run_idle(c);
    mars_conn_destroy(c);

    /* a name that does not resolve (or a resolver that cannot answer within 2 s) */
    c = make("no-such-host.invalid", port, NULL, 2000000000LL, &r);
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_test_run_until(&r.open_calls, 3, DEADLINE_NS);
    printf("%s\n", mars_conn_error(c));
    assert_true(r.open_res == -EHOSTUNREACH || r.open_res == -ETIMEDOUT);
    assert_non_null(strstr(mars_conn_error(c), "resol"));
    run_idle(c);
    mars_conn_destroy(c);
    close(bfd);
}

static void test_close_during_open(void **state)
{
    char port[16];
    int lfd = listener(true, port, sizeof(port));
    struct rec r = {0};
    struct mars_conn *c = make("localhost", port, NULL, 0, &r); /* resolver thread in flight */
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_conn_close(c);
    mars_test_run_until(&r.idle_calls, 1, DEADLINE_NS);
    assert_int_equal(r.open_calls, 1);
    assert_int_equal(r.open_res, -ECANCELED);
    assert_false(mars_conn_busy(c));
    mars_conn_destroy(c);
    close(lfd);
}

/* The server end of the TLS case. */
struct srv {
    int hs_calls, hs_res, rd_calls, rd_res;
    char buf[64];
    size_t len;
};

static void srv_hs(struct mars_tls *t, int res)
{
    struct srv *s = mars_tls_data(t);
    s->hs_res = res;
    s->hs_calls++;
}

static void srv_rd(struct mars_tls *t, int res)
{
    struct srv *s = mars_tls_data(t);
    s->rd_res = res;
    s->rd_calls++;
    if (res > 0)
        s->len += (size_t)res;
}

static void test_tls(void **state)
{
    char port[16], err[256], path[4][320];
    const char *names[] = {"ca.pem", "server.pem", "server.key", ""};
    for (int i = 0; i < 3; i++)
        snprintf(path[i], sizeof(path[i]), "%s/%s", g_dir, names[i]);
    struct mars_tls_opts co = {.verify = true, .ca_file = path[0]};
    struct mars_tls_opts so = {.verify = true, .cert_file = path[1], .key_file = path[2]};
    struct mars_tls_ctx *cctx = mars_tls_ctx_create(&co, MARS_TLS_CLIENT, "t", err, sizeof(err));
    struct mars_tls_ctx *sctx = mars_tls_ctx_create(&so, MARS_TLS_SERVER, "t", err, sizeof(err));
    assert_non_null(cctx);
    assert_non_null(sctx);

    /* a peer that accepts but never speaks TLS: the handshake times out */
    int lfd = listener(true, port, sizeof(port));
    struct rec r = {0};
    struct mars_conn *c = make("127.0.0.1", port, cctx, 300000000LL, &r);
    assert_int_equal(mars_conn_open(c, on_open), 0);
    mars_test_run_until(&r.open_calls, 1, DEADLINE_NS);
    assert_int_equal(r.open_res, -ETIMEDOUT);
    printf("%s\n", mars_conn_error(c));
    assert_non_null(strstr(mars_conn_error(c), "TLS handshake to 127.0.0.1:"));
    run_idle(c);
    int dead = accept(lfd, NULL, NULL);
    close(dead);

    /* a real TLS server session on the accepted socket */
    assert_int_equal(mars_conn_open(c, on_open), 0);
    int sfd = -1;
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while (sfd < 0) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 10000000);
        sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    }
    struct srv sv = {0};
    struct mars_tls *st = mars_tls_create(sctx, mars_test_loop, sfd, NULL, &sv);
    assert_non_null(st);
    assert_int_equal(mars_tls_handshake(st, srv_hs), 0);
    mars_test_run_until(&r.open_calls, 2, DEADLINE_NS);
    assert_int_equal(r.open_res, 0);
    mars_test_run_until(&sv.hs_calls, 1, DEADLINE_NS);
    assert_int_equal(sv.hs_res, 0);
    assert_non_null(strstr(mars_conn_tls_info(c), "TLSv1.3"));
    struct iovec iov[2] = {{"over ", 5}, {"tls\n", 4}};
    assert_int_equal(mars_tls_read(st, sv.buf, sizeof(sv.buf), srv_rd), 0);
    assert_int_equal(mars_conn_send(c, iov, 2, on_sent), 0);
    mars_test_run_until(&r.send_calls, 1, DEADLINE_NS);
    assert_int_equal(r.send_res, 0);
    while (sv.len < 9) {
        int before = sv.rd_calls;
        mars_test_run_until(&sv.rd_calls, before + 1, DEADLINE_NS);
        assert_true(sv.rd_res > 0);
        if (sv.len < 9)
            assert_int_equal(mars_tls_read(st, sv.buf + sv.len, sizeof(sv.buf) - sv.len, srv_rd),
                             0);
    }
    assert_memory_equal(sv.buf, "over tls\n", 9);
    mars_tls_cancel(st);
    int64_t until = mars_ev_clock_ns() + DEADLINE_NS;
    while (mars_tls_busy(st)) {
        assert_true(mars_ev_clock_ns() < until);
        mars_ev_run_once(mars_test_loop, 10000000);
    }
    mars_tls_destroy(st);
    close(sfd);
    mars_conn_close(c);
    run_idle(c);
    mars_conn_destroy(c);
    close(lfd);
    mars_tls_ctx_destroy(cctx);
    mars_tls_ctx_destroy(sctx);
}

int main(void)
{
    const char *src = getenv("MARS_SRC");
    char cmd[800];

    mars_test_backend("conn");
    snprintf(g_dir, sizeof(g_dir), "%s/mars-conn-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir))
        return 1;
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/support/gen_certs.sh' '%s'", src ? src : ".", g_dir);
    if (system(cmd) != 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, mars_test_loop_setup, mars_test_loop_teardown)
    const struct CMUnitTest tests[] = {
        T(test_send_close_reopen),
        T(test_refused_and_resolver),
        T(test_close_during_open),
        T(test_tls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0 && rc == 0)
        rc = 1;
    return rc;
}
