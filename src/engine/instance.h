/*
 * instance.h - what a component instance may call on the engine: its identity, config,
 * state and loop; emit and acknowledge (sources emit batches, transforms pass them on,
 * sinks report each request's outcome); its counters; and the component-facing parts of
 * observability (last error, metrics registry, health checks, objects shared by a
 * component's instances on several workers).
 *
 * The engine creates one instance per worker that needs it and hands every callback the
 * instance handle (config/desc.h has the callbacks). Components include this through
 * "component.h", never directly.
 *
 * Thread: the instance's worker unless a function says otherwise.
 */
#ifndef MARS_INSTANCE_H
#define MARS_INSTANCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/desc.h"
#include "model/batch.h"

struct mars_ev_loop;
struct mars_metrics;
struct mars_obs;

/* What a sink says about a request it was given. */
enum mars_sink_result {
    MARS_SINK_OK,       /* the peer has it: batches finished */
    MARS_SINK_RETRY,    /* transient failure: the engine retries with backoff */
    MARS_SINK_REJECTED, /* permanent failure: counted, logged, batches finished */
    MARS_SINK_ABORTED,  /* given up at shutdown: batches abandoned (not acknowledged) */
};

/* Bounded error classes for mars_component_errors_total{error_type}. */
enum mars_error_type {
    MARS_ERR_READ,
    MARS_ERR_WRITE,
    MARS_ERR_OVERSIZE,
    MARS_ERR_INVALID_UTF8,
    MARS_ERR_ENCODE,
    MARS_ERR_REJECTED,
    MARS_ERR_RETRY,
    MARS_ERR_MEMORY,
    MARS_ERR_PARSE,   /* input did not parse (parse transforms) */
    MARS_ERR_CONVERT, /* a value could not be converted or written (modify, log_to_metric) */
    MARS_ERR_LIMIT,   /* a configured limit was hit (cardinality, multiline size) */
    MARS_ERR_CONNECT, /* a connection to the peer could not be made (resolve, refused, timeout) */
    MARS_ERR_TLS,     /* a TLS handshake failed (bad certificate, name, protocol) */
    MARS_ERR__COUNT
};
const char *mars_error_type_name(enum mars_error_type t);

/*
 * Counters of one instance. Written only by its worker (relaxed load + store, no read-
 * modify-write contention), read by the control thread, which sums them over workers.
 */
struct mars_stats {
    _Atomic uint64_t received_events, received_bytes;
    _Atomic uint64_t sent_events, sent_bytes;
    _Atomic uint64_t discarded_intentional, discarded_unintentional;
    _Atomic uint64_t acked_events; /* sources: events whose batches were acknowledged */
    _Atomic uint64_t errors[MARS_ERR__COUNT];
    _Atomic uint64_t buffer_events, buffer_bytes; /* sinks: gauges */
    _Atomic uint64_t consecutive_failures;        /* sinks: failed requests since the last OK */
    _Atomic uint64_t lag_bytes; /* sources with MARS_DESC_LAG_BYTES: bytes not read yet */
    /* sinks with a disk buffer: bytes of its segment files and events not delivered yet
     * (gauges), records written, read back (of them, handed over from memory) and found
     * corrupt, and the write time of the oldest record not delivered (wall clock ns, 0:
     * none) */
    _Atomic uint64_t disk_bytes, disk_events;
    _Atomic uint64_t disk_written, disk_read, disk_handed_over, disk_corrupt;
    _Atomic uint64_t disk_oldest_wall_ns;
};

static inline void mars_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void mars_stat_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t mars_stat_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- source instance API ---- */
const char *mars_source_id(const struct mars_source *s);
const void *mars_source_conf(const struct mars_source *s);
void *mars_source_state(const struct mars_source *s);
void mars_source_set_state(struct mars_source *s, void *state);
struct mars_ev_loop *mars_source_loop(const struct mars_source *s);
struct mars_stats *mars_source_stats(const struct mars_source *s);
/* mars --once: read what exists now (files to their current end, stdin to its end, demo
 * to its count) and finish; a source that cannot end refuses to start. */
