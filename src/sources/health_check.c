/*
 * health_check.c - the `health_check` source: probes services on an interval and reports
 * what it finds, as events and on the admin API.
 *
 * Each entry of `checks` is one probe (http, tcp, exec or pidfile: health_probe.c) with
 * its own interval and timeout. Results are debounced: a check becomes UP after
 * healthy_threshold consecutive successes and DOWN after unhealthy_threshold consecutive
 * failures (it starts UNKNOWN), so one lost packet does not flap it. After every probe the
 * source emits metric events (mars_health_check_up, mars_health_check_duration_seconds,
 * mars_health_check_consecutive_failures, labelled check and type) and, on a state
 * change, a log event saying what changed and why, with the fields check, type and status. The
 * state is also published under /health/<name> on the admin API (200 {"status":"UP"}, 503
 * {"status":"DOWN",...}), for Kubernetes probes and Eureka.
 *
 * Schedule: a probe starts `interval` after the previous one started (at once for the
 * first); a probe never overlaps itself (one that outlasts the interval delays the next). Under
 * backpressure the metric events of a probe are skipped (the next probe's supersede them);
 * state-change log events are always sent. With --once every check runs once and the source
 * finishes.
 *
 * Thread: the source's worker (sources live on one worker, so each check runs once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/log.h"
#include "component.h"
#include "sources/health_probe.h"

static const char *const type_names[] = {"http", "tcp", "exec", "pidfile", NULL};

#define COFF(f) offsetof(struct health_probe_conf, f)
static const struct mars_opt check_options[] = {
    {.name = "name",
     .type = MARS_OPT_STRING,
     .offset = COFF(name),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Name of the check: the `check` label and the /health/<name> path."},
    {.name = "type",
     .type = MARS_OPT_ENUM,
     .offset = COFF(type),
     .def = "http",
     .choices = type_names,
     .desc = "http (GET url), tcp (connect to address), exec (run command), pidfile (the "
             "process in path is alive)."},
    {.name = "url",
     .type = MARS_OPT_STRING,
     .offset = COFF(url),
     .desc = "http: the URL to GET, http:// or https://."},
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = COFF(address),
     .desc = "tcp: host:port to connect to."},
    {.name = "command",
     .type = MARS_OPT_LIST,
     .offset = COFF(command),
     .desc = "exec: program and arguments (no shell); exit status 0 means healthy."},
    {.name = "path",
     .type = MARS_OPT_STRING,
     .offset = COFF(path),
     .desc = "pidfile: file holding the process id to check."},
    {.name = "expect_status",
     .type = MARS_OPT_STRING,
     .offset = COFF(expect_status),
     .def = "200-399",
     .desc = "http: healthy status codes, one (200) or a range (200-299)."},
    {.name = "expect_body",
     .type = MARS_OPT_STRING,
     .offset = COFF(expect_body),
     .desc = "http: text the response body must contain to be healthy."},
    {.name = "headers",
     .type = MARS_OPT_MAP,
     .offset = COFF(headers),
     .desc = "http: request headers as name: value, e.g. {Host: shop.local} for a virtual "
             "host behind the address in url."},
    {.name = "interval",
     .type = MARS_OPT_DURATION,
     .offset = COFF(interval),
     .def = "10s",
     .min = 10000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "Time between the starts of two probes."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = COFF(timeout),
     .def = "2s",
     .min = 1000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "A probe that takes longer fails (an exec probe's process group is killed)."},
    {.name = "healthy_threshold",
     .type = MARS_OPT_INT,
     .offset = COFF(healthy_threshold),
     .def = "1",
     .min = 1,
     .max = 1000,
     .desc = "Consecutive successes that make the check UP."},
    {.name = "unhealthy_threshold",
     .type = MARS_OPT_INT,
     .offset = COFF(unhealthy_threshold),
     .def = "3",
     .min = 1,
     .max = 1000,
     .desc = "Consecutive failures that make the check DOWN."},
    {.name = "max_output",
     .type = MARS_OPT_SIZE,
     .offset = COFF(max_output),
     .def = "64KiB",
     .min = 64,
     .max = 16 << 20,
     .desc = "http: most body bytes kept for expect_body; exec: most output kept (the rest "
             "is drained)."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = COFF(tls),
     .sub = mars_tls_options,
     .desc = "http: TLS for https:// URLs (CA, client certificate, verify)."},
    {.name = NULL},
};

struct health_check_conf {
    struct mars_seclist checks;
};

static const struct mars_opt health_check_options[] = {
    {.name = "checks",
     .type = MARS_OPT_SECTION_LIST,
     .offset = offsetof(struct health_check_conf, checks),
     .flags = MARS_OPT_REQUIRED,
     .sub = check_options,
     .sub_size = sizeof(struct health_probe_conf),
     .desc = "The checks to run, each a mapping of the options below."},
    {.name = NULL},
};

struct health_check {
    struct mars_source *src;
    const struct health_check_conf *conf;
    struct health_probe *probes;
    size_t n, done_once;
    bool stopping, finished;
    struct mars_fbuild fb; /* the state-change event's fields */
};

