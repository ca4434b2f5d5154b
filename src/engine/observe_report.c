/*
 * observe_report.c - what the engine reports about its components: the DESIGN §7 metric
 * families (a registry collector that reads the per-worker struct mars_stats at scrape
 * time and sums them, so the hot path pays nothing for them) and the /api/v1/components
 * JSON document.
 *
 * Families: build info, workers, uptime and start time; per component received/sent
 * events and bytes, errors by bounded error_type and stage, discarded events by
 * intentional; per source acknowledged and not yet acknowledged events (and lag bytes for
 * sources that keep them); per sink buffer events, bytes and fill and consecutive
 * failures; failed checkpoint writes per journal.
 * Labels: component_id, component_type, component_kind (bounded by the config).
 *
 * Thread: whoever collects or asks (the API server's thread, internal_metrics' worker).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "engine/checkpoint.h"
#include "engine/observe_internal.h"
#include "config/registry.h"

enum field {
    F_RECV_EVENTS,
    F_RECV_BYTES,
    F_SENT_EVENTS,
    F_SENT_BYTES,
    F_ACKED,
    F_PENDING_ACK,
    F_BUF_EVENTS,
    F_BUF_BYTES,
    F_FAILURES,
    F_LAG,
};
static uint64_t field_of(const struct mars_engine *e, uint32_t node, const struct mars_stats *s,
                         enum field f);

/* ---- /api/v1/components ---- */

static void sum_stats(const struct mars_engine *e, uint32_t node, struct mars_stats *out)
{
    mars_engine_node_stats(e, node, out);
}

/* Highest fill of any one worker's buffer in front of sink `node`, 0..1. */
static double buffer_fill(const struct mars_engine *e, uint32_t node)
{
    const struct mars_buffer_conf *bc = &e->cfg->nodes[node].common.buffer;
    double fill = 0;
    for (unsigned w = 0; w < e->nworkers; w++) {
        const struct mars_stats *s = &e->workers[w].stats[node];
        double fe = (double)mars_stat_get(&s->buffer_events) / (double)bc->max_events;
        double fb = (double)mars_stat_get(&s->buffer_bytes) / (double)bc->max_bytes;
        if (fe > fill)
            fill = fe;
        if (fb > fill)
            fill = fb;
    }
    return fill;
}

static void component_json(struct mars_obs *o, uint32_t i, struct evbuffer *out)
{
    const struct mars_engine *e = o->e;
    const struct mars_node *nd = &e->cfg->nodes[i];
    struct mars_stats st;
    sum_stats(e, i, &st);
    evbuffer_add(out, "{\"id\":", 6);
    mars_json_string(out, nd->id);
    evbuffer_add_printf(
        out,
        ",\"type\":\"%s\",\"kind\":\"%s\",\"received_events\":%llu,"
        "\"received_bytes\":%llu,\"sent_events\":%llu,\"sent_bytes\":%llu,"
        "\"discarded_intentional\":%llu,\"discarded_unintentional\":%llu,"
        "\"errors\":{",
        nd->desc->name, mars_kind_name(nd->kind), (unsigned long long)st.received_events,
        (unsigned long long)st.received_bytes, (unsigned long long)st.sent_events,
        (unsigned long long)st.sent_bytes, (unsigned long long)st.discarded_intentional,
        (unsigned long long)st.discarded_unintentional);
    for (int k = 0; k < MARS_ERR__COUNT; k++)
        evbuffer_add_printf(out, "%s\"%s\":%llu", k ? "," : "", mars_error_type_name(k),
                            (unsigned long long)st.errors[k]);
    evbuffer_add(out, "}", 1);
    if (nd->kind == MARS_KIND_SOURCE)
        evbuffer_add_printf(out, ",\"acked_events\":%llu", (unsigned long long)st.acked_events);
    if (nd->kind == MARS_KIND_SINK) {
        const struct mars_buffer_conf *bc = &nd->common.buffer;
        evbuffer_add_printf(out,
                            ",\"buffer\":{\"events\":%llu,\"bytes\":%llu,\"max_events\":%lld,"
                            "\"max_bytes\":%llu,\"fill\":%.4f},\"consecutive_failures\":%llu",
                            (unsigned long long)st.buffer_events,
                            (unsigned long long)st.buffer_bytes, (long long)bc->max_events,
                            (unsigned long long)bc->max_bytes, buffer_fill(e, i),
                            (unsigned long long)field_of(e, i, &st, F_FAILURES));
    }
    pthread_mutex_lock(&o->lock);
    struct last_error le = o->errors[i];
    pthread_mutex_unlock(&o->lock);
    evbuffer_add(out, ",\"last_error\":", 14);
    if (le.count) {
        evbuffer_add(out, "{\"message\":", 11);
        mars_json_string(out, le.msg);
        evbuffer_add_printf(out, ",\"time_unix_ms\":%lld,\"count\":%llu}",
                            (long long)(le.wall_ns / 1000000), (unsigned long long)le.count);
    } else {
        evbuffer_add(out, "null", 4);
    }
    evbuffer_add(out, "}", 1);
}

