/*
 * demo.c - the `demo` source: generates realistic log lines (nginx access, JSON
 * application logs, CRI-wrapped container lines, RFC 5424 syslog, or a mix) at a fixed
 * rate or as fast as the pipeline takes them, for a fixed count or forever. It needs no
 * outside system, so the quickstart and benchmarks run anywhere.
 *
 * How: a timer tick computes how many lines are due (rate x elapsed - made so far, or up to
 * `batch_events` when rate is 0), formats them straight into the source's current chunk
 * from the worker pool and emits them as one batch. Ticks share that chunk until it is full:
 * at a low rate each tick makes a line or two, and a chunk per tick would let a sink that
 * holds those batches (one retrying a dead peer) pin a whole chunk per line until the
 * pool is dry and every path of the worker stalls; the zero-rate mode re-arms a 0 ns timer so other
 * work on the loop keeps its turn. The content is a pure function of `seed` and the line number, so
 * runs are repeatable; timestamps are the wall clock. Backpressure: a paused source stops re-arming
 * its timer and resume() re-arms it; due lines do not pile up meanwhile (the rate clock restarts).
 *
 * Thread: the source's worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ev.h"
#include "core/log.h"
#include "component.h"

enum demo_format { DEMO_NGINX, DEMO_JSON, DEMO_CRI, DEMO_SYSLOG, DEMO_MIXED };
static const char *const format_names[] = {"nginx", "json", "cri", "syslog", "mixed", NULL};

struct demo_conf {
    int format;
    double rate;
    int64_t count;
    int64_t batch_events;
    int64_t seed;
};

#define OFF(f) offsetof(struct demo_conf, f)
static const struct mars_opt demo_options[] = {
    {.name = "format",
     .type = MARS_OPT_ENUM,
     .offset = OFF(format),
     .def = "mixed",
     .choices = format_names,
     .desc = "Kind of lines: nginx access log, JSON app log, CRI container line, RFC 5424 "
             "syslog, or a mix of all four."},
    {.name = "rate",
     .type = MARS_OPT_FLOAT,
     .offset = OFF(rate),
     .def = "10",
     .desc = "Lines per second; 0 generates as fast as the pipeline accepts."},
    {.name = "count",
     .type = MARS_OPT_INT,
     .offset = OFF(count),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .desc = "Lines to generate before the source finishes; 0 never stops."},
    {.name = "batch_events",
     .type = MARS_OPT_INT,
     .offset = OFF(batch_events),
     .def = "1024",
     .min = 1,
     .max = 65536,
     .desc = "Most lines emitted per batch."},
    {.name = "seed",
     .type = MARS_OPT_INT,
     .offset = OFF(seed),
     .def = "1",
     .min = 0,
     .max = INT64_MAX,
     .desc = "Seed of the content generator; equal seeds give equal lines."},
    {.name = NULL},
};

struct demo {
    struct mars_source *src;
    const struct demo_conf *conf;
    struct mars_ev_op timer;
    bool timer_armed, waiting_memory, stopping;
    struct mars_chunk *chunk; /* the one ticks format into (one reference), or NULL */
    uint64_t made;            /* lines generated */
    uint64_t rate_base;       /* lines made when the rate clock (re)started */
    int64_t rate_start;       /* monotonic ns of that restart */
};

static int demo_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct demo_conf *c = conf;
    if (c->rate < 0 || c->rate > 1e9) {
        const struct mars_cfg_node *n = mars_cfg_at(node, "rate", NULL);
        mars_diag_add(diag, n->file, n->line, n->col, "option 'rate': must be between 0 and 1e9");
        return -EINVAL;
    }
    return 0;
}

