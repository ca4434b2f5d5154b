/*
 * ev.c - the backend-independent half of the mars event loop (contract in ev.h).
 *
 * How it works: mars_ev_submit() validates an op, marks it in flight, counts it in
 * loop->pending and hands it to the backend's submit(). Backends never call callbacks;
 * they report each finished op with mars_ev_complete(), which appends it to the loop's done
 * queue. mars_ev_run_once() asks the backend to wait (without blocking when the done queue
 * already holds work), then detaches the done queue and runs those callbacks in completion
 * order. Ops completed while callbacks run (a resubmitted file read finishes at once, say)
 * land on the fresh queue and run in the next iteration, so one run_once always ends and a
 * callback that keeps resubmitting cannot starve socket I/O.
 *
 * Invariants:
 * - op->flags has MARS_EV_OPF_INFLIGHT from submit until just before its callback;
 *   MARS_EV_OPF_DONE while it sits on the done queue. Both are zero inside the callback,
 *   so the callback may resubmit the op.
 * - loop->pending == number of ops with MARS_EV_OPF_INFLIGHT set.
 * - Cancel of an op already on the done queue is a no-op: it completes with its real result
 *   (a multishot op still armed behind its queued result is cancelled in the backend).
 * - A multishot op stays INFLIGHT (and counted) from submit until its callback with
 *   more == false; between its callbacks only MARS_EV_OPF_DONE comes and goes.
 *
 * Multishot ops (accept) take more than one callback. A backend that has them natively marks
 * the op MARS_EV_OPF_NATIVE and reports results with mars_ev_complete_more(); a result that
 * comes while an earlier one still waits for its callback is parked on op->shots (and the
 * last one in op->final_result), and queued once the earlier callback returned, so one op is
 * never on the done queue twice and its results keep their order. Elsewhere dispatch()
 * emulates multishot: a successful single-shot result re-submits the op before its callback
 * (op->more = true); an error, a cancel or a failed re-submit makes it the last callback.
 *
 * The async handle is an eventfd (non-blocking) plus a READ op at MARS_EV_CUR on it. The
 * read empties the counter, so many sends coalesce into one callback; the op is resubmitted
 * before the user's callback runs, so a send that lands during the callback is seen.
 *
 * Thread: everything here runs on the loop's thread, except mars_ev_async_send() and
 * mars_ev_clock_ns(), which any thread may call.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/ev_internal.h"

/*
 * liburing being installed defines MARS_HAVE_URING; CMakeLists.txt defines
 * MARS_EV_URING_BUILT next to it when ev_uring.c is compiled in. Both must hold for the
 * io_uring table to be linked.
 */
#if defined(MARS_HAVE_URING) && defined(MARS_EV_URING_BUILT)
#define MARS_EV_WITH_URING 1
#endif

/* ---- clock ---------------------------------------------------------------------------- */

int64_t mars_ev_clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mars_ev_until_aligned(int64_t period_ns)
{
    return period_ns - mars_ev_clock_ns() % period_ns;
}

int64_t mars_ev_now(struct mars_ev_loop *loop)
{
    return loop->now;
}

/* ---- backend choice ------------------------------------------------------------------- */

const char *mars_ev_backends_compiled(void)
{
#ifdef MARS_EV_WITH_URING
    return "io_uring libevent";
#else
    return "libevent";
#endif
}

const char *mars_ev_backend_name(const struct mars_ev_backend *b)
{
    return b ? b->name : "none";
}

static const struct mars_ev_backend *select_libevent(const char *prefix, char *why, size_t whylen)
{
    char reason[160] = "";

    if (mars_ev_backend_libevent.probe(reason, sizeof(reason)) < 0) {
        snprintf(why, whylen, "libevent backend unusable: %s", reason);
        return NULL;
    }
    snprintf(why, whylen, "%s", prefix);
    return &mars_ev_backend_libevent;
}

#ifdef MARS_EV_WITH_URING
static const struct mars_ev_backend *select_uring(bool fallback, char *why, size_t whylen)
{
    char reason[160] = "";
    char msg[224];

    if (mars_ev_backend_uring.probe(reason, sizeof(reason)) == 0) {
        snprintf(why, whylen, "io_uring %s (%s)", fallback ? "available" : "forced", reason);
        return &mars_ev_backend_uring;
    }
    if (!fallback) {
        snprintf(why, whylen, "io_uring unusable: %s", reason);
        return NULL;
    }
    snprintf(msg, sizeof(msg), "io_uring unusable (%s); using libevent", reason);
    return select_libevent(msg, why, whylen);
}
#endif

