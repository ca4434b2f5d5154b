/* Unit tests of the admin HTTP server (core/admin.c): routing, 404/405, malformed requests,
 * header and body limits, the connection cap (also after connections that failed), the
 * request deadline, unix
 * sockets, bind errors. Loopback only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "core/admin.h"
#include "core/log.h"
#include "httpc.h"

static void hello(struct mars_admin_req *r, void *arg)
{
    mars_admin_reply_json(r, 200, "{\"hello\":\"%s\",\"path\":\"%s\"}", (const char *)arg, r->path);
}

static void echo_len(struct mars_admin_req *r, void *arg)
{
    (void)arg;
    mars_admin_reply_json(r, 200, "{\"len\":%zu}", evbuffer_get_length(mars_admin_body(r)));
}

static struct mars_admin *start(const char *addr, unsigned max_conns)
{
    struct mars_admin *a = mars_admin_create(&(struct mars_admin_opts){.name = "t",
                                                                       .address = addr,
                                                                       .max_connections = max_conns,
                                                                       .max_headers_size = 2048,
                                                                       .max_body_size = 4096,
                                                                       .idle_timeout_s = 5});
    assert_non_null(a);
    assert_int_equal(mars_admin_route(a, "/hello", false, MARS_HTTP_GET, hello, "world"), 0);
    assert_int_equal(mars_admin_route(a, "/sub/", true, MARS_HTTP_GET, hello, "prefix"), 0);
    assert_int_equal(mars_admin_route(a, "/post", false, MARS_HTTP_POST, echo_len, NULL), 0);
    assert_int_equal(mars_admin_start(a), 0);
    return a;
}

static void test_routes(void **state)
{
    struct mars_admin *a = start("127.0.0.1:0", 8);
    const char *addr = mars_admin_address(a);
    struct httpc_resp r;
    assert_non_null(strstr(addr, "127.0.0.1:"));
    assert_int_equal(httpc_request(addr, "GET", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"hello\":\"world\""));
    assert_non_null(strstr(r.head, "Content-Type: application/json"));
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "GET", "/sub/x%2Fy", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"path\":\"/sub/x/y\"")); /* decoded */
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "HEAD", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "GET", "/nothing", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "DELETE", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD"));
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "GET", "/post", NULL, &r), 0);
    assert_int_equal(r.status, 405);
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(addr, "GET", "/sub/%00", NULL, &r), 0);
    assert_int_equal(r.status, 400); /* an encoded NUL */
    httpc_resp_fini(&r);
    mars_admin_destroy(a);
    (void)state;
}

