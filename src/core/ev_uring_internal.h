/*
 * ev_uring_internal.h - what the io_uring backend's two files share: ring setup with the
 * best flags the kernel accepts (ev_uring.c opens loops with it, ev_uring_probe.c probes
 * with it) and the probe itself.
 */
#ifndef MARS_EV_URING_INTERNAL_H
#define MARS_EV_URING_INTERNAL_H

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

#endif