const struct mars_ev_backend *mars_ev_backend_select(const char *name, char *why, size_t whylen)
{
    char scratch[8];

    if (why == NULL || whylen == 0) {
        why = scratch;
        whylen = sizeof(scratch);
    }
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
#ifdef MARS_EV_WITH_URING
        return select_uring(true, why, whylen);
#else
        return select_libevent("io_uring backend not built; using libevent", why, whylen);
#endif
    }
    if (strcmp(name, "libevent") == 0)
        return select_libevent("libevent forced by configuration", why, whylen);
    if (strcmp(name, "io_uring") == 0) {
#ifdef MARS_EV_WITH_URING
        return select_uring(false, why, whylen);
#else
        snprintf(why, whylen, "io_uring backend not built into this mars");
        return NULL;
#endif
    }
    snprintf(why, whylen, "unknown io backend \"%s\" (expected auto, io_uring or libevent)", name);
    return NULL;
}

/* ---- loop lifetime -------------------------------------------------------------------- */

struct mars_ev_loop *mars_ev_loop_create(const struct mars_ev_backend *b)
{
    struct mars_ev_loop *loop;
    int rc;

    if (b == NULL) {
        errno = EINVAL;
        return NULL;
    }
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->backend = b;
    loop->caps = b->caps;
    loop->now = mars_ev_clock_ns();
    rc = b->init(loop);
    if (rc < 0) {
        free(loop);
        errno = -rc;
        return NULL;
    }
    return loop;
}

void mars_ev_loop_destroy(struct mars_ev_loop *loop)
{
    if (loop == NULL)
        return;
    /* Ops in flight point into this loop and own caller memory; destroying now would leave
     * them dangling. That is a bug in the caller (cancel and run until pending is 0). */
    assert(loop->pending == 0 && loop->done_head == NULL);
    loop->backend->fini(loop);
    while (loop->shot_free != NULL) {
        struct mars_ev_shot *s = loop->shot_free;

        loop->shot_free = s->next;
        free(s);
    }
    free(loop);
}

unsigned mars_ev_caps(const struct mars_ev_loop *loop)
{
    return loop->caps;
}

void mars_ev_drop_caps(struct mars_ev_loop *loop, unsigned caps)
{
    loop->caps &= ~caps;
}

const char *mars_ev_loop_backend_name(const struct mars_ev_loop *loop)
{
    return loop->backend->name;
}

int mars_ev_register_buffers(struct mars_ev_loop *loop, void *base, size_t unit, unsigned count)
{
    int rc;

    if (base == NULL || unit == 0 || count == 0)
        return -EINVAL;
    if (loop->backend->register_buffers == NULL)
        return -EOPNOTSUPP;
    rc = loop->backend->register_buffers(loop, base, unit, count);
    if (rc == 0)
        loop->caps |= MARS_EV_CAP_FIXED_BUFFERS;
    return rc;
}

unsigned mars_ev_pending(const struct mars_ev_loop *loop)
{
    return loop->pending;
}

/* ---- submit, cancel, complete --------------------------------------------------------- */

static int validate(const struct mars_ev_op *op)
{
    if (op->cb == NULL)
        return -EINVAL;
    if ((op->opts & MARS_EV_F_MULTISHOT) && op->type != MARS_EV_ACCEPT)
        return -EINVAL;
    switch (op->type) {
    case MARS_EV_TIMER:
        return 0;
    case MARS_EV_WRITEV:
    case MARS_EV_SENDMSG:
        if (op->u.vec.iovcnt < 0 || op->u.vec.iovcnt > IOV_MAX ||
            (op->u.vec.iovcnt > 0 && op->u.vec.iov == NULL))
            return -EINVAL;
        break;
    case MARS_EV_POLL:
        if ((op->u.poll.events & (POLLIN | POLLOUT | POLLPRI | POLLRDHUP)) == 0)
            return -EINVAL;
        break;
    case MARS_EV_READ:
    case MARS_EV_WRITE:
    case MARS_EV_SEND:
    case MARS_EV_RECV:
    case MARS_EV_ACCEPT:
    case MARS_EV_CONNECT:
        break;
    default:
        return -EINVAL;
    }
    return op->fd < 0 ? -EBADF : 0;
}

