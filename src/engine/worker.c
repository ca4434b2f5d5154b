/*
 * worker.c - one worker thread: its event loop, its chunk pool, and its instances of the
 * pipeline graph, plus the source and transform instance APIs and batch routing.
 *
 * Placement: source number k (in config order) lives on worker k % nworkers, except
 * MARS_DESC_PER_WORKER sources (the file source), which have an instance on every worker
 * and split their work between them; a worker
 * instantiates its sources and everything downstream of them, in topological order with
 * readers first, so an emit always finds its targets. Routing is a direct call: a source's
 * emit walks its out-edges, giving each reader a reference (transforms process at once,
 * sinks queue in their buffer). Nothing is shared with other workers, so nothing locks.
 *
 * Life: RUNNING -> (STOP command or every source finished) STOPPING: sources are told to
 * stop -> DRAINING once every source has finished: transforms flush, sinks send what is
 * queued -> DONE once every sink is idle, or at once after an ABORT command (shutdown
 * timeout) has abandoned what was left. DONE tears the instances down on this thread,
 * tells the control thread, and ends the loop.
 *
 * Thread: the worker's own, except mars_worker_main's startup handshake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/grow.h"
#include "core/log.h"
#include "engine/dbuf.h"
#include "engine/engine_internal.h"
#include "engine/observe.h"
#include "config/registry.h"

static void source_memory_back(void *arg);

/* ---- instances ---- */

static bool on_worker(const struct mars_engine *e, unsigned wid, uint32_t src_ordinal)
{
    return src_ordinal % e->nworkers == wid;
}

/* Marks nodes to instantiate on this worker: its sources and all downstream of them. */
static bool *placement(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    bool *mark = calloc(c->n + 1, sizeof(*mark));
    uint32_t ordinal = 0;
    if (!mark)
        return NULL;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->nodes[i].kind != MARS_KIND_SOURCE)
            continue;
        if (c->nodes[i].desc->flags & MARS_DESC_PER_WORKER)
            mark[i] = true;
        else
            mark[i] = on_worker(w->e, w->id, ordinal++);
    }
    for (uint32_t t = 0; t < c->n; t++) {
        const struct mars_node *nd = &c->nodes[c->topo[t]];
        if (!mark[c->topo[t]])
            continue;
        for (uint32_t k = 0; k < nd->nout; k++)
            mark[nd->out[k]] = true;
    }
    /* a sink's dead letters go to a sink on the same worker */
    for (uint32_t i = 0; i < c->n; i++)
        if (mark[i] && c->nodes[i].kind == MARS_KIND_SINK && c->nodes[i].dead_letter != UINT32_MAX)
            mark[c->nodes[i].dead_letter] = true;
    return mark;
}

/* Sources on this worker upstream of sink node idx. */
static int find_feeders(struct mars_worker *w, struct mars_sink *s)
{
    const struct mars_config *c = w->e->cfg;
    uint32_t *stack = malloc((c->n + 1) * sizeof(*stack));
    bool *seen = calloc(c->n + 1, sizeof(*seen));
    uint32_t sp = 0;
    int rc = 0;
    if (!stack || !seen) {
        rc = -ENOMEM;
        goto out;
    }
    stack[sp++] = s->idx;
    while (sp > 0) {
        const struct mars_node *nd = &c->nodes[stack[--sp]];
        for (uint32_t k = 0; k < nd->nin; k++) {
            uint32_t up = nd->in[k];
            if (seen[up])
                continue;
            seen[up] = true;
            if (c->nodes[up].kind == MARS_KIND_SOURCE) {
                if (!w->src[up])
                    continue;
                if (mars_grow(&s->feeders, &s->feeders_cap, (size_t)s->nfeeders + 1,
                              sizeof(*s->feeders))) {
                    rc = -ENOMEM;
                    goto out;
                }
                s->feeders[s->nfeeders++] = up;
            } else {
                stack[sp++] = up;
            }
        }
    }
out:
    free(stack);
    free(seen);
    return rc;
}

