/*
 * test_ev_features.c - the optional io features of core/ev.h, run against one backend:
 * registered read buffers (mars_ev_register_buffers), large sends (zero-copy on io_uring)
 * and multishot accept. Whatever the backend does natively, callers must see the same
 * results; the capability bits say what is native.
 *
 * The backend comes from env MARS_IO_BACKEND (default "libevent"); ctest also runs the
 * suite on io_uring with MARS_TEST_HOOKS=uring_fail=features (core/testhook.h), which hides
 * the kernel's optional features so the fallbacks (plain reads, copying sends, emulated
 * multishot) run here too.
 * Every test gets a fresh loop and must leave it with no op pending.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backend.h"
#include "core/ev.h"
#include "core/testhook.h"

#define MS          1000000LL
#define DEADLINE_NS (5000 * MS)

/* Does the live loop do the feature natively? io_uring does unless the test hook hides the
 * kernel's features; libevent never does. */
static bool native(void)
{
    const char *fail = mars_test_hook("uring_fail");

    return strcmp(mars_ev_loop_backend_name(mars_test_loop), "io_uring") == 0 &&
           (fail == NULL || strcmp(fail, "features") != 0);
}

struct rec {
    struct mars_ev_op op;
    int res;
    int calls;
};

static void rec_cb(struct mars_ev_op *op, int res)
{
    struct rec *r = MARS_CONTAINER_OF(op, struct rec, op);

    assert_false(op->more);
    r->res = res;
    r->calls++;
}

/* ---- registered read buffers ---------------------------------------------------------- */

#define UNIT      (64u << 10)
#define NUNITS    4
#define FILE_SIZE (150000u)

static unsigned char g_file[FILE_SIZE];

/* A temp file of FILE_SIZE pattern bytes. */
static int pattern_file(void)
{
    char path[] = "/tmp/mars-evf-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < FILE_SIZE; i++)
        g_file[i] = (unsigned char)(i * 7 + i / 251);
    assert_int_equal(write(fd, g_file, FILE_SIZE), (ssize_t)FILE_SIZE);
    return fd;
}

static unsigned char *map_region(void)
{
    void *m = mmap(NULL, (size_t)UNIT * NUNITS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    assert_true(m != MAP_FAILED);
    return m;
}

/* Reads [off, off + len) of the file into buf through the loop; checks result and bytes. */
static void read_check(int fd, unsigned char *buf, size_t len, uint64_t off)
{
    struct rec r = {0};
    size_t want = off >= FILE_SIZE ? 0 : (FILE_SIZE - off < len ? FILE_SIZE - off : len);

    memset(buf, 0xee, len);
    mars_ev_prep_read(&r.op, fd, buf, len, off, rec_cb, NULL);
    assert_int_equal(mars_ev_submit(mars_test_loop, &r.op), 0);
    mars_test_run_until(&r.calls, 1, DEADLINE_NS);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.res, (int)want);
    if (want > 0)
        assert_memory_equal(buf, g_file + off, want);
    if (want < len)
        assert_int_equal(buf[want], 0xee); /* nothing written past the result */
}

static void check_fixed_cap(int rc)
{
    if (native()) {
        assert_int_equal(rc, 0);
        assert_true(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_FIXED_BUFFERS);
    } else {
        assert_int_equal(rc, -EOPNOTSUPP);
        assert_false(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_FIXED_BUFFERS);
    }
}

static void test_fixed_reads(void **state)
{
    unsigned char *region = map_region(), *outside = malloc(UNIT);
    int fd = pattern_file();

    (void)state;
    assert_non_null(outside);
    assert_int_equal(mars_ev_register_buffers(mars_test_loop, NULL, UNIT, NUNITS), -EINVAL);
    check_fixed_cap(mars_ev_register_buffers(mars_test_loop, region, UNIT, NUNITS));
    if (native()) /* one region per loop */
        assert_int_equal(mars_ev_register_buffers(mars_test_loop, region, UNIT, NUNITS), -EBUSY);

    read_check(fd, region, UNIT, 0);                           /* unit 0, whole unit */
    read_check(fd, region + UNIT + 100, 4000, 12345);          /* unit 1, inside it */
    read_check(fd, region + 2 * UNIT, UNIT, 100000);           /* unit 2, short at EOF */
    read_check(fd, region + 3 * UNIT, UNIT, FILE_SIZE);        /* unit 3, at EOF: 0 */
    read_check(fd, region + 3 * UNIT, UNIT, FILE_SIZE + 4096); /* past EOF: 0 */
    read_check(fd, region + UNIT, UNIT, 777);                  /* unit 1 again, pinned */
    read_check(fd, region + UNIT / 2, UNIT, 5000);             /* spans units 0-1: plain */
    read_check(fd, outside, UNIT, 70000);                      /* outside the region */
    if (native())
        assert_true(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_FIXED_BUFFERS);

    /* Errors still come back as results. */
    {
        struct rec r = {0};

        mars_ev_prep_read(&r.op, 1000000, region, 16, 0, rec_cb, NULL);
        assert_int_equal(mars_ev_submit(mars_test_loop, &r.op), 0);
        mars_test_run_until(&r.calls, 1, DEADLINE_NS);
        assert_int_equal(r.res, -EBADF);
    }
    close(fd);
    free(outside);
    munmap(region, (size_t)UNIT * NUNITS);
}

