/*
 * http.c - the `http` sink: POSTs (or PUTs) each request's events to a URL as newline-
 * delimited JSON, one JSON array, or text lines, optionally gzip or zstd compressed.
 *
 * Each engine request becomes one HTTP request on the worker's event loop (the libcurl
 * client of core/http_client.h keeps connections alive between them); up to
 * request.concurrency run at once, each in a call slot with its own body buffers. With
 * compression, ndjson and text are compressed batch by batch as they are encoded, so the
 * whole uncompressed body never exists; without, at request.concurrency 1, the encoder's one
 * JSON buffer is the body as it is, and text lines are read by libcurl from the read chunks
 * they are in (at any concurrency). A request is acknowledged only on a 2xx answer.
 * Connection errors, timeouts (request.timeout), 408, 429 and 5xx are retried by the engine
 * with backoff, at least as late as the peer's Retry-After; other 4xx answers are permanent:
 * the events are counted as lost and the answer is logged.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/log.h"
#include "component.h"
#include "sinks/http_common.h"

enum http_encoding { HENC_NDJSON, HENC_JSON, HENC_TEXT };
static const char *const http_encoding_names[] = {"ndjson", "json", "text", NULL};
static const char *const method_names[] = {"post", "put", NULL};

struct http_conf {
    char *url;
    int method;
    int encoding;
    struct mars_strlist fields, except_fields;
    struct mars_http_common_conf http;
};

#define OFF(f) offsetof(struct http_conf, f)
static const struct mars_opt http_options[] = {
    {.name = "url",
     .type = MARS_OPT_URL,
     .offset = OFF(url),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Where requests go: an http:// or https:// URL."},
    {.name = "method",
     .type = MARS_OPT_ENUM,
     .offset = OFF(method),
     .def = "post",
     .choices = method_names,
     .desc = "HTTP method of each request: post or put."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = OFF(encoding),
     .def = "ndjson",
     .choices = http_encoding_names,
     .desc = "Body of a request: ndjson (one JSON object per line), json (one array of "
             "objects) or text (the messages, one per line)."},
    MARS_ENCODE_FIELDS_OPTIONS(struct http_conf, fields, except_fields),
    MARS_HTTP_COMMON_OPTIONS(struct http_conf, http, "none"),
    {.name = NULL},
};

struct http_sink {
    struct mars_sink *sink;
    const struct http_conf *conf;
    struct mars_http_common hs;
    struct mars_http_common_call *calls;
    unsigned ncalls;
    struct mars_encoder enc;
    struct mars_field_select sel;
    char *arr; /* json: the array built from the ndjson encoding */
    size_t arr_cap;
};

static int http_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    struct http_conf *c = conf;
    int rc = mars_http_common_check(&c->http, node, diag);
    if (mars_check_field_select(&c->fields, &c->except_fields, node, diag))
        rc = -EINVAL;
    return rc;
}

/* ndjson -> [a,b,c]: JSON strings never hold a raw newline, so every newline of the
 * encoding ends an object. */
static int to_array(struct http_sink *h, struct iovec *out)
{
    size_t total = 2;
    for (int i = 0; i < h->enc.niov; i++)
        total += h->enc.iov[i].iov_len;
    if (mars_grow(&h->arr, &h->arr_cap, total, 1))
        return -ENOMEM;
    size_t pos = 0;
    h->arr[pos++] = '[';
    for (int i = 0; i < h->enc.niov; i++) {
        memcpy(h->arr + pos, h->enc.iov[i].iov_base, h->enc.iov[i].iov_len);
        pos += h->enc.iov[i].iov_len;
    }
    for (char *p = h->arr + 1; (p = memchr(p, '\n', (size_t)(h->arr + pos - p))); p++)
        *p = ',';
    if (pos > 1 && h->arr[pos - 1] == ',')
        pos--;
    h->arr[pos++] = ']';
    *out = (struct iovec){.iov_base = h->arr, .iov_len = pos};
    return 0;
}

static void on_response(struct mars_http_common_call *c, const struct mars_http_resp *resp)
{
    struct http_sink *h = c->data;
    struct mars_sink_req *r = c->r;
    c->r = NULL;
    enum mars_sink_result res = mars_http_common_classify(&h->hs, r, resp);
    mars_sink_done(h->sink, r, res, res == MARS_SINK_OK ? c->body_bytes : 0);
}

/* ndjson and text with compression: each batch is encoded and compressed at once, so only
 * one batch's encoding exists uncompressed (the whole request's was ~1.3x its message bytes,
 * held until the answer). Returns 0, or < 0 (the caller retries). */
