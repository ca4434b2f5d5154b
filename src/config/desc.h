/*
 * desc.h - what a component type is: one `const struct mars_component_desc` per type
 * (name, one-line description, option schema, callbacks), which config loading reads and
 * control/components.c lists. The instance functions the callbacks call are in
 * engine/instance.h; a component includes both through the one header "component.h".
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
 *
 * One measured exception: a system call on a file already open whose data is almost always
 * in the page cache may be made directly. The file source checks a growing file for
 * truncation (fstat, a pread of its head fingerprint, default 256 bytes, and one of the 32
 * bytes before its offset) before it reads on: about 15 us of syscalls per check here with
 * the head cached, 0.4 ms when the head page was evicted and must come from disk (2 cores,
 * virtio disk, loaded machine). Routed through the loop, the same check would cost the same
 * three operations plus a completion each, and the read that follows needs its answer.
 * Anything that can wait on the network or on a lock goes through the loop or a thread.
 */
#ifndef MARS_DESC_H
#define MARS_DESC_H

#include <stddef.h>

#include "core/cfg.h"
#include "core/diag.h"
#include "core/schema.h"

struct mars_batch;
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
    MARS_DESC_LOCAL_LOGS = 1u << 4, /* sources: logs of this machine (their events get `host`) */
};

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
    /* Optional: what the reference says after the options (the fields a parser produces,
     * say), as markdown paragraphs; `mars describe TYPE` prints it too. */
    const char *notes;
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

#endif
