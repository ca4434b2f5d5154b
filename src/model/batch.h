/*
 * batch.h - a group of events moving through one worker's pipeline, with the chunk
 * references its events need, an arena for derived bytes, and the acknowledgement that
 * tells the source when every sink path has finished with it.
 *
 * Refcounting. A batch starts with one reference (the source's emit hands it to the
 * engine). Fan-out to several consumers takes a reference each. Sinks read a shared batch;
 * a transform that changes events first calls mars_batch_exclusive(), which clones the
 * event array when the batch is shared (the clone keeps its parent alive, so the chunks
 * and arena bytes the events point at stay valid).
 *
 * Acknowledgement. The source may set `ack` on the batch it creates. The ack runs exactly
 * once, when the last reference to that batch and to every clone of it is gone, with
 * delivered = true unless some path abandoned it (shutdown timeout with data still queued),
 * in which case the source must not advance its checkpoint over it. A filter that drops
 * events and a sink that drops on purpose both finish their path: the data is not owed to
 * anyone any more.
 *
 * Thread: batches never leave the worker that made them; refcounts are not atomic.
 */
#ifndef MARS_BATCH_H
#define MARS_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/chunk.h"
#include "model/event.h"

struct mars_batch;

struct mars_batch_ack {
    void (*fn)(struct mars_batch *b, bool delivered); /* runs on the worker thread */
    void *ctx;                                        /* the source's */
    uint64_t a, b;                                    /* the source's (file id, offset...) */
};

struct mars_batch {
    uint32_t refs;
    uint32_t n; /* events used */
    size_t cap; /* events allocated */
    struct mars_event *ev;
    uint64_t bytes; /* sum of message lengths, for buffer accounting */
    struct mars_chunk **chunks;
    uint32_t nchunks;
    size_t chunks_cap;
    struct mars_arena arena;
    struct mars_batch *parent; /* clones keep the original alive */
    struct mars_batch **holds; /* more batches kept alive (mars_batch_hold) */
    uint32_t nholds;
    size_t holds_cap;
    struct mars_batch_ack ack; /* fn == NULL: nobody waits */
    bool abandoned;            /* some path gave up without finishing */
    int64_t created_ns;        /* monotonic, for latency */
    uint16_t source;           /* source node index */
};

/* Returns an owned batch with room for `cap` events (refs = 1), or NULL. */
struct mars_batch *mars_batch_create(uint32_t cap);
static inline struct mars_batch *mars_batch_ref(struct mars_batch *b)
{
    b->refs++;
    return b;
}
/* Drops one reference. The last one releases chunks, arena, parent, and runs the ack. */
void mars_batch_release(struct mars_batch *b);
/* Marks the batch (and its root) as not delivered, then releases one reference. */
void mars_batch_abandon(struct mars_batch *b);
/* Takes a reference on chunk c for this batch, once per chunk (repeat calls for the chunk
 * most recently added are free). Returns 0 or -ENOMEM. */
int mars_batch_hold_chunk(struct mars_batch *b, struct mars_chunk *c);
/* Appends an event slot (zeroed), growing the array; NULL on -ENOMEM. */
struct mars_event *mars_batch_push(struct mars_batch *b);
/* Makes *bp safe to modify: if shared, replaces it with a clone (dropping one reference to
 * the original). Returns 0 or -ENOMEM (then *bp is unchanged). */
int mars_batch_exclusive(struct mars_batch **bp);
/* Removes events for which keep[i] is false, in place; recomputes bytes. The batch must be
 * exclusive. */
void mars_batch_compact(struct mars_batch *b, const bool *keep);
/* A new batch (refs = 1) holding the events of b for which keep[i] is true (none when keep
 * is NULL), with room for `extra` more. Like a clone it keeps b alive (one new reference
 * to b; the caller's reference is left alone), so the events' bytes stay valid and b's
 * acknowledgement waits for it. NULL on -ENOMEM. */
struct mars_batch *mars_batch_select(struct mars_batch *b, const bool *keep, uint32_t extra);
/* Lets go of chunks b pins for few bytes: when b is a root batch held only by its caller
 * (refs == 1, no parent, no holds), all its events are log lines without parsed fields, and
 * its share of the chunks it references (each chunk's capacity over its reference count) is
 * more than MARS_BATCH_SPARSE times its bytes, the events' bytes are copied into b's arena
 * and the chunk references dropped. For whoever keeps batches a long time (a sink's buffer
 * while its peer is down): a batch of a few lines must not keep a whole chunk from the
 * pool. Returns the chunks dropped (0: nothing done, also on -ENOMEM). */
#define MARS_BATCH_SPARSE 4
uint32_t mars_batch_unpin(struct mars_batch *b);
/* Moves b's acknowledgement to a new stand-in batch (returned, refs = 1) and clears b's:
 * releasing the stand-in acknowledges b's events to their source, while b lives on with an
 * ack its holder sets. For a sink that took over the events for good (on disk, in a disk
 * buffer) and still delivers b itself. The stand-in holds no events; its n and bytes are
 * b's, since ack functions count events but never read them. Only for a root batch its
 * caller holds alone (refs == 1, no parent, no holds). NULL on -ENOMEM or when b is not. */
struct mars_batch *mars_batch_split_ack(struct mars_batch *b);
/* b keeps `other` alive until b is released (takes over the caller's reference to other):
 * for events that carry bytes of several batches (multiline joins lines across reads).
 * Returns 0 or -ENOMEM (then the caller still owns its reference). */
int mars_batch_hold(struct mars_batch *b, struct mars_batch *other);

#endif
