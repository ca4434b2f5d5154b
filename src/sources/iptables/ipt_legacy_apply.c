/*
 * ipt_legacy_apply.c - mars's managed rules on legacy x_tables, through libiptc: chains
 * MARS-INPUT, MARS-OUTPUT and MARS-FORWARD in table filter (ip and ip6 each), each entered
 * by one jump rule at the head of the built-in chain (INPUT, ...), so mars's rules run
 * first, as they do at nft priority -1. Each rule carries a `comment` match with its name
 * (the counter reader's `rule` label); ports are the `tcp` or `udp` match; reject is the
 * REJECT target (tcp-reset for tcp, port unreachable otherwise).
 *
 * Reconciling one family: iptc_init takes a snapshot of the table; per chain the desired
 * rules are matched in order against the chain's (by comment and a digest of the address
 * selector, the matches and the target), unmatched ones are deleted and missing ones
 * inserted at their place, then ONE iptc_commit replaces the table. libiptc carries the
 * counters of every rule it did not change over the commit, so a kept rule's counter runs
 * on. No difference, no commit. An empty desired set removes the jumps and the chains.
 *
 * The xtables lock is never taken (kube-proxy contends for it). The kernel refuses a
 * replacement whose rule count no longer matches the snapshot (EAGAIN): the whole
 * reconciliation is then redone from a new snapshot, at most 3 times. Only the MARS-*
 * chains and the jump rules into them are ever changed. libiptc needs CAP_NET_ADMIN and
 * CAP_NET_RAW; a missing one is named before libiptc is called.
 *
 * Thread: the source's dump thread, under the process's libiptc mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libiptc/libip6tc.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include "core/grow.h"
#include "sources/iptables/ipt_internal.h"
#include "sources/iptables/ipt_rules.h"

#define ENTRY_MAX 1024
#define TRIES     3

static const char *const own_chains[IPT_DIR__COUNT] = {"MARS-INPUT", "MARS-OUTPUT", "MARS-FORWARD"};
static const char *const builtin_chains[IPT_DIR__COUNT] = {"INPUT", "OUTPUT", "FORWARD"};

/* libiptc's calls for one family, on entries seen as bytes. */
struct tc {
    bool v6;
    size_t entry_size; /* sizeof(struct ipt_entry) or ip6t_entry */
    size_t sel_size;   /* sizeof(struct ipt_ip) or ip6t_ip6 (first in the entry) */
};

static struct xtc_handle *tc_init(const struct tc *t)
{
    return t->v6 ? ip6tc_init("filter") : iptc_init("filter");
}
static void tc_free(const struct tc *t, struct xtc_handle *h)
{
    t->v6 ? ip6tc_free(h) : iptc_free(h);
}
static const void *tc_first(const struct tc *t, const char *c, struct xtc_handle *h)
{
    return t->v6 ? (const void *)ip6tc_first_rule(c, h) : (const void *)iptc_first_rule(c, h);
}
static const void *tc_next(const struct tc *t, const void *e, struct xtc_handle *h)
{
    return t->v6 ? (const void *)ip6tc_next_rule(e, h) : (const void *)iptc_next_rule(e, h);
}
static const char *tc_target(const struct tc *t, const void *e, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_get_target(e, h) : iptc_get_target(e, h);
}
static int tc_is_chain(const struct tc *t, const char *c, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_is_chain(c, h) : iptc_is_chain(c, h);
}
static int tc_create(const struct tc *t, const char *c, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_create_chain(c, h) : iptc_create_chain(c, h);
}
static int tc_insert(const struct tc *t, const char *c, const void *e, unsigned n,
                     struct xtc_handle *h)
{
    return t->v6 ? ip6tc_insert_entry(c, e, n, h) : iptc_insert_entry(c, e, n, h);
}
static int tc_delete_num(const struct tc *t, const char *c, unsigned n, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_delete_num_entry(c, n, h) : iptc_delete_num_entry(c, n, h);
}
static int tc_flush(const struct tc *t, const char *c, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_flush_entries(c, h) : iptc_flush_entries(c, h);
}
static int tc_delete_chain(const struct tc *t, const char *c, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_delete_chain(c, h) : iptc_delete_chain(c, h);
}
static int tc_commit(const struct tc *t, struct xtc_handle *h)
{
    return t->v6 ? ip6tc_commit(h) : iptc_commit(h);
}
static const char *tc_strerror(const struct tc *t, int err)
{
    return t->v6 ? ip6tc_strerror(err) : iptc_strerror(err);
}

