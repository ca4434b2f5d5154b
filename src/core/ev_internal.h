/*
 * ev_internal.h - what ev.c shares with the event-loop backends (ev_libevent.c and
 * ev_uring.c). Nothing outside src/core/ev*.c includes this file.
 *
 * A backend is one const ops table. ev.c owns everything that is the same for every
 * backend: op validation, the in-flight flag and pending count, the done queue, callback
 * dispatch, stop, the cached clock and the async handle. A backend only turns ops into
 * completions: it starts an op in submit(), and whenever an op finishes (inside submit,
 * inside wait or inside cancel) it hands the result to mars_ev_complete(), which queues the
 * op on the loop's done queue. Callbacks run only from ev.c's dispatch of that queue, which
 * is how "a callback never runs inside mars_ev_submit()" holds for every backend.
 *
 * The io_uring backend fits the same table: submit() fills an SQE with user_data = op,
 * wait() flushes the SQ, waits for CQEs and calls mars_ev_complete() for each one (one
 * cq_advance per batch), cancel() queues an ASYNC_CANCEL whose own CQE it recognises and
 * ignores. Kernel-side copies (timespec for TIMEOUT, msghdr for SENDMSG) need storage only
 * until io_uring_submit() or until the CQE; op->bk is the backend's pointer for that.
 */
#ifndef MARS_EV_INTERNAL_H
#define MARS_EV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ev.h"

/*
 * Backend ops table. Every function runs on the loop's thread.
 *
 * probe   may this backend run here? 0, or a negative errno with a one-line reason in `why`.
 *         Called before any loop exists; must not leave anything behind.
 * init    sets up loop->bk (and may adjust loop->caps). 0 or a negative errno.
 * fini    frees loop->bk. Only called with no op in flight.
 * submit  starts an op that ev.c has validated and marked in flight. Returns 0 when the op
 *         is started or already completed (through mars_ev_complete()), or a negative errno
 *         when it could not be queued at all; then the op must not have been completed.
 *         A failing syscall is a completion (res = -errno), not a submit error.
 * cancel  asks for early completion of an in-flight op that is not yet on the done queue.
 *         The op must then complete (now or from a later wait) exactly once, with
 *         -ECANCELED or its real result. Returns 0, or -ENOENT if the backend does not
 *         know the op. ev.c never calls it twice for one op.
 * wait    waits at most timeout_ns (0 = do not block, <0 = until something happens) and
 *         completes whatever finished. May return early with nothing done. Returns 0 or a
 *         negative errno. When loop->depth > 1 (run_once nested inside a callback), a
 *         backend whose poller cannot nest returns 0 at once.
 * register_buffers  (may be NULL: -EOPNOTSUPP) takes the read region of
 *         mars_ev_register_buffers(); 0 or a negative errno. ev.c sets the cap bit on 0.
 *
 * Multishot (MARS_EV_F_MULTISHOT): a backend that does it natively sets
 * MARS_EV_OPF_NATIVE on the op in submit and reports each result with
 * mars_ev_complete_more(), the last one with mars_ev_complete(); cancel may then be called
 * while a result is queued. A backend that does not simply treats the op as single-shot:
 * ev.c re-submits it after each successful result (before its callback) and reports
 * more = true, so the emulation lives in one place.
 */
struct mars_ev_backend {
    const char *name;
    unsigned caps; /* MARS_EV_CAP_* this backend can have; init may clear some */
    int (*probe)(char *why, size_t whylen);
    int (*init)(struct mars_ev_loop *loop);
    void (*fini)(struct mars_ev_loop *loop);
    int (*submit)(struct mars_ev_loop *loop, struct mars_ev_op *op);
    int (*cancel)(struct mars_ev_loop *loop, struct mars_ev_op *op);
    int (*wait)(struct mars_ev_loop *loop, int64_t timeout_ns);
    int (*register_buffers)(struct mars_ev_loop *loop, void *base, size_t unit, unsigned count);
};

/* A multishot result that arrived while an earlier one of the same op was still queued.
 * Owned by the loop (recycled through loop->shot_free). */
struct mars_ev_shot {
    struct mars_ev_shot *next;
    int res;
};

/*
 * One loop. Owned by the thread that runs it; nothing here is touched from another thread
 * (mars_ev_async_send() only writes to an eventfd).
 */
struct mars_ev_loop {
    const struct mars_ev_backend *backend;
    void *bk;         /* backend private state, owned by the backend (init/fini) */
    unsigned caps;    /* live MARS_EV_CAP_* bits */
    unsigned pending; /* ops submitted whose callback has not started */
    unsigned depth;   /* run_once nesting: 1 inside a callback, 2 inside a nested run */
    bool stop;        /* set by mars_ev_stop(), cleared when mars_ev_run() returns */
    int64_t now;      /* CLOCK_MONOTONIC ns, refreshed after every wait */
    /* Ops whose result is known and whose callback is yet to run, in completion order,
     * linked through op->next_done. */
    struct mars_ev_op *done_head;
    struct mars_ev_op *done_tail;
    struct mars_ev_shot *shot_free; /* recycled multishot result records */
};

/*
 * op->flags. ev.c owns the low byte; a backend may use the bits from MARS_EV_OPF_BACKEND up.
 * Prep helpers zero flags; the callback starts with flags zero again.
 */
enum {
    MARS_EV_OPF_INFLIGHT = 1u << 0, /* submitted, callback not started */
    MARS_EV_OPF_DONE = 1u << 1,     /* result known, on the done queue */
    MARS_EV_OPF_CANCEL = 1u << 2,   /* cancel was requested */
    MARS_EV_OPF_NATIVE = 1u << 3,   /* multishot done by the backend (set in its submit) */
    MARS_EV_OPF_FINAL = 1u << 4,    /* multishot: op->final_result waits behind op->shots */
    MARS_EV_OPF_BACKEND = 1u << 8,  /* first backend-private bit */
};

/*
 * Records the result of an in-flight op and queues it for its callback. Called by backends
 * from submit, cancel or wait; never runs the callback itself. The op stays owned by the
 * loop until its callback starts.
 */
void mars_ev_complete(struct mars_ev_loop *loop, struct mars_ev_op *op, int res);
/* A native multishot op's result after which the op stays armed (op->more = true in its
 * callback). Results of one op reach its callback in the order they were reported. */
void mars_ev_complete_more(struct mars_ev_loop *loop, struct mars_ev_op *op, int res);

extern const struct mars_ev_backend mars_ev_backend_libevent;
#ifdef MARS_HAVE_URING
extern const struct mars_ev_backend mars_ev_backend_uring;
#endif

#endif
