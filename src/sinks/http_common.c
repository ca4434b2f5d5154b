/*
 * http_common.c - the part of the HTTP-based sinks that does not depend on the protocol
 * (see http_common.h): header list, body preparation, sending through the loop's HTTP
 * client, and the status mapping.
 *
 * Bodies: with compression the iovecs go straight into the call's compressor buffer; without
 * it they are flattened into the call's own buffer, unless their bytes stay put for the call
 * (borrow_body): then one iovec is sent in place, and several are read by libcurl one after
 * the other (the iovec array is copied into the slot, the bytes are not). The buffers live
 * as long as the call slot, so steady traffic does not allocate.
 *
 * Thread: the sink's worker.
 */
#include "sinks/http_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ev.h"
#include "core/grow.h"
#include "core/log.h"

int mars_http_common_check(const struct mars_http_common_conf *c, const struct mars_cfg_node *node,
                           struct mars_diag *diag)
{
    int rc = mars_netconf_check(&c->tls, &c->auth, node, diag);
    if (c->compression == MARS_CODEC_LZ4) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "compression", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "compression lz4 has no HTTP Content-Encoding; use gzip or zstd");
        rc = -EINVAL;
    }
    return rc;
}

static int add_header(struct mars_http_common *hs, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    if (!h || mars_grow(&hs->headers, &hs->headers_cap, hs->nheaders + 2, sizeof(*hs->headers))) {
        free(h);
        return -ENOMEM;
    }
    snprintf(h, n, "%s: %s", name, value);
    hs->headers[hs->nheaders++] = h;
    hs->headers[hs->nheaders] = NULL;
    return 0;
}

int mars_http_common_add_header(struct mars_http_common *hs, const char *name, const char *value)
{
    return add_header(hs, name, value);
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

int mars_http_common_init(struct mars_http_common *hs, struct mars_sink *s,
                          const struct mars_http_common_conf *conf, const char *content_type,
                          const char *const *urls, size_t nurls)
{
    struct mars_http_opts opts = {.curl_on_demand = true};
    memset(hs, 0, sizeof(*hs));
    hs->sink = s;
    hs->conf = conf;
    const char *enc = mars_codec_http_encoding((enum mars_codec)conf->compression);
    int rc = content_type ? add_header(hs, "Content-Type", content_type) : 0;
    if (rc == 0 && enc)
        rc = add_header(hs, "Content-Encoding", enc);
    for (size_t i = 0; rc == 0 && i < conf->headers.n; i++)
        rc = add_header(hs, conf->headers.keys[i], conf->headers.vals[i]);
    if (rc)
        return rc;
    /* only the first worker's instance warns about verify: false */
    mars_netconf_http_tls(&conf->tls, mars_sink_id(s), &hs->tls);
    for (size_t i = 0; i < nurls; i++)
        if (!mars_http_url_direct(urls[i]) || (conf->http2 && is_https(urls[i])))
            opts.curl_on_demand = false;
    hs->client = mars_http_create(mars_sink_loop(s), &opts);
    return hs->client ? 0 : -errno;
}

void mars_http_common_abort(struct mars_http_common *hs)
{
    if (hs->client)
        mars_http_shutdown(hs->client);
}

void mars_http_common_fini(struct mars_http_common *hs)
{
    mars_http_destroy(hs->client);
    for (size_t i = 0; i < hs->nheaders; i++)
        free((char *)hs->headers[i]);
    free(hs->headers);
    memset(hs, 0, sizeof(*hs));
}

struct mars_http_common_call *mars_http_common_slot(struct mars_http_common_call *calls, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!calls[i].r)
            return &calls[i];
    return NULL;
}

void mars_http_common_call_fini(struct mars_http_common_call *c)
{
    mars_compressor_fini(&c->comp);
    free(c->flat);
    c->flat = NULL;
    c->flat_cap = 0;
    free(c->iov);
    c->iov = NULL;
    c->iov_cap = 0;
}

