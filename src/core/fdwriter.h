/*
 * fdwriter.h - writes a whole iovec array to an fd through the ev loop, continuing after
 * short writes and splitting arrays longer than IOV_MAX, then calls back once.
 *
 * The iovec array is borrowed and modified in place (advanced past what was written) until
 * the callback; the bytes it points to must stay valid until then.
 * Thread: the loop's.
 */
#ifndef MARS_FDWRITER_H
#define MARS_FDWRITER_H

#include <stdint.h>
#include <sys/uio.h>

#include "core/ev.h"

struct mars_fdwriter;
/* err is 0 when everything was written, else a negative errno (-ECANCELED after cancel). */
typedef void (*mars_fdwriter_cb)(struct mars_fdwriter *fw, int err);

struct mars_fdwriter {
    struct mars_ev_loop *loop;
    struct mars_ev_op op;
    int fd;
    struct iovec *iov;
    int niov, pos;
    uint64_t written;
    mars_fdwriter_cb cb;
    void *data;
    bool busy;
};

/* Starts writing; returns 0 (cb will run) or a negative errno (cb will not run). */
int mars_fdwriter_start(struct mars_fdwriter *fw, struct mars_ev_loop *loop, int fd,
                        struct iovec *iov, int niov, mars_fdwriter_cb cb, void *data);
/* Cancels a write in progress; cb runs with -ECANCELED (or its real result). */
void mars_fdwriter_cancel(struct mars_fdwriter *fw);

#endif
