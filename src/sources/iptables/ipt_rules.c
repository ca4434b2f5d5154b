/*
 * ipt_rules.c - the `rules:` entries of the `iptables` source: their schema, their checks
 * (done once at load, so `mars validate` reports a bad CIDR or port at its FILE:LINE:COL)
 * and their expansion into kernel rules.
 *
 * A rule's address family follows from what it matches: an IPv4 source or destination, or
 * protocol icmp, makes it an IPv4 rule; IPv6 ones or icmpv6 an IPv6 rule; nothing of the
 * kind a rule of both (one inet rule on nft, one rule per family on legacy). Each port or
 * port range of `ports` is one kernel rule; they all carry the rule's name as comment, so
 * the counter reader adds them up into the rule's one series.
 *
 * Thread: the config loader's (checks), the source's init and dump thread (expansion).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "sources/iptables/ipt_rules.h"

const char *const mars_iptables_dir_names[] = {"input", "output", "forward", NULL};
const char *const mars_iptables_action_names[] = {"count", "accept", "drop", "reject", NULL};

#define ROFF(f) offsetof(struct ipt_rule_conf, f)
const struct mars_opt mars_iptables_rule_options[] = {
    {.name = "name",
     .type = MARS_OPT_STRING,
     .offset = ROFF(name),
     .flags = MARS_OPT_REQUIRED,
     .desc = "The rule's comment and its `rule` label: 1-127 printable characters, unique "
             "in the source."},
    {.name = "direction",
     .type = MARS_OPT_ENUM,
     .offset = ROFF(direction),
     .flags = MARS_OPT_REQUIRED,
     .choices = mars_iptables_dir_names,
     .desc = "The hook: input (to this host), output (from it) or forward (routed through it)."},
    {.name = "protocol",
     .type = MARS_OPT_STRING,
     .offset = ROFF(protocol),
     .desc = "tcp, udp, icmp, icmpv6, sctp, udplite, gre, esp, ah or a protocol number "
             "0-255; unset matches every protocol."},
    {.name = "source",
     .type = MARS_OPT_STRING,
     .offset = ROFF(source),
     .desc = "Source address or CIDR, IPv4 or IPv6 (the rule's family follows)."},
    {.name = "destination",
     .type = MARS_OPT_STRING,
     .offset = ROFF(destination),
     .desc = "Destination address or CIDR, IPv4 or IPv6 (the rule's family follows)."},
    {.name = "port",
     .type = MARS_OPT_INT,
     .offset = ROFF(port),
     .min = 1,
     .max = 65535,
     .desc = "Destination port (protocol tcp or udp)."},
    {.name = "ports",
     .type = MARS_OPT_LIST,
     .offset = ROFF(ports),
     .desc = "Destination ports or ranges (\"80\", \"8000-8080\"; protocol tcp or udp), at most "
             "32."},
    {.name = "interface",
     .type = MARS_OPT_STRING,
     .offset = ROFF(interface),
     .desc = "Network interface: the incoming one for input and forward, the outgoing one for "
             "output; a trailing * matches a prefix (veth*)."},
    {.name = "action",
     .type = MARS_OPT_ENUM,
     .offset = ROFF(action),
     .def = "count",
     .choices = mars_iptables_action_names,
     .desc = "count (only count the packets), accept, drop or reject (a TCP reset for tcp, "
             "an ICMP port unreachable otherwise)."},
    {.name = NULL},
};

static const struct {
    const char *name;
    int num;
} protocols[] = {{"tcp", 6},    {"udp", 17},      {"icmp", 1}, {"icmpv6", 58}, {"ipv6-icmp", 58},
                 {"sctp", 132}, {"udplite", 136}, {"gre", 47}, {"esp", 50},    {"ah", 51}};

static int bad(struct ipt_rule_err *err, const char *key, size_t item, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(struct ipt_rule_err *err, const char *key, size_t item, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->why, sizeof(err->why), fmt, ap);
    va_end(ap);
    err->key = key;
    err->item = item;
    return -EINVAL;
}

static int parse_protocol(const char *s)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
        if (strcmp(protocols[i].name, s) == 0)
            return protocols[i].num;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || v > 255)
        return -1;
    return (int)v;
}

/* "a.b.c.d[/n]" or "x::y[/n]" into addr (host bits must be zero); returns the family (4 or
 * 6) or 0 with err filled. */
static int parse_cidr(const char *s, uint8_t addr[16], int16_t *plen, const char *key,
                      struct ipt_rule_err *err)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf))
        return bad(err, key, 0, "'%s' is not an IPv4 or IPv6 address or CIDR", s), 0;
    memcpy(buf, s, alen);
    buf[alen] = 0;
    int fam = 0, max = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1)
        fam = 4, max = 32;
    else if (inet_pton(AF_INET6, buf, addr) == 1)
        fam = 6, max = 128;
    else
        return bad(err, key, 0, "'%s' is not an IPv4 or IPv6 address or CIDR", s), 0;
    long len = max;
    if (slash) {
        char *end;
        len = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || len > max)
            return bad(err, key, 0, "'%s': the prefix length must be 0-%d", s, max), 0;
    }
    for (int bit = (int)len; bit < max; bit++) {
        if (addr[bit / 8] & (0x80u >> (bit % 8))) {
            for (int b = (int)len; b < max; b++)
                addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
            char net[64];
            inet_ntop(fam == 4 ? AF_INET : AF_INET6, addr, net, sizeof(net));
            return bad(err, key, 0, "'%s' has host bits set (the network is %s/%ld)", s, net, len),
                   0;
        }
    }
    *plen = (int16_t)len;
    return fam;
}