bool mars_source_once(const struct mars_source *s);
/* This instance's worker index and the number of workers (MARS_DESC_PER_WORKER sources
 * split their work by it). */
unsigned mars_source_worker(const struct mars_source *s);
unsigned mars_source_workers(const struct mars_source *s);
/* The process's data_dir option. */
const char *mars_source_data_dir(const struct mars_source *s);
/* True while downstream buffers are full or the source is stopping: do not start reads. */
bool mars_source_paused(const struct mars_source *s);
/* A chunk from the worker's pool with at least min_cap bytes (owned, refs = 1). NULL when
 * memory is at its bound: the source's resume() runs when some comes back. */
struct mars_chunk *mars_source_chunk(struct mars_source *s, size_t min_cap);
/* A new batch stamped with this source (refs = 1), or NULL on -ENOMEM. */
struct mars_batch *mars_source_batch(struct mars_source *s, uint32_t cap);
/* Hands b to the pipeline (takes ownership). Counts received events and bytes. Empty
 * batches are released (acknowledged) at once. */
void mars_source_emit(struct mars_source *s, struct mars_batch *b);
/* Nothing more will be emitted (end of input, count reached, or stop completed). */
void mars_source_finished(struct mars_source *s);

/* ---- transform instance API ---- */
const char *mars_transform_id(const struct mars_transform *t);
const void *mars_transform_conf(const struct mars_transform *t);
void *mars_transform_state(const struct mars_transform *t);
void mars_transform_set_state(struct mars_transform *t, void *state);
struct mars_ev_loop *mars_transform_loop(const struct mars_transform *t);
struct mars_stats *mars_transform_stats(const struct mars_transform *t);
/* Passes b on to everything that reads this transform (takes ownership). */
void mars_transform_emit(struct mars_transform *t, struct mars_batch *b);
/* Passes b on to the readers of named output `port` (an index into the descriptor's port
 * names); released when nobody reads that port. Takes ownership. */
void mars_transform_emit_port(struct mars_transform *t, size_t port, struct mars_batch *b);

/* ---- sink instance API ---- */
struct mars_sink_req {
    struct mars_batch **batches; /* borrowed */
    uint32_t n;
    uint64_t events, bytes;
    uint32_t attempt; /* 0 for the first try */
    /* The sink's, kept across retries of this request (e.g. which events the peer already
     * accepted); NULL on the first try. One malloc'd block: the sink frees it before
     * reporting OK, REJECTED or ABORTED; the engine free()s it only when it gives up a
     * request that waits for its retry (shutdown). */
    void *sink_data;
    /* Set by the sink before mars_sink_done(RETRY) when the peer said when to come back
     * (Retry-After): the engine waits at least this long (up to retry.max_retry_after).
     * Reset to 0 before each try. */
    int64_t retry_after_ns;
    /* Events of this request the sink dropped on purpose or rejected for good (bad items
     * of a bulk request that otherwise succeeded): counted as discarded instead of sent
     * when the request ends OK (or dead-lettered, see mars_sink_dead_letter). Reset to 0 on
     * the first try. */
    uint64_t rejected_events;
};
const char *mars_sink_id(const struct mars_sink *s);
const void *mars_sink_conf(const struct mars_sink *s);
void *mars_sink_state(const struct mars_sink *s);
void mars_sink_set_state(struct mars_sink *s, void *state);
struct mars_ev_loop *mars_sink_loop(const struct mars_sink *s);
struct mars_stats *mars_sink_stats(const struct mars_sink *s);
/* The sink cannot go on (its output is gone for good): begins mars's graceful stop, as
 * SIGTERM does. Thread-safe. */
void mars_sink_request_shutdown(struct mars_sink *s, const char *why);
/* request.concurrency and request.timeout of this sink. */
unsigned mars_sink_concurrency(const struct mars_sink *s);
/* buffer.max_events and buffer.max_bytes of this sink: its buffer's bounds per worker, for
 * sinks that size a queue of their own (a client library's) from them. */