int mars_obs_components_json(struct mars_obs *o, struct evbuffer *out)
{
    const struct mars_config *c = o->e->cfg;
    evbuffer_add(out, "{\"components\":[", 15);
    for (uint32_t i = 0; i < c->n; i++) {
        if (i)
            evbuffer_add(out, ",", 1);
        component_json(o, i, out);
    }
    return evbuffer_add(out, "]}\n", 3) ? -ENOMEM : 0;
}

/* ---- the engine collector (DESIGN §7 families) ---- */

struct simple_family {
    const char *name, *help;
    enum mars_mtype type;
    int kinds; /* 1 << MARS_KIND_* that have it */
    enum field field;
};

#define ALL_KINDS 7
#define SOURCES   (1 << MARS_KIND_SOURCE)
#define SINKS     (1 << MARS_KIND_SINK)

static const struct simple_family simple_families[] = {
    {"mars_component_received_events_total", "Events the component received.", MARS_MT_COUNTER,
     ALL_KINDS, F_RECV_EVENTS},
    {"mars_component_received_bytes_total", "Message bytes the component received.",
     MARS_MT_COUNTER, ALL_KINDS, F_RECV_BYTES},
    {"mars_component_sent_events_total",
     "Events the component passed on (sources, transforms) or delivered (sinks).", MARS_MT_COUNTER,
     ALL_KINDS, F_SENT_EVENTS},
    {"mars_component_sent_bytes_total",
     "Bytes the component passed on, or wrote to its peer (sinks).", MARS_MT_COUNTER, ALL_KINDS,
     F_SENT_BYTES},
    {"mars_source_acked_events_total",
     "Events whose batches every sink path finished (delivered or dropped on purpose).",
     MARS_MT_COUNTER, SOURCES, F_ACKED},
    {"mars_source_pending_ack_events", "Events sent by the source and not acknowledged yet.",
     MARS_MT_GAUGE, SOURCES, F_PENDING_ACK},
    {"mars_buffer_events", "Events waiting in the buffers in front of the sink.", MARS_MT_GAUGE,
     SINKS, F_BUF_EVENTS},
    {"mars_buffer_bytes", "Message bytes waiting in the buffers in front of the sink.",
     MARS_MT_GAUGE, SINKS, F_BUF_BYTES},
    {"mars_sink_consecutive_failures",
     "Failed requests of the sink since its last successful one (highest of its instances).",
     MARS_MT_GAUGE, SINKS, F_FAILURES},
};

const char *mars_error_type_name(enum mars_error_type t)
{
    static const char *const names[MARS_ERR__COUNT] = {
        [MARS_ERR_READ] = "read",         [MARS_ERR_WRITE] = "write",
        [MARS_ERR_OVERSIZE] = "oversize", [MARS_ERR_INVALID_UTF8] = "invalid_utf8",
        [MARS_ERR_ENCODE] = "encode",     [MARS_ERR_REJECTED] = "rejected",
        [MARS_ERR_RETRY] = "retry",       [MARS_ERR_MEMORY] = "memory",
        [MARS_ERR_PARSE] = "parse",       [MARS_ERR_CONVERT] = "convert",
        [MARS_ERR_LIMIT] = "limit",       [MARS_ERR_CONNECT] = "connect",
        [MARS_ERR_TLS] = "tls",
    };
    /* a type without a name here would show as a duplicate series: promtool catches it */
    return (unsigned)t < MARS_ERR__COUNT && names[t] ? names[t] : "unknown";
}

static const char *error_stage(enum mars_error_type t)
{
    switch (t) {
    case MARS_ERR_READ:
        return "receiving";
    case MARS_ERR_WRITE:
    case MARS_ERR_REJECTED:
    case MARS_ERR_RETRY:
    case MARS_ERR_CONNECT:
    case MARS_ERR_TLS:
        return "sending";
    default:
        return "processing";
    }
}

static uint64_t field_of(const struct mars_engine *e, uint32_t node, const struct mars_stats *s,
                         enum field f)
{
    switch (f) {
    case F_RECV_EVENTS:
        return s->received_events;
    case F_RECV_BYTES:
        return s->received_bytes;
    case F_SENT_EVENTS:
        return s->sent_events;
    case F_SENT_BYTES:
        return s->sent_bytes;
    case F_ACKED:
        return s->acked_events;
    case F_PENDING_ACK:
        return s->sent_events > s->acked_events ? s->sent_events - s->acked_events : 0;
    case F_BUF_EVENTS:
        return s->buffer_events;
    case F_BUF_BYTES:
        return s->buffer_bytes;
    case F_LAG:
        return s->lag_bytes;
    case F_FAILURES: {
        uint64_t m = 0; /* the sum over workers would overstate a streak */
        for (unsigned w = 0; w < e->nworkers; w++) {
            uint64_t v = mars_stat_get(&e->workers[w].stats[node].consecutive_failures);
            m = v > m ? v : m;
        }
        return m;
    }
    }
    return 0;
}