/* ---- content ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static const char *pick(uint64_t r, const char *const *list, size_t n)
{
    return list[r % n];
}
#define PICK(r, list) pick((r), (list), sizeof(list) / sizeof((list)[0]))

static const char *const paths[] = {
    "/",        "/api/v1/users",      "/api/v1/orders", "/login", "/static/app.js",
    "/healthz", "/api/v1/cart/items", "/search?q=shoes"};
static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "curl/7.88.1", "kube-probe/1.29", "Go-http-client/2.0"};
static const char *const levels[] = {"info", "info", "info", "debug", "warn", "error"};
static const char *const services[] = {"checkout", "payments", "catalog", "auth"};
static const char *const messages[] = {
    "order placed",   "payment authorised",         "cache miss for sku A-17",
    "user logged in", "upstream timeout, retrying", "inventory reserved"};
static const int statuses[] = {200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 503};

static int fmt_nginx(char *p, size_t n, uint64_t r, const struct tm *tm)
{
    char when[40];
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", tm);
    return snprintf(p, n, "10.%u.%u.%u - - [%s] \"%s %s HTTP/1.1\" %d %u \"-\" \"%s\"",
                    (unsigned)(r >> 8 & 255), (unsigned)(r >> 16 & 255), (unsigned)(r >> 24 & 255),
                    when, PICK(r >> 3, methods), PICK(r >> 7, paths),
                    statuses[(r >> 11) % (sizeof(statuses) / sizeof(statuses[0]))],
                    (unsigned)(r >> 32 & 0xffff), PICK(r >> 17, agents));
}

static int fmt_json(char *p, size_t n, uint64_t r, const char *iso, uint64_t line)
{
    return snprintf(p, n,
                    "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"%s\",\"msg\":\"%s\","
                    "\"order_id\":%llu,\"latency_ms\":%u.%u,\"user\":{\"id\":%u,"
                    "\"country\":\"%s\"},\"tags\":[\"demo\",\"seq-%llu\"]}",
                    iso, PICK(r >> 5, levels), PICK(r >> 9, services), PICK(r >> 13, messages),
                    (unsigned long long)(r >> 20 & 0xfffff), (unsigned)(r >> 40 & 511),
                    (unsigned)(r >> 50 & 9), (unsigned)(r >> 24 & 0xffff), (r & 1) ? "DE" : "CN",
                    (unsigned long long)line);
}

static int format_line(struct demo *d, char *p, size_t n, uint64_t line, int64_t now_ns)
{
    uint64_t r = mix64((uint64_t)d->conf->seed * 0x9e3779b97f4a7c15ULL + line);
    time_t sec = (time_t)(now_ns / 1000000000);
    struct tm tm;
    char iso[48], js[600];
    int fmt = d->conf->format == DEMO_MIXED ? (int)(line % 4) : d->conf->format;

    gmtime_r(&sec, &tm);
    size_t k = strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso + k, sizeof(iso) - k, ".%09lldZ", (long long)(now_ns % 1000000000));
    switch (fmt) {
    case DEMO_NGINX:
        return fmt_nginx(p, n, r, &tm);
    case DEMO_JSON:
        return fmt_json(p, n, r, iso, line);
    case DEMO_CRI:
        fmt_json(js, sizeof(js), r, iso, line);
        return snprintf(p, n, "%s %s F %s", iso, (r & 4) ? "stderr" : "stdout", js);
    default:
        return snprintf(p, n, "<%u>1 %s node-%u %s %u - - %s", (unsigned)(r % 192), iso,
                        (unsigned)(r >> 4 & 7), PICK(r >> 9, services), (unsigned)(r >> 20 & 32767),
                        PICK(r >> 13, messages));
    }
}

/* ---- life cycle ---- */

static void on_tick(struct mars_ev_op *op, int res);

static void arm(struct demo *d, int64_t ns)
{
    if (d->timer_armed)
        return;
    mars_ev_prep_timer(&d->timer, ns, on_tick, d);
    if (mars_ev_submit(mars_source_loop(d->src), &d->timer) == 0)
        d->timer_armed = true;
}

static uint64_t lines_due(struct demo *d, int64_t now)
{
    uint64_t due = d->conf->batch_events;
    if (d->conf->rate > 0) {
        double want = d->conf->rate * (double)(now - d->rate_start) / 1e9;
        uint64_t total = d->rate_base + (uint64_t)want;
        due = total > d->made ? total - d->made : 0;
        if (due > (uint64_t)d->conf->batch_events)
            due = d->conf->batch_events;
    }
    if (d->conf->count > 0 && d->made + due > (uint64_t)d->conf->count)
        due = (uint64_t)d->conf->count - d->made;
    return due;
}

static void demo_acked(struct mars_batch *b, bool delivered)
{
    struct demo *d = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(d->src)->acked_events, b->ack.a);
}

#define DEMO_LINE_ROOM 1024 /* free bytes a chunk needs for one more line */

/* The chunk to format into: the current one while it has room for a line, else a new one
 * (the full one is let go first, so its memory can come back). NULL when the pool is dry. */
static struct mars_chunk *current_chunk(struct demo *d)
{
    if (d->chunk && d->chunk->cap - d->chunk->len > DEMO_LINE_ROOM)
        return d->chunk;
    if (d->chunk)
        mars_chunk_unref(d->chunk);
    d->chunk = mars_source_chunk(d->src, 0);
    return d->chunk;
}

