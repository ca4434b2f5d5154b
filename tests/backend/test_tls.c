/*
 * test_tls.c - core/tls.h on one ev backend (MARS_IO_BACKEND, default libevent): a client
 * and a server session talk over a socketpair on one loop.
 *
 * Certificates come from tests/support/gen_certs.sh (openssl CLI) in a temp dir made once
 * per run. Cases: handshake with verification by name and by IP, a large transfer in both
 * directions at once (many small and some large iovecs, byte-exact), verification failures
 * (unknown CA, wrong name: -EKEYREJECTED with a clear reason on the client, the alert's
 * reason on the server), mutual TLS (required and given / missing), peer close seen by a
 * pending read, cancel, and ctx errors. Every test leaves the loop with no op pending.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "backend.h"
#include "core/ev.h"
#include "core/tls.h"

#define DEADLINE_NS 10000000000LL

static char g_dir[256];
static char g_path[8][320];

static const char *cert(const char *name)
{
    static int next;
    char *p = g_path[next++ % 8];
    snprintf(p, sizeof(g_path[0]), "%s/%s", g_dir, name);
    return p;
}

/* One side of a connection and what its callbacks saw. */
struct side {
    struct mars_tls *t;
    int fd;
    int hs, hs_calls;
    int wr, wr_calls;
    int rd, rd_calls;
    char *in; /* everything read */
    size_t in_len, in_cap;
    bool read_all; /* keep reading until 0 or error */
};

static void on_hs(struct mars_tls *t, int res)
{
    struct side *s = mars_tls_data(t);
    s->hs = res;
    s->hs_calls++;
}

static void on_wr(struct mars_tls *t, int res)
{
    struct side *s = mars_tls_data(t);
    s->wr = res;
    s->wr_calls++;
}

static void on_rd(struct mars_tls *t, int res)
{
    struct side *s = mars_tls_data(t);
    s->rd = res;
    s->rd_calls++;
    if (res > 0) {
        s->in_len += (size_t)res;
        if (s->read_all && s->in_len < s->in_cap)
            assert_int_equal(mars_tls_read(t, s->in + s->in_len, s->in_cap - s->in_len, on_rd), 0);
    }
}

static void run_until(const int *a, int want_a, const int *b, int want_b)
{
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while ((a && *a < want_a) || (b && *b < want_b)) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 100000000);
    }
}

static void run_idle(struct side *c, struct side *s)
{
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;
    while ((c->t && mars_tls_busy(c->t)) || (s->t && mars_tls_busy(s->t))) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 100000000);
    }
}

static struct mars_tls_ctx *ctx_or_fail(const struct mars_tls_opts *o, enum mars_tls_role role)
{
    char err[256] = "";
    struct mars_tls_ctx *ctx = mars_tls_ctx_create(o, role, "test", err, sizeof(err));
    if (!ctx)
        fail_msg("ctx: %s", err);
    return ctx;
}

static struct mars_tls_ctx *server_ctx(const char *client_ca)
{
    struct mars_tls_opts o = {.verify = true,
                              .ca_file = client_ca,
                              .cert_file = cert("server.pem"),
                              .key_file = cert("server.key")};
    return ctx_or_fail(&o, MARS_TLS_SERVER);
}

static struct mars_tls_ctx *client_ctx(const char *ca, bool with_cert)
{
    struct mars_tls_opts o = {.verify = true, .ca_file = ca};
    if (with_cert) {
        o.cert_file = cert("client.pem");
        o.key_file = cert("client.key");
    }
    return ctx_or_fail(&o, MARS_TLS_CLIENT);
}

/* Connects c and s over a socketpair with sessions from the two ctxs and runs both
 * handshakes to their end. */
static void pair(struct side *c, struct side *s, struct mars_tls_ctx *cctx,
                 struct mars_tls_ctx *sctx, const char *name)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    *c = (struct side){.fd = sv[0]};
    *s = (struct side){.fd = sv[1]};
    c->t = mars_tls_create(cctx, mars_test_loop, c->fd, name, c);
    s->t = mars_tls_create(sctx, mars_test_loop, s->fd, NULL, s);
    assert_non_null(c->t);
    assert_non_null(s->t);
    assert_int_equal(mars_tls_handshake(c->t, on_hs), 0);
    assert_int_equal(mars_tls_handshake(s->t, on_hs), 0);
    assert_int_equal(c->hs_calls + s->hs_calls, 0); /* never inside the call */
    run_until(&c->hs_calls, 1, &s->hs_calls, 1);
}

static void unpair(struct side *c, struct side *s)
{
    mars_tls_cancel(c->t);
    mars_tls_cancel(s->t);
    run_idle(c, s);
    mars_tls_destroy(c->t);
    mars_tls_destroy(s->t);
    close(c->fd);
    close(s->fd);
    free(c->in);
    free(s->in);
    assert_int_equal(mars_ev_pending(mars_test_loop), 0);
}

