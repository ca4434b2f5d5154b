/*
 * config.c - from a YAML file to a checked struct mars_config.
 *
 * Steps: parse the tree (cfg.c), apply the process schema to the root, then for each entry
 * of `sources:`, `transforms:` and `sinks:` find its type in the registry and apply two
 * schemas to its mapping: the options every component of that kind has (inputs, buffer,
 * batch, retry) and the type's own. Each schema skips the other's keys; only the type's
 * own pass reports unknown keys, with the common names among its "did you mean" candidates.
 * Finally graph.c resolves the edges. Every problem is collected; nothing stops at the first.
 *
 * Thread: the control thread (or a test), before any worker starts.
 */
#include "config/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "config/registry.h"

#define OFF(type, field) offsetof(type, field)

static const char *const io_backend_names[] = {"auto", "io_uring", "libevent", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const buffer_type_names[] = {"memory", "disk", NULL};
static const char *const buffer_sync_names[] = {"none", "interval", "always", NULL};
static const char *const buffer_compression_names[] = {"none", "lz4", NULL};
static const char *const orphan_buffers_names[] = {"keep", "delete", NULL};
static const char *const when_full_names[] = {"block", "drop_newest", NULL};
static const char *const readiness_names[] = {"running", "sinks", NULL};

static const struct mars_opt runtime_options[] = {
    {.name = "workers",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_runtime_conf, workers),
     .def = "0",
     .min = 0,
     .max = 256,
     .desc = "Worker threads, each with its own event loop; 0 means one per online CPU."},
    {.name = "io_backend",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_runtime_conf, io_backend),
     .def = "auto",
     .choices = io_backend_names,
     .desc = "Event loop backend; auto probes io_uring and falls back to libevent "
             "(the MARS_IO_BACKEND environment variable overrides it)."},
    {.name = "shutdown_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_runtime_conf, shutdown_timeout),
     .def = "30s",
     .desc = "How long a stop waits for in-flight data to be delivered before giving up on it "
             "(undelivered data is replayed by sources that can)."},
    {.name = "chunk_size",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_runtime_conf, chunk_size),
     .def = "256KiB",
     .min = 4096,
     .max = 64 << 20,
     .desc = "Size of the blocks that reads land in."},
    {.name = "chunk_memory",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_runtime_conf, chunk_memory),
     .def = "16MiB",
     .min = 65536,
     .max = (int64_t)1 << 40,
     .desc = "Per worker, the most memory read blocks may hold; readers wait when it is in "
             "use."},
    {.name = "fixed_buffers",
     .type = MARS_OPT_BOOL,
     .offset = OFF(struct mars_runtime_conf, fixed_buffers),
     .def = "false",
     .desc = "With io_uring, register the read blocks with the kernel so file reads skip "
             "pinning pages on every read; each block is pinned in RAM from its first read, "
             "so resident memory grows by up to chunk_memory per worker (and counts against "
             "RLIMIT_MEMLOCK)."},
    {.name = "zero_copy_send",
     .type = MARS_OPT_BOOL,
     .offset = OFF(struct mars_runtime_conf, zero_copy_send),
     .def = "false",
     .desc = "With io_uring on Linux 6.0+, send requests of 16 KiB and more without copying "
             "them into the kernel; a request then counts as sent once the peer acknowledged "
             "it, and a connection closed with one in flight is reset. Sockets the kernel "
             "copies for anyway (loopback) go back to plain sends."},
    {.name = NULL},
};

static const struct mars_opt log_options[] = {
    {.name = "level",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_log_conf, level),
     .def = "info",
     .choices = level_names,
     .desc = "Least severe internal log level written (--log-level overrides it)."},
    {.name = "format",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_log_conf, format),
     .def = "text",
     .choices = log_format_names,
     .desc = "Internal log line format on stderr."},
    {.name = NULL},
};

