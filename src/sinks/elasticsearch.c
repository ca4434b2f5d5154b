/*
 * elasticsearch.c - the `elasticsearch` sink: sends events to the _bulk API, one action
 * line and one JSON source line per event, and acknowledges an event only when its item
 * came back accepted.
 *
 * A request from the engine is delivered in one or more bulk requests (a "pass"). The
 * request's sink_data (struct elasticsearch_reqstate, one block kept by the engine across retries)
 * holds a state byte per event: PENDING until an item answer settles it (2xx, or 409 on
 * create: stored; other 4xx: dropped for good and counted in rejected). A pass walks the
 * events in order and sends the PENDING ones; items answered 429/5xx stay PENDING. When
 * the pass reaches the end, the request is OK if nothing is pending, else RETRY: the engine
 * waits its backoff and calls write again, and the next pass sends only what is still
 * pending. A request-level failure (transport error, 429, 5xx, auth) ends the pass with
 * RETRY at once, passing Retry-After on. A 413 halves the number of documents per bulk
 * request for the rest of this engine request and resends; a single document that is
 * still too large is dropped for good.
 *
 * Ids: with generate_id, event i of a request gets id (nonce, id_base + i), where nonce is
 * random per sink instance and id_base is taken from a per-instance counter on the first
 * try and kept in the reqstate, so every resend carries the same ids (idempotent for
 * create, a harmless overwrite for index) and no two events of the process share one.
 *
 * Memory: request.concurrency slots, each carrying one engine request at a time, own the
 * body being built (encoder buffer), the list of events in it, and an http_common call
 * (compressor output, HTTP request); all reused, so the steady state allocates only the
 * reqstate block per engine request. Transport, auth, headers and compression are the
 * shared HTTP-sink layer's (http_common.h); the bulk semantics are here.
 *
 * Thread: the sink's worker (the HTTP client runs on its loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/compress.h"
#include "core/grow.h"
#include "core/http_client.h"
#include "core/ev.h"
#include "core/log.h"
#include "component.h"
#include "sinks/elasticsearch_internal.h"

#define INDEX_MAX 512

enum { ST_PENDING = 0, ST_DONE = 1 };

struct elasticsearch_reqstate { /* r->sink_data: one malloc'd block (the engine may free() it) */
    uint64_t id_base;
    uint64_t rejected; /* events dropped for good so far */
    uint32_t n;        /* events of the request */
    uint32_t max_docs; /* documents per bulk request after a 413; 0: no limit */
    uint8_t st[];      /* per event: ST_* */
};

struct elasticsearch_sink;

struct elasticsearch_slot {
    struct mars_http_common_call call; /* call.r: the engine request, NULL when free */
    struct elasticsearch_sink *es;
    struct mars_sink_req *r;
    struct elasticsearch_reqstate *rs;
    struct mars_encoder enc;
    uint32_t *sent; /* event indices in the body, in order */
    uint32_t nsent;
    size_t sent_cap;
    uint32_t gi, bi, ei;  /* next event of this pass: global index, batch, index in batch */
    uint32_t retry_items; /* items answered retryable in this pass */
    uint64_t wire;        /* body bytes the peer accepted in this try */
};

struct elasticsearch_sink {
    struct mars_sink *sink;
    const struct mars_elasticsearch_conf *conf;
    struct mars_http_common hs;
    bool hs_ready;
    struct mars_template *index_tpl;
    struct mars_path *id_path;
    struct mars_path **dedot; /* conf->dedot.n paths */
    uint32_t *dedot_idx;      /* per event: the entries of those that are objects */
    char **urls;
    size_t nurls, url;
    struct mars_json_opts jopts;
    uint64_t id_nonce, id_seq;
    char *scratch;
    size_t scap;
    int64_t cached_sec;
    char cached_index[INDEX_MAX], index_buf[INDEX_MAX];
    struct elasticsearch_slot *slots; /* request.concurrency of them */
    unsigned nslots;
};

/* ---- building a bulk body ---- */

static const char *index_for(struct elasticsearch_sink *es, const struct mars_event *ev)
{
    if (!mars_template_is_dynamic(es->index_tpl))
        return es->conf->index;
    if (mars_template_time_only(es->index_tpl)) {
        int64_t sec = ev->ts_ns / 1000000000;
        if (sec != es->cached_sec) {
            if (mars_template_render(es->index_tpl, ev, es->cached_index, INDEX_MAX) < 0)
                return NULL;
            es->cached_sec = sec;
        }
        return es->cached_index;
    }
    return mars_template_render(es->index_tpl, ev, es->index_buf, INDEX_MAX) < 0 ? NULL
                                                                                 : es->index_buf;
}

