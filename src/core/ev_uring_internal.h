/*
 * ev_uring_internal.h - what the io_uring backend's files share: ring setup with the best
 * flags the kernel accepts (ev_uring.c opens loops with it, ev_uring_probe.c probes with
 * it), the probe itself, the optional features of a ring, and the registered read buffers
 * (ev_uring_bufs.c).
 */
#ifndef MARS_EV_URING_INTERNAL_H
#define MARS_EV_URING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <liburing.h>

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
};
unsigned mars_ev_uring_features(struct io_uring *ring);

/* A loop's registered read region and its state in the live ring (ev_uring_bufs.c).
 * Zeroed: no region. */
struct mars_ev_uring_fixed {
    char *base;     /* the region, the caller's memory */
    size_t unit;    /* bytes per buffer */
    unsigned count; /* buffers (table slots) */
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

#endif
