/*
 * logs.c - container log lines as the runtimes write them (protocols.md §6): the CRI
 * format (containerd, CRI-O) and Docker's json-file, the pod identity in a log path, and
 * the merge of the pieces a runtime splits a long line into.
 *
 * Decoding. A CRI line's message is a slice of the line (no copy); a Docker line is
 * validated by the JSON scanner and its "log" value unescaped into the batch arena. A
 * file's format is decided by its first line ('{' is Docker) and kept. A line that does not
 * decode is never dropped: it is shipped whole as its raw text, without a stream, and
 * counted (malformed).
 *
 * Merging. Pieces of one stream (CRI `P` records, Docker objects whose log does not end in
 * a newline) are collected as slices until the closing piece (`F`, or a log ending in a
 * newline), then copied once into the arena as one event with the first piece's timestamp.
 * A run still open at the end of a batch is not emitted: its raw lines are given back to
 * the file source, which keeps them in the file's carry (unacknowledged, so a restart
 * reads them again) and cuts them again with the next read. So the reassembly buffer is
 * the carry, bounded by max_merge: a run that reaches it is emitted as it stands (flagged
 * oversize, counted) and the rest follows as further events. Events after the start of a
 * given-back run are given back too, so nothing is emitted twice and order is kept.
 *
 * Thread: the worker of the instance that owns the kubernetes_dec; no shared state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "kubernetes_internal.h"
#include "component.h"

/* ---- timestamps ---- */

static bool digits(const char *p, uint32_t n, unsigned *out)
{
    unsigned v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return true;
}

int mars_kubernetes_parse_time(const char *p, uint32_t n, int64_t *ns)
{
    unsigned y, mo, d, h, mi, s, oh = 0, om = 0;
    if (n < 20 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't') || p[13] != ':' ||
        p[16] != ':' || !digits(p, 4, &y) || !digits(p + 5, 2, &mo) || !digits(p + 8, 2, &d) ||
        !digits(p + 11, 2, &h) || !digits(p + 14, 2, &mi) || !digits(p + 17, 2, &s) || mo < 1 ||
        mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    uint32_t i = 19;
    int64_t frac = 0;
    if (p[i] == '.') {
        uint32_t nd = 0;
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++, nd++)
            if (nd < 9)
                frac = frac * 10 + (p[i] - '0');
        if (nd == 0)
            return -EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int sign = 0;
    if (i == n - 1 && (p[i] == 'Z' || p[i] == 'z'))
        sign = 0;
    else if (i + 6 == n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':' &&
             digits(p + i + 1, 2, &oh) && digits(p + i + 4, 2, &om) && oh < 24 && om < 60)
        sign = p[i] == '+' ? 1 : -1;
    else
        return -EINVAL;
    int64_t sec = mars_time_from_civil(y, mo, d, h, mi, s) - sign * (int64_t)(oh * 3600 + om * 60);
    *ns = sec * 1000000000 + frac;
    return 0;
}

/* ---- CRI ---- */

static const char *token_end(const char *p, const char *end)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    return sp ? sp : end;
}

int mars_kubernetes_decode_cri(const char *p, uint32_t n, struct kubernetes_rec *r)
{
    const char *end = p + n, *t = token_end(p, end);
    if (t == end || mars_kubernetes_parse_time(p, (uint32_t)(t - p), &r->ts_ns))
        return -EINVAL;
    const char *s = t + 1, *se = token_end(s, end);
    if (se - s == 6 && memcmp(s, "stdout", 6) == 0)
        r->stream = KUBERNETES_STDOUT;
    else if (se - s == 6 && memcmp(s, "stderr", 6) == 0)
        r->stream = KUBERNETES_STDERR;
    else
        return -EINVAL;
    if (se == end)
        return -EINVAL;
    const char *g = se + 1, *ge = token_end(g, end);
    /* the first tag says partial or full; later tags (after ':') are ignored */
    if (ge == g || (g[0] != 'P' && g[0] != 'F') || (ge - g > 1 && g[1] != ':'))
        return -EINVAL;
    r->partial = g[0] == 'P';
    r->msg = ge < end ? ge + 1 : end;
    r->len = (uint32_t)(end - r->msg);
    return 0;
}

/* ---- Docker json-file ---- */

static bool member(const struct mars_fbuild *fb, const char *key, uint32_t kl,
                   const struct mars_field **out)
{
    uint32_t m = mars_fbuild_find(fb, 0, key, kl);
    if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_STRING)
        return false;
    *out = &fb->v[m];
    return true;
}

