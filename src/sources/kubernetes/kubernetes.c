/*
 * kubernetes.c - the `kubernetes_logs` source: every container's stdout and stderr on a
 * node, from the files the kubelet and the runtime keep under /var/log/pods, with the
 * identity and metadata of its pod.
 *
 * It is a thin layer over the file source (sources/file/): that source finds, tails,
 * rotates, checkpoints and acknowledges the files exactly as for `file`, from a file_conf
 * made here (include <pods_root>/<pod dir>/<container>/N.log and its rotated N.log.<time>
 * names; never the .gz and .tmp files kubelet makes of older ones). Through file_hooks it
 * hands each batch of raw lines of a file to this layer, which decodes CRI or Docker lines
 * and merges partial ones (logs.c; an unfinished partial line is given back to the file
 * source's carry so no checkpoint passes it), applies the selection, and puts the fields
 * on every event: stream, and under `kubernetes` the pod's namespace, name, uid, container
 * and restart count from the path, plus, with `metadata`, the pod's labels, annotations,
 * node, IP, container image, owner and namespace labels from the API server (meta.c).
 *
 * Fields cost one template per batch: the members are built once (strings copied into the
 * batch arena, so a pod deleted from the cache meanwhile cannot pull them away) and each
 * event gets a copy of that array with its stream filled in; nothing is allocated per line
 * outside the batch arena.
 *
 * Thread: one instance per worker (files are split by inode, as for `file`); the metadata
 * cache is the engine's shared pod watch of this API server and node (meta.c, pods.h).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/file/file_internal.h"
#include "core/ev.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/metrics.h"
#include "kubernetes_internal.h"
#include "component.h"

#define SYNC_WAIT_S 3 /* startup: how long an instance waits for the first pod list */

static const char *const read_from_names[] = {"beginning", "end", NULL};

#define OFF(f) offsetof(struct kubernetes_conf, f)
static const struct mars_opt kubernetes_options[] = {
    {.name = "pods_root",
     .type = MARS_OPT_STRING,
     .offset = OFF(pods_root),
     .def = "/var/log/pods",
     .desc = "Directory the kubelet keeps container logs in: <namespace>_<pod>_<uid>/"
             "<container>/<restart>.log."},
    {.name = "read_from",
     .type = MARS_OPT_ENUM,
     .offset = OFF(read_from),
     .def = "beginning",
     .choices = read_from_names,
     .desc = "Where to start in files that exist when this source first starts (no "
             "checkpoints yet); files found later are always read from their beginning."},
    {.name = "max_line_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_line_bytes),
     .def = "1MiB",
     .min = 1024,
     .max = 64 << 20,
     .desc = "Longest raw line of a log file (a runtime writes at most 16KiB a record)."},
    {.name = "max_merge_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_merge_bytes),
     .def = "1MiB",
     .min = 1024,
     .max = 64 << 20,
     .desc = "Longest line put together from a runtime's partial records; a longer one is "
             "shipped in pieces flagged oversize and counted."},
    {.name = "glob_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(glob_interval),
     .def = "10s",
     .min = 10000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "How often pods_root is scanned again. inotify reports new containers' files "
             "at once; the scan finds what it could not report (a directory it could not "
             "watch, pods_root made after mars started, no inotify at all)."},
    {.name = "checkpoint_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(checkpoint_interval),
     .def = "1s",
     .min = 10000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "How often acknowledged positions are written to data_dir."},
    {.name = "line_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(line_timeout),
     .def = "5s",
     .min = 1000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "A partial line whose rest has not come for this long is shipped as it is."},
    {.name = "notify_delay",
     .type = MARS_OPT_DURATION,
     .offset = OFF(notify_delay),
     .def = "100ms",
     .min = 0,
     .max = 1000000000,
     .desc = "How long a log file that changed waits before it is read, so that a runtime's "
             "writes (one per line) are read together; 0 reads at once. Longer than "
             "`file`'s 40ms: at light load the reads, not the lines, are most of the CPU "
             "(docs/kubernetes.md). Files being read out are not delayed."},
    {.name = "ignore_older",
     .type = MARS_OPT_DURATION,
     .offset = OFF(ignore_older),
     .def = "0s",
     .desc = "Skip files not modified for this long that have no checkpoint; 0 reads all."},
    {.name = "max_open_files",
     .type = MARS_OPT_INT,
     .offset = OFF(max_open_files),
     .def = "4096",
     .min = 1,
     .max = 1000000,
     .desc = "Most log files open at once (split over the workers); more wait their turn."},
    {.name = "metadata",
     .type = MARS_OPT_BOOL,
     .offset = OFF(metadata),
     .def = "true",
     .desc = "Add each pod's labels, annotations, node, IP, image, owner and namespace "
             "labels, watched from the API server."},
    MARS_KUBERNETES_API_OPTIONS(struct kubernetes_conf, api),
    {.name = "delete_grace",
     .type = MARS_OPT_DURATION,
     .offset = OFF(delete_grace),
     .def = "5m",
     .min = 0,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "How long a deleted pod's metadata is kept, so its last lines are still "
             "enriched."},
    {.name = "include_namespaces",
     .type = MARS_OPT_LIST,
     .offset = OFF(include_namespaces),
     .desc = "Namespaces (glob patterns) to collect; empty: all."},
    {.name = "exclude_namespaces",
     .type = MARS_OPT_LIST,
     .offset = OFF(exclude_namespaces),
     .desc = "Namespaces (glob patterns) never collected."},
    {.name = "exclude_containers",
     .type = MARS_OPT_LIST,
     .offset = OFF(exclude_containers),
     .desc = "Container names (glob patterns) never collected."},
    {.name = "label_selector",
     .type = MARS_OPT_STRING,
     .offset = OFF(label_selector),
     .desc = "Collect only pods whose labels match `k=v`, `k!=v`, `k`, `!k` terms joined by "
             "commas (needs metadata; pods not yet known are collected)."},
    {.name = NULL},
};