/* target_offset of an entry of either family (same place in both structs' tails). */
static uint16_t target_offset(const struct tc *t, const void *e)
{
    return t->v6 ? ((const struct ip6t_entry *)e)->target_offset
                 : ((const struct ipt_entry *)e)->target_offset;
}

/* ---- building entries ---- */

struct entry_buf {
    _Alignas(8) unsigned char bytes[ENTRY_MAX]; /* a struct ipt_entry or ip6t_entry */
    size_t len;
};

static struct ipt_entry *e4(struct entry_buf *b)
{
    return (struct ipt_entry *)(void *)b->bytes;
}

static struct ip6t_entry *e6(struct entry_buf *b)
{
    return (struct ip6t_entry *)(void *)b->bytes;
}

static void *append(struct entry_buf *b, size_t size)
{
    void *p = b->bytes + b->len;
    b->len += size;
    return p;
}

static void add_match(struct entry_buf *b, const char *name, const void *data, size_t dlen)
{
    size_t size = XT_ALIGN(sizeof(struct xt_entry_match) + dlen);
    struct xt_entry_match *m = append(b, size);
    m->u.user.match_size = (uint16_t)size;
    snprintf(m->u.user.name, sizeof(m->u.user.name), "%s", name);
    memcpy(m->data, data, dlen);
}