static const struct mars_opt api_options[] = {
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = OFF(struct mars_api_conf, enabled),
     .def = "true",
     .desc = "Serve the admin HTTP API (/healthz, /readyz, /metrics, /api/v1/...)."},
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(struct mars_api_conf, address),
     .def = "127.0.0.1:8686",
     .desc = "host:port to listen on, or a unix socket path (starting with / or unix:); the "
             "MARS_API_ADDRESS environment variable overrides it."},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = OFF(struct mars_api_conf, token),
     .desc = "Bearer token that POST /api/v1/reload requires; without it reload is refused."},
    {.name = "max_connections",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_api_conf, max_connections),
     .def = "32",
     .min = 1,
     .max = 4096,
     .desc = "Connections served at once; one more closes the connection that has waited "
             "longest without sending a request."},
    {.name = "request_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_api_conf, request_timeout),
     .def = "5s",
     .min = 100000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "A client must send a whole request within this time of connecting (10s of its "
             "previous request on a kept-alive connection), or it is closed."},
    {.name = "max_body_size",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_api_conf, max_body_size),
     .def = "64KiB",
     .min = 1024,
     .max = 16 << 20,
     .desc = "Largest request body accepted (413 beyond it)."},
    {.name = "max_headers_size",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_api_conf, max_headers_size),
     .def = "8KiB",
     .min = 1024,
     .max = 1 << 20,
     .desc = "Largest request line plus headers accepted."},
    {.name = "readiness",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_api_conf, readiness),
     .def = "running",
     .choices = readiness_names,
     .desc = "What /readyz answers: running is 200 while the pipeline runs, so a backend "
             "outage does not make every pod NotReady and stall a rollout (sink health stays "
             "in /api/v1/components and the metrics); sinks also fails it while a sink has "
             "sink_failure_threshold failed requests in a row."},
    {.name = "sink_failure_threshold",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_api_conf, sink_failure_threshold),
     .def = "3",
     .min = 1,
     .max = 1000000,
     .desc = "With readiness: sinks, /readyz fails while a sink has this many consecutive "
             "failed requests."},
    {.name = "heartbeat_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_api_conf, heartbeat_timeout),
     .def = "10s",
     .min = 1000000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "/healthz fails when an event loop has not turned for this long."},
    {.name = NULL},
};

static const struct mars_opt host_options[] = {
    {.name = "add",
     .type = MARS_OPT_BOOL,
     .offset = OFF(struct mars_host_conf, add),
     .def = "true",
     .desc = "Events of the sources that read this machine's logs (file, kubernetes_logs, "
             "stdin) carry `host`, this machine's name (as Vector's do); false leaves it out. "
             "Events received from other mars instances keep their sender's."},
    {.name = "name",
     .type = MARS_OPT_STRING,
     .offset = OFF(struct mars_host_conf, name),
     .def = "",
     .desc = "The name written as `host`; empty: $NODE_NAME when set (a DaemonSet gets the "
             "node's name from the downward API), else the machine's hostname."},
    {.name = NULL},
};

const struct mars_opt mars_top_options[] = {
    {.name = "data_dir",
     .type = MARS_OPT_STRING,
     .offset = OFF(struct mars_top_conf, data_dir),
     .def = "/var/lib/mars",
     .desc = "Directory for checkpoints and disk buffers."},
    {.name = "orphan_buffers",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_top_conf, orphan_buffers),
     .def = "keep",
     .choices = orphan_buffers_names,
     .desc = "Disk buffers under data_dir/buffers/ whose sink is no longer configured: keep "
             "(reported at start with their size, a WARN) or delete (reported, then removed)."},
    {.name = "runtime",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_top_conf, runtime),
     .sub = runtime_options,
     .desc = "Threads, event loop and memory."},
    {.name = "log",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_top_conf, log),
     .sub = log_options,
     .desc = "mars's own log."},
    {.name = "api",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_top_conf, api),
     .sub = api_options,
     .desc = "The admin HTTP API: health, readiness, metrics, components."},
    {.name = "host",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_top_conf, host),
     .sub = host_options,
     .desc = "The `host` field of the log events read on this machine."},
    {.name = NULL},
};

