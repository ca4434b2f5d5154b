/*
 * dbuf.h - disk buffers in front of sinks (buffer.type: disk), one per sink and worker:
 * records are appended to segment files under data_dir/buffers/<sink id>/<worker>/ before
 * their sources are acknowledged, and read back into the sink's memory buffer as it has
 * room (dbuf.c has the design, dbuf_seg.h the file format).
 *
 * Thread: the sink's worker, except mars_dbuf_orphans (control thread, at start).
 */
#ifndef MARS_DBUF_H
#define MARS_DBUF_H

#include "config/config.h"

struct mars_sink;
struct mars_batch;

/* Opens (creating, recovering, adopting) the sink's disk buffer on its worker and sets
 * s->dbuf. Returns 0 or -errno (logged); on error s->dbuf may be set: close it. */
int mars_dbuf_open(struct mars_sink *s);
/* Writes b (owned) to disk; releases it when the sync setting allows. */
void mars_dbuf_enqueue(struct mars_sink *s, struct mars_batch *b);
/* Reads records back into the sink's memory buffer while it has room. */
void mars_dbuf_pump(struct mars_sink *s);
/* Nothing left for the sink to do from disk: true without a disk buffer, and when the
 * worker stops for good (what is on disk stays there); with --once, only when every
 * record was read back and delivered. */
bool mars_dbuf_idle(const struct mars_sink *s);
/* Worker stopping: syncs, acknowledges what is synced, saves the delivered marks and
 * cancels the timer. */
void mars_dbuf_quiesce(struct mars_sink *s);
/* Frees everything (after the sink's batches were released). */
void mars_dbuf_close(struct mars_sink *s);
/* Reports buffer directories under data_dir/buffers/ whose sink has no disk buffer in cfg
 * (WARN with their size) and deletes them with orphan_buffers: delete. */
void mars_dbuf_orphans(const struct mars_config *cfg);

#endif
