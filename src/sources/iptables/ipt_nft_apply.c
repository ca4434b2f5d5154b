/*
 * ipt_nft_apply.c - mars's managed rules on nf_tables: table `inet mars` with one base
 * chain per hook (input, output, forward; type filter, priority -1, policy accept), each
 * rule a `counter` with the rule's name as comment in its user data, as `nft` writes it,
 * so the counter reader labels mars's rules like any native nft rule.
 *
 * Priority -1 (filter - 1) runs mars's chains just before iptables-nft's and kube-proxy's
 * filter chains (priority 0): a count rule sees every packet of its hook before anyone else
 * drops it, and mars's drop acts first. An accept ends only mars's own chain: the packet
 * still goes through the other base chains of the hook, so mars never lets through what
 * another firewall drops.
 *
 * Reconciling: one dump of the rules of `inet mars` (filtered by the kernel to that table),
 * each known by (chain, comment, digest of its expressions, counters left out). The desired
 * rules are built with libnftnl and read back through the same parser, so both sides digest
 * the same text. Per chain, desired rules are matched in order against the kernel's
 * (greedy, keeping order); matched rules stay untouched (their counters run on), the
 * kernel's unmatched rules are deleted by handle and the missing ones inserted before the
 * next kept rule (or appended), so the chain ends in the configured order. Everything goes
 * in ONE batch: the kernel applies it whole or not at all. No difference, no batch (a batch
 * bumps the ruleset generation every nft reader watches). An empty desired set deletes the
 * table when it exists. Nothing outside `inet mars` is touched.
 *
 * Needs CAP_NET_ADMIN; its absence is named before the kernel is asked.
 *
 * Thread: the source's dump thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "core/grow.h"
#include "sources/iptables/ipt_internal.h"
#include "sources/iptables/ipt_rules.h"

#define MARS_TABLE     "mars"
#define MARS_PRIORITY  (-1)
#define RECV_BUF       (64 * 1024)
#define CAP_NET_ADMIN_ 12

/* A rule of table mars as the kernel has it. */
struct cur_rule {
    int dir; /* enum ipt_dir, -1 for a chain mars does not make */
    uint64_t handle, digest;
    char comment[IPT_NAME_MAX + 1];
    bool keep;
};

struct cur_set {
    struct cur_rule *v;
    size_t n, cap;
    int err;
};

static int dir_of_chain(const char *c)
{
    for (int i = 0; i < IPT_DIR__COUNT; i++)
        if (strcmp(mars_iptables_dir_names[i], c) == 0)
            return i;
    return -1;
}

static const uint32_t hooks[IPT_DIR__COUNT] = {NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
                                               NF_INET_FORWARD};

/* ---- building rules ---- */

static int push(struct nftnl_rule *r, struct nftnl_expr *e)
{
    if (!e)
        return -ENOMEM;
    nftnl_rule_add_expr(r, e);
    return 0;
}

static struct nftnl_expr *e_meta(uint32_t key)
{
    struct nftnl_expr *e = nftnl_expr_alloc("meta");
    if (e) {
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
    }
    return e;
}

static struct nftnl_expr *e_cmp(uint32_t op, const void *data, uint32_t len)
{
    struct nftnl_expr *e = nftnl_expr_alloc("cmp");
    if (e) {
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    }
    return e;
}

static struct nftnl_expr *e_payload(uint32_t base, uint32_t off, uint32_t len)
{
    struct nftnl_expr *e = nftnl_expr_alloc("payload");
    if (e) {
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    }
    return e;
}

static struct nftnl_expr *e_mask(const uint8_t *mask, uint32_t len)
{
    static const uint8_t zero[16];
    struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
    if (e) {
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_OP, NFT_BITWISE_BOOL);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
    }
    return e;
}

/* ip/ip6 saddr or daddr in the prefix. */
static int add_addr(struct nftnl_rule *r, int fam, bool dst, const uint8_t *addr, int plen)
{
    uint32_t len = fam == 4 ? 4 : 16;
    uint32_t off = fam == 4 ? (dst ? 16 : 12) : (dst ? 24 : 8);
    int rc = push(r, e_payload(NFT_PAYLOAD_NETWORK_HEADER, off, len));
    if (!rc && plen < (int)len * 8) {
        uint8_t mask[16] = {0};
        for (int b = 0; b < plen; b++)
            mask[b / 8] |= (uint8_t)(0x80u >> (b % 8));
        rc = push(r, e_mask(mask, len));
    }
    return rc ? rc : push(r, e_cmp(NFT_CMP_EQ, addr, len));
}

