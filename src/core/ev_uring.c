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
 *   the kernel.
 * - Memory the kernel reads (the TIMEOUT timespec, the SENDMSG msghdr) lives in a ur_slot
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
 * Capabilities: MARS_EV_CAP_ASYNC_FILE_IO. Not FIXED_BUFFERS, SEND_ZC or MULTISHOT: each
 * needs more from ev.h than one op / one callback (registered buffer indices; a callback
 * that would otherwise wait for the peer's ACK before the buffer is free; many results).
 *
 * Test hook (test-only, not configuration): env MARS_EV_URING_FAIL=enosys|eperm makes
 * probe() fail as if io_uring_setup had returned ENOSYS (old kernel) or EPERM (seccomp,
 * sysctl kernel.io_uring_disabled), so the fallback to libevent can be tested anywhere.
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
#define UR_MAX_IO           0x7ffff000u   /* Linux's most bytes per read/write call */
#define UR_UD_INTERNAL      ((uint64_t)1) /* our cancel SQEs; ops are aligned, never odd */
#define UR_REAP_ROUNDS      8
#define UR_MAX_WAIT_NS      (1000 * 1000 * 1000LL)     /* longest single wait */
#define UR_QUEUE_RETRY_NS   (1000 * 1000LL)            /* wait bound while work is queued */
#define UR_DETACH_NS        (5 * 1000 * 1000 * 1000LL) /* thread exit: give up after this */
#define UR_DETACH_STEP_NS   (10 * 1000 * 1000LL)
/* Smallest SEND/SENDMSG sent zero-copy. Below a few pages, pinning the pages and the extra
 * notification CQE cost more than the copy they save (the kernel's MSG_ZEROCOPY guidance
 * and liburing's send-zc benchmark put the break-even around 4-16 KiB); 16 KiB is past it
 * on every machine measured there, and mars's requests (whole batches) are well above it. */
#define UR_ZC_MIN           (16u << 10)
/* SENDMSG: least mean bytes per iovec for zero-copy; each segment becomes at least one
 * pinned page fragment, and tiny fragments make tiny packets. */
#define UR_ZC_MIN_SEGMENT   4096u
/* Sockets that refused zero-copy (AF_UNIX has none: EOPNOTSUPP), by fd, direct-mapped. A
 * stale entry (the fd number reused) only costs that socket zero-copy. */
#define UR_NOZC_SLOTS       64

/* op->flags bits of this backend. */
enum {
    UR_OPF_INRING = MARS_EV_OPF_BACKEND << 0,  /* a request for the op is in the ring */
    UR_OPF_QUEUED = MARS_EV_OPF_BACKEND << 1,  /* waiting in the overflow queue */
    UR_OPF_POLLING = MARS_EV_OPF_BACKEND << 2, /* the request is a POLL_ADD standing in */
    UR_OPF_FIXED = MARS_EV_OPF_BACKEND << 3,   /* READ as READ_FIXED (registered buffer) */
    UR_OPF_ZC = MARS_EV_OPF_BACKEND << 4,      /* SEND/SENDMSG zero-copy: result, then NOTIF */
    UR_OPF_ZC_SENT = MARS_EV_OPF_BACKEND << 5, /* its result CQE came; op->result holds it */
    UR_OPF_MS = MARS_EV_OPF_BACKEND << 6,      /* ACCEPT as native multishot */
};

/* Per-op storage the kernel reads, and the node of the overflow queue. Owned by the
 * backend; lent to one op through op->bk until the op completes. */
struct ur_slot {
    struct ur_slot *next;  /* free list or overflow queue */
    struct mars_ev_op *op; /* owner; for a deferred cancel its target, never dereferenced */
    bool is_cancel;
    union {
        struct __kernel_timespec ts; /* TIMER */
        struct msghdr mh;            /* SENDMSG */
    } k;
};

struct ur_block {
    struct ur_block *next;
    struct ur_slot slot[UR_SLOTS_PER_BLOCK];
};

struct ur {
    struct io_uring ring;
    struct mars_ev_loop *loop;
    unsigned setup_flags; /* IORING_SETUP_* of the live ring */
    bool has_ring;        /* false after the owner thread exited, until the next submit */
    bool enabled;         /* R_DISABLED ring enabled by its thread */
    bool registered;      /* on ur_registry with `owner` */
    bool detaching;       /* owner thread exiting: no reissue, everything ends */
    unsigned features;    /* MARS_EV_URING_* of this kernel */
    int nozc[UR_NOZC_SLOTS]; /* fd + 1 of sockets without zero-copy, 0 = free */
    int64_t max_wait_ns;  /* > 0: bound on every wait (under valgrind) */
    pthread_t owner;
    unsigned inring;
    struct ur_slot *q_head, *q_tail;
    struct ur_slot *free_slots;
    struct ur_block *blocks;
    struct ur *reg_next;
    struct mars_ev_uring_fixed fixed; /* registered read region, if any */
};

/* ---- ring setup ----------------------------------------------------------------------- */

static int ur_ring_open(struct ur *bk)
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
static struct ur *ur_registry; /* SINGLE_ISSUER rings with a live owner thread */
static pthread_once_t ur_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ur_key;
static int ur_key_rc;
static char ur_key_mark; /* any non-NULL value makes the key's destructor run */

static void ur_thread_exit(void *arg);

static void ur_key_create(void)
{
    ur_key_rc = pthread_key_create(&ur_key, ur_thread_exit);
}

static void ur_unregister(struct ur *bk)
{
    pthread_mutex_lock(&ur_registry_lock);
    if (bk->registered) {
        for (struct ur **pp = &ur_registry; *pp != NULL; pp = &(*pp)->reg_next) {
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
static int ur_bind(struct ur *bk)
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
static int ur_ready(struct ur *bk)
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

static struct ur_slot *slot_get(struct ur *bk)
{
    struct ur_slot *s = bk->free_slots;

    if (s == NULL) {
        struct ur_block *b = malloc(sizeof(*b));

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

static void slot_put(struct ur *bk, struct ur_slot *s)
{
    s->next = bk->free_slots;
    bk->free_slots = s;
}

static bool needs_storage(const struct mars_ev_op *op)
{
    return op->type == MARS_EV_TIMER || op->type == MARS_EV_SENDMSG;
}

static void fill_storage(struct ur_slot *s, const struct mars_ev_op *op)
{
    if (op->type == MARS_EV_TIMER) {
        s->k.ts.tv_sec = op->u.timer.timeout_ns / 1000000000LL;
        s->k.ts.tv_nsec = op->u.timer.timeout_ns % 1000000000LL;
    } else {
        memset(&s->k.mh, 0, sizeof(s->k.mh));
        s->k.mh.msg_iov = (struct iovec *)op->u.vec.iov; /* the kernel only reads it */
        s->k.mh.msg_iovlen = (size_t)op->u.vec.iovcnt;
    }
}

/* ---- SQEs ----------------------------------------------------------------------------- */

static unsigned io_len(size_t len)
{
    return len > UR_MAX_IO ? UR_MAX_IO : (unsigned)len;
}

/* The registered buffer a READ with UR_OPF_FIXED reads into (its unit is pinned). */
static unsigned fixed_index(const struct ur *bk, const struct mars_ev_op *op)
{
    return (unsigned)(((uintptr_t)op->u.rw.buf - (uintptr_t)bk->fixed.base) / bk->fixed.unit);
}

/* Worth sending zero-copy? (SENDMSG: the iovec walk costs far less than the syscall.) */
static bool zc_worth(const struct ur *bk, const struct mars_ev_op *op)
{
    size_t total = 0;

    if (bk->nozc[(unsigned)op->fd % UR_NOZC_SLOTS] == op->fd + 1)
        return false;
    if (op->type == MARS_EV_SEND)
        return (bk->features & MARS_EV_URING_SEND_ZC) && op->u.rw.len >= UR_ZC_MIN;
    if (!(bk->features & MARS_EV_URING_SENDMSG_ZC) || op->u.vec.iovcnt <= 0)
        return false;
    for (int i = 0; i < op->u.vec.iovcnt; i++)
        total += op->u.vec.iov[i].iov_len;
    return total >= UR_ZC_MIN && total / (size_t)op->u.vec.iovcnt >= UR_ZC_MIN_SEGMENT;
}

/* Picks the op's io_uring form: fixed read, zero-copy send, native multishot accept.
 * Runs on the owner thread with the ring ready (a fixed read may register its unit). */
static void choose_form(struct ur *bk, struct mars_ev_op *op)
{
    switch (op->type) {
    case MARS_EV_READ:
        if (mars_ev_uring_fixed_index(&bk->fixed, &bk->ring, op->u.rw.buf, io_len(op->u.rw.len)) >=
            0)
            op->flags |= UR_OPF_FIXED;
        else if (bk->fixed.off)
            bk->loop->caps &= ~(unsigned)MARS_EV_CAP_FIXED_BUFFERS;
        break;
    case MARS_EV_SEND:
    case MARS_EV_SENDMSG:
        if (zc_worth(bk, op))
            op->flags |= UR_OPF_ZC;
        break;
    case MARS_EV_ACCEPT:
        if ((op->opts & MARS_EV_F_MULTISHOT) && (bk->features & MARS_EV_URING_MS_ACCEPT))
            op->flags |= UR_OPF_MS | MARS_EV_OPF_NATIVE;
        break;
    default:
        break;
    }
}

/* Readiness that lets an op that said EAGAIN make progress. */
static unsigned standin_events(const struct mars_ev_op *op)
{
    switch (op->type) {
    case MARS_EV_READ:
    case MARS_EV_RECV:
    case MARS_EV_ACCEPT:
        return POLLIN;
    default:
        return POLLOUT;
    }
}

static void prep_sqe(struct ur *bk, struct io_uring_sqe *sqe, struct mars_ev_op *op)
{
    struct ur_slot *s = op->bk;

    if (op->flags & UR_OPF_POLLING) {
        io_uring_prep_poll_add(sqe, op->fd, standin_events(op));
        io_uring_sqe_set_data(sqe, op);
        return;
    }
    switch (op->type) {
    case MARS_EV_READ:
        if (op->flags & UR_OPF_FIXED)
            io_uring_prep_read_fixed(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), op->u.rw.off,
                                     fixed_index(bk, op));
        else
            io_uring_prep_read(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), op->u.rw.off);
        break;
    case MARS_EV_WRITE:
        io_uring_prep_write(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), op->u.rw.off);
        break;
    case MARS_EV_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->u.vec.iov, (unsigned)op->u.vec.iovcnt, op->u.vec.off);
        break;
    case MARS_EV_SEND:
        if (op->flags & UR_OPF_ZC)
            io_uring_prep_send_zc(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), MSG_NOSIGNAL,
                                  0);
        else
            io_uring_prep_send(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), MSG_NOSIGNAL);
        break;
    case MARS_EV_SENDMSG:
        if (op->flags & UR_OPF_ZC)
            io_uring_prep_sendmsg_zc(sqe, op->fd, &s->k.mh, MSG_NOSIGNAL);
        else
            io_uring_prep_sendmsg(sqe, op->fd, &s->k.mh, MSG_NOSIGNAL);
        break;
    case MARS_EV_RECV:
        io_uring_prep_recv(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), 0);
        break;
    case MARS_EV_ACCEPT:
        if (op->flags & UR_OPF_MS)
            io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else
            io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case MARS_EV_CONNECT:
        io_uring_prep_connect(sqe, op->fd, op->u.conn.addr, op->u.conn.addrlen);
        break;
    case MARS_EV_TIMER:
        io_uring_prep_timeout(sqe, &s->k.ts, 0, 0);
        break;
    case MARS_EV_POLL:
        io_uring_prep_poll_add(sqe, op->fd, (unsigned short)op->u.poll.events);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
}