static int append_doc(struct elasticsearch_sink *es, struct elasticsearch_slot *sl,
                      const struct mars_event *ev, uint32_t gi)
{
    char gen[MARS_ELASTICSEARCH_ID_LEN + 1];
    const char *id = NULL;
    uint32_t id_len = 0;
    const char *index = index_for(es, ev);
    if (!index)
        return -ENAMETOOLONG;
    if (es->conf->generate_id) {
        mars_elasticsearch_gen_id(es->id_nonce, sl->rs->id_base + gi, gen);
        id = gen;
        id_len = MARS_ELASTICSEARCH_ID_LEN;
    } else if (es->id_path) {
        struct mars_value v;
        if (mars_fields_get(ev, es->id_path, &v) && v.kind != MARS_FIELD_OBJECT &&
            v.kind != MARS_FIELD_NULL) {
            id = mars_value_text(&v, &es->scratch, &es->scap, &id_len);
            if (!id)
                return -ENOMEM;
        }
    }
    int rc =
        mars_elasticsearch_put_action(&sl->enc, (enum mars_elasticsearch_action)es->conf->action,
                                      index, strlen(index), id, id_len);
    es->jopts.ndedot = 0; /* the objects to dedot, as entries of this event */
    for (size_t i = 0; ev->fields && i < es->conf->dedot.n; i++) {
        struct mars_value v;
        if (mars_fields_get(ev, es->dedot[i], &v) && v.kind == MARS_FIELD_OBJECT &&
            v.idx != MARS_FIELD_NIL)
            es->dedot_idx[es->jopts.ndedot++] = v.idx;
    }
    rc = rc ? rc : mars_encode_json_event_opts(&sl->enc, ev, &es->jopts);
    return rc ? rc : mars_encoder_put(&sl->enc, "\n", 1);
}

/* Moves the cursor to global event index g. */
static void seek(struct elasticsearch_slot *sl, uint32_t g)
{
    sl->gi = g;
    sl->bi = 0;
    while (sl->bi < sl->r->n && g >= sl->r->batches[sl->bi]->n)
        g -= sl->r->batches[sl->bi++]->n;
    sl->ei = g;
}

/* Encodes the next PENDING events of the pass (at most max_docs) into sl->enc. Returns
 * the number of documents, or -errno. */
static int64_t build_body(struct elasticsearch_sink *es, struct elasticsearch_slot *sl)
{
    struct mars_sink_req *r = sl->r;
    uint32_t limit = sl->rs->max_docs ? sl->rs->max_docs : UINT32_MAX;
    mars_encoder_reset(&sl->enc);
    sl->nsent = 0;
    while (sl->gi < sl->rs->n && sl->nsent < limit) {
        while (sl->bi < r->n && sl->ei >= r->batches[sl->bi]->n) {
            sl->bi++;
            sl->ei = 0;
        }
        if (sl->bi >= r->n)
            break;
        uint32_t g = sl->gi++;
        const struct mars_event *ev = &r->batches[sl->bi]->ev[sl->ei++];
        if (sl->rs->st[g] != ST_PENDING)
            continue;
        if (mars_grow(&sl->sent, &sl->sent_cap, (size_t)sl->nsent + 1, sizeof(*sl->sent)))
            return -ENOMEM;
        size_t mark = sl->enc.out_len;
        int rc = append_doc(es, sl, ev, g);
        if (rc == -ENAMETOOLONG) { /* an index name this long cannot exist: drop the event */
            sl->enc.out_len = mark;
            sl->rs->st[g] = ST_DONE;
            sl->rs->rejected++;
            mars_sink_dead_letter(es->sink, sl->r, g);
            MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(es->sink),
                        "index name longer than %d bytes; event dropped", INDEX_MAX - 1);
            continue;
        }
        if (rc)
            return rc;
        sl->sent[sl->nsent++] = g;
    }
    return sl->nsent;
}

/* ---- ending a pass ---- */

static void release_slot(struct elasticsearch_slot *sl)
{
    sl->r = NULL;
    sl->rs = NULL;
    sl->call.r = NULL;
}

