/*
 * test_ev_stress.c - the core/ev.h contract under load and across threads, for one backend.
 *
 * The companion of test_ev_conformance.c (same backend choice: env MARS_IO_BACKEND, default
 * "libevent"; a backend that cannot run here skips with exit 0). These cases aim at what a
 * completion backend gets wrong first: more ops in flight than its submission queue holds,
 * cancels of ops that never reached the kernel, timers far in the future, cancels racing
 * completions (every callback must still run exactly once), and loops that change threads
 * (created on one thread and run on another; left with ops in flight by a thread that
 * exits, then drained and reused by another, as the engine does with worker loops).
 *
 * Every test gets a fresh loop and must leave it with nothing pending. No wait is unbounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backend.h"
#include "core/ev.h"

#define MS          1000000LL
#define DEADLINE_NS (10000 * MS)
#define HOUR_NS     (3600 * 1000 * MS)

static const struct mars_ev_backend *g_backend; /* for loops of other threads */

struct rec {
    struct mars_ev_op op;
    int res;
    int calls;
};

static void rec_cb(struct mars_ev_op *op, int res)
{
    struct rec *r = MARS_CONTAINER_OF(op, struct rec, op);

    r->res = res;
    r->calls++;
}

static void run_loop_until_idle(struct mars_ev_loop *loop)
{
    int64_t deadline = mars_ev_clock_ns() + DEADLINE_NS;

    while (mars_ev_pending(loop) > 0) {
        assert_true(mars_ev_clock_ns() < deadline);
        assert_true(mars_ev_run_once(loop, 50 * MS) >= 0);
    }
}

static void run_until_idle(void)
{
    run_loop_until_idle(mars_test_loop);
}

static int temp_file(size_t size)
{
    char path[] = "/tmp/mars-ev-stress-XXXXXX";
    int fd = mkstemp(path);
    char block[4096];

    assert_true(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (char)('a' + i % 26);
    for (size_t done = 0; done < size; done += sizeof(block))
        assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
    return fd;
}

/* ---- more ops than a submission queue holds ------------------------------------------- */

#define NMANY 1200 /* several times an io_uring SQ of 256 */

static void test_many_ops_at_once(void **state)
{
    struct rec *r = calloc(NMANY, sizeof(*r));
    char(*buf)[16] = calloc(NMANY, sizeof(*buf));
    int fd = temp_file(NMANY * 16), p[2];

    (void)state;
    assert_non_null(r);
    assert_non_null(buf);
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* A third file reads, a third short timers, a third polls that are ready at once. */
    for (int i = 0; i < NMANY; i++) {
        if (i % 3 == 0)
            mars_ev_prep_read(&r[i].op, fd, buf[i], 16, (uint64_t)i * 16, rec_cb, NULL);
        else if (i % 3 == 1)
            mars_ev_prep_timer(&r[i].op, (i % 7) * MS, rec_cb, NULL);
        else
            mars_ev_prep_poll(&r[i].op, p[1], POLLOUT, rec_cb, NULL);
        assert_int_equal(mars_ev_submit(mars_test_loop, &r[i].op), 0);
    }
    assert_int_equal(mars_ev_pending(mars_test_loop), NMANY);
    run_until_idle();
    for (int i = 0; i < NMANY; i++) {
        assert_int_equal(r[i].calls, 1);
        if (i % 3 == 0) {
            assert_int_equal(r[i].res, 16);
            assert_int_equal(buf[i][0], 'a' + (i * 16) % 4096 % 26);
        } else if (i % 3 == 1) {
            assert_int_equal(r[i].res, 0);
        } else {
            assert_true(r[i].res & POLLOUT);
        }
    }
    close(p[0]);
    close(p[1]);
    close(fd);
    free(buf);
    free(r);
}

/* Waiting ops beyond the SQ size, cancelled before the loop ever ran: some never reached
 * the kernel, some did; all end once with -ECANCELED. */
static void test_cancel_many_before_run(void **state)
{
    struct rec *r = calloc(NMANY, sizeof(*r));
    char buf[8];
    int p[2];

    (void)state;
    assert_non_null(r);
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    for (int i = 0; i < NMANY; i++) {
        if (i % 2)
            mars_ev_prep_read(&r[i].op, p[0], buf, sizeof(buf), MARS_EV_CUR, rec_cb, NULL);
        else
            mars_ev_prep_timer(&r[i].op, HOUR_NS, rec_cb, NULL);
        assert_int_equal(mars_ev_submit(mars_test_loop, &r[i].op), 0);
    }
    for (int i = 0; i < NMANY; i++)
        assert_int_equal(mars_ev_cancel(mars_test_loop, &r[i].op), 0);
    run_until_idle();
    for (int i = 0; i < NMANY; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].res, -ECANCELED);
    }
    close(p[0]);
    close(p[1]);
    free(r);
}

/* ---- timers far in the future --------------------------------------------------------- */

