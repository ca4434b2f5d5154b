/*
 * iptables.c - the `iptables` source: per-rule packet and byte counters of the node's
 * netfilter rules as counter metric events (<namespace>_iptables_packets_total and
 * _bytes_total, labelled family, table, chain, rule, target) every `interval`.
 *
 * Backends: nft reads nf_tables over netlink (ipt_nft.c: iptables-nft and native nft
 * rules, named counter objects); legacy reads x_tables through libiptc (ipt_legacy.c);
 * auto reads nft, and legacy for each family whose legacy tables already exist (never
 * creating one). Nothing is exec'd and the xtables lock is never taken.
 *
 * Why a thread. A dump of a kube-proxy-sized ruleset (10,000 rules) takes tens of
 * milliseconds of CPU, and libiptc's snapshot is one blocking call that cannot be split;
 * on the worker it would stall every source and sink placed there. So each instance owns
 * one dump thread that sleeps on a condition variable. The worker's timer asks for a dump
 * (unless the source is paused by backpressure: counters are snapshots, the next one
 * supersedes), the thread dumps, applies the selection and max_series into a finished table
 * (ipt_dump.c), hands it over under the mutex and writes an eventfd; the worker reads that
 * eventfd through its ev loop, turns the table into batches of metric events and emits
 * them. The worker never waits on the thread, except in destroy, which joins it (at most
 * the rest of one dump). At most one dump is in flight; a tick that finds one running is
 * skipped.
 *
 * Errors (a missing capability, no nf_tables, no legacy tables for backend: legacy) are
 * logged once when they start or change, shown as the component's last error and counted;
 * the next interval tries again, and the rest of the pipeline runs on.
 *
 * Managed rules (`rules:`, ipt_rules.h). The config's rules are expanded once in init into
 * the desired set; the dump thread reconciles the kernel with it (mars_iptables_apply:
 * read mars's table or chains, one atomic change of the difference) before the first dump
 * and before every later one, so the rules are in place before they are counted and a
 * flushed ruleset is repaired within an interval. The worker gets the outcome with the
 * dump; a failure is logged on change, counted, and retried on a backoff timer (1 s
 * doubling, capped by the interval). On stop the thread removes the rules on its way out,
 * unless mars reloads (mars_obs_reloading: the next engine's instance takes them over and
 * applies only the difference) or keep_on_exit is set. One instance per process owns the
 * rules (owner, below).
 *
 * Pods (`pods`, ipt_pods.c): the owner follows the shared pod watch and posts config + pod
 * rules whenever the pods' IPs change; before the first list it applies nothing (the
 * kernel keeps the rules of the last run), for at most IPT_PODS_FIRST_WAIT. Options and
 * checks are in ipt_conf.c.
 *
 * Thread: the source's worker, except dump_main (the dump thread).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"
#include "sources/iptables/ipt_conf.h"
#include "sources/iptables/ipt_internal.h"
#include "sources/iptables/ipt_pods.h"
#include "sources/iptables/ipt_rules.h"

#define IPT_ROWS_PER_BATCH 1024

struct ipt {
    struct mars_source *src;
    const struct ipt_conf *conf;
    struct ipt_filter filter;
    char m_packets[160], m_bytes[160];
    /* managed rules: the desired set, the dump thread's once started (the config's rules,
     * expanded in init), and this process's claim */
    struct ipt_ruleset want_rules;
    struct ipt_ruleset conf_rules; /* the config's rules, for the sets `pods` posts */
    struct ipt_pods *pods;         /* `pods`: the pod rules' feed (owner only) */
    bool owner;
    bool release_for_reload; /* the claim passes to the next engine's instance */
    struct mars_mseries *m_apply_errors, *m_managed, *m_added, *m_removed;
    /* worker side */
    struct mars_ev_op timer, wake, retry, pods_timer;
    bool pods_timer_armed;
    uint64_t wake_buf;
    bool timer_armed, wake_armed, retry_armed, stopping, finished, in_flight;
    char last_why[256], last_apply_why[256];
    int64_t backoff;
    /* shared with the dump thread, under mu */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want, want_apply, quit, remove_on_quit;
    bool pods_wait; /* `pods`: no apply before the pods' first set (it would drop their rules) */
    struct ipt_dump *done;
    struct ipt_ruleset *next_rules; /* a new desired set (owned) for the next apply */
    bool applied;                   /* apply_res holds an outcome the worker has not seen */
    struct ipt_apply_res apply_res;
    int efd;
};