static void prefix_mask(uint8_t *mask, int plen)
{
    for (int i = 0; i < plen; i++)
        mask[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

/* The selector: addresses, interface, protocol. */
static void fill_sel(const struct tc *t, struct entry_buf *b, const struct ipt_krule *k)
{
    char *ifn, *ifm;
    if (t->v6) {
        struct ip6t_ip6 *ip = &e6(b)->ipv6;
        if (k->src_len > 0) {
            memcpy(&ip->src, k->src, 16);
            prefix_mask((uint8_t *)&ip->smsk, k->src_len);
        }
        if (k->dst_len > 0) {
            memcpy(&ip->dst, k->dst, 16);
            prefix_mask((uint8_t *)&ip->dmsk, k->dst_len);
        }
        if (k->proto >= 0) {
            ip->proto = (uint16_t)k->proto;
            ip->flags |= IP6T_F_PROTO;
        }
        ifn = k->dir == IPT_DIR_OUTPUT ? ip->outiface : ip->iniface;
        ifm = (char *)(k->dir == IPT_DIR_OUTPUT ? ip->outiface_mask : ip->iniface_mask);
    } else {
        struct ipt_ip *ip = &e4(b)->ip;
        if (k->src_len > 0) {
            memcpy(&ip->src, k->src, 4);
            prefix_mask((uint8_t *)&ip->smsk, k->src_len);
        }
        if (k->dst_len > 0) {
            memcpy(&ip->dst, k->dst, 4);
            prefix_mask((uint8_t *)&ip->dmsk, k->dst_len);
        }
        if (k->proto >= 0)
            ip->proto = (uint16_t)k->proto;
        ifn = k->dir == IPT_DIR_OUTPUT ? ip->outiface : ip->iniface;
        ifm = (char *)(k->dir == IPT_DIR_OUTPUT ? ip->outiface_mask : ip->iniface_mask);
    }
    if (k->if_len) {
        memcpy(ifn, k->ifname, IFNAMSIZ);
        if (k->if_len <= IFNAMSIZ - 1 && k->ifname[k->if_len - 1] != 0)
            ifn[k->if_len] = '+'; /* a prefix, spelled as iptables shows it */
        memset(ifm, 0xff, k->if_len);
    }
}

/* The target name libiptc shows for k's action ("" for a rule that only counts). */
static const char *target_of(const struct ipt_krule *k)
{
    switch (k->action) {
    case IPT_ACT_ACCEPT:
        return "ACCEPT";
    case IPT_ACT_DROP:
        return "DROP";
    case IPT_ACT_REJECT:
        return "REJECT";
    default:
        return "";
    }
}

/* Builds the entry of k (target "" counts only, else ACCEPT/DROP/REJECT), or a jump to
 * chain `jump` when k is NULL. */
static void build(const struct tc *t, struct entry_buf *b, const struct ipt_krule *k,
                  const char *jump)
{
    memset(b, 0, sizeof(*b));
    b->len = t->entry_size;
    if (k) {
        fill_sel(t, b, k);
        struct xt_comment_info ci = {{0}};
        snprintf(ci.comment, sizeof(ci.comment), "%s", k->name);
        add_match(b, "comment", &ci, sizeof(ci));
        if (k->port_lo && k->proto == 6) {
            struct xt_tcp m = {.spts = {0, 0xffff}, .dpts = {k->port_lo, k->port_hi}};
            add_match(b, "tcp", &m, sizeof(m));
        } else if (k->port_lo) {
            struct xt_udp m = {.spts = {0, 0xffff}, .dpts = {k->port_lo, k->port_hi}};
            add_match(b, "udp", &m, sizeof(m));
        }
    }
    size_t toff = b->len;
    if (k && k->action == IPT_ACT_REJECT) {
        size_t size = XT_ALIGN(sizeof(struct xt_entry_target) + sizeof(uint32_t));
        struct xt_entry_target *tg = append(b, size);
        tg->u.user.target_size = (uint16_t)size;
        snprintf(tg->u.user.name, sizeof(tg->u.user.name), "REJECT");
        uint32_t with = t->v6 ? (k->proto == 6 ? IP6T_TCP_RESET : IP6T_ICMP6_PORT_UNREACH)
                              : (k->proto == 6 ? IPT_TCP_RESET : IPT_ICMP_PORT_UNREACHABLE);
        memcpy(tg->data, &with, sizeof(with));
    } else {
        size_t size = XT_ALIGN(sizeof(struct xt_standard_target));
        struct xt_standard_target *tg = append(b, size);
        tg->target.u.user.target_size = (uint16_t)size;
        const char *name = k ? target_of(k) : jump;
        snprintf(tg->target.u.user.name, sizeof(tg->target.u.user.name), "%s", name);
    }
    if (t->v6) {
        e6(b)->target_offset = (uint16_t)toff;
        e6(b)->next_offset = (uint16_t)b->len;
    } else {
        e4(b)->target_offset = (uint16_t)toff;
        e4(b)->next_offset = (uint16_t)b->len;
    }
}

/* Digest of an entry as libiptc shows it: selector, matches, the target's name, and a
 * module target's data (a standard target's verdict is libiptc's business: the kernel
 * shows it under the name "", an entry being built under ACCEPT or DROP). */
static uint64_t digest(const struct tc *t, const void *e, const char *target)
{
    const unsigned char *p = e;
    uint16_t toff = target_offset(t, e);
    const struct xt_entry_target *tg = (const void *)(p + toff);
    uint64_t h = mars_iptables_fnv(IPT_FNV_INIT, p, t->sel_size);
    /* match by match: the kernel writes a name's NUL but not the bytes after it */
    for (size_t off = t->entry_size; off + sizeof(struct xt_entry_match) <= toff;) {
        const struct xt_entry_match *m = (const void *)(p + off);
        if (m->u.match_size < sizeof(*m))
            break;
        h = mars_iptables_fnv(h, m->u.user.name, strnlen(m->u.user.name, sizeof(m->u.user.name)));
        h = mars_iptables_fnv(h, &m->u.user.revision, 1);
        h = mars_iptables_fnv(h, m->data, m->u.match_size - sizeof(*m));
        off += m->u.match_size;
    }
    h = mars_iptables_fnv(h, target, strlen(target) + 1);
    static const char *const verdicts[] = {"", "ACCEPT", "DROP", "RETURN", "QUEUE"};
    bool standard = !tg->u.user.name[0];
    for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++)
        standard |= strcmp(target, verdicts[i]) == 0;
    if (!standard && tg->u.user.target_size > sizeof(*tg))
        h = mars_iptables_fnv(h, tg->data, tg->u.user.target_size - sizeof(*tg));
    return h;
}

/* The comment of an entry ("" without one). */
static void comment_of(const struct tc *t, const void *e, char *out, size_t len)
{
    const unsigned char *p = e;
    uint16_t toff = target_offset(t, e);
    out[0] = 0;
    for (size_t off = t->entry_size; off + sizeof(struct xt_entry_match) <= toff;) {
        const struct xt_entry_match *m = (const void *)(p + off);
        if (m->u.match_size < sizeof(*m))
            break;
        if (strcmp(m->u.user.name, "comment") == 0) {
            const struct xt_comment_info *ci = (const void *)m->data;
            size_t n = strnlen(ci->comment, sizeof(ci->comment));
            if (n >= len)
                n = len - 1;
            memcpy(out, ci->comment, n);
            out[n] = 0;
            return;
        }
        off += m->u.match_size;
    }
}

/* ---- reconciling ---- */

struct cur {
    char comment[IPT_NAME_MAX + 1];
    uint64_t digest;
    bool keep;
};

static bool family_has(const struct ipt_krule *k, bool v6)
{
    return k->family == 0 || k->family == (v6 ? 6 : 4);
}

/* Jump rules from built-in chain `c` into `own`: deletes them all (want false) or makes
 * sure there is one (want true, inserted first). Returns changes made, or -1. */
static int jumps(const struct tc *t, struct xtc_handle *h, const char *c, const char *own,
                 bool want)
{
    unsigned n = 0, found = 0;
    unsigned at[64];
    for (const void *e = tc_first(t, c, h); e; e = tc_next(t, e, h), n++)
        if (strcmp(tc_target(t, e, h), own) == 0 && found < 64)
            at[found++] = n;
    if (want) {
        if (found)
            return 0;
        struct entry_buf b;
        build(t, &b, NULL, own);
        return tc_insert(t, c, b.bytes, 0, h) ? 1 : -1;
    }
    for (unsigned i = found; i-- > 0;)
        if (!tc_delete_num(t, c, at[i], h))
            return -1;
    return (int)found;
}

static int reconcile_chain(const struct tc *t, struct xtc_handle *h, int d,
                           const struct ipt_ruleset *want, struct ipt_apply_res *res)
{
    const char *own = own_chains[d];
    struct cur *cur = NULL;
    size_t n = 0, cap = 0;
    int changes = 0;
    for (const void *e = tc_first(t, own, h); e; e = tc_next(t, e, h)) {
        if (mars_grow(&cur, &cap, n + 1, sizeof(*cur))) {
            free(cur);
            return -ENOMEM;
        }
        comment_of(t, e, cur[n].comment, sizeof(cur[n].comment));
        cur[n].digest = digest(t, e, tc_target(t, e, h));
        cur[n++].keep = false;
    }
    /* match in order; note which desired rules are kept */
    bool *kept = calloc(want->n + 1, sizeof(*kept));
    if (!kept) {
        free(cur);
        return -ENOMEM;
    }
    size_t from = 0;
    for (size_t i = 0; i < want->n; i++) {
        const struct ipt_krule *k = &want->v[i];
        if (k->dir != d || !family_has(k, t->v6))
            continue;
        struct entry_buf b;
        build(t, &b, k, NULL);
        uint64_t dg = digest(t, b.bytes, target_of(k));
        for (size_t j = from; j < n; j++) {
            if (cur[j].digest == dg && strcmp(cur[j].comment, k->name) == 0) {
                cur[j].keep = kept[i] = true;
                from = j + 1;
                break;
            }
        }
    }
    int rc = 0;
    for (size_t j = n; j-- > 0 && !rc;) {
        if (cur[j].keep) {
            res->kept++;
            continue;
        }
        rc = tc_delete_num(t, own, (unsigned)j, h) ? 0 : -errno;
        res->removed++;
        changes++;
    }
    unsigned pos = 0;
    for (size_t i = 0; i < want->n && !rc; i++) {
        const struct ipt_krule *k = &want->v[i];
        if (k->dir != d || !family_has(k, t->v6))
            continue;
        if (!kept[i]) {
            struct entry_buf b;
            build(t, &b, k, NULL);
            rc = tc_insert(t, own, b.bytes, pos, h) ? 0 : -errno;
            res->added++;
            changes++;
        }
        pos++;
    }
    free(kept);
    free(cur);
    return rc ? rc : changes;
}

/* One attempt on a fresh snapshot. Returns 0, -EAGAIN (the table changed under us), or
 * another error recorded in res. */
static int attempt(const struct tc *t, const struct ipt_ruleset *want, bool empty,
                   struct ipt_apply_res *res)
{
    const char *fam = t->v6 ? "ip6" : "ip";
    struct xtc_handle *h = tc_init(t);
    if (!h)
        return mars_iptables_apply_fail(res, -errno,
                                        "managed rules: legacy: cannot read table %s "
                                        "filter: %s",
                                        fam, tc_strerror(t, errno));
    int changes = 0, rc = 0;
    for (int d = 0; d < IPT_DIR__COUNT && !rc; d++) {
        const char *own = own_chains[d];
        bool exists = tc_is_chain(t, own, h);
        if (empty) {
            if (!exists)
                continue;
            for (const void *e = tc_first(t, own, h); e; e = tc_next(t, e, h))
                res->removed++;
            int j = jumps(t, h, builtin_chains[d], own, false);
            if (j < 0 || !tc_flush(t, own, h) || !tc_delete_chain(t, own, h))
                rc = -errno;
            changes++;
            continue;
        }
        if (!exists) {
            if (!tc_create(t, own, h)) {
                rc = -errno;
                break;
            }
            changes++;
        }
        int j = jumps(t, h, builtin_chains[d], own, true);
        if (j < 0) {
            rc = -errno;
            break;
        }
        changes += j;
        int c = reconcile_chain(t, h, d, want, res);
        if (c < 0)
            rc = c;
        else
            changes += c;
    }
    if (!rc && changes && !tc_commit(t, h))
        rc = errno == EAGAIN ? -EAGAIN : -errno;
    if (rc && rc != -EAGAIN)
        mars_iptables_apply_fail(res, rc,
                                 "managed rules: legacy: changing table %s filter "
                                 "failed: %s",
                                 fam, tc_strerror(t, -rc));
    tc_free(t, h);
    return rc;
}

int mars_iptables_legacy_apply(const struct ipt_ruleset *want, bool v6, struct ipt_apply_res *res)
{
    bool admin = mars_iptables_has_cap(12), raw = mars_iptables_has_cap(13);
    if (!admin || !raw)
        return mars_iptables_apply_fail(
            res, -EPERM,
            "managed rules: legacy iptables needs CAP_NET_ADMIN and CAP_NET_RAW (missing: "
            "%s%s%s)",
            admin ? "" : "CAP_NET_ADMIN", !admin && !raw ? " " : "", raw ? "" : "CAP_NET_RAW");
    const struct tc t = {.v6 = v6,
                         .entry_size = v6 ? sizeof(struct ip6t_entry) : sizeof(struct ipt_entry),
                         .sel_size = v6 ? sizeof(struct ip6t_ip6) : sizeof(struct ipt_ip)};
    bool empty = true;
    for (size_t i = 0; i < want->n && empty; i++)
        empty = !family_has(&want->v[i], v6);
    int rc = -EAGAIN;
    pthread_mutex_lock(&mars_iptables_iptc_mu);
    for (int i = 0; i < TRIES && rc == -EAGAIN; i++) {
        struct ipt_apply_res r = {0};
        rc = attempt(&t, want, empty, &r);
        if (rc != -EAGAIN)
            *res = r;
    }
    pthread_mutex_unlock(&mars_iptables_iptc_mu);
    if (rc == -EAGAIN)
        mars_iptables_apply_fail(res, rc,
                                 "managed rules: legacy: table %s filter kept changing under "
                                 "the commit (%d tries)",
                                 v6 ? "ip6" : "ip", TRIES);
    return rc;
}
