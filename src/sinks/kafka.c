/*
 * kafka.c - the `kafka` sink: each event becomes one Kafka message (the event as a JSON
 * object, or its message bytes as they are), produced with librdkafka, idempotent and
 * lz4-compressed by default.
 *
 * How it works: a request's events are handed to librdkafka one message each, with the
 * address of the event's slot in the request's state (struct kafka_req, r->sink_data) as
 * the message opaque. Text payloads are not copied: they point into the request's
 * batches, which the engine keeps until mars_sink_done(), and mars_sink_done() runs only
 * after librdkafka reported every message. The delivery reports arrive on librdkafka's
 * main queue, which the worker's ev loop serves (kafka_client.h: an eventfd and a POLL
 * op), so they run on this worker without locks.
 *
 * Delivery: only a delivery report counts. A request ends OK once every message was
 * delivered or rejected for good; rejected ones (message too large, topic authorization,
 * unknown topic) are counted by error type and go to the dead_letter sink when there is
 * one. librdkafka retries retriable errors itself (idempotence on, message.timeout.ms 0:
 * without limit); should one still come back (a user-set timeout), the request is
 * answered RETRY and its next try produces only the messages not yet delivered.
 *
 * Backpressure: librdkafka's queue is bounded by the sink's own buffer budget
 * (buffer.max_events / max_bytes, mars_sink_buffer_limits). When it is full, producing stops
 * where it is and continues from the delivery reports that free room; the request stays
 * in flight, so the engine's buffer fills and when_full: block pauses the sources.
 *
 * Shutdown: abort purges librdkafka's queues; purged messages finish their requests as
 * ABORTED (not acknowledged), so sources replay them from their checkpoints.
 *
 * Thread: the sink's worker (one producer per worker instance); librdkafka's log lines
 * come from its own threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sinks/kafka_client.h"

enum kafka_encoding { KENC_JSON, KENC_TEXT };
static const char *const encoding_names[] = {"json", "text", NULL};
static const char *const compression_names[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
enum kafka_acks { KACKS_ALL, KACKS_LEADER, KACKS_NONE };
static const char *const acks_names[] = {"all", "leader", "none", NULL};

struct kafka_conf {
    struct mars_kafka_conf client;
    char *topic;
    char *key;
    struct mars_strmap headers;
    int encoding;    /* enum kafka_encoding */
    int compression; /* index into compression_names */
    int acks;        /* enum kafka_acks */
};