static int create_instance(struct mars_worker *w, uint32_t idx)
{
    const struct mars_node *nd = &w->e->cfg->nodes[idx];
    int rc;

    switch (nd->kind) {
    case MARS_KIND_SINK: {
        struct mars_sink *s = calloc(1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        *s = (struct mars_sink){.w = w, .node = nd, .idx = idx, .stats = &w->stats[idx]};
        w->snk[idx] = s;
        rc = nd->desc->sink.init(s);
        s->initialized = rc == 0;
        if (rc == 0 && nd->common.buffer.type == MARS_BUFFER_DISK)
            rc = mars_dbuf_open(s);
        return rc;
    }
    case MARS_KIND_TRANSFORM: {
        struct mars_transform *t = calloc(1, sizeof(*t));
        if (!t)
            return -ENOMEM;
        *t = (struct mars_transform){.w = w, .node = nd, .idx = idx, .stats = &w->stats[idx]};
        w->xf[idx] = t;
        rc = nd->desc->transform.init ? nd->desc->transform.init(t) : 0;
        t->initialized = rc == 0;
        return rc;
    }
    case MARS_KIND_SOURCE: {
        struct mars_source *s = calloc(1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        *s = (struct mars_source){.w = w, .node = nd, .idx = idx, .stats = &w->stats[idx]};
        w->src[idx] = s;
        rc = nd->desc->source.init(s);
        s->initialized = rc == 0;
        if (rc == 0)
            w->sources_live++;
        return rc;
    }
    }
    return -EINVAL;
}

/* Readers before writers: reverse topological order. */
static int create_instances(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    bool *mark = placement(w);
    int rc = 0;

    w->src = calloc(c->n + 1, sizeof(*w->src));
    w->xf = calloc(c->n + 1, sizeof(*w->xf));
    w->snk = calloc(c->n + 1, sizeof(*w->snk));
    if (!mark || !w->src || !w->xf || !w->snk) {
        free(mark);
        return -ENOMEM;
    }
    for (uint32_t t = c->n; t-- > 0 && rc == 0;) {
        uint32_t idx = c->topo[t];
        if (!mark[idx])
            continue;
        rc = create_instance(w, idx);
        if (rc)
            mars_error(c->nodes[idx].id, "cannot start %s '%s': %s",
                       mars_kind_name(c->nodes[idx].kind), c->nodes[idx].id, strerror(-rc));
    }
    /* sinks learn which sources to pause once those exist (they are created last) */
    for (uint32_t i = 0; i < c->n && rc == 0; i++)
        if (w->snk[i])
            rc = find_feeders(w, w->snk[i]);
    free(mark);
    return rc;
}

static void destroy_instances(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    if (!w->src)
        return;
    /* Sinks and transforms first: releasing the batches they still hold runs acks, which
     * belong to the sources. */
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_sink *s = w->snk[i];
        if (!s)
            continue;
        mars_sinkq_fini(s);
        if (s->initialized && s->node->desc->sink.destroy)
            s->node->desc->sink.destroy(s);
        free(s->feeders);
        free(s);
    }
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_transform *t = w->xf[i];
        if (t && t->initialized && t->node->desc->transform.destroy)
            t->node->desc->transform.destroy(t);
        free(t);
    }
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_source *s = w->src[i];
        if (!s)
            continue;
        mars_chunk_pool_cancel_wait(&w->pool, source_memory_back, s);
        if (s->initialized && s->node->desc->source.destroy)
            s->node->desc->source.destroy(s);
        free(s);
    }
    free(w->src);
    free(w->xf);
    free(w->snk);
    w->src = NULL;
}

/* ---- routing ---- */

/* Delivers to the readers of output `port` of node `from` (0: the plain output). */
void mars_worker_deliver_port(struct mars_worker *w, uint32_t from, uint32_t port,
                              struct mars_batch *b)
{
    const struct mars_node *nd = &w->e->cfg->nodes[from];
    uint32_t readers = 0, seen = 0;

    for (uint32_t k = 0; k < nd->nout; k++)
        readers += nd->out_port[k] == port;
    if (b->n == 0 || readers == 0) {
        mars_batch_release(b);
        return;
    }
    for (uint32_t k = 0; k < nd->nout; k++) {
        uint32_t to = nd->out[k];
        if (nd->out_port[k] != port)
            continue;
        /* the last reader takes the caller's reference, the others a new one */
        struct mars_batch *mine = ++seen < readers ? mars_batch_ref(b) : b;
        if (w->xf[to]) {
            struct mars_transform *t = w->xf[to];
            mars_stat_add(&t->stats->received_events, mine->n);
            mars_stat_add(&t->stats->received_bytes, mine->bytes);
            t->node->desc->transform.process(t, mine);
        } else {
            mars_sinkq_enqueue(w->snk[to], mine);
        }
    }
}

