/*
 * grpc.c - the gRPC client of grpc.h: framing, status mapping, and calls as HTTP/2 POSTs
 * through the loop's HTTP client (core/http_client.h): h2c to a plain peer by mars's own
 * HTTP/2 (core/http2_direct.c), h2 over TLS by libcurl.
 *
 * How a call runs. mars_grpc_call_start() fills the embedded struct mars_http_req: the URL
 * (channel base + method path), the headers gRPC wants (content-type application/grpc,
 * te: trailers, grpc-timeout, the channel's metadata), the framed body, h2c by prior
 * knowledge or h2 over TLS, and an on_header hook. The HTTP client hands both the response
 * headers and, after the body, the trailers to that hook, which keeps grpc-status and
 * grpc-message;
 * the response body (framed Commands and the like, small) is kept by the HTTP client. When
 * the transfer ends, finish() turns what arrived into one gRPC status:
 *   grpc-status seen            -> that status, even if the transfer then failed (a server
 *                                  may reset the stream right after its trailers)
 *   cancelled                   -> CANCELLED
 *   transport error, no status  -> UNAVAILABLE (DEADLINE_EXCEEDED for a local timeout);
 *                                  libcurl 7.88 sometimes loses a Trailers-Only status
 *                                  this way (protocols.md §13): a retry is the safe answer
 *   HTTP status other than 200  -> the HTTP-to-gRPC table
 *   200 without grpc-status     -> UNAVAILABLE ("no grpc-status"), retryable as well
 *
 * Connections: calls on a plain channel go direct (.direct): they share one h2c session
 * per host and port as concurrent streams, and libcurl is never loaded for them. Only when
 * the direct path declines (a proxy in the environment) does libcurl carry h2c, and then,
 * with libcurl older than 8.0, every call gets a fresh connection closed after it (the
 * reuse bug). TLS channels share libcurl's connections and multiplex.
 *
 * Thread: the loop's thread of the borrowed HTTP client.
 */
#include "core/grpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/curl_api.h"
#include "core/grow.h"

#define FRAME_HDR 5
#define MAX_REPLY (256u * 1024)

struct mars_grpc_channel {
    struct mars_http *http;
    char *base; /* "http://host:port" */
    bool tls, reuse;
    const struct mars_http_tls *tls_conf;
    char *metadata[MARS_GRPC_MAX_METADATA];
    size_t nmetadata;
    int64_t connect_timeout_ns;
};

/* ---- codes ---- */

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *mars_grpc_code_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof(code_names) / sizeof(code_names[0]))
        return "UNKNOWN";
    return code_names[code];
}

bool mars_grpc_retryable(int code)
{
    return code == MARS_GRPC_UNAVAILABLE || code == MARS_GRPC_RESOURCE_EXHAUSTED ||
           code == MARS_GRPC_DEADLINE_EXCEEDED || code == MARS_GRPC_ABORTED;
}

int mars_grpc_code_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return MARS_GRPC_INTERNAL;
    case 401:
        return MARS_GRPC_UNAUTHENTICATED;
    case 403:
        return MARS_GRPC_PERMISSION_DENIED;
    case 404:
        return MARS_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return MARS_GRPC_UNAVAILABLE;
    default:
        return MARS_GRPC_UNKNOWN;
    }
}

/* ---- framing ---- */

static int buf_reserve(struct mars_grpc_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len)
        return -ENOMEM;
    return mars_grow(&b->p, &b->cap, b->len + more, 1);
}

static void put_prefix(uint8_t *p, size_t n)
{
    p[0] = 0; /* not compressed */
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
}

int mars_grpc_buf_add(struct mars_grpc_buf *b, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > UINT32_MAX)
        return -EMSGSIZE;
    int rc = buf_reserve(b, FRAME_HDR + n);
    if (rc)
        return rc;
    put_prefix(b->p + b->len, n);
    protobuf_c_message_pack(m, b->p + b->len + FRAME_HDR);
    b->len += FRAME_HDR + n;
    return 0;
}

int mars_grpc_buf_add_raw(struct mars_grpc_buf *b, const void *msg, size_t n)
{
    if (n > UINT32_MAX)
        return -EMSGSIZE;
    int rc = buf_reserve(b, FRAME_HDR + n);
    if (rc)
        return rc;
    put_prefix(b->p + b->len, n);
    if (n)
        memcpy(b->p + b->len + FRAME_HDR, msg, n);
    b->len += FRAME_HDR + n;
    return 0;
}

void mars_grpc_buf_reset(struct mars_grpc_buf *b)
{
    b->len = 0;
}