/* One source per process manages mars's table and chains (two would undo each other's
 * rules). Claimed at start and held while the process runs: a source on another worker
 * may start after the owner ended (--once), and must still find the rules taken. Only a
 * reload passes the claim on: the old instance releases it at destroy, and a reload
 * destroys the old engine's instances before it starts the new ones. Rules an owner kept for a
 * reload are `left` until the next engine's owner claims them; when none does (the reloaded
 * configuration has no source with `rules`, or it never started), the process removes them at exit.
 */
static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER;
static bool owned;         /* a source of this engine manages the rules */
static char owner_id[128]; /* its id, for the other sources' error */
static struct {
    bool left, atexit_set;
    enum ipt_backend backend;
} kept;

static void remove_left_rules(void)
{
    pthread_mutex_lock(&owner_mu);
    bool left = kept.left;
    kept.left = false;
    pthread_mutex_unlock(&owner_mu);
    struct ipt_ruleset none = {0};
    struct ipt_apply_res res = {0};
    if (left && mars_iptables_apply(kept.backend, &none, &res))
        fprintf(stderr, "mars: %s; the managed rules are left in place\n", res.why);
}

/* ---- the dump thread ---- */

static void dump_run(struct ipt *x, struct ipt_dump *d)
{
    const struct ipt_filter *f = &x->filter;
    int b = x->conf->backend;
    if (b != IPT_BACKEND_LEGACY)
        mars_iptables_nft_dump(d, f, true);
    for (int v6 = 0; v6 <= 1; v6++) {
        if (!mars_iptables_filter_family(f, v6 ? IPT_FAM_IP6 : IPT_FAM_IP))
            continue;
        if (b == IPT_BACKEND_NFT || !mars_iptables_legacy_present(v6))
            continue;
        mars_iptables_legacy_dump(d, f, v6);
    }
    if (b == IPT_BACKEND_LEGACY && !d->err && !mars_iptables_legacy_present(false) &&
        !mars_iptables_legacy_present(true))
        mars_iptables_dump_fail(
            d, -ENOENT,
            "legacy: no legacy iptables tables exist here (/proc/net/ip_tables_names "
            "and ip6_tables_names are empty); mars does not create them: use "
            "backend nft or auto");
}

/* On the way out (not for a reload, not with keep_on_exit): mars's rules leave the kernel. */
static void remove_rules(struct ipt *x)
{
    struct ipt_ruleset none = {0};
    struct ipt_apply_res res = {0};
    const char *id = mars_source_id(x->src);
    if (mars_iptables_apply(x->conf->backend, &none, &res))
        mars_error(id, "%s; the managed rules are left in place", res.why);
    else if (res.removed)
        mars_info(id, "managed rules: %u removed", res.removed);
}

static void *dump_main(void *arg)
{
    struct ipt *x = arg;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->want && !x->want_apply && !x->quit)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->quit)
            break;
        bool apply = x->want_apply && !x->pods_wait, dump = x->want;
        struct ipt_ruleset *next = apply ? x->next_rules : NULL;
        x->want = x->want_apply = false;
        if (next)
            x->next_rules = NULL;
        pthread_mutex_unlock(&x->mu);
        if (next) {
            mars_iptables_ruleset_fini(&x->want_rules);
            x->want_rules = *next;
            free(next);
        }
        /* rules first: the dump that follows counts them */
        struct ipt_apply_res res = {0};
        if (apply)
            mars_iptables_apply(x->conf->backend, &x->want_rules, &res);
        struct ipt_dump *d = dump ? mars_iptables_dump_create() : NULL;
        if (d)
            dump_run(x, d);
        pthread_mutex_lock(&x->mu);
        if (apply) {
            x->apply_res = res;
            x->applied = true;
        }
        if (dump) {
            mars_iptables_dump_destroy(x->done); /* normally NULL: the worker took the last */
            x->done = d;
        }
        uint64_t one = 1;
        if (write(x->efd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow at one write per dump; nothing to do */
        }
    }
    bool remove = x->remove_on_quit;
    pthread_mutex_unlock(&x->mu);
    if (remove)
        remove_rules(x);
    return NULL;
}

