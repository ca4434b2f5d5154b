/*
 * conn.h - an outbound stream connection on the ev loop, plain TCP or TLS (core/tls.h),
 * for sinks that keep one connection to a peer (tcp, mars).
 *
 *   c = mars_conn_create(loop, &opts);        // host, port, timeout, tls ctx, keepalive
 *   mars_conn_open(c, on_open);               // resolve, connect, handshake -> on_open(c, 0)
 *   mars_conn_send(c, iov, n, on_sent);       // all bytes in the kernel -> on_sent(c, 0)
 *   ... on_close(c, err) when the peer goes away between sends
 *   mars_conn_close(c); wait for !mars_conn_busy(c) (or opts.on_idle); mars_conn_destroy(c)
 *
 * States (enum mars_conn_state):
 *   IDLE -open-> RESOLVING -> CONNECTING -> HANDSHAKING (TLS only) -> READY
 *   any but IDLE -failure or close()-> CLOSING -last op done-> IDLE
 * A failure at any step (resolution, refused, timeout, TLS error, peer close or reset,
 * send error) tears the connection down: once every op of it has completed the socket is
 * closed, the state is IDLE again, and then the pending open or send callback gets the
 * negative errno, or, when none was pending, opts.on_close does. mars_conn_error() has the
 * human reason ("connect to 10.0.0.5:5170: Connection refused"). open() may be called
 * again from that callback: one attempt per call; pacing retries is the caller's (sinks
 * answer MARS_SINK_RETRY and the engine backs off exponentially with jitter).
 *
 * While READY a RECV (or TLS read) is always pending, so a peer that closes or resets the
 * connection is noticed at once, not at the next send. What the peer sends goes to
 * opts.on_data (or is dropped when that is NULL).
 *
 * Name resolution: getaddrinfo() blocks, so a name is resolved on a short-lived thread,
 * one per attempt, which wakes the loop through an eventfd read op; an IP literal is
 * converted in place. The connect timeout covers resolution, connect and handshake; a
 * resolver thread outliving its attempt finishes on its own and frees its state.
 *
 * Callbacks never run inside the call that started them. Thread: the loop's.
 */
#ifndef MARS_CONN_H
#define MARS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mars_ev_loop;
struct mars_tls_ctx;
struct mars_conn;

enum mars_conn_state {
    MARS_CONN_IDLE,
    MARS_CONN_RESOLVING,
    MARS_CONN_CONNECTING,
    MARS_CONN_HANDSHAKING,
    MARS_CONN_READY,
    MARS_CONN_CLOSING,
};

typedef void (*mars_conn_cb)(struct mars_conn *c, int err);

struct mars_conn_opts {
    const char *host;           /* name or IP literal; copied */
    const char *port;           /* number or service; copied */
    int64_t connect_timeout_ns; /* resolve + connect + handshake; 0: 10 s */
    int64_t keepalive_ns;       /* TCP keepalive idle time; 0: off */
    struct mars_tls_ctx *tls;   /* NULL: plain TCP; borrowed for the conn's lifetime */
    const char *server_name;    /* TLS name to send and verify; NULL: host; copied */
    /* Bytes the peer sent while READY (valid during the call). NULL: dropped. */
    void (*on_data)(struct mars_conn *c, const char *p, size_t n);
    /* The connection was lost while READY with no send pending (peer closed or reset).
     * The conn is IDLE when it runs. Optional. */
    mars_conn_cb on_close;
    /* After mars_conn_close(): the conn has no op left and may be destroyed. Optional. */
    mars_conn_cb on_idle;
    void *data; /* the caller's (mars_conn_data) */
};

/* Returns owned (free with mars_conn_destroy) or NULL on -ENOMEM. */
struct mars_conn *mars_conn_create(struct mars_ev_loop *loop, const struct mars_conn_opts *opts);
/* Requires !mars_conn_busy(c). Closes the socket if still open. */
void mars_conn_destroy(struct mars_conn *c);

/* From IDLE: starts one connection attempt; cb(c, 0) when READY or (c, -errno) when it
 * failed (then IDLE again). Returns 0, or -EBUSY when not IDLE (cb will not run). */
int mars_conn_open(struct mars_conn *c, mars_conn_cb cb);
/* When READY and no send is pending: writes the whole iovec array (borrowed until cb, and
 * advanced in place on plain TCP) with SENDMSG ops (TLS: mars_tls_write). cb(c, 0) when
 * every byte is in the kernel's send buffer, (c, -errno) when the connection failed (it is
 * then torn down). Returns 0 or -ENOTCONN / -EBUSY (cb will not run). */
int mars_conn_send(struct mars_conn *c, struct iovec *iov, int niov, mars_conn_cb cb);
/* Tears the connection down (no-op when IDLE); pending callbacks get -ECANCELED. */
void mars_conn_close(struct mars_conn *c);

bool mars_conn_busy(const struct mars_conn *c);
enum mars_conn_state mars_conn_state(const struct mars_conn *c);
void *mars_conn_data(const struct mars_conn *c);
/* Reason of the last failure ("" before any); valid until the next open. */
const char *mars_conn_error(const struct mars_conn *c);
/* "host:port" as configured, for logs. */
const char *mars_conn_peer(const struct mars_conn *c);
/* With TLS after the handshake: "TLSv1.3 TLS_AES_256_GCM_SHA384"; else "". */
const char *mars_conn_tls_info(const struct mars_conn *c);

#endif
