/*
 * ev_uring_sqe.c - how the io_uring backend turns an op into a request: which form it
 * takes (plain or fixed read, copying or zero-copy send, single or multishot accept) and
 * the SQE itself. ev_uring.c owns the ring, the queues and the completions.
 *
 * Forms, chosen once per submit (mars_ev_uring_choose_form):
 * - READ into a registered unit (ev_uring_bufs.c) is READ_FIXED with that unit's index.
 * - SEND of at least UR_ZC_MIN bytes is SEND_ZC (6.0+), SENDMSG of as many bytes in
 *   segments of UR_ZC_MIN_SEGMENT bytes on average is SENDMSG_ZC (6.1+), unless the socket
 *   refused zero-copy or had it copied anyway before (bk->nozc). Each zero-copy send asks
 *   its notification to report a copy (IORING_SEND_ZC_REPORT_USAGE, 6.2+); a 6.0/6.1
 *   kernel answers that with EINVAL, and ev_uring.c drops the report from then on.
 * - ACCEPT with MARS_EV_F_MULTISHOT is a multishot accept (5.19+), marked
 *   MARS_EV_OPF_NATIVE for ev.c; without it ev.c emulates multishot with single accepts.
 * An op that said EAGAIN is replaced by a POLL_ADD for the readiness it needs
 * (UR_OPF_POLLING) and reissued in its own form when that fires.
 *
 * Thread: the loop's.
 */
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "core/ev.h"
#include "core/ev_uring_internal.h"

bool mars_ev_uring_needs_storage(const struct mars_ev_op *op)
{
    return op->type == MARS_EV_TIMER || op->type == MARS_EV_SENDMSG;
}

void mars_ev_uring_fill_storage(struct mars_ev_uring_slot *s, const struct mars_ev_op *op)
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
static unsigned fixed_index(const struct mars_ev_uring *bk, const struct mars_ev_op *op)
{
    return (unsigned)(((uintptr_t)op->u.rw.buf - (uintptr_t)bk->fixed.base) / bk->fixed.unit);
}

/* Worth sending zero-copy? (SENDMSG: the iovec walk costs far less than the syscall.) */
static bool zc_worth(const struct mars_ev_uring *bk, const struct mars_ev_op *op)
{
    size_t total = 0;

    if (!(bk->loop->caps & MARS_EV_CAP_SEND_ZC) ||
        bk->nozc[(unsigned)op->fd % UR_NOZC_SLOTS] == op->fd + 1)
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
void mars_ev_uring_choose_form(struct mars_ev_uring *bk, struct mars_ev_op *op)
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
            op->flags |=
                UR_OPF_ZC | ((bk->features & MARS_EV_URING_ZC_REPORT) ? UR_OPF_ZC_REPORT : 0u);
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

void mars_ev_uring_prep_sqe(struct mars_ev_uring *bk, struct io_uring_sqe *sqe,
                            struct mars_ev_op *op)
{
    struct mars_ev_uring_slot *s = op->bk;

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
                                  (op->flags & UR_OPF_ZC_REPORT) ? IORING_SEND_ZC_REPORT_USAGE : 0);
        else
            io_uring_prep_send(sqe, op->fd, op->u.rw.buf, io_len(op->u.rw.len), MSG_NOSIGNAL);
        break;
    case MARS_EV_SENDMSG:
        if (op->flags & UR_OPF_ZC) {
            io_uring_prep_sendmsg_zc(sqe, op->fd, &s->k.mh, MSG_NOSIGNAL);
            if (op->flags & UR_OPF_ZC_REPORT)
                sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
        } else
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

void mars_ev_uring_prep_cancel(struct io_uring_sqe *sqe, const struct mars_ev_op *target)
{
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)target, 0);
    io_uring_sqe_set_data64(sqe, UR_UD_INTERNAL);
}
