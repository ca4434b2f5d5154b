/* Unit tests of config loading and graph checks, with test-only component types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "component.h"
#include "config/registry.h"
#include "control/components.h"

static const struct mars_opt no_options[] = {{.name = NULL}};

static const struct mars_component_desc t_metrics = {.name = "t_metrics",
                                                     .description = "test",
                                                     .kind = MARS_KIND_SOURCE,
                                                     .produces = MARS_DATA_METRIC,
                                                     .flags = MARS_DESC_TEST_ONLY,
                                                     .options = no_options};
static const struct mars_component_desc t_pass = {.name = "t_pass",
                                                  .description = "test",
                                                  .kind = MARS_KIND_TRANSFORM,
                                                  .produces = MARS_DATA_SAME,
                                                  .accepts = MARS_DATA_ANY,
                                                  .flags = MARS_DESC_TEST_ONLY,
                                                  .options = no_options};
static const struct mars_component_desc t_metric_sink = {.name = "t_metric_sink",
                                                         .description = "test",
                                                         .kind = MARS_KIND_SINK,
                                                         .accepts = MARS_DATA_METRIC,
                                                         .flags = MARS_DESC_TEST_ONLY,
                                                         .options = no_options};

static int setup(void **state)
{
    mars_components_register();
    mars_registry_add(&t_metrics);
    mars_registry_add(&t_pass);
    mars_registry_add(&t_metric_sink);
    (void)state;
    return 0;
}

/* Loads yaml; returns the diag text joined by '\n' (static buffer), "" when it loaded. */
static const char *load(const char *yaml, struct mars_config **out)
{
    static char buf[8192];
    struct mars_diag d;
    struct mars_config *c = NULL;
    mars_diag_init(&d);
    int rc = mars_config_load_string("g.yaml", yaml, &c, &d);
    buf[0] = '\0';
    for (size_t i = 0; i < d.n; i++) {
        strncat(buf, d.msgs[i].text, sizeof(buf) - strlen(buf) - 2);
        strcat(buf, "\n");
    }
    mars_diag_fini(&d);
    if (rc == 0 && out)
        *out = c;
    else
        mars_config_destroy(c);
    if (rc)
        assert_true(buf[0] != '\0'); /* a failure always says why */
    return buf;
}

static void expect_error(const char *yaml, const char *pos_and_text)
{
    const char *errs = load(yaml, NULL);
    if (!strstr(errs, pos_and_text))
        fail_msg("expected \"%s\" in:\n%s", pos_and_text, errs);
}

static void test_valid_graph_topo_order(void **state)
{
    struct mars_config *c = NULL;
    const char *errs = load("sources:\n"
                            "  m: {type: t_metrics}\n"
                            "transforms:\n"
                            "  b: {type: t_pass, inputs: [a]}\n"
                            "  a: {type: t_pass, inputs: [m]}\n"
                            "sinks:\n"
                            "  out: {type: t_metric_sink, inputs: [b, a]}\n",
                            &c);
    assert_string_equal(errs, "");
    assert_non_null(c);
    int m = mars_config_find(c, "m"), a = mars_config_find(c, "a"), b = mars_config_find(c, "b");
    int pos[8] = {0};
    for (uint32_t i = 0; i < c->n; i++)
        pos[c->topo[i]] = (int)i;
    assert_true(pos[m] < pos[a]);
    assert_true(pos[a] < pos[b]);
    assert_int_equal(c->nodes[b].produces, MARS_DATA_METRIC); /* SAME follows its input */
    assert_int_equal(c->nodes[a].nout, 2);
    mars_config_destroy(c);
    (void)state;
}

static void test_cycle(void **state)
{
    expect_error("sources:\n"
                 "  m: {type: t_metrics}\n"
                 "transforms:\n"
                 "  a: {type: t_pass, inputs: [m, b]}\n"
                 "  b: {type: t_pass, inputs: [a]}\n"
                 "sinks:\n"
                 "  out: {type: t_metric_sink, inputs: [b]}\n",
                 "g.yaml:4:3: transform 'a' is part of a cycle");
    (void)state;
}

