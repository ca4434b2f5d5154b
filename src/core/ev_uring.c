/*
 * ev_uring.c - the io_uring ev backend (liburing): the kernel does the I/O, the loop only
 * hands it ops and collects completions.
 *
 * How it works: each loop owns one ring (256 SQEs, 1024 CQEs; 16/64 if locked memory is
 * short). submit() writes the op into one SQE with user_data = the op's address and leaves
 * it in the SQ; nothing enters the kernel until wait(), which flushes the whole SQ and waits
 * for completions in a single io_uring_enter (io_uring_submit_and_wait_timeout, bounded by
 * the caller's timeout and by one second), then hands every available CQE to
 * mars_ev_complete() and advances the CQ once per batch.
 * Ops map one to one: READ/WRITE/WRITEV (offset -1 is MARS_EV_CUR, the fd's position),
 * SEND (MSG_NOSIGNAL), SENDMSG, RECV, ACCEPT (SOCK_NONBLOCK|SOCK_CLOEXEC), CONNECT, TIMER as
 * IORING_OP_TIMEOUT (-ETIME is its normal end and becomes 0) and POLL as a one-shot
 * IORING_OP_POLL_ADD whose result is the revents mask.
 *
 * Ring setup (in ev_uring_probe.c, shared with the probe) tries
 * SINGLE_ISSUER|DEFER_TASKRUN (6.1+: completion work runs only when the loop's thread
 * enters the kernel, no interrupts of a busy thread), then COOP_TASKRUN (5.19+), then a
 * plain ring; a kernel that refuses a flag says EINVAL and the next step is
 * tried. A SINGLE_ISSUER ring is created disabled (R_DISABLED) and enabled by the first
 * thread that submits to it, so a loop may be created on one thread and run on another.
 *
 * Invariants:
 * - An op is in exactly one of three places until it completes: in the ring (UR_OPF_INRING,
 *   counted in ur.inring), in the overflow queue (UR_OPF_QUEUED), or on ev.c's done queue.
 * - Submission order is kept and no op is ever dropped: when the SQ is full, the op waits
 *   in a FIFO overflow queue, and while that queue is not empty every new SQE (ops and
 *   cancels alike) goes behind it. wait() moves the queue into the SQ, submitting to the
 *   kernel each time the SQ fills up, before it waits. submit() and cancel() never enter
 *   the kernel with SQEs (submit may register a read buffer, once per unit and ring).
 * - Memory the kernel reads (the TIMEOUT timespec, the SENDMSG msghdr) lives in a slot
 *   that op->bk points to from submit until the op's CQE. Slots come from blocks that are
 *   recycled through a free list, so steady-state I/O does not allocate.
 * - Cancel is IORING_OP_ASYNC_CANCEL keyed on the op's address, with user_data
 *   UR_UD_INTERNAL (an odd value no op can have) so its own CQE is recognised and ignored.
 *   The cancelled op completes once, from its own CQE: -ECANCELED, or its real result when
 *   it won the race. A cancel SQE always sits in the SQ before any later resubmission of
 *   the same op, so a stale cancel can never hit the op's next life. An op still in the
 *   overflow queue never reached the kernel and completes with -ECANCELED at once.
 * - -EAGAIN (a non-blocking fd the kernel would not poll for us, on older kernels) never
 *   reaches a caller: the op is replaced by a POLL_ADD for the readiness it needs
 *   (UR_OPF_POLLING, same user_data) and reissued when that fires. A CONNECT that reports
 *   EINPROGRESS the same way ends with SO_ERROR after POLLOUT.
 *
 * Threads: a ring serves one thread. SINGLE_ISSUER rings refuse any other thread (EEXIST),
 * and pending completion work of a thread that has gone is never run. So when a thread
 * that owns such a ring exits (a worker returning while its loop still has ops in flight,
 * for the control thread to tear down after pthread_join), a thread-exit hook cancels every
 * op in the ring and collects the CQEs on that thread, then closes the ring. Those ops'
 * callbacks (-ECANCELED, or their real results) run when the loop next runs, on whichever
 * thread adopts it; the next submit there sets up a fresh ring for that thread.
 *
 * Capabilities: MARS_EV_CAP_ASYNC_FILE_IO always; the others where the kernel has them
 * (opcode probe at loop creation; ev_uring_sqe.c picks each op's form):
 * - FIXED_BUFFERS once mars_ev_register_buffers() gave the loop a region: a READ inside one
 *   of its units is READ_FIXED. The ring holds a table with a slot per unit, filled (pinned)
 *   the first time a read lands in the unit (ev_uring_bufs.c); a ring re-created for a new
 *   thread starts with no table and registers again on its first such read. Refused pinning
 *   (RLIMIT_MEMLOCK) turns the bit off and reads go plain.
 * - SEND_ZC (6.0; SENDMSG_ZC 6.1) for sends of UR_ZC_MIN bytes and more: the kernel posts
 *   the result with IORING_CQE_F_MORE, then a NOTIF CQE once it no longer reads the buffer.
 *   The op stays in the ring (counted in ur.inring) between the two, its result parked in
 *   op->result; it completes once, at the notification, with the first result, so callers
 *   see an ordinary send whose callback comes later (for TCP, after the peer's ACK of the
 *   last byte rather than after the copy). A socket that answers EOPNOTSUPP (AF_UNIX), or
 *   whose notification reports that the kernel copied anyway (loopback, veth: 6.2+), sends
 *   the ordinary way from then on (bk->nozc).
 * - MULTISHOT: a MARS_EV_F_MULTISHOT accept is one IORING_ACCEPT_MULTISHOT request (5.19);
 *   each CQE with F_MORE is one connection (mars_ev_complete_more), the CQE without it ends
 *   the op. Without the feature ev.c re-arms single accepts. Receives stay single-shot:
 *   multishot RECV only works with provided buffer rings, where the kernel picks the buffer,
 *   and mars reads into chunks the reader picks (a line cut across reads continues in the
 *   same chunk); copying out of provided buffers would cost what multishot saves.
 *
 * Test hooks (core/testhook.h): uring_fail=enosys|eperm makes probe() fail as if
 * io_uring_setup had returned ENOSYS (old kernel) or EPERM (seccomp, sysctl
 * kernel.io_uring_disabled), so the fallback to libevent can be tested anywhere;
 * uring_fail=features hides the optional features above (plain reads, copying sends,
 * emulated multishot), as on a 5.x kernel.
 *
 * Thread: the loop's thread, except the exit hook (on the exiting owner thread).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <liburing.h>

#include "core/ev.h"
#include "core/ev_internal.h"
#include "core/ev_uring_internal.h"
#include "core/testhook.h"

/* Valgrind (3.19) cannot see the kernel fill read buffers behind io_uring's back, and it
 * keeps its one-thread-at-a-time lock while a thread sleeps in io_uring_enter, so no other
 * thread could wake the loop. Under it, read buffers are marked defined on completion, and
 * every wait is bounded by UR_VALGRIND_WAIT_NS and followed by sched_yield() (which valgrind
 * does treat as a switch point). Outside valgrind this costs nothing. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define UR_MARK_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define UR_UNDER_VALGRIND()   (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UR_MARK_DEFINED
#define UR_MARK_DEFINED(p, n) ((void)(p), (void)(n))
#define UR_UNDER_VALGRIND()   false
#endif
#define UR_VALGRIND_WAIT_NS (5 * 1000 * 1000LL)

#define UR_SQ_ENTRIES       256
#define UR_SQ_ENTRIES_SMALL 16
#define UR_SLOTS_PER_BLOCK  64
#define UR_REAP_ROUNDS      8
#define UR_MAX_WAIT_NS      (1000 * 1000 * 1000LL)     /* longest single wait */
#define UR_QUEUE_RETRY_NS   (1000 * 1000LL)            /* wait bound while work is queued */
#define UR_DETACH_NS        (5 * 1000 * 1000 * 1000LL) /* thread exit: give up after this */
#define UR_DETACH_STEP_NS   (10 * 1000 * 1000LL)

