/*
 * ev_libevent.c - the portable ev backend: completion semantics on top of libevent 2.1.
 *
 * How it works: each loop owns one event_base (NOLOCK: a loop has one thread). An op is
 * turned into a completion in one of three ways:
 * - done at once, inside submit: positional file I/O (READ/WRITE/WRITEV with an explicit
 *   offset: pread/pwrite/pwritev; regular files are always "ready", so there is nothing to
 *   wait for), and ops whose first attempt succeeds or fails for good;
 * - syscall first, readiness on EAGAIN: SEND, SENDMSG, RECV (with MSG_DONTWAIT), READ and
 *   WRITE/WRITEV at MARS_EV_CUR, POLL (a poll() with zero timeout) and CONNECT (EINPROGRESS
 *   waits for writability, then SO_ERROR is the result);
 * - readiness first: ACCEPT (a listening socket is rarely ready at submit) and TIMER.
 * An explicit offset always means the positional call: on a pipe or socket it completes with
 * -ESPIPE, as it would under io_uring.
 * Waiting uses a one-shot libevent event held in a struct evl_wait that op->bk points to
 * while the op waits. When the event fires, the syscall is done; EAGAIN (a spurious wakeup,
 * or another reader was faster) re-adds the event, anything else completes the op.
 * Completions go to the loop's done queue (mars_ev_complete()); libevent callbacks never run
 * user code, so no user callback can run inside event_base_loop() or inside submit.
 *
 * POLL maps POLLIN/POLLPRI/POLLRDHUP to EV_READ and POLLOUT to EV_WRITE and reports the
 * mask poll(2) gives; asking for POLLPRI alone while normal data sits unread makes the op
 * re-arm on every iteration until that data is read (libevent cannot wait for POLLPRI only).
 *
 * Requirements on callers: fds used at MARS_EV_CUR, and sockets, are O_NONBLOCK (the
 * first attempt of READ/WRITE at MARS_EV_CUR would otherwise block the loop; send and recv
 * are safe either way). File I/O blocks the loop thread for the time of the syscall: this
 * backend has no MARS_EV_CAP_ASYNC_FILE_IO.
 *
 * Optional features: none. mars_ev_register_buffers() says -EOPNOTSUPP (no register_buffers:
 * reads stay plain), sends always copy, and a multishot accept is a single accept that ev.c
 * re-arms after each connection (see ev.c).
 *
 * Memory: evl_wait structs carry the struct event inline (event_get_struct_event_size()) and
 * are recycled through a small free list, so steady-state I/O does not allocate.
 *
 * Thread: the loop's thread only.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/ev.h"
#include "core/ev_internal.h"

/* Released evl_wait structs kept for reuse; more than this are freed. */
#define EVL_FREE_MAX 256

/* A waiting op's libevent state. Owned by the backend; lent to the op through op->bk from
 * arming until completion. */
struct evl_wait {
    struct mars_ev_loop *loop;
    struct mars_ev_op *op;
    struct evl_wait *next_free;
    max_align_t ev[]; /* struct event storage, evl->ev_size bytes */
};

struct evl {
    struct event_base *base;
    struct event *wake; /* timer that bounds event_base_loop() in wait() */
    size_t ev_size;
    struct evl_wait *free_list;
    unsigned nfree;
};

static struct event *wait_event(struct evl_wait *w)
{
    return (struct event *)(void *)w->ev;
}

static struct evl_wait *wait_get(struct evl *bk)
{
    struct evl_wait *w = bk->free_list;

    if (w != NULL) {
        bk->free_list = w->next_free;
        bk->nfree--;
        return w;
    }
    return malloc(sizeof(*w) + bk->ev_size);
}

/* The event must not be pending (fired one-shot events and deleted ones are not). */
static void wait_put(struct evl *bk, struct evl_wait *w)
{
    if (bk->nfree >= EVL_FREE_MAX) {
        free(w);
        return;
    }
    w->op = NULL;
    w->next_free = bk->free_list;
    bk->free_list = w;
    bk->nfree++;
}

/* ---- syscalls ------------------------------------------------------------------------- */

/* One attempt at the op's syscall. Returns bytes / new fd / 0, or -errno (-EAGAIN: not
 * ready). */
