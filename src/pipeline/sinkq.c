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
 * Requests: one in flight per sink (concurrency 1). A request takes queued batches up to
 * batch.max_events / batch.max_bytes; with batch.timeout > 0 a request smaller than that
 * waits up to the timeout for more (not while draining). The sink answers through
 * mars_sink_done(): OK finishes the batches; RETRY keeps them and resends after a backoff
 * that doubles from retry.initial_backoff to retry.max_backoff with +-25% jitter, without
 * limit; REJECTED finishes them as lost (counted, logged); ABORTED abandons them, so their
 * sources do not acknowledge them.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pipeline/engine_internal.h"
#include "pipeline/observe.h"

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

void mars_sinkq_enqueue(struct mars_sink *s, struct mars_batch *b)
{
    const struct mars_buffer_conf *bc = &s->node->common.buffer;

    mars_stat_add(&s->stats->received_events, b->n);
    mars_stat_add(&s->stats->received_bytes, b->bytes);
    if (s->aborting) {
        mars_batch_abandon(b);
        return;
    }
    if (bc->when_full == MARS_WHEN_FULL_DROP_NEWEST && s->q.count > 0 &&
        (s->q.events + b->n > (uint64_t)bc->max_events ||
         s->q.bytes + b->bytes > bc->max_bytes)) {
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

static void on_timer(struct mars_ev_op *op, int res);

static void arm_timer(struct mars_sink *s, int64_t ns, bool is_retry)
{
    mars_ev_prep_timer(&s->timer, ns, on_timer, s);
    if (mars_ev_submit(s->w->loop, &s->timer) == 0) {
        s->timer_armed = true;
        s->timer_is_retry = is_retry;
    }
}

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
    if (!s->timer_armed)
        arm_timer(s, bt->timeout - age, false);
    return false;
}

static int fill_request(struct mars_sink *s)
{
    const struct mars_batching_conf *bt = &s->node->common.batch;
    struct mars_sink_req *r = &s->req;

    r->n = 0;
    r->events = r->bytes = 0;
    r->attempt = 0;
    while (s->q.count > 0) {
        struct mars_batch *b = bufq_peek(&s->q);
        if (r->n > 0 && (r->events + b->n > (uint64_t)bt->max_events ||
                         r->bytes + b->bytes > bt->max_bytes))
            break;
        if (r->n == s->req_cap) {
            uint32_t cap = s->req_cap ? s->req_cap * 2 : 8;
            struct mars_batch **nb = realloc(r->batches, cap * sizeof(*nb));
            if (!nb)
                return r->n ? 0 : -ENOMEM;
            r->batches = nb;
            s->req_cap = cap;
        }
        r->batches[r->n++] = bufq_pop(&s->q);
        r->events += b->n;
        r->bytes += b->bytes;
    }
    if (s->full && !over_limit(s))
        set_full(s, false);
    update_gauges(s);
    return 0;
}

static void call_write(struct mars_sink *s)
{
    s->inflight = true;
    s->node->desc->sink.write(s, &s->req);
}

void mars_sinkq_dispatch(struct mars_sink *s)
{
    if (s->dispatching)
        return; /* the loop below picks up whatever changed */
    s->dispatching = true;
    if (s->timer_armed && !s->timer_is_retry && s->w->state == MARS_W_DRAINING)
        mars_ev_cancel(s->w->loop, &s->timer); /* draining sends partial requests now */
    while (!s->inflight && !s->retry_wait && !s->aborting && s->q.count > 0) {
        if (!request_ready(s) || fill_request(s))
            break;
        call_write(s);
    }
    s->dispatching = false;
    if (!s->inflight && s->q.count == 0)
        mars_worker_check_done(s->w);
}

static void finish_request(struct mars_sink *s, bool abandon)
{
    for (uint32_t i = 0; i < s->req.n; i++) {
        if (abandon)
            mars_batch_abandon(s->req.batches[i]);
        else
            mars_batch_release(s->req.batches[i]);
    }
    s->req.n = 0;
    s->inflight = false;
}

static int64_t next_backoff(struct mars_sink *s)
{
    const struct mars_retry_conf *rc = &s->node->common.retry;
    int64_t b = s->backoff_ns ? s->backoff_ns * 2 : rc->initial_backoff;
    if (b > rc->max_backoff)
        b = rc->max_backoff;
    s->backoff_ns = b;
    /* +-25% jitter so many agents do not retry in step */
    int64_t span = b / 2;
    return b - b / 4 + (span > 0 ? (int64_t)((uint64_t)rand() % (uint64_t)span) : 0);
}

void mars_sink_done(struct mars_sink *s, struct mars_sink_req *r, enum mars_sink_result res,
                    uint64_t sent_bytes)
{
    if (res == MARS_SINK_RETRY && s->aborting)
        res = MARS_SINK_ABORTED;
    mars_obs_sink_result(s, r, res); /* latency, consecutive failures, last error */
    switch (res) {
    case MARS_SINK_OK:
        mars_stat_add(&s->stats->sent_events, r->events);
        mars_stat_add(&s->stats->sent_bytes, sent_bytes);
        s->backoff_ns = 0;
        finish_request(s, false);
        break;
    case MARS_SINK_REJECTED:
        mars_stat_add(&s->stats->errors[MARS_ERR_REJECTED], 1);
        mars_stat_add(&s->stats->discarded_unintentional, r->events);
        MARS_LOG_RL(MARS_LOG_ERROR, s->node->id, "request of %llu events rejected; dropped",
                    (unsigned long long)r->events);
        s->backoff_ns = 0;
        finish_request(s, false);
        break;
    case MARS_SINK_ABORTED:
        finish_request(s, true);
        break;
    case MARS_SINK_RETRY: {
        int64_t wait = next_backoff(s);
        mars_stat_add(&s->stats->errors[MARS_ERR_RETRY], 1);
        MARS_LOG_RL(MARS_LOG_WARN, s->node->id, "request of %llu events failed; retry %u in %lld ms",
                    (unsigned long long)r->events, r->attempt + 1, (long long)(wait / 1000000));
        s->retry_wait = true;
        s->inflight = false;
        arm_timer(s, wait, true);
        return;
    }
    }
    mars_sinkq_dispatch(s);
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct mars_sink *s = op->data;
    bool retry = s->timer_is_retry;

    s->timer_armed = false;
    if (retry) {
        s->retry_wait = false;
        if (res == -ECANCELED || s->aborting) {
            finish_request(s, true);
            mars_worker_check_done(s->w);
            return;
        }
        s->req.attempt++;
        call_write(s);
        return;
    }
    if (res != -ECANCELED)
        mars_sinkq_dispatch(s);
    else
        mars_worker_check_done(s->w);
}

/* ---- shutdown ---- */

void mars_sinkq_abort(struct mars_sink *s)
{
    uint64_t dropped = 0;
    s->aborting = true;
    while (s->q.count > 0) {
        struct mars_batch *b = bufq_pop(&s->q);
        dropped += b->n;
        mars_batch_abandon(b);
    }
    set_full(s, false);
    update_gauges(s);
    if (dropped || s->inflight || s->retry_wait)
        mars_warn(s->node->id,
                  "shutdown timeout: %llu events not delivered (sources that keep checkpoints "
                  "will replay them)",
                  (unsigned long long)(dropped + (s->inflight || s->retry_wait ? s->req.events : 0)));
    if (s->timer_armed)
        mars_ev_cancel(s->w->loop, &s->timer);
    if (s->inflight && s->node->desc->sink.abort)
        s->node->desc->sink.abort(s);
}

bool mars_sinkq_idle(const struct mars_sink *s)
{
    return s->q.count == 0 && !s->inflight && !s->retry_wait && !s->timer_armed;
}

void mars_sinkq_fini(struct mars_sink *s)
{
    while (s->q.count > 0)
        mars_batch_abandon(bufq_pop(&s->q));
    if (s->req.n)
        finish_request(s, true);
    free(s->q.ring);
    free(s->req.batches);
    s->q.ring = NULL;
    s->req.batches = NULL;
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
