/*
 * kubernetes_internal.h - what the parts of the `kubernetes_logs` source share:
 *   kubernetes.c  options, the instances (a layer over the file source: file_hooks),
 *                 selection and the fields put on each event
 *   logs.c        container log lines: the CRI and Docker json-file decoders, timestamps,
 *                 the pod identity in a log path, and the merge of partial lines
 *   meta.c        the pod and namespace cache, filled by a list+watch of the API server,
 *                 shared by every component of the engine that needs this node's pods
 *                 (pods.h is its public face)
 *   meta_json.c   API objects (Pod, Namespace, lists and watch events) into cache records
 *   watch.c       the list+watch thread
 */
#ifndef MARS_KUBERNETES_INTERNAL_H
#define MARS_KUBERNETES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/schema.h"
#include "component.h"
#include "sources/kubernetes/pods.h"

/* ---- logs.c ---- */

enum kubernetes_format { KUBERNETES_FMT_UNKNOWN, KUBERNETES_FMT_CRI, KUBERNETES_FMT_DOCKER };
enum kubernetes_stream { KUBERNETES_STDOUT, KUBERNETES_STDERR, KUBERNETES_NO_STREAM };

/* One decoded runtime record. msg is borrowed: from the line (CRI) or the arena (Docker). */
struct kubernetes_rec {
    const char *msg;
    uint32_t len;
    int64_t ts_ns;
    uint8_t stream; /* enum kubernetes_stream */
    bool partial;   /* CRI tag P, or a Docker piece whose log has no trailing newline */
};

/* RFC 3339 with 0-9 fraction digits and Z or +hh:mm. Returns 0 or -EINVAL. */
int mars_kubernetes_parse_time(const char *p, uint32_t n, int64_t *ns);
/* `<ts> <stdout|stderr> <P|F>[:more tags] <message>`. Returns 0 or -EINVAL. */
int mars_kubernetes_decode_cri(const char *p, uint32_t n, struct kubernetes_rec *r);
/* `{"log":"..","stream":"..","time":".."}`; fb is scratch, the decoded log goes in arena.
 * Returns 0, -EINVAL (not such a line) or -ENOMEM. */
int mars_kubernetes_decode_docker(const char *p, uint32_t n, struct mars_fbuild *fb,
                                  struct mars_arena *arena, struct kubernetes_rec *r);

/* The identity in `<root>/<ns>_<pod>_<uid>/<container>/<restart>.log[.<rotated>]`. Strings
 * are owned (free with mars_kubernetes_path_fini). Returns 0, -EINVAL (no such layout) or -ENOMEM.
 */
struct kubernetes_path {
    char *ns, *pod, *uid, *container;
    uint32_t restart;
};
int mars_kubernetes_path_parse(const char *path, struct kubernetes_path *out);
void mars_kubernetes_path_fini(struct kubernetes_path *p);

struct kubernetes_piece {
    const char *p;
    uint32_t n;
};

/* A partial line being put together, one per stream. */
struct kubernetes_run {
    struct kubernetes_piece *pieces; /* reused across batches */
    uint32_t n;
    size_t cap;
    uint64_t bytes;
    int64_t ts_ns;
    const char *raw_start; /* the first raw line of the run, in the batch's chunk */
    uint32_t out_at;       /* output index when the run began */
    bool active, cut;      /* cut: an earlier part was emitted at the size bound */
};

struct kubernetes_dec_stats {
    uint64_t malformed, merged, oversize;
};

/* Decoding scratch of one instance (one worker), reused for every batch. */
struct kubernetes_dec {
    uint64_t max_merge; /* bound of a merged line */
    struct mars_fbuild fb;
    struct kubernetes_run run[2];
    uint8_t *streams; /* stream of output event i of the last mars_kubernetes_decode_batch */
    size_t streams_cap;
    struct kubernetes_dec_stats st;
};

void mars_kubernetes_dec_init(struct kubernetes_dec *d, uint64_t max_merge);
void mars_kubernetes_dec_fini(struct kubernetes_dec *d);
/*
 * Rewrites the raw lines of one file in b (exclusive, in file order) into container log
 * events: message, runtime timestamp, stream in d->streams[i]; partial pieces merged
 * (at most max_merge bytes an event, the rest in further events flagged OVERSIZE);
 * malformed lines kept whole as their raw text (stream KUBERNETES_NO_STREAM, counted). *fmt is
 * the file's format, detected at its first line. Returns as file_hooks.lines: NULL, or the
 * first byte of the lines given back (an unfinished partial line; not when `final`).
 */
const char *mars_kubernetes_decode_batch(struct kubernetes_dec *d, uint8_t *fmt,
                                         struct mars_batch *b, bool final);

/* ---- kubernetes.c: options ---- */

struct kubernetes_conf {
    char *pods_root;
    int read_from;
    uint64_t max_line_bytes, max_merge_bytes;
    int64_t glob_interval, checkpoint_interval, line_timeout, ignore_older, notify_delay;
    int64_t max_open_files;
    bool metadata;
    struct mars_kubernetes_api_conf api;
    int64_t delete_grace;
    struct mars_strlist include_namespaces, exclude_namespaces, exclude_containers;
    char *label_selector;
};

/* ---- meta.c: the metadata cache ---- */

/* What events of one container get from its pod, copied into a batch arena (all strings
 * NUL-terminated, NULL when absent). */
struct kubernetes_view {
    const char *node, *pod_ip, *image, *owner_kind, *owner_name;
    const char *parser; /* annotation mars.io/parser-<container>, else mars.io/parser */
    bool exclude;       /* mars.io/exclude-<container>, else mars.io/exclude: "true" */
    struct mars_kubernetes_kv *labels, *annotations, *ns_labels;
    uint32_t nlabels, nannotations, nns_labels;
};