/* ---- label selector ---- */

struct kubernetes_term {
    char *key, *val; /* val NULL: existence */
    bool neg;
};

static void free_terms(struct kubernetes_term *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].key);
        free(t[i].val);
    }
    free(t);
}

static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n ? strndup(s, n) : NULL;
}

/* Parses `k=v,k==v,k!=v,k,!k`. Returns 0 (owned terms in *out) or -EINVAL / -ENOMEM. */
static int parse_selector(const char *s, struct kubernetes_term **out, size_t *nout)
{
    struct kubernetes_term *t = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    *nout = 0;
    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (mars_grow(&t, &cap, n + 1, sizeof(*t))) {
            free_terms(t, n);
            return -ENOMEM;
        }
        struct kubernetes_term *x = &t[n++];
        memset(x, 0, sizeof(*x));
        const char *op = memchr(s, '=', len);
        if (op) {
            x->neg = op > s && op[-1] == '!';
            const char *ke = x->neg ? op - 1 : op, *vs = op + 1 + (op[1] == '=' && !x->neg);
            x->key = trimmed(s, (size_t)(ke - s));
            x->val = trimmed(vs, (size_t)(s + len - vs));
            if (!x->val)
                x->val = strdup("");
        } else {
            const char *k = s;
            size_t kl = len;
            while (kl && *k == ' ')
                k++, kl--;
            x->neg = kl && *k == '!';
            x->key = trimmed(k + x->neg, kl - x->neg);
        }
        if (!x->key || !*x->key || (op && !x->val)) {
            free_terms(t, n);
            return -EINVAL;
        }
        s = e ? e + 1 : NULL;
    }
    *out = t;
    *nout = n;
    return 0;
}

static const struct mars_kubernetes_kv *find_kv(const struct mars_kubernetes_kv *v, uint32_t n,
                                                const char *k)
{
    size_t kl = strlen(k);
    for (uint32_t i = 0; i < n; i++)
        if (v[i].kl == kl && memcmp(v[i].k, k, kl) == 0)
            return &v[i];
    return NULL;
}