static int do_io(const struct mars_ev_op *op)
{
    const int fl = MSG_NOSIGNAL | MSG_DONTWAIT;
    struct msghdr mh;
    ssize_t n;

    do {
        switch (op->type) {
        case MARS_EV_READ:
            n = op->u.rw.off == MARS_EV_CUR
                    ? read(op->fd, op->u.rw.buf, op->u.rw.len)
                    : pread(op->fd, op->u.rw.buf, op->u.rw.len, (off_t)op->u.rw.off);
            break;
        case MARS_EV_WRITE:
            n = op->u.rw.off == MARS_EV_CUR
                    ? write(op->fd, op->u.rw.buf, op->u.rw.len)
                    : pwrite(op->fd, op->u.rw.buf, op->u.rw.len, (off_t)op->u.rw.off);
            break;
        case MARS_EV_WRITEV:
            n = op->u.vec.off == MARS_EV_CUR
                    ? writev(op->fd, op->u.vec.iov, op->u.vec.iovcnt)
                    : pwritev(op->fd, op->u.vec.iov, op->u.vec.iovcnt, (off_t)op->u.vec.off);
            break;
        case MARS_EV_SEND:
            n = send(op->fd, op->u.rw.buf, op->u.rw.len, fl);
            break;
        case MARS_EV_SENDMSG:
            memset(&mh, 0, sizeof(mh));
            mh.msg_iov = (struct iovec *)op->u.vec.iov; /* sendmsg only reads it */
            mh.msg_iovlen = (size_t)op->u.vec.iovcnt;
            n = sendmsg(op->fd, &mh, fl);
            break;
        case MARS_EV_RECV:
            n = recv(op->fd, op->u.rw.buf, op->u.rw.len, MSG_DONTWAIT);
            break;
        case MARS_EV_ACCEPT:
            n = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        default:
            errno = EINVAL;
            n = -1;
            break;
        }
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    /* Linux moves at most 0x7ffff000 bytes per call, so this always fits. */
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* The readiness the op asked for, now: revents, 0 when none yet, or -errno. */
static int poll_now(const struct mars_ev_op *op)
{
    struct pollfd p = {.fd = op->fd, .events = op->u.poll.events};
    int r;

    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == 0 ? 0 : (int)(unsigned short)p.revents;
}

static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* libevent readiness an op waits for. */
static short wanted(const struct mars_ev_op *op)
{
    short what = 0;

    switch (op->type) {
    case MARS_EV_POLL:
        if (op->u.poll.events & (POLLIN | POLLPRI | POLLRDHUP))
            what |= EV_READ;
        if (op->u.poll.events & POLLOUT)
            what |= EV_WRITE;
        return what;
    case MARS_EV_READ:
    case MARS_EV_RECV:
    case MARS_EV_ACCEPT:
        return EV_READ;
    case MARS_EV_TIMER:
        return 0;
    default:
        return EV_WRITE;
    }
}

/* Rounded up to the microsecond: a timer never fires before its timeout. */
static struct timeval ns_to_tv(int64_t ns)
{
    int64_t us = ns / 1000 + (ns % 1000 != 0);
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};

    return tv;
}

/* ---- waiting -------------------------------------------------------------------------- */

static void finish(struct mars_ev_loop *loop, struct mars_ev_op *op, int res)
{
    struct evl_wait *w = op->bk;

    if (w != NULL) {
        op->bk = NULL;
        wait_put(loop->bk, w);
    }
    mars_ev_complete(loop, op, res);
}

static int add_event(struct evl_wait *w, const struct timeval *tv)
{
    errno = 0;
    if (event_add(wait_event(w), tv) == 0)
        return 0;
    return errno != 0 ? -errno : -EIO;
}

/* libevent callback: the op's fd is ready (or its timer expired). */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct evl_wait *w = arg;
    struct mars_ev_op *op = w->op;
    int res;

    (void)what;
    switch (op->type) {
    case MARS_EV_TIMER:
        res = 0;
        break;
    case MARS_EV_CONNECT:
        res = connect_result(fd);
        break;
    case MARS_EV_POLL:
        res = poll_now(op);
        if (res == 0)
            res = -EAGAIN; /* readiness went away (or was for an event not asked for) */
        break;
    default:
        res = do_io(op);
        break;
    }
    if (res == -EAGAIN) {
        res = add_event(w, NULL);
        if (res == 0)
            return;
    }
    finish(w->loop, op, res);
}

/* Makes the op wait for readiness (fd >= 0) or for tv (timers). Returns 0 or -errno; on
 * error the op is not waiting and not completed. */
static int arm(struct mars_ev_loop *loop, struct mars_ev_op *op, const struct timeval *tv)
{
    struct evl *bk = loop->bk;
    struct evl_wait *w = wait_get(bk);
    int fd = op->type == MARS_EV_TIMER ? -1 : op->fd;
    int rc;

    if (w == NULL)
        return -ENOMEM;
    w->loop = loop;
    w->op = op;
    if (event_assign(wait_event(w), bk->base, fd, wanted(op), on_ready, w) < 0) {
        wait_put(bk, w);
        return -EINVAL;
    }
    rc = add_event(w, tv);
    if (rc < 0) {
        wait_put(bk, w);
        return rc;
    }
    op->bk = w;
    return 0;
}

/* ---- ops table ------------------------------------------------------------------------ */

/* First attempt for ops tried before waiting: done (result queued) or waiting. */
static int try_then_arm(struct mars_ev_loop *loop, struct mars_ev_op *op, int res)
{
    if (res != -EAGAIN) {
        mars_ev_complete(loop, op, res);
        return 0;
    }
    return arm(loop, op, NULL);
}

