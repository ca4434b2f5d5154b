/* Unit tests of the iptables source's series table (sources/iptables/ipt_dump.c): equal
 * labels add up, max_series refuses new series and counts them, comment_prefix, digest
 * names, globs for tables and chains, families. No kernel involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sources/iptables/ipt_internal.h"

static const struct ipt_row *find(const struct ipt_dump *d, const char *rule)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(ipt_str(d, d->rows[i].rule), rule) == 0)
            return &d->rows[i];
    return NULL;
}

static void test_equal_labels_add_up(void **state)
{
    struct ipt_filter f = {.max_series = 100};
    struct ipt_dump *d = mars_iptables_dump_create();
    assert_int_equal(
        mars_iptables_dump_add(d, &f, "ip", "filter", "OUTPUT", "a", 0, "accept", 1, 10), 0);
    assert_int_equal(
        mars_iptables_dump_add(d, &f, "ip", "filter", "OUTPUT", "a", 0, "accept", 2, 20), 0);
    assert_int_equal(mars_iptables_dump_add(d, &f, "ip", "filter", "OUTPUT", "a", 0, "drop", 4, 40),
                     0);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->rows[0].packets, 3);
    assert_int_equal(d->rows[0].bytes, 30);
    assert_int_equal(d->rules, 3);
    mars_iptables_dump_destroy(d);
}

static void test_many_series_and_max(void **state)
{
    struct ipt_filter f = {.max_series = 5000};
    struct ipt_dump *d = mars_iptables_dump_create();
    char name[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 6000; i++) {
            snprintf(name, sizeof(name), "svc-%d", i);
            assert_int_equal(
                mars_iptables_dump_add(d, &f, "ip", "nat", "KUBE-SVC-X", name, 0, "", 1, 1), 0);
        }
    }
    assert_int_equal(d->n, 5000);
    assert_int_equal(d->overflow, 2000);
    const struct ipt_row *r = find(d, "svc-4999");
    assert_non_null(r);
    assert_int_equal(r->packets, 2);
    assert_null(find(d, "svc-5000"));
    mars_iptables_dump_destroy(d);
}

static void test_prefix_and_digest(void **state)
{
    struct ipt_filter f = {.max_series = 10, .comment_prefix = "mars:"};
    struct ipt_dump *d = mars_iptables_dump_create();
    mars_iptables_dump_add(d, &f, "inet", "t", "c", "other", 0, "", 1, 1);
    mars_iptables_dump_add(d, &f, "inet", "t", "c", NULL, 0x123456789abcdef0ULL, "", 1, 1);
    mars_iptables_dump_add(d, &f, "inet", "t", "c", "mars:web", 0, "", 1, 1);
    assert_int_equal(d->n, 1);
    assert_non_null(find(d, "mars:web"));
    f.comment_prefix = NULL;
    mars_iptables_dump_add(d, &f, "inet", "t", "c", NULL, 0x123456789abcdef0ULL, "", 1, 1);
    assert_non_null(find(d, "#123456789abc"));
    mars_iptables_dump_destroy(d);
}

static void test_filters(void **state)
{
    char *tv[] = {"filter", "kube-*"}, *cv[] = {"KUBE-SVC-*"};
    struct mars_strlist tables = {tv, 2}, chains = {cv, 1}, none = {0};
    struct ipt_filter f = {.tables = &tables, .chains = &chains, .families = 1u << IPT_FAM_INET};
    assert_true(mars_iptables_filter_table(&f, "filter"));
    assert_true(mars_iptables_filter_table(&f, "kube-proxy"));
    assert_false(mars_iptables_filter_table(&f, "nat"));
    assert_true(mars_iptables_filter_chain(&f, "KUBE-SVC-ABC"));
    assert_false(mars_iptables_filter_chain(&f, "OUTPUT"));
    assert_true(mars_iptables_filter_family(&f, IPT_FAM_INET));
    assert_false(mars_iptables_filter_family(&f, IPT_FAM_IP));
    assert_false(mars_iptables_filter_family(&f, -1));
    f = (struct ipt_filter){.tables = &none};
    assert_true(mars_iptables_filter_table(&f, "anything"));
    assert_true(mars_iptables_filter_chain(&f, "anything"));
    assert_true(mars_iptables_filter_family(&f, IPT_FAM_NETDEV));
    assert_int_equal(mars_iptables_family_of_nfproto(2), IPT_FAM_IP);
    assert_int_equal(mars_iptables_family_of_nfproto(10), IPT_FAM_IP6);
    assert_int_equal(mars_iptables_family_of_nfproto(1), IPT_FAM_INET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_labels_add_up),
        cmocka_unit_test(test_many_series_and_max),
        cmocka_unit_test(test_prefix_and_digest),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
