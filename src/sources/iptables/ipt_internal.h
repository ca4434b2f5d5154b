/*
 * ipt_internal.h - what the files of the `iptables` source share: the selection a dump
 * applies (struct ipt_filter), the table of counter rows one dump produces (struct
 * ipt_dump, ipt_dump.c) and the two readers that fill it, nf_tables over netlink
 * (ipt_nft.c) and legacy x_tables through libiptc (ipt_legacy.c).
 *
 * A dump runs on the source's dump thread (iptables.c); the worker only reads a finished
 * dump. Nothing here is shared between threads while it is being written.
 */
#ifndef MARS_IPT_INTERNAL_H
#define MARS_IPT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"

/* nft family names, indexed by enum ipt_family; also the `family` label. */
enum ipt_family {
    IPT_FAM_IP,
    IPT_FAM_IP6,
    IPT_FAM_INET,
    IPT_FAM_ARP,
    IPT_FAM_BRIDGE,
    IPT_FAM_NETDEV,
    IPT_FAM__COUNT
};
extern const char *const mars_iptables_family_names[];
/* The family of an NFPROTO_* value, or -1. */
int mars_iptables_family_of_nfproto(unsigned nfproto);

/* The selection: read-only, owned by the source's conf. */
struct ipt_filter {
    unsigned families;                 /* bit per enum ipt_family; 0 = all */
    const struct mars_strlist *tables; /* glob patterns; empty = all */
    const struct mars_strlist *chains;
    const char *comment_prefix; /* NULL or "" = every rule */
    size_t max_series;
};
bool mars_iptables_filter_family(const struct ipt_filter *f, int family);
bool mars_iptables_filter_table(const struct ipt_filter *f, const char *table);
bool mars_iptables_filter_chain(const struct ipt_filter *f, const char *chain);

/* One series: its labels (offsets into the dump's string pool) and its counters. Rules
 * whose labels are equal are one series (their counters add up). */
struct ipt_row {
    uint32_t family, table, chain, rule, target; /* pool offsets */
    uint64_t packets, bytes;
    uint64_t hash;
};

struct ipt_dump {
    struct ipt_row *rows;
    size_t n, cap;
    char *pool;
    size_t plen, pcap;
    uint32_t *slots; /* open addressing over rows, by label hash; index + 1, 0 = free */
    size_t nslots;
    uint64_t rules;    /* rules with a counter that passed the selection */
    uint64_t overflow; /* new series refused by max_series */
    int err;           /* 0 or -errno of the first backend that failed */
    char why[256];     /* what failed, for the log (err != 0) */
};

/* Returns an owned, empty dump; free with mars_iptables_dump_destroy(). NULL on -ENOMEM. */
struct ipt_dump *mars_iptables_dump_create(void);
void mars_iptables_dump_destroy(struct ipt_dump *d);
/* Drops the rows (an interrupted nft dump starts over). */
void mars_iptables_dump_reset_rows(struct ipt_dump *d);
/* Adds one rule's counters under its labels (copied); applies comment_prefix and
 * max_series (family, table and chain are the readers' to check before). `rule` is the
 * comment, or NULL: then `digest` names the rule. Returns 0 or -ENOMEM. */
int mars_iptables_dump_add(struct ipt_dump *d, const struct ipt_filter *f, const char *family,
                           const char *table, const char *chain, const char *comment,
                           uint64_t digest, const char *target, uint64_t packets, uint64_t bytes);
static inline const char *ipt_str(const struct ipt_dump *d, uint32_t off)
{
    return d->pool + off;
}
/* Records the first failure (printf-style why). Returns err. */
int mars_iptables_dump_fail(struct ipt_dump *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a, for rule digests: stable across runs and machines. */
uint64_t mars_iptables_fnv(uint64_t h, const void *p, size_t len);
#define IPT_FNV_INIT 0xcbf29ce484222325ULL

/* Readers. Each appends to d and returns 0, or records the failure (mars_iptables_dump_fail) and
 * returns it. */
int mars_iptables_nft_dump(struct ipt_dump *d, const struct ipt_filter *f, bool objects);
/* Sends one netlink request (nlh, built in buf) and runs cb (may be NULL) over every
 * answer until its end (NLMSG_DONE, or the ACK of a request that asked for one). buf, of
 * len bytes, is reused for the answers. Returns 0, -EINTR when the kernel interrupted a
 * dump (start over), or -errno (the kernel's error, or -EIO when cb failed). */
struct mnl_socket;
struct nlmsghdr;
int mars_iptables_nft_request(struct mnl_socket *nl, char *buf, size_t len, struct nlmsghdr *nlh,
                              int (*cb)(const struct nlmsghdr *, void *), void *data);
/* Digest of an nft rule's content: each expression as libnftnl prints it, counters left
 * out, so equal rules digest equal wherever and whenever they are. */
struct nftnl_rule;
uint64_t mars_iptables_nft_rule_digest(struct nftnl_rule *r);
/* Which legacy families have tables: /proc/net/ip_tables_names (ip6_tables_names) is
 * non-empty. Opening libiptc anywhere else would create a legacy table. */
bool mars_iptables_legacy_present(bool v6);
/* libiptc keeps process-wide state: every libiptc call is made under this mutex. */
extern pthread_mutex_t mars_iptables_iptc_mu;
int mars_iptables_legacy_dump(struct ipt_dump *d, const struct ipt_filter *f, bool v6);
/* Whether this process has the capability in its effective set (CAP_NET_ADMIN = 12,
 * CAP_NET_RAW = 13). */
bool mars_iptables_has_cap(int cap);

#endif