/* Slots come in blocks, recycled through bk->free_slots and freed with the loop. */
struct mars_ev_uring_block {
    struct mars_ev_uring_block *next;
    struct mars_ev_uring_slot slot[UR_SLOTS_PER_BLOCK];
};

/* ---- ring setup ----------------------------------------------------------------------- */

static int ur_ring_open(struct mars_ev_uring *bk)
{
    const struct mars_ev_uring_tier *tier = NULL;
    int rc = mars_ev_uring_setup(&bk->ring, UR_SQ_ENTRIES, &tier);

    /* Before Linux 5.12 ring memory counts against RLIMIT_MEMLOCK (often 64 KiB for all
     * rings of a user): a small ring still works, the overflow queue absorbs the rest. */
    if (rc == -ENOMEM)
        rc = mars_ev_uring_setup(&bk->ring, UR_SQ_ENTRIES_SMALL, &tier);
    if (rc < 0)
        return rc;
    bk->setup_flags = tier->flags;
    bk->has_ring = true;
    mars_ev_uring_fixed_reset(&bk->fixed); /* a new ring has no buffers registered */
    bk->enabled = !(tier->flags & IORING_SETUP_R_DISABLED);
    return 0;
}

/* ---- owner thread and its exit -------------------------------------------------------- */

static pthread_mutex_t ur_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mars_ev_uring *ur_registry; /* SINGLE_ISSUER rings with a live owner thread */
static pthread_once_t ur_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ur_key;
static int ur_key_rc;
static char ur_key_mark; /* any non-NULL value makes the key's destructor run */

