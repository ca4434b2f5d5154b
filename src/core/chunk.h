/*
 * chunk.h - refcounted blocks that file and socket reads land in, from a per-worker pool.
 *
 * Events point into chunks instead of copying their bytes; a chunk goes back to its pool when
 * the last batch that references it is released. The pool bounds the memory a worker's reads
 * can hold: mars_chunk_get() returns NULL once `max_bytes` are out, and the caller (a source)
 * waits for mars_chunk_pool_on_free() to call it back. That is how backpressure reaches the
 * reader without losing data: unread bytes stay in the file, pipe or socket.
 *
 * Regular chunks live in one region reserved up front (mmap, touched only as chunks are
 * first used), `region_stride` bytes apart, so the worker can register the region with its
 * event loop once (mars_ev_register_buffers(loop, region, region_stride, region_count))
 * and file reads into chunks become fixed reads (runtime.fixed_buffers). Large chunks are
 * malloc'd as before.
 *
 * Thread: a pool and its chunks belong to one worker thread; refcounts are not atomic.
 */
#ifndef MARS_CHUNK_H
#define MARS_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mars_chunk_pool;

struct mars_chunk {
    uint32_t refs;
    uint32_t cap; /* bytes in data[] */
    uint32_t len; /* bytes filled by the reader */
    struct mars_chunk_pool *pool;
    struct mars_chunk *next_free;
    unsigned char data[];
};

/* Called when a chunk comes back after mars_chunk_get() had returned NULL. */
typedef void (*mars_chunk_waiter_fn)(void *arg);

struct mars_chunk_pool {
    size_t chunk_size; /* regular chunk capacity */
    size_t max_bytes;  /* bound on bytes of live chunks (regular and large) */
    size_t live_bytes; /* bytes of chunks handed out and not yet returned */
    size_t live;       /* chunks handed out */
    struct mars_chunk *free_list;
    size_t nfree, max_free; /* regular chunks kept for reuse */
    uint64_t exhausted;     /* times a get found the pool at its bound */
    /* waiters: called once each when memory comes back */
    struct mars_chunk_waiter {
        mars_chunk_waiter_fn fn;
        void *arg;
    } * waiters;
    size_t nwaiters, waiters_cap;
    unsigned hold_waiters; /* > 0: returns do not run waiters (mars_chunk_pool_hold) */
    bool returned_held;    /* a chunk came back while the waiters were held */
    /* Regular chunks' region: region_count slots of region_stride bytes (page multiples),
     * region_used of them handed out at least once. NULL when mmap failed (malloc then). */
    unsigned char *region;
    size_t region_stride, region_count, region_used;
};

void mars_chunk_pool_init(struct mars_chunk_pool *p, size_t chunk_size, size_t max_bytes);
/* Frees the free list and the region. Every chunk must have been returned (a leak is
 * reported on stderr), and no event loop may still read into the region. */
void mars_chunk_pool_fini(struct mars_chunk_pool *p);

/* Returns an owned chunk (refs = 1, len = 0) of at least `min_cap` bytes, or NULL when the
 * pool is at its bound (or malloc failed). min_cap <= chunk_size gives a pooled chunk; a
 * larger one is allocated for the occasion and freed on its last unref. */
struct mars_chunk *mars_chunk_get(struct mars_chunk_pool *p, size_t min_cap);
/* Registers fn(arg) to run once when a chunk is returned; duplicates of (fn, arg) are kept
 * once. Returns 0 or -ENOMEM. */
int mars_chunk_pool_on_free(struct mars_chunk_pool *p, mars_chunk_waiter_fn fn, void *arg);
/* Between hold and release, returned chunks do not run the waiters: a caller that returns
 * chunks while it walks structures a waiter could change (a source's resume emits into
 * sink queues) holds them, and release runs them once, if a chunk came back meanwhile. */
void mars_chunk_pool_hold(struct mars_chunk_pool *p);
void mars_chunk_pool_release(struct mars_chunk_pool *p);
/* Removes a registered waiter (a source being destroyed). */
void mars_chunk_pool_cancel_wait(struct mars_chunk_pool *p, mars_chunk_waiter_fn fn, void *arg);

static inline void mars_chunk_ref(struct mars_chunk *c)
{
    c->refs++;
}
/* Drops one reference; the last one returns the chunk to its pool. */
void mars_chunk_unref(struct mars_chunk *c);

#endif