static void prep_cancel(struct io_uring_sqe *sqe, const struct mars_ev_op *target)
{
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)target, 0);
    io_uring_sqe_set_data64(sqe, UR_UD_INTERNAL);
}

/* A free SQE, flushing a full SQ to the kernel once; NULL when it stays full. */
static struct io_uring_sqe *ur_get_sqe(struct ur *bk)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&bk->ring);

    if (sqe == NULL && io_uring_submit(&bk->ring) >= 0)
        sqe = io_uring_get_sqe(&bk->ring);
    return sqe;
}

static void q_push(struct ur *bk, struct ur_slot *s)
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
static int ur_start(struct ur *bk, struct mars_ev_op *op)
{
    struct io_uring_sqe *sqe = bk->q_head == NULL ? io_uring_get_sqe(&bk->ring) : NULL;
    struct ur_slot *s = op->bk;

    if (sqe != NULL) {
        prep_sqe(bk, sqe, op);
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
static void ur_flush_queue(struct ur *bk)
{
    while (bk->q_head != NULL) {
        struct ur_slot *s = bk->q_head;
        struct io_uring_sqe *sqe = ur_get_sqe(bk);
        struct mars_ev_op *op = s->op;

        if (sqe == NULL)
            return;
        bk->q_head = s->next;
        if (bk->q_head == NULL)
            bk->q_tail = NULL;
        if (s->is_cancel) {
            prep_cancel(sqe, op);
            slot_put(bk, s);
            continue;
        }
        op->flags &= ~UR_OPF_QUEUED;
        if (!needs_storage(op)) {
            op->bk = NULL;
            slot_put(bk, s);
        }
        prep_sqe(bk, sqe, op);
        op->flags |= UR_OPF_INRING;
        bk->inring++;
    }
}

static void q_unlink(struct ur *bk, struct ur_slot *s)
{
    struct ur_slot *prev = NULL;

    for (struct ur_slot *it = bk->q_head; it != NULL; prev = it, it = it->next) {
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

static void ur_finish(struct ur *bk, struct mars_ev_op *op, int res)
{
    struct ur_slot *s = op->bk;

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

static void ur_restart(struct ur *bk, struct mars_ev_op *op)
{
    if (ur_start(bk, op) < 0)
        ur_finish(bk, op, -ENOMEM);
}

/* A CQE that does not end the op's request: a zero-copy send's result (its notification
 * follows) or one connection of a multishot accept. True when it was one. */
static bool ur_on_partial_cqe(struct ur *bk, struct mars_ev_op *op, int res, unsigned cflags)
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

/* One CQE of an op: its result, or a step of the EAGAIN fallback. */
static void ur_on_cqe(struct ur *bk, struct mars_ev_op *op, int res, unsigned cflags)
{
    /* A cancel that found nothing (the op was between its EAGAIN and the stand-in poll)
     * must still end the op. */
    bool ending = (op->flags & MARS_EV_OPF_CANCEL) || bk->detaching;

    if (ur_on_partial_cqe(bk, op, res, cflags))
        return;
    if ((op->flags & UR_OPF_ZC_SENT) && (cflags & IORING_CQE_F_NOTIF)) {
        res = op->result; /* the buffer is free: now the send's result counts */
        op->flags &= ~(unsigned)UR_OPF_ZC_SENT;
    }
    op->flags &= ~(unsigned)UR_OPF_INRING;
    bk->inring--;
    if ((op->flags & UR_OPF_ZC) && res == -EOPNOTSUPP && !ending) {
        /* This socket has no zero-copy (AF_UNIX): send it the ordinary way, and from now on. */
        bk->nozc[(unsigned)op->fd % UR_NOZC_SLOTS] = op->fd + 1;
        op->flags &= ~(unsigned)UR_OPF_ZC;
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
static void ur_reap(struct ur *bk)
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
    struct ur *bk = loop->bk;
    struct ur_slot *s = NULL;
    int rc = ur_ready(bk);

    if (rc < 0)
        return rc;
    choose_form(bk, op);
    if (needs_storage(op)) {
        s = slot_get(bk);
        if (s == NULL)
            return -ENOMEM;
        s->op = op;
        fill_storage(s, op);
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
    struct ur *bk = loop->bk;
    struct io_uring_sqe *sqe;
    struct ur_slot *s;

    if (op->flags & UR_OPF_QUEUED) {
        q_unlink(bk, op->bk);
        ur_finish(bk, op, -ECANCELED); /* it never reached the kernel */
        return 0;
    }
    if (!(op->flags & UR_OPF_INRING))
        return -ENOENT;
    sqe = bk->q_head == NULL ? io_uring_get_sqe(&bk->ring) : NULL;
    if (sqe != NULL) {
        prep_cancel(sqe, op);
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
    struct ur *bk = loop->bk;
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
static void ur_detach(struct ur *bk)
{
    int64_t deadline = mars_ev_clock_ns() + UR_DETACH_NS;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = UR_DETACH_STEP_NS};
    struct io_uring_cqe *cqe;
    struct ur_slot *s;

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
    struct ur *mine = NULL;

    (void)arg;
    pthread_mutex_lock(&ur_registry_lock);
    for (struct ur **pp = &ur_registry; *pp != NULL;) {
        struct ur *bk = *pp;

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
        struct ur *next = mine->reg_next;

        mine->reg_next = NULL;
        ur_detach(mine);
        mine = next;
    }
}

/* The ring's optional features. Test hook: MARS_EV_URING_FAIL=features hides them all
 * (as on a 5.x kernel: no zero-copy send, no multishot accept, no registered buffer
 * table), so the fallbacks run on any kernel. */
static unsigned ur_features(struct io_uring *ring)
{
    const char *fail = getenv("MARS_EV_URING_FAIL");

    if (fail != NULL && strcmp(fail, "features") == 0)
        return 0;
    return mars_ev_uring_features(ring);
}

static int ur_init(struct mars_ev_loop *loop)
{
    struct ur *bk = calloc(1, sizeof(*bk));
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
static int ur_register_buffers(struct mars_ev_loop *loop, void *base, size_t unit,
                               unsigned count)
{
    struct ur *bk = loop->bk;

    if (!(bk->features & MARS_EV_URING_BUF_TABLE))
        return -EOPNOTSUPP;
    return mars_ev_uring_fixed_set(&bk->fixed, bk->has_ring ? &bk->ring : NULL, base, unit,
                                   count);
}

static void ur_fini(struct mars_ev_loop *loop)
{
    struct ur *bk = loop->bk;

    ur_unregister(bk);
    if (bk->has_ring)
        io_uring_queue_exit(&bk->ring);
    mars_ev_uring_fixed_fini(&bk->fixed);
    while (bk->blocks != NULL) {
        struct ur_block *b = bk->blocks;

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
