/*
 * apollo_internal.h - what apollo.c (the source's data path) and apollo_conf.c (its
 * options and checks) share: the configuration the schema fills.
 */
#ifndef MARS_APOLLO_INTERNAL_H
#define MARS_APOLLO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "component.h"

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

extern const struct mars_opt mars_apollo_options[];
int mars_apollo_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

#endif
