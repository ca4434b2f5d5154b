/*
 * capture.c - the `capture` sink for runtime tests (see capture.h). Messages are copied
 * into a global store under a mutex, since sinks run on worker threads and the test reads
 * from its own.
 */
#include "capture.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/diag.h"
#include "core/ev.h"
#include "core/log.h"
#include "model/encode.h"
#include "component.h"
#include "config/registry.h"
#include "control/components.h"

#define MAX_HELD 256 /* request.concurrency's maximum */

struct capture_conf {
    bool block;
    int64_t fail_first;
    int encoding; /* enum mars_encoding: text keeps messages, json whole events */
    int64_t stall;
    int64_t retry_after;
    bool reject;
    int64_t dead_letter_every;
};

static const struct mars_opt capture_options[] = {
    {.name = "block",
     .type = MARS_OPT_BOOL,
     .offset = offsetof(struct capture_conf, block),
     .def = "false",
     .desc = "Hold every request until the test releases it."},
    {.name = "fail_first",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct capture_conf, fail_first),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .desc = "Answer RETRY to this many requests first."},
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct capture_conf, encoding),
     .def = "text",
     .choices = mars_encoding_names,
     .desc = "What is kept per event: text (the message) or json (the encoded event)."},
    {.name = "stall",
     .type = MARS_OPT_DURATION,
     .offset = offsetof(struct capture_conf, stall),
     .def = "0s",
     .desc = "Block the worker thread this long in the first request (a stuck "
             "event loop, for /healthz)."},
    {.name = "retry_after",
     .type = MARS_OPT_DURATION,
     .offset = offsetof(struct capture_conf, retry_after),
     .def = "0s",
     .desc = "With fail_first: the Retry-After passed on with each RETRY."},
    {.name = "reject",
     .type = MARS_OPT_BOOL,
     .offset = offsetof(struct capture_conf, reject),
     .def = "false",
     .desc = "Answer REJECTED to every request (a peer refusing for good)."},
    {.name = "dead_letter_every",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct capture_conf, dead_letter_every),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .desc = "Refuse every Nth event of a request (the rest is kept): dead-lettered and "
             "counted as rejected."},
    {.name = NULL},
};

#define MAX_STORES 16

struct store {
    char id[64];
    char **msgs;
    size_t n, cap;
    uint64_t requests;
    size_t held;
    bool unblock;
    bool failing;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct store stores[MAX_STORES];

static struct store *find(const char *id, bool create)
{
    for (int i = 0; i < MAX_STORES; i++)
        if (strcmp(stores[i].id, id) == 0)
            return &stores[i];
    if (!create)
        return NULL;
    for (int i = 0; i < MAX_STORES; i++) {
        if (!stores[i].id[0]) {
            snprintf(stores[i].id, sizeof(stores[i].id), "%s", id);
            return &stores[i];
        }
    }
    return NULL;
}

struct capture {
    struct mars_sink *sink;
    const struct capture_conf *conf;
    struct mars_sink_req *held[MAX_HELD]; /* blocking mode: requests not answered yet */
    size_t nheld;
    struct mars_ev_op poll; /* blocking mode: re-checks the unblock flag */
    bool polling;
    int64_t failed;
    bool stalled;
};

/* One event as kept: its message, or (encoding json) its JSON encoding. */
static char *event_copy(const struct capture_conf *conf, const struct mars_event *ev)
{
    if (conf->encoding == MARS_ENC_TEXT)
        return strndup(ev->msg.ptr, ev->msg.len);
    struct mars_encoder e = {0};
    char *out = NULL;
    if (mars_encode_json_event(&e, ev) == 0)
        out = strndup(e.out, e.out_len);
    mars_encoder_fini(&e);
    return out;
}

static void store_request(struct mars_sink *s, const struct mars_sink_req *r)
{
    const struct capture_conf *conf = mars_sink_conf(s);
    pthread_mutex_lock(&lock);
    struct store *st = find(mars_sink_id(s), true);
    for (uint32_t b = 0; st && b < r->n; b++) {
        for (uint32_t i = 0; i < r->batches[b]->n; i++) {
            const struct mars_event *ev = &r->batches[b]->ev[i];
            if (st->n == st->cap) {
                st->cap = st->cap ? st->cap * 2 : 64;
                st->msgs = realloc(st->msgs, st->cap * sizeof(*st->msgs));
            }
            st->msgs[st->n++] = event_copy(conf, ev);
        }
    }
    if (st)
        st->requests++;
    pthread_mutex_unlock(&lock);
}

static void on_poll(struct mars_ev_op *op, int res)
{
    struct capture *c = op->data;
    c->polling = false;
    pthread_mutex_lock(&lock);
    struct store *st = find(mars_sink_id(c->sink), true);
    bool go = st->unblock || res == -ECANCELED;
    if (go)
        st->held = 0;
    pthread_mutex_unlock(&lock);
    if (!go) {
        mars_ev_prep_timer(&c->poll, 1000000, on_poll, c);
        c->polling = mars_ev_submit(mars_sink_loop(c->sink), &c->poll) == 0;
        return;
    }
    size_t n = c->nheld;
    c->nheld = 0;
    for (size_t i = 0; i < n; i++) {
        struct mars_sink_req *r = c->held[i];
        if (res == -ECANCELED) {
            mars_sink_done(c->sink, r, MARS_SINK_ABORTED, 0);
            continue;
        }
        store_request(c->sink, r);
        mars_sink_done(c->sink, r, MARS_SINK_OK, r->bytes);
    }
}

static bool store_failing(const char *id)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, false);
    bool failing = st && st->failing;
    pthread_mutex_unlock(&lock);
    return failing;
}

