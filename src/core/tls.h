/*
 * tls.h - TLS on a socket driven by the completion ev loop (core/ev.h), for mars's own
 * sockets (the tcp sink, the mars protocol sink and source).
 *
 * OpenSSL runs on two memory BIOs: a session never touches the socket itself through
 * OpenSSL. Ciphertext that OpenSSL produces goes out through ev SEND ops, ciphertext
 * from the peer comes in through ev RECV ops, so the session works the same on every ev
 * backend and never blocks the loop. The caller sees plaintext only:
 *
 *   ctx = mars_tls_ctx_create(&opts, MARS_TLS_CLIENT, id, err, sizeof err);   // once
 *   t = mars_tls_create(ctx, loop, fd, "logs.example.com", me);   // per connection
 *   mars_tls_handshake(t, on_hs);             // on_hs(t, 0) or (t, -errno)
 *   mars_tls_write(t, iov, niov, on_wr);      // on_wr(t, 0): all bytes handed to the kernel
 *   mars_tls_read(t, buf, len, on_rd);        // on_rd(t, n > 0), 0 = peer closed, -errno
 *   ... mars_tls_cancel(t); wait until !mars_tls_busy(t); mars_tls_destroy(t); close(fd)
 *
 * Rules:
 * - At most one handshake, one write and one read request at a time; a write and a read may
 *   be pending together (a sink writes while a read watches for the peer closing).
 *   Writes and reads are accepted only after the handshake succeeded.
 * - Every request that was accepted (returned 0) gets exactly one callback, later, from the
 *   loop (never inside the call that started it). Buffers and iovecs passed in are borrowed
 *   until that callback starts.
 * - Any failure (socket error, peer reset, TLS alert, failed verification) is final for the
 *   session: every pending request fails with it and later requests fail with it too.
 *   mars_tls_error() holds a human reason for the log, e.g.
 *   "certificate verify failed: unable to get local issuer certificate".
 * - Errors: -EKEYREJECTED when the peer's certificate or name failed verification,
 *   -EPROTO for other TLS failures (alerts, bad records, no shared cipher), -ECONNRESET
 *   when the peer closed the connection in the middle of the handshake or of a write, the
 *   socket's own errno otherwise, -ECANCELED after mars_tls_cancel().
 * - A write's callback says 0 when every plaintext byte was encrypted and every resulting
 *   ciphertext byte was accepted by the kernel's send buffer; like TCP itself it says
 *   nothing about what the peer application has read.
 *
 * Thread: a ctx may be shared by sessions on any threads (OpenSSL's SSL_CTX is); a session
 * belongs to its loop's thread.
 */
#ifndef MARS_TLS_H
#define MARS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct mars_ev_loop;
struct mars_tls_ctx;
struct mars_tls;

enum mars_tls_role { MARS_TLS_CLIENT, MARS_TLS_SERVER };

/* Settings of a ctx. Strings are borrowed for the duration of mars_tls_ctx_create(). */
struct mars_tls_opts {
    bool verify;         /* client: verify the server's chain and name (the default; false only when
                          * the user asked). server: verify client certificates against ca_file. */
    const char *ca_file; /* client: CAs to trust (NULL: the system store);
                          * server: CAs of client certificates, which are then required
                          * (mutual TLS); NULL: clients are not asked for one */
    const char *cert_file; /* client: certificate for mutual TLS (optional);
                            * server: the server's certificate chain (required) */
    const char *key_file;  /* private key of cert_file */
    bool quiet;            /* client without verify: the caller has warned, do not */
};

/*
 * Loads certificates and keys and sets TLS 1.2 as the lowest version. `log_id` names the
 * component in the one warning logged when a client ctx does not verify. Returns an owned
 * ctx (free with mars_tls_ctx_destroy; sessions made from it may outlive it), or NULL
 * with a human reason in err ("cannot load ca_file /x.pem: No such file or directory").
 */
struct mars_tls_ctx *mars_tls_ctx_create(const struct mars_tls_opts *opts, enum mars_tls_role role,
                                         const char *log_id, char *err, size_t errlen);
void mars_tls_ctx_destroy(struct mars_tls_ctx *ctx);

/*
 * A session on the connected, non-blocking socket fd (borrowed: the caller closes it,
 * after destroying the session). Client sessions send `peer_name` as SNI (unless it is an
 * IP address) and, when the ctx verifies, check the certificate against it (DNS name or IP
 * address); NULL skips the name check. Server sessions ignore peer_name. `data` is the
 * caller's (mars_tls_data). Returns owned (mars_tls_destroy) or NULL on -ENOMEM.
 */
struct mars_tls *mars_tls_create(struct mars_tls_ctx *ctx, struct mars_ev_loop *loop, int fd,
                                 const char *peer_name, void *data);

typedef void (*mars_tls_cb)(struct mars_tls *t, int res);

/* Runs the handshake. cb(t, 0) when done, or (t, -errno). Returns 0 or -EBUSY/-EINVAL. */
int mars_tls_handshake(struct mars_tls *t, mars_tls_cb cb);
/* Encrypts and sends the whole iovec array (borrowed until cb). Large requests are fed to
 * OpenSSL piecewise, so memory stays bounded by a few records whatever the size. cb(t, 0)
 * when all of it is in the kernel, or (t, -errno). Returns 0 or -EBUSY/-EINVAL/-errno. */
int mars_tls_write(struct mars_tls *t, const struct iovec *iov, int niov, mars_tls_cb cb);
/* Reads plaintext into buf (borrowed until cb). cb(t, n) with 1..len bytes, 0 when the peer
 * closed the connection (close_notify or a plain TCP close), or -errno. */
int mars_tls_read(struct mars_tls *t, void *buf, size_t len, mars_tls_cb cb);

/* Ends the session: cancels its socket ops; pending requests complete with -ECANCELED (or
 * their real result when that came first). No close_notify is sent. */
void mars_tls_cancel(struct mars_tls *t);
/* True while the session has an ev op in flight (the session must not be destroyed). */
bool mars_tls_busy(const struct mars_tls *t);
/* Optional: cb(t, 0) runs once, from the loop, when the session has ended (failed or
 * cancelled) and its last op has completed, so an owner that tears down from callbacks
 * knows when it may destroy it. If the session has ended and is not busy already, it does
 * not run: check mars_tls_busy() after mars_tls_cancel(). cb may destroy the session. */
void mars_tls_set_idle_cb(struct mars_tls *t, mars_tls_cb cb);
/* Frees the session. Requires !mars_tls_busy(t). */
void mars_tls_destroy(struct mars_tls *t);

void *mars_tls_data(const struct mars_tls *t);
/* Human reason of the failure that ended the session ("" when none); valid until destroy. */
const char *mars_tls_error(const struct mars_tls *t);
/* After the handshake: protocol and cipher ("TLSv1.3", "TLS_AES_256_GCM_SHA384"). */
const char *mars_tls_version(const struct mars_tls *t);
const char *mars_tls_cipher(const struct mars_tls *t);
/* Server side after a handshake with a verified client certificate: its subject's
 * common name into buf (for logs and token-free authorization); returns 0 or -ENOENT. */
int mars_tls_peer_cn(const struct mars_tls *t, char *buf, size_t len);

#endif
