/*
 * sinkq.c - what stands between the pipeline and a sink on one worker: the bounded memory
 * buffer, grouping queued batches into requests, engine-owned retries, and the sink
 * instance API.
 *
 * Buffer: a FIFO of batch references counted in events and message bytes. With
 * when_full: block, a push that reaches a limit marks the buffer full and pauses every
 * source on this worker that feeds the sink; they resume when a request takes the buffer
 * back under both limits. A source only overshoots by the batch it was emitting, so memory
 * stays bounded. With drop_newest, a batch that does not fit (in a non-empty buffer) is
 * dropped and counted as intentionally discarded.
 *
 * Requests: up to request.concurrency in flight per sink and worker, each in a slot of its
 * own (with its retry timer). A request takes queued batches up to
 * batch.max_events / batch.max_bytes; with batch.timeout > 0 a request smaller than that
 * waits up to the timeout for more (not while draining). The sink answers through
 * mars_sink_done(): OK finishes the batches; RETRY keeps them and resends after a backoff
 * that doubles from retry.initial_backoff to retry.max_backoff with +-25% jitter, without
 * limit, and is never shorter than a Retry-After the sink passed on (capped by
 * retry.max_retry_after); REJECTED finishes them as lost (counted, logged); ABORTED
 * abandons them, so their sources do not acknowledge them. OK may carry events the peer
 * rejected for good (bad items of a bulk request), counted as lost. With dead_letter, the
 * events of a REJECTED request, and those a sink named with mars_sink_dead_letter(), go to
 * that sink on the same worker instead (bounded by its buffer; the original batches stay
 * held, so their sources acknowledge them only once the dead-letter sink is done).
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/log.h"
#include "engine/dbuf.h"
#include "engine/engine_internal.h"
#include "engine/observe.h"

/* ---- FIFO ---- */

