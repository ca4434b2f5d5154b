/*
 * ev_uring_internal.h - what the io_uring backend's files share: ring setup with the best
 * flags the kernel accepts (ev_uring.c opens loops with it, ev_uring_probe.c probes with
 * it), the probe itself, the optional features of a ring, and the registered read buffers
 * (ev_uring_bufs.c).
 */
#ifndef MARS_EV_URING_INTERNAL_H
#define MARS_EV_URING_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <liburing.h>

#include "core/ev_internal.h"

/* CQ entries per SQ entry of every ring. */
#define MARS_EV_URING_CQ_PER_SQ 4

/* A set of setup flags and its name for the log ("SINGLE_ISSUER|DEFER_TASKRUN"). */
struct mars_ev_uring_tier {
    unsigned flags;
    const char *name;
};

/* Sets up `ring` with `entries` SQEs and the best flags this kernel accepts (falling back
 * on EINVAL); *used says which. 0 or -errno. */
int mars_ev_uring_setup(struct io_uring *ring, unsigned entries,
                        const struct mars_ev_uring_tier **used);

/* The backend's probe: 0 when io_uring works here with every opcode mars uses (`why` then
 * describes the kernel and ring), else -errno with the reason in `why`. */
int mars_ev_uring_probe(char *why, size_t whylen);

/* Optional features of a live ring (mars_ev_uring_features). */
enum {
    MARS_EV_URING_SEND_ZC = 1u << 0,    /* IORING_OP_SEND_ZC (6.0) */
    MARS_EV_URING_SENDMSG_ZC = 1u << 1, /* IORING_OP_SENDMSG_ZC (6.1) */
    MARS_EV_URING_MS_ACCEPT = 1u << 2,  /* IORING_ACCEPT_MULTISHOT (5.19) */
    MARS_EV_URING_BUF_TABLE = 1u << 3,  /* worth trying: registration itself is the test */
    MARS_EV_URING_ZC_REPORT = 1u << 4,  /* IORING_SEND_ZC_REPORT_USAGE (6.2): assumed until a
                                         * send with it says EINVAL */
};

/* Linux 6.2 uapi, newer than liburing 2.3's header: a zero-copy send asks its notification
 * to say whether the kernel had to copy after all (loopback, veth, no SG on the device). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
unsigned mars_ev_uring_features(struct io_uring *ring);

/* A loop's registered read region and its state in the live ring (ev_uring_bufs.c).
 * Zeroed: no region. */
struct mars_ev_uring_fixed {
    char *base;         /* the region, the caller's memory */
    size_t unit;        /* bytes per buffer */
    unsigned count;     /* buffers (table slots) */
    unsigned char *reg; /* per unit: pinned in the live ring's table */
    bool table;         /* the live ring has the (sparse) table */
    bool off;           /* the kernel refused: no more registration on this loop */
};

/* Takes the region; registers the empty table in `ring` now when ring != NULL (the ring
 * must accept registration from this thread). 0, -EOPNOTSUPP (kernel before 5.13) or
 * -errno. */
int mars_ev_uring_fixed_set(struct mars_ev_uring_fixed *fx, struct io_uring *ring, void *base,
                            size_t unit, unsigned count);
/* A new ring replaced the old one: nothing is registered in it yet. */
void mars_ev_uring_fixed_reset(struct mars_ev_uring_fixed *fx);
/* The buffer index for a read of [buf, buf + len) into `ring`, pinning its unit the first
 * time; -1 for a plain read (outside the region, or registration refused: fx->off). */
int mars_ev_uring_fixed_index(struct mars_ev_uring_fixed *fx, struct io_uring *ring,
                              const void *buf, size_t len);
void mars_ev_uring_fixed_fini(struct mars_ev_uring_fixed *fx);

/* ---- the backend's state, shared by ev_uring.c and ev_uring_sqe.c ---------------------- */

#define UR_MAX_IO      0x7ffff000u   /* Linux's most bytes per read/write call */
#define UR_UD_INTERNAL ((uint64_t)1) /* our cancel SQEs; ops are aligned, never odd */
/* Smallest SEND/SENDMSG sent zero-copy. Below a few pages, pinning the pages and the extra
 * notification CQE cost more than the copy they save (the kernel's MSG_ZEROCOPY guidance
 * and liburing's send-zc benchmark put the break-even around 4-16 KiB); 16 KiB is past it
 * on every machine measured there, and mars's requests (whole batches) are well above it. */