static int add_action(struct nftnl_rule *r, const struct ipt_krule *k)
{
    if (k->action == IPT_ACT_COUNT)
        return 0;
    if (k->action == IPT_ACT_REJECT) {
        struct nftnl_expr *e = nftnl_expr_alloc("reject");
        if (!e)
            return -ENOMEM;
        bool tcp = k->proto == 6;
        nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE,
                           tcp ? NFT_REJECT_TCP_RST : NFT_REJECT_ICMPX_UNREACH);
        nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, tcp ? 0 : NFT_REJECT_ICMPX_PORT_UNREACH);
        return push(r, e);
    }
    struct nftnl_expr *e = nftnl_expr_alloc("immediate");
    if (!e)
        return -ENOMEM;
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT,
                       k->action == IPT_ACT_ACCEPT ? NF_ACCEPT : NF_DROP);
    return push(r, e);
}

/* The expressions of k: family, interface, protocol, addresses, port, counter, verdict. */
static int add_exprs(struct nftnl_rule *r, const struct ipt_krule *k)
{
    int rc = 0;
    if (k->family) {
        uint8_t nfp = k->family == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
        rc = push(r, e_meta(NFT_META_NFPROTO));
        rc = rc ? rc : push(r, e_cmp(NFT_CMP_EQ, &nfp, 1));
    }
    if (!rc && k->if_len) {
        rc = push(r, e_meta(k->dir == IPT_DIR_OUTPUT ? NFT_META_OIFNAME : NFT_META_IIFNAME));
        rc = rc ? rc : push(r, e_cmp(NFT_CMP_EQ, k->ifname, k->if_len));
    }
    if (!rc && k->proto >= 0) {
        uint8_t p = (uint8_t)k->proto;
        rc = push(r, e_meta(NFT_META_L4PROTO));
        rc = rc ? rc : push(r, e_cmp(NFT_CMP_EQ, &p, 1));
    }
    if (!rc && k->src_len >= 0)
        rc = add_addr(r, k->family, false, k->src, k->src_len);
    if (!rc && k->dst_len >= 0)
        rc = add_addr(r, k->family, true, k->dst, k->dst_len);
    if (!rc && k->port_lo) {
        uint16_t lo = htons(k->port_lo), hi = htons(k->port_hi);
        rc = push(r, e_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
        if (!rc && lo == hi) {
            rc = push(r, e_cmp(NFT_CMP_EQ, &lo, 2));
        } else if (!rc) {
            /* big-endian data compares as the numbers do */
            rc = push(r, e_cmp(NFT_CMP_GTE, &lo, 2));
            rc = rc ? rc : push(r, e_cmp(NFT_CMP_LTE, &hi, 2));
        }
    }
    if (!rc)
        rc = push(r, nftnl_expr_alloc("counter"));
    return rc ? rc : add_action(r, k);
}

static int set_comment(struct nftnl_rule *r, const char *comment)
{
    struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    if (!ud)
        return -ENOMEM;
    if (!nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment)) {
        nftnl_udata_buf_free(ud);
        return -EINVAL;
    }
    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
    return 0;
}

/* Returns an owned rule for k (free with nftnl_rule_free), or NULL on -ENOMEM. */
static struct nftnl_rule *build_rule(const struct ipt_krule *k)
{
    struct nftnl_rule *r = nftnl_rule_alloc();
    if (!r)
        return NULL;
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MARS_TABLE);
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, mars_iptables_dir_names[k->dir]);
    if (add_exprs(r, k) || set_comment(r, k->name)) {
        nftnl_rule_free(r);
        return NULL;
    }
    return r;
}