static int bufq_push(struct mars_bufq *q, struct mars_batch *b)
{
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 16;
        struct mars_batch **r = malloc(cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        for (uint32_t i = 0; i < q->count; i++)
            r[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = r;
        q->head = 0;
        q->cap = cap;
    }
    q->ring[(q->head + q->count) % q->cap] = b;
    q->count++;
    q->events += b->n;
    q->bytes += b->bytes;
    return 0;
}

static struct mars_batch *bufq_peek(const struct mars_bufq *q)
{
    return q->count ? q->ring[q->head] : NULL;
}

static struct mars_batch *bufq_pop(struct mars_bufq *q)
{
    struct mars_batch *b = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->events -= b->n;
    q->bytes -= b->bytes;
    return b;
}

/* ---- backpressure ---- */

static bool over_limit(const struct mars_sink *s)
{
    const struct mars_buffer_conf *bc = &s->node->common.buffer;
    return s->q.events >= (uint64_t)bc->max_events || s->q.bytes >= bc->max_bytes;
}

static void set_full(struct mars_sink *s, bool full)
{
    if (s->full == full)
        return;
    s->full = full;
    for (uint32_t i = 0; i < s->nfeeders; i++) {
        struct mars_source *src = s->w->src[s->feeders[i]];
        if (src)
            mars_source_block(src, full);
    }
}

static void update_gauges(struct mars_sink *s)
{
    mars_stat_set(&s->stats->buffer_events, s->q.events);
    mars_stat_set(&s->stats->buffer_bytes, s->q.bytes);
}

void mars_sinkq_block(struct mars_sink *s, bool full)
{
    set_full(s, full);
}

bool mars_sinkq_room(const struct mars_sink *s)
{
    return !over_limit(s);
}

void mars_sinkq_push(struct mars_sink *s, struct mars_batch *b)
{
    if (bufq_push(&s->q, b)) {
        mars_stat_add(&s->stats->errors[MARS_ERR_MEMORY], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, s->node->id, "out of memory queueing %u events", b->n);
        mars_batch_abandon(b);
        return;
    }
    update_gauges(s);
}

void mars_sinkq_enqueue(struct mars_sink *s, struct mars_batch *b)
{
    const struct mars_buffer_conf *bc = &s->node->common.buffer;

    mars_stat_add(&s->stats->received_events, b->n);
    mars_stat_add(&s->stats->received_bytes, b->bytes);
    if (s->aborting) {
        mars_batch_abandon(b);
        return;
    }
    if (s->dbuf) { /* disk first; the memory buffer is filled from disk */
        mars_dbuf_enqueue(s, b);
        return;
    }
    if (bc->when_full == MARS_WHEN_FULL_DROP_NEWEST && s->q.count > 0 &&
        (s->q.events + b->n > (uint64_t)bc->max_events || s->q.bytes + b->bytes > bc->max_bytes)) {
        mars_stat_add(&s->stats->discarded_intentional, b->n);
        MARS_LOG_RL(MARS_LOG_WARN, s->node->id,
                    "buffer full (when_full: drop_newest): dropped %u events", b->n);
        mars_batch_release(b);
        return;
    }
    if (bufq_push(&s->q, b)) {
        mars_stat_add(&s->stats->errors[MARS_ERR_MEMORY], 1);
        mars_stat_add(&s->stats->discarded_unintentional, b->n);
        MARS_LOG_RL(MARS_LOG_ERROR, s->node->id, "out of memory queueing %u events", b->n);
        mars_batch_abandon(b);
        return;
    }
    if (bc->when_full == MARS_WHEN_FULL_BLOCK && over_limit(s))
        set_full(s, true);
    update_gauges(s);
    mars_sinkq_dispatch(s);
}

/* ---- requests ---- */

static void on_batch_timer(struct mars_ev_op *op, int res);
static void on_retry_timer(struct mars_ev_op *op, int res);

static bool request_ready(struct mars_sink *s)
{
    const struct mars_batching_conf *bt = &s->node->common.batch;
    if (bt->timeout <= 0 || s->w->state == MARS_W_DRAINING)
        return true;
    if (s->q.events >= (uint64_t)bt->max_events || s->q.bytes >= bt->max_bytes)
        return true;
    int64_t age = mars_ev_now(s->w->loop) - bufq_peek(&s->q)->created_ns;
    if (age >= bt->timeout)
        return true;
    if (!s->timer_armed) {
        mars_ev_prep_timer(&s->timer, bt->timeout - age, on_batch_timer, s);
        s->timer_armed = mars_ev_submit(s->w->loop, &s->timer) == 0;
    }
    return false;
}

static int alloc_slots(struct mars_sink *s)
{
    uint32_t n = (uint32_t)s->node->common.request.concurrency;
    s->slots = calloc(n ? n : 1, sizeof(*s->slots));
    if (!s->slots)
        return -ENOMEM;
    s->nslots = n ? n : 1;
    for (uint32_t i = 0; i < s->nslots; i++)
        s->slots[i].s = s;
    return 0;
}

static struct mars_sink_slot *free_slot(struct mars_sink *s)
{
    if (!s->slots && alloc_slots(s))
        return NULL;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (!s->slots[i].inflight && !s->slots[i].retry_wait)
            return &s->slots[i];
    return NULL;
}

static int fill_request(struct mars_sink *s, struct mars_sink_slot *sl)
{
    const struct mars_batching_conf *bt = &s->node->common.batch;
    struct mars_sink_req *r = &sl->req;

    r->n = 0;
    r->events = r->bytes = 0;
    r->attempt = 0;
    r->sink_data = NULL;
    r->retry_after_ns = 0;
    r->rejected_events = 0;
    while (s->q.count > 0) {
        struct mars_batch *b = bufq_peek(&s->q);
        if (r->n > 0 &&
            (r->events + b->n > (uint64_t)bt->max_events || r->bytes + b->bytes > bt->max_bytes))
            break;
        if (mars_grow(&r->batches, &sl->cap, (size_t)r->n + 1, sizeof(*r->batches)))
            return r->n ? 0 : -ENOMEM;
        r->batches[r->n++] = bufq_pop(&s->q);
        r->events += b->n;
        r->bytes += b->bytes;
    }
    if (s->dbuf)
        mars_dbuf_pump(s); /* refill from disk (the sources' blocking is the disk's) */
    else if (s->full && !over_limit(s))
        set_full(s, false);
    update_gauges(s);
    return 0;
}

static void call_write(struct mars_sink *s, struct mars_sink_slot *sl)
{
    sl->inflight = true;
    sl->req.retry_after_ns = 0;
    s->node->desc->sink.write(s, &sl->req);
}

/* Stopping with a disk buffer while the sink fails: what was read back into memory, or
 * waits for its retry, is on disk and comes again after the restart, so the stop does not
 * wait out the shutdown timeout against a dead peer. A sink that works drains what was
 * read back, as a memory buffer does (what is still only on disk stays there). */
static bool disk_stop(const struct mars_sink *s)
{
    return s->dbuf && s->w->state == MARS_W_DRAINING && !s->w->e->opts.once;
}

static bool retrying(const struct mars_sink *s)
{
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].retry_wait)
            return true;
    return false;
}