static void finish(struct elasticsearch_slot *sl, enum mars_sink_result res, int64_t retry_after_ns)
{
    struct elasticsearch_sink *es = sl->es;
    struct mars_sink_req *r = sl->r;
    struct elasticsearch_reqstate *rs = sl->rs;
    uint64_t wire = sl->wire;
    release_slot(sl);
    if (res == MARS_SINK_RETRY && rs) {
        r->retry_after_ns = retry_after_ns > 0 ? retry_after_ns : 0;
        mars_sink_done(es->sink, r, res, 0); /* rs stays with r for the next try */
        return;
    }
    uint64_t rejected = rs ? rs->rejected : 0;
    free(rs);
    r->sink_data = NULL;
    if (res == MARS_SINK_OK && rejected > 0 && rejected >= r->events)
        res = MARS_SINK_REJECTED;
    else if (res == MARS_SINK_OK)
        r->rejected_events = rejected;
    mars_sink_done(es->sink, r, res, res == MARS_SINK_OK ? wire : 0);
}

/* Document i of the bulk request is refused for good: counted (the engine counts them
 * when the request ends) and handed to the dead_letter sink if there is one. */
static void drop_sent(struct elasticsearch_slot *sl, uint32_t i)
{
    sl->rs->st[sl->sent[i]] = ST_DONE;
    sl->rs->rejected++;
    mars_sink_dead_letter(sl->es->sink, sl->r, sl->sent[i]);
}

/* ---- one bulk request ---- */

static void on_bulk_done(struct mars_http_common_call *c, const struct mars_http_resp *resp);

static void send_next(struct elasticsearch_slot *sl)
{
    struct elasticsearch_sink *es = sl->es;
    int64_t n = build_body(es, sl);
    if (n < 0) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(es->sink), "cannot build a bulk body: %s",
                    strerror((int)-n));
        mars_stat_add(&mars_sink_stats(es->sink)->errors[MARS_ERR_ENCODE], 1);
        finish(sl, MARS_SINK_RETRY, 0);
        return;
    }
    if (n == 0) {
        finish(sl, sl->retry_items ? MARS_SINK_RETRY : MARS_SINK_OK, 0);
        return;
    }
    struct iovec iov = {sl->enc.out, sl->enc.out_len};
    /* filtered items are ~30 bytes, whole ones ~250 plus the index name */
    size_t per_item = es->conf->filter_path && *es->conf->filter_path ? 160 : 1024;
    sl->call.max_body = (size_t)sl->nsent * per_item + 65536;
    sl->call.borrow_body = true; /* sl->enc is the slot's own, untouched until the answer */
    int rc = mars_http_common_send(&es->hs, &sl->call, sl->r, "POST", es->urls[es->url], &iov, 1,
                                   on_bulk_done);
    if (rc) {
        MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(es->sink), "cannot start a bulk request: %s",
                    strerror(-rc));
        finish(sl, MARS_SINK_RETRY, 0);
    }
}

struct item_ctx {
    struct elasticsearch_slot *sl;
    bool create;
    uint32_t seen;
};

static void on_item(void *ctx, uint32_t i, const struct mars_elasticsearch_item *it)
{
    struct item_ctx *c = ctx;
    struct elasticsearch_slot *sl = c->sl;
    c->seen = i + 1;
    if (i >= sl->nsent)
        return;
    switch (mars_elasticsearch_item_class(it->status, c->create)) {
    case MARS_ELASTICSEARCH_OK:
        sl->rs->st[sl->sent[i]] = ST_DONE;
        break;
    case MARS_ELASTICSEARCH_RETRY:
        sl->retry_items++;
        break;
    case MARS_ELASTICSEARCH_PERMANENT:
        drop_sent(sl, i);
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(sl->es->sink),
                    "document rejected with status %d (%.*s); dropped", it->status,
                    it->etype ? (int)it->etype_len : 7, it->etype ? it->etype : "no type");
        break;
    }
}

