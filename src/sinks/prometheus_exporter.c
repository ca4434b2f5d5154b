/*
 * prometheus_exporter.c - the `prometheus_exporter` sink: serves the metric events it
 * receives (internal_metrics, health_check, log_to_metric, iptables...) on its own HTTP
 * listener as Prometheus text 0.0.4, for a Prometheus server to scrape.
 *
 * One listener per component, however many workers run an instance of it: the first
 * instance to start creates the exporter (binds `address`, starts a core/admin.c server
 * thread) as an engine-wide shared object keyed by the component id, and the others attach
 * to it; the last to stop closes it. The instances write into one series table under a
 * mutex. Taking a lock here is fine: this sink carries metric samples (a few hundred per
 * interval), not the log hot path, and the lock is held per request, not per event.
 *
 * Series: keyed by name and label set (labels sorted by name). Absolute samples replace
 * the series' value; incremental ones (mars_metric.incremental) add to it. A name first
 * seen with one type keeps it; samples of another type under that name are dropped and
 * counted. Invalid characters in names become '_'. A series not updated for
 * `expire_after` disappears from the output; at most `max_series` are kept (new ones
 * beyond are dropped, counted and logged). Log events that reach the sink are ignored.
 *
 * Summaries: an incremental summary sample brings its observations; the series keeps the
 * last `summary_window` of them in a ring (8 bytes each, grown on demand up to the window),
 * and a scrape computes each quantile exactly over that window by nearest rank (the
 * smallest observation with at least q of the window at or below it). `_sum` and `_count`
 * cover every observation since the series began. An absolute summary sample replaces the
 * quantile values, sum and count as given.
 *
 * Exposition: on each scrape the live series are sorted by name and labels, so every
 * family is one contiguous block with one HELP and TYPE line (help from the first sample
 * that had one, else a generic line), written by the core/metrics.h text visitor.
 *
 * Thread: write on the sink's workers; scrapes on the exporter's server thread.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/ev.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"

struct prometheus_exporter_conf {
    char *address;
    char *path;
    int64_t expire_after;
    int64_t max_series;
    int64_t summary_window;
};

#define OFF(f) offsetof(struct prometheus_exporter_conf, f)
static const struct mars_opt prometheus_exporter_options[] = {
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(address),
     .def = "127.0.0.1:9598",
     .desc = "host:port (or unix socket path) the exporter serves its metrics on."},
    {.name = "path",
     .type = MARS_OPT_STRING,
     .offset = OFF(path),
     .def = "/metrics",
     .desc = "HTTP path of the metrics; every other path answers 404."},
    {.name = "expire_after",
     .type = MARS_OPT_DURATION,
     .offset = OFF(expire_after),
     .def = "5m",
     .min = 1000000,
     .max = (int64_t)7 * 24 * 3600 * 1000000000,
     .desc = "A series that receives no sample for this long is no longer served."},
    {.name = "max_series",
     .type = MARS_OPT_INT,
     .offset = OFF(max_series),
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .desc = "Most series kept; samples of new series beyond it "
             "are dropped and counted."},
    {.name = "summary_window",
     .type = MARS_OPT_INT,
     .offset = OFF(summary_window),
     .def = "500",
     .min = 1,
     .max = 1000000,
     .desc = "Observations a summary series keeps (8 bytes each); its quantiles are exact "
             "over the last this many."},
    {.name = NULL},
};

#define NBUCKETS 1024

struct series {
    struct series *next;
    uint64_t hash;
    char *key; /* name \x01 l1 \x02 v1 \x01 ... (labels sorted) */
    char *name, *help;
    enum mars_metric_kind kind;
    size_t nlabels;
    char **lnames, **lvalues;
    double value; /* counter, gauge; histogram: sum */
    uint64_t count;
    size_t nbounds;
    double *bounds;
    uint64_t *cum;
    /* summaries: the quantiles, their values (absolute samples) and the window ring */
    size_t nq;
    double *qs, *qvals;
    double *win;
    size_t wcap, wlen, wpos;
    int64_t updated_ns;
};

struct exporter {
    struct mars_admin *srv;
    pthread_mutex_t lock;
    struct series *table[NBUCKETS];
    size_t nseries;
    int64_t expire_after;
    size_t max_series;
    size_t window;
    bool warned_full;
    /* the key of the sample being applied, built in place: a sample of a known series
     * allocates nothing */
    char *key;
    size_t key_cap, key_len, name_len;
    const struct mars_metric_label **sorted;
    size_t sorted_cap;
};