int mars_kubernetes_decode_docker(const char *p, uint32_t n, struct mars_fbuild *fb,
                                  struct mars_arena *arena, struct kubernetes_rec *r)
{
    const struct mars_field *log, *stream, *time;
    mars_fbuild_reset(fb, arena);
    if (mars_json_parse(p, n, 8, fb, 0, NULL) != MARS_JSON_OK || !member(fb, "log", 3, &log) ||
        !member(fb, "stream", 6, &stream) || !member(fb, "time", 4, &time) ||
        (time->flags & MARS_FF_ESCAPED) ||
        mars_kubernetes_parse_time(time->value, time->value_len, &r->ts_ns))
        return -EINVAL;
    if (stream->value_len == 6 && memcmp(stream->value, "stdout", 6) == 0)
        r->stream = KUBERNETES_STDOUT;
    else if (stream->value_len == 6 && memcmp(stream->value, "stderr", 6) == 0)
        r->stream = KUBERNETES_STDERR;
    else
        return -EINVAL;
    if (log->flags & MARS_FF_ESCAPED) {
        char *out = mars_arena_alloc(arena, log->value_len ? log->value_len : 1);
        if (!out)
            return -ENOMEM;
        r->len = (uint32_t)mars_json_unescape(log->value, log->value_len, out);
        r->msg = out;
    } else {
        r->msg = log->value;
        r->len = log->value_len;
    }
    r->partial = r->len == 0 || r->msg[r->len - 1] != '\n';
    if (!r->partial)
        r->len--; /* the newline ends the line; it is not part of the message */
    return 0;
}

/* ---- paths ---- */

