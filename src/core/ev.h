/*
 * ev.h - the completion-based event loop every mars thread runs.
 *
 * A caller fills a struct mars_ev_op (embedded in its own struct, so no allocation per
 * operation), submits it, and later gets exactly one callback with the result: bytes
 * transferred, 0, a new fd, or a negative errno. This is the io_uring model; the libevent
 * backend emulates it (readiness, then the syscall, then the callback), so callers are
 * written once.
 *
 * Rules that hold for every backend:
 * - A callback never runs inside mars_ev_submit(); it runs later from mars_ev_run().
 * - An op, and every buffer or iovec it points to, is owned by the loop from submit until its
 *   callback starts. The caller must not touch, free or resubmit it before then. Inside the
 *   callback the op is the caller's again and may be resubmitted at once.
 * - mars_ev_cancel() asks for an in-flight op to complete early; its callback still runs once,
 *   with -ECANCELED if the cancel won or the real result if the op had already finished.
 * - A loop belongs to one thread. Only mars_ev_async_send() may be called from another thread.
 * - A loop is destroyed only when it has no op in flight (mars_ev_pending() == 0); cancel and
 *   run the loop until then.
 * - Multishot ops (MARS_EV_F_MULTISHOT, accept only) are the one exception to "exactly one
 *   callback": the callback runs once per result, with op->more true while the op stays
 *   armed, and a last time with op->more false. Until that last callback the op stays the
 *   loop's (in flight, counted by mars_ev_pending()); see mars_ev_prep_accept_multishot().
 *
 * Backends are ops tables chosen at run time (mars_ev_backend_select); capability bits tell
 * callers what the live backend does natively, so they choose a strategy without #ifdef.
 */
#ifndef MARS_EV_H
#define MARS_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct mars_ev_loop;
struct mars_ev_op;
struct mars_ev_shot;

typedef void (*mars_ev_cb)(struct mars_ev_op *op, int res);

enum mars_ev_op_type {
    MARS_EV_READ,    /* pread(fd, buf, len, off); off == MARS_EV_CUR reads at the position */
    MARS_EV_WRITE,   /* pwrite(fd, buf, len, off) */
    MARS_EV_WRITEV,  /* pwritev(fd, iov, iovcnt, off) */
    MARS_EV_SEND,    /* send(fd, buf, len, MSG_NOSIGNAL) */
    MARS_EV_SENDMSG, /* sendmsg(fd, {iov, iovcnt}, MSG_NOSIGNAL) */
    MARS_EV_RECV,    /* recv(fd, buf, len, 0) */
    MARS_EV_ACCEPT,  /* accept4(fd, ..., SOCK_NONBLOCK | SOCK_CLOEXEC); res is the new fd */
    MARS_EV_CONNECT, /* connect(fd, addr, addrlen) on a non-blocking socket; res 0 on success */
    MARS_EV_TIMER,   /* fires after timeout_ns; res 0 (or -ECANCELED) */
    MARS_EV_POLL,    /* one-shot readiness; res is the revents mask (POLLIN, POLLOUT, ...) */
};

/* Offset meaning "the fd's current position" for READ/WRITE/WRITEV (pipes, sockets, ttys). */
#define MARS_EV_CUR UINT64_MAX

/*
 * One operation. Embed it in the struct that owns the I/O and recover the owner in the
 * callback with MARS_CONTAINER_OF or through `data`. Fill it with the mars_ev_prep_*()
 * helpers, which set every field the type uses and clear the backend's part.
 */
struct mars_ev_op {
    mars_ev_cb cb;
    void *data; /* free for the caller */
    enum mars_ev_op_type type;
    int fd;
    uint8_t opts; /* MARS_EV_F_*, set by the prep helpers */
    /* In the callback: true when the op stays armed and will call back again (multishot);
     * false on the op's last callback, after which the op is the caller's again. */
    bool more;
    union {
        struct {
            void *buf;
            size_t len;
            uint64_t off;
        } rw;
        struct {
            const struct iovec *iov;
            int iovcnt;
            uint64_t off;
        } vec;
        struct {
            const struct sockaddr *addr;
            socklen_t addrlen;
        } conn;
        struct {
            int64_t timeout_ns;
        } timer;
        struct {
            short events;
        } poll;
    } u;
    /* Backend state; callers never touch these. */
    struct mars_ev_op *next_done;
    void *bk;
    struct mars_ev_shot *shots; /* multishot results waiting behind the queued one */
    uint32_t flags;
    int result;
    int final_result; /* multishot: the last result, waiting behind `shots` */
};