void mars_grpc_buf_fini(struct mars_grpc_buf *b)
{
    free(b->p);
    *b = (struct mars_grpc_buf){0};
}

int mars_grpc_frame_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **msg, size_t *len)
{
    size_t at = *off;
    if (at >= n)
        return 0;
    if (n - at < FRAME_HDR)
        return -EBADMSG;
    if (p[at] != 0)
        return -ENOTSUP;
    size_t l = (size_t)p[at + 1] << 24 | (size_t)p[at + 2] << 16 | (size_t)p[at + 3] << 8 |
               (size_t)p[at + 4];
    if (l > n - at - FRAME_HDR)
        return -EBADMSG;
    *msg = p + at + FRAME_HDR;
    *len = l;
    *off = at + FRAME_HDR + l;
    return 1;
}

size_t mars_grpc_timeout_value(int64_t ns, char *out, size_t n)
{
    static const struct {
        char unit;
        int64_t ns;
    } units[] = {{'n', 1},
                 {'u', 1000},
                 {'m', 1000000},
                 {'S', 1000000000LL},
                 {'M', 60000000000LL},
                 {'H', 3600000000000LL}};
    if (ns < 0)
        ns = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* round up, so the server never gives up before we would */
        int64_t v = ns / units[i].ns + (ns % units[i].ns != 0);
        if (v < 100000000) {
            int w = snprintf(out, n, "%lld%c", (long long)v, units[i].unit);
            return w > 0 && (size_t)w < n ? (size_t)w : 0;
        }
    }
    int w = snprintf(out, n, "99999999H");
    return w > 0 && (size_t)w < n ? (size_t)w : 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t mars_grpc_percent_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = s[i] == '%' && i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
        if (lo >= 0) {
            s[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    if (o < n)
        s[o] = '\0';
    return o;
}

/* ---- calls ---- */

/* "grpc-status: 14\r\n", "grpc-message: ...": from the header block or the trailers. */
static void on_header(struct mars_http_req *r, const char *line, size_t n)
{
    struct mars_grpc_call *c = r->data;
    static const char st[] = "grpc-status:", msg[] = "grpc-message:";
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (n > sizeof(st) - 1 && strncasecmp(line, st, sizeof(st) - 1) == 0) {
        const char *v = line + sizeof(st) - 1;
        int code = 0;
        bool digits = false;
        for (; v < line + n; v++) {
            if (*v == ' ' || *v == '\t')
                continue;
            if (*v < '0' || *v > '9' || code > 1000)
                break;
            code = code * 10 + (*v - '0');
            digits = true;
        }
        c->status = digits ? code : MARS_GRPC_UNKNOWN;
    } else if (n >= sizeof(msg) - 1 && strncasecmp(line, msg, sizeof(msg) - 1) == 0) {
        const char *v = line + sizeof(msg) - 1;
        size_t vl = n - (sizeof(msg) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        if (vl >= sizeof(c->message))
            vl = sizeof(c->message) - 1;
        memcpy(c->message, v, vl);
        c->message[vl] = '\0';
        mars_grpc_percent_decode(c->message, vl);
    }
}

static void on_http_done(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct mars_grpc_call *c = r->data;
    struct mars_grpc_result res = {.http_status = resp->status, .message = c->message};
    c->active = false;
    free(c->url);
    c->url = NULL;
    if (c->status >= 0) {
        res.code = c->status;
    } else if (resp->error == -ECANCELED) {
        res.code = MARS_GRPC_CANCELLED;
        res.transport = true;
        res.message = "call cancelled";
    } else if (resp->error) {
        res.code = resp->error == -ETIMEDOUT ? MARS_GRPC_DEADLINE_EXCEEDED : MARS_GRPC_UNAVAILABLE;
        res.transport = true;
        res.message = resp->error_text ? resp->error_text : "transport error";
    } else if (resp->status != 200) {
        res.code = mars_grpc_code_from_http(resp->status);
        res.transport = true;
        snprintf(c->message, sizeof(c->message), "HTTP status %d", resp->status);
    } else {
        res.code = MARS_GRPC_UNAVAILABLE;
        res.transport = true;
        res.message = "the answer had no grpc-status";
    }
    if (res.code == MARS_GRPC_OK && resp->body_len > 0) {
        size_t off = 0;
        const uint8_t *m;
        size_t ml;
        if (mars_grpc_frame_next((const uint8_t *)resp->body, resp->body_len, &off, &m, &ml) == 1) {
            res.reply = m;
            res.reply_len = ml;
        }
    }
    if (!res.message[0] && res.code != MARS_GRPC_OK)
        res.message = mars_grpc_code_name(res.code);
    c->done(c, &res);
}

int mars_grpc_call_start(struct mars_grpc_channel *ch, struct mars_grpc_call *c)
{
    if (!c->path || c->path[0] != '/' || !c->done || c->active)
        return -EINVAL;
    size_t n = strlen(ch->base) + strlen(c->path) + 1;
    c->url = malloc(n);
    if (!c->url)
        return -ENOMEM;
    snprintf(c->url, n, "%s%s", ch->base, c->path);
    size_t h = 0;
    c->hdrs[h++] = "Content-Type: application/grpc";
    c->hdrs[h++] = "TE: trailers";
    if (c->timeout_ns > 0) {
        char v[16];
        if (mars_grpc_timeout_value(c->timeout_ns, v, sizeof(v))) {
            snprintf(c->timeout_hdr, sizeof(c->timeout_hdr), "grpc-timeout: %s", v);
            c->hdrs[h++] = c->timeout_hdr;
        }
    }
    for (size_t i = 0; i < ch->nmetadata; i++)
        c->hdrs[h++] = ch->metadata[i];
    c->hdrs[h] = NULL;
    c->ch = ch;
    c->status = -1;
    c->message[0] = '\0';
    c->http = (struct mars_http_req){
        .method = "POST",
        .url = c->url,
        .headers = c->hdrs,
        .body = c->body ? c->body : "",
        .body_len = c->body_len,
        /* the local deadline a little after the server's, so its status wins a race */
        .timeout_ns = c->timeout_ns > 0 ? c->timeout_ns + 500000000 : 0,
        .connect_timeout_ns = ch->connect_timeout_ns,
        .tls = ch->tls_conf,
        .max_body = MAX_REPLY,
        .http2_prior_knowledge = !ch->tls,
        .fresh_connection = !ch->reuse,
        .direct = !ch->tls, /* h2c on a plain channel; h2 over TLS (ALPN) is libcurl's */
        .on_header = on_header,
        .done = on_http_done,
        .data = c,
    };
    int rc = mars_http_submit(ch->http, &c->http);
    if (rc) {
        free(c->url);
        c->url = NULL;
        return rc;
    }
    c->active = true;
    return 0;
}

void mars_grpc_call_cancel(struct mars_grpc_call *c)
{
    if (c->active)
        mars_http_cancel(c->ch->http, &c->http);
}

/* ---- channels ---- */

/* The channel's calls can share connections: always over TLS and when they go direct
 * (mars's h2c multiplexes); through libcurl's h2c only from 8.0 on, since older ones fail
 * every request after the first on a reused h2c connection (curl issue 10634,
 * protocols.md §13). Only that last case asks libcurl, which the HTTP client has loaded
 * for such a channel anyway. */
static bool channel_reuses(const struct mars_grpc_channel *ch)
{
    if (ch->tls || mars_http_url_direct(ch->base))
        return true;
    char err[320];
    if (mars_curl_load(err, sizeof(err)))
        return false; /* its first call fails with the reason */
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->version_num >= 0x080000;
}

struct mars_grpc_channel *mars_grpc_channel_create(struct mars_http *http,
                                                   const struct mars_grpc_channel_opts *o)
{
    struct mars_grpc_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->http = http;
    ch->tls = o->tls;
    ch->tls_conf = o->tls_conf;
    ch->connect_timeout_ns = o->connect_timeout_ns;
    size_t n = strlen(o->address) + 9;
    ch->base = malloc(n);
    if (!ch->base)
        goto nomem;
    snprintf(ch->base, n, "%s://%s", o->tls ? "https" : "http", o->address);
    ch->reuse = channel_reuses(ch);
    for (const char *const *m = o->metadata; m && *m; m++) {
        if (ch->nmetadata == MARS_GRPC_MAX_METADATA) {
            mars_grpc_channel_destroy(ch);
            errno = E2BIG;
            return NULL;
        }
        if (!(ch->metadata[ch->nmetadata++] = strdup(*m)))
            goto nomem;
    }
    return ch;
nomem:
    mars_grpc_channel_destroy(ch);
    errno = ENOMEM;
    return NULL;
}

bool mars_grpc_channel_reuses(const struct mars_grpc_channel *ch)
{
    return ch->reuse;
}

void mars_grpc_channel_destroy(struct mars_grpc_channel *ch)
{
    if (!ch)
        return;
    for (size_t i = 0; i < ch->nmetadata; i++) {
        explicit_bzero(ch->metadata[i], strlen(ch->metadata[i])); /* may hold a token */
        free(ch->metadata[i]);
    }
    free(ch->base);
    free(ch);
}
