/* Unit tests of the managed rules' expansion (sources/iptables/ipt_rules.c): the family
 * follows addresses and icmp/icmpv6, one kernel rule per port range, prefixes and
 * interfaces, and the errors `mars validate` reports (with the option they point at).
 * No kernel involved. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sources/iptables/ipt_rules.h"

static int expand(struct ipt_rule_conf *c, struct ipt_ruleset *out, struct ipt_rule_err *err)
{
    memset(err, 0, sizeof(*err));
    return mars_iptables_rule_expand(c, out, err);
}

static void test_family_follows(void **state)
{
    struct ipt_ruleset s = {0};
    struct ipt_rule_err err;
    struct ipt_rule_conf c = {.name = "a", .direction = IPT_DIR_INPUT};
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.v[0].family, 0);
    assert_int_equal(s.v[0].proto, -1);
    assert_int_equal(s.v[0].src_len, -1);
    c.source = "10.1.0.0/16";
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.v[1].family, 4);
    assert_int_equal(s.v[1].src_len, 16);
    assert_int_equal(s.v[1].src[0], 10);
    assert_int_equal(s.v[1].src[1], 1);
    c.source = NULL;
    c.protocol = "icmpv6";
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.v[2].family, 6);
    assert_int_equal(s.v[2].proto, 58);
    c.destination = "::/0"; /* every IPv6 address: the family alone */
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.v[3].family, 6);
    assert_int_equal(s.v[3].dst_len, -1);
    assert_int_equal(s.n, 4);
    mars_iptables_ruleset_fini(&s);
}

static void test_ports_and_interface(void **state)
{
    struct ipt_ruleset s = {0};
    struct ipt_rule_err err;
    char *ports[] = {"80", "8000-8080"};
    struct ipt_rule_conf c = {.name = "web",
                              .direction = IPT_DIR_OUTPUT,
                              .protocol = "tcp",
                              .ports = {.v = ports, .n = 2},
                              .interface = "veth*",
                              .action = IPT_ACT_DROP};
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.v[0].port_lo, 80);
    assert_int_equal(s.v[0].port_hi, 80);
    assert_int_equal(s.v[1].port_lo, 8000);
    assert_int_equal(s.v[1].port_hi, 8080);
    assert_int_equal(s.v[1].if_len, 4); /* a prefix: no NUL compared */
    assert_string_equal(s.v[1].name, "web");
    assert_int_equal(s.v[1].action, IPT_ACT_DROP);
    c.ports.n = 0;
    c.port = 443;
    c.interface = "eth0";
    assert_int_equal(expand(&c, &s, &err), 0);
    assert_int_equal(s.v[2].port_lo, 443);
    assert_int_equal(s.v[2].if_len, 5); /* exact: eth0 and its NUL */
    mars_iptables_ruleset_fini(&s);
}

static void expect_bad(struct ipt_rule_conf *c, const char *key, size_t item, const char *why)
{
    struct ipt_ruleset s = {0};
    struct ipt_rule_err err;
    assert_int_equal(expand(c, &s, &err), -EINVAL);
    assert_string_equal(err.key, key);
    assert_int_equal(err.item, item);
    if (!strstr(err.why, why))
        fail_msg("'%s' does not say '%s'", err.why, why);
    mars_iptables_ruleset_fini(&s);
}

static void test_errors(void **state)
{
    char *ports[] = {"22", "9-8"};
    struct ipt_rule_conf c = {.name = "x", .direction = IPT_DIR_INPUT, .source = "10.0.0.1/8"};
    expect_bad(&c, "source", 0, "host bits set (the network is 10.0.0.0/8)");
    c.source = "10.0.0.0/33";
    expect_bad(&c, "source", 0, "prefix length must be 0-32");
    c.source = "fd00::1";
    c.destination = "10.0.0.1";
    expect_bad(&c, "destination", 0, "is IPv4 but the rule is IPv6 (by its source)");
    c.source = c.destination = NULL;
    c.protocol = "tcpp";
    expect_bad(&c, "protocol", 0, "unknown protocol 'tcpp'");
    c.protocol = "icmp";
    c.port = 53;
    expect_bad(&c, "port", 0, "ports need protocol tcp or udp");
    c.protocol = "udp";
    c.ports = (struct mars_strlist){.v = ports, .n = 2};
    expect_bad(&c, "ports", 0, "either port or ports");
    c.port = 0;
    expect_bad(&c, "ports", 1, "'9-8' is not a port");
    c.ports.n = 0;
    c.interface = "a-very-long-interface";
    expect_bad(&c, "interface", 0, "not an interface name");
    c.interface = NULL;
    c.name = "";
    expect_bad(&c, "name", 0, "1-127 characters");
    c.name = "tab\there";
    expect_bad(&c, "name", 0, "printable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_follows),
        cmocka_unit_test(test_ports_and_interface),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
