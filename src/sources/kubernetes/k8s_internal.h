/*
 * k8s_internal.h - what the parts of the `kubernetes_logs` source share:
 *   kubernetes.c  options, the instances (a layer over the file source: file_hooks),
 *                 selection and the fields put on each event
 *   logs.c        container log lines: the CRI and Docker json-file decoders, timestamps,
 *                 the pod identity in a log path, and the merge of partial lines
 *   meta.c        the pod and namespace cache, filled by a list+watch of the API server
 *   meta_json.c   API objects (Pod, Namespace, lists and watch events) into cache records
 */
#ifndef MARS_K8S_INTERNAL_H
#define MARS_K8S_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/schema.h"
#include "component.h"

/* ---- logs.c ---- */

enum k8s_format { K8S_FMT_UNKNOWN, K8S_FMT_CRI, K8S_FMT_DOCKER };
enum k8s_stream { K8S_STDOUT, K8S_STDERR, K8S_NO_STREAM };

/* One decoded runtime record. msg is borrowed: from the line (CRI) or the arena (Docker). */
struct k8s_rec {
    const char *msg;
    uint32_t len;
    int64_t ts_ns;
    uint8_t stream;  /* enum k8s_stream */
    bool partial;    /* CRI tag P, or a Docker piece whose log has no trailing newline */
};

/* RFC 3339 with 0-9 fraction digits and Z or +hh:mm. Returns 0 or -EINVAL. */
int k8s_parse_time(const char *p, uint32_t n, int64_t *ns);
/* `<ts> <stdout|stderr> <P|F>[:more tags] <message>`. Returns 0 or -EINVAL. */
int k8s_decode_cri(const char *p, uint32_t n, struct k8s_rec *r);
/* `{"log":"..","stream":"..","time":".."}`; fb is scratch, the decoded log goes in arena.
 * Returns 0, -EINVAL (not such a line) or -ENOMEM. */
int k8s_decode_docker(const char *p, uint32_t n, struct mars_fbuild *fb,
                      struct mars_arena *arena, struct k8s_rec *r);

/* The identity in `<root>/<ns>_<pod>_<uid>/<container>/<restart>.log[.<rotated>]`. Strings
 * are owned (free with k8s_path_fini). Returns 0, -EINVAL (no such layout) or -ENOMEM. */
struct k8s_path {
    char *ns, *pod, *uid, *container;
    uint32_t restart;
};
int k8s_path_parse(const char *path, struct k8s_path *out);
void k8s_path_fini(struct k8s_path *p);

struct k8s_piece {
    const char *p;
    uint32_t n;
};

/* A partial line being put together, one per stream. */
struct k8s_run {
    struct k8s_piece *pieces; /* reused across batches */
    uint32_t n;
    size_t cap;
    uint64_t bytes;
    int64_t ts_ns;
    const char *raw_start; /* the first raw line of the run, in the batch's chunk */
    uint32_t out_at;       /* output index when the run began */
    bool active, cut;      /* cut: an earlier part was emitted at the size bound */
};

struct k8s_dec_stats {
    uint64_t malformed, merged, oversize;
};

/* Decoding scratch of one instance (one worker), reused for every batch. */
struct k8s_dec {
    uint64_t max_merge; /* bound of a merged line */
    struct mars_fbuild fb;
    struct k8s_run run[2];
    uint8_t *streams; /* stream of output event i of the last k8s_decode_batch */
    size_t streams_cap;
    struct k8s_dec_stats st;
};

void k8s_dec_init(struct k8s_dec *d, uint64_t max_merge);
void k8s_dec_fini(struct k8s_dec *d);
/*
 * Rewrites the raw lines of one file in b (exclusive, in file order) into container log
 * events: message, runtime timestamp, stream in d->streams[i]; partial pieces merged
 * (at most max_merge bytes an event, the rest in further events flagged OVERSIZE);
 * malformed lines kept whole as their raw text (stream K8S_NO_STREAM, counted). *fmt is
 * the file's format, detected at its first line. Returns as file_hooks.lines: NULL, or the
 * first byte of the lines given back (an unfinished partial line; not when `final`).
 */
const char *k8s_decode_batch(struct k8s_dec *d, uint8_t *fmt, struct mars_batch *b, bool final);

/* ---- kubernetes.c: options ---- */

struct k8s_conf {
    char *pods_root;
    int read_from;
    uint64_t max_line_bytes, max_merge_bytes;
    int64_t glob_interval, checkpoint_interval, line_timeout, ignore_older;
    int64_t max_open_files;
    bool metadata;
    char *api_url, *node_name, *token_file, *ca_file;
    bool tls_verify;
    int64_t delete_grace, watch_timeout;
    struct mars_strlist include_namespaces, exclude_namespaces, exclude_containers;
    char *label_selector;
};