static int encode_compressed(struct http_sink *h, struct mars_http_common_call *c,
                             enum mars_encoding enc, struct mars_sink_req *r)
{
    enum mars_codec codec = (enum mars_codec)h->conf->http.compression;
    int rc;
    if (c->comp.codec != codec)
        mars_compressor_init(&c->comp, codec, 0);
    if ((rc = mars_compress_begin(&c->comp)))
        return rc;
    for (uint32_t b = 0; rc == 0 && b < r->n; b++) {
        mars_encoder_reset(&h->enc);
        if (mars_encode_events(&h->enc, enc, r->batches[b]->ev, r->batches[b]->n) < 0 ||
            mars_encoder_finish(&h->enc, enc))
            rc = -ENOMEM;
        else
            rc = mars_compress_more(&c->comp, h->enc.iov, h->enc.niov);
    }
    int end = mars_compress_end(&c->comp);
    return rc ? rc : end;
}

static void http_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct http_sink *h = mars_sink_state(s);
    struct mars_http_common_call *c = mars_http_common_slot(h->calls, h->ncalls);
    uint64_t bad = h->enc.invalid_utf8;
    enum mars_encoding enc = h->conf->encoding == HENC_TEXT ? MARS_ENC_TEXT : MARS_ENC_NDJSON;
    struct iovec arr, *iov = h->enc.iov;
    int niov, rc;
    if (!c) { /* cannot happen: the engine runs at most request.concurrency requests */
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    c->body_compressed =
        h->conf->encoding != HENC_JSON && h->conf->http.compression != MARS_CODEC_NONE;
    if (c->body_compressed ? encode_compressed(h, c, enc, r) < 0
                           : mars_encode_batches(&h->enc, enc, r->batches, r->n) < 0) {
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_MEMORY], 1);
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    if (h->enc.invalid_utf8 > bad)
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_INVALID_UTF8],
                      h->enc.invalid_utf8 - bad);
    iov = h->enc.iov;
    niov = h->enc.niov;
    if (h->conf->encoding == HENC_JSON) {
        if (to_array(h, &arr)) {
            mars_sink_done(s, r, MARS_SINK_RETRY, 0);
            return;
        }
        iov = &arr;
        niov = 1;
    }
    c->data = h;
    /* The encoder (and arr) belong to the sink, not the slot: with one slot nothing encodes
     * again before this call is done, so its single buffer can be the body as it is. Text
     * lines point into r's read chunks, which r holds until the answer: libcurl reads them
     * where they are at any concurrency. */
    c->borrow_body = h->ncalls == 1 || h->conf->encoding == HENC_TEXT;
    rc = mars_http_common_send(&h->hs, c, r, h->conf->method == 1 ? "PUT" : "POST", h->conf->url,
                               iov, niov, on_response);
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(s), "cannot send a request: %s", strerror(-rc));
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_WRITE], 1);
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
    }
}

static void http_abort(struct mars_sink *s)
{
    struct http_sink *h = mars_sink_state(s);
    mars_http_common_abort(&h->hs);
}

static void http_destroy(struct mars_sink *s)
{
    struct http_sink *h = mars_sink_state(s);
    if (!h)
        return;
    for (unsigned i = 0; i < h->ncalls; i++)
        mars_http_common_call_fini(&h->calls[i]);
    free(h->calls);
    mars_http_common_fini(&h->hs);
    mars_encoder_fini(&h->enc);
    free(h->arr);
    free(h);
}

static int http_init(struct mars_sink *s)
{
    struct http_sink *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->sink = s;
    h->conf = mars_sink_conf(s);
    mars_field_select_init(&h->sel, &h->conf->fields, &h->conf->except_fields);
    h->enc.select = &h->sel;
    mars_sink_set_state(s, h);
    h->ncalls = mars_sink_concurrency(s);
    h->calls = calloc(h->ncalls, sizeof(*h->calls));
    static const char *const types[] = {"application/x-ndjson", "application/json",
                                        "text/plain; charset=utf-8"};
    int rc = h->calls ? mars_http_common_init(&h->hs, s, &h->conf->http, types[h->conf->encoding],
                                              (const char *const *)&h->conf->url, 1)
                      : -ENOMEM;
    if (rc) {
        http_destroy(s);
        mars_sink_set_state(s, NULL);
    }
    return rc;
}

const struct mars_component_desc mars_sink_http = {
    .name = "http",
    .description = "Sends events to an HTTP endpoint as ndjson, a JSON array or text.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = http_options,
    .conf_size = sizeof(struct http_conf),
    .check = http_check,
    .sink = {.init = http_init, .write = http_write, .abort = http_abort, .destroy = http_destroy},
};