static bool selected(const struct kubernetes_term *t, size_t n, const struct kubernetes_view *v)
{
    for (size_t i = 0; i < n; i++) {
        const struct mars_kubernetes_kv *l = find_kv(v->labels, v->nlabels, t[i].key);
        bool hit = t[i].val ? l && l->vl == strlen(t[i].val) && memcmp(l->v, t[i].val, l->vl) == 0
                            : l != NULL;
        if (hit == t[i].neg)
            return false;
    }
    return true;
}

static bool any_match(const struct mars_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s, 0) == 0)
            return true;
    return false;
}

static int kubernetes_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct kubernetes_conf *c = conf;
    struct kubernetes_term *t;
    size_t n;
    const char *bad = NULL, *key = NULL;
    if (!c->pods_root || c->pods_root[0] != '/')
        bad = "must be an absolute directory", key = "pods_root";
    else if (c->label_selector && parse_selector(c->label_selector, &t, &n) == -EINVAL)
        bad = "terms are k=v, k!=v, k or !k, separated by commas", key = "label_selector";
    else if (c->label_selector)
        free_terms(t, n);
    if (!bad)
        return 0;
    const struct mars_cfg_node *at = mars_cfg_at(node, key, NULL);
    mars_diag_add(diag, at->file, at->line, at->col, "option '%s': %s", key, bad);
    return -EINVAL;
}

/* ---- instances and files ---- */

struct kubernetes_instance {
    struct mars_source *src;
    const struct kubernetes_conf *conf;
    struct file_conf fconf;
    struct kubernetes_dec dec;
    struct mars_fbuild fb;
    struct mars_kubernetes_pods *meta; /* NULL without metadata */
    struct kubernetes_term *sel;
    size_t nsel;
    uint64_t unknown_path, excluded;
    struct mars_mseries *no_meta;     /* mars_kubernetes_events_without_metadata_total */
    struct kubernetes_parser *parser; /* for pods that name one (pod_parser.c) */
    unsigned shard;
};

struct kubernetes_file {
    struct kubernetes_path id;
    bool known;    /* the path has the kubelet's layout */
    bool excluded; /* by namespace or container name */
    uint8_t fmt;   /* enum kubernetes_format */
    char restart[12];
};

static void *kubernetes_track(void *ctx, const char *path)
{
    struct kubernetes_instance *k = ctx;
    struct kubernetes_file *kf = calloc(1, sizeof(*kf));
    if (!kf)
        return NULL;
    int rc = mars_kubernetes_path_parse(path, &kf->id);
    if (rc == -ENOMEM) {
        free(kf);
        return NULL;
    }
    kf->known = rc == 0;
    if (!kf->known) {
        k->unknown_path++;
        mars_warn(mars_source_id(k->src),
                  "%s is not <ns>_<pod>_<uid>/<container>/<n>.log: "
                  "its lines go without pod fields",
                  path);
        return kf;
    }
    snprintf(kf->restart, sizeof(kf->restart), "%u", kf->id.restart);
    const struct kubernetes_conf *c = k->conf;
    kf->excluded = (c->include_namespaces.n && !any_match(&c->include_namespaces, kf->id.ns)) ||
                   any_match(&c->exclude_namespaces, kf->id.ns) ||
                   any_match(&c->exclude_containers, kf->id.container);
    return kf;
}

static void kubernetes_forget(void *ctx, void *fstate)
{
    struct kubernetes_file *kf = fstate;
    mars_kubernetes_path_fini(&kf->id);
    free(kf);
}

/* ---- fields ---- */

static const char *arena_str(struct mars_arena *a, const char *s)
{
    return s ? mars_arena_strndup(a, s, strlen(s)) : NULL;
}

#define PUT(fb, parent, lit, kind, v, n)                                                           \
    mars_fbuild_put((fb), (parent), lit, sizeof(lit) - 1, (kind), (v), (uint32_t)(n), 0, false,    \
                    NULL)

static void put_str(struct mars_fbuild *fb, uint32_t obj, const char *key, uint32_t kl,
                    const char *v)
{
    if (v)
        mars_fbuild_put(fb, obj, key, kl, MARS_FIELD_STRING, v, (uint32_t)strlen(v), 0, false,
                        NULL);
}

