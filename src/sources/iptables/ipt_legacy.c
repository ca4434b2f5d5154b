/*
 * ipt_legacy.c - reads legacy x_tables rule counters through libiptc (libip4tc for `ip`,
 * libip6tc for `ip6`): iptc_init() takes an atomic snapshot of one table from the kernel,
 * then chains and rules are walked in that snapshot. Read-only use needs no xtables lock,
 * and none is taken (kube-proxy contends for it).
 *
 * Only tables listed in /proc/net/ip_tables_names (ip6_tables_names) are opened: asking
 * for any other, or asking at all in an nft-only namespace, would make the kernel create an
 * empty legacy table, after which iptables-nft warns that legacy tables exist (kube-proxy's
 * mode detection compares the two). libiptc needs CAP_NET_ADMIN and CAP_NET_RAW; both are
 * checked first so that a missing one is named, instead of libiptc's "Permission denied
 * (you must be root)".
 *
 * A rule's comment is the payload of its `comment` match; without one, the rule is named by
 * a digest of its address/interface selector, its matches and its target name (not of the
 * kernel's jump offsets, which move when rules before it change). Standard verdicts are
 * spelled as nft spells them (accept, drop, return, queue) so that a series keeps its
 * labels when a node moves from legacy to nft.
 *
 * libiptc keeps process-wide state (its socket), so every call is made under one mutex.
 *
 * Thread: the source's dump thread.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libiptc/libip6tc.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/xt_comment.h>

#include "sources/iptables/ipt_internal.h"

#define CAP_NET_ADMIN_BIT 12
#define CAP_NET_RAW_BIT   13

pthread_mutex_t mars_iptables_iptc_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *names_file(bool v6)
{
    return v6 ? "/proc/net/ip6_tables_names" : "/proc/net/ip_tables_names";
}

/* Reads the table names (one a line) into buf as NUL-separated words; returns how many. */
static int read_names(bool v6, char *buf, size_t len)
{
    FILE *f = fopen(names_file(v6), "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            buf[i] = 0;
            count++;
        }
    }
    return count;
}

bool mars_iptables_legacy_present(bool v6)
{
    char buf[512];
    return read_names(v6, buf, sizeof(buf)) > 0 && buf[0];
}

static const char *verdict_name(const char *t)
{
    static const char *const std[][2] = {
        {"ACCEPT", "accept"}, {"DROP", "drop"}, {"RETURN", "return"}, {"QUEUE", "queue"}};
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
        if (strcmp(t, std[i][0]) == 0)
            return std[i][1];
    return t;
}

/* What a rule is made of, whatever its family. */
struct entry_view {
    const void *sel; /* struct ipt_ip or ip6t_ip6 */
    size_t sel_len;
    const unsigned char *elems; /* matches, then the target */
    size_t matches_len;         /* target_offset - header */
    const struct xt_counters *ctr;
};

static void view4(const struct ipt_entry *e, struct entry_view *v)
{
    *v = (struct entry_view){.sel = &e->ip,
                             .sel_len = sizeof(e->ip),
                             .elems = e->elems,
                             .matches_len = e->target_offset - sizeof(*e),
                             .ctr = &e->counters};
}

static void view6(const struct ip6t_entry *e, struct entry_view *v)
{
    *v = (struct entry_view){.sel = &e->ipv6,
                             .sel_len = sizeof(e->ipv6),
                             .elems = e->elems,
                             .matches_len = e->target_offset - sizeof(*e),
                             .ctr = &e->counters};
}