/* ---- emitting ---- */

static void ipt_acked(struct mars_batch *b, bool delivered)
{
    struct ipt *x = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(x->src)->acked_events, b->ack.a);
}

static int push_row(struct ipt *x, struct mars_batch *b, const struct ipt_dump *d,
                    const struct ipt_row *r, int64_t ts)
{
    static const char *const names[] = {"family", "table", "chain", "rule", "target"};
    const char *vals[] = {ipt_str(d, r->family), ipt_str(d, r->table), ipt_str(d, r->chain),
                          ipt_str(d, r->rule), ipt_str(d, r->target)};
    static const char *const pod_names[] = {"family", "table",     "chain", "rule",
                                            "target", "namespace", "pod"};
    char ns[64], pod[256];
    const char *pvals[7];
    bool is_pod =
        x->pods && mars_iptables_pod_labels(x->pods, vals[3], ns, sizeof(ns), pod, sizeof(pod));
    if (is_pod) {
        memcpy(pvals, vals, sizeof(vals));
        pvals[5] = ns;
        pvals[6] = pod;
    }
    struct mars_metric_sample m = {.name = x->m_packets,
                                   .help = "Packets counted by the rule.",
                                   .kind = MARS_METRIC_COUNTER,
                                   .label_names = is_pod ? pod_names : names,
                                   .label_values = is_pod ? pvals : vals,
                                   .nlabels = is_pod ? 7 : 5,
                                   .value = (double)r->packets};
    int rc = mars_batch_push_metric(b, &m, ts);
    m.name = x->m_bytes;
    m.help = "Bytes counted by the rule.";
    m.value = (double)r->bytes;
    return rc ? rc : mars_batch_push_metric(b, &m, ts);
}

static void emit_dump(struct ipt *x, const struct ipt_dump *d)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ts = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    for (size_t i = 0; i < d->n;) {
        size_t end = i + IPT_ROWS_PER_BATCH < d->n ? i + IPT_ROWS_PER_BATCH : d->n;
        struct mars_batch *b = mars_source_batch(x->src, (uint32_t)(2 * (end - i)));
        int rc = b ? 0 : -ENOMEM;
        for (; rc == 0 && i < end; i++)
            rc = push_row(x, b, d, &d->rows[i], ts);
        if (rc) {
            mars_stat_add(&mars_source_stats(x->src)->errors[MARS_ERR_MEMORY], 1);
            MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(x->src),
                        "out of memory building iptables counter events; dropped");
            if (b)
                mars_batch_release(b);
            return;
        }
        b->ack = (struct mars_batch_ack){.fn = ipt_acked, .ctx = x, .a = b->n};
        mars_source_emit(x->src, b);
    }
}

static void report(struct ipt *x, const struct ipt_dump *d)
{
    const char *id = mars_source_id(x->src);
    if (d->err) {
        mars_stat_add(&mars_source_stats(x->src)->errors[MARS_ERR_READ], 1);
        mars_source_last_error(x->src, "%s", d->why);
        if (strcmp(d->why, x->last_why) != 0)
            mars_error(id, "%s; retrying every interval", d->why);
        snprintf(x->last_why, sizeof(x->last_why), "%s", d->why);
    } else if (x->last_why[0]) {
        mars_info(id, "reading rule counters works again (%zu series)", d->n);
        x->last_why[0] = 0;
    }
    if (d->overflow) {
        mars_stat_add(&mars_source_stats(x->src)->errors[MARS_ERR_LIMIT], d->overflow);
        mars_warn(id, "max_series %zu reached: %llu rules left out of this read",
                  x->filter.max_series, (unsigned long long)d->overflow);
    }
}

/* ---- managed rules: outcomes, metrics, retries ---- */

