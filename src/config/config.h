/*
 * config.h - a loaded, checked mars configuration: the process options (data_dir, runtime,
 * log) and the pipeline graph of nodes (one per configured component) with their parsed
 * options and resolved edges.
 *
 * mars_config_load() runs every check (YAML, schemas, graph) and reports all problems at
 * FILE:LINE:COL; a config it returns is ready to run. The config owns everything in it and
 * is read-only once loaded, so worker threads share it without locks.
 */
#ifndef MARS_CONFIG_H
#define MARS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/cfg.h"
#include "core/diag.h"
#include "core/schema.h"
#include "config/desc.h"

enum mars_io_backend_choice { MARS_IO_AUTO, MARS_IO_URING, MARS_IO_LIBEVENT };
enum mars_when_full { MARS_WHEN_FULL_BLOCK, MARS_WHEN_FULL_DROP_NEWEST };
enum mars_buffer_type { MARS_BUFFER_MEMORY, MARS_BUFFER_DISK };
/* When a disk buffer fdatasyncs what it wrote (and so when its sources are acknowledged). */
enum mars_buffer_sync { MARS_SYNC_NONE, MARS_SYNC_INTERVAL, MARS_SYNC_ALWAYS };
enum mars_buffer_compression { MARS_BUFCOMP_NONE, MARS_BUFCOMP_LZ4 };
/* What happens at start to disk buffers of sinks no longer in the configuration. */
enum mars_orphan_buffers { MARS_ORPHANS_KEEP, MARS_ORPHANS_DELETE };
/* What /readyz answers: the pipeline runs, or also no sink is failing. */
enum mars_readiness { MARS_READY_RUNNING, MARS_READY_SINKS };

struct mars_runtime_conf {
    int64_t workers; /* 0 = online CPUs */
    int io_backend;  /* enum mars_io_backend_choice */
    int64_t shutdown_timeout;
    uint64_t chunk_size;
    uint64_t chunk_memory;
    bool fixed_buffers;  /* register the chunk region with io_uring (pins it in RAM) */
    bool zero_copy_send; /* io_uring SEND_ZC for large sends */
};

struct mars_log_conf {
    int level;  /* enum mars_log_level */
    int format; /* enum mars_log_format */
};

/* The `host` field of log events read on this machine. */
struct mars_host_conf {
    bool add;
    char *name; /* empty: $NODE_NAME, else the hostname */
};

/* The admin HTTP API (control/api.c). */
struct mars_api_conf {
    bool enabled;
    char *address; /* host:port, or a unix socket path ("/..." or "unix:/...") */
    char *token;   /* secret; NULL: POST /api/v1/reload is refused */
    int64_t max_connections;
    int64_t request_timeout; /* ns: connect to whole request */
    uint64_t max_body_size;
    uint64_t max_headers_size;
    int readiness;                  /* enum mars_readiness */
    int64_t sink_failure_threshold; /* with readiness sinks: failed requests that fail /readyz */
    int64_t heartbeat_timeout;      /* a loop silent this long makes /healthz fail */
};

struct mars_top_conf {
    char *data_dir;
    struct mars_runtime_conf runtime;
    struct mars_log_conf log;
    struct mars_api_conf api;
    struct mars_host_conf host;
    int orphan_buffers; /* enum mars_orphan_buffers */
};

struct mars_buffer_conf {
    int type; /* enum mars_buffer_type */
    int64_t max_events;
    uint64_t max_bytes;
    int when_full; /* enum mars_when_full */
    /* type disk */
    uint64_t max_size; /* over all workers */
    int sync;          /* enum mars_buffer_sync */
    int compression;   /* enum mars_buffer_compression */
};

struct mars_batching_conf {
    int64_t max_events;
    uint64_t max_bytes;
    int64_t timeout;
};

struct mars_retry_conf {
    int64_t initial_backoff;
    int64_t max_backoff;
    int64_t max_retry_after;
};

struct mars_request_conf {
    int64_t concurrency;
    int64_t timeout;
};

/* Options every transform and sink has, whatever its type. */
struct mars_common_conf {
    struct mars_strlist inputs;
    struct mars_buffer_conf buffer;   /* sinks */
    struct mars_batching_conf batch;  /* sinks */
    struct mars_retry_conf retry;     /* sinks */
    struct mars_request_conf request; /* sinks */
    char *dead_letter;                /* sinks: id of the sink rejected events go to */
};

struct mars_node {
    char *id;
    enum mars_kind kind;
    const struct mars_component_desc *desc;
    void *conf; /* desc->conf_size bytes filled by desc->options */
    struct mars_common_conf common;
    uint32_t *in, nin;   /* upstream node indices */
    uint32_t *in_item;   /* per in edge: the index in common.inputs that made it */
    uint32_t *out, nout; /* downstream node indices */
    uint32_t *out_port;  /* per out edge: 0 = the main output, i + 1 = named port i */
    size_t in_cap, out_cap, out_port_cap, in_item_cap; /* allocated lengths of the four */
    unsigned produces;    /* resolved MARS_DATA_* for sources and transforms */
    uint32_t dead_letter; /* sinks: node index of common.dead_letter, or UINT32_MAX */
    const char *file;
    int line, col; /* position of the component's key */
};

struct mars_config {
    struct mars_cfg_doc *doc;
    struct mars_top_conf top;
    struct mars_node *nodes;
    uint32_t n;
    uint32_t *topo; /* node indices, every node after all of its inputs */
    bool partial;   /* a component is missing or its inputs could not be read (reported):
                     * the graph checks that need every edge (unread ones, no sinks) are
                     * skipped */
};

/* Loads and checks a config file. Returns 0 with *out owned by the caller (free with
 * mars_config_destroy), or -EINVAL with every problem in diag. */
int mars_config_load(const char *path, struct mars_config **out, struct mars_diag *diag);
/* Loads and checks a configuration split over paths[0..n): files, and directories standing
 * for the *.yaml / *.yml files in them (config_files.c), merged into one pipeline. Returns
 * as mars_config_load. */
int mars_config_load_paths(const char *const *paths, size_t n, struct mars_config **out,
                           struct mars_diag *diag);
/* The files paths[0..n) stand for, in load order: *files owned (free with
 * mars_config_files_free). Returns 0, or -EINVAL / -ENOMEM with the problem in diag. */
int mars_config_files(const char *const *paths, size_t n, char ***files, size_t *nfiles,
                      struct mars_diag *diag);
void mars_config_files_free(char **files, size_t n);
/* The merged tree of those files (owned), or NULL with every problem in diag. */
struct mars_cfg_doc *mars_config_read(const char *const *paths, size_t n, struct mars_diag *diag);
/* Same from text in memory (runtime tests); name is used in messages. */
int mars_config_load_string(const char *name, const char *text, struct mars_config **out,
                            struct mars_diag *diag);
void mars_config_destroy(struct mars_config *c);
/* Index of the node named id, or -1. */
int mars_config_find(const struct mars_config *c, const char *id);

/* Schemas of the process options and of the options every transform/sink has; used by the
 * loader and by `mars describe`. */
extern const struct mars_opt mars_top_options[];
extern const struct mars_opt mars_transform_common_options[];
extern const struct mars_opt mars_sink_common_options[];

/* Graph checks (graph.c): resolves inputs, rejects cycles, unread components and type
 * mismatches, fills in/out/produces/topo. Returns 0 or -EINVAL. */
int mars_graph_build(struct mars_config *c, struct mars_diag *diag);

#endif
