/*
 * http_client_internal.h - what core/http_client.c (libcurl), core/http_direct.c (mars's own
 * HTTP/1.1 for plain http://) and core/http2_direct.c (mars's own h2c, by prior knowledge)
 * share: the client and the per-request state. Not for use outside those three files (and
 * core/http_tls.c, core/http2_nv.c, core/direct_conn.c, their helpers).
 *
 * Thread: the client's loop.
 */
#ifndef MARS_HTTP_CLIENT_INTERNAL_H
#define MARS_HTTP_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/curl_api.h"
#include "core/ev.h"
#include "core/http_client.h"

struct http_sock;
struct h1_conn;
struct h1_tls;
struct mars_tls_ctx;
struct h1_xfer;
struct h2_conn;
struct h2_stream;

struct mars_http_priv {
    struct mars_http *h;
    struct mars_http_req *req;
    CURL *easy; /* NULL for a direct request */
    struct curl_slist *hdrs;
    char *connect_to_entry;
    struct curl_slist *connect_to;
    char *url; /* rewritten URL when tls.server_name is set */
    char *body;
    size_t len, cap, max;
    int up_iov;    /* body_iov: the piece being read */
    size_t up_off; /* bytes of it read */
    bool truncated, aborted, cancelled;
    int fail_soon; /* a direct request that failed at start: its error, delivered by the kick */
    int64_t retry_after_ns;
    char errbuf[CURL_ERROR_SIZE];
    struct mars_http_priv *prev, *next; /* active list */
    struct mars_http_priv *next_done;   /* deferred completions */
    struct h1_xfer *x;                  /* a direct request's exchange (http_direct.c) */
    struct h2_stream *h2;               /* a direct h2c request's stream (http2_direct.c) */
};

/* What a direct connection of either protocol has (http_direct.c's h1_conn and
 * http2_direct.c's h2_conn embed it): its client, core/conn's connection, the peer, one
 * timer for its deadlines, and its place on the client's live list or graveyard. */
struct mars_direct_conn {
    struct mars_http *h;
    struct mars_conn *c;
    char *host, *port;
    struct mars_ev_op timer;
    bool timer_armed;
    int64_t timer_armed_due;
    bool closed; /* in the graveyard */
    struct mars_direct_conn *prev, *next;
};

struct mars_http {
    struct mars_ev_loop *loop;
    CURLM *multi; /* NULL until the first request that needs libcurl */
    char *user_agent;
    unsigned max_host_connections;
    struct http_sock *socks;
    struct mars_http_priv *active_list;
    unsigned active;
    /* timer */
    struct mars_ev_op timer;
    bool timer_armed;
    int64_t timer_due; /* wanted deadline (monotonic ns), -1: none */
    int64_t timer_armed_due;
    /* deferred completions */
    struct mars_ev_op kick;
    bool kick_armed;
    struct mars_http_priv *done_head, *done_tail;
    bool shutting_down;
    /* direct connections (http_direct.c): in use or idle, and closed ones to free */
    struct mars_direct_conn *conns, *graveyard;
    struct h1_tls *tlss; /* their TLS ctxs */
    /* direct h2c sessions (http2_direct.c): open or opening, and closed ones to free */
    struct mars_direct_conn *h2_conns, *h2_graveyard;
};

/* ---- http_client.c, for http_direct.c ---- */

/* A piece of the response body (kept up to max_body, or to req->on_data). false: the
 * request's on_data asked to stop. */
bool mars_http_priv_body(struct mars_http_priv *pv, const char *p, size_t len);
/* One response header line as received ("Name: value\r\n"): Retry-After, req->on_header. */
void mars_http_priv_header(struct mars_http_priv *pv, const char *p, size_t len);
/* The request ended (status in the exchange, err 0) or failed (err < 0, text why): unlinks
 * p, runs done() and frees p. Called from a loop callback, never inside submit. */
void mars_http_priv_end(struct mars_http_priv *p, int status, int err, const char *text);
/* p (submitted, not yet linked) fails with err and the text in p->errbuf, from the kick:
 * for a direct request that cannot start (its TLS files do not load). */
void mars_http_priv_fail_soon(struct mars_http_priv *p, int err);
/* Runs the client's deferred work soon (from a zero-delay op): completions, freeing closed
 * direct connections. */
void mars_http_kick(struct mars_http *h);

/* ---- direct_conn.c, for http_direct.c and http2_direct.c ---- */