struct prometheus_exporter {
    struct mars_sink *sink;
    const struct prometheus_exporter_conf *conf;
    struct exporter *x;
};

/* ---- series table (callers hold x->lock) ---- */

/* Frees s and all it owns; NULL is a no-op, as for free(). */
static void series_destroy(struct series *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->lnames[i]);
        free(s->lvalues[i]);
    }
    free(s->lnames);
    free(s->lvalues);
    free(s->bounds);
    free(s->cum);
    free(s->qs);
    free(s->qvals);
    free(s->win);
    free(s->key);
    free(s->name);
    free(s->help);
    free(s);
}

/* Writes name s into out (room for s.len + 1), replacing what the format does not allow
 * by '_' and putting '_' before a leading digit. Returns the length written. */
static size_t clean_into(char *out, struct mars_slice s, bool metric)
{
    size_t o = 0;
    if (s.len == 0 || (s.ptr[0] >= '0' && s.ptr[0] <= '9'))
        out[o++] = '_';
    for (uint32_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (metric && c == ':');
        out[o++] = ok ? c : '_';
    }
    return o;
}

/* A label name the format reserves (le, __*, a summary's quantile) becomes x... */
static void unreserve(char *l, size_t n, enum mars_metric_kind kind)
{
    if ((n == 2 && memcmp(l, "le", 2) == 0) || (n >= 2 && l[0] == '_' && l[1] == '_') ||
        (kind == MARS_METRIC_SUMMARY && n == 8 && memcmp(l, "quantile", 8) == 0))
        l[0] = 'x';
}

static int label_cmp(const void *a, const void *b)
{
    const struct mars_metric_label *x = *(const struct mars_metric_label *const *)a;
    const struct mars_metric_label *y = *(const struct mars_metric_label *const *)b;
    uint32_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    return c ? c : (int)x->name.len - (int)y->name.len;
}

/* Builds m's key into x->key: its cleaned name, then per label sorted by name \x01, the
 * cleaned name and \x02, the value (up to a NUL, as the series keeps it); x->sorted gets
 * the labels in that order. Returns 0 or -ENOMEM. */
static int make_key(struct exporter *x, const struct mars_metric *m)
{
    size_t need = (size_t)m->name.len + 2;
    for (uint32_t i = 0; i < m->nlabels; i++)
        need += (size_t)m->labels[i].name.len + 3 + m->labels[i].value.len;
    if (mars_grow(&x->key, &x->key_cap, need, 1) ||
        mars_grow(&x->sorted, &x->sorted_cap, (size_t)m->nlabels + 1, sizeof(*x->sorted)))
        return -ENOMEM;
    size_t o = clean_into(x->key, m->name, true);
    x->name_len = o;
    for (uint32_t i = 0; i < m->nlabels; i++)
        x->sorted[i] = &m->labels[i];
    if (m->nlabels > 1)
        qsort(x->sorted, m->nlabels, sizeof(*x->sorted), label_cmp);
    for (uint32_t i = 0; i < m->nlabels; i++) {
        const struct mars_metric_label *l = x->sorted[i];
        x->key[o++] = '\x01';
        size_t n = clean_into(x->key + o, l->name, false);
        unreserve(x->key + o, n, m->kind);
        o += n;
        x->key[o++] = '\x02';
        n = strnlen(l->value.ptr, l->value.len);
        memcpy(x->key + o, l->value.ptr, n);
        o += n;
    }
    x->key[o] = '\0';
    x->key_len = o;
    return 0;
}

/* A new series for the sample whose key make_key built. */
static struct series *series_create(struct exporter *x, const struct mars_metric *m, uint64_t hash)
{
    struct series *s = calloc(1, sizeof(*s));
    bool ok = s && (s->name = strndup(x->key, x->name_len)) &&
              (s->key = strndup(x->key, x->key_len)) &&
              (s->lnames = calloc(m->nlabels + 1, sizeof(char *))) &&
              (s->lvalues = calloc(m->nlabels + 1, sizeof(char *)));
    for (uint32_t i = 0; ok && i < m->nlabels; i++) {
        const struct mars_metric_label *l = x->sorted[i];
        char *name = malloc((size_t)l->name.len + 2);
        s->lnames[i] = name;
        s->lvalues[i] = strndup(l->value.ptr, l->value.len);
        s->nlabels++;
        ok = name && s->lvalues[i];
        if (ok) {
            size_t n = clean_into(name, l->name, false);
            name[n] = '\0';
            unreserve(name, n, m->kind);
        }
    }
    if (!ok) { /* s itself may be the allocation that failed */
        series_destroy(s);
        return NULL;
    }
    s->kind = m->kind;
    s->hash = hash;
    return s;
}

