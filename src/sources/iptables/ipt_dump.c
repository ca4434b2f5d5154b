/*
 * ipt_dump.c - the table of counter series one dump of the `iptables` source produces,
 * and the selection helpers the readers share.
 *
 * A series is keyed by its labels (family, table, chain, rule, target), never by rule
 * position or handle: kube-proxy rewrites its rules on every sync, and a rewritten rule with
 * the same comment must keep its series (its counter going back down is a counter reset,
 * which Prometheus handles). Rules with equal labels add up into one series, so the output
 * never holds a duplicate. Labels live in one string pool (offsets, so the pool may move as
 * it grows); an open-addressing index by label hash finds a series in O(1), which keeps a
 * 10,000-rule dump linear.
 *
 * Thread: the source's dump thread while it is filled, then the worker reads it.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/netfilter.h>

#include "core/grow.h"
#include "sources/iptables/ipt_internal.h"

const char *const mars_iptables_family_names[] = {"ip",     "ip6",    "inet", "arp",
                                                  "bridge", "netdev", NULL};

int mars_iptables_family_of_nfproto(unsigned nfproto)
{
    switch (nfproto) {
    case NFPROTO_IPV4:
        return IPT_FAM_IP;
    case NFPROTO_IPV6:
        return IPT_FAM_IP6;
    case NFPROTO_INET:
        return IPT_FAM_INET;
    case NFPROTO_ARP:
        return IPT_FAM_ARP;
    case NFPROTO_BRIDGE:
        return IPT_FAM_BRIDGE;
    case NFPROTO_NETDEV:
        return IPT_FAM_NETDEV;
    default:
        return -1;
    }
}

static bool globs_match(const struct mars_strlist *l, const char *s)
{
    if (!l || l->n == 0)
        return true;
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s, 0) == 0)
            return true;
    return false;
}

bool mars_iptables_filter_family(const struct ipt_filter *f, int family)
{
    return family >= 0 && (f->families == 0 || (f->families & (1u << family)));
}

bool mars_iptables_filter_table(const struct ipt_filter *f, const char *table)
{
    return globs_match(f->tables, table);
}

bool mars_iptables_filter_chain(const struct ipt_filter *f, const char *chain)
{
    return globs_match(f->chains, chain);
}

uint64_t mars_iptables_fnv(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

struct ipt_dump *mars_iptables_dump_create(void)
{
    return calloc(1, sizeof(struct ipt_dump));
}

void mars_iptables_dump_destroy(struct ipt_dump *d)
{
    if (!d)
        return;
    free(d->rows);
    free(d->pool);
    free(d->slots);
    free(d);
}

void mars_iptables_dump_reset_rows(struct ipt_dump *d)
{
    d->n = 0;
    d->plen = 0;
    d->rules = 0;
    d->overflow = 0;
    if (d->slots)
        memset(d->slots, 0, d->nslots * sizeof(*d->slots));
}

int mars_iptables_dump_fail(struct ipt_dump *d, int err, const char *fmt, ...)
{
    if (d->err)
        return err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    d->err = err;
    return err;
}

/* Copies s into the pool; returns its offset or UINT32_MAX on -ENOMEM. */
static uint32_t pool_add(struct ipt_dump *d, const char *s)
{
    size_t len = strlen(s) + 1;
    if (d->plen + len > UINT32_MAX || mars_grow(&d->pool, &d->pcap, d->plen + len, 1))
        return UINT32_MAX; /* offsets are 32-bit */
    memcpy(d->pool + d->plen, s, len);
    d->plen += len;
    return (uint32_t)(d->plen - len);
}

static int index_grow(struct ipt_dump *d)
{
    size_t n = d->nslots ? d->nslots * 2 : 1024;
    uint32_t *s = calloc(n, sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        size_t j = d->rows[i].hash & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(d->slots);
    d->slots = s;
    d->nslots = n;
    return 0;
}

static bool row_is(const struct ipt_dump *d, const struct ipt_row *r, const char *const lv[5])
{
    return strcmp(ipt_str(d, r->family), lv[0]) == 0 && strcmp(ipt_str(d, r->table), lv[1]) == 0 &&
           strcmp(ipt_str(d, r->chain), lv[2]) == 0 && strcmp(ipt_str(d, r->rule), lv[3]) == 0 &&
           strcmp(ipt_str(d, r->target), lv[4]) == 0;
}

int mars_iptables_dump_add(struct ipt_dump *d, const struct ipt_filter *f, const char *family,
                           const char *table, const char *chain, const char *comment,
                           uint64_t digest, const char *target, uint64_t packets, uint64_t bytes)
{
    char dig[24];
    if (f->comment_prefix && *f->comment_prefix &&
        (!comment || strncmp(comment, f->comment_prefix, strlen(f->comment_prefix)) != 0))
        return 0;
    if (!comment || !*comment) {
        /* "#" and 12 hex digits: short, stable, and not mistaken for a count */
        snprintf(dig, sizeof(dig), "#%012llx", (unsigned long long)(digest >> 16));
        comment = dig;
    }
    const char *const lv[5] = {family, table, chain, comment, target ? target : ""};
    uint64_t h = IPT_FNV_INIT;
    for (int i = 0; i < 5; i++)
        h = mars_iptables_fnv(h, lv[i], strlen(lv[i]) + 1);
    d->rules++;
    if (d->n * 2 >= d->nslots && index_grow(d))
        return -ENOMEM;
    size_t j = h & (d->nslots - 1);
    for (; d->slots[j]; j = (j + 1) & (d->nslots - 1)) {
        struct ipt_row *r = &d->rows[d->slots[j] - 1];
        if (r->hash == h && row_is(d, r, lv)) {
            r->packets += packets;
            r->bytes += bytes;
            return 0;
        }
    }
    if (d->n >= f->max_series) {
        d->overflow++;
        return 0;
    }
    if (mars_grow(&d->rows, &d->cap, d->n + 1, sizeof(*d->rows)))
        return -ENOMEM;
    struct ipt_row *r = &d->rows[d->n];
    uint32_t off[5];
    for (int i = 0; i < 5; i++)
        if ((off[i] = pool_add(d, lv[i])) == UINT32_MAX)
            return -ENOMEM;
    *r = (struct ipt_row){.family = off[0],
                          .table = off[1],
                          .chain = off[2],
                          .rule = off[3],
                          .target = off[4],
                          .packets = packets,
                          .bytes = bytes,
                          .hash = h};
    d->slots[j] = (uint32_t)++d->n;
    return 0;
}

bool mars_iptables_has_cap(int cap)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    if (syscall(SYS_capget, &hdr, data) != 0)
        return true; /* cannot tell: let the kernel decide */
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}