int mars_ev_submit(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    int rc;

    if (op->flags & MARS_EV_OPF_INFLIGHT)
        return -EBUSY;
    rc = validate(op);
    if (rc < 0)
        return rc;
    op->flags = MARS_EV_OPF_INFLIGHT;
    op->next_done = NULL;
    op->bk = NULL;
    op->shots = NULL;
    op->more = false;
    op->result = 0;
    loop->pending++;
    rc = loop->backend->submit(loop, op);
    if (rc < 0) {
        assert(!(op->flags & MARS_EV_OPF_DONE));
        loop->pending--;
        op->flags = 0;
    }
    return rc;
}

int mars_ev_cancel(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    if (!(op->flags & MARS_EV_OPF_INFLIGHT))
        return -ENOENT;
    /* Already asked, or its last result is known: its callback will run with what it has.
     * (An emulated multishot op whose result is queued sees the cancel in dispatch().) */
    if (op->flags & (MARS_EV_OPF_CANCEL | MARS_EV_OPF_FINAL))
        return 0;
    op->flags |= MARS_EV_OPF_CANCEL;
    if ((op->flags & MARS_EV_OPF_DONE) && !(op->more && (op->flags & MARS_EV_OPF_NATIVE)))
        return 0;
    return loop->backend->cancel(loop, op);
}

static void queue_done(struct mars_ev_loop *loop, struct mars_ev_op *op, int res, bool more)
{
    op->flags |= MARS_EV_OPF_DONE;
    op->result = res;
    op->more = more;
    op->next_done = NULL;
    if (loop->done_tail)
        loop->done_tail->next_done = op;
    else
        loop->done_head = op;
    loop->done_tail = op;
}

/* A native multishot op with a result still queued (or waiting): later ones wait behind. */
static bool results_waiting(const struct mars_ev_op *op)
{
    return (op->flags & (MARS_EV_OPF_DONE | MARS_EV_OPF_FINAL)) || op->shots != NULL;
}

void mars_ev_complete(struct mars_ev_loop *loop, struct mars_ev_op *op, int res)
{
    assert(op->flags & MARS_EV_OPF_INFLIGHT);
    assert(!(op->flags & MARS_EV_OPF_FINAL));
    /* A single-shot op completes once; only a native multishot one has results waiting. */
    assert((op->flags & MARS_EV_OPF_NATIVE) || !results_waiting(op));
    if (results_waiting(op)) {
        op->final_result = res;
        op->flags |= MARS_EV_OPF_FINAL;
        return;
    }
    queue_done(loop, op, res, false);
}