static void ur_thread_exit(void *arg);

static void ur_key_create(void)
{
    ur_key_rc = pthread_key_create(&ur_key, ur_thread_exit);
}

static void ur_unregister(struct mars_ev_uring *bk)
{
    pthread_mutex_lock(&ur_registry_lock);
    if (bk->registered) {
        for (struct mars_ev_uring **pp = &ur_registry; *pp != NULL; pp = &(*pp)->reg_next) {
            if (*pp == bk) {
                *pp = bk->reg_next;
                break;
            }
        }
        bk->registered = false;
        bk->reg_next = NULL;
    }
    pthread_mutex_unlock(&ur_registry_lock);
}

/* First use on this thread: enable a disabled ring (binding it to the thread) and arm the
 * thread-exit hook. */
static int ur_bind(struct mars_ev_uring *bk)
{
    if (bk->setup_flags & IORING_SETUP_R_DISABLED) {
        /* liburing 2.3 declares io_uring_enable_rings() but does not export it. */
        if (syscall(__NR_io_uring_register, bk->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL,
                    0) < 0)
            return -errno;
    }
    bk->enabled = true;
    if (!(bk->setup_flags & IORING_SETUP_SINGLE_ISSUER))
        return 0; /* any thread may enter this ring: nothing to do at thread exit */
    pthread_once(&ur_key_once, ur_key_create);
    if (ur_key_rc != 0 || pthread_setspecific(ur_key, &ur_key_mark) != 0)
        return 0; /* no hook: a loop left behind by an exiting thread cannot be drained */
    pthread_mutex_lock(&ur_registry_lock);
    bk->owner = pthread_self();
    bk->registered = true;
    bk->reg_next = ur_registry;
    ur_registry = bk;
    pthread_mutex_unlock(&ur_registry_lock);
    return 0;
}

/* The ring exists and this thread may submit to it (or the thread is the wrong one and the
 * kernel will say EEXIST: a caller bug, reported by wait()). */
static int ur_ready(struct mars_ev_uring *bk)
{
    int rc;

    if (!bk->has_ring) {
        rc = ur_ring_open(bk);
        if (rc < 0)
            return rc;
    }
    return bk->enabled ? 0 : ur_bind(bk);
}

/* ---- slots ---------------------------------------------------------------------------- */

static struct mars_ev_uring_slot *slot_get(struct mars_ev_uring *bk)
{
    struct mars_ev_uring_slot *s = bk->free_slots;

    if (s == NULL) {
        struct mars_ev_uring_block *b = malloc(sizeof(*b));

        if (b == NULL)
            return NULL;
        b->next = bk->blocks;
        bk->blocks = b;
        for (size_t i = UR_SLOTS_PER_BLOCK - 1; i > 0; i--) {
            b->slot[i].next = bk->free_slots;
            bk->free_slots = &b->slot[i];
        }
        s = &b->slot[0];
    } else {
        bk->free_slots = s->next;
    }
    s->next = NULL;
    s->op = NULL;
    s->is_cancel = false;
    return s;
}

static void slot_put(struct mars_ev_uring *bk, struct mars_ev_uring_slot *s)
{
    s->next = bk->free_slots;
    bk->free_slots = s;
}

/* A free SQE, flushing a full SQ to the kernel once; NULL when it stays full. */
static struct io_uring_sqe *ur_get_sqe(struct mars_ev_uring *bk)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&bk->ring);

    if (sqe == NULL && io_uring_submit(&bk->ring) >= 0)
        sqe = io_uring_get_sqe(&bk->ring);
    return sqe;
}