#define OFF(f) offsetof(struct kafka_conf, f)
static const struct mars_opt kafka_options[] = {
    MARS_KAFKA_CLIENT_OPTIONS(struct kafka_conf, client),
    {.name = "topic",
     .type = MARS_OPT_STRING,
     .offset = OFF(topic),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Topic to produce to, a template: logs-{{ kubernetes.namespace }}."},
    {.name = "key",
     .type = MARS_OPT_STRING,
     .offset = OFF(key),
     .desc = "Message key, a template such as {{ host }}; unset or empty: no key (messages "
             "spread over partitions)."},
    {.name = "headers",
     .type = MARS_OPT_MAP,
     .offset = OFF(headers),
     .desc = "Message headers as name: template."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = OFF(encoding),
     .def = "json",
     .choices = encoding_names,
     .desc = "json: the event as one JSON object; text: the message bytes as they are, no "
             "newline added."},
    {.name = "compression",
     .type = MARS_OPT_ENUM,
     .offset = OFF(compression),
     .def = "lz4",
     .choices = compression_names,
     .desc = "Compression of message batches."},
    {.name = "acks",
     .type = MARS_OPT_ENUM,
     .offset = OFF(acks),
     .def = "all",
     .choices = acks_names,
     .desc = "Broker acknowledgement a delivery waits for; all keeps idempotence on (no "
             "duplicates from producer retries), leader and none turn it off."},
    {.name = NULL},
};

/* Properties mars sets and the passthrough may not change. */
static const char *const owned[] = {
    "enable.idempotence",    "dr_msg_cb", "dr_cb", "compression.codec", "compression.type", "acks",
    "request.required.acks", NULL};

enum slot_state { ST_PENDING, ST_INFLIGHT, ST_DONE };

struct kafka_req;
struct kafka_slot {
    struct kafka_req *kr;
    uint8_t st; /* enum slot_state */
};

/* r->sink_data: one malloc'd block, kept by the engine across retries. */
struct kafka_req {
    struct mars_sink_req *r;
    struct kafka_sink *ks;
    uint64_t n;                   /* events of r */
    uint64_t cursor;              /* next event to produce, a global index */
    uint32_t bi, ei;              /* batch and event of the cursor */
    uint64_t inflight;            /* messages librdkafka has and has not reported */
    uint64_t retry;               /* retriable failures reported in this try */
    uint64_t rejected, bytes;     /* over all tries */
    bool producing;               /* the cursor has not reached the end */
    bool aborted;                 /* purged at shutdown */
    struct kafka_req *next_block; /* waiting for room in librdkafka's queue */
    struct kafka_slot s[];
};

/* Topic handles by name: a constant topic has one for the sink's life; a templated one
 * keeps the last TOPIC_CACHE names used. Producing with a handle (RD_KAFKA_VTYPE_RKT)
 * spares librdkafka a lookup under its handle lock for every message. */
enum { TOPIC_CACHE = 8 };
struct topic_ref {
    char *name;
    rd_kafka_topic_t *rkt;
    uint64_t used; /* last use, for eviction */
};

struct kafka_sink {
    const char *id; /* first: librdkafka's opaque, read by mars_kafka_log_cb */
    struct mars_sink *sink;
    const struct kafka_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    struct mars_kafka_wake wake;
    struct mars_template *topic, *key;
    struct mars_template **hdr;
    struct mars_encoder enc;
    struct kafka_req *blocked, *blocked_tail;
    struct topic_ref topics[TOPIC_CACHE];
    uint64_t topic_clock;
    bool topic_dynamic; /* the topic template has per-event parts */
    uint32_t nreq;      /* requests with messages in librdkafka or waiting to produce */
    bool aborting, fatal;
};

/* ---- config ---- */

/* The properties mars chooses, as name, value pairs (bufs hold the numbers). librdkafka's
 * queue gets the sink's buffer budget (buffer.max_bytes, max_events), so a full queue pauses
 * the sources instead of failing produce calls; but at least 8 MiB (buffer.max_bytes'
 * default until it became 2 MiB): librdkafka batches per partition out of that queue, and
 * a smaller one would starve its batches. */
static void fixed_props(const struct kafka_conf *c, uint64_t queue_bytes, int64_t queue_events,
                        const char *props[], char qb[32], char qe[32])
{
    static const char *const acks[] = {"all", "1", "0"};
    size_t i = 0;
    uint64_t kb = queue_bytes / 1024;
    snprintf(qb, 32, "%llu", (unsigned long long)(kb < 8192 ? 8192 : kb));
    snprintf(qe, 32, "%lld", (long long)(queue_events < 1000 ? 1000 : queue_events));
    props[i++] = "enable.idempotence";
    props[i++] = c->acks == KACKS_ALL ? "true" : "false";
    props[i++] = "acks";
    props[i++] = acks[c->acks];
    props[i++] = "compression.codec";
    props[i++] = compression_names[c->compression];
    props[i++] = "message.timeout.ms";
    props[i++] = "0"; /* retriable errors retry without limit */
    props[i++] = "queue.buffering.max.kbytes";
    props[i++] = qb;
    props[i++] = "queue.buffering.max.messages";
    props[i++] = qe;
    /* librdkafka's default, 1 MB, makes each batch a fresh mmap of about 2.8 MB (batch and
     * compressed copy) that is faulted in and unmapped again; 128 KiB stays on the heap:
     * file -> kafka (lz4) 6.7-9.6 -> 4.5-5.6 CPU-s/GiB, peak RSS 17.1-18.1 -> 14.5-15.3 MiB */
    props[i++] = "batch.size";
    props[i++] = "131072";
    props[i] = NULL;
}

static int check_template(const char *text, const char *what, const struct mars_cfg_node *node,
                          struct mars_diag *diag)
{
    char why[256];
    struct mars_template *t = mars_template_compile(text, 0, why, sizeof(why));
    if (t) {
        mars_template_destroy(t);
        return 0;
    }
    const struct mars_cfg_node *at = node;
    mars_diag_add(diag, at->file, at->line, at->col, "%s: %s", what, why);
    return -EINVAL;
}

static int kafka_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    struct kafka_conf *c = conf;
    const char *props[16];
    char qb[32], qe[32];
    int rc = 0;

    fixed_props(c, 0, 0, props, qb, qe); /* the budget is the sink's, known at init */
    if (mars_netconf_check(&c->client.tls, NULL, node, diag))
        rc = -EINVAL;
    if (check_template(c->topic, "topic", node, diag))
        rc = -EINVAL;
    if (c->key && check_template(c->key, "key", node, diag))
        rc = -EINVAL;
    for (size_t i = 0; i < c->headers.n; i++)
        if (check_template(c->headers.vals[i], "headers", node, diag))
            rc = -EINVAL;
    rd_kafka_conf_t *kc = mars_kafka_conf_build(&c->client, props, owned, node, diag, NULL, 0);
    if (!kc)
        return -EINVAL;
    long long timeout = mars_kafka_conf_int(kc, "message.timeout.ms", 0);
    long long linger = mars_kafka_conf_int(kc, "linger.ms", 5);
    long long req = mars_kafka_conf_int(kc, "request.timeout.ms", 30000);
    if (timeout != 0 && timeout <= linger)
        rc = mars_kafka_conf_error(node, "message.timeout.ms", diag,
                                   "message.timeout.ms (%lld) must be above linger.ms (%lld)",
                                   timeout, linger);
    else if (timeout != 0 && timeout < req)
        rc = mars_kafka_conf_error(node, "message.timeout.ms", diag,
                                   "message.timeout.ms (%lld) must not be below "
                                   "request.timeout.ms (%lld)",
                                   timeout, req);
    rd_kafka_conf_destroy(kc);
    return rc;
}