/* op->opts. */
enum {
    MARS_EV_F_MULTISHOT = 1u << 0, /* one callback per result until cancelled (accept) */
};

/* Capability bits of a live backend (mars_ev_caps). */
enum {
    MARS_EV_CAP_ASYNC_FILE_IO = 1u << 0, /* file reads do not block the loop thread */
    MARS_EV_CAP_FIXED_BUFFERS = 1u << 1, /* reads into a registered region are fixed reads */
    /* Large SEND/SENDMSG (16 KiB and more) are zero-copy. Their callback comes once the
     * kernel lets go of the buffer, for TCP when the peer acknowledged the bytes: a peer that
     * reads nothing holds it back, and cancel cannot hurry it (the send itself is done);
     * resetting the connection (connect() with AF_UNSPEC) releases it. */
    MARS_EV_CAP_SEND_ZC = 1u << 2,
    MARS_EV_CAP_MULTISHOT = 1u << 3, /* multishot accept is native (else emulated) */
};

struct mars_ev_backend; /* ops table, see ev_internal.h */

/*
 * Chooses a backend by name ("auto", "io_uring", "libevent"). "auto" probes io_uring and
 * falls back to libevent. Writes a one-line human reason for the choice into `why` (for the
 * startup log). Returns the backend, or NULL with `why` explaining the failure when a forced
 * backend cannot run here.
 */
const struct mars_ev_backend *mars_ev_backend_select(const char *name, char *why, size_t whylen);
const char *mars_ev_backend_name(const struct mars_ev_backend *b);
/* Space-separated names of the backends compiled in, for --version. */
const char *mars_ev_backends_compiled(void);

/* Returns an owned loop, or NULL (errno set); destroy with mars_ev_loop_destroy(). */
struct mars_ev_loop *mars_ev_loop_create(const struct mars_ev_backend *b);
void mars_ev_loop_destroy(struct mars_ev_loop *loop);
unsigned mars_ev_caps(const struct mars_ev_loop *loop);
/* Turns capabilities off for this loop (MARS_EV_CAP_SEND_ZC: sends are never zero-copy),
 * before its first op. Bits the loop does not have are ignored. */
void mars_ev_drop_caps(struct mars_ev_loop *loop, unsigned caps);
const char *mars_ev_loop_backend_name(const struct mars_ev_loop *loop);

/*
 * Registers a region of `count` read buffers of `unit` bytes each, back to back from `base`
 * (the chunk pool's regular chunks). From then on a READ whose [buf, buf + len) lies inside
 * one of them may be a fixed read (io_uring: READ_FIXED; the kernel skips mapping the pages
 * on every read); any other READ is an ordinary one, so callers change nothing. The memory
 * is pinned lazily, one unit at a time, the first time a read lands in it, so untouched
 * units cost nothing. The region must stay mapped until the loop is destroyed; one region
 * per loop. Returns 0 and sets MARS_EV_CAP_FIXED_BUFFERS, or a negative errno
 * (-EOPNOTSUPP: this backend or kernel has no registered buffers; reads stay plain). The
 * cap bit is cleared again if the kernel later refuses to pin a unit (RLIMIT_MEMLOCK).
 */
int mars_ev_register_buffers(struct mars_ev_loop *loop, void *base, size_t unit, unsigned count);

/* Submits an op prepared with a mars_ev_prep_*() helper. Returns 0, or a negative errno
 * when the op could not be queued (its callback will then not run). */
int mars_ev_submit(struct mars_ev_loop *loop, struct mars_ev_op *op);
/* Requests early completion of a submitted op; see the rules at the top. Returns 0, or
 * -ENOENT when the op is not in flight. */
int mars_ev_cancel(struct mars_ev_loop *loop, struct mars_ev_op *op);
/* Number of submitted ops whose callback has not run yet. */
unsigned mars_ev_pending(const struct mars_ev_loop *loop);

