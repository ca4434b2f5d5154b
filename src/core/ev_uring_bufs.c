/*
 * ev_uring_bufs.c - registered (fixed) read buffers of the io_uring backend: the region a
 * loop was given by mars_ev_register_buffers() (the chunk pool's regular chunks) and its
 * state in the live ring.
 *
 * How it works: the region is `count` units of `unit` bytes. The ring gets a buffer table
 * of `count` empty slots at once (IORING_REGISTER_BUFFERS2 with NULL iovecs, Linux 5.13+),
 * which pins nothing. The first read that lands inside unit i fills slot i with that unit
 * (IORING_REGISTER_BUFFERS_UPDATE), which pins its pages; from then on reads into unit i
 * are READ_FIXED with buf_index i, and the kernel skips pinning and unpinning the pages of
 * every read. Pinning lazily keeps the pool's memory what it was: a unit is pinned only
 * when it is about to be written anyway, and the pool never frees its regular chunks.
 *
 * Pinned memory counts against RLIMIT_MEMLOCK (unless CAP_IPC_LOCK). When the kernel
 * refuses a unit (ENOMEM, or anything else), registration stops for the loop: one INFO line
 * per process says so, units already pinned stay fixed, every other read is a plain READ.
 *
 * A ring's table dies with the ring. The backend re-creates rings (a SINGLE_ISSUER ring is
 * closed when its owner thread exits, and the next submit opens a fresh one on the new
 * thread); mars_ev_uring_fixed_reset() forgets the old ring's state, and the next read
 * registers the table again, from the thread that now owns the ring.
 *
 * Thread: the loop's.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/ev_uring_internal.h"
#include "core/log.h"

/* The kernel's limits: IORING_MAX_REG_BUFFERS slots, each at most 1 GiB. */
#define UR_FIXED_MAX_COUNT 16384u
#define UR_FIXED_MAX_UNIT  ((size_t)1 << 30)

static atomic_bool fixed_refusal_logged; /* one line per process, not per worker */

static void fixed_refused(struct mars_ev_uring_fixed *fx, const char *what, int rc)
{
    fx->off = true;
    if (atomic_exchange(&fixed_refusal_logged, true))
        return;
    mars_info("-",
              "io_uring: %s refused (%s%s); reads into chunks not yet registered are plain "
              "reads",
              what, strerror(-rc),
              rc == -ENOMEM ? ": RLIMIT_MEMLOCK too low for pinned read buffers" : "");
}

/* Registers the empty table in `ring`. */
static int fixed_table(struct mars_ev_uring_fixed *fx, struct io_uring *ring)
{
    struct iovec *holes = calloc(fx->count, sizeof(*holes));
    int rc;

    if (holes == NULL)
        return -ENOMEM;
    rc = io_uring_register_buffers_tags(ring, holes, NULL, fx->count);
    free(holes);
    if (rc == 0)
        fx->table = true;
    return rc;
}

int mars_ev_uring_fixed_set(struct mars_ev_uring_fixed *fx, struct io_uring *ring, void *base,
                            size_t unit, unsigned count)
{
    int rc;

    if (fx->base != NULL)
        return -EBUSY; /* one region per loop */
    if (unit > UR_FIXED_MAX_UNIT)
        return -EOPNOTSUPP;
    if (count > UR_FIXED_MAX_COUNT)
        count = UR_FIXED_MAX_COUNT; /* reads past the first 16384 units stay plain */
    fx->reg = calloc(count, sizeof(*fx->reg));
    if (fx->reg == NULL)
        return -ENOMEM;
    fx->base = base;
    fx->unit = unit;
    fx->count = count;
    fx->table = false;
    fx->off = false;
    /* Try the table now, so a kernel without sparse tables says so to the caller. */
    rc = ring != NULL ? fixed_table(fx, ring) : 0;
    if (rc < 0) {
        mars_ev_uring_fixed_fini(fx);
        return rc == -EINVAL ? -EOPNOTSUPP : rc;
    }
    return 0;
}

void mars_ev_uring_fixed_reset(struct mars_ev_uring_fixed *fx)
{
    fx->table = false;
    if (fx->reg != NULL)
        memset(fx->reg, 0, fx->count * sizeof(*fx->reg));
}

int mars_ev_uring_fixed_index(struct mars_ev_uring_fixed *fx, struct io_uring *ring,
                              const void *buf, size_t len)
{
    uintptr_t p = (uintptr_t)buf, base = (uintptr_t)fx->base;
    size_t i;
    int rc;

    if (fx->base == NULL || p < base || len == 0)
        return -1;
    i = (p - base) / fx->unit;
    if (i >= fx->count || len > base + (i + 1) * fx->unit - p)
        return -1;
    if (fx->reg[i])
        return (int)i;
    if (fx->off)
        return -1;
    if (!fx->table) {
        rc = fixed_table(fx, ring);
        if (rc < 0) {
            fixed_refused(fx, "registered buffer table", rc);
            return -1;
        }
    }
    {
        struct iovec iov = {.iov_base = fx->base + i * fx->unit, .iov_len = fx->unit};

        rc = io_uring_register_buffers_update_tag(ring, (unsigned)i, &iov, NULL, 1);
    }
    if (rc < 0) {
        fixed_refused(fx, "pinning a read buffer", rc);
        return -1;
    }
    fx->reg[i] = 1;
    return (int)i;
}

void mars_ev_uring_fixed_fini(struct mars_ev_uring_fixed *fx)
{
    free(fx->reg);
    memset(fx, 0, sizeof(*fx));
}