static void test_handshake_and_echo(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(cert("ca.pem"), false);
    const char *names[] = {"localhost", "127.0.0.1"};
    for (int k = 0; k < 2; k++) {
        struct side c, s;
        pair(&c, &s, cctx, sctx, names[k]);
        assert_int_equal(c.hs, 0);
        assert_int_equal(s.hs, 0);
        assert_string_equal(mars_tls_version(c.t), "TLSv1.3");
        char buf[64] = "";
        assert_int_equal(mars_tls_read(s.t, buf, sizeof(buf), on_rd), 0);
        struct iovec iov[3] = {{"hel", 3}, {"", 0}, {"lo\n", 3}};
        assert_int_equal(mars_tls_write(c.t, iov, 3, on_wr), 0);
        assert_int_equal(mars_tls_write(c.t, iov, 3, on_wr), -EBUSY);
        run_until(&c.wr_calls, 1, &s.rd_calls, 1);
        assert_int_equal(c.wr, 0);
        assert_int_equal(s.rd, 6);
        assert_memory_equal(buf, "hello\n", 6);
        unpair(&c, &s);
    }
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

/* 8 MiB client -> server in iovecs of varied sizes, and 3 MiB server -> client at once. */
static void test_large_both_ways(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(cert("ca.pem"), false);
    struct side c, s;
    pair(&c, &s, cctx, sctx, "localhost");
    assert_int_equal(c.hs, 0);

    size_t up = 8u << 20, down = 3u << 20;
    unsigned char *a = malloc(up), *b = malloc(down);
    uint32_t x = 12345;
    for (size_t i = 0; i < up; i++)
        a[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 24);
    for (size_t i = 0; i < down; i++)
        b[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 24);
    /* iovecs: runs of 1..200 byte pieces, then a 100 KiB piece, repeated */
    struct iovec *iov = malloc(200000 * sizeof(*iov));
    int n = 0;
    for (size_t off = 0; off < up; n++) {
        size_t len = (n % 500 == 499) ? 100000 : 1 + (size_t)(n * 7919 % 200);
        if (len > up - off)
            len = up - off;
        iov[n] = (struct iovec){a + off, len};
        off += len;
    }
    struct iovec biov = {b, down};
    s.in = malloc(up);
    s.in_cap = up;
    s.read_all = true;
    c.in = malloc(down);
    c.in_cap = down;
    c.read_all = true;
    assert_int_equal(mars_tls_read(s.t, s.in, s.in_cap, on_rd), 0);
    assert_int_equal(mars_tls_read(c.t, c.in, c.in_cap, on_rd), 0);
    assert_int_equal(mars_tls_write(c.t, iov, n, on_wr), 0);
    assert_int_equal(mars_tls_write(s.t, &biov, 1, on_wr), 0);
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS * 3;
    while (c.wr_calls < 1 || s.wr_calls < 1 || s.in_len < up || c.in_len < down) {
        assert_true(mars_ev_clock_ns() < deadline);
        mars_ev_run_once(mars_test_loop, 100000000);
    }
    assert_int_equal(c.wr, 0);
    assert_int_equal(s.wr, 0);
    assert_int_equal(s.in_len, up);
    assert_int_equal(c.in_len, down);
    assert_memory_equal(s.in, a, up);
    assert_memory_equal(c.in, b, down);
    unpair(&c, &s);
    free(a);
    free(b);
    free(iov);
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

static void test_unknown_ca_refused(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(cert("other-ca.pem"), false);
    struct side c, s;
    pair(&c, &s, cctx, sctx, "localhost");
    assert_int_equal(c.hs, -EKEYREJECTED);
    assert_non_null(strstr(mars_tls_error(c.t), "certificate verify failed: "));
    assert_true(s.hs < 0);
    printf("client: %s\nserver: %s\n", mars_tls_error(c.t), mars_tls_error(s.t));
    /* the session is over: later requests fail at once */
    char buf[4];
    assert_int_equal(mars_tls_read(c.t, buf, sizeof(buf), on_rd), -EKEYREJECTED);
    unpair(&c, &s);
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

static void test_wrong_name_refused(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(cert("ca.pem"), false);
    const char *names[] = {"logs.example.com", "10.1.2.3"};
    for (int k = 0; k < 2; k++) {
        struct side c, s;
        pair(&c, &s, cctx, sctx, names[k]);
        assert_int_equal(c.hs, -EKEYREJECTED);
        printf("client (%s): %s\n", names[k], mars_tls_error(c.t));
        assert_non_null(strstr(mars_tls_error(c.t), "mismatch"));
        unpair(&c, &s);
    }
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

static void test_verify_off_accepts_any(void **state)
{
    struct mars_tls_opts o = {.verify = false, .ca_file = cert("other-ca.pem")};
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = ctx_or_fail(&o, MARS_TLS_CLIENT);
    struct side c, s;
    pair(&c, &s, cctx, sctx, "wrong.example.com");
    assert_int_equal(c.hs, 0);
    assert_int_equal(s.hs, 0);
    unpair(&c, &s);
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

static void test_mutual_tls(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(cert("ca.pem"));
    struct mars_tls_ctx *with = client_ctx(cert("ca.pem"), true);
    struct mars_tls_ctx *without = client_ctx(cert("ca.pem"), false);
    struct side c, s;
    char buf[8];

    pair(&c, &s, with, sctx, "localhost");
    assert_int_equal(c.hs, 0);
    assert_int_equal(s.hs, 0);
    char cn[64];
    assert_int_equal(mars_tls_peer_cn(s.t, cn, sizeof(cn)), 0);
    assert_string_equal(cn, "mars-client");
    unpair(&c, &s);

    /* TLS 1.3: the client finishes first; the server's refusal reaches it on its next read */
    pair(&c, &s, without, sctx, "localhost");
    assert_int_equal(s.hs, -EKEYREJECTED);
    printf("server: %s\n", mars_tls_error(s.t));
    if (c.hs == 0) {
        assert_int_equal(mars_tls_read(c.t, buf, sizeof(buf), on_rd), 0);
        run_until(&c.rd_calls, 1, NULL, 0);
        assert_true(c.rd < 0);
        printf("client: %s\n", mars_tls_error(c.t));
        assert_non_null(strstr(mars_tls_error(c.t), "certificate required"));
    }
    unpair(&c, &s);
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(with);
    mars_tls_ctx_destroy(without);
}

/* A pending read sees the peer go away: 0 after close_notify-less TCP close. */
static void test_peer_close_and_cancel(void **state)
{
    struct mars_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(cert("ca.pem"), false);
    struct side c, s;
    char buf[16];
    pair(&c, &s, cctx, sctx, "localhost");
    assert_int_equal(mars_tls_read(c.t, buf, sizeof(buf), on_rd), 0);
    mars_tls_cancel(s.t);
    run_idle(&(struct side){0}, &s);
    shutdown(s.fd, SHUT_RDWR);
    run_until(&c.rd_calls, 1, NULL, 0);
    assert_int_equal(c.rd, 0);

    /* cancel: a pending read completes with -ECANCELED, and nothing stays in flight */
    assert_int_equal(mars_tls_read(c.t, buf, sizeof(buf), on_rd), 0);
    mars_tls_cancel(c.t);
    run_until(&c.rd_calls, 2, NULL, 0);
    assert_int_equal(c.rd, -ECANCELED);
    unpair(&c, &s);
    mars_tls_ctx_destroy(sctx);
    mars_tls_ctx_destroy(cctx);
}

static void test_ctx_errors(void **state)
{
    char err[256];
    struct mars_tls_opts o = {.verify = true, .ca_file = "/nonexistent/ca.pem"};
    assert_null(mars_tls_ctx_create(&o, MARS_TLS_CLIENT, "test", err, sizeof(err)));
    printf("%s\n", err);
    assert_non_null(strstr(err, "cannot load ca_file /nonexistent/ca.pem: No such file"));
    o = (struct mars_tls_opts){.verify = true};
    assert_null(mars_tls_ctx_create(&o, MARS_TLS_SERVER, "test", err, sizeof(err)));
    assert_non_null(strstr(err, "needs cert_file"));
    o = (struct mars_tls_opts){
        .verify = true, .cert_file = cert("server.pem"), .key_file = cert("client.key")};
    assert_null(mars_tls_ctx_create(&o, MARS_TLS_SERVER, "test", err, sizeof(err)));
    printf("%s\n", err);
    o = (struct mars_tls_opts){
        .verify = true, .cert_file = cert("ca.key"), .key_file = cert("client.key")};
    assert_null(mars_tls_ctx_create(&o, MARS_TLS_CLIENT, "test", err, sizeof(err)));
    printf("%s\n", err);
    assert_non_null(strstr(err, "cannot load cert_file"));
}

int main(void)
{
    const char *src = getenv("MARS_SRC");
    char cmd[800];

    mars_test_backend("tls");
    snprintf(g_dir, sizeof(g_dir), "%s/mars-tls-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir))
        return 1;
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/support/gen_certs.sh' '%s'", src ? src : ".", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make test certificates with: %s\n", cmd);
        return 1;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, mars_test_loop_setup, mars_test_loop_teardown)
    const struct CMUnitTest tests[] = {
        T(test_handshake_and_echo),     T(test_large_both_ways),
        T(test_unknown_ca_refused),     T(test_wrong_name_refused),
        T(test_verify_off_accepts_any), T(test_mutual_tls),
        T(test_peer_close_and_cancel),  T(test_ctx_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