static const struct mars_opt buffer_options[] = {
    {.name = "type",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_buffer_conf, type),
     .def = "memory",
     .choices = buffer_type_names,
     .desc = "Where events wait for the sink: memory (bounded, per worker), or disk "
             "(segment files under data_dir/buffers/<sink id>/<worker>/, written before the "
             "sources are acknowledged, so an outage spools to disk and kill -9 loses nothing; "
             "max_events and max_bytes then bound the events read back into memory)."},
    {.name = "max_events",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_buffer_conf, max_events),
     .def = "50000",
     .min = 1,
     .max = INT32_MAX,
     .desc = "Per worker, the most events the buffer holds."},
    {.name = "max_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_buffer_conf, max_bytes),
     /* 2MiB: at full speed the buffer stays full (the source outruns the sink), so this
      * is memory held, not speed: 8MiB held ~8MiB more chunks, raised peak RSS into a file
      * or tcp sink to 22 MiB and ran no faster (the sink's writes left the CPU cache). */
     .def = "2MiB",
     .min = 1024,
     .max = (int64_t)1 << 40,
     .desc = "Per worker, the most message bytes the buffer holds."},
    {.name = "when_full",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_buffer_conf, when_full),
     .def = "block",
     .choices = when_full_names,
     .desc = "block pauses the sources that feed the sink; drop_newest drops (and counts) "
             "events that do not fit (in memory, or over max_size on disk)."},
    {.name = "max_size",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_buffer_conf, max_size),
     .def = "1GiB",
     .min = 4 << 20,
     .max = (int64_t)1 << 50,
     .desc = "type disk: the most bytes the sink's segment files take, over all workers "
             "(each worker gets an equal share); then when_full applies."},
    {.name = "sync",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_buffer_conf, sync),
     .def = "interval",
     .choices = buffer_sync_names,
     .desc = "type disk: when written records are fdatasync'd, and so when their sources are "
             "acknowledged: interval (every second: a power loss loses nothing acknowledged, "
             "the last second comes again from the sources), always (before each batch is "
             "acknowledged), none (acknowledged after write(2): survives kill -9, not a power "
             "loss)."},
    {.name = "compression",
     .type = MARS_OPT_ENUM,
     .offset = OFF(struct mars_buffer_conf, compression),
     .def = "none",
     .choices = buffer_compression_names,
     .desc = "type disk: lz4 compresses each record (less disk, more CPU)."},
    {.name = NULL},
};

static const struct mars_opt batch_options[] = {
    {.name = "max_events",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_batching_conf, max_events),
     .def = "10000",
     .min = 1,
     .max = INT32_MAX,
     .desc = "Most events handed to the sink in one request."},
    {.name = "max_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(struct mars_batching_conf, max_bytes),
     /* 1MiB: a request's events (and their chunks, and its encoded body) are held until
      * it is done, outside the buffer; bigger requests cost memory, not per-request time. */
     .def = "1MiB",
     .min = 1,
     .max = (int64_t)1 << 32,
     .desc = "Most message bytes handed to the sink in one request."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_batching_conf, timeout),
     .def = "0s",
     .desc = "How long a partly filled request may wait for more events; 0 sends at once."},
    {.name = NULL},
};

static const struct mars_opt retry_options[] = {
    {.name = "initial_backoff",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_retry_conf, initial_backoff),
     .def = "100ms",
     .min = 1000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "Wait before the first retry of a failed request."},
    {.name = "max_backoff",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_retry_conf, max_backoff),
     .def = "30s",
     .min = 1000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "Longest wait between retries (the wait doubles, with jitter, up to this)."},
    {.name = "max_retry_after",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_retry_conf, max_retry_after),
     .def = "5m",
     .min = 0,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "A peer's Retry-After is honoured (waited at least) up to this long."},
    {.name = NULL},
};

static const struct mars_opt request_options[] = {
    {.name = "concurrency",
     .type = MARS_OPT_INT,
     .offset = OFF(struct mars_request_conf, concurrency),
     .def = "1",
     .min = 1,
     .max = 256,
     .desc = "Requests in flight at once per worker; above 1, requests may arrive out of "
             "order."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(struct mars_request_conf, timeout),
     .def = "60s",
     .min = 1000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "Network sinks: a request without an answer after this long fails and is "
             "retried."},
    {.name = NULL},
};