static struct series *lookup(struct exporter *x, uint64_t hash)
{
    for (struct series *s = x->table[hash % NBUCKETS]; s; s = s->next)
        if (s->hash == hash && strcmp(s->key, x->key) == 0)
            return s;
    return NULL;
}

/* The kind the name of the key being applied already has in the table, or -1. */
static int kind_of_name(struct exporter *x)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct series *s = x->table[b]; s; s = s->next)
            if (strncmp(s->name, x->key, x->name_len) == 0 && s->name[x->name_len] == '\0')
                return (int)s->kind;
    return -1;
}

static int set_histogram(struct series *s, const struct mars_metric *m)
{
    if (s->nbounds != m->nbuckets) {
        double *b = realloc(s->bounds, (m->nbuckets + 1) * sizeof(*b));
        uint64_t *c = b ? realloc(s->cum, (m->nbuckets + 1) * sizeof(*c)) : NULL;
        if (b)
            s->bounds = b;
        if (!c)
            return -ENOMEM;
        s->cum = c;
        memset(s->cum, 0, (m->nbuckets + 1) * sizeof(*c));
        s->nbounds = m->nbuckets;
        s->count = 0;
        s->value = 0;
    }
    for (uint32_t i = 0; i < m->nbuckets; i++) {
        s->bounds[i] = m->buckets[i].le;
        s->cum[i] = (m->incremental ? s->cum[i] : 0) + m->buckets[i].count;
    }
    return 0;
}

static void window_add(struct series *s, size_t window, double v)
{
    if (s->wlen == s->wcap && s->wcap < window) { /* grow (the ring is still in order) */
        size_t cap = s->wcap ? 2 * s->wcap : 16;
        cap = cap < window ? cap : window;
        double *w = realloc(s->win, cap * sizeof(*w));
        if (w) {
            s->win = w;
            s->wcap = cap;
            s->wpos = s->wlen;
        }
    }
    if (!s->wcap)
        return;
    s->win[s->wpos] = v;
    s->wpos = (s->wpos + 1) % s->wcap;
    s->wlen += s->wlen < s->wcap;
}

static int set_summary(struct series *s, const struct mars_metric *m, size_t window)
{
    if (s->nq != m->nquantiles) {
        double *q = realloc(s->qs, (m->nquantiles + 1) * sizeof(*q));
        double *v = q ? realloc(s->qvals, (m->nquantiles + 1) * sizeof(*v)) : NULL;
        if (q)
            s->qs = q;
        if (!v)
            return -ENOMEM;
        s->qvals = v;
        s->nq = m->nquantiles;
    }
    for (uint32_t i = 0; i < m->nquantiles; i++) {
        s->qs[i] = m->quantiles[i].q;
        s->qvals[i] = m->quantiles[i].value;
    }
    for (uint64_t i = 0; m->incremental && m->observations && i < m->count; i++)
        window_add(s, window, m->observations[i]);
    return 0;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The first nq quantile values of a summary series into out: nearest rank over the
 * window, or the absolute sample's values when the series has no window. */
static void summary_values(const struct series *s, double *out, size_t nq)
{
    double *w = s->wlen ? malloc(s->wlen * sizeof(*w)) : NULL;
    if (!w) {
        for (size_t i = 0; i < nq; i++)
            out[i] = s->wlen || !s->qvals ? NAN : s->qvals[i];
        return;
    }
    memcpy(w, s->win, s->wlen * sizeof(*w));
    qsort(w, s->wlen, sizeof(*w), dbl_cmp);
    for (size_t i = 0; i < nq; i++) {
        double r = ceil(s->qs[i] * (double)s->wlen);
        size_t k = r < 1 ? 0 : (size_t)r - 1;
        out[i] = w[k < s->wlen ? k : s->wlen - 1];
    }
    free(w);
}

/* Applies one sample. Returns 0, or -ENOSPC / -EINVAL / -ENOMEM when it was dropped. */
static int apply(struct exporter *x, const struct mars_metric *m, int64_t now)
{
    if (make_key(x, m))
        return -ENOMEM;
    uint64_t hash = mars_hash64(x->key, x->key_len);
    struct series *s = lookup(x, hash);
    if (!s) {
        int k = kind_of_name(x);
        if (k >= 0 && k != (int)m->kind)
            return -EINVAL;
        if (x->nseries >= x->max_series)
            return -ENOSPC;
        s = series_create(x, m, hash);
        if (!s)
            return -ENOMEM;
        if (m->help.len)
            s->help = strndup(m->help.ptr, m->help.len);
        s->next = x->table[s->hash % NBUCKETS];
        x->table[s->hash % NBUCKETS] = s;
        x->nseries++;
    }
    if (m->kind == MARS_METRIC_HISTOGRAM && set_histogram(s, m))
        return -ENOMEM;
    if (m->kind == MARS_METRIC_SUMMARY && set_summary(s, m, x->window))
        return -ENOMEM;
    if (m->incremental) {
        s->value += m->value;
        s->count += m->count;
    } else {
        s->value = m->value;
        s->count = m->count;
    }
    s->updated_ns = now;
    return 0;
}

static void expire(struct exporter *x, int64_t now)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct series **pp = &x->table[b];
        while (*pp) {
            struct series *s = *pp;
            if (now - s->updated_ns <= x->expire_after) {
                pp = &s->next;
                continue;
            }
            *pp = s->next;
            series_destroy(s);
            x->nseries--;
        }
    }
}