static void q_push(struct mars_ev_uring *bk, struct mars_ev_uring_slot *s)
{
    s->next = NULL;
    if (bk->q_tail != NULL)
        bk->q_tail->next = s;
    else
        bk->q_head = s;
    bk->q_tail = s;
}

/* Puts the op into the SQ, or at the end of the overflow queue when the SQ is full (wait()
 * moves the queue in). Never enters the kernel. 0 or -ENOMEM. */
static int ur_start(struct mars_ev_uring *bk, struct mars_ev_op *op)
{
    struct io_uring_sqe *sqe = bk->q_head == NULL ? io_uring_get_sqe(&bk->ring) : NULL;
    struct mars_ev_uring_slot *s = op->bk;

    if (sqe != NULL) {
        mars_ev_uring_prep_sqe(bk, sqe, op);
        op->flags |= UR_OPF_INRING;
        bk->inring++;
        return 0;
    }
    if (s == NULL) {
        s = slot_get(bk);
        if (s == NULL)
            return -ENOMEM;
        s->op = op;
        op->bk = s;
    }
    q_push(bk, s);
    op->flags |= UR_OPF_QUEUED;
    return 0;
}

/* Moves the overflow queue into the SQ, in order, as far as SQEs can be had. */
static void ur_flush_queue(struct mars_ev_uring *bk)
{
    while (bk->q_head != NULL) {
        struct mars_ev_uring_slot *s = bk->q_head;
        struct io_uring_sqe *sqe = ur_get_sqe(bk);
        struct mars_ev_op *op = s->op;

        if (sqe == NULL)
            return;
        bk->q_head = s->next;
        if (bk->q_head == NULL)
            bk->q_tail = NULL;
        if (s->is_cancel) {
            mars_ev_uring_prep_cancel(sqe, op);
            slot_put(bk, s);
            continue;
        }
        op->flags &= ~UR_OPF_QUEUED;
        if (!mars_ev_uring_needs_storage(op)) {
            op->bk = NULL;
            slot_put(bk, s);
        }
        mars_ev_uring_prep_sqe(bk, sqe, op);
        op->flags |= UR_OPF_INRING;
        bk->inring++;
    }
}

static void q_unlink(struct mars_ev_uring *bk, struct mars_ev_uring_slot *s)
{
    struct mars_ev_uring_slot *prev = NULL;

    for (struct mars_ev_uring_slot *it = bk->q_head; it != NULL; prev = it, it = it->next) {
        if (it != s)
            continue;
        if (prev != NULL)
            prev->next = s->next;
        else
            bk->q_head = s->next;
        if (bk->q_tail == s)
            bk->q_tail = prev;
        s->next = NULL;
        return;
    }
}

/* ---- completions ---------------------------------------------------------------------- */

static void ur_finish(struct mars_ev_uring *bk, struct mars_ev_op *op, int res)
{
    struct mars_ev_uring_slot *s = op->bk;

    if (s != NULL) {
        op->bk = NULL;
        slot_put(bk, s);
    }
    op->flags &= ~(unsigned)(UR_OPF_INRING | UR_OPF_QUEUED | UR_OPF_POLLING | UR_OPF_ZC_SENT);
    mars_ev_complete(bk->loop, op, res);
}

static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* Results that mean "not ready yet" rather than an outcome. */
static bool wants_retry(const struct mars_ev_op *op, int res)
{
    switch (op->type) {
    case MARS_EV_TIMER:
    case MARS_EV_POLL:
        return false;
    case MARS_EV_CONNECT:
        return res == -EINPROGRESS || res == -EALREADY || res == -EAGAIN;
    default:
        return res == -EAGAIN;
    }
}

static void ur_restart(struct mars_ev_uring *bk, struct mars_ev_op *op)
{
    if (ur_start(bk, op) < 0)
        ur_finish(bk, op, -ENOMEM);
}

/* A CQE that does not end the op's request: a zero-copy send's result (its notification
 * follows) or one connection of a multishot accept. True when it was one. */
