/*
 * component.h - what a source, transform or sink is to the engine.
 *
 * Each component type is one `const struct mars_component_desc` (name, one-line
 * description, option schema, callbacks), listed in registry.c. The engine creates one
 * instance per worker that needs it and hands every callback the instance handle:
 *
 *   source     init -> start -> (emit batches; pause/resume by backpressure) -> stop ->
 *              mars_source_finished() -> destroy
 *   transform  init -> process(batch) ... -> flush (upstream finished) -> destroy
 *              A transform may have named outputs (route): its descriptor's `port` names
 *              them, readers address one as `id.port`, and mars_transform_emit_port()
 *              sends a batch to the readers of one port only.
 *   sink       init -> write(request) -> mars_sink_done(request, result) ... -> destroy
 *
 * Every callback runs on the instance's worker thread and must not block: I/O goes through
 * the worker's ev loop (mars_*_loop()). A component never sees another worker's state.
 */
#ifndef MARS_COMPONENT_H
#define MARS_COMPONENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/diag.h"
#include "core/schema.h"
#include "model/batch.h"

struct mars_ev_loop;
struct mars_node;
struct mars_source;
struct mars_transform;
struct mars_sink;
struct mars_sink_req;

enum mars_kind { MARS_KIND_SOURCE, MARS_KIND_TRANSFORM, MARS_KIND_SINK };

/* Event types a component makes or takes. */
enum {
    MARS_DATA_LOG = 1u << 0,
    MARS_DATA_METRIC = 1u << 1,
    MARS_DATA_ANY = MARS_DATA_LOG | MARS_DATA_METRIC,
    MARS_DATA_SAME = 1u << 7, /* transforms: produces whatever its inputs produce */
};

enum mars_desc_flags {
    MARS_DESC_TEST_ONLY = 1u << 0,  /* registered by tests; hidden from describe and docs */
    MARS_DESC_PER_WORKER = 1u << 1, /* sources: one instance on every worker, sharing work */
    MARS_DESC_DATA_DIR = 1u << 2,   /* keeps state in data_dir (which mars then locks) */
    MARS_DESC_LAG_BYTES = 1u << 3,  /* sources: keep stats.lag_bytes (mars_source_lag_bytes) */
};

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

struct mars_source_ops {
    /* Allocate state (mars_source_set_state). Returns 0 or -errno (then destroy is not called). */
    int (*init)(struct mars_source *s);
    /* Begin producing. Returns 0 or -errno. */
    int (*start)(struct mars_source *s);
    /* Backpressure lifted (mars_source_paused() is false again): continue reading. */
    void (*resume)(struct mars_source *s);
    /* Stop reading. Cancel in-flight ops; call mars_source_finished() once the last one has
     * completed (may be right away). */
    void (*stop)(struct mars_source *s);
    void (*destroy)(struct mars_source *s);
};

struct mars_transform_ops {
    int (*init)(struct mars_transform *t);
    /* Takes ownership of b; passes on what it keeps with mars_transform_emit(). */
    void (*process)(struct mars_transform *t, struct mars_batch *b);
    /* Inputs are finished: emit anything held back and cancel any op still in flight (the
     * worker destroys instances only once its loop has no op left). Called once, at drain,
     * after every upstream transform flushed; process may still run afterwards (rarely:
     * late upstream output) and must then pass events on at once. Optional. */
    void (*flush)(struct mars_transform *t);
    void (*destroy)(struct mars_transform *t);
};

struct mars_sink_ops {
    int (*init)(struct mars_sink *s);
    /* Deliver r (borrowed until mars_sink_done(s, r, ...) is called, which may happen inside
     * write or later from a callback). */
    void (*write)(struct mars_sink *s, struct mars_sink_req *r);
    /* Shutdown timeout: cancel in-flight I/O; each outstanding request still gets exactly one
     * mars_sink_done(), with MARS_SINK_ABORTED if it did not complete. Optional when write
     * always finishes synchronously. */
    void (*abort)(struct mars_sink *s);
    void (*destroy)(struct mars_sink *s);
};

struct mars_component_desc {
    const char *name;
    const char *description;
    enum mars_kind kind;
    unsigned produces; /* sources, transforms: MARS_DATA_* */
    unsigned accepts;  /* transforms, sinks: MARS_DATA_* */
    unsigned flags;    /* enum mars_desc_flags */
    const struct mars_opt *options;
    size_t conf_size;
    /* Optional cross-option checks after the schema applied; add errors to diag at node's
     * positions and return -EINVAL. */
    int (*check)(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);
    /* Transforms with named outputs: the name of output port i of a configured instance,
     * NULL past the last. Readers must name a port (`id.port`). NULL: one unnamed output. */
    const char *(*port)(const void *conf, size_t i);
    union {
        struct mars_source_ops source;
        struct mars_transform_ops transform;
        struct mars_sink_ops sink;
    };
};

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

#endif