static void shed_replayed(struct mars_sink *s)
{
    while (s->q.count > 0)
        mars_batch_abandon(bufq_pop(&s->q));
    update_gauges(s);
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].retry_wait && s->slots[i].timer_armed)
            mars_ev_cancel(s->w->loop, &s->slots[i].timer);
}

void mars_sinkq_dispatch(struct mars_sink *s)
{
    if (s->dispatching)
        return; /* the loop below picks up whatever changed */
    s->dispatching = true;
    if (disk_stop(s) && retrying(s))
        shed_replayed(s);
    if (s->timer_armed && s->w->state == MARS_W_DRAINING)
        mars_ev_cancel(s->w->loop, &s->timer); /* draining sends partial requests now */
    struct mars_sink_slot *sl;
    while (!s->aborting && s->q.count > 0 && (sl = free_slot(s))) {
        if (!request_ready(s) || fill_request(s, sl))
            break;
        s->busy++;
        call_write(s, sl);
    }
    s->dispatching = false;
    if (s->busy == 0 && s->q.count == 0)
        mars_worker_check_done(s->w);
}

static void finish_request(struct mars_sink_slot *sl, bool abandon)
{
    struct mars_sink_req *r = &sl->req;
    for (uint32_t i = 0; i < r->n; i++) {
        if (abandon)
            mars_batch_abandon(r->batches[i]);
        else
            mars_batch_release(r->batches[i]);
    }
    r->n = 0;
    sl->inflight = sl->retry_wait = false;
    sl->s->busy--;
}

static int64_t next_backoff(struct mars_sink *s, int64_t retry_after)
{
    const struct mars_retry_conf *rc = &s->node->common.retry;
    int64_t b = s->backoff_ns ? s->backoff_ns * 2 : rc->initial_backoff;
    if (b > rc->max_backoff)
        b = rc->max_backoff;
    s->backoff_ns = b;
    /* +-25% jitter so many agents do not retry in step */
    int64_t span = b / 2;
    int64_t wait = b - b / 4 + (span > 0 ? (int64_t)((uint64_t)rand() % (uint64_t)span) : 0);
    if (retry_after > rc->max_retry_after)
        retry_after = rc->max_retry_after;
    return wait > retry_after ? wait : retry_after;
}

/* ---- dead letters ---- */

static struct mars_sink *dead_letter_sink(const struct mars_sink *s)
{
    uint32_t t = s->node->dead_letter;
    return t == UINT32_MAX ? NULL : s->w->snk[t];
}

/* Hands b (owned) to the dead-letter sink d. Its buffer bounds it like any input: when it
 * is full the events are lost (counted on s, logged) rather than memory growing. Returns
 * the events handed over. */
static uint64_t dead_letter_push(struct mars_sink *s, struct mars_sink *d, struct mars_batch *b)
{
    const struct mars_buffer_conf *bc = &d->node->common.buffer;
    uint32_t n = b->n;
    if (d->aborting || d->q.events + n > (uint64_t)bc->max_events ||
        d->q.bytes + b->bytes > bc->max_bytes) {
        mars_stat_add(&s->stats->discarded_unintentional, n);
        MARS_LOG_RL(MARS_LOG_ERROR, s->node->id,
                    "dead_letter sink '%s' is full: %u rejected events lost", d->node->id, n);
        mars_batch_release(b);
        return 0;
    }
    mars_sinkq_enqueue(d, b);
    return n;
}

int mars_sink_dead_letter(struct mars_sink *s, struct mars_sink_req *r, uint64_t index)
{
    struct mars_sink_slot *sl = MARS_CONTAINER_OF(r, struct mars_sink_slot, req);
    if (!dead_letter_sink(s))
        return -ENOENT;
    uint32_t bi = 0;
    while (bi < r->n && index >= r->batches[bi]->n)
        index -= r->batches[bi++]->n;
    if (bi == r->n)
        return -EINVAL;
    struct mars_batch *src = r->batches[bi];
    if (!sl->dead && !(sl->dead = mars_batch_create(64)))
        return -ENOMEM;
    /* the copy points into src's chunks and arena: hold src (once per request batch) */
    bool held = false;
    for (uint32_t i = 0; i < sl->dead->nholds && !held; i++)
        held = sl->dead->holds[i] == src;
    if (!held) {
        if (sl->dead->nholds == 0)
            sl->dead->created_ns = src->created_ns; /* latency counts from the read */
        mars_batch_ref(src);
        if (mars_batch_hold(sl->dead, src)) {
            mars_batch_release(src);
            return -ENOMEM;
        }
    }
    struct mars_event *ev = mars_batch_push(sl->dead);
    if (!ev)
        return -ENOMEM;
    *ev = src->ev[index];
    sl->dead->bytes += ev->msg.len;
    sl->dead_events++;
    return 0;
}

