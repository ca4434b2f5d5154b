/*
 * blackhole.c - the `blackhole` sink: accepts and counts events, writes nothing. For
 * benchmarks and for measuring a pipeline without a peer. `rate` makes it a deliberately
 * slow consumer (events per second), which is how backpressure is exercised on purpose;
 * `print_interval` logs the running count and rate.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/ev.h"
#include "core/log.h"
#include "component.h"

struct blackhole_conf {
    int64_t print_interval;
    double rate;
};

#define OFF(f) offsetof(struct blackhole_conf, f)
static const struct mars_opt blackhole_options[] = {
    {.name = "print_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(print_interval),
     .def = "0s",
     .desc = "Log the events counted so far and their rate this often; 0 never."},
    {.name = "rate",
     .type = MARS_OPT_FLOAT,
     .offset = OFF(rate),
     .def = "0",
     .desc = "Accept at most this many events per second (a slow consumer on purpose); 0 "
             "accepts all at once."},
    {.name = NULL},
};

struct blackhole {
    struct mars_sink *sink;
    const struct blackhole_conf *conf;
    struct mars_ev_op print_op, rate_op;
    bool print_armed, rate_armed;
    struct mars_sink_req *held; /* request waiting out the rate limit */
    uint64_t events, last_events;
    int64_t last_print;
};

static void on_print(struct mars_ev_op *op, int res)
{
    struct blackhole *bh = op->data;
    bh->print_armed = false;
    if (res == -ECANCELED)
        return;
    int64_t now = mars_ev_now(mars_sink_loop(bh->sink));
    double secs = (double)(now - bh->last_print) / 1e9;
    mars_info(mars_sink_id(bh->sink), "%llu events (%.0f/s)", (unsigned long long)bh->events,
              secs > 0 ? (double)(bh->events - bh->last_events) / secs : 0.0);
    bh->last_events = bh->events;
    bh->last_print = now;
    mars_ev_prep_timer(&bh->print_op, bh->conf->print_interval, on_print, bh);
    bh->print_armed = mars_ev_submit(mars_sink_loop(bh->sink), &bh->print_op) == 0;
}

static void on_rate(struct mars_ev_op *op, int res)
{
    struct blackhole *bh = op->data;
    struct mars_sink_req *r = bh->held;
    bh->rate_armed = false;
    bh->held = NULL;
    if (res == -ECANCELED) {
        mars_sink_done(bh->sink, r, MARS_SINK_ABORTED, 0);
        return;
    }
    bh->events += r->events;
    mars_sink_done(bh->sink, r, MARS_SINK_OK, r->bytes);
}

static void blackhole_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct blackhole *bh = mars_sink_state(s);
    if (bh->conf->rate <= 0) {
        bh->events += r->events;
        mars_sink_done(s, r, MARS_SINK_OK, r->bytes);
        return;
    }
    /* hold the request as long as its events take at `rate` */
    bh->held = r;
    mars_ev_prep_timer(&bh->rate_op, (int64_t)((double)r->events * 1e9 / bh->conf->rate), on_rate,
                       bh);
    if (mars_ev_submit(mars_sink_loop(s), &bh->rate_op) != 0) {
        bh->held = NULL;
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    bh->rate_armed = true;
}

static void blackhole_abort(struct mars_sink *s)
{
    struct blackhole *bh = mars_sink_state(s);
    if (bh->rate_armed)
        mars_ev_cancel(mars_sink_loop(s), &bh->rate_op);
    if (bh->print_armed)
        mars_ev_cancel(mars_sink_loop(s), &bh->print_op);
}

static int blackhole_init(struct mars_sink *s)
{
    struct blackhole *bh = calloc(1, sizeof(*bh));
    if (!bh)
        return -ENOMEM;
    bh->sink = s;
    bh->conf = mars_sink_conf(s);
    mars_sink_set_state(s, bh);
    if (bh->conf->print_interval > 0) {
        bh->last_print = mars_ev_now(mars_sink_loop(s));
        mars_ev_prep_timer(&bh->print_op, bh->conf->print_interval, on_print, bh);
        bh->print_armed = mars_ev_submit(mars_sink_loop(s), &bh->print_op) == 0;
    }
    return 0;
}

static void blackhole_destroy(struct mars_sink *s)
{
    free(mars_sink_state(s));
}

const struct mars_component_desc mars_sink_blackhole = {
    .name = "blackhole",
    .description = "Counts events and discards them (benchmarks, dry runs, slow-consumer tests).",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = blackhole_options,
    .conf_size = sizeof(struct blackhole_conf),
    .sink = {.init = blackhole_init,
             .write = blackhole_write,
             .abort = blackhole_abort,
             .destroy = blackhole_destroy},
};
