/*
 * kafka.c - the `kafka` source: a consumer in a Kafka consumer group (librdkafka); each
 * message becomes one event whose message is the payload, with the fields topic,
 * partition, offset, key and headers and the message's timestamp.
 *
 * How it works: rd_kafka_poll_set_consumer() sends every callback (rebalances, errors,
 * logs) and every fetched message to the consumer queue, which the worker's ev loop serves
 * through the eventfd bridge of kafka_client.h. Each serve drains the queue with
 * non-blocking rd_kafka_consumer_poll() calls, copying messages into batches (payload,
 * key and header bytes into the batch arena, so librdkafka's fetch buffers are returned
 * at once). There is no polling thread of mars's own.
 *
 * Offsets: librdkafka commits (enable.auto.commit) only what this source stores with
 * rd_kafka_offsets_store() (enable.auto.offset.store is off), and it stores an offset
 * only once every event before it in that partition was acknowledged: each partition
 * keeps a queue of the batches holding its messages, in the order they were emitted, and
 * an acknowledgement advances the stored offset over the acknowledged head of that queue
 * only (the file source's contiguous-ack rule). A batch that was not delivered (shutdown
 * timeout) blocks its partition's offset, so the next owner reads it again.
 *
 * Rebalance: revoked partitions stop at once; their queues are dropped (a generation
 * number tells late acknowledgements to ignore them), so what was not acknowledged is read
 * again by the new owner. librdkafka commits the stored offsets of revoked partitions.
 *
 * Backpressure: when mars_source_paused() turns true after an emit, every assigned
 * partition is paused (librdkafka drops what it had prefetched for them and fetches from
 * the next unconsumed offset on resume); resume() resumes them. The queue is still served
 * meanwhile, so rebalances and group heartbeats go on.
 *
 * Workers: one consumer per source, on one worker. The group balances partitions between
 * mars processes (nodes); a consumer per worker would make every process several group
 * members, multiply rebalances and split a partition's acknowledgements across threads,
 * while one worker decoding messages into batches is far from the bottleneck.
 *
 * Stop: the source stops emitting and pauses; once every emitted batch was acknowledged
 * (or abandoned), rd_kafka_consumer_close_queue() leaves the group on a queue of its own
 * (served by a second bridge), librdkafka commits the stored offsets, and the source
 * finishes.
 *
 * Thread: the source's worker; the check on the control thread at config load.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "sinks/kafka_client.h"

enum kafka_start { KSTART_LATEST, KSTART_EARLIEST };
static const char *const start_names[] = {"latest", "earliest", NULL};

struct ksrc_conf {
    struct mars_kafka_conf client;
    struct mars_strlist topics;
    char *group_id;
    int start_from; /* enum kafka_start */
    int64_t batch_events;
};

