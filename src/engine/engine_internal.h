/*
 * engine_internal.h - structures shared by engine.c (control thread), worker.c (worker
 * threads, source and transform instances, routing) and sinkq.c (sink buffers, requests,
 * retries). Nothing outside src/pipeline includes this.
 */
#ifndef MARS_ENGINE_INTERNAL_H
#define MARS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/chunk.h"
#include "core/ev.h"
#include "engine/instance.h"
#include "config/config.h"
#include "engine/engine.h"

struct mars_worker;

struct mars_source {
    struct mars_worker *w;
    const struct mars_node *node;
    uint32_t idx; /* node index */
    void *state;
    struct mars_stats *stats;
    uint32_t blocked; /* downstream buffers currently full */
    bool initialized, stopping, finished;
};

struct mars_transform {
    struct mars_worker *w;
    const struct mars_node *node;
    uint32_t idx;
    void *state;
    struct mars_stats *stats;
    bool initialized;
};

/* FIFO of batch references in front of a sink (a ring that grows; bounded by the
 * buffer's event and byte limits through backpressure or drops). */
struct mars_bufq {
    struct mars_batch **ring;
    uint32_t head, count, cap;
    uint64_t events, bytes;
};

/* One request of a sink: in flight, waiting for its retry, or free. */
struct mars_sink_slot {
    struct mars_sink_req req; /* first: the sink API hands out &slot->req */
    struct mars_sink *s;
    size_t cap;              /* of req.batches */
    struct mars_ev_op timer; /* retry backoff */
    bool inflight, retry_wait, timer_armed;
    struct mars_batch *dead; /* events the sink dead-lettered, for node.dead_letter */
    uint64_t dead_events;    /* of this request, over all its tries */
};

struct mars_sink {
    struct mars_worker *w;
    const struct mars_node *node;
    uint32_t idx;
    void *state;
    struct mars_stats *stats;
    struct mars_bufq q;
    struct mars_sink_slot *slots; /* request.concurrency of them */
    uint32_t nslots, busy;        /* busy: slots in flight or waiting to retry */
    struct mars_ev_op timer;      /* batch timeout */
    bool timer_armed;
    bool dispatching, aborting, full;
    int64_t backoff_ns;
    struct mars_dbuf *dbuf;      /* buffer.type disk (dbuf.c), else NULL */
    uint32_t *feeders, nfeeders; /* source node indices on this worker feeding this sink */
    size_t feeders_cap;
    bool initialized;
};

enum mars_worker_state { MARS_W_RUNNING, MARS_W_STOPPING, MARS_W_DRAINING, MARS_W_DONE };

enum {
    MARS_CMD_STOP = 1u << 0,
    MARS_CMD_ABORT = 1u << 1,
};

struct mars_worker {
    struct mars_engine *e;
    unsigned id;
    pthread_t thread;
    struct mars_ev_loop *loop;
    struct mars_chunk_pool pool;
    struct mars_ev_async wake;
    atomic_uint cmd; /* MARS_CMD_* bits set by the control thread */
    unsigned handled_cmd;
    enum mars_worker_state state;
    /* Per node index: instance on this worker or NULL, and its counters. */
    struct mars_source **src;
    struct mars_transform **xf;
    struct mars_sink **snk;
    struct mars_stats *stats;
    uint32_t sources_live;
    int start_rc; /* 0 or -errno from instantiation, read by the control thread */
    atomic_bool done;
    bool spawned, has_wake;
    struct mars_ev_op heartbeat; /* observe.c: proves the loop turns (/healthz) */
    bool heartbeat_armed, heartbeat_stopping;
};

struct mars_engine {
    const struct mars_config *cfg;
    struct mars_engine_opts opts;
    const struct mars_ev_backend *backend;
    unsigned nworkers;
    struct mars_worker *workers;
    struct mars_ev_loop *loop; /* control thread */
    struct mars_ev_async wake; /* workers -> control */
    pthread_mutex_t lock;      /* startup handshake */
    pthread_cond_t cond;
    unsigned started;
    bool stopping, aborted;
    struct mars_ev_op shutdown_timer;
    bool shutdown_timer_armed;
    struct mars_ev_op sig_op;
    int sigfd;
    atomic_bool stop_requested;
    struct mars_obs *obs; /* metrics, heartbeats, health (observe.c) */
    /* the `host` of local log events (host.add); "" when off. Lives as long as the engine,
     * which outlives every batch its sources made. */
    char host[256];
    bool hooked; /* opts.on_running ran and on_stopping has not yet */
    int lock_fd; /* data_dir lock, when a component keeps state there */
    /* reload: a validated configuration waiting for this engine to stop (any thread sets
     * it under reload_lock; main.c takes it after mars_engine_run returns) */
    pthread_mutex_t reload_lock;
    struct mars_config *next_cfg;
    atomic_bool reload_requested;
    struct mars_reload_status reload_status; /* under reload_lock */
};

/* worker.c */
void *mars_worker_main(void *arg);
void mars_worker_teardown(struct mars_worker *w); /* control thread, after join */
void mars_worker_deliver(struct mars_worker *w, uint32_t from, struct mars_batch *b);
void mars_worker_deliver_port(struct mars_worker *w, uint32_t from, uint32_t port,
                              struct mars_batch *b);
void mars_worker_check_done(struct mars_worker *w);
void mars_source_block(struct mars_source *s, bool full);

/* sinkq.c */
void mars_sinkq_enqueue(struct mars_sink *s, struct mars_batch *b);
void mars_sinkq_dispatch(struct mars_sink *s);
void mars_sinkq_abort(struct mars_sink *s);
bool mars_sinkq_idle(const struct mars_sink *s);
/* Unpins sparse batches waiting in s's buffer or for a retry (mars_batch_unpin): called when
 * the worker's chunk pool is dry. Returns the chunk references dropped. */
uint32_t mars_sinkq_unpin(struct mars_sink *s);
void mars_sinkq_fini(struct mars_sink *s);
/* for dbuf.c: pushes a batch read back from disk into the memory buffer (no checks); is
 * there room under buffer.max_events / max_bytes; block or unblock the feeding sources */
void mars_sinkq_push(struct mars_sink *s, struct mars_batch *b);
bool mars_sinkq_room(const struct mars_sink *s);
void mars_sinkq_block(struct mars_sink *s, bool full);

#endif