static const struct health_probe_conf *check_at(const struct health_check_conf *c, size_t i)
{
    return &((const struct health_probe_conf *)c->checks.items)[i];
}

/* ---- config ---- */

static int check_one(const struct health_check_conf *c, size_t i, char *why, size_t len)
{
    const struct health_probe_conf *k = check_at(c, i);
    struct health_probe scratch = {0};
    if (!k->name || !*k->name || strchr(k->name, '/') || strlen(k->name) > 100) {
        snprintf(why, len, "name must be 1-100 characters without '/'");
        return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(check_at(c, j)->name, k->name) == 0) {
            snprintf(why, len, "name '%s' is used by another check", k->name);
            return -EINVAL;
        }
    }
    return mars_health_probe_prepare(&scratch, k, false, why, len);
}

static int health_check_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct health_check_conf *c = conf;
    int rc = 0;
    char why[200];
    for (size_t i = 0; i < c->checks.n; i++) {
        if (check_one(c, i, why, sizeof(why)) == 0)
            continue;
        const struct mars_cfg_node *at = mars_cfg_item_at(node, "checks", i);
        mars_diag_add(diag, at->file, at->line, at->col, "check %zu: %s", i + 1, why);
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->checks.n; i++) {
        const struct mars_cfg_node *at = mars_cfg_item_at(node, "checks", i);
        if (mars_netconf_check(&check_at(c, i)->tls, NULL, at, diag))
            rc = -EINVAL;
    }
    if (c->checks.n == 0) {
        mars_diag_add(diag, node->file, node->line, node->col, "'checks' needs at least one check");
        rc = -EINVAL;
    }
    return rc;
}

/* ---- events ---- */

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void health_check_acked(struct mars_batch *b, bool delivered)
{
    struct health_check *hc = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(hc->src)->acked_events, b->ack.a);
}

/* The state-change event: a line for people, and the fields check, type and status
 * (UP or DOWN) for components that act on it (the eureka sink). */
static int push_log(struct health_check *hc, struct mars_batch *b, const struct health_probe *p,
                    int64_t ts)
{
    char line[512];
    int n;
    if (p->state == MARS_HEALTH_UP)
        n = snprintf(line, sizeof(line),
                     "health check '%s' (%s) is UP (%u consecutive "
                     "successes)",
                     p->conf->name, type_names[p->conf->type], p->successes);
    else
        n = snprintf(line, sizeof(line),
                     "health check '%s' (%s) is DOWN: %s (%u consecutive "
                     "failures)",
                     p->conf->name, type_names[p->conf->type], p->error, p->failures);
    n = n < (int)sizeof(line) ? n : (int)sizeof(line) - 1;
    char *msg = mars_arena_strndup(&b->arena, line, (size_t)n);
    struct mars_event *ev = msg ? mars_batch_push(b) : NULL;
    if (!ev)
        return -ENOMEM;
    ev->msg = (struct mars_slice){msg, (uint32_t)n};
    ev->ts_ns = ts;
    ev->source = b->source;
    b->bytes += (uint64_t)n;
    const char *type = type_names[p->conf->type];
    const char *status = mars_health_status_name(p->state);
    mars_fbuild_reset(&hc->fb, &b->arena);
    mars_fbuild_put(&hc->fb, 0, "check", 5, MARS_FIELD_STRING, p->conf->name,
                    (uint32_t)strlen(p->conf->name), 0, false, NULL);
    mars_fbuild_put(&hc->fb, 0, "type", 4, MARS_FIELD_STRING, type, (uint32_t)strlen(type), 0,
                    false, NULL);
    mars_fbuild_put(&hc->fb, 0, "status", 6, MARS_FIELD_STRING, status, (uint32_t)strlen(status), 0,
                    false, NULL);
    return mars_fields_merge(b, ev, &hc->fb, NULL);
}