static void visit_family(struct mars_mvisitor *v, const char *name, const char *help,
                         enum mars_mtype t)
{
    v->family(v, &(struct mars_mfamily_info){.name = name, .help = help, .type = t});
}

static void collect_info(struct mars_mvisitor *v, struct mars_obs *o)
{
    const struct mars_engine *e = o->e;
    static const char *const info_labels[] = {"version", "io_backend"};
    const char *info_values[] = {MARS_VERSION, mars_ev_backend_name(e->backend)};
    struct mars_mlabels none = {0};

    visit_family(v, "mars_build_info", "mars version and the io backend in use.", MARS_MT_GAUGE);
    v->value(v, &(struct mars_mlabels){info_labels, info_values, 2}, 1);
    visit_family(v, "mars_workers", "Worker threads running pipelines.", MARS_MT_GAUGE);
    v->value(v, &none, e->nworkers);
    visit_family(v, "mars_uptime_seconds", "Seconds since the engine started.", MARS_MT_GAUGE);
    v->value(v, &none, (double)(mars_ev_clock_ns() - o->start_mono_ns) / 1e9);
    visit_family(v, "mars_start_time_seconds", "Unix time the engine started at.", MARS_MT_GAUGE);
    v->value(v, &none, (double)(o->start_wall_ns / 1000000) / 1e3);
}

static void visit_ckpt(void *arg, const char *id, uint64_t write_errors)
{
    static const char *const ln[] = {"component_id"};
    const char *lv[] = {id};
    struct mars_mvisitor *v = arg;
    v->value(v, &(struct mars_mlabels){ln, lv, 1}, (double)write_errors);
}

/* Per sink: the fullest of its per-worker buffers, 0..1 (what "near full" alerts watch:
 * a sum over workers would hide one worker's full buffer). */
static void collect_fill(struct mars_mvisitor *v, const struct mars_engine *e)
{
    static const char *const ln[] = {"component_id", "component_type", "component_kind"};
    const char *lv[5];
    visit_family(v, "mars_buffer_fill_ratio",
                 "Fill of the fullest buffer in front of the sink (events or bytes, highest of "
                 "its workers), 0 to 1.",
                 MARS_MT_GAUGE);
    for (uint32_t i = 0; i < e->cfg->n; i++) {
        if (e->cfg->nodes[i].kind != MARS_KIND_SINK)
            continue;
        mars_obs_node_labels(&e->cfg->nodes[i], lv);
        v->value(v, &(struct mars_mlabels){ln, lv, 3}, buffer_fill(e, i));
    }
}

/* Sinks with buffer.type disk: their segment files, records and the oldest record. */
static void collect_disk(struct mars_mvisitor *v, const struct mars_engine *e,
                         const struct mars_stats *st)
{
    static const char *const ln[] = {"component_id", "component_type", "component_kind"};
    static const struct {
        const char *name, *help;
        enum mars_mtype type;
    } fam[] = {
        {"mars_buffer_disk_bytes", "Bytes of the segment files of the sink's disk buffer.",
         MARS_MT_GAUGE},
        {"mars_buffer_disk_events", "Events in the sink's disk buffer not delivered yet.",
         MARS_MT_GAUGE},
        {"mars_buffer_disk_written_records_total", "Records written to the sink's disk buffer.",
         MARS_MT_COUNTER},
        {"mars_buffer_disk_read_records_total",
         "Records read back from the sink's disk buffer to be sent (with those handed over "
         "from memory).",
         MARS_MT_COUNTER},
        {"mars_buffer_disk_handed_over_records_total",
         "Records of the sink's disk buffer sent from memory right after they were written "
         "(the sink kept up: nothing older waited on disk), so not read back and decoded.",
         MARS_MT_COUNTER},
        {"mars_buffer_disk_corrupt_records_total",
         "Damaged records of the sink's disk buffer that were skipped (bad checksum, length or "
         "encoding; each is logged with its segment and offset).",
         MARS_MT_COUNTER},
        {"mars_buffer_disk_oldest_record_age_seconds",
         "Age of the oldest record of the sink's disk buffer not delivered yet (0: none).",
         MARS_MT_GAUGE},
    };
    const struct mars_config *c = e->cfg;
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++)
        any |= c->nodes[i].kind == MARS_KIND_SINK &&
               c->nodes[i].common.buffer.type == MARS_BUFFER_DISK;
    if (!any)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    const char *lv[5];
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        visit_family(v, fam[f].name, fam[f].help, fam[f].type);
        for (uint32_t i = 0; i < c->n; i++) {
            const struct mars_stats *s = &st[i];
            if (c->nodes[i].kind != MARS_KIND_SINK ||
                c->nodes[i].common.buffer.type != MARS_BUFFER_DISK)
                continue;
            double val = 0;
            switch (f) {
            case 0:
                val = (double)s->disk_bytes;
                break;
            case 1:
                val = (double)s->disk_events;
                break;
            case 2:
                val = (double)s->disk_written;
                break;
            case 3:
                val = (double)s->disk_read;
                break;
            case 4:
                val = (double)s->disk_handed_over;
                break;
            case 5:
                val = (double)s->disk_corrupt;
                break;
            default: {
                int64_t o = (int64_t)s->disk_oldest_wall_ns;
                val = o && now > o ? (double)(now - o) / 1e9 : 0;
            }
            }
            mars_obs_node_labels(&c->nodes[i], lv);
            v->value(v, &(struct mars_mlabels){ln, lv, 3}, val);
        }
    }
}