#define INPUTS_OPTION                                                                              \
    {                                                                                              \
        .name = "inputs", .type = MARS_OPT_LIST, .offset = OFF(struct mars_common_conf, inputs),   \
        .flags = MARS_OPT_REQUIRED,                                                                \
        .desc = "Ids of the sources and transforms whose events this component takes; an id with " \
                "* ? or [..] is a pattern that reads every other source and transform it "         \
                "matches (\"app_*\"; route outputs as id.port) and must match at least one."       \
    }

const struct mars_opt mars_transform_common_options[] = {
    INPUTS_OPTION,
    {.name = NULL},
};

const struct mars_opt mars_sink_common_options[] = {
    INPUTS_OPTION,
    {.name = "buffer",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_common_conf, buffer),
     .sub = buffer_options,
     .desc = "The buffer in front of the sink."},
    {.name = "batch",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_common_conf, batch),
     .sub = batch_options,
     .desc = "How events are grouped into requests."},
    {.name = "retry",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_common_conf, retry),
     .sub = retry_options,
     .desc = "Retries of requests that failed transiently."},
    {.name = "request",
     .type = MARS_OPT_SECTION,
     .offset = OFF(struct mars_common_conf, request),
     .sub = request_options,
     .desc = "Requests in flight and their timeout."},
    {.name = "dead_letter",
     .type = MARS_OPT_STRING,
     .offset = OFF(struct mars_common_conf, dead_letter),
     .desc = "Id of another sink that gets the events this one's peer rejects for good "
             "(a 4xx answer, a bad bulk item), instead of dropping them; that sink may have "
             "inputs: []."},
    {.name = NULL},
};

static const struct mars_opt *common_options(enum mars_kind k)
{
    static const struct mars_opt none[] = {{.name = NULL}};
    if (k == MARS_KIND_TRANSFORM)
        return mars_transform_common_options;
    if (k == MARS_KIND_SINK)
        return mars_sink_common_options;
    return none;
}

/* Builds a NULL-terminated list of names: "type", every name in `a`, and (for secrets)
 * their "_file" forms, all borrowed except the _file strings, which are malloc'd. */
static const char **reserved_from(const struct mars_opt *a, char ***owned, size_t *nowned)
{
    size_t n = 0;
    for (const struct mars_opt *o = a; o->name; o++)
        n += o->type == MARS_OPT_SECRET ? 2 : 1;
    const char **r = calloc(n + 2, sizeof(*r));
    char **own = calloc(n + 1, sizeof(*own));
    size_t i = 0, j = 0;
    if (!r || !own) {
        free(r);
        free(own);
        return NULL;
    }
    r[i++] = "type";
    for (const struct mars_opt *o = a; o->name; o++) {
        r[i++] = o->name;
        if (o->type == MARS_OPT_SECRET) {
            size_t len = strlen(o->name);
            char *s = malloc(len + 6);
            if (s) {
                memcpy(s, o->name, len);
                memcpy(s + len, "_file", 6);
                own[j++] = s;
                r[i++] = s;
            }
        }
    }
    *owned = own;
    *nowned = j;
    return r;
}

static void free_reserved(const char **r, char **owned, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(r);
}

/* Applies `opts` to map, skipping every key of `others` (and "type"). */
static int apply_skipping(const struct mars_opt *opts, const struct mars_opt *others,
                          const struct mars_cfg_node *map, void *out, struct mars_diag *diag)
{
    char **owned = NULL;
    size_t nowned = 0;
    const char **reserved = reserved_from(others, &owned, &nowned);
    if (!reserved)
        return -ENOMEM;
    int rc = mars_schema_apply(opts, map, out, reserved, diag);
    free_reserved(reserved, owned, nowned);
    return rc;
}

/* The common pass must ignore every key that is not a common option. */
static int apply_common(enum mars_kind kind, const struct mars_cfg_node *map,
                        struct mars_common_conf *out, struct mars_diag *diag)
{
    const struct mars_opt *common = common_options(kind);
    const char **reserved = calloc(map->n + 1, sizeof(*reserved));
    size_t n = 0;
    if (!reserved)
        return -ENOMEM;
    for (size_t i = 0; i < map->n; i++) {
        bool known = false;
        for (const struct mars_opt *o = common; o->name; o++)
            known = known || strcmp(o->name, map->keys[i]->str) == 0;
        if (!known)
            reserved[n++] = map->keys[i]->str;
    }
    int rc = mars_schema_apply(common, map, out, reserved, diag);
    free(reserved);
    return rc;
}