/* Runs callbacks until mars_ev_stop() is called from a callback on this loop (or from
 * another thread through an async handle whose callback calls it). Returns 0. Also returns
 * when no op is in flight (nothing could call stop any more), and with a negative errno if
 * the backend's wait fails. A stop requested before the call makes it return at once. */
int mars_ev_run(struct mars_ev_loop *loop);
/* Waits at most timeout_ns (0 = poll, <0 = forever) for completions, runs their callbacks,
 * and returns the number of callbacks run or a negative errno. */
int mars_ev_run_once(struct mars_ev_loop *loop, int64_t timeout_ns);
void mars_ev_stop(struct mars_ev_loop *loop);

/* Monotonic time in nanoseconds, cached per loop iteration. */
int64_t mars_ev_now(struct mars_ev_loop *loop);
/* Monotonic clock read now, not cached. */
int64_t mars_ev_clock_ns(void);
/* How long until the monotonic clock (read now, not the loop's cached time: the work done
 * since the turn began must not push the timer past the mark) next reaches a whole multiple
 * of period_ns (> 0), for a periodic timer that need not fire at an exact distance from the
 * last: the timers of a thread aligned to the same period fire together, one wakeup for
 * all. */
int64_t mars_ev_until_aligned(int64_t period_ns);

/*
 * Cross-thread wakeup. mars_ev_async_send() may be called from any thread any number of
 * times; the callback runs on the loop's thread at least once after each send (sends
 * coalesce). Storage is the caller's; mars_ev_async_fini() before destroying the loop.
 */
struct mars_ev_async {
    struct mars_ev_loop *loop;
    void (*cb)(struct mars_ev_async *a);
    void *data;
    int efd;
    struct mars_ev_op op;
    uint64_t buf;
    bool armed;
};
int mars_ev_async_init(struct mars_ev_loop *loop, struct mars_ev_async *a,
                       void (*cb)(struct mars_ev_async *a), void *data);
int mars_ev_async_send(struct mars_ev_async *a);
/* Cancels the internal op and runs the loop until it completes; closes the eventfd. */
void mars_ev_async_fini(struct mars_ev_async *a);

/* Op preparation: fill every field the type uses, clear the backend part. */
void mars_ev_prep_read(struct mars_ev_op *op, int fd, void *buf, size_t len, uint64_t off,
                       mars_ev_cb cb, void *data);
void mars_ev_prep_write(struct mars_ev_op *op, int fd, const void *buf, size_t len, uint64_t off,
                        mars_ev_cb cb, void *data);
void mars_ev_prep_writev(struct mars_ev_op *op, int fd, const struct iovec *iov, int iovcnt,
                         uint64_t off, mars_ev_cb cb, void *data);
void mars_ev_prep_send(struct mars_ev_op *op, int fd, const void *buf, size_t len, mars_ev_cb cb,
                       void *data);
void mars_ev_prep_sendmsg(struct mars_ev_op *op, int fd, const struct iovec *iov, int iovcnt,
                          mars_ev_cb cb, void *data);
void mars_ev_prep_recv(struct mars_ev_op *op, int fd, void *buf, size_t len, mars_ev_cb cb,
                       void *data);
void mars_ev_prep_accept(struct mars_ev_op *op, int fd, mars_ev_cb cb, void *data);
/*
 * Multishot accept: the callback runs once per accepted connection (res = the new fd,
 * op->more = true) and the op stays armed, until it is cancelled or an error ends it: that
 * last callback has op->more == false, and its res is -ECANCELED, the error, or (rarely) one
 * more new fd. Only after it may the op be freed or resubmitted. Native on io_uring 5.19+
 * (MARS_EV_CAP_MULTISHOT); elsewhere the loop re-arms a single-shot accept after each
 * connection, which callers cannot tell apart.
 */
void mars_ev_prep_accept_multishot(struct mars_ev_op *op, int fd, mars_ev_cb cb, void *data);
void mars_ev_prep_connect(struct mars_ev_op *op, int fd, const struct sockaddr *addr,
                          socklen_t addrlen, mars_ev_cb cb, void *data);
void mars_ev_prep_timer(struct mars_ev_op *op, int64_t timeout_ns, mars_ev_cb cb, void *data);
void mars_ev_prep_poll(struct mars_ev_op *op, int fd, short events, mars_ev_cb cb, void *data);

#define MARS_CONTAINER_OF(ptr, type, member)                                                       \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