/* The loop runs first on a thread that then exits (the io_uring backend closes a
 * SINGLE_ISSUER ring there), and then on this one, in a fresh ring: fixed reads must go on
 * working, registered again in the new ring. */
struct first_life {
    unsigned char *region;
    int fd;
};

static void *first_life_main(void *arg)
{
    struct first_life *fl = arg;

    check_fixed_cap(mars_ev_register_buffers(mars_test_loop, fl->region, UNIT, NUNITS));
    read_check(fl->fd, fl->region + UNIT, UNIT, 4096);
    return NULL;
}

static void test_fixed_reads_survive_thread_exit(void **state)
{
    struct first_life fl = {.region = map_region(), .fd = pattern_file()};
    pthread_t t;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, first_life_main, &fl), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    read_check(fl.fd, fl.region + UNIT, UNIT, 8192);
    read_check(fl.fd, fl.region, UNIT, 0);
    if (native())
        assert_true(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_FIXED_BUFFERS);
    close(fl.fd);
    munmap(fl.region, (size_t)UNIT * NUNITS);
}

/* ---- large sends ---------------------------------------------------------------------- */

#define BIG (256u << 10)

/* A loopback TCP pair whose buffers hold BIG bytes, so one send takes it all. */
static void tcp_pair(int *client, int *server)
{
    struct sockaddr_in addr;
    int lfd = mars_test_tcp_listener(&addr, 64), sz = 4 * BIG;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN};

    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(fcntl(c, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(poll(&p, 1, 5000), 1);
    *server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(*server >= 0);
    assert_int_equal(setsockopt(*server, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
    *client = c;
    close(lfd);
}

/* Reads exactly n bytes from a blocking socket (the sender's data is all in the kernel). */
static void recv_all(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = recv(fd, buf + got, n - got, 0);

        assert_true(k > 0);
        got += (size_t)k;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed + i / 4093);
}

/* Sends BIG bytes over a loopback TCP pair in one SEND (or one SENDMSG of four iovecs):
 * one callback with the full length, and the peer gets every byte. */
static void send_big(bool as_msg, unsigned seed)
{
    unsigned char *tx = malloc(BIG), *rx = malloc(BIG);
    struct iovec iov[4];
    struct rec s = {0};
    int c, srv;

    assert_true(tx != NULL && rx != NULL);
    tcp_pair(&c, &srv);
    fill(tx, BIG, seed);
    if (as_msg) {
        for (int i = 0; i < 4; i++)
            iov[i] = (struct iovec){.iov_base = tx + (size_t)i * (BIG / 4), .iov_len = BIG / 4};
        mars_ev_prep_sendmsg(&s.op, c, iov, 4, rec_cb, NULL);
    } else {
        mars_ev_prep_send(&s.op, c, tx, BIG, rec_cb, NULL);
    }
    assert_int_equal(mars_ev_submit(mars_test_loop, &s.op), 0);
    mars_test_run_until(&s.calls, 1, DEADLINE_NS);
    assert_int_equal(s.res, (int)BIG);
    recv_all(srv, rx, BIG);
    assert_memory_equal(rx, tx, BIG);
    /* Nothing else comes: the callback ran once. */
    assert_int_equal(mars_ev_run_once(mars_test_loop, 20 * MS), 0);
    assert_int_equal(s.calls, 1);
    close(c);
    close(srv);
    free(tx);
    free(rx);
}

static void test_large_send(void **state)
{
    (void)state;
    assert_int_equal(!!(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_SEND_ZC), native());
    send_big(false, 1);
}

static void test_large_sendmsg(void **state)
{
    (void)state;
    send_big(true, 2);
}

/* A large send to a peer that reads nothing: the kernel keeps the unsent bytes, so on
 * io_uring the zero-copy send's buffer is not free and its callback waits; a cancel cannot
 * hurry that (the send itself is done), but resetting the connection (connect AF_UNSPEC,
 * what core/conn does when it gives up a request) drops them and the callback comes. */
static void test_large_send_reset_unread(void **state)
{
    unsigned char *tx = calloc(1, 4 * BIG);
    struct rec s = {0};
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    int c, srv, small = 4096;

    (void)state;
    assert_non_null(tx);
    tcp_pair(&c, &srv);
    assert_int_equal(setsockopt(srv, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    mars_ev_prep_send(&s.op, c, tx, 4 * BIG, rec_cb, NULL);
    assert_int_equal(mars_ev_submit(mars_test_loop, &s.op), 0);
    for (int i = 0; i < 5 && s.calls == 0; i++)
        assert_true(mars_ev_run_once(mars_test_loop, 10 * MS) >= 0);
    if (s.calls == 0)
        assert_int_equal(mars_ev_cancel(mars_test_loop, &s.op), 0);
    assert_int_equal(connect(c, &sa, sizeof(sa)), 0);
    mars_test_run_until(&s.calls, 1, DEADLINE_NS);
    assert_int_equal(s.calls, 1);
    assert_true(s.res > 0 || s.res == -ECANCELED || s.res == -ECONNRESET || s.res == -EPIPE);
    close(c);
    close(srv);
    free(tx);
}

/* AF_UNIX has no zero-copy: a large send there must still arrive, every time. */
static void test_large_send_unix(void **state)
{
    unsigned char *tx = malloc(BIG), *rx = malloc(BIG);
    int sp[2], sz = 4 * BIG;

    (void)state;
    assert_true(tx != NULL && rx != NULL);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    assert_int_equal(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
    for (unsigned round = 0; round < 2; round++) {
        size_t sent = 0, got = 0;

        fill(tx, BIG, 3 + round);
        while (sent < BIG) {
            struct rec s = {0};

            mars_ev_prep_send(&s.op, sp[0], tx + sent, BIG - sent, rec_cb, NULL);
            assert_int_equal(mars_ev_submit(mars_test_loop, &s.op), 0);
            while (s.calls == 0) {
                ssize_t k = recv(sp[1], rx + got, BIG - got, MSG_DONTWAIT);

                if (k > 0)
                    got += (size_t)k;
                assert_true(mars_ev_run_once(mars_test_loop, 10 * MS) >= 0);
            }
            assert_int_equal(s.calls, 1);
            assert_true(s.res > 0);
            sent += (size_t)s.res;
        }
        while (got < BIG) {
            ssize_t k = recv(sp[1], rx + got, BIG - got, 0);

            assert_true(k > 0);
            got += (size_t)k;
        }
        assert_memory_equal(rx, tx, BIG);
    }
    close(sp[0]);
    close(sp[1]);
    free(tx);
    free(rx);
}

/* ---- multishot accept ----------------------------------------------------------------- */

#define NCONN 5

struct acceptor {
    struct mars_ev_op op;
    int fds[NCONN + 1];
    int nfd;
    int calls, finals, final_res;
};

static void accept_cb(struct mars_ev_op *op, int res)
{
    struct acceptor *a = MARS_CONTAINER_OF(op, struct acceptor, op);

    a->calls++;
    if (!op->more) {
        a->finals++;
        a->final_res = res;
        if (res >= 0)
            close(res); /* a connection that came with the end: not counted */
        return;
    }
    assert_true(res >= 0);
    assert_true(a->nfd < NCONN);
    assert_true(fcntl(res, F_GETFL) & O_NONBLOCK);
    a->fds[a->nfd++] = res;
}

static int connect_to(const struct sockaddr_in *addr)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(c >= 0);
    assert_int_equal(connect(c, (const struct sockaddr *)addr, sizeof(*addr)), 0);
    return c;
}

static void test_multishot_accept(void **state)
{
    struct acceptor a = {0};
    struct sockaddr_in addr;
    int lfd = mars_test_tcp_listener(&addr, 64), clients[NCONN];

    (void)state;
    assert_int_equal(!!(mars_ev_caps(mars_test_loop) & MARS_EV_CAP_MULTISHOT), native());
    mars_ev_prep_accept_multishot(&a.op, lfd, accept_cb, NULL);
    assert_int_equal(mars_ev_submit(mars_test_loop, &a.op), 0);
    assert_int_equal(mars_ev_submit(mars_test_loop, &a.op), -EBUSY);
    for (int round = 0; round < 2; round++) {
        /* two at once (results may queue behind each other), then the rest one by one */
        int from = round == 0 ? 0 : 2, to = round == 0 ? 2 : NCONN;

        for (int i = from; i < to; i++)
            clients[i] = connect_to(&addr);
        mars_test_run_until(&a.nfd, to, DEADLINE_NS);
    }
    assert_int_equal(a.calls, NCONN);
    assert_int_equal(a.finals, 0);
    assert_int_equal(mars_ev_pending(mars_test_loop), 1); /* still armed */
    /* Each accepted fd is the server end of one client. */
    for (int i = 0; i < NCONN; i++) {
        char b = 0;

        assert_int_equal(send(clients[i], "x", 1, 0), 1);
        for (int j = 0; j < NCONN; j++) {
            struct pollfd p = {.fd = a.fds[j], .events = POLLIN};

            if (poll(&p, 1, 0) == 1 && recv(a.fds[j], &b, 1, 0) == 1)
                break;
        }
        assert_int_equal(b, 'x');
    }

    assert_int_equal(mars_ev_cancel(mars_test_loop, &a.op), 0);
    assert_int_equal(mars_ev_cancel(mars_test_loop, &a.op), 0); /* asked already */
    mars_test_run_until(&a.finals, 1, DEADLINE_NS);
    assert_int_equal(a.final_res, -ECANCELED);
    assert_int_equal(a.calls, NCONN + 1);
    assert_int_equal(mars_ev_pending(mars_test_loop), 0);
    assert_int_equal(mars_ev_cancel(mars_test_loop, &a.op), -ENOENT);

    /* Ended, the op is the caller's again: it can be armed once more. */
    for (int i = 0; i < NCONN; i++) {
        close(clients[i]);
        close(a.fds[i]);
    }
    a.nfd = 0;
    a.finals = 0;
    assert_int_equal(mars_ev_submit(mars_test_loop, &a.op), 0);
    {
        int c = connect_to(&addr);

        mars_test_run_until(&a.nfd, 1, DEADLINE_NS);
        close(c);
    }
    assert_int_equal(mars_ev_cancel(mars_test_loop, &a.op), 0);
    mars_test_run_until(&a.finals, 1, DEADLINE_NS);
    assert_int_equal(mars_ev_pending(mars_test_loop), 0);
    close(a.fds[0]);
    close(lfd);
}

/* A listening socket that breaks (shut down under the op) ends the op with an error. */
static void test_multishot_accept_error_ends(void **state)
{
    struct acceptor a = {0};
    struct sockaddr_in addr;
    int lfd = mars_test_tcp_listener(&addr, 64);
    struct rec r = {0};

    (void)state;
    /* Only accept may be multishot. */
    mars_ev_prep_accept_multishot(&r.op, lfd, rec_cb, NULL);
    r.op.type = MARS_EV_RECV;
    assert_int_equal(mars_ev_submit(mars_test_loop, &r.op), -EINVAL);

    mars_ev_prep_accept_multishot(&a.op, lfd, accept_cb, NULL);
    assert_int_equal(mars_ev_submit(mars_test_loop, &a.op), 0);
    assert_int_equal(mars_ev_run_once(mars_test_loop, 10 * MS), 0);
    shutdown(lfd, SHUT_RDWR);
    mars_test_run_until(&a.finals, 1, DEADLINE_NS);
    assert_true(a.final_res < 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(mars_ev_pending(mars_test_loop), 0);
    close(lfd);
}

int main(void)
{
    mars_test_backend("test_ev_features");
#define T(fn) cmocka_unit_test_setup_teardown(fn, mars_test_loop_setup, mars_test_loop_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fixed_reads),      T(test_fixed_reads_survive_thread_exit),
        T(test_large_send),       T(test_large_sendmsg),
        T(test_large_send_unix),  T(test_large_send_reset_unread),
        T(test_multishot_accept), T(test_multishot_accept_error_ends),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