static void put_map(struct mars_fbuild *fb, uint32_t obj, const char *key, uint32_t kl,
                    const struct mars_kubernetes_kv *kv, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t m = mars_fbuild_put(fb, obj, key, kl, MARS_FIELD_OBJECT, NULL, 0, 0, false, NULL);
    for (uint32_t i = 0; i < n && m != MARS_FIELD_NIL; i++)
        mars_fbuild_put(fb, m, kv[i].k, kv[i].kl, MARS_FIELD_STRING, kv[i].v, kv[i].vl, 0, true,
                        NULL);
}

/* The members every event of this batch shares; the root's last member is `stream`.
 * Returns false when out of memory. */
static bool build_template(struct kubernetes_instance *k, const struct kubernetes_file *kf,
                           struct mars_batch *b, const struct kubernetes_view *v)
{
    struct mars_fbuild *fb = &k->fb;
    struct mars_arena *a = &b->arena;
    mars_fbuild_reset(fb, a);
    if (kf->known) {
        uint32_t o = PUT(fb, 0, "kubernetes", MARS_FIELD_OBJECT, NULL, 0);
        if (o == MARS_FIELD_NIL)
            return false;
        put_str(fb, o, "namespace", 9, arena_str(a, kf->id.ns));
        put_str(fb, o, "pod", 3, arena_str(a, kf->id.pod));
        put_str(fb, o, "pod_uid", 7, arena_str(a, kf->id.uid));
        put_str(fb, o, "container", 9, arena_str(a, kf->id.container));
        const char *rc = arena_str(a, kf->restart);
        if (rc)
            PUT(fb, o, "restart_count", MARS_FIELD_NUMBER, rc, strlen(rc));
        if (v) {
            put_str(fb, o, "node", 4, v->node);
            put_str(fb, o, "pod_ip", 6, v->pod_ip);
            put_str(fb, o, "container_image", 15, v->image);
            if (v->owner_kind && v->owner_name) {
                uint32_t ow = PUT(fb, o, "owner", MARS_FIELD_OBJECT, NULL, 0);
                put_str(fb, ow, "kind", 4, v->owner_kind);
                put_str(fb, ow, "name", 4, v->owner_name);
            }
            put_str(fb, o, "parser", 6, v->parser);
            put_map(fb, o, "labels", 6, v->labels, v->nlabels);
            put_map(fb, o, "annotations", 11, v->annotations, v->nannotations);
            put_map(fb, o, "namespace_labels", 16, v->ns_labels, v->nns_labels);
        }
    }
    return PUT(fb, 0, "stream", MARS_FIELD_STRING, "stdout", 6) != MARS_FIELD_NIL;
}

/* Gives ev a copy of the template with its stream (or none: a malformed line). */
static int attach(struct mars_batch *b, struct mars_event *ev, const struct mars_fbuild *fb,
                  uint8_t stream)
{
    uint32_t n = fb->n - (stream == KUBERNETES_NO_STREAM);
    struct mars_fields *f = mars_arena_alloc(&b->arena, sizeof(*f));
    struct mars_field *v = mars_arena_alloc(&b->arena, n * sizeof(*v));
    if (!f || !v)
        return -ENOMEM;
    memcpy(v, fb->v, n * sizeof(*v));
    if (stream == KUBERNETES_STDERR)
        v[n - 1].value = "stderr";
    if (stream == KUBERNETES_NO_STREAM) {
        /* drop `stream`, the root's last member */
        uint32_t prev = MARS_FIELD_NIL;
        for (uint32_t m = v[0].first; m != fb->n - 1 && m != MARS_FIELD_NIL; m = v[m].next)
            prev = m;
        v[0].last = prev;
        if (prev == MARS_FIELD_NIL)
            v[0].first = MARS_FIELD_NIL;
        else
            v[prev].next = MARS_FIELD_NIL;
    }
    *f = (struct mars_fields){.v = v, .n = n, .cap = n, .owner = &b->arena};
    ev->fields = f;
    return 0;
}

static void drop_all(struct mars_batch *b)
{
    b->n = 0;
    b->bytes = 0;
}