static int push_metrics(struct mars_batch *b, const struct health_probe *p, int64_t ts)
{
    static const char *const ln[] = {"check", "type"};
    const char *lv[] = {p->conf->name, type_names[p->conf->type]};
    const struct {
        const char *name, *help;
        double v;
    } m[] = {
        {"mars_health_check_up", "1 while the check is UP, 0 while it is DOWN or undecided.",
         p->state == MARS_HEALTH_UP ? 1 : 0},
        {"mars_health_check_duration_seconds", "How long the check's last probe took.",
         p->duration},
        {"mars_health_check_consecutive_failures",
         "Failed probes of the check since its last "
         "success.",
         p->failures},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(m) / sizeof(m[0]); i++)
        rc = mars_batch_push_metric(b,
                                    &(struct mars_metric_sample){.name = m[i].name,
                                                                 .help = m[i].help,
                                                                 .kind = MARS_METRIC_GAUGE,
                                                                 .label_names = ln,
                                                                 .label_values = lv,
                                                                 .nlabels = 2,
                                                                 .value = m[i].v},
                                    ts);
    return rc;
}

static void emit(struct health_check *hc, const struct health_probe *p, bool changed)
{
    bool metrics = !mars_source_paused(hc->src);
    int64_t ts = wall_now();
    if (!metrics && !changed)
        return;
    struct mars_batch *b = mars_source_batch(hc->src, 4);
    int rc = b ? 0 : -ENOMEM;
    if (rc == 0 && changed)
        rc = push_log(hc, b, p, ts);
    if (rc == 0 && metrics)
        rc = push_metrics(b, p, ts);
    if (rc) {
        mars_stat_add(&mars_source_stats(hc->src)->errors[MARS_ERR_MEMORY], 1);
        if (b)
            mars_batch_release(b);
        return;
    }
    b->ack = (struct mars_batch_ack){.fn = health_check_acked, .ctx = hc, .a = b->n};
    mars_source_emit(hc->src, b);
}

static void publish(struct health_check *hc, const struct health_probe *p)
{
    struct evbuffer *d = evbuffer_new();
    if (!d)
        return;
    if (p->error[0] && !p->ok) {
        evbuffer_add(d, "\"error\":", 8);
        mars_json_string(d, p->error);
        evbuffer_add(d, ",", 1);
    }
    evbuffer_add_printf(d,
                        "\"consecutive_failures\":%u,\"consecutive_successes\":%u,"
                        "\"duration_seconds\":%.6f,\"checked_at_unix_ms\":%lld",
                        p->failures, p->successes, p->duration, (long long)(wall_now() / 1000000));
    evbuffer_add(d, "", 1); /* NUL */
    const char *detail = (const char *)evbuffer_pullup(d, -1);
    mars_health_update(mars_source_obs(hc->src), p->health_id, p->state, detail);
    evbuffer_free(d);
}

/* ---- schedule ---- */

static void maybe_finish(struct health_check *hc)
{
    if (hc->finished)
        return;
    bool once_done = mars_source_once(hc->src) && hc->done_once == hc->n;
    if (!hc->stopping && !once_done)
        return;
    for (size_t i = 0; i < hc->n; i++)
        if (hc->probes[i].running || hc->probes[i].tick_armed)
            return;
    hc->finished = true;
    mars_source_finished(hc->src);
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct health_probe *p = op->data;
    p->tick_armed = false;
    if (res == -ECANCELED || p->hc->stopping) {
        maybe_finish(p->hc);
        return;
    }
    mars_health_probe_run(p);
}

static void schedule(struct health_probe *p, int64_t delay)
{
    mars_ev_prep_timer(&p->tick, delay > 0 ? delay : 0, on_tick, p);
    p->tick_armed = mars_ev_submit(p->loop, &p->tick) == 0;
}

static void debounce(struct health_probe *p, bool *changed)
{
    const struct health_probe_conf *c = p->conf;
    enum mars_health_status before = p->state;
    if (p->ok) {
        p->successes++;
        p->failures = 0;
        if (p->successes >= (uint64_t)c->healthy_threshold)
            p->state = MARS_HEALTH_UP;
    } else {
        p->failures++;
        p->successes = 0;
        if (p->failures >= (uint64_t)c->unhealthy_threshold)
            p->state = MARS_HEALTH_DOWN;
    }
    *changed = p->state != before;
}