void mars_kubernetes_path_fini(struct kubernetes_path *p)
{
    free(p->ns);
    free(p->pod);
    free(p->uid);
    free(p->container);
    memset(p, 0, sizeof(*p));
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int mars_kubernetes_path_parse(const char *path, struct kubernetes_path *out)
{
    memset(out, 0, sizeof(*out));
    /* the last three segments: <ns>_<pod>_<uid> / <container> / <restart>.log... */
    const char *seg[3] = {NULL, NULL, NULL}, *end = path + strlen(path);
    const char *q = end;
    for (int k = 2; k >= 0; k--) {
        while (q > path && q[-1] != '/')
            q--;
        seg[k] = q;
        if (k > 0) {
            if (q == path)
                return -EINVAL;
            q--; /* the '/' */
        }
    }
    const char *dir = seg[0], *dir_end = seg[1] - 1, *cont = seg[1], *cont_end = seg[2] - 1;
    const char *u1 = memchr(dir, '_', (size_t)(dir_end - dir)), *u2 = dir_end;
    while (u2 > dir && u2[-1] != '_')
        u2--;
    const char *file = seg[2], *dot = strchr(file, '.');
    unsigned restart;
    if (!u1 || u2 - 1 <= u1 || cont == cont_end || !dot || dot == file || strncmp(dot, ".log", 4) ||
        (dot - file) > 9 || !digits(file, (uint32_t)(dot - file), &restart))
        return -EINVAL;
    out->restart = restart;
    out->ns = dup_n(dir, (size_t)(u1 - dir));
    out->pod = dup_n(u1 + 1, (size_t)(u2 - 1 - (u1 + 1)));
    out->uid = dup_n(u2, (size_t)(dir_end - u2));
    out->container = dup_n(cont, (size_t)(cont_end - cont));
    if (!out->ns || !out->pod || !out->uid || !out->container) {
        mars_kubernetes_path_fini(out);
        return -ENOMEM;
    }
    return 0;
}

/* ---- merging ---- */

void mars_kubernetes_dec_init(struct kubernetes_dec *d, uint64_t max_merge)
{
    memset(d, 0, sizeof(*d));
    d->max_merge = max_merge;
    mars_fbuild_init(&d->fb);
}

void mars_kubernetes_dec_fini(struct kubernetes_dec *d)
{
    mars_fbuild_fini(&d->fb);
    for (int i = 0; i < 2; i++)
        free(d->run[i].pieces);
    free(d->streams);
    memset(d, 0, sizeof(*d));
}

static int run_add(struct kubernetes_run *run, const char *p, uint32_t n)
{
    if (mars_grow(&run->pieces, &run->cap, (size_t)run->n + 1, sizeof(*run->pieces)))
        return -ENOMEM;
    run->pieces[run->n++] = (struct kubernetes_piece){p, n};
    run->bytes += n;
    return 0;
}

/* Output event w of the batch. */
static void put(struct kubernetes_dec *d, struct mars_batch *b, uint32_t w,
                const struct mars_event *e, uint8_t stream)
{
    b->ev[w] = *e;
    d->streams[w] = stream;
}

/* The run's pieces as one event at output index w, in the arena. */
static int run_emit(struct kubernetes_dec *d, struct mars_batch *b, struct kubernetes_run *run,
                    uint32_t w, const struct mars_event *model, uint8_t stream, uint8_t flags)
{
    char *m = mars_arena_alloc(&b->arena, run->bytes ? run->bytes : 1);
    if (!m)
        return -ENOMEM;
    uint64_t at = 0;
    for (uint32_t i = 0; i < run->n; i++) {
        memcpy(m + at, run->pieces[i].p, run->pieces[i].n);
        at += run->pieces[i].n;
    }
    struct mars_event e = *model;
    e.msg = (struct mars_slice){m, (uint32_t)run->bytes};
    e.ts_ns = run->ts_ns;
    /* pieces may come from reads that were not all valid UTF-8: not flagged */
    e.flags = (uint8_t)((e.flags & ~(MARS_EVF_NL_FOLLOWS | MARS_EVF_UTF8)) | flags);
    put(d, b, w, &e, stream);
    d->st.merged++;
    run->n = 0;
    run->bytes = 0;
    return 0;
}

static void run_begin(struct kubernetes_run *run, const struct kubernetes_rec *r, const char *raw,
                      uint32_t w)
{
    run->active = true;
    run->n = 0;
    run->bytes = 0;
    run->ts_ns = r->ts_ns;
    run->raw_start = raw;
    run->out_at = w;
}

/* A decoded record: a whole line, or a piece of its stream's run. Returns the events output
 * (0 or 1; 2 never: a size-bound flush happens only after pieces that output nothing). */
static uint32_t take_record(struct kubernetes_dec *d, struct mars_batch *b, uint32_t w,
                            struct mars_event *e, const struct kubernetes_rec *r)
{
    struct kubernetes_run *run = &d->run[r->stream];
    uint32_t out = 0;
    e->ts_ns = r->ts_ns;
    if (!run->active && !r->partial) {
        /* a CRI message ends where its line did (the newline still follows it) */
        if (r->msg < e->msg.ptr || r->msg + r->len != e->msg.ptr + e->msg.len)
            e->flags &= (uint8_t)~MARS_EVF_NL_FOLLOWS;
        e->msg = (struct mars_slice){r->msg, r->len};
        put(d, b, w, e, r->stream);
        return 1;
    }
    if (!run->active)
        run_begin(run, r, e->msg.ptr, w);
    if (run->bytes + r->len > d->max_merge && run->n > 0) {
        /* the bound: what is there goes now, flagged; the rest follows as its own event */
        if (run_emit(d, b, run, w, e, r->stream, MARS_EVF_OVERSIZE) == 0) {
            out = 1;
            d->st.oversize++;
        }
        run_begin(run, r, e->msg.ptr, w + out);
    }
    if (run_add(run, r->msg, r->len) != 0)
        return out; /* out of memory: the piece is lost, and counted by the caller */
    if (!r->partial) {
        if (run_emit(d, b, run, w + out, e, r->stream, 0) == 0)
            out++;
        run->active = false;
    }
    return out;
}

static int grow_streams(struct kubernetes_dec *d, uint32_t n)
{
    return mars_grow(&d->streams, &d->streams_cap, n, 1);
}

/* `final`: no more pieces will come for the open runs; emit them as they are. */
static uint32_t close_runs(struct kubernetes_dec *d, struct mars_batch *b, uint32_t w,
                           const struct mars_event *model)
{
    for (int s = 0; s < 2; s++) {
        struct kubernetes_run *run = &d->run[s];
        if (run->active && run->n > 0 && grow_streams(d, w + 1) == 0 &&
            run_emit(d, b, run, w, model, (uint8_t)s, MARS_EVF_PARTIAL) == 0)
            w++;
        run->active = false;
    }
    return w;
}

const char *mars_kubernetes_decode_batch(struct kubernetes_dec *d, uint8_t *fmt,
                                         struct mars_batch *b, bool final)
{
    uint32_t w = 0, n = b->n;
    struct mars_event last = {0};
    d->run[0].active = d->run[1].active = false;
    if (grow_streams(d, n + 2))
        return NULL; /* no memory: the lines go on raw (streams unknown) */
    for (uint32_t i = 0; i < n; i++) {
        struct mars_event e = b->ev[i];
        struct kubernetes_rec r;
        int rc = -EINVAL;
        last = e;
        if (*fmt == KUBERNETES_FMT_UNKNOWN && e.msg.len > 0)
            *fmt = e.msg.ptr[0] == '{' ? KUBERNETES_FMT_DOCKER : KUBERNETES_FMT_CRI;
        if (*fmt == KUBERNETES_FMT_CRI)
            rc = mars_kubernetes_decode_cri(e.msg.ptr, e.msg.len, &r);
        else if (*fmt == KUBERNETES_FMT_DOCKER)
            rc = mars_kubernetes_decode_docker(e.msg.ptr, e.msg.len, &d->fb, &b->arena, &r);
        if (rc) {
            d->st.malformed++; /* kept whole, as its raw text */
            put(d, b, w++, &e, KUBERNETES_NO_STREAM);
            continue;
        }
        w += take_record(d, b, w, &e, &r);
    }
    const char *keep = NULL;
    uint32_t cut = w;
    for (int s = 0; s < 2 && !final; s++) {
        const struct kubernetes_run *run = &d->run[s];
        if (run->active && (!keep || run->raw_start < keep)) {
            keep = run->raw_start;
            cut = run->out_at;
        }
    }
    if (final)
        cut = close_runs(d, b, w, &last);
    else
        d->run[0].active = d->run[1].active = false;
    b->n = cut;
    b->bytes = 0;
    for (uint32_t i = 0; i < b->n; i++)
        b->bytes += b->ev[i].msg.len;
    return keep;
}