static void maybe_finish(struct ipt *x)
{
    if (x->stopping && !x->timer_armed && !x->wake_armed && !x->retry_armed &&
        !x->pods_timer_armed && !x->finished) {
        x->finished = true;
        mars_source_finished(x->src);
    }
}

#define IPT_BACKOFF_MIN 1000000000LL  /* 1 s */
#define IPT_BACKOFF_MAX 60000000000LL /* 60 s, and never past the interval */

static void on_retry(struct mars_ev_op *op, int res);

static void request(struct ipt *x, bool apply, bool dump)
{
    pthread_mutex_lock(&x->mu);
    x->want_apply |= apply;
    x->want |= dump;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (dump)
        x->in_flight = true;
}

/* Replaces the desired set (takes ownership of set, a malloc'd struct whose rules the
 * thread frees) and asks for an apply: the thread reconciles the kernel with it, changing
 * only the difference. The way for rules that come and go at run time (one per pod IP with
 * `pods: true`): build the whole set (the config's rules plus the dynamic ones) and post
 * it; a set posted before the thread took the last one replaces it. */
static void post_rules(struct ipt *x, struct ipt_ruleset *set)
{
    pthread_mutex_lock(&x->mu);
    if (x->next_rules) {
        mars_iptables_ruleset_fini(x->next_rules);
        free(x->next_rules);
    }
    x->next_rules = set;
    x->pods_wait = false;
    pthread_mutex_unlock(&x->mu);
    if (x->owner)
        request(x, true, false);
}

/* `pods`: the pods' rules changed; the whole set is the config's rules, then theirs. */
static void on_pod_rules(void *arg, struct ipt_ruleset *pod_rules)
{
    struct ipt *x = arg;
    struct ipt_ruleset *set = calloc(1, sizeof(*set));
    int rc = set ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < x->conf_rules.n; i++)
        rc = mars_iptables_ruleset_add(set, &x->conf_rules.v[i]);
    for (size_t i = 0; rc == 0 && i < pod_rules->n; i++)
        rc = mars_iptables_ruleset_add(set, &pod_rules->v[i]);
    mars_iptables_ruleset_fini(pod_rules);
    free(pod_rules);
    if (rc) {
        mars_stat_add(&mars_source_stats(x->src)->errors[MARS_ERR_MEMORY], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(x->src), "pods: out of memory");
        if (set)
            mars_iptables_ruleset_fini(set);
        free(set);
        return;
    }
    post_rules(x, set);
}

/* `pods`: the first set may not come (the API server is down): after this long the
 * config's rules are applied alone, and the pods' follow when they come. */
#define IPT_PODS_FIRST_WAIT 30000000000LL

static void arm_retry(struct ipt *x)
{
    /* a retry already pending (a tick's apply failed meanwhile) keeps its delay */
    if (x->retry_armed || mars_source_once(x->src))
        return;
    int64_t cap = x->conf->interval < IPT_BACKOFF_MAX ? x->conf->interval : IPT_BACKOFF_MAX;
    x->backoff = x->backoff ? x->backoff * 2 : IPT_BACKOFF_MIN;
    if (x->backoff > cap)
        x->backoff = cap;
    mars_ev_prep_timer(&x->retry, x->backoff, on_retry, x);
    x->retry_armed = mars_ev_submit(mars_source_loop(x->src), &x->retry) == 0;
}

static void report_apply(struct ipt *x, const struct ipt_apply_res *r)
{
    const char *id = mars_source_id(x->src);
    unsigned sh = MARS_METRICS_SHARED;
    if (r->err) {
        mars_stat_add(&mars_source_stats(x->src)->errors[MARS_ERR_WRITE], 1);
        mars_mseries_add(x->m_apply_errors, sh, 1);
        mars_source_last_error(x->src, "%s", r->why);
        arm_retry(x);
        if (strcmp(r->why, x->last_apply_why) != 0 && mars_source_once(x->src))
            mars_error(id, "%s", r->why);
        else if (strcmp(r->why, x->last_apply_why) != 0)
            mars_error(id, "%s; retrying with backoff (now %llds)", r->why,
                       (long long)(x->backoff / 1000000000));
        snprintf(x->last_apply_why, sizeof(x->last_apply_why), "%s", r->why);
        return;
    }
    x->backoff = 0;
    mars_mseries_add(x->m_added, sh, r->added);
    mars_mseries_add(x->m_removed, sh, r->removed);
    mars_mseries_set(x->m_managed, sh, (double)(r->added + r->kept));
    if (r->added || r->removed || x->last_apply_why[0])
        mars_info(id, "managed rules applied: %u added, %u removed, %u unchanged", r->added,
                  r->removed, r->kept);
    x->last_apply_why[0] = 0;
}