void mars_worker_deliver(struct mars_worker *w, uint32_t from, struct mars_batch *b)
{
    mars_worker_deliver_port(w, from, 0, b);
}

/* ---- sources ---- */

static void source_maybe_resume(struct mars_source *s)
{
    if (!s->finished && !mars_source_paused(s) && s->node->desc->source.resume)
        s->node->desc->source.resume(s);
}

static void source_memory_back(void *arg)
{
    source_maybe_resume(arg);
}

void mars_source_block(struct mars_source *s, bool full)
{
    if (full) {
        s->blocked++;
        return;
    }
    if (s->blocked > 0 && --s->blocked == 0)
        source_maybe_resume(s);
}

const char *mars_source_id(const struct mars_source *s)
{
    return s->node->id;
}
const void *mars_source_conf(const struct mars_source *s)
{
    return s->node->conf;
}
void *mars_source_state(const struct mars_source *s)
{
    return s->state;
}
void mars_source_set_state(struct mars_source *s, void *state)
{
    s->state = state;
}
struct mars_ev_loop *mars_source_loop(const struct mars_source *s)
{
    return s->w->loop;
}
struct mars_stats *mars_source_stats(const struct mars_source *s)
{
    return s->stats;
}

bool mars_source_once(const struct mars_source *s)
{
    return s->w->e->opts.once;
}

unsigned mars_source_worker(const struct mars_source *s)
{
    return s->w->id;
}

unsigned mars_source_workers(const struct mars_source *s)
{
    return s->w->e->nworkers;
}

const char *mars_source_data_dir(const struct mars_source *s)
{
    return s->w->e->cfg->top.data_dir;
}

bool mars_source_paused(const struct mars_source *s)
{
    return s->blocked > 0 || s->stopping;
}

/* The pool is dry: lets sinks' buffers give back chunks their batches pin for a few lines
 * (a source that emits a line at a time feeding a sink whose peer is down would otherwise
 * stall every path of the worker once each of those lines held a chunk). Waiters are held
 * during the walk: a source they resume emits into the queues being walked. */
static uint32_t unpin_sinks(struct mars_worker *w)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->e->cfg->n; i++)
        if (w->snk[i])
            n += mars_sinkq_unpin(w->snk[i]);
    return n;
}

struct mars_chunk *mars_source_chunk(struct mars_source *s, size_t min_cap)
{
    struct mars_chunk *c = mars_chunk_get(&s->w->pool, min_cap);
    if (!c) {
        mars_chunk_pool_hold(&s->w->pool);
        if (unpin_sinks(s->w) > 0)
            c = mars_chunk_get(&s->w->pool, min_cap);
        mars_chunk_pool_release(&s->w->pool);
    }
    if (!c)
        mars_chunk_pool_on_free(&s->w->pool, source_memory_back, s);
    return c;
}

struct mars_batch *mars_source_batch(struct mars_source *s, uint32_t cap)
{
    struct mars_batch *b = mars_batch_create(cap);
    if (b)
        b->source = (uint16_t)s->idx;
    return b;
}

void mars_source_emit(struct mars_source *s, struct mars_batch *b)
{
    const char *host = s->w->e->host;
    if (host[0] && (s->node->desc->flags & MARS_DESC_LOCAL_LOGS))
        for (uint32_t i = 0; i < b->n; i++)
            if (b->ev[i].kind == MARS_EVENT_LOG)
                b->ev[i].host = host;
    mars_stat_add(&s->stats->received_events, b->n);
    mars_stat_add(&s->stats->received_bytes, b->bytes);
    mars_stat_add(&s->stats->sent_events, b->n);
    mars_stat_add(&s->stats->sent_bytes, b->bytes);
    mars_worker_deliver(s->w, s->idx, b);
}

void mars_source_finished(struct mars_source *s)
{
    if (s->finished)
        return;
    s->finished = true;
    mars_chunk_pool_cancel_wait(&s->w->pool, source_memory_back, s);
    s->w->sources_live--;
    mars_debug(s->node->id, "source finished");
    mars_worker_check_done(s->w);
}

/* ---- transforms ---- */

const char *mars_transform_id(const struct mars_transform *t)
{
    return t->node->id;
}
const void *mars_transform_conf(const struct mars_transform *t)
{
    return t->node->conf;
}
void *mars_transform_state(const struct mars_transform *t)
{
    return t->state;
}
void mars_transform_set_state(struct mars_transform *t, void *state)
{
    t->state = state;
}
struct mars_ev_loop *mars_transform_loop(const struct mars_transform *t)
{
    return t->w->loop;
}
struct mars_stats *mars_transform_stats(const struct mars_transform *t)
{
    return t->stats;
}