#define OFF(f) offsetof(struct ksrc_conf, f)
static const struct mars_opt ksrc_options[] = {
    MARS_KAFKA_CLIENT_OPTIONS(struct ksrc_conf, client),
    {.name = "topics",
     .type = MARS_OPT_LIST,
     .offset = OFF(topics),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Topics to consume: names, or POSIX extended regexes starting with ^ (every "
             "matching topic, including ones created later)."},
    {.name = "group_id",
     .type = MARS_OPT_STRING,
     .offset = OFF(group_id),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Consumer group: its members share the topics' partitions and its committed "
             "offsets say where reading resumes."},
    {.name = "start_from",
     .type = MARS_OPT_ENUM,
     .offset = OFF(start_from),
     .def = "latest",
     .choices = start_names,
     .desc = "Where a partition with no committed offset for the group starts: latest (new "
             "messages only) or earliest (everything the broker still has)."},
    {.name = "batch_events",
     .type = MARS_OPT_INT,
     .offset = OFF(batch_events),
     .def = "1024",
     .min = 1,
     .max = 65536,
     .desc = "Most messages in one batch."},
    {.name = NULL},
};

/* Properties mars sets and the passthrough may not change. */
static const char *const owned[] = {
    "group.id",     "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset",
    "rebalance_cb", "offset_commit_cb",   "enable.partition.eof",     NULL};

/* One partition this source has been assigned (kept, unassigned, after a revoke). */
struct kent {
    int64_t next_off; /* the offset after the last message of this partition in the batch */
    bool done;
};
struct kpart {
    char *topic;
    int32_t partition;
    bool assigned;
    uint32_t gen;                /* bumped by each revoke: older acknowledgements are void */
    uint64_t head_seq, next_seq; /* seq of q[qhead], and of the next batch entry */
    struct kent *q;              /* pending batches, oldest first: q[qhead .. qhead+qlen) */
    size_t qhead, qlen, qcap;
    int64_t consumed; /* next offset to read (for the lag) */
    struct mars_mseries *lag;
};

/* A batch's acknowledgement context: which partition entries it holds. */
struct kack_ent {
    uint32_t part, gen;
    uint64_t seq;
    int64_t next_off; /* while the batch is being filled */
};
struct kack {
    struct ksrc *ks;
    uint32_t n, cap;
    struct kack_ent *e;
};

struct ksrc {
    const char *id; /* first: librdkafka's opaque, read by mars_kafka_log_cb */
    struct mars_source *src;
    const struct ksrc_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q, *closeq;
    struct mars_kafka_wake wake, closewake;
    struct kpart *parts;
    size_t nparts, pcap;
    struct mars_fbuild fb;
    struct mars_mfamily *lagf;
    uint64_t inflight; /* batches emitted, not acknowledged */
    bool paused, stopping, closing, finished;
};

/* ---- config ---- */

static void fixed_props(const struct ksrc_conf *c, const char *props[])
{
    size_t i = 0;
    props[i++] = "group.id";
    props[i++] = c->group_id ? c->group_id : "";
    props[i++] = "enable.auto.commit";
    props[i++] = "true"; /* commits only what kafka.c stored: acknowledged offsets */
    props[i++] = "enable.auto.offset.store";
    props[i++] = "false";
    props[i++] = "auto.offset.reset";
    props[i++] = start_names[c->start_from];
    props[i++] = "enable.partition.eof";
    props[i++] = "false";
    props[i] = NULL;
}

static int ksrc_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    struct ksrc_conf *c = conf;
    const struct mars_cfg_node *tn = mars_cfg_get(node, "topics");
    const char *props[16];
    int rc = 0;

    if (mars_netconf_check(&c->client.tls, NULL, node, diag))
        rc = -EINVAL;
    if (c->topics.n == 0) {
        const struct mars_cfg_node *at = tn ? tn : node;
        mars_diag_add(diag, at->file, at->line, at->col, "topics: at least one topic is needed");
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->topics.n; i++) {
        const char *t = c->topics.v[i];
        const struct mars_cfg_node *at = tn ? tn : node;
        regex_t re;
        char why[128];
        if (!*t) {
            mars_diag_add(diag, at->file, at->line, at->col, "topics: empty topic name");
            rc = -EINVAL;
        } else if (t[0] == '^') {
            int e = regcomp(&re, t, REG_EXTENDED | REG_NOSUB);
            if (e) {
                regerror(e, &re, why, sizeof(why));
                mars_diag_add(diag, at->file, at->line, at->col, "topics: bad regex %s: %s", t,
                              why);
                rc = -EINVAL;
            } else {
                regfree(&re);
            }
        }
    }
    if (c->group_id && !*c->group_id) {
        mars_diag_add(diag, node->file, node->line, node->col, "group_id: must not be empty");
        rc = -EINVAL;
    }
    fixed_props(c, props);
    rd_kafka_conf_t *kc = mars_kafka_conf_build(&c->client, props, owned, node, diag, NULL, 0);
    if (!kc)
        return -EINVAL;
    rd_kafka_conf_destroy(kc);
    return rc;
}