static bool ur_on_partial_cqe(struct mars_ev_uring *bk, struct mars_ev_op *op, int res,
                              unsigned cflags)
{
    if (!(cflags & IORING_CQE_F_MORE) || (op->flags & UR_OPF_POLLING))
        return false;
    if (op->flags & UR_OPF_ZC) {
        op->result = res; /* reported once the kernel is done with the buffer */
        op->flags |= UR_OPF_ZC_SENT;
        return true;
    }
    if (op->flags & UR_OPF_MS) {
        mars_ev_complete_more(bk->loop, op, res);
        return true;
    }
    return false;
}

/* A zero-copy send that the kernel refused as such: true when it is to be sent again,
 * without the usage report (EINVAL: a 6.0/6.1 kernel) or without zero-copy (EOPNOTSUPP:
 * AF_UNIX, remembered for the socket). */
static bool zc_refused(struct mars_ev_uring *bk, struct mars_ev_op *op, int res)
{
    if (res == -EINVAL && (op->flags & UR_OPF_ZC_REPORT)) {
        bk->features &= ~(unsigned)MARS_EV_URING_ZC_REPORT;
        op->flags &= ~(unsigned)UR_OPF_ZC_REPORT;
        return true;
    }
    if (res != -EOPNOTSUPP)
        return false;
    bk->nozc[(unsigned)op->fd % UR_NOZC_SLOTS] = op->fd + 1;
    op->flags &= ~(unsigned)(UR_OPF_ZC | UR_OPF_ZC_REPORT);
    return true;
}

/* One CQE of an op: its result, or a step of the EAGAIN fallback. */
static void ur_on_cqe(struct mars_ev_uring *bk, struct mars_ev_op *op, int res, unsigned cflags)
{
    /* A cancel that found nothing (the op was between its EAGAIN and the stand-in poll)
     * must still end the op. */
    bool ending = (op->flags & MARS_EV_OPF_CANCEL) || bk->detaching;

    if (ur_on_partial_cqe(bk, op, res, cflags))
        return;
    if ((op->flags & UR_OPF_ZC_SENT) && (cflags & IORING_CQE_F_NOTIF)) {
        /* The copy report: zero-copy that is copied anyway only adds the wait for the
         * notification; this socket sends the ordinary way from now on. */
        if ((unsigned)res & IORING_NOTIF_USAGE_ZC_COPIED)
            bk->nozc[(unsigned)op->fd % UR_NOZC_SLOTS] = op->fd + 1;
        res = op->result; /* the buffer is free: now the send's result counts */
        op->flags &= ~(unsigned)UR_OPF_ZC_SENT;
    }
    op->flags &= ~(unsigned)UR_OPF_INRING;
    bk->inring--;
    if ((op->flags & UR_OPF_ZC) && !ending && zc_refused(bk, op, res)) {
        ur_restart(bk, op);
        return;
    }
    if (op->flags & UR_OPF_POLLING) {
        op->flags &= ~(unsigned)UR_OPF_POLLING;
        if (res >= 0 && op->type == MARS_EV_CONNECT)
            res = connect_result(op->fd);
        else if (res >= 0 && ending)
            res = -ECANCELED;
        else if (res >= 0) {
            ur_restart(bk, op);
            return;
        }
        ur_finish(bk, op, res);
        return;
    }
    if (wants_retry(op, res)) {
        if (ending) {
            ur_finish(bk, op, -ECANCELED);
            return;
        }
        op->flags |= UR_OPF_POLLING;
        ur_restart(bk, op);
        return;
    }
    if (op->type == MARS_EV_TIMER && res == -ETIME)
        res = 0; /* the timeout expired: the timer's normal end */
    if (res > 0 && (op->type == MARS_EV_READ || op->type == MARS_EV_RECV))
        UR_MARK_DEFINED(op->u.rw.buf, (size_t)res);
    ur_finish(bk, op, res);
}

/* Hands every available CQE to its op, one CQ advance per batch; pulls in completions the
 * kernel kept aside when the CQ was full. */
static void ur_reap(struct mars_ev_uring *bk)
{
    for (int round = 0; round < UR_REAP_ROUNDS; round++) {
        unsigned ready = io_uring_cq_ready(&bk->ring), seen = 0, head;
        struct io_uring_cqe *cqe;

        if (ready == 0) {
            if (!io_uring_cq_has_overflow(&bk->ring) || io_uring_get_events(&bk->ring) < 0)
                return;
            continue;
        }
        io_uring_for_each_cqe(&bk->ring, head, cqe)
        {
            uint64_t ud;

            if (seen == ready)
                break;
            seen++;
            ud = cqe->user_data;
            if (ud != UR_UD_INTERNAL && ud != LIBURING_UDATA_TIMEOUT)
                ur_on_cqe(bk, (struct mars_ev_op *)(uintptr_t)ud, cqe->res, cqe->flags);
        }
        io_uring_cq_advance(&bk->ring, seen);
    }
}