/* The digest of k as the kernel will show it: built, serialized, parsed back. */
static int want_digest(const struct ipt_krule *k, uint64_t *out)
{
    char buf[4096];
    struct nftnl_rule *r = build_rule(k), *back = nftnl_rule_alloc();
    int rc = r && back ? 0 : -ENOMEM;
    if (!rc) {
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 0);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        rc = nftnl_rule_nlmsg_parse(nlh, back) < 0 ? -EINVAL : 0;
    }
    if (!rc)
        *out = mars_iptables_nft_rule_digest(back);
    if (r)
        nftnl_rule_free(r);
    if (back)
        nftnl_rule_free(back);
    return rc;
}

/* ---- reading table mars ---- */

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
    char *comment = data;
    if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
        size_t len = nftnl_udata_len(attr);
        if (len > IPT_NAME_MAX)
            len = IPT_NAME_MAX;
        memcpy(comment, nftnl_udata_get(attr), len);
        comment[len] = 0;
    }
    return MNL_CB_OK;
}

static int cur_cb(const struct nlmsghdr *nlh, void *data)
{
    struct cur_set *s = data;
    struct nftnl_rule *r = nftnl_rule_alloc();
    if (!r || mars_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v))) {
        s->err = -ENOMEM;
        if (r)
            nftnl_rule_free(r);
        return MNL_CB_ERROR;
    }
    if (nftnl_rule_nlmsg_parse(nlh, r) == 0 &&
        nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY) == NFPROTO_INET) {
        struct cur_rule *c = &s->v[s->n++];
        *c = (struct cur_rule){.dir = dir_of_chain(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)),
                               .handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE),
                               .digest = mars_iptables_nft_rule_digest(r)};
        uint32_t len = 0;
        const void *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
        if (ud && len)
            nftnl_udata_parse(ud, len, comment_cb, c->comment);
    }
    nftnl_rule_free(r);
    return MNL_CB_OK;
}

static int table_exists(struct mnl_socket *nl, char *buf)
{
    struct nftnl_table *t = nftnl_table_alloc();
    if (!t)
        return -ENOMEM;
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, MARS_TABLE);
    struct nlmsghdr *nlh =
        nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, (uint32_t)time(NULL));
    nftnl_table_nlmsg_build_payload(nlh, t);
    nftnl_table_free(t);
    int rc = mars_iptables_nft_request(nl, buf, RECV_BUF, nlh, NULL, NULL);
    return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

static int read_current(struct mnl_socket *nl, char *buf, struct cur_set *s)
{
    int rc = -EINTR;
    for (int tries = 0; tries < 4 && rc == -EINTR; tries++) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
            return -ENOMEM;
        s->n = 0;
        s->err = 0;
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MARS_TABLE);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP,
                                                     (uint32_t)time(NULL));
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        rc = mars_iptables_nft_request(nl, buf, RECV_BUF, nlh, cur_cb, s);
        if (s->err)
            rc = s->err;
    }
    return rc;
}

/* ---- the batch ---- */

struct batch {
    struct mnl_nlmsg_batch *b;
    char *buf;
    uint32_t seq;
    struct nlmsghdr *last; /* the last message: the only one that asks for an ACK */
};

static struct nlmsghdr *msg(struct batch *bt, uint16_t type, uint16_t flags)
{
    bt->last =
        nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET, flags, bt->seq++);
    return bt->last;
}

static bool next(struct batch *bt)
{
    return mnl_nlmsg_batch_next(bt->b);
}

static int put_table_chains(struct batch *bt)
{
    struct nftnl_table *t = nftnl_table_alloc();
    if (!t)
        return -ENOMEM;
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, MARS_TABLE);
    nftnl_table_nlmsg_build_payload(msg(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE), t);
    nftnl_table_free(t);
    if (!next(bt))
        return -ENOBUFS;
    for (int d = 0; d < IPT_DIR__COUNT; d++) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
            return -ENOMEM;
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, MARS_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, mars_iptables_dir_names[d]);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hooks[d]);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, MARS_PRIORITY);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        nftnl_chain_nlmsg_build_payload(msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
        nftnl_chain_free(c);
        if (!next(bt))
            return -ENOBUFS;
    }
    return 0;
}