void mars_transform_emit(struct mars_transform *t, struct mars_batch *b)
{
    mars_stat_add(&t->stats->sent_events, b->n);
    mars_stat_add(&t->stats->sent_bytes, b->bytes);
    mars_worker_deliver(t->w, t->idx, b);
}

void mars_transform_emit_port(struct mars_transform *t, size_t port, struct mars_batch *b)
{
    mars_stat_add(&t->stats->sent_events, b->n);
    mars_stat_add(&t->stats->sent_bytes, b->bytes);
    mars_worker_deliver_port(t->w, t->idx, (uint32_t)port + 1, b);
}

/* ---- life cycle ---- */

static void stop_sources(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_source *s = w->src[i];
        if (!s || !s->initialized || s->finished || s->stopping)
            continue;
        s->stopping = true;
        s->node->desc->source.stop(s);
    }
}

static void flush_transforms(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    for (uint32_t t = 0; t < c->n; t++) {
        struct mars_transform *x = w->xf[c->topo[t]];
        if (x && x->initialized && x->node->desc->transform.flush)
            x->node->desc->transform.flush(x);
    }
}

static bool sinks_idle(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    for (uint32_t i = 0; i < c->n; i++)
        if (w->snk[i] && !mars_sinkq_idle(w->snk[i]))
            return false;
    return true;
}

static void worker_finish(struct mars_worker *w)
{
    w->state = MARS_W_DONE;
    mars_ev_stop(w->loop);
}

void mars_worker_check_done(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;

    if (w->state == MARS_W_DONE)
        return;
    if (w->sources_live > 0)
        return;
    if (w->state != MARS_W_DRAINING) {
        w->state = MARS_W_DRAINING;
        flush_transforms(w);
        /* a partly filled request may be waiting for its batch timeout: send it now */
        for (uint32_t i = 0; i < c->n; i++)
            if (w->snk[i])
                mars_sinkq_dispatch(w->snk[i]);
    }
    if (sinks_idle(w))
        worker_finish(w);
}

/* at_start: the abort came while running, not after a stop (mars could not start), so
 * no source has had a shutdown timeout to miss. */
static void abort_all(struct mars_worker *w, bool at_start)
{
    const struct mars_config *c = w->e->cfg;
    /* Sources that did not finish after stop are forced: their in-flight reads were
     * cancelled by stop; nothing they emit from here on is waited for. */
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_source *s = w->src[i];
        if (s && s->initialized && !s->finished) {
            if (!at_start)
                mars_warn(s->node->id, "source did not finish within the shutdown timeout");
            mars_source_finished(s);
        }
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (w->snk[i])
            mars_sinkq_abort(w->snk[i]);
    mars_worker_check_done(w);
}

static void on_command(struct mars_ev_async *a)
{
    struct mars_worker *w = a->data;
    unsigned cmd = atomic_load(&w->cmd);
    unsigned fresh = cmd & ~w->handled_cmd;

    w->handled_cmd = cmd;
    if ((fresh & MARS_CMD_STOP) && w->state == MARS_W_RUNNING) {
        w->state = MARS_W_STOPPING;
        stop_sources(w);
        mars_worker_check_done(w);
    }
    if ((fresh & MARS_CMD_ABORT) && w->state != MARS_W_DONE) {
        bool at_start = w->state == MARS_W_RUNNING;
        if (at_start)
            stop_sources(w);
        for (uint32_t i = 0; i < w->e->cfg->n; i++)
            if (w->snk[i])
                w->snk[i]->aborting = true;
        abort_all(w, at_start);
    }
}

