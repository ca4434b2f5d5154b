/*
 * http_client.h - an HTTP client on a mars ev loop.
 *
 * Requests run on the loop of the thread that submits them and never block it: mars's own
 * HTTP/1.1 and h2c over core/conn for those marked direct (see `direct`), libcurl's multi
 * interface, with its socket and timer callbacks driven by mars_ev poll and timer ops, for
 * the rest. One client per loop (per thread); connections are kept and reused across
 * requests; HTTP/1.1, and HTTP/2 where TLS ALPN offers it (or by prior knowledge when
 * asked).
 *
 * A caller embeds struct mars_http_req in its own request struct, fills the public part,
 * submits it, and gets exactly one done() callback, later, from the loop (never inside
 * mars_http_submit). The request, its url, headers and body are borrowed by the client
 * from submit until done() starts. Errors are negative errno values (-ETIMEDOUT,
 * -ECONNREFUSED, -ECANCELED, ...) with a human text for the log.
 *
 * Thread: the loop's thread only.
 */
#ifndef MARS_HTTP_CLIENT_H
#define MARS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mars_ev_loop;
struct mars_http;
struct mars_http_priv;

/* TLS for https:// URLs. All strings borrowed for the client's or request's lifetime. */
struct mars_http_tls {
    const char *ca_file;     /* PEM bundle; NULL: the system store */
    const char *cert_file;   /* client certificate (PEM), optional */
    const char *key_file;    /* its key (PEM), optional */
    const char *server_name; /* name to verify instead of the URL's host; NULL: the host */
    bool verify;             /* peer and host verification; false only when the user asked */
};

/* What came back. Valid during done() only. */
struct mars_http_resp {
    int status;             /* HTTP status; 0 when no response arrived */
    int error;              /* 0, or a negative errno for a transport failure */
    const char *error_text; /* set when error != 0 */
    const char *body;       /* NUL-terminated, at most req.max_body bytes kept */
    size_t body_len;
    bool body_truncated;    /* the response was longer than max_body */
    int64_t retry_after_ns; /* from a Retry-After header (seconds or HTTP date); -1: none */
};

struct mars_http_req {
    /* ---- filled by the caller ---- */
    const char *method; /* "GET", "POST", "PUT", "DELETE"; NULL: GET, or POST with a body */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated; NULL: none */
    const void *body;           /* request body, borrowed until done(); NULL: none */
    size_t body_len;
    /* Or a body in pieces (when body is NULL): body_iov[0..body_iovcnt) and the bytes they
     * point to are borrowed until done(), body_len is their total; libcurl reads them
     * through its upload buffer, so they need not be one contiguous copy. */
    const struct iovec *body_iov;
    int body_iovcnt;
    int64_t timeout_ns;              /* whole request; 0: none (for watches) */
    int64_t connect_timeout_ns;      /* 0: 10 s */
    const struct mars_http_tls *tls; /* NULL: verify with the system store */
    const char *user, *password;     /* basic auth when user != NULL */
    const char *bearer;              /* Authorization: Bearer when != NULL */
    size_t max_body;                 /* response bytes kept for done(); 0: 64 KiB */
    bool http2_prior_knowledge;      /* h2c on http:// (gRPC); default HTTP/1.1, h2 by ALPN */
    bool fresh_connection;           /* a new connection, closed after (probes); default: reuse */
    /* May go without libcurl: an http:// or https:// URL (no user in it, no proxy for its
     * scheme in the environment) is then sent by mars's own HTTP/1.1 (core/http_direct.c:
     * head and body in one sendmsg, the body's iovecs where they are; TLS by core/tls), or,
     * http:// with http2_prior_knowledge, as a stream of mars's own h2c session to the host
     * (core/http2_direct.c, multiplexed). */
    bool direct;
    /* Streaming: when set, each piece of the response body goes here instead of being
     * kept (done() then has no body). Return false to abort the request (done() gets
     * -ECANCELED). Runs on the loop thread. */
    bool (*on_data)(struct mars_http_req *r, const char *p, size_t n);
    /* Optional: every response header line as received ("name: value\r\n"; HTTP/2 names
     * in lower case), trailers included (they come after the body: gRPC's grpc-status).
     * Loop thread. */
    void (*on_header)(struct mars_http_req *r, const char *line, size_t n);
    void (*done)(struct mars_http_req *r, const struct mars_http_resp *resp);
    void *data; /* the caller's */

    /* ---- the client's ---- */
    struct mars_http_priv *priv;
};

struct mars_http_opts {
    const char *user_agent;        /* NULL: "mars/<version>" */
    unsigned max_host_connections; /* per host; 0: 8 */
    /* libcurl is loaded at the first request that needs it, not at create (a client whose
     * requests are all direct never loads it); then a missing libcurl fails that request
     * with -ENOPKG instead of the create. */
    bool curl_on_demand;
};

/* One client on `loop`. Returns owned (free with mars_http_destroy) or NULL with errno:
 * ENOPKG when libcurl cannot be opened (core/curl_api.h; the reason is logged once; not
 * with curl_on_demand), else ENOMEM. */
struct mars_http *mars_http_create(struct mars_ev_loop *loop, const struct mars_http_opts *opts);

/* The URL would be sent without libcurl by a request with .direct set. */
bool mars_http_url_direct(const char *url);

/* Starts r. Returns 0 (done() will run exactly once) or a negative errno (it will not). */
int mars_http_submit(struct mars_http *h, struct mars_http_req *r);

/* Ends r early: its done() runs (later, from the loop) with error -ECANCELED unless it
 * had already finished. No-op for a request not in flight. */
void mars_http_cancel(struct mars_http *h, struct mars_http_req *r);

/* Cancels every request (their done() runs with -ECANCELED) and every loop op of the
 * client; call before the loop is run down. The client stays usable until destroyed. */
void mars_http_shutdown(struct mars_http *h);

/* Requests in flight. */
unsigned mars_http_active(const struct mars_http *h);

/* Frees the client. Requires mars_http_active() == 0 and no loop op of the client in
 * flight (after mars_http_shutdown(), run the loop until mars_ev_pending() drops). */
void mars_http_destroy(struct mars_http *h);

#endif