static int add_entry(struct ipt_dump *d, const struct ipt_filter *f, bool v6, const char *table,
                     const char *chain, const struct entry_view *v, const char *target)
{
    char comment[XT_MAX_COMMENT_LEN + 1] = "";
    uint64_t h = IPT_FNV_INIT;
    for (size_t off = 0; off + sizeof(struct xt_entry_match) <= v->matches_len;) {
        const struct xt_entry_match *m = (const void *)(v->elems + off);
        if (m->u.match_size < sizeof(*m))
            break;
        if (strcmp(m->u.user.name, "comment") == 0 && !comment[0]) {
            const struct xt_comment_info *ci = (const void *)m->data;
            snprintf(comment, sizeof(comment), "%.*s", XT_MAX_COMMENT_LEN, ci->comment);
        }
        off += m->u.match_size;
    }
    if (!comment[0]) {
        h = mars_iptables_fnv(h, v->sel, v->sel_len);
        h = mars_iptables_fnv(h, v->elems, v->matches_len);
        h = mars_iptables_fnv(h, target, strlen(target));
    }
    return mars_iptables_dump_add(d, f, v6 ? "ip6" : "ip", table, chain,
                                  comment[0] ? comment : NULL, h, verdict_name(target),
                                  v->ctr->pcnt, v->ctr->bcnt);
}

static int dump_table4(struct ipt_dump *d, const struct ipt_filter *f, const char *table)
{
    struct xtc_handle *h = iptc_init(table);
    if (!h)
        return mars_iptables_dump_fail(d, -errno, "legacy: cannot read table ip %s: %s", table,
                                       iptc_strerror(errno));
    int rc = 0;
    for (const char *c = iptc_first_chain(h); c && !rc; c = iptc_next_chain(h)) {
        if (!mars_iptables_filter_chain(f, c))
            continue;
        for (const struct ipt_entry *e = iptc_first_rule(c, h); e && !rc;
             e = iptc_next_rule(e, h)) {
            struct entry_view v;
            view4(e, &v);
            rc = add_entry(d, f, false, table, c, &v, iptc_get_target(e, h));
        }
    }
    iptc_free(h);
    return rc ? mars_iptables_dump_fail(d, rc, "legacy: out of memory") : 0;
}

static int dump_table6(struct ipt_dump *d, const struct ipt_filter *f, const char *table)
{
    struct xtc_handle *h = ip6tc_init(table);
    if (!h)
        return mars_iptables_dump_fail(d, -errno, "legacy: cannot read table ip6 %s: %s", table,
                                       ip6tc_strerror(errno));
    int rc = 0;
    for (const char *c = ip6tc_first_chain(h); c && !rc; c = ip6tc_next_chain(h)) {
        if (!mars_iptables_filter_chain(f, c))
            continue;
        for (const struct ip6t_entry *e = ip6tc_first_rule(c, h); e && !rc;
             e = ip6tc_next_rule(e, h)) {
            struct entry_view v;
            view6(e, &v);
            rc = add_entry(d, f, true, table, c, &v, ip6tc_get_target(e, h));
        }
    }
    ip6tc_free(h);
    return rc ? mars_iptables_dump_fail(d, rc, "legacy: out of memory") : 0;
}

int mars_iptables_legacy_dump(struct ipt_dump *d, const struct ipt_filter *f, bool v6)
{
    char names[512];
    if (!mars_iptables_has_cap(CAP_NET_ADMIN_BIT) || !mars_iptables_has_cap(CAP_NET_RAW_BIT))
        return mars_iptables_dump_fail(
            d, -EPERM,
            "legacy: reading iptables needs CAP_NET_ADMIN and CAP_NET_RAW "
            "(missing: %s%s%s)",
            mars_iptables_has_cap(CAP_NET_ADMIN_BIT) ? "" : "CAP_NET_ADMIN",
            !mars_iptables_has_cap(CAP_NET_ADMIN_BIT) && !mars_iptables_has_cap(CAP_NET_RAW_BIT)
                ? " "
                : "",
            mars_iptables_has_cap(CAP_NET_RAW_BIT) ? "" : "CAP_NET_RAW");
    int count = read_names(v6, names, sizeof(names));
    int rc = 0;
    pthread_mutex_lock(&mars_iptables_iptc_mu);
    for (const char *t = names; count-- > 0 && !rc; t += strlen(t) + 1) {
        if (!*t || !mars_iptables_filter_table(f, t))
            continue;
        rc = v6 ? dump_table6(d, f, t) : dump_table4(d, f, t);
    }
    pthread_mutex_unlock(&mars_iptables_iptc_mu);
    return rc;
}
