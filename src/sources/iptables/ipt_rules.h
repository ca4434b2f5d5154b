/*
 * ipt_rules.h - mars's managed rules: the `rules:` option as the schema fills it (struct
 * ipt_rule_conf), the kernel rules it expands to (struct ipt_krule: one address family or
 * both, at most one destination port range) and the desired set the backends reconcile
 * the kernel with (struct ipt_ruleset).
 *
 * One function turns a desired set into kernel state per backend: it reads what mars's own
 * table (nft) or chains (legacy) hold, keeps every rule that is already there (so its
 * counter runs on), deletes the rest and inserts what is missing at its place, all in one
 * atomic change (one nft batch, one iptc_commit per family). An empty set removes mars's
 * table or chains. Whoever builds a set (the config today, pod IPs later) fills it with
 * mars_iptables_rule_expand() / mars_iptables_ruleset_add() and hands it to the source's
 * dump thread (post_rules() in iptables.c), which calls mars_iptables_apply().
 *
 * Thread: config checks on the loader's; the rest on the source's dump thread.
 */
#ifndef MARS_IPT_RULES_H
#define MARS_IPT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"

enum ipt_dir { IPT_DIR_INPUT, IPT_DIR_OUTPUT, IPT_DIR_FORWARD, IPT_DIR__COUNT };
enum ipt_action { IPT_ACT_COUNT, IPT_ACT_ACCEPT, IPT_ACT_DROP, IPT_ACT_REJECT };
extern const char *const mars_iptables_dir_names[];    /* input, output, forward */
extern const char *const mars_iptables_action_names[]; /* count, accept, drop, reject */
extern const struct mars_opt mars_iptables_rule_options[];

#define IPT_NAME_MAX  127 /* nft keeps comments of up to 128 bytes with their NUL */
#define IPT_PORTS_MAX 32

/* One entry of `rules:`, as the schema fills it. */
struct ipt_rule_conf {
    char *name;
    int direction; /* enum ipt_dir */
    char *protocol;
    char *source, *destination;
    int64_t port; /* 0: unset */
    struct mars_strlist ports;
    char *interface;
    int action; /* enum ipt_action */
};

/* One kernel rule. */
struct ipt_krule {
    char name[IPT_NAME_MAX + 1]; /* the comment */
    uint8_t dir;                 /* enum ipt_dir */
    uint8_t action;              /* enum ipt_action */
    uint8_t family;              /* 4, 6, or 0: both */
    int16_t proto;               /* IP protocol number, -1: any */
    int16_t src_len, dst_len;    /* prefix length, -1: no address match */
    uint8_t src[16], dst[16];    /* network order, host bits zero */
    uint16_t port_lo, port_hi;   /* destination port range; 0: no port match */
    char ifname[16];             /* zero-padded */
    uint8_t if_len;              /* bytes of ifname to compare, 0: no interface match */
};

struct ipt_ruleset {
    struct ipt_krule *v;
    size_t n, cap;
};

/* What is wrong with a rule: the option (`key`, item `item` of a list option) and why. */
struct ipt_rule_err {
    const char *key;
    size_t item;
    char why[200];
};

/* Appends the kernel rules of rule c (one per port range) to out. Returns 0, -EINVAL with
 * err filled, or -ENOMEM. */
int mars_iptables_rule_expand(const struct ipt_rule_conf *c, struct ipt_ruleset *out,
                              struct ipt_rule_err *err);
/* Appends a copy of r. Returns 0 or -ENOMEM. */
int mars_iptables_ruleset_add(struct ipt_ruleset *s, const struct ipt_krule *r);
void mars_iptables_ruleset_fini(struct ipt_ruleset *s);

/* Outcome of one reconciliation. */
struct ipt_apply_res {
    int err;       /* 0 or -errno */
    char why[256]; /* err != 0: what failed, naming a missing capability */
    unsigned added, removed, kept;
};

enum ipt_backend { IPT_BACKEND_AUTO, IPT_BACKEND_NFT, IPT_BACKEND_LEGACY };

/* The one entry point: brings the kernel to want with the source's backend. nft gets the
 * rules of every family that has no legacy tables (auto) or all of them (nft); legacy gets
 * each family whose legacy tables exist (auto, legacy). Families a backend does not get are
 * brought to empty there, so a rule never runs twice. res counts over all backends; its
 * err is the first failure. Returns res->err. */
int mars_iptables_apply(enum ipt_backend backend, const struct ipt_ruleset *want,
                        struct ipt_apply_res *res);

/* nft: brings table `inet mars` to want (empty: deletes the table). */
int mars_iptables_nft_apply(const struct ipt_ruleset *want, struct ipt_apply_res *res);
/* legacy: brings chains MARS-INPUT/-OUTPUT/-FORWARD of table filter (ip, or ip6 when v6) to
 * the rules of want of that family (empty: removes the chains and their jumps). Only call
 * it when the family's legacy tables exist. */
int mars_iptables_legacy_apply(const struct ipt_ruleset *want, bool v6, struct ipt_apply_res *res);

/* Records the first failure in res (printf-style). Returns err. */
int mars_iptables_apply_fail(struct ipt_apply_res *res, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
