/*
 * eureka_internal.h - what the eureka sink's two files share: the conf structs and option
 * table (eureka_conf.c) that the registrar (eureka.c) reads.
 */
#ifndef MARS_EUREKA_INTERNAL_H
#define MARS_EUREKA_INTERNAL_H

#include <stdint.h>

#include "component.h"

struct eu_instance_conf {
    char *app;
    char *instance_id;
    char *host_name;
    char *ip;
    int64_t port;
    int64_t secure_port;
    char *vip_address;
    char *secure_vip_address;
    struct mars_strmap metadata;
    char *home_page_url;
    char *status_page_url;
    char *health_check_url;
    char *health_check;
};

struct eu_conf {
    struct mars_strlist servers;
    char *username;
    char *password; /* secret; password_file works too */
    struct mars_tls_conf tls;
    struct mars_seclist instances; /* struct eu_instance_conf */
    int64_t renewal_interval;
    int64_t lease_duration;
    int64_t failback_after;
    int64_t request_timeout;
    int64_t deregister_timeout;
    char *admin_url;
};

extern const struct mars_opt mars_eureka_options[];
int mars_eureka_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

static inline const struct eu_instance_conf *eu_instance_at(const struct eu_conf *c, size_t i)
{
    return (const struct eu_instance_conf *)c->instances.items + i;
}

#endif