/* ---- finishing requests ---- */

static void finish(struct kafka_req *kr)
{
    struct kafka_sink *ks = kr->ks;
    struct mars_sink_req *r = kr->r;
    enum mars_sink_result res = MARS_SINK_OK;

    ks->nreq--;
    if (kr->aborted) {
        res = MARS_SINK_ABORTED;
    } else if (kr->retry) {
        kr->retry = 0;
        mars_stat_add(&mars_sink_stats(ks->sink)->errors[MARS_ERR_RETRY], 1);
        mars_sink_done(ks->sink, r, MARS_SINK_RETRY, 0); /* kr stays with r */
        return;
    }
    uint64_t rejected = kr->rejected, bytes = kr->bytes;
    free(kr);
    r->sink_data = NULL;
    if (res == MARS_SINK_OK && rejected > 0 && rejected >= r->events)
        res = MARS_SINK_REJECTED;
    else if (res == MARS_SINK_OK)
        r->rejected_events = rejected;
    mars_sink_done(ks->sink, r, res, res == MARS_SINK_OK ? bytes : 0);
}

static void maybe_finish(struct kafka_req *kr)
{
    if (!kr->producing && kr->inflight == 0)
        finish(kr);
}

/* Permanent failures: the message can never be delivered as it is. */
static bool permanent(rd_kafka_resp_err_t err, enum mars_error_type *type)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        *type = MARS_ERR_OVERSIZE;
        return true;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        *type = MARS_ERR_REJECTED;
        return true;
    default:
        return false;
    }
}

/* Event of slot sl failed with err (a delivery report or a refused produce call). */
static void slot_failed(struct kafka_slot *sl, rd_kafka_resp_err_t err)
{
    struct kafka_req *kr = sl->kr;
    struct kafka_sink *ks = kr->ks;
    enum mars_error_type type;

    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
        ks->aborting) {
        sl->st = ST_PENDING;
        kr->aborted = true;
        return;
    }
    if (permanent(err, &type)) {
        sl->st = ST_DONE;
        kr->rejected++;
        mars_stat_add(&mars_sink_stats(ks->sink)->errors[type], 1);
        int dl = mars_sink_dead_letter(ks->sink, kr->r, (uint64_t)(sl - kr->s));
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(ks->sink), "message rejected for good: %s%s",
                    rd_kafka_err2str(err),
                    dl == 0 ? " (sent to dead_letter)" : " (dropped: no dead_letter)");
        return;
    }
    sl->st = ST_PENDING;
    kr->retry++;
    MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(ks->sink), "delivery failed, will retry: %s",
                rd_kafka_err2str(err));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_slot *sl = m->_private;
    struct kafka_req *kr = sl->kr;
    (void)rk;
    (void)opaque;
    kr->inflight--;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sl->st = ST_DONE;
        kr->bytes += m->len;
    } else {
        slot_failed(sl, m->err);
    }
    maybe_finish(kr);
}

/* ---- producing ---- */

enum { NAME_MAX_LEN = 256, VALUE_MAX_LEN = 4096 };

