/*
 * ipt_conf.h - the iptables source's options (ipt_conf.c: the schema and its checks), as
 * iptables.c (the source) reads them.
 */
#ifndef MARS_IPT_CONF_H
#define MARS_IPT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "sources/iptables/ipt_rules.h"
#include "sources/kubernetes/pods.h"
#include "component.h"

/* `pods`: accounting rules for this node's pods, from the shared pod watch. */
struct ipt_pods_conf {
    bool enabled;
    struct mars_kubernetes_api_conf api;
};

struct ipt_conf {
    int64_t interval;
    char *namespace_;
    int backend;
    struct mars_strlist tables, chains, families;
    char *comment_prefix;
    int64_t max_series;
    struct mars_seclist rules;
    bool keep_on_exit;
    struct ipt_pods_conf pods;
    bool pods_on; /* the `pods` section is there and enabled */
    bool manage;  /* `rules` or `pods` was written (even empty): this source owns mars's rules */
};

extern const struct mars_opt mars_iptables_options[];
int mars_iptables_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);
/* The bit mask of family names (bit k: mars_iptables_family_names[k]), or -1 with *bad. */
int mars_iptables_family_mask(const struct mars_strlist *l, const char **bad);

static inline const struct ipt_rule_conf *mars_iptables_rule_at(const struct ipt_conf *c, size_t i)
{
    return &((const struct ipt_rule_conf *)c->rules.items)[i];
}

#endif