void mars_sink_buffer_limits(const struct mars_sink *s, int64_t *max_events, uint64_t *max_bytes);
int64_t mars_sink_request_timeout(const struct mars_sink *s);
/* The event at `index` of r (counting through r->batches in order) was rejected for good
 * by the peer: it goes to the sink's dead_letter sink, if one is configured, when r ends.
 * Call it before mars_sink_done(); count such events in r->rejected_events as usual.
 * Returns 0, -ENOENT without a dead_letter (the event is lost), or -ENOMEM. */
int mars_sink_dead_letter(struct mars_sink *s, struct mars_sink_req *r, uint64_t index);
/* Reports the outcome of r. `sent_bytes` counts bytes written to the peer (0 if unknown).
 * The engine counts sent events on OK, errors on the others, and owns retries. */
void mars_sink_done(struct mars_sink *s, struct mars_sink_req *r, enum mars_sink_result res,
                    uint64_t sent_bytes);

/* ---- observability (any thread; not for per-event paths) ---- */

/* The component's last error, shown by /api/v1/components. */
void mars_source_last_error(struct mars_source *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mars_sink_last_error(struct mars_sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mars_transform_last_error(struct mars_transform *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The engine's observability state, for the calls below. */
struct mars_obs *mars_source_obs(const struct mars_source *s);
struct mars_obs *mars_sink_obs(const struct mars_sink *s);
struct mars_obs *mars_transform_obs(const struct mars_transform *t);
/* Index of the metrics shard the instance's worker writes. */
unsigned mars_source_shard(const struct mars_source *s);
unsigned mars_sink_shard(const struct mars_sink *s);
unsigned mars_transform_shard(const struct mars_transform *t);

/* ---- engine-wide objects shared by a component's instances on several workers ---- */

/* Returns the object registered under key (a component id), creating it with
 * create(arg) on first use; NULL when create fails. Each successful acquire is paired with
 * one release; the last release calls destroy(obj). create and destroy run with the table
 * locked (they must not acquire). */
void *mars_shared_acquire(struct mars_obs *o, const char *key, void *(*create)(void *arg),
                          void *arg);
void mars_shared_release(struct mars_obs *o, const char *key, void (*destroy)(void *obj));

/* True once this engine is stopping for a reload: a new engine with the reloaded
 * configuration follows in this process. A component that owns something outside mars
 * (registry entries, kernel rules) keeps it on such a stop and lets the next engine's
 * instances take it over; on any other stop (SIGTERM, a fatal error) it cleans up.
 * Thread-safe. */
bool mars_obs_reloading(struct mars_obs *o);

/* ---- hand-over across a reload (process-wide, any thread) ---- */

/* Leaves obj under key for the next engine (a component's stop while
 * mars_obs_reloading()). Takes ownership: the taker owns it from mars_keep_take on; one
 * nobody takes by the time the next engine's workers have started, or left when mars
 * exits, goes to destroy(obj) (may be NULL), which should undo outside mars what obj
 * holds. A second put under the same key destroys the first. Returns 0 or -ENOMEM (obj
 * not taken: the caller still owns it). Keys: "<component type>:<component id>". */
int mars_keep_put(const char *key, void *obj, void (*destroy)(void *obj));
/* What the previous engine left under key (owned by the caller from now on), or NULL. */
void *mars_keep_take(const char *key);
/* Destroys every object nobody took (the engine after its workers started; mars at exit). */
void mars_keep_drop_all(void);

/* The engine's metrics registry (components register their own families there). */
struct mars_metrics *mars_obs_metrics(struct mars_obs *o);

/* ---- health checks (/health/<name>) ---- */

enum mars_health_status { MARS_HEALTH_UNKNOWN, MARS_HEALTH_UP, MARS_HEALTH_DOWN };
const char *mars_health_status_name(enum mars_health_status st); /* "UP" */

/* Claims `name`. Returns an id >= 0, -EEXIST when another check has the name, -ENOSPC. */
int mars_health_register(struct mars_obs *o, const char *name, const char *type);
/* Publishes a check's state; `detail` is a JSON object's members without braces (may be
 * NULL), e.g. "\"error\":\"connection refused\",\"consecutive_failures\":3". */
void mars_health_update(struct mars_obs *o, int id, enum mars_health_status st, const char *detail);

#endif