/* ---- partitions and the contiguous-ack rule ---- */

static uint32_t part_index(struct ksrc *ks, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < ks->nparts; i++)
        if (ks->parts[i].partition == partition && !strcmp(ks->parts[i].topic, topic))
            return (uint32_t)i;
    if (ks->nparts == ks->pcap) {
        size_t cap = ks->pcap ? ks->pcap * 2 : 16;
        struct kpart *p = realloc(ks->parts, cap * sizeof(*p));
        if (!p)
            return UINT32_MAX;
        ks->parts = p;
        ks->pcap = cap;
    }
    struct kpart *p = &ks->parts[ks->nparts];
    memset(p, 0, sizeof(*p));
    p->topic = strdup(topic);
    if (!p->topic)
        return UINT32_MAX;
    p->partition = partition;
    p->consumed = -1;
    if (ks->lagf) {
        char pn[16];
        snprintf(pn, sizeof(pn), "%d", (int)partition);
        const char *values[] = {ks->id, topic, pn, NULL};
        p->lag = mars_mfamily_series(ks->lagf, values);
    }
    return (uint32_t)ks->nparts++;
}

/* Appends a pending entry for a batch to partition p; returns its seq (or UINT64_MAX). */
static uint64_t part_push(struct kpart *p, int64_t next_off)
{
    if (p->qhead + p->qlen == p->qcap) {
        if (p->qhead > 0) { /* slide down before growing */
            memmove(p->q, p->q + p->qhead, p->qlen * sizeof(*p->q));
            p->qhead = 0;
        }
        if (p->qlen == p->qcap) {
            size_t cap = p->qcap ? p->qcap * 2 : 16;
            struct kent *q = realloc(p->q, cap * sizeof(*q));
            if (!q)
                return UINT64_MAX;
            p->q = q;
            p->qcap = cap;
        }
    }
    p->q[p->qhead + p->qlen++] = (struct kent){.next_off = next_off};
    return p->next_seq++;
}