static int evl_submit(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    struct timeval tv;

    switch (op->type) {
    case MARS_EV_TIMER:
        tv = ns_to_tv(op->u.timer.timeout_ns);
        return arm(loop, op, &tv);
    case MARS_EV_READ:
    case MARS_EV_WRITE:
        if (op->u.rw.off != MARS_EV_CUR) {
            mars_ev_complete(loop, op, do_io(op));
            return 0;
        }
        return try_then_arm(loop, op, do_io(op));
    case MARS_EV_WRITEV:
        if (op->u.vec.off != MARS_EV_CUR) {
            mars_ev_complete(loop, op, do_io(op));
            return 0;
        }
        return try_then_arm(loop, op, do_io(op));
    case MARS_EV_SEND:
    case MARS_EV_SENDMSG:
    case MARS_EV_RECV:
        return try_then_arm(loop, op, do_io(op));
    case MARS_EV_ACCEPT:
        return arm(loop, op, NULL);
    case MARS_EV_CONNECT:
        if (connect(op->fd, op->u.conn.addr, op->u.conn.addrlen) == 0) {
            mars_ev_complete(loop, op, 0);
            return 0;
        }
        /* EINTR: a non-blocking connect goes on in the background, like EINPROGRESS.
         * Anything else (EAGAIN from a full unix-socket backlog too) is the result. */
        if (errno == EINPROGRESS || errno == EINTR)
            return arm(loop, op, NULL);
        mars_ev_complete(loop, op, -errno);
        return 0;
    case MARS_EV_POLL: {
        int res = poll_now(op);

        return try_then_arm(loop, op, res == 0 ? -EAGAIN : res);
    }
    }
    return -EINVAL;
}

static int evl_cancel(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    struct evl_wait *w = op->bk;

    if (w == NULL)
        return -ENOENT;
    event_del(wait_event(w));
    finish(loop, op, -ECANCELED);
    return 0;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int evl_wait(struct mars_ev_loop *loop, int64_t timeout_ns)
{
    struct evl *bk = loop->bk;
    struct timeval tv;
    int rc;

    /* event_base_loop() does not nest; completions made by a nested run (cancel) are
     * already on the done queue. */
    if (loop->depth > 1)
        return 0;
    if (timeout_ns == 0) {
        rc = event_base_loop(bk->base, EVLOOP_NONBLOCK);
    } else if (timeout_ns < 0) {
        rc = event_base_loop(bk->base, EVLOOP_ONCE);
    } else {
        tv = ns_to_tv(timeout_ns);
        if (evtimer_add(bk->wake, &tv) < 0)
            return -EIO;
        rc = event_base_loop(bk->base, EVLOOP_ONCE);
        evtimer_del(bk->wake);
    }
    return rc < 0 ? -EIO : 0;
}

static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        return NULL;
    /* NOLOCK: one thread per loop. PRECISE_TIMER: CLOCK_MONOTONIC rather than the coarse
     * clock, so timers do not fire a jiffy early. NO_CACHE_TIME: a timer's deadline counts
     * from its submit, not from the start of the iteration. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_PRECISE_TIMER |
                                   EVENT_BASE_FLAG_NO_CACHE_TIME);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static int evl_probe(char *why, size_t whylen)
{
    struct event_base *base = new_base();

    if (base == NULL) {
        snprintf(why, whylen, "cannot create a libevent event_base");
        return -ENOMEM;
    }
    snprintf(why, whylen, "libevent %s (%s)", event_get_version(), event_base_get_method(base));
    event_base_free(base);
    return 0;
}

static int evl_init(struct mars_ev_loop *loop)
{
    struct evl *bk = calloc(1, sizeof(*bk));

    if (bk == NULL)
        return -ENOMEM;
    bk->ev_size = event_get_struct_event_size();
    bk->base = new_base();
    if (bk->base == NULL)
        goto fail;
    bk->wake = evtimer_new(bk->base, on_wake, NULL);
    if (bk->wake == NULL)
        goto fail;
    loop->bk = bk;
    return 0;
fail:
    if (bk->base != NULL)
        event_base_free(bk->base);
    free(bk);
    return -ENOMEM;
}

static void evl_fini(struct mars_ev_loop *loop)
{
    struct evl *bk = loop->bk;

    event_free(bk->wake);
    event_base_free(bk->base);
    while (bk->free_list != NULL) {
        struct evl_wait *w = bk->free_list;

        bk->free_list = w->next_free;
        free(w);
    }
    free(bk);
    loop->bk = NULL;
}

const struct mars_ev_backend mars_ev_backend_libevent = {
    .name = "libevent",
    .caps = 0,
    .probe = evl_probe,
    .init = evl_init,
    .fini = evl_fini,
    .submit = evl_submit,
    .cancel = evl_cancel,
    .wait = evl_wait,
};