/* Headers of ev, or NULL when none are configured (owned; producev takes them). */
static rd_kafka_headers_t *make_headers(struct kafka_sink *ks, const struct mars_event *ev)
{
    const struct mars_strmap *h = &ks->conf->headers;
    char val[VALUE_MAX_LEN];
    if (h->n == 0)
        return NULL;
    rd_kafka_headers_t *hs = rd_kafka_headers_new(h->n);
    for (size_t i = 0; i < h->n; i++) {
        int len = mars_template_render(ks->hdr[i], ev, val, sizeof(val));
        if (len >= 0)
            rd_kafka_header_add(hs, h->keys[i], -1, val, len);
    }
    return hs;
}

/* The handle of the topic named name (cached; librdkafka keeps it alive while messages
 * refer to it), or NULL without memory. */
static rd_kafka_topic_t *topic_handle(struct kafka_sink *ks, const char *name)
{
    struct topic_ref *victim = &ks->topics[0];
    for (size_t i = 0; i < TOPIC_CACHE; i++) {
        struct topic_ref *t = &ks->topics[i];
        if (t->name && !strcmp(t->name, name)) {
            t->used = ++ks->topic_clock;
            return t->rkt;
        }
        if (victim->name && (!t->name || t->used < victim->used))
            victim = t; /* the first free slot, else the least recently used */
    }
    char *copy = strdup(name);
    rd_kafka_topic_t *rkt = copy ? rd_kafka_topic_new(ks->rk, name, NULL) : NULL;
    if (!rkt) {
        free(copy);
        return NULL;
    }
    if (victim->rkt)
        rd_kafka_topic_destroy(victim->rkt);
    free(victim->name);
    *victim = (struct topic_ref){.name = copy, .rkt = rkt, .used = ++ks->topic_clock};
    return rkt;
}

static void topics_fini(struct kafka_sink *ks)
{
    for (size_t i = 0; i < TOPIC_CACHE; i++) {
        if (ks->topics[i].rkt)
            rd_kafka_topic_destroy(ks->topics[i].rkt);
        free(ks->topics[i].name);
        ks->topics[i] = (struct topic_ref){0};
    }
}

/* Hands the event of slot sl to librdkafka. Returns its answer (QUEUE_FULL: try later). */
static rd_kafka_resp_err_t produce_one(struct kafka_sink *ks, struct kafka_slot *sl,
                                       const struct mars_event *ev)
{
    char topic[NAME_MAX_LEN], key[VALUE_MAX_LEN];
    const void *payload = ev->msg.ptr;
    size_t plen = ev->msg.len;
    int flags = 0; /* text: no copy, the batch outlives the delivery report */
    int klen = 0;
    rd_kafka_topic_t *rkt = ks->topics[0].rkt; /* a constant topic's, made at init */

    if (ks->topic_dynamic) {
        if (mars_template_render(ks->topic, ev, topic, sizeof(topic)) <= 0)
            return RD_KAFKA_RESP_ERR__INVALID_ARG; /* empty or too long a name */
        rkt = topic_handle(ks, topic);
    }
    if (!rkt)
        return RD_KAFKA_RESP_ERR__FAIL; /* no memory: retried */
    if (ks->key) {
        klen = mars_template_render(ks->key, ev, key, sizeof(key));
        if (klen < 0)
            klen = 0;
    }
    if (ks->conf->encoding == KENC_JSON) {
        mars_encoder_reset(&ks->enc);
        if (mars_encode_json_event(&ks->enc, ev))
            return RD_KAFKA_RESP_ERR__FAIL; /* -ENOMEM: retried */
        payload = ks->enc.out;
        plen = ks->enc.out_len;
        flags = RD_KAFKA_MSG_F_COPY;
    }
    rd_kafka_headers_t *hs = make_headers(ks, ev);
    rd_kafka_vu_t vu[8];
    size_t n = 0;
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = rkt;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = flags;
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)payload;
    vu[n++].u.mem.size = plen;
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = sl;
    if (klen > 0) {
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = key;
        vu[n++].u.mem.size = (size_t)klen;
    }
    if (ev->ts_ns > 0) {
        vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vu[n++].u.i64 = ev->ts_ns / 1000000;
    }
    if (hs) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[n++].u.headers = hs;
    }
    rd_kafka_error_t *e = rd_kafka_produceva(ks->rk, vu, n);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e) {
        err = rd_kafka_error_code(e);
        rd_kafka_error_destroy(e);
    }
    if (err && hs)
        rd_kafka_headers_destroy(hs); /* ownership passes only on success */
    return err;
}