static void on_retry(struct mars_ev_op *op, int res)
{
    struct ipt *x = op->data;
    x->retry_armed = false;
    if (res == -ECANCELED || x->stopping) {
        maybe_finish(x);
        return;
    }
    request(x, true, false);
}

/* ---- worker side: timer, wakeup, lifecycle ---- */

static void on_tick(struct mars_ev_op *op, int res);
static void on_wake(struct mars_ev_op *op, int res);

static void arm_timer(struct ipt *x, int64_t ns)
{
    mars_ev_prep_timer(&x->timer, ns, on_tick, x);
    x->timer_armed = mars_ev_submit(mars_source_loop(x->src), &x->timer) == 0;
}

static void arm_wake(struct ipt *x)
{
    mars_ev_prep_read(&x->wake, x->efd, &x->wake_buf, sizeof(x->wake_buf), MARS_EV_CUR, on_wake, x);
    x->wake_armed = mars_ev_submit(mars_source_loop(x->src), &x->wake) == 0;
}

static void on_tick(struct mars_ev_op *op, int res)
{
    struct ipt *x = op->data;
    x->timer_armed = false;
    if (res == -ECANCELED || x->stopping) {
        maybe_finish(x);
        return;
    }
    /* every interval the managed rules are checked too: a flushed ruleset is repaired;
     * backpressure pauses the counters, never the rules */
    bool dump = !x->in_flight && !mars_source_paused(x->src);
    if (dump || x->owner)
        request(x, x->owner, dump);
    if (!mars_source_once(x->src))
        arm_timer(x, x->conf->interval);
}

static void on_wake(struct mars_ev_op *op, int res)
{
    struct ipt *x = op->data;
    x->wake_armed = false;
    if (res == -ECANCELED || x->stopping) {
        maybe_finish(x);
        return;
    }
    pthread_mutex_lock(&x->mu);
    struct ipt_dump *d = x->done;
    x->done = NULL;
    bool applied = x->applied;
    struct ipt_apply_res ar = x->apply_res;
    x->applied = false;
    pthread_mutex_unlock(&x->mu);
    if (applied)
        report_apply(x, &ar);
    if (d) {
        x->in_flight = false;
        report(x, d);
        if (!mars_source_paused(x->src))
            emit_dump(x, d);
        mars_iptables_dump_destroy(d);
    }
    if (mars_source_once(x->src) && d) {
        x->stopping = true;
        if (x->timer_armed)
            mars_ev_cancel(mars_source_loop(x->src), &x->timer);
        maybe_finish(x);
        return;
    }
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        mars_error(mars_source_id(x->src), "dump wakeup failed: %s", strerror(-res));
        return;
    }
    arm_wake(x);
}

static struct mars_mseries *series(struct mars_metrics *m, const char *name, const char *help,
                                   enum mars_mtype type, const char *id, const char *change)
{
    static const char *const labels[] = {"component_id", NULL};
    static const char *const labels2[] = {"component_id", "change", NULL};
    if (!m)
        return NULL;
    struct mars_mfamily *f = mars_metrics_family(
        m, &(struct mars_mfamily_desc){
               .name = name, .help = help, .type = type, .labels = change ? labels2 : labels});
    const char *vals[] = {id, change, NULL};
    return f ? mars_mfamily_series(f, vals) : NULL;
}