/* The request ends: its dead-lettered events (or, for a REJECTED request, all of them)
 * go to the dead-letter sink. Returns how many of r's events were handed over. */
static uint64_t flush_dead_letters(struct mars_sink *s, struct mars_sink_slot *sl,
                                   enum mars_sink_result res)
{
    struct mars_sink *d = dead_letter_sink(s);
    uint64_t moved = 0;
    if (d && res == MARS_SINK_REJECTED) {
        for (uint32_t i = 0; i < sl->req.n; i++)
            moved += dead_letter_push(s, d, mars_batch_ref(sl->req.batches[i]));
    } else if (d && sl->dead && res == MARS_SINK_OK) {
        moved = dead_letter_push(s, d, sl->dead);
        sl->dead = NULL;
    }
    if (sl->dead) { /* aborted (not delivered: no ack), or REJECTED (routed whole above) */
        if (res == MARS_SINK_ABORTED)
            mars_batch_abandon(sl->dead);
        else
            mars_batch_release(sl->dead);
        sl->dead = NULL;
    }
    sl->dead_events = 0;
    return moved;
}

void mars_sink_done(struct mars_sink *s, struct mars_sink_req *r, enum mars_sink_result res,
                    uint64_t sent_bytes)
{
    struct mars_sink_slot *sl = MARS_CONTAINER_OF(r, struct mars_sink_slot, req);
    if (res == MARS_SINK_RETRY && (s->aborting || disk_stop(s)))
        res = MARS_SINK_ABORTED;     /* stopping with a disk buffer: the records stay on disk */
    mars_obs_sink_result(s, r, res); /* latency, consecutive failures, last error */
    switch (res) {
    case MARS_SINK_OK: {
        uint64_t bad = r->rejected_events < r->events ? r->rejected_events : r->events;
        uint64_t moved = flush_dead_letters(s, sl, res);
        mars_stat_add(&s->stats->sent_events, r->events - bad);
        mars_stat_add(&s->stats->sent_bytes, sent_bytes);
        if (bad) {
            mars_stat_add(&s->stats->errors[MARS_ERR_REJECTED], 1);
            mars_stat_add(&s->stats->discarded_unintentional, bad > moved ? bad - moved : 0);
        }
        s->backoff_ns = 0;
        finish_request(sl, false);
        break;
    }
    case MARS_SINK_REJECTED: {
        uint64_t moved = flush_dead_letters(s, sl, res);
        mars_stat_add(&s->stats->errors[MARS_ERR_REJECTED], 1);
        mars_stat_add(&s->stats->discarded_unintentional, r->events - moved);
        if (moved)
            MARS_LOG_RL(MARS_LOG_ERROR, s->node->id,
                        "request of %llu events rejected; sent to dead_letter sink '%s'",
                        (unsigned long long)r->events, dead_letter_sink(s)->node->id);
        else
            MARS_LOG_RL(MARS_LOG_ERROR, s->node->id, "request of %llu events rejected; dropped",
                        (unsigned long long)r->events);
        s->backoff_ns = 0;
        finish_request(sl, false);
        break;
    }
    case MARS_SINK_ABORTED:
        flush_dead_letters(s, sl, res);
        finish_request(sl, true);
        if (disk_stop(s)) /* the peer failed while stopping: the rest waits on disk too */
            shed_replayed(s);
        break;
    case MARS_SINK_RETRY: {
        int64_t wait = next_backoff(s, r->retry_after_ns);
        mars_stat_add(&s->stats->errors[MARS_ERR_RETRY], 1);
        MARS_LOG_RL(MARS_LOG_WARN, s->node->id,
                    "request of %llu events failed; retry %u in %lld ms",
                    (unsigned long long)r->events, r->attempt + 1, (long long)(wait / 1000000));
        sl->retry_wait = true;
        sl->inflight = false;
        mars_ev_prep_timer(&sl->timer, wait, on_retry_timer, sl);
        sl->timer_armed = mars_ev_submit(s->w->loop, &sl->timer) == 0;
        if (!sl->timer_armed) /* cannot wait: give the request up rather than spin */
            finish_request(sl, true);
        return;
    }
    }
    mars_sinkq_dispatch(s);
}