static void test_type_mismatch(void **state)
{
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: t_metric_sink, inputs: [logs]}\n",
                 "g.yaml:4:39: sink 'out' (t_metric_sink) takes metric events, but input 'logs' "
                 "produces log events");
    (void)state;
}

static void test_unknown_and_unread(void **state)
{
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "  extra: {type: demo}\n"
                 "sinks:\n"
                 "  out:\n"
                 "    type: stdout\n"
                 "    inputs: [lgos]\n",
                 "g.yaml:7:14: sink 'out': input 'lgos' is not a source or transform (did you mean "
                 "'logs'?)");
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "  extra: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: stdout, inputs: [logs]}\n",
                 "g.yaml:3:3: source 'extra' is not read by any transform or sink");
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: stdout, inputs: [logs, logs]}\n",
                 "input 'logs' is listed twice");
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: stdout, inputs: [out]}\n",
                 "input 'out' is not a source or transform");
    (void)state;
}

static void test_structure_errors(void **state)
{
    expect_error("", "the configuration is empty");
    expect_error("- a\n- b\n", "g.yaml:1:1: the configuration must be a mapping");
    expect_error("sources:\n  logs: {type: demo}\n", "the configuration has no sinks");
    expect_error("sources:\n  logs: {type: demo}\nsinks:\n  logs: {type: stdout, inputs: [logs]}\n",
                 "g.yaml:4:3: component id 'logs' is already used by the source at g.yaml:2:3");
    expect_error("sources:\n  logs: {type: demo}\nsinks:\n  out: {type: stdot, inputs: [logs]}\n",
                 "g.yaml:4:15: unknown sink type 'stdot' (did you mean 'stdout'?)");
    expect_error("sources:\n  logs: {rate: 1}\nsinks:\n  out: {type: stdout, inputs: [logs]}\n",
                 "source 'logs': missing 'type'");
    expect_error("sources:\n  logs: {type: demo}\nsinks:\n  out: {type: stdout}\n",
                 "missing required option 'inputs'");
    expect_error("sources: [a]\nsinks:\n  out: {type: stdout, inputs: [logs]}\n",
                 "'sources' must be a mapping");
    (void)state;
}

static void test_common_and_own_options(void **state)
{
    /* the type's own pass reports unknown keys, with common names as candidates */
    expect_error("sources:\n  logs: {type: demo}\nsinks:\n"
                 "  out: {type: stdout, inputs: [logs], bufer: {max_events: 5}}\n",
                 "did you mean 'buffer'?");
    expect_error("sources:\n  logs: {type: demo, formt: json}\nsinks:\n"
                 "  out: {type: stdout, inputs: [logs]}\n",
                 "did you mean 'format'?");
    struct mars_config *c = NULL;
    const char *errs = load("sources:\n  logs: {type: demo, format: json}\nsinks:\n"
                            "  out: {type: stdout, inputs: [logs], encoding: ndjson,\n"
                            "        buffer: {max_events: 5, when_full: drop_newest}}\n",
                            &c);
    assert_string_equal(errs, "");
    const struct mars_node *out = &c->nodes[mars_config_find(c, "out")];
    assert_int_equal(out->common.buffer.max_events, 5);
    assert_int_equal(out->common.buffer.when_full, MARS_WHEN_FULL_DROP_NEWEST);
    assert_int_equal(out->common.buffer.max_bytes, 2u << 20); /* default */
    assert_int_equal(c->top.runtime.shutdown_timeout, 30000000000LL);
    mars_config_destroy(c);
    (void)state;
}

/* Every registered schema: a description for the type and for every option, and defaults
 * that parse (applying an empty mapping fails only on required options). */
static void check_schema(const char *what, const struct mars_opt *opts)
{
    size_t required = 0;
    for (const struct mars_opt *o = opts; o->name; o++) {
        if (!o->desc || !o->desc[0])
            fail_msg("%s: option '%s' has no description", what, o->name);
        required += (o->flags & MARS_OPT_REQUIRED) != 0;
        if (o->type == MARS_OPT_SECTION || o->type == MARS_OPT_SECTION_LIST)
            check_schema(what, o->sub);
    }
    char conf[4096] = {0};
    struct mars_diag d;
    mars_diag_init(&d);
    mars_schema_apply(opts, NULL, conf, NULL, &d);
    if (mars_diag_count(&d) != required) {
        mars_diag_print(&d, stderr);
        fail_msg("%s: defaults do not apply cleanly", what);
    }
    mars_diag_fini(&d);
    mars_schema_fini(opts, conf);
}