static int put_del_rule(struct batch *bt, const struct cur_rule *c)
{
    struct nftnl_rule *r = nftnl_rule_alloc();
    if (!r)
        return -ENOMEM;
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MARS_TABLE);
    /* the chain is required: a DELRULE without one deletes every rule of the table */
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, mars_iptables_dir_names[c->dir]);
    nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, c->handle);
    nftnl_rule_nlmsg_build_payload(msg(bt, NFT_MSG_DELRULE, 0), r);
    nftnl_rule_free(r);
    return next(bt) ? 0 : -ENOBUFS;
}

/* Inserts k before the rule with handle `before`, or appends it when before is 0. */
static int put_add_rule(struct batch *bt, const struct ipt_krule *k, uint64_t before)
{
    struct nftnl_rule *r = build_rule(k);
    if (!r)
        return -ENOMEM;
    if (before)
        nftnl_rule_set_u64(r, NFTNL_RULE_POSITION, before);
    nftnl_rule_nlmsg_build_payload(
        msg(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | (before ? 0 : NLM_F_APPEND)), r);
    nftnl_rule_free(r);
    return next(bt) ? 0 : -ENOBUFS;
}

static int put_del_table(struct batch *bt)
{
    struct nftnl_table *t = nftnl_table_alloc();
    if (!t)
        return -ENOMEM;
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, MARS_TABLE);
    nftnl_table_nlmsg_build_payload(msg(bt, NFT_MSG_DELTABLE, 0), t);
    nftnl_table_free(t);
    return next(bt) ? 0 : -ENOBUFS;
}

/* Sends the batch in one sendmsg (the kernel takes a batch whole) and waits for the answer
 * to its last message: errors come whatever the flags, so only that one asks for an ACK,
 * which keeps thousands of ACKs out of the receive buffer. The kernel answers while it
 * handles the sendmsg; the timeout only guards against a lost answer. Returns the first
 * error. */
static int send_batch(struct mnl_socket *nl, struct batch *bt, char *rbuf)
{
    if (!bt->last)
        return 0;
    bt->last->nlmsg_flags |= NLM_F_ACK;
    uint32_t last_seq = bt->last->nlmsg_seq;
    nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq++);
    if (!next(bt))
        return -ENOBUFS;
    int fd = mnl_socket_get_fd(nl);
    int size = (int)mnl_nlmsg_batch_size(bt->b) + 4096;
    struct timeval tv = {.tv_sec = 10};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(bt->b), mnl_nlmsg_batch_size(bt->b)) < 0)
        return -errno;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, rbuf, RECV_BUF);
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, len);
             h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_type != NLMSG_ERROR)
                continue;
            const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
            if (e->error) /* the batch was refused whole */
                return e->error;
            if (h->nlmsg_seq == last_seq)
                return 0;
        }
    }
}

/* ---- reconciling ---- */

static bool same(const struct cur_rule *c, const struct ipt_krule *k, uint64_t digest)
{
    return c->dir == k->dir && c->digest == digest && strcmp(c->comment, k->name) == 0;
}

/* Matches the desired rules against the kernel's, per chain and in order; kept[i] becomes
 * the handle of the kernel rule desired rule i keeps (0: to insert), before[i] the handle
 * of the next kept rule of its chain (0: append). Counts the difference in res. */
static void match(const struct ipt_ruleset *want, const uint64_t *dig, struct cur_set *cur,
                  uint64_t *kept, uint64_t *before, struct ipt_apply_res *res)
{
    for (int d = 0; d < IPT_DIR__COUNT; d++) {
        size_t from = 0; /* kernel position after the last kept rule of chain d */
        for (size_t i = 0; i < want->n; i++) {
            if (want->v[i].dir != d)
                continue;
            for (size_t j = from; j < cur->n; j++) {
                if (!cur->v[j].keep && same(&cur->v[j], &want->v[i], dig[i])) {
                    cur->v[j].keep = true;
                    kept[i] = cur->v[j].handle;
                    from = j + 1;
                    break;
                }
            }
        }
    }
    uint64_t next[IPT_DIR__COUNT] = {0};
    for (size_t i = want->n; i-- > 0;) {
        before[i] = next[want->v[i].dir];
        if (kept[i])
            next[want->v[i].dir] = kept[i];
        else
            res->added++;
    }
    for (size_t j = 0; j < cur->n; j++) {
        if (cur->v[j].keep)
            res->kept++;
        else if (cur->v[j].dir >= 0)
            res->removed++;
    }
}