static void on_success(struct elasticsearch_slot *sl, const struct mars_http_resp *resp)
{
    struct item_ctx c = {.sl = sl, .create = sl->es->conf->action == MARS_ELASTICSEARCH_CREATE};
    bool all_ok;
    int64_t n = resp->body_truncated
                    ? -EBADMSG
                    : mars_elasticsearch_items(resp->body, resp->body_len, &all_ok, on_item, &c);
    if (n >= 0 && all_ok) {
        for (uint32_t i = 0; i < sl->nsent; i++)
            sl->rs->st[sl->sent[i]] = ST_DONE;
    } else if (n < 0 || c.seen != sl->nsent) {
        /* cannot tell which items made it: send them all again (ids make that safe) */
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(sl->es->sink),
                    "bulk response not understood (%lld of %u items); resending", (long long)n,
                    sl->nsent);
        sl->retry_items += sl->nsent; /* items read (if any) are settled; the rest pend */
        return;
    }
    sl->wire += sl->call.body_bytes;
}

static void on_too_large(struct elasticsearch_slot *sl)
{
    if (sl->nsent == 1) {
        drop_sent(sl, 0);
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(sl->es->sink),
                    "document of %zu bytes is larger than the cluster takes (413); dropped",
                    (size_t)sl->call.body_bytes);
        return;
    }
    sl->rs->max_docs = sl->nsent / 2;
    seek(sl, sl->sent[0]);
}

static void on_bulk_done(struct mars_http_common_call *c, const struct mars_http_resp *resp)
{
    struct elasticsearch_slot *sl = MARS_CONTAINER_OF(c, struct elasticsearch_slot, call);
    struct elasticsearch_sink *es = sl->es;
    const char *id = mars_sink_id(es->sink);

    if (resp->error == -ECANCELED) {
        finish(sl, MARS_SINK_ABORTED, 0);
        return;
    }
    if (resp->error) {
        mars_stat_add(&mars_sink_stats(es->sink)->errors[mars_http_common_error_type(resp->error)],
                      1);
        MARS_LOG_RL(MARS_LOG_WARN, id, "bulk request to %s failed: %s", c->http.url,
                    resp->error_text ? resp->error_text : strerror(-resp->error));
        es->url = (es->url + 1) % es->nurls;
        finish(sl, MARS_SINK_RETRY, 0);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        on_success(sl, resp);
        if (sl->rs->max_docs)      /* after a 413: grow back, so one big document does not */
            sl->rs->max_docs *= 2; /* leave the rest of the request in tiny requests */
    } else if (resp->status == 413) {
        on_too_large(sl);
    } else if (mars_elasticsearch_request_class(resp->status) == MARS_ELASTICSEARCH_RETRY) {
        MARS_LOG_RL(MARS_LOG_WARN, id, "bulk request answered %d: %.200s", resp->status,
                    resp->body ? resp->body : "");
        if (resp->status != 429)
            es->url = (es->url + 1) % es->nurls;
        finish(sl, MARS_SINK_RETRY, resp->retry_after_ns);
        return;
    } else {
        MARS_LOG_RL(MARS_LOG_ERROR, id,
                    "bulk request of %u documents refused with %d (%.200s); "
                    "dropped",
                    sl->nsent, resp->status, resp->body ? resp->body : "");
        for (uint32_t i = 0; i < sl->nsent; i++)
            drop_sent(sl, i);
    }
    send_next(sl);
}

/* ---- sink callbacks ---- */

static void elasticsearch_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct elasticsearch_sink *es = mars_sink_state(s);
    struct elasticsearch_reqstate *rs = r->sink_data;
    if (!rs || rs->n != r->events) {
        free(rs);
        rs = calloc(1, sizeof(*rs) + r->events);
        r->sink_data = rs;
        if (!rs) {
            mars_sink_done(s, r, MARS_SINK_RETRY, 0);
            return;
        }
        rs->n = (uint32_t)r->events;
        rs->id_base = es->id_seq;
        es->id_seq += r->events;
    }
    struct elasticsearch_slot *sl = NULL;
    for (unsigned i = 0; i < es->nslots && !sl; i++)
        if (!es->slots[i].call.r)
            sl = &es->slots[i];
    if (!sl) { /* cannot happen: the engine runs at most request.concurrency requests */
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    sl->r = r;
    sl->call.r = r; /* taken until the engine request ends */
    sl->rs = rs;
    sl->retry_items = 0;
    sl->wire = 0;
    seek(sl, 0);
    send_next(sl);
}

static void elasticsearch_abort(struct mars_sink *s)
{
    struct elasticsearch_sink *es = mars_sink_state(s);
    if (es->hs_ready)
        mars_http_common_abort(&es->hs);
}