static const char **type_names(enum mars_kind kind, size_t *n)
{
    const char **names = calloc(mars_registry_count() + 1, sizeof(*names));
    *n = 0;
    for (size_t i = 0; names && i < mars_registry_count(); i++) {
        const struct mars_component_desc *d = mars_registry_at(i);
        if (d->kind == kind)
            names[(*n)++] = d->name;
    }
    return names;
}

static void unknown_type(enum mars_kind kind, const struct mars_cfg_node *t, struct mars_diag *diag)
{
    size_t n;
    const char **names = type_names(kind, &n);
    const char *hint = names ? mars_suggest(t->str, names, n) : NULL;
    if (hint)
        mars_diag_add(diag, t->file, t->line, t->col, "unknown %s type '%s' (did you mean '%s'?)",
                      mars_kind_name(kind), t->str, hint);
    else
        mars_diag_add(diag, t->file, t->line, t->col,
                      "unknown %s type '%s' (`mars describe` lists the types)",
                      mars_kind_name(kind), t->str);
    free(names);
}

/* *unwired: set when a transform's or sink's inputs could not be read, so the graph
 * checks cannot know who reads what. */
static int load_node(struct mars_node *nd, enum mars_kind kind, const struct mars_cfg_node *key,
                     const struct mars_cfg_node *map, bool *unwired, struct mars_diag *diag)
{
    nd->kind = kind;
    nd->id = strdup(key->str);
    nd->file = key->file;
    nd->line = key->line;
    nd->col = key->col;
    if (!nd->id)
        return -ENOMEM;
    if (map->kind != MARS_CFG_MAP) {
        mars_diag_add(diag, map->file, map->line, map->col,
                      "%s '%s': expected a mapping with at least a 'type'", mars_kind_name(kind),
                      key->str);
        *unwired = *unwired || kind != MARS_KIND_SOURCE;
        return -EINVAL;
    }
    /* the common options first: even a component of an unknown type has its inputs
     * wired, so the graph checks that follow report no knock-on errors */
    int rc = apply_common(kind, map, &nd->common, diag);
    if (rc)
        *unwired = *unwired || kind != MARS_KIND_SOURCE;
    const struct mars_cfg_node *t = mars_cfg_get(map, "type");
    if (!t || t->kind != MARS_CFG_SCALAR) {
        mars_diag_add(diag, map->file, map->line, map->col, "%s '%s': missing 'type'",
                      mars_kind_name(kind), key->str);
        return -EINVAL;
    }
    nd->desc = mars_registry_find(t->str, kind);
    if (!nd->desc) {
        unknown_type(kind, t, diag);
        return -EINVAL;
    }
    nd->conf = calloc(1, nd->desc->conf_size ? nd->desc->conf_size : 1);
    if (!nd->conf)
        return -ENOMEM;
    int rc2 = apply_skipping(nd->desc->options, common_options(kind), map, nd->conf, diag);
    if (rc || rc2)
        return -EINVAL;
    if (nd->desc->check)
        return nd->desc->check(nd->conf, map, diag);
    return 0;
}

static void count_section(const struct mars_cfg_node *root, enum mars_kind k, uint32_t *n,
                          struct mars_diag *diag)
{
    const struct mars_cfg_node *sec = mars_cfg_get(root, mars_kind_plural(k));
    if (!sec || sec->kind == MARS_CFG_NULL)
        return;
    if (sec->kind != MARS_CFG_MAP) {
        mars_diag_add(diag, sec->file, sec->line, sec->col,
                      "'%s' must be a mapping of component ids to their options",
                      mars_kind_plural(k));
        return;
    }
    *n += (uint32_t)sec->n;
}

static int load_nodes(struct mars_config *c, const struct mars_cfg_node *root,
                      struct mars_diag *diag)
{
    uint32_t total = 0;
    int rc = 0;