/* ---- ops table ------------------------------------------------------------------------ */

static int ur_submit(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    struct mars_ev_uring *bk = loop->bk;
    struct mars_ev_uring_slot *s = NULL;
    int rc = ur_ready(bk);

    if (rc < 0)
        return rc;
    mars_ev_uring_choose_form(bk, op);
    if (mars_ev_uring_needs_storage(op)) {
        s = slot_get(bk);
        if (s == NULL)
            return -ENOMEM;
        s->op = op;
        mars_ev_uring_fill_storage(s, op);
        op->bk = s;
    }
    rc = ur_start(bk, op); /* cannot fail when the op already has a slot */
    if (rc < 0 && s != NULL) {
        op->bk = NULL;
        slot_put(bk, s);
    }
    return rc;
}

static int ur_cancel(struct mars_ev_loop *loop, struct mars_ev_op *op)
{
    struct mars_ev_uring *bk = loop->bk;
    struct io_uring_sqe *sqe;
    struct mars_ev_uring_slot *s;

    if (op->flags & UR_OPF_QUEUED) {
        q_unlink(bk, op->bk);
        ur_finish(bk, op, -ECANCELED); /* it never reached the kernel */
        return 0;
    }
    if (!(op->flags & UR_OPF_INRING))
        return -ENOENT;
    sqe = bk->q_head == NULL ? io_uring_get_sqe(&bk->ring) : NULL;
    if (sqe != NULL) {
        mars_ev_uring_prep_cancel(sqe, op);
        return 0;
    }
    s = slot_get(bk);
    if (s == NULL)
        return -ENOMEM; /* the op still completes, with its real result */
    s->is_cancel = true;
    s->op = op;
    q_push(bk, s);
    return 0;
}

static int ur_wait(struct mars_ev_loop *loop, int64_t timeout_ns)
{
    struct mars_ev_uring *bk = loop->bk;
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    int rc;

    if (!bk->has_ring || !bk->enabled)
        return 0; /* nothing was submitted to this ring: nothing can complete */
    ur_flush_queue(bk);
    /* The kernel knows nothing of queued work: come back soon to move it into the SQ. */
    if (bk->q_head != NULL && (timeout_ns < 0 || timeout_ns > UR_QUEUE_RETRY_NS))
        timeout_ns = UR_QUEUE_RETRY_NS;
    if (bk->max_wait_ns > 0 && (timeout_ns < 0 || timeout_ns > bk->max_wait_ns))
        timeout_ns = bk->max_wait_ns;
    /* "Forever" is a long bounded wait: a wakeup lost to some kernel corner costs a second,
     * not a hang; ev.c's callers loop anyway. */
    if (timeout_ns < 0 || timeout_ns > UR_MAX_WAIT_NS)
        timeout_ns = UR_MAX_WAIT_NS;
    if (timeout_ns == 0 || (bk->inring == 0 && bk->q_head == NULL)) {
        rc = io_uring_submit_and_get_events(&bk->ring);
    } else {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        rc = io_uring_submit_and_wait_timeout(&bk->ring, &cqe, 1, &ts, NULL);
    }
    if (bk->max_wait_ns > 0)
        sched_yield();
    ur_reap(bk);
    /* ETIME: the wait timed out; EINTR: a signal; EAGAIN/EBUSY: the kernel is short of
     * memory or CQ space right now. All mean "try again". */
    if (rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
        return 0;
    return rc;
}

/* The owner thread is exiting: end every op (in the kernel: by cancel, collecting the CQEs
 * here; queued: at once), then close the ring while this thread still may. */
static void ur_detach(struct mars_ev_uring *bk)
{
    int64_t deadline = mars_ev_clock_ns() + UR_DETACH_NS;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = UR_DETACH_STEP_NS};
    struct io_uring_cqe *cqe;
    struct mars_ev_uring_slot *s;

    bk->detaching = true;
    while ((s = bk->q_head) != NULL) {
        bk->q_head = s->next;
        if (s->is_cancel) {
            slot_put(bk, s);
            continue;
        }
        ur_finish(bk, s->op, -ECANCELED); /* also returns the slot */
    }
    bk->q_tail = NULL;
    while (bk->inring > 0 && mars_ev_clock_ns() < deadline) {
        struct io_uring_sqe *sqe = ur_get_sqe(bk);

        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, UR_UD_INTERNAL);
        }
        io_uring_submit_and_wait_timeout(&bk->ring, &cqe, 1, &ts, NULL);
        ur_reap(bk);
    }
    bk->detaching = false;
    /* Ops the kernel would not give back in time keep the ring (and their buffers) alive:
     * reporting them done while the kernel may still write would be worse. */
    if (bk->inring == 0) {
        io_uring_queue_exit(&bk->ring);
        bk->has_ring = false;
        bk->enabled = false;
    }
}

