/*
 * apollo_internal.h - what the apollo source's files share: apollo.c (requests: long
 * poll, fetch, meta server, life cycle), apollo_events.c (the change events and the cache
 * fallback) and apollo_conf.c (options and checks).
 */
#ifndef MARS_APOLLO_INTERNAL_H
#define MARS_APOLLO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "component.h"
#include "core/ev.h"
#include "core/http_client.h"
#include "core/metrics.h"
#include "wire/apollo.h"

#define S_NS 1000000000LL /* one second in ns, for durations in options and timers */

struct ap_app_conf {
    char *app_id;
    char *cluster;
    struct mars_strlist namespaces;
    char *secret;
    char *label;
};

struct ap_conf {
    struct mars_strlist config_service;
    char *meta_server;
    struct mars_seclist apps;
    char *ip;
    char *data_center;
    int64_t refresh_interval;
    int64_t meta_refresh_interval;
    int64_t poll_timeout;
    int64_t timeout;
    int64_t connect_timeout;
    bool cache;
    char *cache_dir;
};

static inline const struct ap_app_conf *app_at(const struct ap_conf *c, size_t i)
{
    return &((const struct ap_app_conf *)c->apps.items)[i];
}

struct ap;
struct ap_app;

struct ap_req {
    struct mars_http_req http;
    struct mars_apollo_buf url;
    char auth[320], ts[64];
    const char *hdrs[3];
    size_t cs; /* the app's config service index the request went to */
    bool busy;
};

struct ap_ns {
    struct ap_app *app;
    char *name;
    enum mars_apollo_format fmt;
    int64_t notif_id;
    char *messages;    /* raw JSON of the last notification's messages, or NULL */
    char *release_key; /* of map */
    struct mars_apollo_map map;
    bool have;        /* map holds a configuration (fetched or from the cache) */
    bool from_remote; /* ... fetched in this run */
    bool cache_tried;
    bool again; /* fetch again when the one in flight ends */
    bool full;  /* next fetch without releaseKey (after an unusable incremental) */
    struct ap_req fetch;
    struct mars_ev_op retry;
    bool retry_armed;
    unsigned fails;
};

struct ap_app {
    struct ap *ap;
    const struct ap_app_conf *conf;
    struct ap_ns *ns;
    size_t nns;
    struct ap_req poll;
    struct mars_ev_op timer;
    bool timer_armed;
    unsigned fails;
    size_t cs; /* config service in use */
};

struct ap {
    struct mars_source *src;
    const struct ap_conf *conf;
    struct mars_http *http;
    struct ap_app *apps;
    size_t napps;
    char **cs;
    size_t ncs;
    struct ap_req meta;
    struct mars_ev_op meta_timer, refresh;
    bool meta_armed, refresh_armed, apps_started;
    unsigned meta_fails;
    char ip[64];
    char *cache_dir;
    struct mars_mfamily *cache_loads;
    uint64_t rng;
    bool stopping, finished;
};

extern const struct mars_opt mars_apollo_options[];
int mars_apollo_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

/* apollo_events.c */
int64_t mars_apollo_source_wall_ms(void);
/* Makes nw (taken) the namespace's configuration and emits it when it differs from what
 * was emitted before; rk (taken) is its release key. */
void mars_apollo_source_apply(struct ap *ap, struct ap_ns *ns, char *rk, struct mars_apollo_map *nw,
                              const char *origin);
/* No config service answered (why): emits the namespace's cached configuration, once, if
 * it has none yet. */
void mars_apollo_source_use_cache(struct ap *ap, struct ap_ns *ns, const char *why);

#endif