static void on_retry_timer(struct mars_ev_op *op, int res)
{
    struct mars_sink_slot *sl = op->data;
    struct mars_sink *s = sl->s;
    sl->timer_armed = false;
    if (res == -ECANCELED || s->aborting) {
        free(sl->req.sink_data); /* the sink's scratch, malloc'd (component.h) */
        sl->req.sink_data = NULL;
        flush_dead_letters(s, sl, MARS_SINK_ABORTED);
        finish_request(sl, true);
        mars_worker_check_done(s->w);
        return;
    }
    sl->retry_wait = false;
    sl->req.attempt++;
    call_write(s, sl);
}

static void on_batch_timer(struct mars_ev_op *op, int res)
{
    struct mars_sink *s = op->data;
    s->timer_armed = false;
    if (res != -ECANCELED)
        mars_sinkq_dispatch(s);
    else
        mars_worker_check_done(s->w);
}

/* ---- shutdown ---- */

void mars_sinkq_abort(struct mars_sink *s)
{
    uint64_t dropped = 0, pending = 0;
    bool inflight = false;
    s->aborting = true;
    while (s->q.count > 0) {
        struct mars_batch *b = bufq_pop(&s->q);
        dropped += b->n;
        mars_batch_abandon(b);
    }
    set_full(s, false);
    update_gauges(s);
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct mars_sink_slot *sl = &s->slots[i];
        if (sl->inflight || sl->retry_wait)
            pending += sl->req.events;
        inflight |= sl->inflight;
        if (sl->timer_armed)
            mars_ev_cancel(s->w->loop, &sl->timer);
    }
    if (dropped || pending)
        mars_warn(s->node->id,
                  "shutdown timeout: %llu events not delivered (sources that keep checkpoints "
                  "will replay them)",
                  (unsigned long long)(dropped + pending));
    if (s->timer_armed)
        mars_ev_cancel(s->w->loop, &s->timer);
    if (inflight && s->node->desc->sink.abort)
        s->node->desc->sink.abort(s);
}

uint32_t mars_sinkq_unpin(struct mars_sink *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->q.count; i++)
        n += mars_batch_unpin(s->q.ring[(s->q.head + i) % s->q.cap]);
    /* a request waiting for its retry is nobody's but the engine's until the next try
     * (sink_data aside: a sink that keeps state across tries is left alone) */
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct mars_sink_slot *sl = &s->slots[i];
        if (sl->retry_wait && !sl->inflight && !sl->req.sink_data)
            for (uint32_t j = 0; j < sl->req.n; j++)
                n += mars_batch_unpin(sl->req.batches[j]);
    }
    return n;
}

bool mars_sinkq_idle(const struct mars_sink *s)
{
    if (s->q.count || s->busy || s->timer_armed || !mars_dbuf_idle(s))
        return false;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].timer_armed)
            return false;
    return true;
}

void mars_sinkq_fini(struct mars_sink *s)
{
    while (s->q.count > 0)
        mars_batch_abandon(bufq_pop(&s->q));
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct mars_sink_slot *sl = &s->slots[i];
        if (sl->dead)
            mars_batch_abandon(sl->dead);
        if (sl->req.n)
            finish_request(sl, true);
        free(sl->req.sink_data);
        free(sl->req.batches);
    }
    mars_dbuf_close(s); /* after the batches above: their acks reach it */
    free(s->slots);
    free(s->q.ring);
    s->slots = NULL;
    s->nslots = 0;
    s->q.ring = NULL;
}

unsigned mars_sink_concurrency(const struct mars_sink *s)
{
    return (unsigned)s->node->common.request.concurrency;
}

int64_t mars_sink_request_timeout(const struct mars_sink *s)
{
    return s->node->common.request.timeout;
}

void mars_sink_buffer_limits(const struct mars_sink *s, int64_t *max_events, uint64_t *max_bytes)
{
    *max_events = s->node->common.buffer.max_events;
    *max_bytes = s->node->common.buffer.max_bytes;
}

/* ---- sink instance API ---- */

void mars_sink_request_shutdown(struct mars_sink *s, const char *why)
{
    mars_error(s->node->id, "%s: stopping mars", why);
    mars_engine_request_stop(s->w->e);
}

const char *mars_sink_id(const struct mars_sink *s)
{
    return s->node->id;
}
const void *mars_sink_conf(const struct mars_sink *s)
{
    return s->node->conf;
}
void *mars_sink_state(const struct mars_sink *s)
{
    return s->state;
}
void mars_sink_set_state(struct mars_sink *s, void *state)
{
    s->state = state;
}
struct mars_ev_loop *mars_sink_loop(const struct mars_sink *s)
{
    return s->w->loop;
}
struct mars_stats *mars_sink_stats(const struct mars_sink *s)
{
    return s->stats;
}