static void test_far_timers_cancelled(void **state)
{
    enum { N = 300 };
    struct rec t[N], near = {0};
    int64_t start = mars_ev_clock_ns();

    (void)state;
    memset(t, 0, sizeof(t));
    for (int i = 0; i < N; i++) {
        mars_ev_prep_timer(&t[i].op, HOUR_NS * (1 + i % 24) * (i % 5 == 0 ? 365 : 1), rec_cb, NULL);
        assert_int_equal(mars_ev_submit(mars_test_loop, &t[i].op), 0);
    }
    mars_ev_prep_timer(&near.op, 5 * MS, rec_cb, NULL);
    assert_int_equal(mars_ev_submit(mars_test_loop, &near.op), 0);
    while (near.calls == 0) /* the far ones are really armed while the loop runs */
        assert_true(mars_ev_run_once(mars_test_loop, 50 * MS) >= 0);
    assert_int_equal(near.res, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t[i].calls, 0);
        assert_int_equal(mars_ev_cancel(mars_test_loop, &t[i].op), 0);
    }
    run_until_idle();
    for (int i = 0; i < N; i++) {
        assert_int_equal(t[i].calls, 1);
        assert_int_equal(t[i].res, -ECANCELED);
    }
    assert_true(mars_ev_clock_ns() - start < 2000 * MS); /* cancelled, not waited out */
}

/* ---- cancel racing completion ------------------------------------------------------------ */

static void test_cancel_races_completion(void **state)
{
    enum { ROUNDS = 500 };
    struct rec tim, rd, prd, pol;
    char fbuf[64], pbuf[8];
    int fd = temp_file(4096), p[2];
    int won[4] = {0}, lost[4] = {0};

    (void)state;
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    for (int round = 0; round < ROUNDS; round++) {
        struct rec *all[4] = {&tim, &rd, &prd, &pol};

        memset(&tim, 0, sizeof(tim));
        memset(&rd, 0, sizeof(rd));
        memset(&prd, 0, sizeof(prd));
        memset(&pol, 0, sizeof(pol));
        mars_ev_prep_timer(&tim.op, (round % 40) * 1000, rec_cb, NULL);
        mars_ev_prep_read(&rd.op, fd, fbuf, sizeof(fbuf), (uint64_t)(round % 64), rec_cb, NULL);
        mars_ev_prep_read(&prd.op, p[0], pbuf, 1, MARS_EV_CUR, rec_cb, NULL);
        mars_ev_prep_poll(&pol.op, p[1], POLLOUT, rec_cb, NULL);
        for (int i = 0; i < 4; i++)
            assert_int_equal(mars_ev_submit(mars_test_loop, &all[i]->op), 0);
        if (round % 3 != 0)
            assert_int_equal(write(p[1], "x", 1), 1); /* the pipe read can complete now */
        if (round % 2)
            assert_true(mars_ev_run_once(mars_test_loop, 0) >= 0); /* let some finish first */
        for (int i = 0; i < 4; i++) {
            int rc = mars_ev_cancel(mars_test_loop, &all[i]->op);

            assert_true(rc == 0 || (rc == -ENOENT && all[i]->calls == 1));
        }
        run_until_idle();
        for (int i = 0; i < 4; i++) {
            assert_int_equal(all[i]->calls, 1);
            if (all[i]->res == -ECANCELED)
                won[i]++;
            else
                lost[i]++;
        }
        assert_true(tim.res == 0 || tim.res == -ECANCELED);
        assert_true(rd.res == 64 || rd.res == -ECANCELED);
        assert_true(prd.res == 1 || prd.res == -ECANCELED);
        assert_true(pol.res == -ECANCELED || (pol.res & POLLOUT));
        if (round % 3 == 0)
            assert_int_equal(prd.res, -ECANCELED); /* nothing to read: only cancel ends it */
        else if (prd.res == -ECANCELED)
            assert_int_equal(read(p[0], pbuf, 1), 1); /* keep the pipe empty */
    }
    printf("cancel won/lost: timer %d/%d, file read %d/%d, pipe read %d/%d, poll %d/%d\n", won[0],
           lost[0], won[1], lost[1], won[2], lost[2], won[3], lost[3]);
    close(fd);
    close(p[0]);
    close(p[1]);
}

/* ---- loops and threads --------------------------------------------------------------- */

struct adopt {
    struct mars_ev_loop *loop;
    struct mars_ev_async async;
    struct rec rd, tim, fw, ready;
    int async_calls;
    int p[2];
    int fd;
    char buf[8];
};

static void adopt_async_cb(struct mars_ev_async *a)
{
    struct adopt *ad = a->data;

    ad->async_calls++;
}

/* A worker: owns a loop, leaves ops in flight and exits without draining it. */
static void *adopt_worker(void *arg)
{
    struct adopt *ad = arg;

    ad->loop = mars_ev_loop_create(g_backend);
    if (ad->loop == NULL)
        return NULL;
    if (mars_ev_async_init(ad->loop, &ad->async, adopt_async_cb, ad) != 0)
        return NULL;
    mars_ev_prep_read(&ad->rd.op, ad->p[0], ad->buf, sizeof(ad->buf), MARS_EV_CUR, rec_cb, NULL);
    mars_ev_prep_timer(&ad->tim.op, HOUR_NS, rec_cb, NULL);
    mars_ev_prep_write(&ad->fw.op, ad->fd, "w", 1, 0, rec_cb, NULL);
    mars_ev_prep_timer(&ad->ready.op, 0, rec_cb, NULL);
    mars_ev_submit(ad->loop, &ad->rd.op);
    mars_ev_submit(ad->loop, &ad->tim.op);
    mars_ev_submit(ad->loop, &ad->ready.op);
    while (ad->ready.calls == 0)
        mars_ev_run_once(ad->loop, 10 * MS);
    mars_ev_submit(ad->loop, &ad->fw.op); /* submitted, never waited for */
    return ad;
}