static void ur_thread_exit(void *arg)
{
    pthread_t self = pthread_self();
    struct mars_ev_uring *mine = NULL;

    (void)arg;
    pthread_mutex_lock(&ur_registry_lock);
    for (struct mars_ev_uring **pp = &ur_registry; *pp != NULL;) {
        struct mars_ev_uring *bk = *pp;

        if (!pthread_equal(bk->owner, self)) {
            pp = &bk->reg_next;
            continue;
        }
        *pp = bk->reg_next;
        bk->registered = false;
        bk->reg_next = mine;
        mine = bk;
    }
    pthread_mutex_unlock(&ur_registry_lock);
    while (mine != NULL) {
        struct mars_ev_uring *next = mine->reg_next;

        mine->reg_next = NULL;
        ur_detach(mine);
        mine = next;
    }
}

/* The ring's optional features. Test hook uring_fail=features hides them all
 * (as on a 5.x kernel: no zero-copy send, no multishot accept, no registered buffer
 * table), so the fallbacks run on any kernel. */
static unsigned ur_features(struct io_uring *ring)
{
    const char *fail = mars_test_hook("uring_fail");

    if (fail != NULL && strcmp(fail, "features") == 0)
        return 0;
    return mars_ev_uring_features(ring);
}

static int ur_init(struct mars_ev_loop *loop)
{
    struct mars_ev_uring *bk = calloc(1, sizeof(*bk));
    int rc;

    if (bk == NULL)
        return -ENOMEM;
    bk->loop = loop;
    bk->max_wait_ns = UR_UNDER_VALGRIND() ? UR_VALGRIND_WAIT_NS : 0;
    rc = ur_ring_open(bk);
    if (rc < 0) {
        free(bk);
        return rc;
    }
    bk->features = ur_features(&bk->ring);
    if (bk->features & (MARS_EV_URING_SEND_ZC | MARS_EV_URING_SENDMSG_ZC))
        loop->caps |= MARS_EV_CAP_SEND_ZC;
    if (bk->features & MARS_EV_URING_MS_ACCEPT)
        loop->caps |= MARS_EV_CAP_MULTISHOT;
    loop->bk = bk;
    return 0;
}

/* The ring exists (it is only closed by a thread exit, and reopened by the next submit)
 * unless that happened; registration then waits for the next ring. */
static int ur_register_buffers(struct mars_ev_loop *loop, void *base, size_t unit, unsigned count)
{
    struct mars_ev_uring *bk = loop->bk;

    if (!(bk->features & MARS_EV_URING_BUF_TABLE))
        return -EOPNOTSUPP;
    return mars_ev_uring_fixed_set(&bk->fixed, bk->has_ring ? &bk->ring : NULL, base, unit, count);
}

static void ur_fini(struct mars_ev_loop *loop)
{
    struct mars_ev_uring *bk = loop->bk;

    ur_unregister(bk);
    if (bk->has_ring)
        io_uring_queue_exit(&bk->ring);
    mars_ev_uring_fixed_fini(&bk->fixed);
    while (bk->blocks != NULL) {
        struct mars_ev_uring_block *b = bk->blocks;

        bk->blocks = b->next;
        free(b);
    }
    free(bk);
    loop->bk = NULL;
}

const struct mars_ev_backend mars_ev_backend_uring = {
    .name = "io_uring",
    .caps = MARS_EV_CAP_ASYNC_FILE_IO,
    .probe = mars_ev_uring_probe,
    .init = ur_init,
    .fini = ur_fini,
    .submit = ur_submit,
    .cancel = ur_cancel,
    .wait = ur_wait,
    .register_buffers = ur_register_buffers,
};