static int start_sources(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_source *s = w->src[i];
        if (!s)
            continue;
        int rc = s->node->desc->source.start(s);
        if (rc) {
            mars_error(s->node->id, "cannot start source: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void announce(struct mars_worker *w, int rc)
{
    struct mars_engine *e = w->e;
    pthread_mutex_lock(&e->lock);
    w->start_rc = rc;
    e->started++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Drives callbacks until at most `keep` ops of this worker are in flight. */
static void drain_ops(struct mars_worker *w, unsigned keep)
{
    int64_t deadline = mars_ev_clock_ns() + 5000000000LL;
    while (mars_ev_pending(w->loop) > keep && mars_ev_clock_ns() < deadline)
        mars_ev_run_once(w->loop, 100000000);
    if (mars_ev_pending(w->loop) > keep)
        mars_error("-", "worker %u: %u operations still pending at exit", w->id,
                   mars_ev_pending(w->loop) - keep);
}

/* Teardown, phase one: sinks cancel whatever ops they keep between requests (timers,
 * idle connections) through their abort callback; the loop then runs until only the
 * command wakeup is left, so no callback can touch an instance after it is destroyed. */
static void quiesce(struct mars_worker *w)
{
    const struct mars_config *c = w->e->cfg;
    for (uint32_t i = 0; w->snk && i < c->n; i++) {
        struct mars_sink *s = w->snk[i];
        if (s && s->initialized && s->node->desc->sink.abort)
            s->node->desc->sink.abort(s);
        if (s)
            mars_dbuf_quiesce(s);
    }
    mars_obs_worker_stop(w);
    drain_ops(w, 1);
}

static void worker_exit(struct mars_worker *w)
{
    atomic_store(&w->done, true);
    mars_ev_async_send(&w->e->wake);
}

/* With runtime.fixed_buffers, file reads into chunks become fixed reads where the backend
 * can (io_uring). Off by default: a registered block stays pinned, so a worker's resident
 * memory grows to chunk_memory (5,000 small files: 19 -> 53 MiB), for a gain measured at
 * about 10% of the bare read path (bench/ev_read) and within noise in whole pipelines.
 * Registering here, on the thread that runs the loop, before its first submit: the ring is
 * bound to this thread, and a ring the backend re-creates later registers the region
 * again. */
static void register_chunks(struct mars_worker *w)
{
    struct mars_chunk_pool *p = &w->pool;
    int rc;

    if (p->region == NULL || !w->e->cfg->top.runtime.fixed_buffers)
        return;
    rc = mars_ev_register_buffers(w->loop, p->region, p->region_stride, (unsigned)p->region_count);
    if (rc == 0)
        mars_debug("-", "worker %u: %zu chunks registered for fixed reads", w->id, p->region_count);
    else if (rc != -EOPNOTSUPP && w->id == 0)
        mars_info("-", "registered read buffers unavailable (%s); chunk reads are plain reads",
                  strerror(-rc));
}

/* Runs a worker. The loop and its wakeup are left for the control thread to destroy after
 * joining this thread, so a late command never writes to a closed eventfd. */
void *mars_worker_main(void *arg)
{
    struct mars_worker *w = arg;
    int rc;

    w->loop = mars_ev_loop_create(w->e->backend);
    if (!w->loop) {
        rc = errno ? -errno : -ENOMEM;
        mars_error("-", "worker %u: cannot create event loop: %s", w->id, strerror(-rc));
        announce(w, rc);
        worker_exit(w);
        return NULL;
    }
    register_chunks(w);
    if (!w->e->cfg->top.runtime.zero_copy_send)
        mars_ev_drop_caps(w->loop, MARS_EV_CAP_SEND_ZC);
    rc = mars_ev_async_init(w->loop, &w->wake, on_command, w);
    if (rc) {
        mars_error("-", "worker %u: cannot create wakeup: %s", w->id, strerror(-rc));
        announce(w, rc);
        worker_exit(w);
        return NULL;
    }
    w->has_wake = true;
    rc = create_instances(w);
    if (rc == 0)
        rc = start_sources(w);
    if (rc == 0)
        mars_obs_worker_start(w); /* heartbeat for /healthz */
    announce(w, rc);
    if (rc == 0) {
        mars_worker_check_done(w); /* a worker without sources is done at once */
        if (w->state != MARS_W_DONE)
            mars_ev_run(w->loop);
    } else {
        /* the control thread sends ABORT to every worker after a failed start */
        while (w->state != MARS_W_DONE)
            mars_ev_run_once(w->loop, 100000000);
    }
    quiesce(w);
    destroy_instances(w);
    drain_ops(w, 1);
    mars_arena_cache_drain(); /* this thread's cached arena blocks die with it */
    worker_exit(w);
    return NULL;
}

void mars_worker_teardown(struct mars_worker *w)
{
    if (!w->loop)
        return;
    if (w->has_wake)
        mars_ev_async_fini(&w->wake);
    drain_ops(w, 0);
    mars_ev_loop_destroy(w->loop);
    w->loop = NULL;
}
