/*
 * http2_nv.h - the header block of an HTTP/2 request, for core/http2_direct.c.
 */
#ifndef MARS_HTTP2_NV_H
#define MARS_HTTP2_NV_H

#include <stddef.h>

#include <nghttp2/nghttp2.h>

#include "core/http_client_internal.h"

struct mars_h2_headers {
    nghttp2_nv *nv; /* n entries, names and values in buf */
    size_t n;
    char *buf;
    size_t buf_len;
};

/* Builds r's header block for url u: 0, -ENOMEM, or mars_http_auth_value()'s error. The
 * block is for nghttp2_submit_request(); free it with mars_http2_headers_free(). */
int mars_http2_headers_build(struct mars_h2_headers *hb, const struct mars_http_req *r,
                             const struct mars_http_url *u, const char *user_agent);
/* Wipes (it may hold credentials) and frees the block; safe on a zeroed one. */
void mars_http2_headers_free(struct mars_h2_headers *hb);

#endif