void mars_health_probe_finished(struct health_probe *p)
{
    struct health_check *hc = p->hc;
    bool changed = false;
    if (hc->stopping) {
        maybe_finish(hc);
        return;
    }
    debounce(p, &changed);
    if (changed) {
        if (p->state == MARS_HEALTH_UP)
            mars_info(mars_source_id(hc->src), "health check '%s' is UP", p->conf->name);
        else
            mars_warn(mars_source_id(hc->src), "health check '%s' is DOWN: %s", p->conf->name,
                      p->error);
    }
    if (!p->ok)
        mars_source_last_error(hc->src, "check '%s': %s", p->conf->name, p->error);
    publish(hc, p);
    emit(hc, p, changed);
    if (mars_source_once(hc->src)) {
        hc->done_once++;
        maybe_finish(hc);
        return;
    }
    schedule(p, p->conf->interval - (mars_ev_clock_ns() - p->started_ns));
}

/* ---- life cycle ---- */

static int health_check_init(struct mars_source *s)
{
    struct health_check *hc = calloc(1, sizeof(*hc));
    char why[200];
    int rc = 0;
    if (!hc)
        return -ENOMEM;
    hc->src = s;
    hc->conf = mars_source_conf(s);
    mars_fbuild_init(&hc->fb);
    hc->n = hc->conf->checks.n;
    hc->probes = calloc(hc->n + 1, sizeof(*hc->probes));
    if (!hc->probes) {
        free(hc);
        return -ENOMEM;
    }
    mars_source_set_state(s, hc);
    for (size_t i = 0; i < hc->n && rc == 0; i++) {
        struct health_probe *p = &hc->probes[i];
        p->hc = hc;
        p->loop = mars_source_loop(s);
        rc = mars_health_probe_prepare(p, check_at(hc->conf, i), true, why, sizeof(why));
        if (rc)
            mars_error(mars_source_id(s), "check '%s': %s", check_at(hc->conf, i)->name, why);
    }
    if (rc) { /* destroy is not called after a failed init */
        for (size_t i = 0; i < hc->n; i++)
            mars_health_probe_fini(&hc->probes[i]);
        free(hc->probes);
        mars_fbuild_fini(&hc->fb);
        free(hc);
        mars_source_set_state(s, NULL);
    }
    return rc;
}

static int health_check_start(struct mars_source *s)
{
    struct health_check *hc = mars_source_state(s);
    for (size_t i = 0; i < hc->n; i++) {
        struct health_probe *p = &hc->probes[i];
        p->health_id =
            mars_health_register(mars_source_obs(s), p->conf->name, type_names[p->conf->type]);
        if (p->health_id < 0) {
            mars_error(mars_source_id(s),
                       "health check name '%s' is used twice in this "
                       "configuration",
                       p->conf->name);
            return p->health_id;
        }
    }
    for (size_t i = 0; i < hc->n; i++) {
        schedule(&hc->probes[i], 0);
        if (!hc->probes[i].tick_armed)
            return -EIO;
    }
    return 0;
}

static void health_check_stop(struct mars_source *s)
{
    struct health_check *hc = mars_source_state(s);
    hc->stopping = true;
    for (size_t i = 0; i < hc->n; i++) {
        struct health_probe *p = &hc->probes[i];
        if (p->tick_armed)
            mars_ev_cancel(p->loop, &p->tick);
        mars_health_probe_cancel(p);
        mars_health_probe_shutdown(p);
    }
    maybe_finish(hc);
}

static void health_check_destroy(struct mars_source *s)
{
    struct health_check *hc = mars_source_state(s);
    if (!hc)
        return;
    for (size_t i = 0; hc->probes && i < hc->n; i++)
        mars_health_probe_fini(&hc->probes[i]);
    free(hc->probes);
    mars_fbuild_fini(&hc->fb);
    free(hc);
}

const struct mars_component_desc mars_source_health_check = {
    .name = "health_check",
    .description = "Probes services (http, tcp, exec, pidfile) on an interval; emits state "
                   "changes and metrics and serves /health/<name> on the admin API.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_ANY,
    .options = health_check_options,
    .conf_size = sizeof(struct health_check_conf),
    .check = health_check_check,
    .source = {.init = health_check_init,
               .start = health_check_start,
               .stop = health_check_stop,
               .destroy = health_check_destroy},
};