/* ---- scrape ---- */

static int series_cmp(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->key, y->key);
}

static void render(struct exporter *x, struct evbuffer *out)
{
    struct mars_prom_text t;
    struct series **all = malloc((x->nseries + 1) * sizeof(*all));
    size_t n = 0;
    char help[320];
    if (!all)
        return;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (struct series *s = x->table[b]; s; s = s->next)
            all[n++] = s;
    qsort(all, n, sizeof(*all), series_cmp);
    mars_prom_text_init(&t, out);
    for (size_t i = 0; i < n; i++) {
        const struct series *s = all[i];
        if (i == 0 || strcmp(all[i - 1]->name, s->name) != 0) {
            const char *h = NULL;
            for (size_t j = i; j < n && !h && strcmp(all[j]->name, s->name) == 0; j++)
                h = all[j]->help;
            if (!h) {
                snprintf(help, sizeof(help), "%s, exported by mars.", s->name);
                h = help;
            }
            static const enum mars_mtype types[] = {MARS_MT_COUNTER, MARS_MT_GAUGE,
                                                    MARS_MT_HISTOGRAM, MARS_MT_SUMMARY};
            t.v.family(&t.v, &(struct mars_mfamily_info){
                                 .name = s->name, .help = h, .type = types[s->kind]});
        }
        struct mars_mlabels l = {(const char *const *)s->lnames, (const char *const *)s->lvalues,
                                 s->nlabels};
        if (s->kind == MARS_METRIC_HISTOGRAM) {
            t.v.histogram(&t.v, &l, s->bounds, s->cum, s->nbounds, s->count, s->value);
        } else if (s->kind == MARS_METRIC_SUMMARY) {
            double vals[64];
            size_t nq = s->nq < 64 ? s->nq : 64;
            summary_values(s, vals, nq);
            t.v.summary(&t.v, &l, s->qs, vals, nq, s->count, s->value);
        } else
            t.v.value(&t.v, &l, s->value);
    }
    free(all);
}

static void on_scrape(struct mars_admin_req *r, void *arg)
{
    struct exporter *x = arg;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        mars_admin_reply(r, 500, NULL, NULL);
        return;
    }
    pthread_mutex_lock(&x->lock);
    expire(x, mars_ev_clock_ns());
    render(x, b);
    pthread_mutex_unlock(&x->lock);
    mars_admin_reply(r, 200, MARS_PROM_CONTENT_TYPE, b);
    evbuffer_free(b);
}

/* ---- the shared exporter ---- */

struct create_arg {
    const char *id;
    const struct prometheus_exporter_conf *conf;
    int err; /* set by exporter_create on failure: errno (EADDRINUSE for a busy port) */
};

static void exporter_destroy(void *obj)
{
    struct exporter *x = obj;
    mars_admin_destroy(x->srv); /* joins the server thread: no scrape runs after this */
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (x->table[b]) {
            struct series *s = x->table[b];
            x->table[b] = s->next;
            series_destroy(s);
        }
    }
    pthread_mutex_destroy(&x->lock);
    free(x->key);
    free(x->sorted);
    free(x);
}