static void drop_chunk(struct demo *d)
{
    if (d->chunk)
        mars_chunk_unref(d->chunk);
    d->chunk = NULL;
}

/* Formats up to `due` lines into the current chunk and emits them. Returns lines made, or -1
 * when memory is exhausted (resume() will be called). */
static int64_t generate(struct demo *d, uint64_t due, int64_t wall)
{
    struct mars_chunk *c = current_chunk(d);
    if (!c)
        return -1;
    struct mars_batch *b = mars_source_batch(d->src, (uint32_t)due);
    if (!b || mars_batch_hold_chunk(b, c)) {
        if (b)
            mars_batch_release(b);
        return 0;
    }
    uint64_t made = 0;
    while (made < due && c->cap - c->len > DEMO_LINE_ROOM) {
        char *p = (char *)c->data + c->len;
        int n = format_line(d, p, c->cap - c->len - 1, d->made + made, wall);
        struct mars_event *ev = mars_batch_push(b);
        if (n < 0 || !ev)
            break;
        p[n] = '\n';
        ev->msg = (struct mars_slice){p, (uint32_t)n};
        ev->ts_ns = wall;
        ev->flags = MARS_EVF_NL_FOLLOWS;
        ev->source = b->source;
        c->len += (uint32_t)n + 1;
        b->bytes += (uint64_t)n;
        made++;
    }
    b->ack = (struct mars_batch_ack){.fn = demo_acked, .ctx = d, .a = made};
    d->made += made;
    mars_source_emit(d->src, b);
    return (int64_t)made;
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct demo *d = op->data;
    int64_t now = mars_ev_now(mars_source_loop(d->src));

    d->timer_armed = false;
    /* a cancel can lose the race with the timer: stopping, not the result, decides */
    if (res == -ECANCELED || d->stopping) {
        drop_chunk(d);
        mars_source_finished(d->src);
        return;
    }
    if (mars_source_paused(d->src))
        return;
    uint64_t due = lines_due(d, now);
    if (due > 0 && generate(d, due, wall_now()) < 0) {
        d->waiting_memory = true;
        return;
    }
    if (d->conf->count > 0 && d->made >= (uint64_t)d->conf->count) {
        drop_chunk(d);
        mars_source_finished(d->src);
        return;
    }
    if (mars_source_paused(d->src))
        return;
    if (d->conf->rate <= 0) {
        arm(d, 0);
    } else {
        /* next tick when the next line is due, at most 100 ms and at least 1 ms away */
        int64_t step = (int64_t)(1e9 / d->conf->rate);
        arm(d, step < 1000000 ? 1000000 : step > 100000000 ? 100000000 : step);
    }
}

static int demo_init(struct mars_source *s)
{
    struct demo *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->src = s;
    d->conf = mars_source_conf(s);
    mars_source_set_state(s, d);
    return 0;
}

static void restart_rate_clock(struct demo *d)
{
    d->rate_start = mars_ev_now(mars_source_loop(d->src));
    d->rate_base = d->made;
}

static int demo_start(struct mars_source *s)
{
    struct demo *d = mars_source_state(s);
    if (mars_source_once(s) && d->conf->count == 0) {
        mars_error(mars_source_id(s), "--once needs a demo source with a count (count: 0 "
                                      "never ends)");
        return -EINVAL;
    }
    restart_rate_clock(d);
    arm(d, 0);
    return d->timer_armed ? 0 : -EIO;
}

static void demo_resume(struct mars_source *s)
{
    struct demo *d = mars_source_state(s);
    d->waiting_memory = false;
    restart_rate_clock(d);
    arm(d, 0);
}

static void demo_stop(struct mars_source *s)
{
    struct demo *d = mars_source_state(s);
    d->stopping = true;
    if (d->timer_armed) {
        mars_ev_cancel(mars_source_loop(s), &d->timer);
    } else {
        drop_chunk(d);
        mars_source_finished(s);
    }
}

static void demo_destroy(struct mars_source *s)
{
    struct demo *d = mars_source_state(s);
    drop_chunk(d);
    free(d);
}

const struct mars_component_desc mars_source_demo = {
    .name = "demo",
    .description = "Generates realistic nginx, JSON, CRI and syslog lines for trying mars out.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .options = demo_options,
    .conf_size = sizeof(struct demo_conf),
    .check = demo_check,
    .source = {.init = demo_init,
               .start = demo_start,
               .resume = demo_resume,
               .stop = demo_stop,
               .destroy = demo_destroy},
};