/* Entry seq of p is acknowledged: stores the offset over the acknowledged head. */
static void part_ack(struct ksrc *ks, struct kpart *p, uint64_t seq)
{
    int64_t store = -1;
    if (seq < p->head_seq || seq - p->head_seq >= p->qlen)
        return;
    p->q[p->qhead + (seq - p->head_seq)].done = true;
    while (p->qlen > 0 && p->q[p->qhead].done) {
        store = p->q[p->qhead].next_off;
        p->qhead++;
        p->qlen--;
        p->head_seq++;
    }
    if (p->qlen == 0)
        p->qhead = 0;
    if (store < 0 || !p->assigned)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = store;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(ks->rk, l);
    if (err)
        MARS_LOG_RL(MARS_LOG_WARN, ks->id, "cannot store offset %lld of %s[%d]: %s",
                    (long long)store, p->topic, (int)p->partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static void maybe_close(struct ksrc *ks);

static void on_batch_ack(struct mars_batch *b, bool delivered)
{
    struct kack *ka = b->ack.ctx;
    struct ksrc *ks = ka->ks;

    if (delivered) {
        mars_stat_add(&mars_source_stats(ks->src)->acked_events, b->ack.a);
        for (uint32_t i = 0; i < ka->n; i++) {
            struct kpart *p = &ks->parts[ka->e[i].part];
            if (p->gen == ka->e[i].gen)
                part_ack(ks, p, ka->e[i].seq);
        }
    }
    free(ka->e);
    free(ka);
    ks->inflight--;
    if (ks->stopping)
        maybe_close(ks);
}

/* ---- pause and resume ---- */

static void set_paused(struct ksrc *ks, bool pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    ks->paused = pause;
    if (rd_kafka_assignment(ks->rk, &l) || !l)
        return;
    if (l->cnt > 0) {
        if (pause)
            rd_kafka_pause_partitions(ks->rk, l);
        else
            rd_kafka_resume_partitions(ks->rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void ksrc_resume(struct mars_source *s)
{
    struct ksrc *ks = mars_source_state(s);
    if (ks && ks->paused && !ks->stopping && !mars_source_paused(s))
        set_paused(ks, false);
}

/* ---- rebalances ---- */

static void revoke(struct ksrc *ks, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        uint32_t pi = part_index(ks, l->elems[i].topic, l->elems[i].partition);
        if (pi == UINT32_MAX)
            continue;
        struct kpart *p = &ks->parts[pi];
        p->assigned = false;
        p->gen++;
        p->qhead = p->qlen = 0;
        p->head_seq = p->next_seq;
        p->consumed = -1;
        mars_mseries_set(p->lag, mars_source_shard(ks->src), 0);
    }
}

static void assign(struct ksrc *ks, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        uint32_t pi = part_index(ks, l->elems[i].topic, l->elems[i].partition);
        if (pi != UINT32_MAX)
            ks->parts[pi].assigned = true;
    }
}

static void rebalance(struct ksrc *ks, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *l)
{
    bool coop = !strcmp(rd_kafka_rebalance_protocol(ks->rk), "COOPERATIVE");
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign(ks, l);
        mars_info(ks->id, "assigned %d partition(s)", l->cnt);
        if (coop)
            e = rd_kafka_incremental_assign(ks->rk, l);
        else
            rerr = rd_kafka_assign(ks->rk, l);
        if (ks->paused || ks->stopping)
            set_paused(ks, true);
    } else {
        revoke(ks, l);
        mars_info(ks->id, "%s %d partition(s)",
                  err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "revoked" : "lost", l->cnt);
        if (coop)
            e = rd_kafka_incremental_unassign(ks->rk, l);
        else
            rerr = rd_kafka_assign(ks->rk, NULL);
    }
    if (e) {
        mars_warn(ks->id, "rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (rerr) {
        mars_warn(ks->id, "rebalance: %s", rd_kafka_err2str(rerr));
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    (void)rk;
    rebalance(opaque, err, l);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct ksrc *ks = opaque;
    char why[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, why, sizeof(why));
        mars_error(ks->id, "fatal consumer error: %s", why);
        mars_source_last_error(ks->src, "fatal: %s", why);
        return;
    }
    mars_stat_add(&mars_source_stats(ks->src)->errors[MARS_ERR_CONNECT], 1);
    mars_source_last_error(ks->src, "%s", reason);
    if (err != RD_KAFKA_RESP_ERR__TRANSPORT)
        MARS_LOG_RL(MARS_LOG_WARN, ks->id, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                    reason);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct ksrc *ks = opaque;
    (void)rk;
    (void)offsets;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        MARS_LOG_RL(MARS_LOG_WARN, ks->id, "offset commit failed: %s", rd_kafka_err2str(err));
}

/* ---- messages into batches ---- */

static const char *arena_num(struct mars_arena *a, int64_t v, uint32_t *len)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    *len = (uint32_t)n;
    return mars_arena_strndup(a, buf, (size_t)n);
}

/* Adds message m to b. Returns 0 or -ENOMEM. */
static int add_message(struct ksrc *ks, struct mars_batch *b, struct kack *ka,
                       const rd_kafka_message_t *m)
{
    struct mars_arena *a = &b->arena;
    const char *topic = rd_kafka_topic_name(m->rkt);
    uint32_t pi = part_index(ks, topic, m->partition);
    if (pi == UINT32_MAX)
        return -ENOMEM;
    struct kpart *p = &ks->parts[pi];
    uint32_t k = 0;
    while (k < ka->n && ka->e[k].part != pi)
        k++;
    if (k == ka->n) {
        if (ka->n == ka->cap) {
            uint32_t cap = ka->cap ? ka->cap * 2 : 4;
            struct kack_ent *e = realloc(ka->e, cap * sizeof(*e));
            if (!e)
                return -ENOMEM;
            ka->e = e;
            ka->cap = cap;
        }
        ka->e[ka->n++] = (struct kack_ent){.part = pi, .gen = p->gen};
    }
    ka->e[k].next_off = m->offset + 1;
    p->consumed = m->offset + 1;

    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    char *payload = m->len ? mars_arena_strndup(a, m->payload, m->len) : "";
    if (!payload)
        return -ENOMEM;
    ev->msg = (struct mars_slice){payload, (uint32_t)m->len};
    b->bytes += m->len;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (ts > 0) {
        ev->ts_ns = ts * 1000000;
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ev->ts_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }

    struct mars_fbuild *fb = &ks->fb;
    uint32_t len;
    const char *v;
    mars_fbuild_reset(fb, a);
    mars_fbuild_put(fb, 0, "topic", 5, MARS_FIELD_STRING, p->topic, (uint32_t)strlen(p->topic), 0,
                    false, NULL);
    v = arena_num(a, m->partition, &len);
    if (v)
        mars_fbuild_put(fb, 0, "partition", 9, MARS_FIELD_NUMBER, v, len, 0, false, NULL);
    v = arena_num(a, m->offset, &len);
    if (v)
        mars_fbuild_put(fb, 0, "offset", 6, MARS_FIELD_NUMBER, v, len, 0, false, NULL);
    if (m->key) {
        v = mars_arena_strndup(a, m->key, m->key_len);
        if (v)
            mars_fbuild_put(fb, 0, "key", 3, MARS_FIELD_STRING, v, (uint32_t)m->key_len, 0, false,
                            NULL);
    }
    rd_kafka_headers_t *hs = NULL;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR && hs) {
        uint32_t obj =
            mars_fbuild_put(fb, 0, "headers", 7, MARS_FIELD_OBJECT, NULL, 0, 0, false, NULL);
        const char *name;
        const void *val;
        size_t vlen;
        for (size_t i = 0;
             obj != MARS_FIELD_NIL && !rd_kafka_header_get_all(hs, i, &name, &val, &vlen); i++) {
            const char *kn = mars_arena_strndup(a, name, strlen(name));
            const char *kv = val ? mars_arena_strndup(a, val, vlen) : NULL;
            if (kn && kv)
                mars_fbuild_put(fb, obj, kn, (uint32_t)strlen(kn), MARS_FIELD_STRING, kv,
                                (uint32_t)vlen, 0, true, NULL);
            else if (kn)
                mars_fbuild_put(fb, obj, kn, (uint32_t)strlen(kn), MARS_FIELD_NULL, "null", 4, 0,
                                true, NULL);
        }
    }
    return mars_fields_merge(b, ev, fb, NULL);
}

/* Hands the batch being filled to the pipeline, with its partitions' entries queued. */
static void emit(struct ksrc *ks, struct mars_batch *b, struct kack *ka)
{
    for (uint32_t i = 0; i < ka->n; i++) {
        struct kpart *p = &ks->parts[ka->e[i].part];
        ka->e[i].seq = part_push(p, ka->e[i].next_off);
        if (ka->e[i].seq == UINT64_MAX) /* never acknowledged: the offset stays behind */
            mars_stat_add(&mars_source_stats(ks->src)->errors[MARS_ERR_MEMORY], 1);
        int64_t lo, hi;
        if (p->consumed >= 0 &&
            rd_kafka_get_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi) == 0 &&
            hi >= p->consumed)
            mars_mseries_set(p->lag, mars_source_shard(ks->src), (double)(hi - p->consumed));
    }
    ks->inflight++;
    b->ack = (struct mars_batch_ack){.fn = on_batch_ack, .ctx = ka, .a = b->n};
    mars_source_emit(ks->src, b);
}