static void block(struct kafka_sink *ks, struct kafka_req *kr)
{
    kr->next_block = NULL;
    if (ks->blocked_tail)
        ks->blocked_tail->next_block = kr;
    else
        ks->blocked = kr;
    ks->blocked_tail = kr;
}

/* Produces kr's pending events from its cursor on, until the end or a full queue. */
static void produce_more(struct kafka_sink *ks, struct kafka_req *kr)
{
    struct mars_sink_req *r = kr->r;

    while (kr->bi < r->n) {
        const struct mars_batch *b = r->batches[kr->bi];
        if (kr->ei >= b->n) {
            kr->bi++;
            kr->ei = 0;
            continue;
        }
        struct kafka_slot *sl = &kr->s[kr->cursor];
        if (sl->st == ST_PENDING && !kr->aborted) {
            rd_kafka_resp_err_t err = produce_one(ks, sl, &b->ev[kr->ei]);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                block(ks, kr); /* on_serve continues once reports free room */
                return;
            }
            if (err) {
                slot_failed(sl, err);
            } else {
                sl->st = ST_INFLIGHT;
                kr->inflight++;
            }
        }
        kr->ei++;
        kr->cursor++;
    }
    kr->producing = false;
    maybe_finish(kr);
}

static void kafka_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct kafka_sink *ks = mars_sink_state(s);
    struct kafka_req *kr = r->sink_data;

    if (!kr) {
        kr = calloc(1, sizeof(*kr) + r->events * sizeof(kr->s[0]));
        if (!kr) {
            mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_MEMORY], 1);
            mars_sink_done(s, r, MARS_SINK_RETRY, 0);
            return;
        }
        kr->n = r->events;
        for (uint64_t i = 0; i < kr->n; i++)
            kr->s[i].kr = kr;
        r->sink_data = kr;
    }
    kr->r = r;
    kr->ks = ks;
    kr->cursor = 0;
    kr->bi = kr->ei = 0;
    kr->retry = 0;
    kr->producing = true;
    ks->nreq++;
    produce_more(ks, kr);
}