void mars_ev_complete_more(struct mars_ev_loop *loop, struct mars_ev_op *op, int res)
{
    struct mars_ev_shot *s, **tail;

    assert((op->flags & MARS_EV_OPF_INFLIGHT) && !(op->flags & MARS_EV_OPF_FINAL));
    if (!results_waiting(op)) {
        queue_done(loop, op, res, true);
        return;
    }
    s = loop->shot_free;
    if (s != NULL)
        loop->shot_free = s->next;
    else
        s = malloc(sizeof(*s));
    if (s == NULL) {
        /* Out of memory for one more accepted connection: drop it (the peer sees a reset)
         * rather than leak its fd. */
        if (res >= 0 && op->type == MARS_EV_ACCEPT)
            close(res);
        return;
    }
    s->res = res;
    s->next = NULL;
    for (tail = &op->shots; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = s;
}

/* After a callback with more = true: queue the op's next waiting result, if any. */
static void queue_next_result(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    struct mars_ev_shot *s = op->shots;

    if (op->flags & MARS_EV_OPF_DONE)
        return; /* emulation re-armed it and it completed at once: already queued */
    if (s != NULL) {
        op->shots = s->next;
        queue_done(loop, op, s->res, true);
        s->next = loop->shot_free;
        loop->shot_free = s;
    } else if (op->flags & MARS_EV_OPF_FINAL) {
        op->flags &= ~(uint32_t)MARS_EV_OPF_FINAL;
        queue_done(loop, op, op->final_result, false);
    }
}

/* Multishot on a backend without it: re-submit a single-shot op that produced a result,
 * before its callback runs. True when the op is armed again. */
static bool rearm_emulated(struct mars_ev_loop *loop, struct mars_ev_op *op, int res)
{
    if (res < 0 || (op->flags & MARS_EV_OPF_CANCEL))
        return false;
    op->flags = MARS_EV_OPF_INFLIGHT;
    op->bk = NULL;
    return loop->backend->submit(loop, op) == 0;
}

/* ---- running -------------------------------------------------------------------------- */

/* Runs one queued result's callback. */
static void dispatch(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    int res = op->result;
    bool more = op->more;

    op->next_done = NULL;
    if ((op->opts & MARS_EV_F_MULTISHOT) && !(op->flags & MARS_EV_OPF_NATIVE))
        more = rearm_emulated(loop, op, res); /* flags start afresh (the op may be DONE) */
    else if (more)
        op->flags &= ~(uint32_t)MARS_EV_OPF_DONE; /* only this result is consumed */
    if (more) {
        /* Still armed: the op stays the loop's. */
        op->more = true;
        op->cb(op, res);
        queue_next_result(loop, op);
        return;
    }
    /* From here the op is the caller's again: clear our marks before the callback so it can
     * resubmit (or free the op). */
    assert(op->shots == NULL);
    op->flags = 0;
    op->bk = NULL;
    op->more = false;
    loop->pending--;
    op->cb(op, res);
}

/* Runs the callbacks of the ops on the done queue now; ops completed meanwhile wait for the
 * next call. Returns how many callbacks ran. */
static int run_done(struct mars_ev_loop *loop)
{
    struct mars_ev_op *op = loop->done_head;
    int n = 0;

    loop->done_head = NULL;
    loop->done_tail = NULL;
    while (op != NULL) {
        struct mars_ev_op *next = op->next_done;

        dispatch(loop, op);
        n++;
        op = next;
    }
    return n;
}

int mars_ev_run_once(struct mars_ev_loop *loop, int64_t timeout_ns)
{
    int rc, n;

    loop->depth++;
    if (loop->done_head != NULL)
        timeout_ns = 0;
    rc = loop->backend->wait(loop, timeout_ns);
    loop->now = mars_ev_clock_ns();
    /* Deliver what did complete even if the wait failed: nothing may be stranded. */
    n = run_done(loop);
    loop->depth--;
    if (rc < 0 && rc != -EINTR && n == 0)
        return rc;
    return n;
}

int mars_ev_run(struct mars_ev_loop *loop)
{
    int rc = 0;

    /* With nothing in flight no callback can ever call mars_ev_stop(): return instead of
     * spinning. */
    while (!loop->stop && loop->pending > 0) {
        rc = mars_ev_run_once(loop, -1);
        if (rc < 0)
            break;
    }
    loop->stop = false;
    return rc < 0 ? rc : 0;
}

void mars_ev_stop(struct mars_ev_loop *loop)
{
    loop->stop = true;
}

/* ---- op preparation ------------------------------------------------------------------- */

static void prep(struct mars_ev_op *op, enum mars_ev_op_type type, int fd, mars_ev_cb cb,
                 void *data)
{
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->fd = fd;
    op->cb = cb;
    op->data = data;
}

void mars_ev_prep_read(struct mars_ev_op *op, int fd, void *buf, size_t len, uint64_t off,
                       mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_READ, fd, cb, data);
    op->u.rw.buf = buf;
    op->u.rw.len = len;
    op->u.rw.off = off;
}

void mars_ev_prep_write(struct mars_ev_op *op, int fd, const void *buf, size_t len, uint64_t off,
                        mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_WRITE, fd, cb, data);
    op->u.rw.buf = (void *)buf; /* only read by the backend */
    op->u.rw.len = len;
    op->u.rw.off = off;
}

void mars_ev_prep_writev(struct mars_ev_op *op, int fd, const struct iovec *iov, int iovcnt,
                         uint64_t off, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_WRITEV, fd, cb, data);
    op->u.vec.iov = iov;
    op->u.vec.iovcnt = iovcnt;
    op->u.vec.off = off;
}

