/*
 * fdwriter.c - whole-array writev over the ev loop (see fdwriter.h). Each completion
 * advances the array by the bytes written; the next WRITEV covers at most IOV_MAX entries.
 * EINTR and EAGAIN are retried by resubmitting; other errors end the write.
 */
#include "core/fdwriter.h"

#include <errno.h>
#include <limits.h>

static int submit_next(struct mars_fdwriter *fw);

static void finish(struct mars_fdwriter *fw, int err)
{
    fw->busy = false;
    fw->cb(fw, err);
}

static void advance(struct mars_fdwriter *fw, size_t n)
{
    while (n > 0 && fw->pos < fw->niov) {
        struct iovec *v = &fw->iov[fw->pos];
        if (n >= v->iov_len) {
            n -= v->iov_len;
            fw->pos++;
        } else {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= n;
            n = 0;
        }
    }
    while (fw->pos < fw->niov && fw->iov[fw->pos].iov_len == 0)
        fw->pos++;
}

static void on_write(struct mars_ev_op *op, int res)
{
    struct mars_fdwriter *fw = op->data;

    if (res == -EINTR || res == -EAGAIN)
        res = 0;
    else if (res < 0) {
        finish(fw, res);
        return;
    }
    fw->written += (unsigned)res;
    advance(fw, (size_t)res);
    if (fw->pos >= fw->niov) {
        finish(fw, 0);
        return;
    }
    int rc = submit_next(fw);
    if (rc)
        finish(fw, rc);
}

static int submit_next(struct mars_fdwriter *fw)
{
    int n = fw->niov - fw->pos;
    if (n > IOV_MAX)
        n = IOV_MAX;
    mars_ev_prep_writev(&fw->op, fw->fd, fw->iov + fw->pos, n, MARS_EV_CUR, on_write, fw);
    return mars_ev_submit(fw->loop, &fw->op);
}

int mars_fdwriter_start(struct mars_fdwriter *fw, struct mars_ev_loop *loop, int fd,
                        struct iovec *iov, int niov, mars_fdwriter_cb cb, void *data)
{
    fw->loop = loop;
    fw->fd = fd;
    fw->iov = iov;
    fw->niov = niov;
    fw->pos = 0;
    fw->written = 0;
    fw->cb = cb;
    fw->data = data;
    advance(fw, 0);
    if (fw->pos >= fw->niov) {
        /* nothing to write: still complete through the loop, never inside start */
        mars_ev_prep_timer(&fw->op, 0, on_write, fw);
        fw->busy = true;
        return mars_ev_submit(loop, &fw->op);
    }
    int rc = submit_next(fw);
    fw->busy = rc == 0;
    return rc;
}

void mars_fdwriter_cancel(struct mars_fdwriter *fw)
{
    if (fw->busy)
        mars_ev_cancel(fw->loop, &fw->op);
}