static const char *kubernetes_lines(void *ctx, void *fstate, struct mars_batch *b, bool final)
{
    struct kubernetes_instance *k = ctx;
    struct kubernetes_file *kf = fstate;
    struct kubernetes_view view, *v = NULL;
    if (kf->excluded) {
        k->excluded += b->n;
        drop_all(b);
        return NULL;
    }
    struct kubernetes_dec_stats before = k->dec.st;
    const char *keep = mars_kubernetes_decode_batch(&k->dec, &kf->fmt, b, final);
    struct mars_stats *ss = mars_source_stats(k->src);
    mars_stat_add(&ss->errors[MARS_ERR_PARSE], k->dec.st.malformed - before.malformed);
    mars_stat_add(&ss->errors[MARS_ERR_LIMIT], k->dec.st.oversize - before.oversize);
    if (b->n == 0)
        return keep;
    if (k->meta && kf->known) {
        int rc =
            mars_kubernetes_meta_lookup(k->meta, kf->id.uid, kf->id.container, &b->arena, &view);
        if (rc == 1) {
            v = &view;
            if (v->exclude || !selected(k->sel, k->nsel, v)) {
                k->excluded += b->n;
                drop_all(b);
                return keep;
            }
        } else if (rc == 0) {
            mars_kubernetes_meta_count_unknown(k->meta, b->n);
            mars_mseries_add(k->no_meta, k->shard, b->n);
        }
    }
    if (!build_template(k, kf, b, v)) {
        mars_stat_add(&mars_source_stats(k->src)->errors[MARS_ERR_MEMORY], 1);
        return keep;
    }
    for (uint32_t i = 0; i < b->n; i++)
        if (attach(b, &b->ev[i], &k->fb, k->dec.streams[i])) {
            mars_stat_add(&mars_source_stats(k->src)->errors[MARS_ERR_MEMORY], 1);
            return keep;
        }
    if (v && v->parser && k->parser)
        mars_kubernetes_parser_apply(k->parser, v->parser, b);
    return keep;
}

static const struct file_hooks kubernetes_hooks = {
    .track = kubernetes_track, .forget = kubernetes_forget, .lines = kubernetes_lines};

/* ---- life cycle ---- */

static void instance_destroy(struct kubernetes_instance *k)
{
    if (k->meta)
        mars_kubernetes_pods_release(k->meta);
    mars_kubernetes_parser_destroy(k->parser);
    mars_kubernetes_dec_fini(&k->dec);
    mars_fbuild_fini(&k->fb);
    free_terms(k->sel, k->nsel);
    for (size_t i = 0; i < k->fconf.include.n; i++)
        free(k->fconf.include.v[i]);
    for (size_t i = 0; i < k->fconf.exclude.n; i++)
        free(k->fconf.exclude.v[i]);
    free(k->fconf.include.v);
    free(k->fconf.exclude.v);
    free(k);
}

static int set_patterns(struct mars_strlist *l, const char *root, const char *const *suffix)
{
    size_t n = 0;
    while (suffix[n])
        n++;
    l->v = calloc(n, sizeof(char *));
    if (!l->v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(root) + strlen(suffix[i]) + 1;
        if (!(l->v[i] = malloc(len)))
            return -ENOMEM;
        snprintf(l->v[i], len, "%s%s", root, suffix[i]);
        l->n++;
    }
    return 0;
}

/* What the file source is told: the kubelet's layout under pods_root. */
static int make_file_conf(struct kubernetes_instance *k)
{
    static const char *const inc[] = {"/*/*/*.log", "/*/*/*.log.*", NULL};
    static const char *const exc[] = {"/*/*/*.gz", "/*/*/*.tmp", NULL};
    const struct kubernetes_conf *c = k->conf;
    struct file_conf *f = &k->fconf;
    char root[4096];
    size_t rl = strlen(c->pods_root);
    while (rl > 1 && c->pods_root[rl - 1] == '/')
        rl--;
    if (rl >= sizeof(root))
        return -ENAMETOOLONG;
    memcpy(root, c->pods_root, rl);
    root[rl] = '\0';
    if (set_patterns(&f->include, root, inc) || set_patterns(&f->exclude, root, exc))
        return -ENOMEM;
    f->read_from = c->read_from;
    f->max_line_bytes = c->max_line_bytes;
    f->oversize = MARS_OVERSIZE_SPLIT;
    f->line_delimiter = "\n";
    f->glob_interval = c->glob_interval;
    f->max_open_files = c->max_open_files;
    f->ignore_older = c->ignore_older;
    f->fingerprint = 256;
    f->checkpoint_interval = c->checkpoint_interval;
    f->watch = WATCH_INOTIFY;
    f->charset = CHARSET_UTF8;
    f->line_timeout = c->line_timeout;
    f->read_size = 256 << 10;
    f->notify_delay = c->notify_delay;
    return 0;
}