static void test_loop_adopted_after_thread_exit(void **state)
{
    struct adopt ad;
    struct rec again = {0}, rd2 = {0};
    pthread_t tid;
    void *ok;

    (void)state;
    memset(&ad, 0, sizeof(ad));
    assert_int_equal(pipe2(ad.p, O_NONBLOCK | O_CLOEXEC), 0);
    ad.fd = temp_file(4096);
    assert_int_equal(pthread_create(&tid, NULL, adopt_worker, &ad), 0);
    assert_int_equal(pthread_join(tid, &ok), 0);
    assert_non_null(ok);
    assert_int_equal(mars_ev_pending(ad.loop), 4); /* async read, pipe read, timer, write */

    /* This thread now owns the loop: every op still ends exactly once. */
    assert_int_equal(mars_ev_async_send(&ad.async), 0);
    mars_ev_cancel(ad.loop, &ad.rd.op);
    mars_ev_cancel(ad.loop, &ad.tim.op);
    mars_ev_async_fini(&ad.async);
    run_loop_until_idle(ad.loop);
    assert_int_equal(ad.rd.calls, 1);
    assert_int_equal(ad.rd.res, -ECANCELED);
    assert_int_equal(ad.tim.calls, 1);
    assert_int_equal(ad.tim.res, -ECANCELED);
    assert_int_equal(ad.fw.calls, 1);
    assert_true(ad.fw.res == 1 || ad.fw.res == -ECANCELED);
    assert_true(ad.async_calls <= 1);

    /* ... and it keeps working on this thread. */
    mars_ev_prep_timer(&again.op, 1 * MS, rec_cb, NULL);
    mars_ev_prep_read(&rd2.op, ad.p[0], ad.buf, sizeof(ad.buf), MARS_EV_CUR, rec_cb, NULL);
    assert_int_equal(mars_ev_submit(ad.loop, &again.op), 0);
    assert_int_equal(mars_ev_submit(ad.loop, &rd2.op), 0);
    assert_int_equal(write(ad.p[1], "hi", 2), 2);
    run_loop_until_idle(ad.loop);
    assert_int_equal(again.res, 0);
    assert_int_equal(rd2.res, 2);
    mars_ev_loop_destroy(ad.loop);
    close(ad.p[0]);
    close(ad.p[1]);
    close(ad.fd);
}

struct runner {
    struct mars_ev_loop *loop;
    struct rec tim;
    int fd;
    struct rec rd;
    char buf[32];
};

static void *run_elsewhere(void *arg)
{
    struct runner *rn = arg;

    mars_ev_prep_timer(&rn->tim.op, 2 * MS, rec_cb, NULL);
    mars_ev_prep_read(&rn->rd.op, rn->fd, rn->buf, sizeof(rn->buf), 0, rec_cb, NULL);
    if (mars_ev_submit(rn->loop, &rn->tim.op) != 0 || mars_ev_submit(rn->loop, &rn->rd.op) != 0)
        return NULL;
    if (mars_ev_run(rn->loop) != 0)
        return NULL;
    return rn;
}

/* A loop created on one thread and run (only) on another. */
static void test_loop_created_elsewhere(void **state)
{
    struct runner rn;
    pthread_t tid;
    void *ok;

    (void)state;
    memset(&rn, 0, sizeof(rn));
    rn.fd = temp_file(4096);
    rn.loop = mars_ev_loop_create(g_backend);
    assert_non_null(rn.loop);
    assert_int_equal(pthread_create(&tid, NULL, run_elsewhere, &rn), 0);
    assert_int_equal(pthread_join(tid, &ok), 0);
    assert_non_null(ok);
    assert_int_equal(rn.tim.calls, 1);
    assert_int_equal(rn.tim.res, 0);
    assert_int_equal(rn.rd.res, 32);
    assert_int_equal(mars_ev_pending(rn.loop), 0);
    mars_ev_loop_destroy(rn.loop);
    close(rn.fd);
}

int main(void)
{
    g_backend = mars_test_backend("ev stress");

#define T(fn) cmocka_unit_test_setup_teardown(fn, mars_test_loop_setup, mars_test_loop_teardown)
    const struct CMUnitTest tests[] = {
        T(test_many_ops_at_once),
        T(test_cancel_many_before_run),
        T(test_far_timers_cancelled),
        T(test_cancel_races_completion),
        T(test_loop_adopted_after_thread_exit),
        T(test_loop_created_elsewhere),
    };
#undef T
    return cmocka_run_group_tests_name("ev_stress", tests, NULL, NULL);
}
