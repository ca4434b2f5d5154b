/*
 * mars_internal.h - what the files of the `mars` source share: mars.c (options, listener,
 * instance) and conn.c (one connection: TLS, frames, acknowledgements). See mars.c for how
 * the source works. This end is the protocol's receiver: statics are receiver_*, what the
 * two files share mars_receiver_* (mars_source_* is the engine's API for every source).
 *
 * Thread: the source's worker.
 */
#ifndef MARS_SOURCE_MARS_INTERNAL_H
#define MARS_SOURCE_MARS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/ev.h"
#include "core/tls.h"
#include "component.h"
#include "wire/wire.h"

#define MAX_INFLIGHT 1024         /* unacknowledged batches per connection */
#define RBUF_MIN     (64u * 1024) /* receive buffer a connection starts with */
#define TRIM_MIN     (1u << 20)   /* freeing a buffer this big returns memory to the OS */

struct receiver_conf {
    char *address;
    char *token;
    int64_t max_connections;
    uint64_t max_frame_bytes;
    uint64_t max_buffer_bytes;
    int64_t handshake_timeout;
    struct mars_tls_conf tls;
};

enum conn_state {
    S_TLS,     /* TLS handshake */
    S_HELLO,   /* waiting for the peer's HELLO */
    S_READY,   /* batches flow */
    S_DRAIN,   /* an ERROR frame is going out; close once it is sent */
    S_CLOSING, /* I/O cancelled, waiting for it to complete */
    S_CLOSED,  /* socket closed; kept while batches reference it */
};

struct receiver;

struct receiver_conn {
    struct receiver_conn *next, *prev;
    struct receiver *ms;
    enum conn_state state;
    int fd;
    unsigned refs;        /* 1 while the socket is open + 1 per batch waiting for its ack */
    struct mars_tls *tls; /* NULL: plain TCP */
    bool receiving, sending, handshaking; /* I/O in flight (ev op or TLS request) */
    bool in_tls_cb;  /* inside a TLS callback: the session must not be destroyed now */
    bool processing; /* inside conn_process (an emit can acknowledge and call back) */
    struct mars_ev_op op_recv, op_send;
    char peer[64];
    int64_t opened_ns;

    uint8_t *rbuf, *dbuf;
    size_t rlen, rcap, dcap;
    bool mem_wait;     /* a frame needs more than is left of max_buffer_bytes: not read */
    unsigned mem_pass; /* the wake pass that last retried it */

    uint64_t next_seq;  /* the BATCH seq expected next */
    uint64_t done_seq;  /* every batch up to here was delivered */
    uint64_t acked_seq; /* the last ACK queued */
    uint32_t inflight;
    bool done[MAX_INFLIGHT]; /* by seq % MAX_INFLIGHT, for seqs in (done_seq, next_seq) */

    bool want_hello;
    uint64_t want_pong; /* ping seq + 1, 0 for none */
    int err_code;       /* ERROR to send (then close); -1 for none */
    char err_reason[160];
    uint64_t err_seq;
    uint8_t obuf[2 * (MARS_WIRE_HDR + MARS_WIRE_CONTROL_MAX)];
    size_t olen, osent;
    struct iovec oiov;
};

struct receiver {
    struct mars_source *src;
    const struct receiver_conf *conf;
    const char *id;
    int lfd;
    bool accepting, ticking, accept_failed, stopping;
    struct mars_ev_op op_accept, op_tick;
    struct mars_tls_ctx *tls;    /* NULL: plain TCP */
    struct receiver_conn *conns; /* every connection not yet freed */
    unsigned nopen;              /* connections whose socket is open */
    /* max_buffer_bytes: frame buffers beyond each connection's first RBUF_MIN */
    size_t mem;          /* charged now (conn.c keeps it) */
    unsigned nwait;      /* connections with mem_wait */
    unsigned mem_pass;   /* wake passes so far */
    bool waking;         /* op_wake is armed */
    unsigned trim_ticks; /* ticks left that return freed memory to the OS */
    struct mars_ev_op op_wake;
};

/* conn.c. Takes over fd (accepted, non-blocking): TLS handshake or straight to HELLO. */
void mars_receiver_conn_start(struct receiver *ms, int fd);
/* Closes c: cancels its I/O; the socket closes once that completed. c may be freed at once
 * (when no batch holds it). */
void mars_receiver_conn_close(struct receiver_conn *c);
/* Handles the whole frames c has buffered while the pipeline takes more, then reads on. */
void mars_receiver_conn_process(struct receiver_conn *c);
/* Closes c when it has not finished its handshake within handshake_timeout of `now`. */
void mars_receiver_conn_tick(struct receiver_conn *c, int64_t now);
/* Frees a connection left at destroy (sockets and sessions with it). */
void mars_receiver_conn_destroy(struct receiver_conn *c);

/* Retries the connections waiting for buffer memory (from a deferred wake). */
void mars_receiver_conn_wake(struct receiver *ms);

/* mars.c: finishes the source once it is stopping and nothing is open any more. */
void mars_receiver_maybe_finished(struct receiver *ms);
/* mars.c: buffer memory was given back: retries waiting connections soon, and returns
 * freed memory to the OS over the next ticks when `big`. */
void mars_receiver_mem_freed(struct receiver *ms, bool big);

#endif