static void on_serve(void *data)
{
    struct ksrc *ks = data;
    struct mars_batch *b = NULL;
    struct kack *ka = NULL;
    rd_kafka_message_t *m;

    while ((m = rd_kafka_consumer_poll(ks->rk, 0))) {
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                mars_stat_add(&mars_source_stats(ks->src)->errors[MARS_ERR_READ], 1);
                MARS_LOG_RL(MARS_LOG_WARN, ks->id, "consume: %s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (ks->stopping) { /* read again at the next start */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!b) {
            b = mars_source_batch(ks->src, (uint32_t)ks->conf->batch_events);
            ka = calloc(1, sizeof(*ka));
            if (!b || !ka) {
                /* what this message was is fetched again: nothing after it is stored */
                mars_stat_add(&mars_source_stats(ks->src)->errors[MARS_ERR_MEMORY], 1);
                if (b)
                    mars_batch_release(b);
                free(ka);
                b = NULL;
                ka = NULL;
                rd_kafka_message_destroy(m);
                continue;
            }
            ka->ks = ks;
        }
        if (add_message(ks, b, ka, m))
            mars_stat_add(&mars_source_stats(ks->src)->errors[MARS_ERR_MEMORY], 1);
        rd_kafka_message_destroy(m);
        if (b->n >= (uint32_t)ks->conf->batch_events) {
            emit(ks, b, ka);
            b = NULL;
            ka = NULL;
            if (mars_source_paused(ks->src) && !ks->paused)
                set_paused(ks, true);
        }
    }
    if (b) {
        emit(ks, b, ka);
        if (mars_source_paused(ks->src) && !ks->paused)
            set_paused(ks, true);
    }
}

