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

#include "pipeline/component.h"

enum mars_oversize { MARS_OVERSIZE_SPLIT, MARS_OVERSIZE_TRUNCATE };
extern const char *const mars_oversize_names[];

struct mars_lines {
    struct mars_source *src;
    struct mars_chunk *cur; /* chunk being filled (owned reference) */
    uint32_t start;         /* first byte of the current, unfinished line */
    uint32_t scanned;       /* bytes after start already searched for a delimiter */
    size_t max_line;
    int oversize;      /* enum mars_oversize */
    bool skipping;     /* truncate: dropping the rest of an oversize line */
    bool cutting;      /* inside an oversize line (counted once) */
    char delim;
    uint64_t lines;
};

void mars_lines_init(struct mars_lines *lr, struct mars_source *src, size_t max_line,
                     int oversize, char delim);
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