static int kubernetes_init(struct mars_source *s)
{
    const struct kubernetes_conf *c = mars_source_conf(s);
    struct kubernetes_instance *k = calloc(1, sizeof(*k));
    int rc;
    if (!k)
        return -ENOMEM;
    k->src = s;
    k->conf = c;
    k->shard = mars_source_shard(s);
    struct mars_obs *obs = mars_source_obs(s);
    struct mars_mfamily *fam =
        obs ? mars_metrics_family(
                  mars_obs_metrics(obs),
                  &(struct mars_mfamily_desc){
                      .name = "mars_kubernetes_events_without_metadata_total",
                      .help = "Lines shipped without pod metadata: their pod was not (yet) in "
                              "the API server's answers.",
                      .type = MARS_MT_COUNTER,
                      .labels = (const char *const[]){"component_id", NULL}})
            : NULL;
    k->no_meta =
        fam ? mars_mfamily_series(fam, (const char *const[]){mars_source_id(s), NULL}) : NULL;
    mars_kubernetes_dec_init(&k->dec, c->max_merge_bytes);
    mars_fbuild_init(&k->fb);
    if ((rc = make_file_conf(k)) || (rc = parse_selector(c->label_selector, &k->sel, &k->nsel)))
        goto fail;
    if (c->metadata && !(k->parser = mars_kubernetes_parser_create(s))) {
        rc = -ENOMEM;
        goto fail;
    }
    if (c->metadata) {
        k->meta =
            mars_kubernetes_pods_acquire(obs, mars_source_id(s), &c->api, mars_source_loop(s));
        if (!k->meta) {
            rc = -EINVAL;
            goto fail;
        }
        mars_kubernetes_meta_keep_deleted(k->meta, c->delete_grace);
        mars_kubernetes_meta_wait_synced(k->meta, SYNC_WAIT_S);
    }
    if ((rc = mars_file_source_init(s, &k->fconf, &kubernetes_hooks, k)))
        goto fail;
    return 0;
fail:
    instance_destroy(k);
    return rc;
}

static void kubernetes_destroy(struct mars_source *s)
{
    struct file_source *fs = mars_source_state(s);
    struct kubernetes_instance *k = fs->hctx;
    mars_file_source_destroy(s); /* forgets every file first: their states are k's */
    const struct kubernetes_dec_stats *st = &k->dec.st;
    if (st->malformed || st->oversize || k->unknown_path)
        mars_info(mars_source_id(s),
                  "%llu malformed lines (shipped raw), %llu merged lines cut "
                  "at max_merge_bytes, %llu files outside the pod layout",
                  (unsigned long long)st->malformed, (unsigned long long)st->oversize,
                  (unsigned long long)k->unknown_path);
    instance_destroy(k);
}

const struct mars_component_desc mars_source_kubernetes_logs = {
    .name = "kubernetes_logs",
    .description = "Every container's stdout and stderr on a Kubernetes node (CRI or Docker "
                   "log files), with its pod's identity and metadata.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .flags = MARS_DESC_PER_WORKER | MARS_DESC_DATA_DIR | MARS_DESC_LAG_BYTES | MARS_DESC_LOCAL_LOGS,
    .options = kubernetes_options,
    .conf_size = sizeof(struct kubernetes_conf),
    .check = kubernetes_check,
    .source = {.init = kubernetes_init,
               .start = mars_file_source_start,
               .resume = mars_file_source_resume,
               .stop = mars_file_source_stop,
               .destroy = kubernetes_destroy},
};