/* ---- stop ---- */

/* The close queue: rebalance (revoke) events until the consumer left the group. */
static void on_close_serve(void *data)
{
    struct ksrc *ks = data;
    rd_kafka_event_t *ev;

    while ((ev = rd_kafka_queue_poll(ks->closeq, 0))) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance(ks, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
        rd_kafka_event_destroy(ev);
    }
    if (!ks->finished && rd_kafka_consumer_closed(ks->rk)) {
        ks->finished = true;
        mars_kafka_wake_stop(&ks->closewake);
        mars_source_finished(ks->src);
    }
}

static void maybe_close(struct ksrc *ks)
{
    if (ks->closing || ks->inflight > 0)
        return;
    ks->closing = true;
    mars_kafka_wake_stop(&ks->wake);
    ks->closeq = rd_kafka_queue_new(ks->rk);
    int rc = ks->closeq ? mars_kafka_wake_start(&ks->closewake, mars_source_loop(ks->src),
                                                ks->closeq, on_close_serve, ks)
                        : -ENOMEM;
    rd_kafka_error_t *e = rc ? NULL : rd_kafka_consumer_close_queue(ks->rk, ks->closeq);
    if (rc || e) {
        mars_warn(ks->id, "cannot leave the group cleanly: %s",
                  e ? rd_kafka_error_string(e) : strerror(-rc));
        if (e)
            rd_kafka_error_destroy(e);
        if (!rc)
            mars_kafka_wake_stop(&ks->closewake);
        ks->finished = true;
        mars_source_finished(ks->src);
        return;
    }
    on_close_serve(ks); /* events may be queued already */
}

static void ksrc_stop(struct mars_source *s)
{
    struct ksrc *ks = mars_source_state(s);
    ks->stopping = true;
    if (!ks->paused)
        set_paused(ks, true);
    maybe_close(ks);
}

/* ---- lifetime ---- */

static void ksrc_destroy(struct mars_source *s);

