/*
 * apollo_events.c - what the apollo source emits: one event per change of a namespace, with
 * the keys added, modified and deleted since the configuration emitted before, and the
 * fallback to the cached configuration when no config service answers.
 *
 * Thread: the source's worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/log.h"
#include "core/metrics.h"
#include "component.h"
#include "wire/apollo.h"

#include "apollo_internal.h"

int64_t mars_apollo_source_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void apollo_acked(struct mars_batch *b, bool delivered)
{
    struct ap *ap = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(ap->src)->acked_events, b->ack.a);
}

static char *arena_str(struct mars_arena *a, const char *s)
{
    return s ? mars_arena_strndup(a, s, strlen(s)) : NULL;
}

#define PUTS(fb, parent, key, v)                                                                   \
    mars_fbuild_put((fb), (parent), (key), (uint32_t)strlen(key), MARS_FIELD_STRING, (v),          \
                    (uint32_t)strlen(v), 0, false, NULL)

/* The changes between old and new as {"added":[..],"modified":[..],"deleted":[..]} (JSON,
 * arena) and their counts. */
static char *changes_json(struct mars_arena *a, const struct mars_apollo_map *old,
                          const struct mars_apollo_map *nw, size_t cnt[3])
{
    struct evbuffer *b[3] = {evbuffer_new(), evbuffer_new(), evbuffer_new()};
    char *out = NULL;
    cnt[0] = cnt[1] = cnt[2] = 0;
    if (!b[0] || !b[1] || !b[2])
        goto done;
    for (size_t i = 0; i < nw->n; i++) {
        const struct mars_apollo_kv *o = mars_apollo_map_get(old, nw->v[i].k);
        int k = !o ? 0 : strcmp(o->v, nw->v[i].v) ? 1 : -1;
        if (k < 0)
            continue;
        if (cnt[k]++)
            evbuffer_add(b[k], ",", 1);
        mars_json_string(b[k], nw->v[i].k);
    }
    for (size_t i = 0; i < old->n; i++) {
        if (mars_apollo_map_get(nw, old->v[i].k))
            continue;
        if (cnt[2]++)
            evbuffer_add(b[2], ",", 1);
        mars_json_string(b[2], old->v[i].k);
    }
    struct evbuffer *all = evbuffer_new();
    if (!all)
        goto done;
    static const char *const names[] = {"added", "modified", "deleted"};
    evbuffer_add(all, "{", 1);
    for (int k = 0; k < 3; k++) {
        evbuffer_add_printf(all, "%s\"%s\":[", k ? "," : "", names[k]);
        evbuffer_add_buffer(all, b[k]);
        evbuffer_add(all, "]", 1);
    }
    evbuffer_add(all, "}", 1);
    size_t n = evbuffer_get_length(all);
    const char *p = (const char *)evbuffer_pullup(all, -1);
    out = p ? mars_arena_strndup(a, p, n) : NULL;
    evbuffer_free(all);
done:
    for (int k = 0; k < 3; k++)
        if (b[k])
            evbuffer_free(b[k]);
    return out;
}

