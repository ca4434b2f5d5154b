/*
 * lines.c - zero-copy line slicing over chunks (see lines.h).
 *
 * Invariants: bytes [start, cur->len) of the current chunk are the unfinished line;
 * [start, start + scanned) hold no delimiter. A chunk is replaced when its free tail is
 * smaller than a quarter of it: the unfinished line moves to the new chunk (a bigger one,
 * up to max_line, when the line alone fills a chunk).
 */
#include "pipeline/lines.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

const char *const mars_oversize_names[] = {"split", "truncate", NULL};

void mars_lines_init(struct mars_lines *lr, struct mars_source *src, size_t max_line,
                     int oversize, char delim)
{
    *lr = (struct mars_lines){.src = src, .max_line = max_line, .oversize = oversize,
                              .delim = delim};
}

void mars_lines_fini(struct mars_lines *lr)
{
    if (lr->cur)
        mars_chunk_unref(lr->cur);
    lr->cur = NULL;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int emit_line(struct mars_lines *lr, struct mars_batch **bp, uint32_t cap,
                     uint32_t off, uint32_t len, uint8_t flags, int64_t now)
{
    if (!*bp) {
        *bp = mars_source_batch(lr->src, cap);
        if (!*bp)
            return -ENOMEM;
    }
    struct mars_batch *b = *bp;
    if (mars_batch_hold_chunk(b, lr->cur))
        return -ENOMEM;
    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    ev->msg.ptr = (const char *)lr->cur->data + off;
    ev->msg.len = len;
    ev->flags = flags;
    ev->ts_ns = now;
    ev->source = b->source;
    b->bytes += len;
    lr->lines++;
    return 0;
}

static void count_oversize(struct mars_lines *lr)
{
    mars_stat_add(&mars_source_stats(lr->src)->errors[MARS_ERR_OVERSIZE], 1);
    MARS_LOG_RL(MARS_LOG_WARN, mars_source_id(lr->src),
                "line longer than max_line_bytes (%zu): %s", lr->max_line,
                lr->oversize == MARS_OVERSIZE_SPLIT ? "split" : "truncated");
}

int mars_lines_space(struct mars_lines *lr, char **buf, size_t *len)
{
    struct mars_chunk *c = lr->cur;
    if (c && c->cap - c->len >= c->cap / 4) {
        *buf = (char *)c->data + c->len;
        *len = c->cap - c->len;
        return 0;
    }
    uint32_t tail = c ? c->len - lr->start : 0;
    size_t want = tail * 2 > lr->max_line ? lr->max_line + lr->max_line / 4 : (size_t)tail * 2;
    struct mars_chunk *n = mars_source_chunk(lr->src, want);
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
    int64_t now = wall_ns();
    uint32_t pos = lr->start + lr->scanned;

    c->len += (uint32_t)n;
    while (pos < c->len) {
        const unsigned char *nl = memchr(c->data + pos, lr->delim, c->len - pos);
        uint32_t end = nl ? (uint32_t)(nl - c->data) : c->len;
        uint32_t len = end - lr->start;
        if (!nl && len <= lr->max_line)
            break;
        if (lr->skipping) {
            /* rest of a truncated line: drop through the delimiter */
            lr->skipping = !nl;
            lr->cutting = lr->skipping;
            lr->start = nl ? end + 1 : c->len;
            pos = lr->start;
            continue;
        }
        if (len > lr->max_line) {
            if (!lr->cutting)
                count_oversize(lr); /* once per line, not per piece */
            lr->cutting = true;
            if (emit_line(lr, bp, cap, lr->start, (uint32_t)lr->max_line, MARS_EVF_OVERSIZE, now))
                return -ENOMEM;
            lr->start += (uint32_t)lr->max_line;
            if (lr->oversize == MARS_OVERSIZE_TRUNCATE)
                lr->skipping = true;
            pos = lr->start;
            continue;
        }
        if (emit_line(lr, bp, cap, lr->start, len,
                      (nl ? MARS_EVF_NL_FOLLOWS : 0) | (lr->cutting ? MARS_EVF_OVERSIZE : 0), now))
            return -ENOMEM;
        lr->cutting = false;
        lr->start = nl ? end + 1 : end;
        pos = lr->start;
    }
    lr->scanned = c->len - lr->start;
    return 0;
}

int mars_lines_eof(struct mars_lines *lr, struct mars_batch **bp, uint32_t cap)
{
    struct mars_chunk *c = lr->cur;
    if (!c || c->len == lr->start || lr->skipping)
        return 0;
    int rc = emit_line(lr, bp, cap, lr->start, c->len - lr->start, MARS_EVF_PARTIAL, wall_ns());
    lr->start = c->len;
    lr->scanned = 0;
    return rc;
}