static int flatten(struct mars_http_common_call *c, const struct iovec *iov, int n, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (mars_grow(&c->flat, &c->flat_cap, total + 1, 1))
        return -ENOMEM;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        memcpy(c->flat + pos, iov[i].iov_base, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    *len = pos;
    return 0;
}

static void on_http_done(struct mars_http_req *hr, const struct mars_http_resp *resp)
{
    struct mars_http_common_call *c = MARS_CONTAINER_OF(hr, struct mars_http_common_call, http);
    c->cb(c, resp);
}

int mars_http_common_send(struct mars_http_common *hs, struct mars_http_common_call *c,
                          struct mars_sink_req *r, const char *method, const char *url,
                          const struct iovec *iov, int n, mars_http_common_cb cb)
{
    const struct mars_http_common_conf *conf = hs->conf;
    const void *body = NULL;
    const struct iovec *pieces = NULL;
    size_t len = 0;
    int rc;
    if (conf->compression != MARS_CODEC_NONE && c->body_compressed) {
        body = c->comp.out;
        len = c->comp.len;
    } else if (conf->compression != MARS_CODEC_NONE) {
        if (c->comp.codec != (enum mars_codec)conf->compression)
            mars_compressor_init(&c->comp, (enum mars_codec)conf->compression, 0);
        if ((rc = mars_compress(&c->comp, iov, n)))
            return rc;
        body = c->comp.out;
        len = c->comp.len;
    } else if (n == 1 && c->borrow_body) {
        body = iov[0].iov_base;
        len = iov[0].iov_len;
    } else if (n > 1 && c->borrow_body) {
        if (mars_grow(&c->iov, &c->iov_cap, (size_t)n, sizeof(*c->iov)))
            return -ENOMEM;
        memcpy(c->iov, iov, (size_t)n * sizeof(*iov));
        for (int i = 0; i < n; i++)
            len += iov[i].iov_len;
        pieces = c->iov;
    } else {
        if ((rc = flatten(c, iov, n, &len)))
            return rc;
        body = c->flat;
    }
    c->hs = hs;
    c->r = r;
    c->cb = cb;
    c->body_bytes = len;
    c->http = (struct mars_http_req){
        .method = method,
        .url = url,
        .headers = hs->headers,
        .body = body,
        .body_len = len,
        .body_iov = pieces,
        .body_iovcnt = pieces ? n : 0,
        .timeout_ns = mars_sink_request_timeout(hs->sink),
        .tls = &hs->tls,
        .user = conf->auth.strategy == MARS_AUTH_BASIC ? conf->auth.user : NULL,
        .password = conf->auth.password,
        .bearer = conf->auth.strategy == MARS_AUTH_BEARER ? conf->auth.token : NULL,
        .max_body = c->max_body,
        .direct = !(conf->http2 && is_https(url)), /* else libcurl, for h2 by ALPN */
        .done = on_http_done,
    };
    rc = mars_http_submit(hs->client, &c->http);
    if (rc)
        c->r = NULL;
    return rc;
}

enum mars_error_type mars_http_common_error_type(int err)
{
    if (err == -ECONNREFUSED || err == -EHOSTUNREACH)
        return MARS_ERR_CONNECT;
    return err == -EPROTO ? MARS_ERR_TLS : MARS_ERR_WRITE;
}

enum mars_sink_result mars_http_common_classify(struct mars_http_common *hs,
                                                struct mars_sink_req *r,
                                                const struct mars_http_resp *resp)
{
    const char *id = mars_sink_id(hs->sink);
    struct mars_stats *st = mars_sink_stats(hs->sink);
    if (resp->error == -ECANCELED)
        return MARS_SINK_ABORTED;
    if (resp->error) {
        mars_stat_add(&st->errors[mars_http_common_error_type(resp->error)], 1);
        MARS_LOG_RL(MARS_LOG_WARN, id, "request failed: %s", resp->error_text);
        return MARS_SINK_RETRY;
    }
    int s = resp->status;
    if (s >= 200 && s < 300)
        return MARS_SINK_OK;
    int blen = (int)(resp->body_len < 200 ? resp->body_len : 200);
    /* 401/403 and 3xx are an operator's problem (a rotated token, a moved endpoint):
     * retried, loudly, rather than dropping data until someone notices */
    if (s == 408 || s == 429 || s >= 500 || s == 401 || s == 403 || (s >= 300 && s < 400)) {
        if (resp->retry_after_ns >= 0)
            r->retry_after_ns = resp->retry_after_ns;
        MARS_LOG_RL(MARS_LOG_WARN, id, "HTTP %d (will retry): %.*s", s, blen, resp->body);
        return MARS_SINK_RETRY;
    }
    MARS_LOG_RL(MARS_LOG_ERROR, id, "HTTP %d (permanent, dropping %llu events): %.*s", s,
                (unsigned long long)r->events, blen, resp->body);
    return MARS_SINK_REJECTED;
}
