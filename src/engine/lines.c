/*
 * lines.c - zero-copy line slicing over chunks (see lines.h).
 *
 * Invariants: bytes [start, cur->len) of the current chunk are the unfinished line;
 * [start, start + scanned) hold no delimiter. A chunk is replaced when its free tail is
 * smaller than a quarter of it: the unfinished line moves to the new chunk (a bigger one,
 * up to max_line, when the line alone fills a chunk).
 */
#include "engine/lines.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/delim.h"
#include "core/log.h"

const char *const mars_oversize_names[] = {"split", "truncate", NULL};

void mars_cutter_init(struct mars_cutter *ct, struct mars_source *src, size_t max_line,
                      int oversize, char delim)
{
    *ct = (struct mars_cutter){
        .src = src, .max_line = max_line, .oversize = oversize, .delim = delim};
}

int64_t mars_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int mars_cutter_emit(struct mars_cutter *ct, struct mars_chunk *c, uint32_t off, uint32_t len,
                     uint8_t flags, struct mars_batch **bp, uint32_t cap, int64_t now)
{
    if (!*bp) {
        *bp = mars_source_batch(ct->src, cap);
        if (!*bp)
            return -ENOMEM;
    }
    struct mars_batch *b = *bp;
    if (mars_batch_hold_chunk(b, c))
        return -ENOMEM;
    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    ev->msg.ptr = (const char *)c->data + off;
    ev->msg.len = len;
    ev->flags = flags;
    ev->ts_ns = now;
    ev->source = b->source;
    b->bytes += len;
    ct->lines++;
    return 0;
}

static void count_oversize(struct mars_cutter *ct)
{
    mars_stat_add(&mars_source_stats(ct->src)->errors[MARS_ERR_OVERSIZE], 1);
    MARS_LOG_RL(MARS_LOG_WARN, mars_source_id(ct->src), "line longer than max_line_bytes (%zu): %s",
                ct->max_line, ct->oversize == MARS_OVERSIZE_SPLIT ? "split" : "truncated");
}

/* Cuts at the line end `stop` (a delimiter there when nl, else the end of the bytes read):
 * emits the line from *st, in max_line pieces when it is longer, or drops what truncation
 * skips. Without a delimiter, a line that fits max_line waits for more bytes. *st moves
 * past what was emitted or dropped, even when an emit fails. */
static int cut_to(struct mars_cutter *ct, struct mars_chunk *c, uint32_t *st, uint32_t stop,
                  bool nl, struct mars_batch **bp, uint32_t cap, int64_t now)
{
    int rc = 0;
    while (rc == 0) {
        uint32_t len = stop - *st;
        if (!nl && len <= ct->max_line)
            break;
        if (ct->skipping) {
            /* rest of a truncated line: drop through the delimiter */
            ct->skipping = !nl;
            ct->cutting = ct->skipping;
            *st = nl ? stop + 1 : stop;
            break;
        }
        if (len > ct->max_line) {
            if (!ct->cutting)
                count_oversize(ct); /* once per line, not per piece */
            ct->cutting = true;
            rc = mars_cutter_emit(ct, c, *st, (uint32_t)ct->max_line, MARS_EVF_OVERSIZE, bp, cap,
                                  now);
            *st += (uint32_t)ct->max_line;
            ct->skipping = ct->oversize == MARS_OVERSIZE_TRUNCATE;
            continue;
        }
        uint8_t flags = ct->cutting ? MARS_EVF_NL_FOLLOWS | MARS_EVF_OVERSIZE
                                    : MARS_EVF_NL_FOLLOWS | ct->whole_flags;
        rc = mars_cutter_emit(ct, c, *st, len, flags, bp, cap, now);
        ct->cutting = false;
        *st = stop + 1;
        break;
    }
    return rc;
}

int mars_cutter_run(struct mars_cutter *ct, struct mars_chunk *c, uint32_t *start,
                    uint32_t scan_from, uint32_t end, struct mars_batch **bp, uint32_t cap,
                    int64_t now)
{
    uint32_t idx[256];
    uint32_t pos = scan_from, st = *start;
    int rc = 0;

    /* delimiters a batch at a time (core/delim.h), then what follows the last one */
    while (pos < end && rc == 0) {
        size_t done, k = mars_delim_index(c->data + pos, end - pos, (unsigned char)ct->delim, idx,
                                          sizeof(idx) / sizeof(idx[0]), &done);
        for (size_t j = 0; j < k && rc == 0; j++)
            rc = cut_to(ct, c, &st, pos + idx[j], true, bp, cap, now);
        pos += (uint32_t)done;
    }
    if (rc == 0)
        rc = cut_to(ct, c, &st, end, false, bp, cap, now);
    *start = st;
    return rc;
}

void mars_lines_init(struct mars_lines *lr, struct mars_source *src, size_t max_line, int oversize,
                     char delim)
{
    *lr = (struct mars_lines){0};
    mars_cutter_init(&lr->cut, src, max_line, oversize, delim);
}

void mars_lines_fini(struct mars_lines *lr)
{
    if (lr->cur)
        mars_chunk_unref(lr->cur);
    lr->cur = NULL;
}

int mars_lines_space(struct mars_lines *lr, char **buf, size_t *len)
{
    struct mars_chunk *c = lr->cur;
    size_t max_line = lr->cut.max_line;
    if (c && c->cap - c->len >= c->cap / 4) {
        *buf = (char *)c->data + c->len;
        *len = c->cap - c->len;
        return 0;
    }
    uint32_t tail = c ? c->len - lr->start : 0;
    size_t want = tail * 2 > max_line ? max_line + max_line / 4 : (size_t)tail * 2;
    struct mars_chunk *n = mars_source_chunk(lr->cut.src, want);
    if (!n)
        return -ENOBUFS;
    if (c) {
        memcpy(n->data, c->data + lr->start, tail);
        n->len = tail;
        mars_chunk_unref(c);
    }
    lr->cur = n;
    lr->start = 0;
    *buf = (char *)n->data + n->len;
    *len = n->cap - n->len;
    return 0;
}

int mars_lines_commit(struct mars_lines *lr, size_t n, struct mars_batch **bp, uint32_t cap)
{
    struct mars_chunk *c = lr->cur;
    c->len += (uint32_t)n;
    int rc = mars_cutter_run(&lr->cut, c, &lr->start, lr->start + lr->scanned, c->len, bp, cap,
                             mars_wall_ns());
    lr->scanned = c->len - lr->start;
    return rc;
}

int mars_lines_eof(struct mars_lines *lr, struct mars_batch **bp, uint32_t cap)
{
    struct mars_chunk *c = lr->cur;
    if (!c || c->len == lr->start || lr->cut.skipping)
        return 0;
    int rc = mars_cutter_emit(&lr->cut, c, lr->start, c->len - lr->start, MARS_EVF_PARTIAL, bp, cap,
                              mars_wall_ns());
    lr->start = c->len;
    lr->scanned = 0;
    return rc;
}