/* Node `to` reads node `from` on port (0: plain output). */
static bool reads(const struct mars_config *c, const char *to, const char *from, uint32_t port)
{
    const struct mars_node *u = &c->nodes[mars_config_find(c, from)];
    uint32_t t = (uint32_t)mars_config_find(c, to);
    for (uint32_t j = 0; j < u->nout; j++)
        if (u->out[j] == t && u->out_port[j] == port)
            return true;
    return false;
}

static void test_input_wildcards(void **state)
{
    struct mars_config *c = NULL;
    const char *errs = load("sources:\n"
                            "  app_a: {type: demo}\n"
                            "  app_b: {type: demo}\n"
                            "  sys: {type: demo}\n"
                            "transforms:\n"
                            "  app_all: {type: filter, condition: 'true', inputs: [\"app_*\"]}\n"
                            "  r: {type: route, route: {x: 'true', y: 'false'}, inputs: [sys]}\n"
                            "sinks:\n"
                            "  out: {type: blackhole, inputs: [app_all, \"app_?\", \"app_[a]\"]}\n"
                            "  rs: {type: blackhole, inputs: [\"r.*\"]}\n",
                            &c);
    assert_string_equal(errs, "");
    assert_non_null(c);
    /* app_* matches both sources, never app_all itself */
    assert_true(reads(c, "app_all", "app_a", 0));
    assert_true(reads(c, "app_all", "app_b", 0));
    assert_int_equal(c->nodes[mars_config_find(c, "app_all")].nin, 2);
    /* a pattern adds nothing an earlier input already reads, and is not a duplicate */
    assert_int_equal(c->nodes[mars_config_find(c, "out")].nin, 3);
    assert_true(reads(c, "out", "app_all", 0) && reads(c, "out", "app_a", 0) &&
                reads(c, "out", "app_b", 0));
    /* a transform with named outputs is matched by id.port, every port */
    assert_int_equal(c->nodes[mars_config_find(c, "rs")].nin, 3);
    assert_true(reads(c, "rs", "r", 1) && reads(c, "rs", "r", 2) && reads(c, "rs", "r", 3));
    mars_config_destroy(c);

    expect_error("sources:\n"
                 "  a: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: blackhole, inputs: [a, \"web_*\"]}\n",
                 "g.yaml:4:38: sink 'out': input pattern 'web_*' matches no other source or "
                 "transform");
    /* the only match would be the transform itself */
    expect_error("sources:\n"
                 "  a: {type: demo}\n"
                 "transforms:\n"
                 "  t_1: {type: filter, condition: 'true', inputs: [a, \"t_*\"]}\n"
                 "sinks:\n"
                 "  out: {type: blackhole, inputs: [t_1]}\n",
                 "g.yaml:4:54: transform 't_1': input pattern 't_*' matches no other source");
    /* sinks are never inputs; a type mismatch points at the pattern */
    expect_error("sources:\n"
                 "  logs: {type: demo}\n"
                 "sinks:\n"
                 "  out: {type: t_metric_sink, inputs: [\"l*\"]}\n",
                 "g.yaml:4:39: sink 'out' (t_metric_sink) takes metric events, but input 'logs' "
                 "produces log events");
    (void)state;
}

static void test_every_schema_documented(void **state)
{
    check_schema("process", mars_top_options);
    check_schema("sink common", mars_sink_common_options);
    check_schema("transform common", mars_transform_common_options);
    for (size_t i = 0; i < mars_registry_count(); i++) {
        const struct mars_component_desc *d = mars_registry_at(i);
        if (d->flags & MARS_DESC_TEST_ONLY)
            continue;
        assert_true(d->description && d->description[0]);
        assert_true(d->conf_size <= 4096);
        check_schema(d->name, d->options);
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_graph_topo_order),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_unknown_and_unread),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_common_and_own_options),
        cmocka_unit_test(test_input_wildcards),
        cmocka_unit_test(test_every_schema_documented),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