/* Fills the batch with the difference match() found: deletions, then insertions in the
 * configured order (each before the next kept rule, so the chain ends in that order). */
static int emit(struct batch *bt, const struct ipt_ruleset *want, const struct cur_set *cur,
                const uint64_t *kept, const uint64_t *before)
{
    int rc = put_table_chains(bt);
    for (size_t j = 0; j < cur->n && !rc; j++)
        if (!cur->v[j].keep && cur->v[j].dir >= 0)
            rc = put_del_rule(bt, &cur->v[j]);
    for (size_t i = 0; i < want->n && !rc; i++)
        if (!kept[i])
            rc = put_add_rule(bt, &want->v[i], before[i]);
    return rc;
}

static int explain(struct ipt_apply_res *res, int err)
{
    if (err == -EPERM || err == -EACCES)
        return mars_iptables_apply_fail(res, err,
                                        "managed rules: writing nft rules needs CAP_NET_ADMIN in "
                                        "this network namespace (the kernel refused)");
    if (err == -EPROTONOSUPPORT || err == -EAFNOSUPPORT || err == -EOPNOTSUPP)
        return mars_iptables_apply_fail(res, err,
                                        "managed rules: this kernel has no nf_tables (load the "
                                        "nf_tables module, or use backend: legacy)");
    return mars_iptables_apply_fail(res, err, "managed rules: nft: %s", strerror(-err));
}

int mars_iptables_nft_apply(const struct ipt_ruleset *want, struct ipt_apply_res *res)
{
    if (!mars_iptables_has_cap(CAP_NET_ADMIN_))
        return mars_iptables_apply_fail(res, -EPERM,
                                        "managed rules: writing nft rules needs CAP_NET_ADMIN "
                                        "(missing from this process's effective capabilities)");
    struct cur_set cur = {0};
    struct batch bt = {0};
    size_t n = want->n + 1;
    uint64_t *dig = calloc(n, sizeof(*dig)), *kept = calloc(n, sizeof(*kept)),
             *before = calloc(n, sizeof(*before));
    char *rbuf = malloc(RECV_BUF);
    struct mnl_socket *nl = NULL;
    int rc = dig && kept && before && rbuf ? 0 : -ENOMEM;
    for (size_t i = 0; i < want->n && !rc; i++)
        rc = want_digest(&want->v[i], &dig[i]);
    if (!rc && !(nl = mnl_socket_open(NETLINK_NETFILTER)))
        rc = -errno;
    if (!rc && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
        rc = -errno;
    int exists = rc ? rc : table_exists(nl, rbuf);
    if (exists < 0)
        rc = exists;
    if (!rc && exists)
        rc = read_current(nl, rbuf, &cur);
    if (!rc && want->n)
        match(want, dig, &cur, kept, before, res);
    else if (!rc)
        res->removed = (unsigned)cur.n;
    /* nothing differs: no batch (each one bumps the ruleset generation nft readers watch) */
    bool changes = want->n ? res->added + res->removed > 0 : exists > 0;
    if (!rc && changes) {
        /* a rule's message takes well under 1 KiB; the batch buffer is sized to the change */
        size_t bsize = 16384 + ((size_t)res->added + res->removed + 8) * 2048;
        bt.seq = (uint32_t)time(NULL);
        bt.buf = malloc(bsize);
        bt.b = bt.buf ? mnl_nlmsg_batch_start(bt.buf, bsize) : NULL;
        rc = bt.b ? 0 : -ENOMEM;
    }
    if (!rc && changes) {
        nftnl_batch_begin(mnl_nlmsg_batch_current(bt.b), bt.seq++);
        next(&bt);
        rc = want->n ? emit(&bt, want, &cur, kept, before) : put_del_table(&bt);
        rc = rc ? rc : send_batch(nl, &bt, rbuf);
    }
    if (rc) {
        res->added = res->removed = 0;
        explain(res, rc);
    }
    if (bt.b)
        mnl_nlmsg_batch_stop(bt.b);
    if (nl)
        mnl_socket_close(nl);
    free(bt.buf);
    free(rbuf);
    free(dig);
    free(kept);
    free(before);
    free(cur.v);
    return rc;
}