static void instance_destroy(struct elasticsearch_sink *es)
{
    for (unsigned i = 0; es->slots && i < es->nslots; i++) {
        mars_encoder_fini(&es->slots[i].enc);
        mars_http_common_call_fini(&es->slots[i].call);
        free(es->slots[i].sent);
    }
    free(es->slots);
    if (es->hs_ready)
        mars_http_common_fini(&es->hs);
    for (size_t i = 0; i < es->nurls; i++)
        free(es->urls[i]);
    free(es->urls);
    mars_template_destroy(es->index_tpl);
    mars_path_destroy(es->id_path);
    for (size_t i = 0; es->dedot && i < es->conf->dedot.n; i++)
        mars_path_destroy(es->dedot[i]);
    free(es->dedot);
    free(es->dedot_idx);
    free(es->scratch);
    free(es);
}

static int elasticsearch_init(struct mars_sink *s)
{
    const struct mars_elasticsearch_conf *conf = mars_sink_conf(s);
    struct elasticsearch_sink *es = calloc(1, sizeof(*es));
    char err[160];
    size_t at;
    const char *why;
    if (!es)
        return -ENOMEM;
    es->sink = s;
    es->conf = conf;
    es->cached_sec = INT64_MIN;
    es->jopts.ts_key = conf->timestamp_key;
    if (getrandom(&es->id_nonce, sizeof(es->id_nonce), 0) != sizeof(es->id_nonce))
        es->id_nonce = (uint64_t)mars_ev_clock_ns() ^ ((uint64_t)mars_sink_shard(s) << 48);
    es->nurls = conf->endpoint ? 1 : conf->endpoints.n;
    es->urls = calloc(es->nurls, sizeof(char *));
    int rc = es->urls ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < es->nurls; i++) {
        es->urls[i] =
            mars_elasticsearch_bulk_url(conf->endpoint ? conf->endpoint : conf->endpoints.v[i],
                                        conf->filter_path, conf->pipeline);
        rc = es->urls[i] ? 0 : -ENOMEM;
    }
    es->nslots = mars_sink_concurrency(s);
    es->slots = calloc(es->nslots, sizeof(*es->slots));
    rc = rc ? rc : es->slots ? 0 : -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < es->nslots; i++)
        es->slots[i].es = es;
    if (rc == 0 && !(es->index_tpl = mars_template_compile(conf->index, 0, err, sizeof(err))))
        rc = -EINVAL;
    if (rc == 0 && conf->id_key &&
        !(es->id_path = mars_path_compile(conf->id_key, strlen(conf->id_key), &at, &why)))
        rc = -EINVAL;
    if (rc == 0 && conf->dedot.n) {
        es->dedot = calloc(conf->dedot.n, sizeof(*es->dedot));
        es->dedot_idx = calloc(conf->dedot.n, sizeof(*es->dedot_idx));
        rc = es->dedot && es->dedot_idx ? 0 : -ENOMEM;
        for (size_t i = 0; rc == 0 && i < conf->dedot.n; i++)
            if (!(es->dedot[i] =
                      mars_path_compile(conf->dedot.v[i], strlen(conf->dedot.v[i]), &at, &why)))
                rc = -EINVAL;
        es->jopts.dedot = es->dedot_idx;
    }
    if (rc == 0) {
        rc = mars_http_common_init(&es->hs, s, &conf->http, "application/x-ndjson",
                                   (const char *const *)es->urls, es->nurls);
        es->hs_ready = true; /* fini is safe after a failed init */
    }
    if (rc) {
        mars_error(mars_sink_id(s), "cannot start: %s", strerror(-rc));
        instance_destroy(es);
        return rc;
    }
    mars_sink_set_state(s, es);
    return 0;
}

static void elasticsearch_destroy(struct mars_sink *s)
{
    instance_destroy(mars_sink_state(s));
}

const struct mars_component_desc mars_sink_elasticsearch = {
    .name = "elasticsearch",
    .description = "Sends events to Elasticsearch with the _bulk API, retrying only the "
                   "documents that failed.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG,
    .options = mars_elasticsearch_options,
    .conf_size = sizeof(struct mars_elasticsearch_conf),
    .check = mars_elasticsearch_check,
    .sink = {.init = elasticsearch_init,
             .write = elasticsearch_write,
             .abort = elasticsearch_abort,
             .destroy = elasticsearch_destroy},
};