static int build_event(struct ap *ap, struct ap_ns *ns, struct mars_batch *b, const char *rk,
                       const struct mars_apollo_map *nw, const char *origin)
{
    struct mars_arena *a = &b->arena;
    struct mars_fbuild fb;
    size_t cnt[3];
    int rc = -ENOMEM;
    char line[512];
    static const struct mars_apollo_map empty;
    const struct mars_apollo_map *old = ns->have ? &ns->map : &empty;
    const struct ap_app_conf *c = ns->app->conf;
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, a);
    char *changes = changes_json(a, old, nw, cnt);
    const char *app = arena_str(a, c->app_id), *cl = arena_str(a, c->cluster),
               *nsn = arena_str(a, ns->name), *rks = arena_str(a, rk ? rk : "");
    if (!changes || !app || !cl || !nsn || !rks)
        goto out;
    PUTS(&fb, 0, "app_id", app);
    PUTS(&fb, 0, "cluster", cl);
    PUTS(&fb, 0, "namespace", nsn);
    PUTS(&fb, 0, "format", mars_apollo_format_names[ns->fmt]);
    PUTS(&fb, 0, "release_key", rks);
    PUTS(&fb, 0, "origin", origin);
    if (ns->fmt == MARS_APOLLO_PROPERTIES) {
        uint32_t o = mars_fbuild_put(&fb, 0, "configurations", 14, MARS_FIELD_OBJECT, NULL, 0, 0,
                                     false, NULL);
        for (size_t i = 0; o != MARS_FIELD_NIL && i < nw->n; i++) {
            char *k = arena_str(a, nw->v[i].k), *v = arena_str(a, nw->v[i].v);
            if (!k || !v)
                goto out;
            mars_fbuild_put(&fb, o, k, (uint32_t)strlen(k), MARS_FIELD_STRING, v,
                            (uint32_t)strlen(v), 0, true, NULL);
        }
    } else {
        const struct mars_apollo_kv *kv = mars_apollo_map_get(nw, "content");
        char *v = arena_str(a, kv ? kv->v : "");
        if (!v)
            goto out;
        PUTS(&fb, 0, "content", v);
    }
    mars_fbuild_put(&fb, 0, "changes", 7, MARS_FIELD_OBJECT, changes, (uint32_t)strlen(changes),
                    MARS_FF_RAW, false, NULL);
    int n = snprintf(
        line, sizeof(line), "apollo %s/%s/%s release %s (%s): %zu added, %zu modified, %zu deleted",
        c->app_id, c->cluster, ns->name, rk ? rk : "-", origin, cnt[0], cnt[1], cnt[2]);
    n = n < (int)sizeof(line) ? n : (int)sizeof(line) - 1;
    char *msg = mars_arena_strndup(a, line, (size_t)n);
    struct mars_event *ev = msg ? mars_batch_push(b) : NULL;
    if (!ev)
        goto out;
    ev->msg = (struct mars_slice){msg, (uint32_t)n};
    ev->ts_ns = mars_apollo_source_wall_ms() * 1000000;
    ev->source = b->source;
    b->bytes += (uint64_t)n;
    rc = mars_fields_merge(b, ev, &fb, NULL);
out:
    mars_fbuild_fini(&fb);
    (void)ap;
    return rc;
}

/* Makes nw (taken) the namespace's configuration and emits it when it differs from what was
 * emitted before. */
void mars_apollo_source_apply(struct ap *ap, struct ap_ns *ns, char *rk, struct mars_apollo_map *nw,
                              const char *origin)
{
    bool same = ns->have && mars_apollo_map_equal(&ns->map, nw) && ns->release_key && rk &&
                strcmp(ns->release_key, rk) == 0;
    if (!same) {
        struct mars_batch *b = mars_source_batch(ap->src, 1);
        int rc = b ? build_event(ap, ns, b, rk, nw, origin) : -ENOMEM;
        if (rc) {
            mars_stat_add(&mars_source_stats(ap->src)->errors[MARS_ERR_MEMORY], 1);
            if (b)
                mars_batch_release(b);
        } else {
            b->ack = (struct mars_batch_ack){.fn = apollo_acked, .ctx = ap, .a = b->n};
            mars_source_emit(ap->src, b);
        }
    }
    mars_apollo_map_free(&ns->map);
    ns->map = *nw;
    *nw = (struct mars_apollo_map){0};
    free(ns->release_key);
    ns->release_key = rk;
    ns->have = true;
}

/* ---- cache ---- */

void mars_apollo_source_use_cache(struct ap *ap, struct ap_ns *ns, const char *why)
{
    const struct ap_app_conf *c = ns->app->conf;
    char *rk = NULL;
    struct mars_apollo_map m;
    if (ns->cache_tried || ns->have || !ap->cache_dir)
        return;
    ns->cache_tried = true;
    int rc = mars_apollo_cache_load(ap->cache_dir, c->app_id, c->cluster, ns->name, &rk, &m);
    if (rc) {
        mars_warn(mars_source_id(ap->src),
                  "app %s namespace %s: no config service answered (%s) and %s", c->app_id,
                  ns->name, why,
                  rc == -ENOENT ? "there is no cached configuration yet" : "its cache is corrupt");
        return;
    }
    mars_warn(mars_source_id(ap->src),
              "app %s namespace %s: no config service answered (%s); using the cached "
              "configuration (release %s) until one does",
              c->app_id, ns->name, why, rk);
    const char *vals[] = {mars_source_id(ap->src), c->app_id, ns->name, NULL};
    mars_mseries_add(ap->cache_loads ? mars_mfamily_series(ap->cache_loads, vals) : NULL,
                     mars_source_shard(ap->src), 1);
    mars_apollo_source_apply(ap, ns, rk, &m, "cache");
    mars_apollo_map_free(&m);
}
