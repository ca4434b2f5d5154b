/*
 * checkpoint.h - durable read positions for sources that can replay (the file source).
 *
 * One store per source id, shared by that source's instances on every worker, kept in
 * `data_dir/checkpoints/<id>.journal`: an append-only journal of CRC-32C-checked records
 * (file identity -> acknowledged offset, head fingerprint, offset marker, path). A writer
 * thread appends what changed at most every `interval` and fdatasyncs it; close writes the
 * rest. When the journal grows well past its live content it is compacted (rewritten to a
 * temporary file, fsync'd, renamed over). Loading stops at the first bad record and
 * truncates the torn or corrupt tail away (logged), so a crash mid-write never turns into a
 * crash loop; a journal with a bad header is moved aside and a fresh one started.
 *
 * Records are in host byte order: a data_dir is not portable across architectures.
 * Thread-safe: every function may be called from any thread.
 */
#ifndef MARS_CHECKPOINT_H
#define MARS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mars_ckpt;

struct mars_ckpt_key {
    uint64_t dev, ino;
};

struct mars_ckpt_rec {
    struct mars_ckpt_key key;
    uint64_t offset;  /* every byte before it is acknowledged */
    uint64_t fp_hash; /* hash of the first fp_len bytes of the file */
    uint32_t fp_len;
    uint32_t marker_len; /* hash of the marker_len bytes before offset */
    uint64_t marker;
    int64_t updated; /* unix seconds */
};

/* Returns the shared store for `id` under data_dir (created on first use, with its
 * directory), taking a reference; NULL with *err set (negative errno) on failure.
 * interval_ns: how often the writer thread flushes (the smallest asked for wins). */
struct mars_ckpt *mars_ckpt_acquire(const char *data_dir, const char *id, int64_t interval_ns,
                                    int *err);
/* Drops a reference; the last one flushes, stops the writer and frees the store. */
void mars_ckpt_release(struct mars_ckpt *c);

/* True when the journal held no record when it was opened (the source's first start). */
bool mars_ckpt_first_start(const struct mars_ckpt *c);
/* Copies the record for key into *out; false when there is none. */
bool mars_ckpt_get(struct mars_ckpt *c, const struct mars_ckpt_key *key, struct mars_ckpt_rec *out);
/* Stores (or replaces) a record and its path (for people reading the journal). */
void mars_ckpt_put(struct mars_ckpt *c, const struct mars_ckpt_rec *rec, const char *path);
void mars_ckpt_remove(struct mars_ckpt *c, const struct mars_ckpt_key *key);
/* Writes what changed and fdatasyncs. Returns 0 or a negative errno (logged). */
int mars_ckpt_flush(struct mars_ckpt *c);
size_t mars_ckpt_count(struct mars_ckpt *c);
/* Calls fn for every open store with its id (borrowed for the call) and how many flushes
 * failed since it was opened (mars_checkpoint_write_errors_total). Any thread; fn runs
 * under the registry lock and must not acquire or release a store. */
void mars_ckpt_visit_errors(void (*fn)(void *arg, const char *id, uint64_t write_errors),
                            void *arg);

/* Takes data_dir/mars.lock (flock, exclusive), creating data_dir. Returns the lock fd
 * (keep it open for the life of the process) or a negative errno; -EWOULDBLOCK means
 * another mars holds it (its pid is logged). */
int mars_data_dir_lock(const char *data_dir);

#endif
