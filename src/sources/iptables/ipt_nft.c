/*
 * ipt_nft.c - reads nf_tables rule counters over netlink (libmnl + libnftnl): one
 * NFT_MSG_GETRULE dump of every family (NFPROTO_UNSPEC), and one NFT_MSG_GETOBJ dump for
 * named counter objects. One reader covers iptables-nft and native nft rules.
 *
 * Per rule: the `counter` expression gives packets and bytes (rules without one are not
 * reported); the comment is the rule's user data (native nft, NFTNL_UDATA_RULE_COMMENT) or
 * the payload of an xtables compat `comment` match (iptables-nft); the target is the last
 * verdict (accept, drop, return, continue, queue), the chain of a jump or goto, an xtables
 * compat target's name (REJECT, MASQUERADE, ...) or a native terminal statement (reject,
 * masquerade, snat, dnat, redirect). A rule without comment is named by a digest of its
 * expressions as libnftnl prints them, counters left out, so it survives a rewrite that
 * keeps its content. A named counter object is a series with chain "" and its name as rule.
 *
 * The kernel may interrupt a dump when the ruleset changes under it (NLM_F_DUMP_INTR, seen
 * as EINTR): the dump restarts, at most 4 times. Reading needs CAP_NET_ADMIN in the
 * network namespace's user namespace; the kernel's EPERM becomes an error that says so.
 *
 * Thread: the source's dump thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "sources/iptables/ipt_internal.h"

#define NFT_RECV_BUF   (64 * 1024)
#define NFT_DUMP_TRIES 4

struct nft_ctx {
    struct ipt_dump *d;
    const struct ipt_filter *f;
    int err;
};

struct rule_facts {
    bool counter;
    uint64_t packets, bytes;
    char comment[257];
    char target[257];
};

static int udata_cb(const struct nftnl_udata *attr, void *data)
{
    struct rule_facts *rf = data;
    if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
        size_t len = nftnl_udata_len(attr);
        if (len >= sizeof(rf->comment))
            len = sizeof(rf->comment) - 1;
        memcpy(rf->comment, nftnl_udata_get(attr), len);
        rf->comment[len] = 0;
        rf->comment[strnlen(rf->comment, len)] = 0;
    }
    return MNL_CB_OK;
}

static void set_target(struct rule_facts *rf, const char *t)
{
    snprintf(rf->target, sizeof(rf->target), "%s", t);
}

static void verdict(struct rule_facts *rf, const struct nftnl_expr *e)
{
    int v = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
    switch (v) {
    case NF_ACCEPT:
        set_target(rf, "accept");
        break;
    case NF_DROP:
        set_target(rf, "drop");
        break;
    case NF_QUEUE:
        set_target(rf, "queue");
        break;
    case NFT_RETURN:
        set_target(rf, "return");
        break;
    case NFT_CONTINUE:
        set_target(rf, "continue");
        break;
    case NFT_JUMP:
    case NFT_GOTO:
        if (nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
            set_target(rf, nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
        break;
    default:
        break;
    }
}

static void expr_facts(struct rule_facts *rf, const struct nftnl_expr *e)
{
    const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    if (!name)
        return;
    if (strcmp(name, "counter") == 0) {
        rf->counter = true;
        rf->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
        rf->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
    } else if (strcmp(name, "match") == 0) {
        const char *mt = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME);
        uint32_t len = 0;
        const char *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);
        if (mt && info && strcmp(mt, "comment") == 0 && !rf->comment[0]) {
            size_t n = strnlen(info, len < sizeof(rf->comment) ? len : sizeof(rf->comment) - 1);
            memcpy(rf->comment, info, n);
            rf->comment[n] = 0;
        }
    } else if (strcmp(name, "target") == 0) {
        const char *tg = nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME);
        if (tg)
            set_target(rf, tg);
    } else if (strcmp(name, "immediate") == 0) {
        if (nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT))
            verdict(rf, e);
    } else if (strcmp(name, "reject") == 0) {
        set_target(rf, "reject");
    } else if (strcmp(name, "masq") == 0) {
        set_target(rf, "masquerade");
    } else if (strcmp(name, "nat") == 0) {
        set_target(rf,
                   nftnl_expr_get_u32(e, NFTNL_EXPR_NAT_TYPE) == NFT_NAT_DNAT ? "dnat" : "snat");
    } else if (strcmp(name, "redir") == 0) {
        set_target(rf, "redirect");
    } else if (strcmp(name, "queue") == 0) {
        set_target(rf, "queue");
    }
}

/* Digest of a rule's content: each expression as libnftnl prints it, counters left out
 * (their values change), so equal rules digest equal wherever and whenever they are. */