/* ---- meta.c: the metadata cache ---- */

struct k8s_kv {
    const char *k, *v;
    uint32_t kl, vl;
};

/* What events of one container get from its pod, copied into a batch arena (all strings
 * NUL-terminated, NULL when absent). */
struct k8s_view {
    const char *node, *pod_ip, *image, *owner_kind, *owner_name;
    const char *parser; /* annotation mars.io/parser */
    bool exclude;       /* annotation mars.io/exclude: "true" */
    struct k8s_kv *labels, *annotations, *ns_labels;
    uint32_t nlabels, nannotations, nns_labels;
};

struct k8s_meta;

/* The cache of source `id`, shared by its instances: the first acquire starts its watch
 * thread, the last release stops it. conf is borrowed until the last release. Returns
 * NULL (logged) when the API address or node name cannot be worked out. backend: the ev
 * backend name for the watch thread's loop (the workers'). */
struct k8s_meta *k8s_meta_acquire(const char *id, const struct k8s_conf *conf,
                                  const char *backend);
void k8s_meta_release(struct k8s_meta *m);
/* Looks up pod `uid` and copies what a container's events need into `a`. Returns 1
 * (found), 0 (unknown pod), -ENOMEM. Any worker thread; holds the cache lock briefly. */
int k8s_meta_lookup(struct k8s_meta *m, const char *uid, const char *container,
                    struct mars_arena *a, struct k8s_view *out);
/* Lines shipped without metadata because their pod was unknown (any thread). */
void k8s_meta_count_unknown(struct k8s_meta *m, uint64_t n);

/* A cached object: built by meta_json.c on the watch thread, every string in its own
 * arena; immutable once in the cache (a change replaces the whole record). */
struct k8s_ctr {
    const char *name, *image;
};
struct k8s_pod {
    struct mars_arena a;
    const char *uid, *ns, *name, *node, *ip, *owner_kind, *owner_name, *parser;
    bool exclude;
    struct k8s_kv *labels, *annotations;
    uint32_t nlabels, nannotations;
    struct k8s_ctr *ctrs;
    uint32_t nctrs;
    int64_t deleted_ns; /* monotonic time it was deleted; 0: alive */
    unsigned gen;       /* list generation that last saw it */
    struct k8s_pod *next;
};
struct k8s_ns {
    struct mars_arena a;
    const char *name;
    struct k8s_kv *labels;
    uint32_t nlabels;
    unsigned gen;
    struct k8s_ns *next;
};
void k8s_pod_free(struct k8s_pod *p);
void k8s_ns_free(struct k8s_ns *n);

/* Cache updates, from the watch thread (take ownership of the record). A pod that is
 * deleted stays for delete_grace. */
void k8s_meta_put_pod(struct k8s_meta *m, struct k8s_pod *p);
void k8s_meta_delete_pod(struct k8s_meta *m, const char *uid, int64_t now);
void k8s_meta_put_ns(struct k8s_meta *m, struct k8s_ns *n);
void k8s_meta_delete_ns(struct k8s_meta *m, const char *name);
/* After a full list of generation gen: what it did not contain was deleted meanwhile. */
void k8s_meta_list_done(struct k8s_meta *m, bool pods, unsigned gen, int64_t now);
/* Drops pods deleted more than delete_grace ago. */
void k8s_meta_expire(struct k8s_meta *m, int64_t now);
size_t k8s_meta_pods(struct k8s_meta *m);

/* ---- meta_json.c ---- */

/* The Pod or Namespace at builder entry obj (parsed by mars_json_parse) as a record
 * stamped with gen; NULL when it is not one (no uid or name) or out of memory. */
struct k8s_pod *k8s_pod_from_fb(const struct mars_fbuild *fb, uint32_t obj, unsigned gen);
struct k8s_ns *k8s_ns_from_fb(const struct mars_fbuild *fb, uint32_t obj, unsigned gen);
/* Member `a.b` (dot-separated path of object keys) of obj, or MARS_FIELD_NIL. */
uint32_t k8s_fb_at(const struct mars_fbuild *fb, uint32_t obj, const char *path);
/* Length of the JSON value at the start of p (validated input), or 0. */
size_t k8s_json_skip(const char *p, size_t n);

/* ---- watch.c ---- */

struct k8s_watch;
/* Starts the list+watch thread for m. Returns owned (stop with k8s_watch_stop) or NULL. */
struct k8s_watch *k8s_watch_start(struct k8s_meta *m, const struct k8s_conf *conf,
                                  const char *id, const char *backend);
void k8s_watch_stop(struct k8s_watch *w);

#endif