    for (int k = MARS_KIND_SOURCE; k <= MARS_KIND_SINK; k++)
        count_section(root, k, &total, diag);
    c->nodes = calloc(total ? total : 1, sizeof(*c->nodes));
    if (!c->nodes)
        return -ENOMEM;
    for (int k = MARS_KIND_SOURCE; k <= MARS_KIND_SINK; k++) {
        const struct mars_cfg_node *sec = mars_cfg_get(root, mars_kind_plural(k));
        if (!sec || sec->kind != MARS_CFG_MAP)
            continue;
        for (size_t i = 0; i < sec->n; i++) {
            const struct mars_cfg_node *key = sec->keys[i];
            int prev = mars_config_find(c, key->str);
            if (prev >= 0) {
                const struct mars_node *p = &c->nodes[prev];
                mars_diag_add(diag, key->file, key->line, key->col,
                              "component id '%s' is already used by the %s at %s:%d:%d", key->str,
                              mars_kind_name(p->kind), p->file, p->line, p->col);
                c->partial = true;
                rc = -EINVAL;
                continue;
            }
            struct mars_node *nd = &c->nodes[c->n++];
            if (load_node(nd, k, key, sec->vals[i], &c->partial, diag))
                rc = -EINVAL;
        }
    }
    return rc;
}

static int config_build(struct mars_config *c, struct mars_diag *diag)
{
    const struct mars_cfg_node *root = c->doc->root;
    static const char *const sections[] = {"sources", "transforms", "sinks", NULL};

    if (!root) {
        mars_diag_add(diag, c->doc->file, 0, 0, "the configuration is empty");
        return -EINVAL;
    }
    if (root->kind != MARS_CFG_MAP) {
        mars_diag_add(diag, root->file, root->line, root->col,
                      "the configuration must be a mapping (data_dir, sources, sinks, ...)");
        return -EINVAL;
    }
    /* every stage runs whatever the one before found, so one run reports every problem
     * (components that failed to load take part in the graph checks without types) */
    int rc = mars_schema_apply(mars_top_options, root, &c->top, sections, diag);
    int rc2 = load_nodes(c, root, diag);
    if (rc2 == -ENOMEM || !c->nodes)
        return -ENOMEM;
    int rc3 = mars_graph_build(c, diag);
    if (rc3 == -ENOMEM)
        return rc3;
    return rc || rc2 || rc3 ? -EINVAL : 0;
}

static int finish_load(struct mars_config *c, struct mars_config **out, struct mars_diag *diag)
{
    size_t before = mars_diag_total(diag);
    int rc = config_build(c, diag);
    if (rc == 0 && mars_diag_total(diag) > before)
        rc = -EINVAL;
    if (rc) {
        mars_config_destroy(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

int mars_config_load(const char *path, struct mars_config **out, struct mars_diag *diag)
{
    return mars_config_load_paths(&path, 1, out, diag);
}

int mars_config_load_paths(const char *const *paths, size_t n, struct mars_config **out,
                           struct mars_diag *diag)
{
    struct mars_config *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->doc = mars_config_read(paths, n, diag);
    if (!c->doc) {
        free(c);
        return -EINVAL;
    }
    return finish_load(c, out, diag);
}

int mars_config_load_string(const char *name, const char *text, struct mars_config **out,
                            struct mars_diag *diag)
{
    struct mars_config *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->doc = mars_cfg_load_string(name, text, strlen(text), diag);
    if (!c->doc) {
        free(c);
        return -EINVAL;
    }
    return finish_load(c, out, diag);
}

void mars_config_destroy(struct mars_config *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++) {
        struct mars_node *nd = &c->nodes[i];
        if (nd->desc && nd->conf)
            mars_schema_fini(nd->desc->options, nd->conf);
        mars_schema_fini(common_options(nd->kind), &nd->common);
        free(nd->conf);
        free(nd->id);
        free(nd->in);
        free(nd->in_item);
        free(nd->out);
        free(nd->out_port);
    }
    mars_schema_fini(mars_top_options, &c->top);
    free(c->nodes);
    free(c->topo);
    mars_cfg_doc_destroy(c->doc);
    free(c);
}

int mars_config_find(const struct mars_config *c, const char *id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->nodes[i].id && strcmp(c->nodes[i].id, id) == 0)
            return (int)i;
    return -1;
}