static void *exporter_create(void *arg)
{
    struct create_arg *ca = arg;
    struct exporter *x = calloc(1, sizeof(*x));
    ca->err = ENOMEM;
    if (!x)
        return NULL;
    pthread_mutex_init(&x->lock, NULL);
    x->expire_after = ca->conf->expire_after;
    x->max_series = (size_t)ca->conf->max_series;
    x->window = (size_t)ca->conf->summary_window;
    x->srv =
        mars_admin_create(&(struct mars_admin_opts){.name = ca->id, .address = ca->conf->address});
    if (!x->srv || mars_admin_route(x->srv, ca->conf->path, false, MARS_HTTP_GET, on_scrape, x) ||
        mars_admin_start(x->srv)) {
        ca->err = x->srv ? EIO : errno;
        exporter_destroy(x);
        return NULL;
    }
    return x;
}

/* ---- sink ---- */

static void prometheus_exporter_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct prometheus_exporter *pe = mars_sink_state(s);
    struct exporter *x = pe->x;
    int64_t now = mars_ev_clock_ns();
    uint64_t ignored = 0, dropped = 0, conflicts = 0;

    pthread_mutex_lock(&x->lock);
    for (uint32_t b = 0; b < r->n; b++) {
        const struct mars_batch *bt = r->batches[b];
        for (uint32_t i = 0; i < bt->n; i++) {
            const struct mars_event *ev = &bt->ev[i];
            if (ev->kind != MARS_EVENT_METRIC || !ev->metric) {
                ignored++;
                continue;
            }
            int rc = apply(x, ev->metric, now);
            dropped += rc == -ENOSPC || rc == -ENOMEM;
            conflicts += rc == -EINVAL;
        }
    }
    bool warn_full = dropped && !x->warned_full;
    x->warned_full = x->warned_full || dropped;
    pthread_mutex_unlock(&x->lock);

    struct mars_stats *st = mars_sink_stats(s);
    if (ignored)
        mars_stat_add(&st->discarded_intentional, ignored);
    if (dropped || conflicts) {
        mars_stat_add(&st->discarded_intentional, dropped);
        mars_stat_add(&st->discarded_unintentional, conflicts);
        mars_stat_add(&st->errors[MARS_ERR_ENCODE], conflicts);
        if (conflicts)
            mars_sink_last_error(s, "%llu samples dropped: a metric name seen with two types",
                                 (unsigned long long)conflicts);
    }
    if (warn_full)
        mars_warn(mars_sink_id(s),
                  "max_series (%lld) reached: samples of new series are "
                  "dropped",
                  (long long)pe->conf->max_series);
    mars_sink_done(s, r, MARS_SINK_OK, 0);
}

static int prometheus_exporter_init(struct mars_sink *s)
{
    struct prometheus_exporter *pe = calloc(1, sizeof(*pe));
    if (!pe)
        return -ENOMEM;
    pe->sink = s;
    pe->conf = mars_sink_conf(s);
    struct create_arg ca = {.id = mars_sink_id(s), .conf = pe->conf};
    pe->x = mars_shared_acquire(mars_sink_obs(s), mars_sink_id(s), exporter_create, &ca);
    if (!pe->x) {
        free(pe);
        return -(ca.err ? ca.err : EIO);
    }
    mars_sink_set_state(s, pe);
    return 0;
}

static void prometheus_exporter_destroy(struct mars_sink *s)
{
    struct prometheus_exporter *pe = mars_sink_state(s);
    mars_shared_release(mars_sink_obs(s), mars_sink_id(s), exporter_destroy);
    free(pe);
}

static int prometheus_exporter_check(void *conf, const struct mars_cfg_node *node,
                                     struct mars_diag *diag)
{
    const struct prometheus_exporter_conf *c = conf;
    if (c->path[0] != '/' || strpbrk(c->path, "?# ")) {
        const struct mars_cfg_node *at = mars_cfg_at(node, "path", NULL);
        mars_diag_add(diag, at->file, at->line, at->col,
                      "path must start with / and hold no query, fragment or space, got \"%s\"",
                      c->path);
        return -EINVAL;
    }
    return 0;
}

const struct mars_component_desc mars_sink_prometheus_exporter = {
    .name = "prometheus_exporter",
    .description = "Serves the metric events it receives on its own /metrics endpoint for "
                   "Prometheus to scrape.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_METRIC,
    .options = prometheus_exporter_options,
    .conf_size = sizeof(struct prometheus_exporter_conf),
    .check = prometheus_exporter_check,
    .sink = {.init = prometheus_exporter_init,
             .write = prometheus_exporter_write,
             .destroy = prometheus_exporter_destroy},
};
