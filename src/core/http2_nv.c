/*
 * http2_nv.c - the header block of an HTTP/2 request (core/http2_direct.c): the
 * pseudo-headers, then the caller's headers with names in lower case and those HTTP/2
 * forbids dropped, then user-agent, accept, authorization and content-length unless the
 * caller set them. Credentials are sent never-indexed, so they stay out of the peer's HPACK
 * table, and wiped when the block is freed.
 *
 * The block is built in two passes over the same code: one counts names and bytes, the
 * second fills one array and one buffer of exactly that size.
 *
 * Thread: any (no shared state).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/http2_nv.h"

struct nv_build {
    struct mars_h2_headers *hb; /* fills hb->nv when it is allocated, else counts */
    size_t n, bytes;
};

static void nv_add3(struct nv_build *b, const char *name, size_t nl, const char *pre, size_t prel,
                    const char *value, size_t vl)
{
    struct mars_h2_headers *hb = b->hb;
    if (hb->nv) {
        char *np = hb->buf + b->bytes, *vp = np + nl + 1;
        for (size_t i = 0; i < nl; i++)
            np[i] = (char)tolower((unsigned char)name[i]);
        np[nl] = '\0';
        memcpy(vp, pre, prel);
        memcpy(vp + prel, value, vl);
        vp[prel + vl] = '\0';
        /* credentials stay out of the peer's HPACK table */
        bool secret = strcmp(np, "authorization") == 0 || strcmp(np, "authentication") == 0;
        hb->nv[b->n] = (nghttp2_nv){
            .name = (uint8_t *)np,
            .value = (uint8_t *)vp,
            .namelen = nl,
            .valuelen = prel + vl,
            .flags = secret ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE,
        };
    }
    b->n++;
    b->bytes += nl + prel + vl + 2;
}

static void nv_add(struct nv_build *b, const char *name, const char *value, size_t vl)
{
    nv_add3(b, name, strlen(name), "", 0, value, vl);
}

/* The caller's header named `name`: its value (trimmed, length in *vl), or NULL. */
static const char *caller_value(const struct mars_http_req *r, const char *name, size_t *vl)
{
    size_t n = strlen(name);
    for (const char *const *hd = r->headers; hd && *hd; hd++)
        if (strncasecmp(*hd, name, n) == 0 && (*hd)[n] == ':') {
            const char *v = *hd + n + 1 + strspn(*hd + n + 1, " \t");
            size_t l = strlen(v);
            while (l > 0 && strchr(" \t\r\n", v[l - 1]))
                l--;
            *vl = l;
            return v;
        }
    return NULL;
}

/* Hop-by-hop in HTTP/1.1, forbidden in HTTP/2 (RFC 9113 8.2.2); host becomes :authority,
 * content-length is ours. te is allowed only as "trailers". */
static bool header_dropped(const char *name, size_t nl, const char *v, size_t vl)
{
    static const char *const drop[] = {"connection",    "keep-alive",       "transfer-encoding",
                                       "upgrade",       "proxy-connection", "host",
                                       "content-length"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strlen(drop[i]) == nl && strncasecmp(name, drop[i], nl) == 0)
            return true;
    return nl == 2 && strncasecmp(name, "te", 2) == 0 &&
           !(vl == 8 && strncasecmp(v, "trailers", 8) == 0);
}

static void nv_fill(struct nv_build *b, const struct mars_http_req *r,
                    const struct mars_http_url *u, const char *user_agent, const char *auth)
{
    bool has_body = r->body || r->body_iov;
    const char *method = r->method ? r->method : has_body ? "POST" : "GET";
    const char *v;
    size_t vl;
    char num[32];
    nv_add(b, ":method", method, strlen(method));
    nv_add(b, ":scheme", "http", 4);
    if ((v = caller_value(r, "Host", &vl)) && vl)
        nv_add(b, ":authority", v, vl);
    else
        nv_add(b, ":authority", u->authority, u->authority_len);
    bool slash = u->path_len == 0 || u->path[0] != '/';
    nv_add3(b, ":path", 5, "/", slash ? 1 : 0, u->path, u->path_len);
    for (const char *const *hd = r->headers; hd && *hd; hd++) {
        const char *colon = strchr(*hd, ':');
        if (!colon || colon == *hd)
            continue;
        size_t nl = (size_t)(colon - *hd);
        v = colon + 1 + strspn(colon + 1, " \t");
        vl = strlen(v);
        while (vl > 0 && strchr(" \t\r\n", v[vl - 1]))
            vl--;
        if (vl == 0 || header_dropped(*hd, nl, v, vl))
            continue; /* "Name:" removes a header in libcurl's terms: nothing to send */
        nv_add3(b, *hd, nl, "", 0, v, vl);
    }
    if (!caller_value(r, "User-Agent", &vl))
        nv_add(b, "user-agent", user_agent, strlen(user_agent));
    if (!caller_value(r, "Accept", &vl))
        nv_add(b, "accept", "*/*", 3);
    if (auth)
        nv_add(b, "authorization", auth, strlen(auth));
    if (has_body || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
        int n = snprintf(num, sizeof(num), "%zu", has_body ? r->body_len : (size_t)0);
        nv_add(b, "content-length", num, (size_t)n);
    }
}

int mars_http2_headers_build(struct mars_h2_headers *hb, const struct mars_http_req *r,
                             const struct mars_http_url *u, const char *user_agent)
{
    int rc;
    *hb = (struct mars_h2_headers){0};
    char *auth = mars_http_auth_value(r, &rc);
    if (rc)
        return rc;
    struct nv_build b = {.hb = hb};
    nv_fill(&b, r, u, user_agent, auth); /* count */
    hb->nv = calloc(b.n, sizeof(*hb->nv));
    hb->buf = malloc(b.bytes);
    if (hb->nv && hb->buf) {
        hb->buf_len = b.bytes;
        b = (struct nv_build){.hb = hb};
        nv_fill(&b, r, u, user_agent, auth);
        hb->n = b.n;
    } else {
        rc = -ENOMEM;
    }
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    return rc;
}

void mars_http2_headers_free(struct mars_h2_headers *hb)
{
    if (hb->buf)
        explicit_bzero(hb->buf, hb->buf_len); /* may hold credentials */
    free(hb->buf);
    free(hb->nv);
    *hb = (struct mars_h2_headers){0};
}