uint64_t mars_iptables_nft_rule_digest(struct nftnl_rule *r)
{
    char buf[1024];
    uint64_t h = IPT_FNV_INIT;
    struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
    if (!it)
        return h;
    for (struct nftnl_expr *e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
        const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
        if (name && strcmp(name, "counter") == 0) {
            h = mars_iptables_fnv(h, "counter", 8);
            continue;
        }
        int n = nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
        if (n > 0)
            h = mars_iptables_fnv(h, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    }
    nftnl_expr_iter_destroy(it);
    return h;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nft_ctx *c = data;
    struct nftnl_rule *r = nftnl_rule_alloc();
    if (!r) {
        c->err = -ENOMEM;
        return MNL_CB_ERROR;
    }
    if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
        goto out; /* a rule this libnftnl cannot read: skip it */
    int fam = mars_iptables_family_of_nfproto(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY));
    const char *table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
    const char *chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
    if (!table || !chain || !mars_iptables_filter_family(c->f, fam) ||
        !mars_iptables_filter_table(c->f, table) || !mars_iptables_filter_chain(c->f, chain))
        goto out;
    struct rule_facts rf = {0};
    if (nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) {
        uint32_t len = 0;
        const void *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
        if (ud && len)
            nftnl_udata_parse(ud, len, udata_cb, &rf);
    }
    struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
    if (!it) {
        c->err = -ENOMEM;
        nftnl_rule_free(r);
        return MNL_CB_ERROR;
    }
    for (struct nftnl_expr *e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it))
        expr_facts(&rf, e);
    nftnl_expr_iter_destroy(it);
    if (rf.counter) {
        uint64_t dig = rf.comment[0] ? 0 : mars_iptables_nft_rule_digest(r);
        int rc = mars_iptables_dump_add(c->d, c->f, mars_iptables_family_names[fam], table, chain,
                                        rf.comment[0] ? rf.comment : NULL, dig, rf.target,
                                        rf.packets, rf.bytes);
        if (rc) {
            c->err = rc;
            nftnl_rule_free(r);
            return MNL_CB_ERROR;
        }
    }
out:
    nftnl_rule_free(r);
    return MNL_CB_OK;
}

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nft_ctx *c = data;
    struct nftnl_obj *o = nftnl_obj_alloc();
    if (!o) {
        c->err = -ENOMEM;
        return MNL_CB_ERROR;
    }
    if (nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
        nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER) {
        int fam = mars_iptables_family_of_nfproto(nftnl_obj_get_u32(o, NFTNL_OBJ_FAMILY));
        const char *table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
        const char *name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
        /* objects belong to no chain: a `chains` selection leaves them out */
        if (table && name && mars_iptables_filter_family(c->f, fam) &&
            mars_iptables_filter_table(c->f, table) && (!c->f->chains || c->f->chains->n == 0)) {
            int rc = mars_iptables_dump_add(c->d, c->f, mars_iptables_family_names[fam], table, "",
                                            name, 0, "", nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS),
                                            nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES));
            if (rc)
                c->err = rc;
        }
    }
    nftnl_obj_free(o);
    return c->err ? MNL_CB_ERROR : MNL_CB_OK;
}

static int explain(struct ipt_dump *d, int err, const char *what)
{
    switch (err) {
    case -EPERM:
    case -EACCES:
        return mars_iptables_dump_fail(
            d, err,
            "nft: reading %s needs CAP_NET_ADMIN in this network namespace "
            "(the kernel refused the netlink dump)",
            what);
    case -EPROTONOSUPPORT:
    case -EAFNOSUPPORT:
    case -EOPNOTSUPP:
        return mars_iptables_dump_fail(d, err,
                                       "nft: this kernel has no nf_tables over netlink (load the "
                                       "nf_tables module, or use backend: legacy)");
    default:
        return mars_iptables_dump_fail(d, err, "nft: dumping %s failed: %s", what, strerror(-err));
    }
}

int mars_iptables_nft_request(struct mnl_socket *nl, char *buf, size_t len, struct nlmsghdr *nlh,
                              int (*cb)(const struct nlmsghdr *, void *), void *data)
{
    uint32_t seq = nlh->nlmsg_seq, portid = mnl_socket_get_portid(nl);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, len);
        if (n < 0)
            return errno == ENOBUFS ? -EINTR : -errno;
        errno = 0;
        int rc = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
        if (rc == MNL_CB_STOP)
            return 0;
        if (rc < 0)
            return errno ? -errno : -EIO;
    }
}

/* One dump of message type `type` through cb; -EINTR when the kernel interrupted it. */
static int dump_once(struct mnl_socket *nl, char *buf, uint16_t type, mnl_cb_t cb,
                     struct nft_ctx *c)
{
    struct nlmsghdr *nlh =
        nftnl_nlmsg_build_hdr(buf, type, NFPROTO_UNSPEC, NLM_F_DUMP, (uint32_t)time(NULL));
    int rc = mars_iptables_nft_request(nl, buf, NFT_RECV_BUF, nlh, cb, c);
    return rc && c->err ? c->err : rc;
}

int mars_iptables_nft_dump(struct ipt_dump *d, const struct ipt_filter *f, bool objects)
{
    struct nft_ctx c = {.d = d, .f = f};
    int rc = 0;
    char *buf = malloc(NFT_RECV_BUF);
    struct mnl_socket *nl = buf ? mnl_socket_open(NETLINK_NETFILTER) : NULL;
    if (!buf)
        return mars_iptables_dump_fail(d, -ENOMEM, "nft: out of memory");
    if (!nl) {
        rc = explain(d, -errno, "rules");
        free(buf);
        return rc;
    }
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        rc = explain(d, -errno, "rules");
        goto out;
    }
    for (int i = 0; i < NFT_DUMP_TRIES; i++) {
        if (i) /* interrupted: start over (nft is read first, so the rows are all its own) */
            mars_iptables_dump_reset_rows(d);
        c.err = 0;
        rc = dump_once(nl, buf, NFT_MSG_GETRULE, rule_cb, &c);
        if (rc == 0 && objects)
            rc = dump_once(nl, buf, NFT_MSG_GETOBJ, obj_cb, &c);
        if (rc != -EINTR)
            break;
    }
    if (rc)
        explain(d, rc, "rules");
out:
    mnl_socket_close(nl);
    free(buf);
    return rc;
}
