/*
 * grpc.h - a small gRPC client on the loop's HTTP client (core/http_client.h): unary and
 * client-streaming calls whose request messages are all known when the call starts.
 *
 * A call is one HTTP/2 POST to <channel>/<package.Service>/<Method>: h2c by prior
 * knowledge for a plain `host:port`, h2 by ALPN over TLS. The body is the concatenation of
 * length-prefixed messages (mars_grpc_buf_add), so a client stream of N messages is one
 * body; the status comes from the grpc-status / grpc-message trailers (or the single
 * header block of a Trailers-Only answer). What the caller gets is always a gRPC status:
 * a transport failure with no grpc-status is UNAVAILABLE (retryable), a non-200 HTTP
 * answer is mapped as gRPC's "HTTP to gRPC status" table says.
 *
 * Calls on a plain channel go by mars's own h2c (core/http2_direct.c): they multiplex on
 * one connection per host and port and never load libcurl. When that path declines (a proxy
 * in the environment) libcurl carries them, and Debian 12's libcurl 7.88 cannot reuse an h2c
 * connection (the second request on it fails with CURLE_HTTP2): there each call gets its
 * own connection (curl_version_info() at channel creation decides).
 *
 * Thread: the loop's thread of the HTTP client the channel borrows.
 */
#ifndef MARS_GRPC_H
#define MARS_GRPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/http_client.h"

/* gRPC status codes (the numbers are the protocol's). */
enum mars_grpc_code {
    MARS_GRPC_OK = 0,
    MARS_GRPC_CANCELLED = 1,
    MARS_GRPC_UNKNOWN = 2,
    MARS_GRPC_INVALID_ARGUMENT = 3,
    MARS_GRPC_DEADLINE_EXCEEDED = 4,
    MARS_GRPC_NOT_FOUND = 5,
    MARS_GRPC_ALREADY_EXISTS = 6,
    MARS_GRPC_PERMISSION_DENIED = 7,
    MARS_GRPC_RESOURCE_EXHAUSTED = 8,
    MARS_GRPC_FAILED_PRECONDITION = 9,
    MARS_GRPC_ABORTED = 10,
    MARS_GRPC_OUT_OF_RANGE = 11,
    MARS_GRPC_UNIMPLEMENTED = 12,
    MARS_GRPC_INTERNAL = 13,
    MARS_GRPC_UNAVAILABLE = 14,
    MARS_GRPC_DATA_LOSS = 15,
    MARS_GRPC_UNAUTHENTICATED = 16,
};

/* "UNAVAILABLE"; "CODE_<n>" style text is never returned: unknown codes give "UNKNOWN". */
const char *mars_grpc_code_name(int code);
/* True for the codes worth a retry with backoff: UNAVAILABLE, RESOURCE_EXHAUSTED,
 * DEADLINE_EXCEEDED, ABORTED. */
bool mars_grpc_retryable(int code);

/* ---- framing (pure functions, unit-tested) ---- */

/* A growing byte buffer of framed messages. Zero-initialise; free with mars_grpc_buf_fini. */
struct mars_grpc_buf {
    uint8_t *p;
    size_t len, cap;
};
/* Appends m packed, behind its 5-byte prefix (flag 0, big-endian length). Returns 0 or
 * -ENOMEM, -EMSGSIZE (over 4 GiB). */
int mars_grpc_buf_add(struct mars_grpc_buf *b, const ProtobufCMessage *m);
/* Appends already-packed bytes as one message. Returns 0, -ENOMEM or -EMSGSIZE. */
int mars_grpc_buf_add_raw(struct mars_grpc_buf *b, const void *msg, size_t n);
void mars_grpc_buf_reset(struct mars_grpc_buf *b);
void mars_grpc_buf_fini(struct mars_grpc_buf *b);

/* Reads the message at *off of p[0..n): sets *msg and *len (borrowed from p) and advances *off.
 * Returns 1 for a message, 0 at the end, -EBADMSG for a truncated frame and -ENOTSUP for a
 * compressed one (mars never asks for compression). */
int mars_grpc_frame_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **msg, size_t *len);

/* The grpc-timeout value for ns ("250m", "30S": at most 8 digits, the finest unit that
 * fits) into out. Returns its length, or 0 when out is too small. */
size_t mars_grpc_timeout_value(int64_t ns, char *out, size_t n);
/* Decodes grpc-message's percent-encoding in place; returns the new length. */
size_t mars_grpc_percent_decode(char *s, size_t n);
/* The gRPC status a non-200 HTTP status stands for (400 INTERNAL, 401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, else UNKNOWN). */
int mars_grpc_code_from_http(int http_status);

/* ---- channel and calls ---- */

struct mars_grpc_channel_opts {
    const char *address; /* host:port (borrowed for the call to create) */
    bool tls;            /* https with ALPN h2; else h2c by prior knowledge */
    const struct mars_http_tls
        *tls_conf; /* borrowed for the channel's lifetime; NULL: system store */
    /* Metadata sent with every call, "name: value" (lowercase names), NULL-terminated;
     * copied. At most MARS_GRPC_MAX_METADATA entries. */
    const char *const *metadata;
    int64_t connect_timeout_ns; /* 0: the HTTP client's default (10 s) */
};
#define MARS_GRPC_MAX_METADATA 8

struct mars_grpc_channel;

/* A channel to one server over http (borrowed: it must outlive the channel). Returns owned
 * (free with mars_grpc_channel_destroy, after every call finished) or NULL with errno. */
struct mars_grpc_channel *mars_grpc_channel_create(struct mars_http *http,
                                                   const struct mars_grpc_channel_opts *o);
void mars_grpc_channel_destroy(struct mars_grpc_channel *ch);
/* False when calls each get their own connection (libcurl with the h2c reuse bug). */
bool mars_grpc_channel_reuses(const struct mars_grpc_channel *ch);

/* How a call ended. Valid during done() only. */
struct mars_grpc_result {
    int code;             /* enum mars_grpc_code, always set */
    const char *message;  /* grpc-message decoded, or the transport error; never NULL */
    bool transport;       /* no grpc-status arrived: code was made up from the transport */
    int http_status;      /* 0 when no answer arrived */
    const uint8_t *reply; /* the first response message (unframed), NULL when none */
    size_t reply_len;
};

struct mars_grpc_call;
typedef void (*mars_grpc_done_fn)(struct mars_grpc_call *c, const struct mars_grpc_result *res);

/* One call. The caller embeds it in its own struct, fills the first part and starts it;
 * done() runs exactly once, later, from the loop. Reusable after done() started. */
struct mars_grpc_call {
    /* ---- the caller's ---- */
    const char *path; /* "/skywalking.v3.LogReportService/collect", borrowed until done */
    const void *body; /* framed messages (mars_grpc_buf), borrowed until done */
    size_t body_len;
    int64_t timeout_ns; /* sent as grpc-timeout and enforced locally; 0: none */
    mars_grpc_done_fn done;
    void *data;

    /* ---- the client's ---- */
    struct mars_http_req http;
    struct mars_grpc_channel *ch;
    char *url;
    const char *hdrs[MARS_GRPC_MAX_METADATA + 5];
    char timeout_hdr[32];
    int status; /* grpc-status seen, -1: none */
    char message[256];
    bool active;
};

/* Starts c on ch. Returns 0 (done() will run) or a negative errno (it will not). */
int mars_grpc_call_start(struct mars_grpc_channel *ch, struct mars_grpc_call *c);
/* Ends c early: done() runs later with CANCELLED unless it already finished. */
void mars_grpc_call_cancel(struct mars_grpc_call *c);

#endif