void mars_direct_conn_unlink(struct mars_direct_conn **head, struct mars_direct_conn *d);
void mars_direct_conn_push(struct mars_direct_conn **head, struct mars_direct_conn *d);
/* Closes d for good: from `live` to `graveyard`, its connection closed, its timer
 * cancelled, the client kicked to free it (mars_direct_conn_reap) once nothing of it is in
 * flight. Does nothing when d is closed already. */
void mars_direct_conn_bury(struct mars_direct_conn *d, struct mars_direct_conn **live,
                           struct mars_direct_conn **graveyard);
/* d's timer fires cb (op->data is d) at `due` (monotonic ns), or earlier when it was armed
 * for earlier: an armed timer due later is cancelled, and cb is expected to arm it again.
 * Nothing on a closed connection or a client shutting down. */
void mars_direct_conn_timer_arm(struct mars_direct_conn *d, int64_t due, mars_ev_cb cb);
/* Frees (with free_fn) the buried connections with no op in flight, or all of them and
 * every live one with `all`. */
void mars_direct_conn_reap(struct mars_direct_conn **live, struct mars_direct_conn **graveyard,
                           bool all, void (*free_fn)(struct mars_direct_conn *));
/* Destroys d's connection and frees its peer names (for the free_fn). */
void mars_direct_conn_fini(struct mars_direct_conn *d);

/* ---- http_direct.c ---- */

/* The parts of an http:// or https:// URL, pointing into it (not NUL-terminated); port
 * NULL: 80, or 443 with tls. */
struct mars_http_url {
    const char *authority, *host, *port, *path;
    size_t authority_len, host_len, port_len, path_len;
    bool tls; /* https:// */
};
/* http[s]://host[:port][/path][?query][#fragment] into u; false for anything libcurl should
 * handle (another scheme, a user, spaces or control bytes, a bad port). */
bool mars_http_url_parse(const char *url, struct mars_http_url *u);
/* The Authorization value r asks for: "Basic <base64 of user:password>" or "Bearer
 * <token>". Returns owned (wipe it with explicit_bzero, then free), or NULL with *err 0
 * when r asks for none, -ENOMEM when out of memory. */
char *mars_http_auth_value(const struct mars_http_req *r, int *err);

/* r can go without libcurl: http:// or https://, no user in the URL, no proxy for it in
 * the environment (HTTP/1.1 here, h2c by prior knowledge on http:// in http2_direct.c). */
bool mars_http_direct_ok(const struct mars_http_req *r);
/* Starts p (its own exchange on a kept or new connection; an h2c request's stream on the
 * host's session). 0, or a negative errno before anything is in flight. */
int mars_http_direct_start(struct mars_http *h, struct mars_http_priv *p);
/* Stops p's exchange (an HTTP/1.1 connection is closed, an h2c stream reset); p's done()
 * is the caller's to deliver. */
void mars_http_direct_cancel(struct mars_http *h, struct mars_http_priv *p);
/* Frees p's exchange state (after done()). */
void mars_http_direct_free(struct mars_http_priv *p);
/* Closes every direct connection, idle or not (their ops are cancelled). */
void mars_http_direct_shutdown(struct mars_http *h);
/* Frees closed connections whose ops have all completed; all == true (destroy): every one. */
void mars_http_direct_reap(struct mars_http *h, bool all);
/* A connection, live or closing, was made with ctx. */
bool mars_http_direct_holds_tls(const struct mars_http *h, const struct mars_tls_ctx *ctx);

/* ---- http_tls.c ---- */

/* The client's TLS ctx for t (NULL: verify with the system store), made at first use and
 * again when its files changed. NULL with the reason in err. */
struct mars_tls_ctx *mars_http_tls_ctx(struct mars_http *h, const struct mars_http_tls *t,
                                       char *err, size_t errlen);
/* Frees the stale ctxs no connection holds; all == true (destroy): every one. */
void mars_http_tls_reap(struct mars_http *h, bool all);

/* ---- http2_direct.c, for http_direct.c ---- */

/* The same as the mars_http_direct_ functions above, for requests with
 * http2_prior_knowledge and for h2c sessions; u is p's URL, parsed. */
int mars_http2_direct_start(struct mars_http *h, struct mars_http_priv *p,
                            const struct mars_http_url *u);
void mars_http2_direct_cancel(struct mars_http_priv *p);
void mars_http2_direct_free(struct mars_http_priv *p);
void mars_http2_direct_shutdown(struct mars_http *h);
void mars_http2_direct_reap(struct mars_http *h, bool all);

#endif
