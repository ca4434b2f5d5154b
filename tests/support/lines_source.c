/*
 * lines_source.c - the test-only `lines` source (see lines_source.h).
 *
 * A timer drives it: each tick copies the next batch_size lines into one chunk (each
 * followed by '\n', events flagged MARS_EVF_NL_FOLLOWS like lines cut from a read) and
 * emits them; after the last batch the source finishes. stop() cancels the timer, and the
 * cancelled callback finishes the source.
 *
 * Thread: the source's worker.
 */
#include "lines_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "component.h"
#include "engine/instance.h"
#include "config/registry.h"
#include "control/components.h"

struct lines_conf {
    struct mars_strlist lines;
    int64_t batch_size;
    int64_t interval;
    int64_t ts_ns;
};

#define OFF(f) offsetof(struct lines_conf, f)
static const struct mars_opt lines_options[] = {
    {.name = "lines",
     .type = MARS_OPT_LIST,
     .offset = OFF(lines),
     .flags = MARS_OPT_REQUIRED,
     .desc = "The lines to emit, in order."},
    {.name = "batch_size",
     .type = MARS_OPT_INT,
     .offset = OFF(batch_size),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .desc = "Lines per batch; 0 puts all lines in one batch."},
    {.name = "interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(interval),
     .def = "0s",
     .desc = "Pause between batches."},
    {.name = "ts_ns",
     .type = MARS_OPT_INT,
     .offset = OFF(ts_ns),
     .def = "1704067200000000000",
     .min = 0,
     .max = INT64_MAX,
     .desc = "Timestamp of every event, in ns since the epoch."},
    {.name = NULL},
};

struct lines_src {
    struct mars_source *src;
    const struct lines_conf *conf;
    struct mars_ev_op timer;
    bool armed, stopping, done;
    size_t next;
};

static void lines_acked(struct mars_batch *b, bool delivered)
{
    struct lines_src *ls = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(ls->src)->acked_events, b->ack.a);
}

static void finish(struct lines_src *ls)
{
    if (!ls->done) {
        ls->done = true;
        mars_source_finished(ls->src);
    }
}

static void on_tick(struct mars_ev_op *op, int res);

static void arm(struct lines_src *ls, int64_t ns)
{
    mars_ev_prep_timer(&ls->timer, ns, on_tick, ls);
    ls->armed = mars_ev_submit(mars_source_loop(ls->src), &ls->timer) == 0;
    if (!ls->armed)
        finish(ls);
}

/* Emits the next batch. */
static void emit_batch(struct lines_src *ls)
{
    const struct mars_strlist *l = &ls->conf->lines;
    size_t n = ls->conf->batch_size ? (size_t)ls->conf->batch_size : l->n, bytes = 0;
    if (ls->next + n > l->n)
        n = l->n - ls->next;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(l->v[ls->next + i]) + 1;
    struct mars_chunk *c = mars_source_chunk(ls->src, bytes);
    struct mars_batch *b = mars_source_batch(ls->src, (uint32_t)n);
    if (!c || !b || mars_batch_hold_chunk(b, c)) {
        if (c)
            mars_chunk_unref(c);
        if (b)
            mars_batch_release(b);
        return; /* retried on the next tick */
    }
    for (size_t i = 0; i < n; i++) {
        const char *line = l->v[ls->next + i];
        size_t len = strlen(line);
        char *dst = (char *)c->data + c->len;
        memcpy(dst, line, len);
        dst[len] = '\n';
        c->len += (uint32_t)len + 1;
        struct mars_event *ev = mars_batch_push(b);
        ev->msg = (struct mars_slice){dst, (uint32_t)len};
        ev->ts_ns = ls->conf->ts_ns;
        ev->flags = MARS_EVF_NL_FOLLOWS;
        ev->source = b->source;
        b->bytes += len;
    }
    mars_chunk_unref(c); /* the batch holds it */
    ls->next += n;
    b->ack = (struct mars_batch_ack){.fn = lines_acked, .ctx = ls, .a = b->n};
    mars_source_emit(ls->src, b);
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct lines_src *ls = op->data;
    ls->armed = false;
    if (res == -ECANCELED || ls->stopping) {
        finish(ls);
        return;
    }
    if (!mars_source_paused(ls->src))
        emit_batch(ls);
    if (ls->next >= ls->conf->lines.n)
        finish(ls);
    else
        arm(ls, ls->conf->interval);
}

static int lines_init(struct mars_source *s)
{
    struct lines_src *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    ls->src = s;
    ls->conf = mars_source_conf(s);
    mars_source_set_state(s, ls);
    return 0;
}

static int lines_start(struct mars_source *s)
{
    arm(mars_source_state(s), 0);
    return 0;
}

static void lines_resume(struct mars_source *s)
{
    struct lines_src *ls = mars_source_state(s);
    if (!ls->armed && !ls->done)
        arm(ls, 0);
}

static void lines_stop(struct mars_source *s)
{
    struct lines_src *ls = mars_source_state(s);
    ls->stopping = true;
    if (ls->armed)
        mars_ev_cancel(mars_source_loop(s), &ls->timer);
    else
        finish(ls);
}

static void lines_destroy(struct mars_source *s)
{
    free(mars_source_state(s));
}

static const struct mars_component_desc lines_desc = {
    .name = "lines",
    .description = "Test source: emits the lines of its `lines` option.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .flags = MARS_DESC_TEST_ONLY,
    .options = lines_options,
    .conf_size = sizeof(struct lines_conf),
    .source = {.init = lines_init,
               .start = lines_start,
               .resume = lines_resume,
               .stop = lines_stop,
               .destroy = lines_destroy},
};

void mars_lines_source_setup(void)
{
    mars_components_register();
    mars_registry_add(&lines_desc);
}