/* "80" or "8000-8080". Returns 0 or -EINVAL. */
static int parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    long a = strtol(s, &end, 10), b = a;
    if (*end == '-') {
        const char *t = end + 1;
        if (*t < '0' || *t > '9')
            return -EINVAL;
        b = strtol(t, &end, 10);
    }
    if (*end || a < 1 || b > 65535 || a > b)
        return -EINVAL;
    *lo = (uint16_t)a;
    *hi = (uint16_t)b;
    return 0;
}

static int check_name(const char *n, struct ipt_rule_err *err)
{
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len > IPT_NAME_MAX)
        return bad(err, "name", 0, "the name must be 1-%d characters", IPT_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || (unsigned char)n[i] > 0x7e)
            return bad(err, "name", 0, "the name must be printable ASCII");
    return 0;
}

static int fill_interface(const char *s, struct ipt_krule *k, struct ipt_rule_err *err)
{
    size_t len = strlen(s);
    bool prefix = len > 0 && (s[len - 1] == '*' || s[len - 1] == '+');
    size_t n = prefix ? len - 1 : len;
    if (n == 0 || len > 15 || strpbrk(s, " /\t:") || memchr(s, '*', n) || memchr(s, '+', n))
        return bad(err, "interface", 0,
                   "'%s' is not an interface name (1-15 characters, a trailing * for a prefix)", s);
    memcpy(k->ifname, s, n);
    /* an exact name compares its NUL too, so eth1 does not match eth10 */
    k->if_len = (uint8_t)(prefix ? n : n + 1);
    return 0;
}

/* Everything of c but the ports, into k. */
static int fill_base(const struct ipt_rule_conf *c, struct ipt_krule *k, struct ipt_rule_err *err)
{
    int rc = check_name(c->name, err);
    if (rc)
        return rc;
    snprintf(k->name, sizeof(k->name), "%s", c->name);
    k->dir = (uint8_t)c->direction;
    k->action = (uint8_t)c->action;
    k->proto = -1;
    k->src_len = k->dst_len = -1;
    int fam = 0;
    if (c->protocol && *c->protocol) {
        int p = parse_protocol(c->protocol);
        if (p < 0)
            return bad(err, "protocol", 0,
                       "unknown protocol '%s' (tcp, udp, icmp, icmpv6, sctp, udplite, gre, esp, "
                       "ah or a number 0-255)",
                       c->protocol);
        k->proto = (int16_t)p;
        fam = p == 1 ? 4 : p == 58 ? 6 : 0;
    }
    const char *keys[2] = {"source", "destination"};
    const char *vals[2] = {c->source, c->destination};
    for (int i = 0; i < 2; i++) {
        if (!vals[i] || !*vals[i])
            continue;
        int16_t plen;
        int f = parse_cidr(vals[i], i ? k->dst : k->src, &plen, keys[i], err);
        if (!f)
            return -EINVAL;
        if (fam && f != fam)
            return bad(err, keys[i], 0, "'%s' is IPv%d but the rule is IPv%d (by its %s)", vals[i],
                       f, fam, i && (c->source && *c->source) ? "source" : "protocol");
        fam = f;
        /* a /0 matches every address of the family: the family match alone does it */
        if (plen > 0)
            *(i ? &k->dst_len : &k->src_len) = plen;
    }
    k->family = (uint8_t)fam;
    if (c->interface && *c->interface && (rc = fill_interface(c->interface, k, err)))
        return rc;
    return 0;
}

int mars_iptables_rule_expand(const struct ipt_rule_conf *c, struct ipt_ruleset *out,
                              struct ipt_rule_err *err)
{
    struct ipt_krule k = {0};
    int rc = fill_base(c, &k, err);
    if (rc)
        return rc;
    bool has_ports = c->port > 0 || c->ports.n > 0;
    if (c->port > 0 && c->ports.n > 0)
        return bad(err, "ports", 0, "set either port or ports, not both");
    if (has_ports && k.proto != 6 && k.proto != 17)
        return bad(err, c->port > 0 ? "port" : "ports", 0, "ports need protocol tcp or udp");
    if (c->ports.n > IPT_PORTS_MAX)
        return bad(err, "ports", IPT_PORTS_MAX, "at most %d ports or ranges", IPT_PORTS_MAX);
    if (c->port > 0) {
        k.port_lo = k.port_hi = (uint16_t)c->port;
        return mars_iptables_ruleset_add(out, &k);
    }
    for (size_t i = 0; i < c->ports.n; i++) {
        if (parse_range(c->ports.v[i], &k.port_lo, &k.port_hi))
            return bad(err, "ports", i,
                       "'%s' is not a port (1-65535) or a range of them (8000-8080)",
                       c->ports.v[i]);
        if ((rc = mars_iptables_ruleset_add(out, &k)))
            return rc;
    }
    return has_ports ? 0 : mars_iptables_ruleset_add(out, &k);
}

int mars_iptables_ruleset_add(struct ipt_ruleset *s, const struct ipt_krule *r)
{
    if (mars_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)))
        return -ENOMEM;
    s->v[s->n++] = *r;
    return 0;
}

void mars_iptables_ruleset_fini(struct ipt_ruleset *s)
{
    free(s->v);
    *s = (struct ipt_ruleset){0};
}

int mars_iptables_apply_fail(struct ipt_apply_res *res, int err, const char *fmt, ...)
{
    if (res->err)
        return err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
    res->err = err;
    return err;
}
