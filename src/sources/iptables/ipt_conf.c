/*
 * ipt_conf.c - the iptables source's options and their checks: the counters' selection,
 * the managed rules (each expanded once, so a bad CIDR or port is reported at its
 * FILE:LINE:COL) and `pods`.
 *
 * Thread: the config loader's.
 */
#include "sources/iptables/ipt_conf.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/metrics.h"

#include "sources/iptables/ipt_internal.h"

static const char *const backend_names[] = {"auto", "nft", "legacy", NULL};

#define POFF(f) offsetof(struct ipt_pods_conf, f)
static const struct mars_opt ipt_pods_options[] = {
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = POFF(enabled),
     .def = "true",
     .desc = "Count the traffic of this node's pods (false keeps the section but turns it "
             "off)."},
    MARS_KUBERNETES_API_OPTIONS(struct ipt_pods_conf, api),
    {0},
};

#define OFF(f) offsetof(struct ipt_conf, f)
const struct mars_opt mars_iptables_options[] = {
    {.name = "interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(interval),
     .def = "15s",
     .min = 100000000,
     .max = (int64_t)24 * 3600 * 1000000000,
     .desc = "How often the rule counters are read and emitted."},
    {.name = "namespace",
     .type = MARS_OPT_STRING,
     .offset = OFF(namespace_),
     .def = "mars",
     .desc = "Prefix of the metric names (<namespace>_iptables_packets_total)."},
    {.name = "backend",
     .type = MARS_OPT_ENUM,
     .offset = OFF(backend),
     .def = "auto",
     .choices = backend_names,
     .desc = "nft (nf_tables over netlink: iptables-nft and native nft rules), legacy "
             "(x_tables through libiptc), or auto: nft, plus legacy for each family whose "
             "legacy tables already exist."},
    {.name = "tables",
     .type = MARS_OPT_LIST,
     .offset = OFF(tables),
     .desc = "Tables to read, as glob patterns (filter, nat, kube-*); empty reads all."},
    {.name = "chains",
     .type = MARS_OPT_LIST,
     .offset = OFF(chains),
     .desc = "Chains to read, as glob patterns (KUBE-SVC-*); empty reads all (named counter "
             "objects are read only when this is empty)."},
    {.name = "families",
     .type = MARS_OPT_LIST,
     .offset = OFF(families),
     .desc = "nft families to read: ip, ip6, inet, arp, bridge, netdev (legacy IPv4 rules are "
             "ip, IPv6 ip6); empty reads all."},
    {.name = "comment_prefix",
     .type = MARS_OPT_STRING,
     .offset = OFF(comment_prefix),
     .desc = "Read only rules whose comment starts with this text."},
    {.name = "max_series",
     .type = MARS_OPT_INT,
     .offset = OFF(max_series),
     .def = "20000",
     .min = 1,
     .max = 10000000,
     .desc = "Most series (distinct label sets) per read; rules past it are counted and "
             "logged once per interval."},
    {.name = "rules",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(rules),
     .sub = mars_iptables_rule_options,
     .sub_size = sizeof(struct ipt_rule_conf),
     .desc = "Rules mars manages in its own table (nft: inet mars) or chains (legacy: "
             "MARS-INPUT, ...), in order, each a mapping of the options below; an empty "
             "list removes them."},
    {.name = "pods",
     .type = MARS_OPT_SECTION,
     .offset = OFF(pods),
     .sub = ipt_pods_options,
     .desc = "Two managed count rules per IP of each pod of this node (forward hook: what "
             "the node routes to and from the pod), labelled namespace and pod, added and "
             "removed as pods come and go; `pods: true`, or a mapping with the API server "
             "options when no kubernetes_logs source shares its pod watch."},
    {.name = "keep_on_exit",
     .type = MARS_OPT_BOOL,
     .offset = OFF(keep_on_exit),
     .def = "false",
     .desc = "Leave the managed rules in the kernel when mars exits (they are always kept "
             "across a reload)."},
    {.name = NULL},
};

int mars_iptables_family_mask(const struct mars_strlist *l, const char **bad)
{
    unsigned m = 0;
    for (size_t i = 0; i < l->n; i++) {
        int k = 0;
        while (mars_iptables_family_names[k] && strcmp(mars_iptables_family_names[k], l->v[i]) != 0)
            k++;
        if (!mars_iptables_family_names[k]) {
            *bad = l->v[i];
            return -1;
        }
        m |= 1u << k;
    }
    return (int)m;
}

static void diag_at(struct mars_diag *diag, const struct mars_cfg_node *node, const char *key,
                    const char *fmt, const char *arg)
{
    const struct mars_cfg_node *n = mars_cfg_at(node, key, NULL);
    mars_diag_add(diag, n->file, n->line, n->col, fmt, arg);
}

/* Expands every rule once, only to report what is wrong at its position. */
static int check_rules(struct ipt_conf *c, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    int rc = 0;
    c->pods_on = mars_cfg_get(node, "pods") != NULL && c->pods.enabled;
    c->manage = mars_cfg_get(node, "rules") != NULL || c->pods_on;
    for (size_t i = 0; i < c->rules.n; i++) {
        const struct ipt_rule_conf *r = mars_iptables_rule_at(c, i);
        const struct mars_cfg_node *item = mars_cfg_item_at(node, "rules", i), *at = item;
        struct ipt_ruleset scratch = {0};
        struct ipt_rule_err err = {0};
        int e = mars_iptables_rule_expand(r, &scratch, &err);
        mars_iptables_ruleset_fini(&scratch);
        if (e == -EINVAL) {
            if (item && item->kind == MARS_CFG_MAP && mars_cfg_get(item, err.key))
                at = strcmp(err.key, "ports") == 0 ? mars_cfg_item_at(item, err.key, err.item)
                                                   : mars_cfg_at(item, err.key, NULL);
            mars_diag_add(diag, at->file, at->line, at->col, "rule %zu: %s", i + 1, err.why);
            rc = -EINVAL;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (r->name && mars_iptables_rule_at(c, j)->name &&
                strcmp(r->name, mars_iptables_rule_at(c, j)->name) == 0) {
                at = mars_cfg_at(item, "name", NULL);
                mars_diag_add(diag, at->file, at->line, at->col,
                              "rule %zu: the name '%s' is used by rule %zu already", i + 1, r->name,
                              j + 1);
                rc = -EINVAL;
                break;
            }
        }
    }
    return rc;
}

int mars_iptables_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    struct ipt_conf *c = conf;
    const char *bad = NULL;
    int rc = 0;
    if (c->namespace_ && !mars_metric_name_valid(c->namespace_, strlen(c->namespace_))) {
        diag_at(diag, node, "namespace",
                "option 'namespace': '%s' is not a valid metric name prefix", c->namespace_);
        rc = -EINVAL;
    }
    if (mars_iptables_family_mask(&c->families, &bad) < 0) {
        diag_at(diag, node, "families",
                "option 'families': unknown family '%s' (ip, ip6, inet, arp, bridge, netdev)", bad);
        rc = -EINVAL;
    }
    if (check_rules(c, node, diag))
        rc = -EINVAL;
    if (c->backend == IPT_BACKEND_LEGACY) {
        for (size_t i = 0; i < c->families.n; i++) {
            if (strcmp(c->families.v[i], "ip") != 0 && strcmp(c->families.v[i], "ip6") != 0) {
                diag_at(diag, node, "families",
                        "option 'families': backend legacy reads only ip and ip6, not '%s'",
                        c->families.v[i]);
                rc = -EINVAL;
            }
        }
    }
    return rc;
}