void mars_obs_collect(struct mars_mvisitor *v, void *arg)
{
    struct mars_obs *o = arg;
    const struct mars_engine *e = o->e;
    const struct mars_config *c = e->cfg;
    struct mars_stats *st = calloc(c->n + 1, sizeof(*st));
    bool any_lag = false;
    const char *lv[5];
    static const char *const ln[] = {"component_id", "component_type", "component_kind",
                                     "error_type", "stage"};
    static const char *const dn[] = {"component_id", "component_type", "component_kind",
                                     "intentional"};

    collect_info(v, o);
    if (!st)
        return;
    for (uint32_t i = 0; i < c->n; i++) {
        sum_stats(e, i, &st[i]);
        any_lag = any_lag || (c->nodes[i].kind == MARS_KIND_SOURCE &&
                              (c->nodes[i].desc->flags & MARS_DESC_LAG_BYTES));
    }
    for (size_t f = 0; f < sizeof(simple_families) / sizeof(simple_families[0]); f++) {
        const struct simple_family *sf = &simple_families[f];
        visit_family(v, sf->name, sf->help, sf->type);
        for (uint32_t i = 0; i < c->n; i++) {
            if (!(sf->kinds & (1 << c->nodes[i].kind)))
                continue;
            mars_obs_node_labels(&c->nodes[i], lv);
            v->value(v, &(struct mars_mlabels){ln, lv, 3},
                     (double)field_of(e, i, &st[i], sf->field));
        }
    }
    collect_disk(v, e, st);
    if (any_lag) {
        visit_family(v, "mars_source_lag_bytes",
                     "Bytes written to the source's inputs and "
                     "not read yet.",
                     MARS_MT_GAUGE);
        for (uint32_t i = 0; i < c->n; i++) {
            if (c->nodes[i].kind != MARS_KIND_SOURCE ||
                !(c->nodes[i].desc->flags & MARS_DESC_LAG_BYTES))
                continue;
            mars_obs_node_labels(&c->nodes[i], lv);
            v->value(v, &(struct mars_mlabels){ln, lv, 3}, (double)st[i].lag_bytes);
        }
    }
    visit_family(v, "mars_component_errors_total",
                 "Errors of the component, by bounded error type and pipeline stage.",
                 MARS_MT_COUNTER);
    for (uint32_t i = 0; i < c->n; i++) {
        mars_obs_node_labels(&c->nodes[i], lv);
        for (int k = 0; k < MARS_ERR__COUNT; k++) {
            lv[3] = mars_error_type_name(k);
            lv[4] = error_stage(k);
            v->value(v, &(struct mars_mlabels){ln, lv, 5}, (double)st[i].errors[k]);
        }
    }
    visit_family(v, "mars_component_discarded_events_total",
                 "Events the component dropped: on purpose (intentional=\"true\") or lost.",
                 MARS_MT_COUNTER);
    for (uint32_t i = 0; i < c->n; i++) {
        mars_obs_node_labels(&c->nodes[i], lv);
        lv[3] = "true";
        v->value(v, &(struct mars_mlabels){dn, lv, 4}, (double)st[i].discarded_intentional);
        lv[3] = "false";
        v->value(v, &(struct mars_mlabels){dn, lv, 4}, (double)st[i].discarded_unintentional);
    }
    free(st);
    collect_fill(v, e);
    visit_family(v, "mars_checkpoint_write_errors_total",
                 "Checkpoint journal flushes that failed (write or fdatasync), per journal; the "
                 "source re-reads from the last good checkpoint after a restart.",
                 MARS_MT_COUNTER);
    mars_ckpt_visit_errors(visit_ckpt, v);
}
