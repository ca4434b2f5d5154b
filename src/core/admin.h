/*
 * admin.h - a small HTTP/1.1 server on its own thread (libevent evhttp), for mars's admin
 * API and the prometheus_exporter sink's listener.
 *
 * The server binds when created (so a bad address or a port in use is reported at once),
 * serves from its own thread and event_base once started, and stops and joins that thread
 * on destroy. Handlers therefore run on the server's thread: they may only read state that
 * is safe to read from another thread (atomics, mutex-protected tables).
 *
 * Limits: request headers and body sizes (evhttp answers 400/413 beyond them), a deadline
 * for each whole request (request_timeout from connect, idle_timeout from the previous
 * request on a keep-alive connection; a client trickling bytes is closed), and a cap on
 * open connections (one beyond it evicts the connection that waited longest without a
 * request, so probes stay answerable under a flood of slow clients). Requests with a method no
 * route allows get 405 with an Allow header, unknown paths 404, malformed requests 400 from evhttp.
 *
 * Addresses: "host:port" ("127.0.0.1:8686", "[::1]:8686", "localhost:0" for any free port),
 * or a unix socket path: "/run/mars/api.sock" or "unix:/run/mars/api.sock". A stale socket
 * file nobody listens on is replaced; the file is removed on destroy.
 */
#ifndef MARS_ADMIN_H
#define MARS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct evhttp_request;
struct mars_admin;

enum mars_admin_method {
    MARS_HTTP_GET = 1u << 0,
    MARS_HTTP_HEAD = 1u << 1,
    MARS_HTTP_POST = 1u << 2,
    MARS_HTTP_PUT = 1u << 3,
    MARS_HTTP_DELETE = 1u << 4,
    MARS_HTTP_OTHER = 1u << 5,
};

struct mars_admin_opts {
    const char *name;    /* in log lines: "api", a component id */
    const char *address; /* see above */
    unsigned max_connections;
    size_t max_headers_size;
    size_t max_body_size;
    int idle_timeout_s;          /* 0: 10 s */
    uint64_t request_timeout_ms; /* 0: 5 s */
};

/* What the limits closed, since create. */
struct mars_admin_stats {
    uint64_t timed_out; /* past request_timeout / idle_timeout without a whole request */
    uint64_t evicted;   /* closed to make room over max_connections */
};

/* One request, borrowed by the handler until it returns. */
struct mars_admin_req {
    struct evhttp_request *req;
    const char *path;  /* decoded, without the query */
    const char *query; /* raw query string or NULL */
    unsigned method;   /* enum mars_admin_method */
    bool replied;
};

typedef void (*mars_admin_handler)(struct mars_admin_req *r, void *arg);

/* Binds the address and returns an owned server (not serving yet), or NULL after logging
 * why, with errno saying it (EADDRINUSE for a busy port). Destroy with mars_admin_destroy(). */
struct mars_admin *mars_admin_create(const struct mars_admin_opts *o);
/* Adds a route before start: `path` exactly, or every path under it when `prefix` (then
 * path should end in '/'). `methods` is a mask of enum mars_admin_method; GET routes also
 * answer HEAD. arg is borrowed until destroy. Returns 0 or -ENOMEM. */
int mars_admin_route(struct mars_admin *a, const char *path, bool prefix, unsigned methods,
                     mars_admin_handler h, void *arg);
/* Starts the server thread. Returns 0 or -errno (logged). */
int mars_admin_start(struct mars_admin *a);
/* Fills *st; callable from any thread. */
void mars_admin_stats(const struct mars_admin *a, struct mars_admin_stats *st);
/* The bound address as "127.0.0.1:PORT" or the unix socket path. */
const char *mars_admin_address(const struct mars_admin *a);
/* Stops the thread (if started), closes every connection and the listener. NULL is fine. */
void mars_admin_destroy(struct mars_admin *a);

/* ---- inside a handler ---- */

/* A request header (case-insensitive name), or NULL. */
const char *mars_admin_header(struct mars_admin_req *r, const char *name);
/* The request body (borrowed). */
struct evbuffer *mars_admin_body(struct mars_admin_req *r);
/* Sends the response: status, content type, body (drained; may be NULL for empty). */
void mars_admin_reply(struct mars_admin_req *r, int status, const char *content_type,
                      struct evbuffer *body);
/* Sends a JSON response built from printf-style arguments. */
void mars_admin_reply_json(struct mars_admin_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a response header before mars_admin_reply(). */
void mars_admin_add_header(struct mars_admin_req *r, const char *name, const char *value);
/* Appends s as a JSON string literal (quotes included, control bytes escaped as \u00XX,
 * other bytes as they are). Returns 0 or -ENOMEM. */
int mars_json_string(struct evbuffer *out, const char *s);
/* The same for the n bytes at s. */
int mars_json_string_n(struct evbuffer *out, const char *s, size_t n);

#endif