void mars_ev_prep_send(struct mars_ev_op *op, int fd, const void *buf, size_t len, mars_ev_cb cb,
                       void *data)
{
    prep(op, MARS_EV_SEND, fd, cb, data);
    op->u.rw.buf = (void *)buf; /* only read by the backend */
    op->u.rw.len = len;
}

void mars_ev_prep_sendmsg(struct mars_ev_op *op, int fd, const struct iovec *iov, int iovcnt,
                          mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_SENDMSG, fd, cb, data);
    op->u.vec.iov = iov;
    op->u.vec.iovcnt = iovcnt;
}

void mars_ev_prep_recv(struct mars_ev_op *op, int fd, void *buf, size_t len, mars_ev_cb cb,
                       void *data)
{
    prep(op, MARS_EV_RECV, fd, cb, data);
    op->u.rw.buf = buf;
    op->u.rw.len = len;
}

void mars_ev_prep_accept(struct mars_ev_op *op, int fd, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_ACCEPT, fd, cb, data);
}

void mars_ev_prep_accept_multishot(struct mars_ev_op *op, int fd, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_ACCEPT, fd, cb, data);
    op->opts = MARS_EV_F_MULTISHOT;
}

void mars_ev_prep_connect(struct mars_ev_op *op, int fd, const struct sockaddr *addr,
                          socklen_t addrlen, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_CONNECT, fd, cb, data);
    op->u.conn.addr = addr;
    op->u.conn.addrlen = addrlen;
}

void mars_ev_prep_timer(struct mars_ev_op *op, int64_t timeout_ns, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_TIMER, -1, cb, data);
    op->u.timer.timeout_ns = timeout_ns < 0 ? 0 : timeout_ns;
}

void mars_ev_prep_poll(struct mars_ev_op *op, int fd, short events, mars_ev_cb cb, void *data)
{
    prep(op, MARS_EV_POLL, fd, cb, data);
    op->u.poll.events = events;
}

/* ---- async ---------------------------------------------------------------------------- */

static void async_on_read(struct mars_ev_op *op, int res);

static int async_arm(struct mars_ev_async *a)
{
    int rc;

    mars_ev_prep_read(&a->op, a->efd, &a->buf, sizeof(a->buf), MARS_EV_CUR, async_on_read, a);
    rc = mars_ev_submit(a->loop, &a->op);
    a->armed = rc == 0;
    return rc;
}

static void async_on_read(struct mars_ev_op *op, int res)
{
    struct mars_ev_async *a = op->data;
    void (*cb)(struct mars_ev_async *) = a->cb;

    a->armed = false;
    /* cb == NULL: mars_ev_async_fini() is waiting for this op; do not re-arm. */
    if (cb == NULL || res == -ECANCELED)
        return;
    if (res < 0 && res != -EINTR && res != -EAGAIN)
        return; /* the eventfd is broken; re-arming would spin */
    /* Re-arm before the user's callback: a send during the callback is not lost, and the
     * callback may call mars_ev_async_fini() (and free `a`) as its last act. */
    async_arm(a);
    if (res > 0)
        cb(a);
}

int mars_ev_async_init(struct mars_ev_loop *loop, struct mars_ev_async *a,
                       void (*cb)(struct mars_ev_async *a), void *data)
{
    int rc;

    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->cb = cb;
    a->data = data;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0)
        return -errno;
    rc = async_arm(a);
    if (rc < 0) {
        close(a->efd);
        a->efd = -1;
    }
    return rc;
}

int mars_ev_async_send(struct mars_ev_async *a)
{
    uint64_t one = 1;
    ssize_t n;

    do
        n = write(a->efd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is at its maximum, so a wakeup is already pending. */
    if (n == (ssize_t)sizeof(one) || (n < 0 && errno == EAGAIN))
        return 0;
    return n < 0 ? -errno : -EIO;
}

void mars_ev_async_fini(struct mars_ev_async *a)
{
    if (a->efd < 0)
        return;
    a->cb = NULL;
    if (a->armed) {
        mars_ev_cancel(a->loop, &a->op);
        while (a->armed)
            mars_ev_run_once(a->loop, 10 * 1000 * 1000);
    }
    close(a->efd);
    a->efd = -1;
}
