/*
 * http_tls.c - the TLS client ctxs of an HTTP client's direct https:// connections
 * (core/http_direct.c): one OpenSSL ctx (core/tls) per distinct set of TLS files and
 * verify, made at the first request that needs it and kept on the client.
 *
 * Rotation: libcurl read the CA, certificate and key again for every connection, so a
 * renewed client certificate worked without a restart. Here the files are compared by
 * inode, size and mtime at most once a second when a request starts; when they changed,
 * new connections get a new ctx, and the stale one is freed once no connection holds it.
 *
 * Thread: the client's loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/http_client_internal.h"
#include "core/tls.h"

/* A TLS client ctx of the client, one per distinct set of files and verify. The files are
 * looked at again (stat) at most every TLS_RECHECK_NS when a request starts: a
 * rotated certificate or CA gets a new ctx for new connections; the stale one is freed
 * once no connection holds it (mars_http_tls_reap). */
struct h1_tls {
    char *ca_file, *cert_file, *key_file;
    bool verify, stale;
    uint64_t files;     /* fingerprint of the files' inode, size and mtime */
    int64_t checked_ns; /* when files was last compared (monotonic) */
    struct mars_tls_ctx *ctx;
    struct h1_tls *next;
};

#define TLS_RECHECK_NS 1000000000LL

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void tls_free(struct h1_tls *e)
{
    mars_tls_ctx_destroy(e->ctx);
    free(e->ca_file);
    free(e->cert_file);
    free(e->key_file);
    free(e);
}

static uint64_t file_mix(uint64_t h, const char *path)
{
    struct stat st;
    if (!path)
        return h;
    if (stat(path, &st) != 0)
        return h * 31 + 1;
    uint64_t v[] = {(uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                    (uint64_t)st.st_mtim.tv_nsec};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        h = (h ^ v[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t files_of(const struct mars_http_tls *t)
{
    return file_mix(file_mix(file_mix(0xcbf29ce484222325ull, t->ca_file), t->cert_file),
                    t->key_file);
}

/* The client's ctx for r's TLS settings, made at first use and again when its files
 * changed. NULL with the reason in err. */
struct mars_tls_ctx *mars_http_tls_ctx(struct mars_http *h, const struct mars_http_tls *t,
                                       char *err, size_t errlen)
{
    static const struct mars_http_tls system = {.verify = true};
    int64_t now = mars_ev_now(h->loop);
    if (!t)
        t = &system;
    for (struct h1_tls *e = h->tlss; e; e = e->next) {
        if (e->stale || e->verify != t->verify || !same(e->ca_file, t->ca_file) ||
            !same(e->cert_file, t->cert_file) || !same(e->key_file, t->key_file))
            continue;
        if (now - e->checked_ns < TLS_RECHECK_NS)
            return e->ctx;
        e->checked_ns = now;
        if (files_of(t) == e->files)
            return e->ctx;
        e->stale = true; /* rotated: a new ctx below */
        break;
    }
    struct h1_tls *e = calloc(1, sizeof(*e));
    const struct mars_tls_opts o = {.verify = t->verify,
                                    .ca_file = t->ca_file,
                                    .cert_file = t->cert_file,
                                    .key_file = t->key_file,
                                    .quiet = true}; /* the component warned about verify */
    if (!e || (t->ca_file && !(e->ca_file = strdup(t->ca_file))) ||
        (t->cert_file && !(e->cert_file = strdup(t->cert_file))) ||
        (t->key_file && !(e->key_file = strdup(t->key_file)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    e->verify = t->verify;
    e->files = files_of(t);
    e->checked_ns = now;
    if (!(e->ctx = mars_tls_ctx_create(&o, MARS_TLS_CLIENT, "http", err, errlen)))
        goto fail;
    e->next = h->tlss;
    h->tlss = e;
    return e->ctx;
fail:
    if (e)
        tls_free(e); /* its ctx is NULL */
    return NULL;
}

void mars_http_tls_reap(struct mars_http *h, bool all)
{
    for (struct h1_tls **pe = &h->tlss; *pe;) {
        struct h1_tls *e = *pe;
        if (all || (e->stale && !mars_http_direct_holds_tls(h, e->ctx))) {
            *pe = e->next;
            tls_free(e);
        } else {
            pe = &e->next;
        }
    }
}