static void init_metrics(struct ipt *x)
{
    struct mars_obs *obs = mars_source_obs(x->src);
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    const char *id = mars_source_id(x->src);
    const char *changes = "Managed rules the iptables source added to or removed from the kernel.";
    x->m_apply_errors = series(m, "mars_iptables_rule_apply_errors_total",
                               "Failed attempts to bring the managed rules into the kernel.",
                               MARS_MT_COUNTER, id, NULL);
    x->m_managed = series(m, "mars_iptables_managed_rules",
                          "Kernel rules the iptables source manages (after its last apply).",
                          MARS_MT_GAUGE, id, NULL);
    x->m_added =
        series(m, "mars_iptables_rule_changes_total", changes, MARS_MT_COUNTER, id, "added");
    x->m_removed =
        series(m, "mars_iptables_rule_changes_total", changes, MARS_MT_COUNTER, id, "removed");
}

static int ipt_init(struct mars_source *s)
{
    struct ipt *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->src = s;
    x->conf = mars_source_conf(s);
    x->efd = -1;
    const char *bad;
    x->filter = (struct ipt_filter){
        .families = (unsigned)mars_iptables_family_mask(&x->conf->families, &bad),
        .tables = &x->conf->tables,
        .chains = &x->conf->chains,
        .comment_prefix = x->conf->comment_prefix,
        .max_series = (size_t)x->conf->max_series};
    snprintf(x->m_packets, sizeof(x->m_packets), "%s_iptables_packets_total", x->conf->namespace_);
    snprintf(x->m_bytes, sizeof(x->m_bytes), "%s_iptables_bytes_total", x->conf->namespace_);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    mars_source_set_state(s, x);
    for (size_t i = 0; i < x->conf->rules.n; i++) {
        struct ipt_rule_err err;
        int rc = mars_iptables_rule_expand(mars_iptables_rule_at(x->conf, i), &x->want_rules, &err);
        if (rc) /* checked at load: only -ENOMEM gets here */
            return rc;
    }
    for (size_t i = 0; x->conf->pods_on && i < x->want_rules.n; i++)
        if (mars_iptables_ruleset_add(&x->conf_rules, &x->want_rules.v[i]))
            return -ENOMEM;
    if (x->conf->manage)
        init_metrics(x);
    return 0;
}

static void claim(struct ipt *x)
{
    char other[sizeof(owner_id)];
    pthread_mutex_lock(&owner_mu);
    bool taken = owned;
    if (!taken) {
        owned = true;
        snprintf(owner_id, sizeof(owner_id), "%s", mars_source_id(x->src));
        kept.left = false; /* this instance takes over what a reload kept */
        if (!kept.atexit_set)
            kept.atexit_set = atexit(remove_left_rules) == 0;
    }
    memcpy(other, owner_id, sizeof(other));
    pthread_mutex_unlock(&owner_mu);
    x->owner = !taken;
    if (taken) {
        mars_error(mars_source_id(x->src),
                   "source '%s' manages mars's rules already; this one only reads counters "
                   "(give one iptables source all the rules)",
                   other);
        mars_source_last_error(x->src, "another iptables source (%s) manages the rules", other);
    }
}

static void on_pods_timer(struct mars_ev_op *op, int res)
{
    struct ipt *x = op->data;
    x->pods_timer_armed = false;
    if (res == -ECANCELED || x->stopping) {
        maybe_finish(x);
        return;
    }
    pthread_mutex_lock(&x->mu);
    bool waiting = x->pods_wait;
    pthread_mutex_unlock(&x->mu);
    if (!waiting)
        return;
    mars_warn(mars_source_id(x->src),
              "pods: no pod list after %lld s; applying the configured rules alone, the pods' "
              "follow when the list comes",
              IPT_PODS_FIRST_WAIT / 1000000000);
    struct ipt_ruleset *set = calloc(1, sizeof(*set));
    for (size_t i = 0; set && i < x->conf_rules.n; i++)
        if (mars_iptables_ruleset_add(set, &x->conf_rules.v[i])) {
            mars_iptables_ruleset_fini(set);
            free(set);
            set = NULL;
        }
    if (set)
        post_rules(x, set);
}