static int ksrc_init(struct mars_source *s)
{
    const struct ksrc_conf *conf = mars_source_conf(s);
    struct ksrc *ks = calloc(1, sizeof(*ks));
    const char *props[16];
    char err[512];
    static const char *const labels[] = {"component_id", "topic", "partition", NULL};

    if (!ks)
        return -ENOMEM;
    ks->id = mars_source_id(s);
    ks->src = s;
    ks->conf = conf;
    ks->wake.fd = ks->closewake.fd = -1;
    mars_fbuild_init(&ks->fb);
    mars_source_set_state(s, ks);
    struct mars_obs *obs = mars_source_obs(s);
    struct mars_metrics *mt = obs ? mars_obs_metrics(obs) : NULL;
    if (mt)
        ks->lagf = mars_metrics_family(
            mt, &(struct mars_mfamily_desc){
                    .name = "mars_kafka_consumer_lag_messages",
                    .help = "Messages of a partition not read yet (high watermark minus "
                            "the next offset to read), as of the last fetch.",
                    .type = MARS_MT_GAUGE,
                    .labels = labels});
    fixed_props(conf, props);
    rd_kafka_conf_t *kc =
        mars_kafka_conf_build(&conf->client, props, owned, NULL, NULL, err, sizeof(err));
    if (!kc) {
        mars_error(ks->id, "%s", err);
        ksrc_destroy(s);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(kc, ks);
    rd_kafka_conf_set_log_cb(kc, mars_kafka_log_cb);
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_error_cb(kc, on_error);
    rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
    ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!ks->rk) {
        rd_kafka_conf_destroy(kc);
        mars_error(ks->id, "cannot create the consumer: %s", err);
        ksrc_destroy(s);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(ks->rk);
    ks->q = rd_kafka_queue_get_consumer(ks->rk);
    return 0;
}

static int ksrc_start(struct mars_source *s)
{
    struct ksrc *ks = mars_source_state(s);
    const struct ksrc_conf *conf = ks->conf;

    if (mars_source_once(s)) {
        mars_error(ks->id, "a kafka source has no end: it cannot run with --once");
        return -EINVAL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)conf->topics.n);
    for (size_t i = 0; i < conf->topics.n; i++)
        rd_kafka_topic_partition_list_add(l, conf->topics.v[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(ks->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        mars_error(ks->id, "cannot subscribe: %s", rd_kafka_err2str(err));
        return -EINVAL;
    }
    int rc = mars_kafka_wake_start(&ks->wake, mars_source_loop(s), ks->q, on_serve, ks);
    if (rc) {
        mars_error(ks->id, "cannot watch the consumer's queue: %s", strerror(-rc));
        return rc;
    }
    on_serve(ks);
    return 0;
}

static void ksrc_destroy(struct mars_source *s)
{
    struct ksrc *ks = mars_source_state(s);
    if (!ks)
        return;
    if (ks->q) {
        rd_kafka_queue_io_event_enable(ks->q, -1, NULL, 0);
        rd_kafka_queue_destroy(ks->q);
    }
    if (ks->closeq) {
        rd_kafka_queue_io_event_enable(ks->closeq, -1, NULL, 0);
        rd_kafka_queue_destroy(ks->closeq);
    }
    if (ks->rk) /* closes the consumer (commits stored offsets) when stop did not finish */
        rd_kafka_destroy(ks->rk);
    mars_kafka_wake_fini(&ks->wake);
    mars_kafka_wake_fini(&ks->closewake);
    for (size_t i = 0; i < ks->nparts; i++) {
        free(ks->parts[i].topic);
        free(ks->parts[i].q);
    }
    free(ks->parts);
    mars_fbuild_fini(&ks->fb);
    free(ks);
    mars_source_set_state(s, NULL);
}

const struct mars_component_desc mars_source_kafka = {
    .name = "kafka",
    .description = "Consumes Kafka topics in a consumer group with librdkafka; commits an "
                   "offset only once every event before it was acknowledged.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .options = ksrc_options,
    .conf_size = sizeof(struct ksrc_conf),
    .check = ksrc_check,
    .source = {.init = ksrc_init,
               .start = ksrc_start,
               .resume = ksrc_resume,
               .stop = ksrc_stop,
               .destroy = ksrc_destroy},
};