#define UR_ZC_MIN (16u << 10)
/* SENDMSG: least mean bytes per iovec for zero-copy; each segment becomes at least one
 * pinned page fragment, and tiny fragments make tiny packets. */
#define UR_ZC_MIN_SEGMENT 4096u
/* Sockets where zero-copy does not pay, by fd, direct-mapped: refused (AF_UNIX has none:
 * EOPNOTSUPP) or copied anyway (the notification says so: loopback, veth). A stale entry
 * (the fd number reused) only costs that socket zero-copy. */
#define UR_NOZC_SLOTS 64

/* op->flags bits of this backend. */
enum {
    UR_OPF_INRING = MARS_EV_OPF_BACKEND << 0,    /* a request for the op is in the ring */
    UR_OPF_QUEUED = MARS_EV_OPF_BACKEND << 1,    /* waiting in the overflow queue */
    UR_OPF_POLLING = MARS_EV_OPF_BACKEND << 2,   /* the request is a POLL_ADD standing in */
    UR_OPF_FIXED = MARS_EV_OPF_BACKEND << 3,     /* READ as READ_FIXED (registered buffer) */
    UR_OPF_ZC = MARS_EV_OPF_BACKEND << 4,        /* SEND/SENDMSG zero-copy: result, then NOTIF */
    UR_OPF_ZC_SENT = MARS_EV_OPF_BACKEND << 5,   /* its result CQE came; op->result holds it */
    UR_OPF_MS = MARS_EV_OPF_BACKEND << 6,        /* ACCEPT as native multishot */
    UR_OPF_ZC_REPORT = MARS_EV_OPF_BACKEND << 7, /* zero-copy send asks for a usage report */
};

/* Per-op storage the kernel reads, and the node of the overflow queue. Owned by the
 * backend; lent to one op through op->bk until the op completes. */
struct mars_ev_uring_slot {
    struct mars_ev_uring_slot *next; /* free list or overflow queue */
    struct mars_ev_op *op; /* owner; for a deferred cancel its target, never dereferenced */
    bool is_cancel;
    union {
        struct __kernel_timespec ts; /* TIMER */
        struct msghdr mh;            /* SENDMSG */
    } k;
};

struct mars_ev_uring {
    struct io_uring ring;
    struct mars_ev_loop *loop;
    unsigned setup_flags;    /* IORING_SETUP_* of the live ring */
    bool has_ring;           /* false after the owner thread exited, until the next submit */
    bool enabled;            /* R_DISABLED ring enabled by its thread */
    bool registered;         /* on ur_registry with `owner` */
    bool detaching;          /* owner thread exiting: no reissue, everything ends */
    unsigned features;       /* MARS_EV_URING_* of this kernel */
    int nozc[UR_NOZC_SLOTS]; /* fd + 1 of sockets without zero-copy, 0 = free */
    int64_t max_wait_ns;     /* > 0: bound on every wait (under valgrind) */
    pthread_t owner;
    unsigned inring;
    struct mars_ev_uring_slot *q_head, *q_tail;
    struct mars_ev_uring_slot *free_slots;
    struct mars_ev_uring_block *blocks; /* slot storage (ev_uring.c) */
    struct mars_ev_uring *reg_next;
    struct mars_ev_uring_fixed fixed; /* registered read region, if any */
};

/* Picks the op's io_uring form before its first SQE: fixed read (may pin its buffer's unit:
 * owner thread, ring ready), zero-copy send, native multishot accept. */
void mars_ev_uring_choose_form(struct mars_ev_uring *bk, struct mars_ev_op *op);
/* Does the op need a slot (kernel-read memory) from submit to its CQE? */
bool mars_ev_uring_needs_storage(const struct mars_ev_op *op);
void mars_ev_uring_fill_storage(struct mars_ev_uring_slot *s, const struct mars_ev_op *op);
/* Writes the op's request (or its stand-in POLL_ADD) into an SQE, user_data = op. */
void mars_ev_uring_prep_sqe(struct mars_ev_uring *bk, struct io_uring_sqe *sqe,
                            struct mars_ev_op *op);
/* An ASYNC_CANCEL of `target`, with user_data UR_UD_INTERNAL. */
void mars_ev_uring_prep_cancel(struct io_uring_sqe *sqe, const struct mars_ev_op *target);

#endif