/* `pods` on the owner: no apply until the pods' rules are known, then config + pods. */
static int start_pods(struct ipt *x)
{
    x->pods_wait = true;
    x->pods = mars_iptables_pods_start(x->src, &x->conf->pods.api, on_pod_rules, x);
    if (!x->pods)
        return -EINVAL;
    mars_ev_prep_timer(&x->pods_timer, IPT_PODS_FIRST_WAIT, on_pods_timer, x);
    x->pods_timer_armed = mars_ev_submit(mars_source_loop(x->src), &x->pods_timer) == 0;
    return 0;
}

static int ipt_start(struct mars_source *s)
{
    struct ipt *x = mars_source_state(s);
    int rc;
    if (x->conf->manage)
        claim(x);
    if (x->owner && x->conf->pods_on && (rc = start_pods(x)) != 0)
        return rc;
    x->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->efd < 0)
        return -errno;
    if ((rc = pthread_create(&x->thread, NULL, dump_main, x)) != 0) {
        mars_error(mars_source_id(s), "cannot start the dump thread: %s", strerror(rc));
        return -rc;
    }
    x->thread_started = true;
    arm_wake(x);
    /* the first read (and apply) at once: counters are wanted from the first scrape */
    arm_timer(x, 0);
    return x->timer_armed && x->wake_armed ? 0 : -EIO;
}

/* The thread removes the rules on its way out unless mars reloads (the next engine's
 * instance takes them over as they are) or keep_on_exit says to leave them. */
static void quit_thread(struct ipt *x)
{
    bool reload = mars_obs_reloading(mars_source_obs(x->src));
    pthread_mutex_lock(&x->mu);
    if (!x->quit && x->owner && reload) {
        /* the next engine's instance claims the rules; until this engine ends, nobody
         * else in it does (a source on another worker may start after this one ended) */
        pthread_mutex_lock(&owner_mu);
        x->release_for_reload = true;
        if (!x->conf->keep_on_exit) {
            kept.left = true;
            kept.backend = x->conf->backend;
        }
        pthread_mutex_unlock(&owner_mu);
    }
    if (!x->quit)
        x->remove_on_quit = x->owner && !x->conf->keep_on_exit && !reload;
    x->quit = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void ipt_stop(struct mars_source *s)
{
    struct ipt *x = mars_source_state(s);
    x->stopping = true;
    quit_thread(x);
    mars_iptables_pods_stop(x->pods);
    x->pods = NULL;
    if (x->pods_timer_armed)
        mars_ev_cancel(mars_source_loop(s), &x->pods_timer);
    if (x->timer_armed)
        mars_ev_cancel(mars_source_loop(s), &x->timer);
    if (x->wake_armed)
        mars_ev_cancel(mars_source_loop(s), &x->wake);
    if (x->retry_armed)
        mars_ev_cancel(mars_source_loop(s), &x->retry);
    maybe_finish(x);
}

static void ipt_destroy(struct mars_source *s)
{
    struct ipt *x = mars_source_state(s);
    if (x->thread_started) {
        quit_thread(x);
        pthread_join(x->thread, NULL); /* the rest of one dump, then the rules' removal */
    }
    if (x->owner && x->release_for_reload) {
        pthread_mutex_lock(&owner_mu);
        owned = false;
        pthread_mutex_unlock(&owner_mu);
    }
    mars_iptables_pods_stop(x->pods); /* start failed after it began */
    mars_iptables_ruleset_fini(&x->want_rules);
    mars_iptables_ruleset_fini(&x->conf_rules);
    if (x->next_rules) {
        mars_iptables_ruleset_fini(x->next_rules);
        free(x->next_rules);
    }
    mars_iptables_dump_destroy(x->done);
    if (x->efd >= 0)
        close(x->efd);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

const struct mars_component_desc mars_source_iptables = {
    .name = "iptables",
    .description = "Emits the packet and byte counters of netfilter rules (nft and legacy "
                   "iptables) as metric events on an interval, and keeps mars's own accounting "
                   "and filter rules.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_METRIC,
    .options = mars_iptables_options,
    .conf_size = sizeof(struct ipt_conf),
    .check = mars_iptables_check,
    .source = {.init = ipt_init, .start = ipt_start, .stop = ipt_stop, .destroy = ipt_destroy},
};