static void capture_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct capture *c = mars_sink_state(s);
    if (c->conf->stall > 0 && !c->stalled) {
        struct timespec ts = {c->conf->stall / 1000000000, c->conf->stall % 1000000000};
        c->stalled = true;
        nanosleep(&ts, NULL); /* on purpose: the loop stops turning */
    }
    if (store_failing(mars_sink_id(s))) {
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    if (c->failed < c->conf->fail_first) {
        c->failed++;
        r->retry_after_ns = c->conf->retry_after;
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    if (c->conf->reject) {
        mars_sink_done(s, r, MARS_SINK_REJECTED, 0);
        return;
    }
    if (c->conf->block) {
        pthread_mutex_lock(&lock);
        struct store *st = find(mars_sink_id(s), true);
        bool blocked = !st->unblock;
        if (blocked)
            st->held++;
        pthread_mutex_unlock(&lock);
        if (blocked && c->nheld < MAX_HELD) {
            c->held[c->nheld++] = r;
            if (!c->polling) {
                mars_ev_prep_timer(&c->poll, 1000000, on_poll, c);
                c->polling = mars_ev_submit(mars_sink_loop(s), &c->poll) == 0;
            }
            return;
        }
    }
    if (c->conf->dead_letter_every > 0) {
        uint64_t k = (uint64_t)c->conf->dead_letter_every;
        for (uint64_t i = k - 1; i < r->events; i += k) {
            mars_sink_dead_letter(s, r, i);
            r->rejected_events++;
        }
    }
    store_request(s, r);
    mars_sink_done(s, r, MARS_SINK_OK, r->bytes);
}

static void capture_abort(struct mars_sink *s)
{
    struct capture *c = mars_sink_state(s);
    if (c->polling)
        mars_ev_cancel(mars_sink_loop(s), &c->poll);
}

static int capture_init(struct mars_sink *s)
{
    struct capture *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->sink = s;
    c->conf = mars_sink_conf(s);
    mars_sink_set_state(s, c);
    return 0;
}

static void capture_destroy(struct mars_sink *s)
{
    free(mars_sink_state(s));
}

static const struct mars_component_desc capture_desc = {
    .name = "capture",
    .description = "Test sink: keeps every message in memory for the test to read.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .flags = MARS_DESC_TEST_ONLY,
    .options = capture_options,
    .conf_size = sizeof(struct capture_conf),
    .sink = {.init = capture_init,
             .write = capture_write,
             .abort = capture_abort,
             .destroy = capture_destroy},
};

void mars_capture_setup(void)
{
    mars_components_register();
    mars_registry_add(&capture_desc);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_STORES; i++) {
        for (size_t k = 0; k < stores[i].n; k++)
            free(stores[i].msgs[k]);
        free(stores[i].msgs);
        memset(&stores[i], 0, sizeof(stores[i]));
    }
    pthread_mutex_unlock(&lock);
}

size_t mars_capture_count(const char *id)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, false);
    size_t n = st ? st->n : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

const char *mars_capture_get(const char *id, size_t i)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, false);
    const char *m = st && i < st->n ? st->msgs[i] : NULL;
    pthread_mutex_unlock(&lock);
    return m;
}

size_t mars_capture_held(const char *id)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, false);
    size_t n = st ? st->held : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

void mars_capture_unblock(const char *id)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, true);
    if (st)
        st->unblock = true;
    pthread_mutex_unlock(&lock);
}

void mars_capture_fail(const char *id, bool failing)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, true);
    if (st)
        st->failing = failing;
    pthread_mutex_unlock(&lock);
}

uint64_t mars_capture_requests(const char *id)
{
    pthread_mutex_lock(&lock);
    struct store *st = find(id, false);
    uint64_t n = st ? st->requests : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

int mars_test_run(const char *yaml, unsigned workers, const char *stats_of, struct mars_stats *st)
{
    struct mars_diag diag;
    struct mars_config *cfg = NULL;
    mars_diag_init(&diag);
    if (mars_config_load_string("test.yaml", yaml, &cfg, &diag)) {
        mars_diag_print(&diag, stderr);
        mars_diag_fini(&diag);
        return -EINVAL;
    }
    mars_diag_fini(&diag);
    struct mars_engine_opts opts = {.workers = workers};
    struct mars_engine *e = mars_engine_create(cfg, &opts);
    int rc = e ? mars_engine_run(e) : -EIO;
    if (e && stats_of && st) {
        int idx = mars_config_find(cfg, stats_of);
        if (idx >= 0)
            mars_engine_node_stats(e, (uint32_t)idx, st);
    }
    mars_engine_destroy(e);
    mars_config_destroy(cfg);
    return rc;
}
