/*
 * http_common.h - what every HTTP-based sink (http, elasticsearch, loki) shares: the tls,
 * auth, headers and compression options, one HTTP client per sink instance, request
 * bodies (compressed or flattened from iovecs) in per-call buffers reused across requests,
 * and one mapping from an HTTP outcome to OK / RETRY / REJECTED.
 *
 * A sink embeds struct mars_http_common_conf in its conf struct and puts
 * MARS_HTTP_COMMON_OPTIONS(its_conf_type, member) in its option table; at init it calls
 * mars_http_common_init(), and for each request fills a struct mars_http_common_call (one per
 * request slot: request.concurrency of them) and calls mars_http_common_send().
 *
 * Thread: the sink's worker.
 */
#ifndef MARS_HTTP_COMMON_H
#define MARS_HTTP_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/compress.h"
#include "core/http_client.h"
#include "component.h"

struct mars_http_common_conf {
    struct mars_tls_conf tls;
    struct mars_auth_conf auth;
    struct mars_strmap headers;
    int compression; /* enum mars_codec */
    bool http2;      /* https:// through libcurl, HTTP/2 where ALPN offers it */
};

/* Option table entries for a conf struct TYPE whose struct mars_http_common_conf member is
 * MEMBER. `compression` defaults to DEF ("none", "gzip"). */
#define MARS_HTTP_COMMON_OPTIONS(TYPE, MEMBER, DEF)                                                \
    {.name = "compression",                                                                        \
     .type = MARS_OPT_ENUM,                                                                        \
     .offset = offsetof(TYPE, MEMBER.compression),                                                 \
     .def = DEF,                                                                                   \
     .choices = mars_compression_names,                                                            \
     .desc = "Request body compression: none, gzip or zstd (lz4 has no HTTP encoding)."},          \
        {.name = "headers",                                                                        \
         .type = MARS_OPT_MAP,                                                                     \
         .offset = offsetof(TYPE, MEMBER.headers),                                                 \
         .desc = "Extra HTTP headers sent with every request (name: value)."},                     \
        {.name = "http2",                                                                          \
         .type = MARS_OPT_BOOL,                                                                    \
         .offset = offsetof(TYPE, MEMBER.http2),                                                   \
         .def = "false",                                                                           \
         .desc = "https:// by HTTP/2 where the server offers it (TLS ALPN), through libcurl; "     \
                 "false: HTTP/1.1 by mars's own client. http:// is always HTTP/1.1."},             \
        {.name = "auth",                                                                           \
         .type = MARS_OPT_SECTION,                                                                 \
         .offset = offsetof(TYPE, MEMBER.auth),                                                    \
         .sub = mars_auth_options,                                                                 \
         .desc = "Authentication: basic or bearer."},                                              \
    {                                                                                              \
        .name = "tls", .type = MARS_OPT_SECTION, .offset = offsetof(TYPE, MEMBER.tls),             \
        .sub = mars_tls_options,                                                                   \
        .desc = "TLS for https:// URLs: CA, client certificate, "                                  \
                "verification."                                                                    \
    }

/* The error_type a transport failure (struct mars_http_resp error, a negative errno) counts
 * as: connect when no connection was made (refused, unreachable, unresolved), tls when the
 * handshake failed, write otherwise (reset, timeout, ...). */
enum mars_error_type mars_http_common_error_type(int err);

/* The check hook's part: cert/key, auth fields, lz4 refused. */
int mars_http_common_check(const struct mars_http_common_conf *c, const struct mars_cfg_node *node,
                           struct mars_diag *diag);

struct mars_http_common {
    struct mars_sink *sink;
    const struct mars_http_common_conf *conf;
    struct mars_http *client;
    struct mars_http_tls tls;
    const char **headers; /* NULL-terminated "Name: value", owned */
    size_t nheaders, headers_cap;
};

struct mars_http_common_call;
typedef void (*mars_http_common_cb)(struct mars_http_common_call *c,
                                    const struct mars_http_resp *resp);

/* One request slot: the HTTP request and the body buffers it reuses. */
struct mars_http_common_call {
    struct mars_http_req http;
    struct mars_http_common *hs;
    struct mars_sink_req *r; /* the engine request it carries, NULL when free */
    struct mars_compressor comp;
    char *flat; /* uncompressed body, when not compressed */
    size_t flat_cap;
    struct iovec *iov; /* borrow_body: the sink's iovecs, copied (the bytes are not) */
    size_t iov_cap;
    /* Set by the sink: the bytes the iovecs point to stay unchanged until cb (the slot's
     * own buffer, or read chunks the request holds), so an uncompressed body is sent from
     * them in place instead of being copied into flat: the copy was as large as the
     * request, on top of it. */
    bool borrow_body;
    /* Set by the sink: comp already holds the compressed body (mars_compress_begin/more/end
     * as it encoded), so send ignores the iovecs. */
    bool body_compressed;
    uint64_t body_bytes; /* bytes sent (after compression) */
    size_t max_body;     /* response bytes kept for cb; 0: the client's default */
    mars_http_common_cb cb;
    void *data; /* the sink's */
};

/* Sets up the client and the header list (content_type, plus Content-Encoding when
 * compressing, plus the configured headers). urls[0..nurls): where the sink sends; when
 * every one is plain http:// (mars_http_url_direct) libcurl is not loaded, else it is
 * loaded now and a missing libcurl fails the start. Returns 0 or a negative errno. */
int mars_http_common_init(struct mars_http_common *hs, struct mars_sink *s,
                          const struct mars_http_common_conf *conf, const char *content_type,
                          const char *const *urls, size_t nurls);
/* Adds one more header to every request (a sink's own, like Loki's X-Scope-OrgID), after
 * init. Returns 0 or -ENOMEM. */
int mars_http_common_add_header(struct mars_http_common *hs, const char *name, const char *value);
/* Cancels every request in flight (their callbacks run with -ECANCELED) and the client's
 * loop ops; the sink's abort hook. */
void mars_http_common_abort(struct mars_http_common *hs);
void mars_http_common_fini(struct mars_http_common *hs);

/* A free call slot of hs (calls has n entries), or NULL. */
struct mars_http_common_call *mars_http_common_slot(struct mars_http_common_call *calls,
                                                    unsigned n);
void mars_http_common_call_fini(struct mars_http_common_call *c);

/* Sends iov[0..n) (compressed as configured) with `method` to `url` (borrowed until cb)
 * for engine request r. cb runs exactly once, from the loop, unless this returns < 0. */
int mars_http_common_send(struct mars_http_common *hs, struct mars_http_common_call *c,
                          struct mars_sink_req *r, const char *method, const char *url,
                          const struct iovec *iov, int n, mars_http_common_cb cb);

/* The usual mapping: transport error, 3xx, 401, 403, 408, 429, 5xx -> RETRY (with
 * Retry-After passed on); other 4xx -> REJECTED; 2xx -> OK; cancelled -> ABORTED. Logs failures
 * (rate limited) with the status and the start of the response body, and counts transport
 * errors by mars_http_common_error_type(). */
enum mars_sink_result mars_http_common_classify(struct mars_http_common *hs,
                                                struct mars_sink_req *r,
                                                const struct mars_http_resp *resp);

#endif
