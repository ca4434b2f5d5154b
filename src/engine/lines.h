/*
 * lines.h - cuts a byte stream into line events without copying.
 *
 * A reader asks mars_lines_space() where to read next (the free tail of the current
 * chunk), reads there, then mars_lines_commit() slices every complete line out of the
 * chunk into a batch: events point into the chunk and the batch holds a reference to it.
 * Only the partial last line is copied, once, into the next chunk when the current one is
 * full. A line longer than max_line is cut (oversize: split emits it in max_line pieces,
 * truncate emits the first max_line bytes and skips to the next delimiter); both are
 * counted as MARS_ERR_OVERSIZE and logged (rate-limited), and reading goes on.
 *
 * Thread: the source's worker.
 */
#ifndef MARS_LINES_H
#define MARS_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/instance.h"

enum mars_oversize { MARS_OVERSIZE_SPLIT, MARS_OVERSIZE_TRUNCATE };
extern const char *const mars_oversize_names[];

/* Cutting state of one byte stream: what is shared by stdin (lines.c owns the chunk) and
 * the file source (many files share a chunk). */
struct mars_cutter {
    struct mars_source *src;
    size_t max_line;
    int oversize; /* enum mars_oversize */
    char delim;
    bool skipping;       /* truncate: dropping the rest of an oversize line */
    bool cutting;        /* inside an oversize line (counted once) */
    uint8_t whole_flags; /* MARS_EVF_* added to lines that are not cut at max_line (the
                          * caller's, e.g. MARS_EVF_UTF8 for bytes it validated) */
    uint64_t lines;
};

void mars_cutter_init(struct mars_cutter *ct, struct mars_source *src, size_t max_line,
                      int oversize, char delim);
/* Cuts the complete lines of chunk bytes [*start, end) into *bp (created on demand with
 * room for `cap` events; it takes a reference to c). Bytes [*start, scan_from) are known
 * to hold no delimiter. On return *start is the first byte of the unfinished last line.
 * Returns 0 or -ENOMEM. */
int mars_cutter_run(struct mars_cutter *ct, struct mars_chunk *c, uint32_t *start,
                    uint32_t scan_from, uint32_t end, struct mars_batch **bp, uint32_t cap,
                    int64_t now);
/* Emits chunk bytes [off, off + len) as one event with `flags` (a partial last line). */
int mars_cutter_emit(struct mars_cutter *ct, struct mars_chunk *c, uint32_t off, uint32_t len,
                     uint8_t flags, struct mars_batch **bp, uint32_t cap, int64_t now);
/* CLOCK_REALTIME in nanoseconds: the timestamp sources give events. */
int64_t mars_wall_ns(void);

struct mars_lines {
    struct mars_cutter cut;
    struct mars_chunk *cur; /* chunk being filled (owned reference) */
    uint32_t start;         /* first byte of the current, unfinished line */
    uint32_t scanned;       /* bytes after start already searched for a delimiter */
};

void mars_lines_init(struct mars_lines *lr, struct mars_source *src, size_t max_line, int oversize,
                     char delim);
void mars_lines_fini(struct mars_lines *lr);
/* Where the next read should land. Returns 0 with buf and len set, or -ENOBUFS when chunk
 * memory is exhausted (the source's resume() runs when some is back). */
int mars_lines_space(struct mars_lines *lr, char **buf, size_t *len);
/* n bytes were read into the space; append complete lines to *bp (created on demand with
 * room for `cap` events). Returns 0 or -ENOMEM. */
int mars_lines_commit(struct mars_lines *lr, size_t n, struct mars_batch **bp, uint32_t cap);
/* End of input: emit the unterminated last line, if any, flagged MARS_EVF_PARTIAL. */
int mars_lines_eof(struct mars_lines *lr, struct mars_batch **bp, uint32_t cap);

#endif