static void test_malformed(void **state)
{
    struct mars_admin *a = start("127.0.0.1:0", 8);
    const char *addr = mars_admin_address(a);
    struct httpc_resp r;
    static const char *const garbage[] = {
        "\x01\x02\x03 binary junk\r\n\r\n",
        "GET\r\n\r\n",
        "BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nno colon here\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        assert_int_equal(httpc_raw(addr, garbage[i], strlen(garbage[i]), &r), 0);
        /* refused: a 4xx/5xx answer or the connection closed, never a 200 */
        if (r.status != 0 && (r.status < 400 || r.status > 505))
            fail_msg("request %zu got status %d", i, r.status);
        httpc_resp_fini(&r);
    }
    /* huge headers */
    size_t big = 64 * 1024;
    char *req = malloc(big + 128);
    int n = snprintf(req, 128, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 5);
    assert_int_equal(httpc_raw(addr, req, (size_t)n + big + 4, &r), 0);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    httpc_resp_fini(&r);
    /* a body over max_body_size */
    n = snprintf(req, 128, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", big);
    memset(req + n, 'b', big);
    assert_int_equal(httpc_raw(addr, req, (size_t)n + big, &r), 0);
    assert_true(r.status == 0 || r.status == 413);
    httpc_resp_fini(&r);
    /* a body under it is served */
    n = snprintf(req, 128,
                 "POST /post HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Length: 100\r\n\r\n");
    memset(req + n, 'c', 100);
    assert_int_equal(httpc_raw(addr, req, (size_t)n + 100, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"len\":100"));
    httpc_resp_fini(&r);
    free(req);
    /* still serving */
    assert_int_equal(httpc_request(addr, "GET", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_fini(&r);
    mars_admin_destroy(a);
    (void)state;
}

/* Polls GET /hello every *pause until it answers 200; fails the test after `tries`. */
static void expect_served_soon(const char *addr, const struct timespec *pause, int tries)
{
    struct httpc_resp r;
    for (int i = 0; i < tries; i++) {
        nanosleep(pause, NULL);
        assert_int_equal(httpc_request(addr, "GET", "/hello", NULL, &r), 0);
        int st = r.status;
        httpc_resp_fini(&r);
        if (st == 200)
            return;
    }
    fail_msg("GET /hello not answered with 200 after %d tries", tries);
}

/* True once the server closed fd (EOF or reset), waiting up to secs. */
static bool closed_within(int fd, int secs)
{
    struct timeval tv = {secs, 0};
    char c;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Over the cap, a new connection evicts the one that waited longest without a request,
 * so a request still gets through; the evicted one is closed, the others stay. */
static void test_connection_cap(void **state)
{
    struct mars_admin *a = start("127.0.0.1:0", 3);
    const char *addr = mars_admin_address(a);
    struct httpc_resp r;
    int held[3];
    struct timespec ts = {0, 100000000};
    for (int i = 0; i < 3; i++) {
        assert_true((held[i] = httpc_connect(addr)) >= 0);
        nanosleep(&ts, NULL); /* accepted in this order */
    }
    assert_int_equal(httpc_request(addr, "GET", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_fini(&r);
    assert_true(closed_within(held[0], 10));
    struct mars_admin_stats st;
    mars_admin_stats(a, &st);
    assert_true(st.evicted >= 1);
    /* the two younger ones are still served */
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (int i = 1; i < 3; i++) {
        char buf[64] = "";
        assert_int_equal(send(held[i], req, sizeof(req) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(req) - 1);
        struct timeval tv = {10, 0};
        setsockopt(held[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_true(recv(held[i], buf, sizeof(buf) - 1, MSG_WAITALL) > 12);
        assert_memory_equal(buf, "HTTP/1.1 200", 12);
    }
    for (int i = 0; i < 3; i++)
        close(held[i]);
    expect_served_soon(addr, &ts, 50);
    mars_admin_destroy(a);
    (void)state;
}

/* A client that trickles its request line a byte at a time is closed after
 * request_timeout, though every byte restarts evhttp's own timeout. */
static void test_request_timeout(void **state)
{
    struct mars_admin *a = mars_admin_create(&(struct mars_admin_opts){
        .name = "t", .address = "127.0.0.1:0", .idle_timeout_s = 5, .request_timeout_ms = 1000});
    assert_non_null(a);
    assert_int_equal(mars_admin_route(a, "/hello", false, MARS_HTTP_GET, hello, "world"), 0);
    assert_int_equal(mars_admin_start(a), 0);
    int fd = httpc_connect(mars_admin_address(a));
    assert_true(fd >= 0);
    struct timespec ts = {0, 200000000};
    bool closed = false;
    /* 40 bytes 200 ms apart: 8 s, far past the deadline */
    for (int i = 0; i < 40 && !closed; i++) {
        if (send(fd, i < 4 ? &"GET "[i] : "x", 1, MSG_NOSIGNAL) != 1)
            closed = true;
        nanosleep(&ts, NULL);
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed = true;
    }
    assert_true(closed);
    struct mars_admin_stats st;
    mars_admin_stats(a, &st);
    assert_int_equal(st.timed_out, 1);
    close(fd);
    mars_admin_destroy(a);
    (void)state;
}

/* Connections that end in an error (a request cut off by the client) must leave the count
 * as ones that end well do: after many of them, a cap of 2 still lets requests in. */
static void test_cap_after_failed_connections(void **state)
{
    struct mars_admin *a = start("127.0.0.1:0", 2);
    const char *addr = mars_admin_address(a);
    struct timespec ts = {0, 20000000};
    static const char full[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 60; i++) {
        int fd = httpc_connect(addr);
        assert_true(fd >= 0);
        if (i % 3 == 0) /* a partial request, then a close */
            assert_int_equal(send(fd, "GET /hel", 8, MSG_NOSIGNAL), 8);
        else if (i % 3 == 1) /* a whole request, closed without reading the answer */
            assert_int_equal(send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL),
                             (ssize_t)sizeof(full) - 1);
        /* (i % 3 == 2: nothing sent at all) */
        if (i % 2) { /* every other one ends with a reset instead of a FIN */
            struct linger l = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        nanosleep(&ts, NULL); /* the server reads what was sent before the close */
        close(fd);
    }
    expect_served_soon(addr, &ts, 100);
    mars_admin_destroy(a);
    (void)state;
}

static void test_unix_socket(void **state)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/mars-admin-test-%d.sock", (int)getpid());
    char addr[80];
    snprintf(addr, sizeof(addr), "unix:%s", path);
    struct mars_admin *a = start(addr, 8);
    struct httpc_resp r;
    assert_string_equal(mars_admin_address(a), path);
    assert_int_equal(httpc_request(path, "GET", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_fini(&r);
    mars_admin_destroy(a);
    struct stat st;
    assert_int_equal(stat(path, &st), -1); /* removed on destroy */
    /* a stale socket file is replaced */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    a = start(path, 8);
    assert_int_equal(httpc_request(path, "GET", "/hello", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_fini(&r);
    mars_admin_destroy(a);
    (void)state;
}

static void test_bind_errors(void **state)
{
    struct mars_admin *a = start("127.0.0.1:0", 8);
    /* the same port again: in use */
    assert_null(mars_admin_create(
        &(struct mars_admin_opts){.name = "t2", .address = mars_admin_address(a)}));
    assert_null(mars_admin_create(&(struct mars_admin_opts){.name = "t3", .address = "nonsense"}));
    assert_null(mars_admin_create(
        &(struct mars_admin_opts){.name = "t4", .address = "/nonexistent-dir/x.sock"}));
    mars_admin_destroy(a);
    mars_admin_destroy(NULL);
    (void)state;
}

int main(void)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),          cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_connection_cap),  cmocka_unit_test(test_cap_after_failed_connections),
        cmocka_unit_test(test_request_timeout), cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_bind_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