/* ---- serving librdkafka's main queue (from the ev loop) ---- */

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_sink *ks = opaque;
    char why[512];
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(ks->rk, why, sizeof(why));
        mars_error(mars_sink_id(ks->sink),
                   "fatal producer error: %s; stopping (undelivered "
                   "events replay from checkpoints at the next start)",
                   why);
        mars_sink_last_error(ks->sink, "fatal: %s", why);
        if (!ks->fatal)
            mars_sink_request_shutdown(ks->sink, "kafka producer fatal error");
        ks->fatal = true;
        return;
    }
    mars_stat_add(&mars_sink_stats(ks->sink)->errors[MARS_ERR_CONNECT], 1);
    mars_sink_last_error(ks->sink, "%s", reason);
    /* librdkafka's own log already has the connection failures; say the rest. */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err != RD_KAFKA_RESP_ERR__TRANSPORT)
        MARS_LOG_RL(MARS_LOG_WARN, mars_sink_id(ks->sink), "%s: %s",
                    rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_serve(void *data)
{
    struct kafka_sink *ks = data;
    while (rd_kafka_poll(ks->rk, 0) > 0)
        ;
    /* Reports freed room in librdkafka's queue: continue blocked requests in order. */
    while (ks->blocked) {
        struct kafka_req *kr = ks->blocked;
        ks->blocked = kr->next_block;
        if (!ks->blocked)
            ks->blocked_tail = NULL;
        produce_more(ks, kr);
        if (ks->blocked_tail == kr)
            break; /* full again */
    }
    if (ks->aborting && ks->nreq == 0)
        mars_kafka_wake_stop(&ks->wake);
}

/* Shutdown timeout, or the worker quiescing: purge what librdkafka holds; its reports
 * finish the requests as ABORTED, then the bridge stops. */
static void kafka_abort(struct mars_sink *s)
{
    struct kafka_sink *ks = mars_sink_state(s);
    ks->aborting = true;
    if (!ks->rk)
        return;
    for (struct kafka_req *kr = ks->blocked; kr; kr = kr->next_block)
        kr->aborted = true;
    if (ks->nreq)
        rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (rd_kafka_poll(ks->rk, 0) > 0)
        ;
    while (ks->blocked) { /* their cursor stops: what was produced was purged */
        struct kafka_req *kr = ks->blocked;
        ks->blocked = kr->next_block;
        kr->producing = false;
        maybe_finish(kr);
    }
    ks->blocked_tail = NULL;
    if (ks->nreq == 0)
        mars_kafka_wake_stop(&ks->wake);
}

/* ---- lifetime ---- */

static struct mars_template *compile(const char *text)
{
    char why[256];
    return mars_template_compile(text, 0, why, sizeof(why)); /* kafka_check compiled it */
}

static void kafka_destroy(struct mars_sink *s);

/* A failed init leaves nothing behind. */
static int init_failed(struct mars_sink *s, int rc)
{
    kafka_destroy(s);
    mars_sink_set_state(s, NULL);
    return rc;
}

static int kafka_init(struct mars_sink *s)
{
    const struct kafka_conf *conf = mars_sink_conf(s);
    struct kafka_sink *ks = calloc(1, sizeof(*ks));
    const char *props[16];
    char qb[32], qe[32], err[512];

    if (!ks)
        return -ENOMEM;
    ks->id = mars_sink_id(s);
    ks->sink = s;
    ks->conf = conf;
    ks->wake.fd = -1;
    mars_sink_set_state(s, ks);
    ks->topic = compile(conf->topic);
    ks->key = conf->key ? compile(conf->key) : NULL;
    ks->hdr = calloc(conf->headers.n + 1, sizeof(*ks->hdr));
    if (!ks->topic || (conf->key && !ks->key) || !ks->hdr)
        return init_failed(s, -ENOMEM);
    for (size_t i = 0; i < conf->headers.n; i++)
        if (!(ks->hdr[i] = compile(conf->headers.vals[i])))
            return init_failed(s, -ENOMEM);
    int64_t queue_events;
    uint64_t queue_bytes;
    mars_sink_buffer_limits(s, &queue_events, &queue_bytes);
    fixed_props(conf, queue_bytes, queue_events, props, qb, qe);
    rd_kafka_conf_t *kc =
        mars_kafka_conf_build(&conf->client, props, owned, NULL, NULL, err, sizeof(err));
    if (!kc) {
        mars_error(mars_sink_id(s), "%s", err);
        return init_failed(s, -EINVAL);
    }
    rd_kafka_conf_set_opaque(kc, ks);
    rd_kafka_conf_set_log_cb(kc, mars_kafka_log_cb);
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_error_cb(kc, on_error);
    ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!ks->rk) {
        rd_kafka_conf_destroy(kc);
        mars_error(mars_sink_id(s), "cannot create the producer: %s", err);
        return init_failed(s, -EINVAL);
    }
    ks->topic_dynamic = mars_template_is_dynamic(ks->topic);
    if (!ks->topic_dynamic) {
        char name[NAME_MAX_LEN];
        const struct mars_event none = {0};
        if (mars_template_render(ks->topic, &none, name, sizeof(name)) <= 0) {
            mars_error(mars_sink_id(s), "topic: empty or longer than %d bytes", NAME_MAX_LEN - 1);
            return init_failed(s, -EINVAL);
        }
        if (!topic_handle(ks, name))
            return init_failed(s, -ENOMEM);
    }
    ks->mainq = rd_kafka_queue_get_main(ks->rk);
    int rc = mars_kafka_wake_start(&ks->wake, mars_sink_loop(s), ks->mainq, on_serve, ks);
    if (rc) {
        mars_error(mars_sink_id(s), "cannot watch the producer's queue: %s", strerror(-rc));
        return init_failed(s, rc);
    }
    return 0;
}

static void kafka_destroy(struct mars_sink *s)
{
    struct kafka_sink *ks = mars_sink_state(s);
    if (!ks)
        return;
    if (ks->mainq) {
        rd_kafka_queue_io_event_enable(ks->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(ks->mainq);
    }
    topics_fini(ks);
    if (ks->rk) {
        rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(ks->rk);
    }
    mars_kafka_wake_fini(&ks->wake);
    for (size_t i = 0; ks->hdr && i < ks->conf->headers.n; i++)
        mars_template_destroy(ks->hdr[i]);
    free(ks->hdr);
    mars_template_destroy(ks->topic);
    mars_template_destroy(ks->key);
    mars_encoder_fini(&ks->enc);
    free(ks);
}

const struct mars_component_desc mars_sink_kafka = {
    .name = "kafka",
    .description = "Produces each event as one Kafka message (JSON or the raw line) with "
                   "librdkafka: idempotent, compressed, acknowledged only from delivery "
                   "reports.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = kafka_options,
    .conf_size = sizeof(struct kafka_conf),
    .check = kafka_check,
    .sink = {.init = kafka_init,
             .write = kafka_write,
             .abort = kafka_abort,
             .destroy = kafka_destroy},
};