/* The connection of a watch, worked out from a mars_kubernetes_api_conf and the
 * environment: base URL (no trailing slash) and node name. */
struct kubernetes_target {
    char base[1024], node[256];
};
/* Returns 0, or -EINVAL (logged under id) when the API server or node is unknown. */
int mars_kubernetes_target(const struct mars_kubernetes_api_conf *c, const char *id,
                           struct kubernetes_target *t);

/* kubernetes_logs' view: the shared cache (pods.h acquires it) keeps deleted pods for the
 * longest delete_grace any user asked (raised, never lowered, while it runs). */
void mars_kubernetes_meta_keep_deleted(struct mars_kubernetes_pods *m, int64_t delete_grace);
/* Waits up to `secs` for the first pod and namespace lists (kubernetes_logs at start). */
void mars_kubernetes_meta_wait_synced(struct mars_kubernetes_pods *m, int secs);
/* Looks up pod `uid` and copies what a container's events need into `a`. Returns 1
 * (found), 0 (unknown pod), -ENOMEM. Any worker thread; holds the cache lock briefly. */
int mars_kubernetes_meta_lookup(struct mars_kubernetes_pods *m, const char *uid,
                                const char *container, struct mars_arena *a,
                                struct kubernetes_view *out);
/* Lines shipped without metadata because their pod was unknown (any thread). */
void mars_kubernetes_meta_count_unknown(struct mars_kubernetes_pods *m, uint64_t n);

/* A cached object: built by meta_json.c on the watch thread, every string in its own
 * arena; immutable once in the cache (a change replaces the whole record). */
struct kubernetes_ctr {
    const char *name, *image;
};
struct kubernetes_pod {
    struct mars_arena a;
    const char *uid, *ns, *name, *node, *ip, *owner_kind, *owner_name, *parser;
    bool exclude;
    struct mars_kubernetes_kv *labels, *annotations;
    uint32_t nlabels, nannotations;
    const char *phase;
    const char **ips; /* status.podIPs, else status.podIP */
    uint32_t nips;
    bool ready, terminating;
    struct kubernetes_ctr *ctrs;
    uint32_t nctrs;
    int64_t deleted_ns; /* monotonic time it was deleted; 0: alive */
    unsigned gen;       /* list generation that last saw it */
    struct kubernetes_pod *next;
};
struct kubernetes_ns {
    struct mars_arena a;
    const char *name;
    struct mars_kubernetes_kv *labels;
    uint32_t nlabels;
    unsigned gen;
    struct kubernetes_ns *next;
};
void mars_kubernetes_pod_destroy(struct kubernetes_pod *p);
void mars_kubernetes_ns_destroy(struct kubernetes_ns *n);

/* Cache updates, from the watch thread (take ownership of the record). A pod that is
 * deleted stays for delete_grace. */
void mars_kubernetes_meta_put_pod(struct mars_kubernetes_pods *m, struct kubernetes_pod *p);
void mars_kubernetes_meta_delete_pod(struct mars_kubernetes_pods *m, const char *uid, int64_t now);
void mars_kubernetes_meta_put_ns(struct mars_kubernetes_pods *m, struct kubernetes_ns *n);
void mars_kubernetes_meta_delete_ns(struct mars_kubernetes_pods *m, const char *name);
/* After a full list of generation gen: what it did not contain was deleted meanwhile. */
void mars_kubernetes_meta_list_done(struct mars_kubernetes_pods *m, bool pods, unsigned gen,
                                    int64_t now);
/* Drops pods deleted more than delete_grace ago. */
void mars_kubernetes_meta_expire(struct mars_kubernetes_pods *m, int64_t now);

/* ---- meta_json.c ---- */

/* The Pod or Namespace at builder entry obj (parsed by mars_json_parse) as a record
 * stamped with gen; NULL when it is not one (no uid or name) or out of memory. */
struct kubernetes_pod *mars_kubernetes_pod_from_fb(const struct mars_fbuild *fb, uint32_t obj,
                                                   unsigned gen);
struct kubernetes_ns *mars_kubernetes_ns_from_fb(const struct mars_fbuild *fb, uint32_t obj,
                                                 unsigned gen);
/* Member `a.b` (dot-separated path of object keys) of obj, or MARS_FIELD_NIL. */
uint32_t mars_kubernetes_fb_at(const struct mars_fbuild *fb, uint32_t obj, const char *path);
/* Length of the JSON value at the start of p (validated input), or 0. */
size_t mars_kubernetes_json_skip(const char *p, size_t n);

/* ---- pod_parser.c: the parser a pod's annotation names ---- */

struct kubernetes_parser;
/* Owned (free with mars_kubernetes_parser_destroy), or NULL on -ENOMEM. */
struct kubernetes_parser *mars_kubernetes_parser_create(struct mars_source *s);
void mars_kubernetes_parser_destroy(struct kubernetes_parser *p);
/* Parses every event of b (exclusive, fields attached) with format `name` at the root. */
void mars_kubernetes_parser_apply(struct kubernetes_parser *p, const char *name,
                                  struct mars_batch *b);

/* ---- watch.c ---- */

struct kubernetes_watch;
/* Starts the list+watch thread for m against t, with api's token, CA and timeouts (api is
 * borrowed until stop). Returns owned (stop with mars_kubernetes_watch_stop) or NULL. */
struct kubernetes_watch *mars_kubernetes_watch_start(struct mars_kubernetes_pods *m,
                                                     const struct mars_kubernetes_api_conf *api,
                                                     const struct kubernetes_target *t,
                                                     const char *id, const char *backend);
void mars_kubernetes_watch_stop(struct kubernetes_watch *w);

#endif
