/*
 * test_schema.c - option tables (src/core/schema.c, schema_describe.c): defaults, every
 * type, every error message with its FILE:LINE:COL, secrets from files, nested sections and
 * section lists, free, and the exact describe output in text and Markdown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/schema.h"

/* ---- a small component ---------------------------------------------------------------- */

enum { FULL_BLOCK, FULL_DROP_NEWEST };
static const char *const full_choices[] = {"block", "drop_newest", NULL};

struct buf_conf {
    int64_t max_events;
    uint64_t max_size;
    int when_full;
};

static const struct mars_opt buf_opts[] = {
    {.name = "max_events",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct buf_conf, max_events),
     .def = "1000",
     .desc = "Events held before the buffer is full.",
     .min = 1,
     .max = 1000000},
    {.name = "max_size",
     .type = MARS_OPT_SIZE,
     .offset = offsetof(struct buf_conf, max_size),
     .def = "64MiB",
     .desc = "Bytes held before the buffer is full.",
     .min = 1024,
     .max = 1 << 30},
    {.name = "when_full",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct buf_conf, when_full),
     .def = "block",
     .desc = "What to do when full.",
     .choices = full_choices},
    {0},
};

struct probe {
    char *url;
    int64_t interval;
    char *token;
};

static const struct mars_opt probe_opts[] = {
    {.name = "url",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct probe, url),
     .desc = "URL to probe.",
     .flags = MARS_OPT_REQUIRED},
    {.name = "interval",
     .type = MARS_OPT_DURATION,
     .offset = offsetof(struct probe, interval),
     .def = "10s",
     .desc = "Time between probes.",
     .min = 1000000,
     .max = 3600000000000},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = offsetof(struct probe, token),
     .desc = "Bearer token."},
    {0},
};

struct conf {
    char *path;
    char *password;
    int64_t count;
    int64_t workers;
    double ratio;
    bool enabled;
    uint64_t max_bytes;
    int64_t timeout;
    int when_full;
    struct mars_strlist inputs;
    struct mars_strlist tags;
    struct mars_strmap labels;
    struct buf_conf buffer;
    struct mars_seclist probes;
    char *name;
};

static const struct mars_opt conf_opts[] = {
    {.name = "path",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct conf, path),
     .desc = "File to read.",
     .flags = MARS_OPT_REQUIRED},
    {.name = "password",
     .type = MARS_OPT_SECRET,
     .offset = offsetof(struct conf, password),
     .desc = "Password."},
    {.name = "count",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct conf, count),
     .def = "-3",
     .desc = "A count."},
    {.name = "workers",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct conf, workers),
     .def = "4",
     .desc = "Worker threads.",
     .min = 1,
     .max = 256},
    {.name = "ratio",
     .type = MARS_OPT_FLOAT,
     .offset = offsetof(struct conf, ratio),
     .def = "0.5",
     .desc = "A ratio."},
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = offsetof(struct conf, enabled),
     .def = "true",
     .desc = "On or off."},
    {.name = "max_bytes",
     .type = MARS_OPT_SIZE,
     .offset = offsetof(struct conf, max_bytes),
     .def = "1MiB",
     .desc = "Byte limit."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = offsetof(struct conf, timeout),
     .def = "250ms",
     .desc = "Time limit."},
    {.name = "when_full",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct conf, when_full),
     .def = "drop_newest",
     .desc = "Full policy.",
     .choices = full_choices},
    {.name = "inputs",
     .type = MARS_OPT_LIST,
     .offset = offsetof(struct conf, inputs),
     .desc = "Upstream components."},
    {.name = "tags",
     .type = MARS_OPT_LIST,
     .offset = offsetof(struct conf, tags),
     .def = "[a, b]",
     .desc = "Tags."},
    {.name = "labels",
     .type = MARS_OPT_MAP,
     .offset = offsetof(struct conf, labels),
     .def = "{env: prod}",
     .desc = "Labels."},
    {.name = "buffer",
     .type = MARS_OPT_SECTION,
     .offset = offsetof(struct conf, buffer),
     .desc = "Buffer settings.",
     .sub = buf_opts},
    {.name = "probes",
     .type = MARS_OPT_SECTION_LIST,
     .offset = offsetof(struct conf, probes),
     .desc = "Health probes.",
     .sub = probe_opts,
     .sub_size = sizeof(struct probe)},
    {.name = "name",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct conf, name),
     .def = "x",
     .desc = "A name."},
    {0},
};

static const char *const reserved[] = {"type", NULL};

/* ---- helpers -------------------------------------------------------------------------- */

/* Loads yaml as `name` and applies schema to out (size bytes, zeroed first); the doc is
 * freed before returning, so out must not borrow from it. */
static int apply_schema(const struct mars_opt *schema, const char *name, const char *yaml,
                        void *out, size_t size, struct mars_diag *d)
{
    mars_diag_init(d);
    memset(out, 0, size);
    struct mars_cfg_doc *doc = mars_cfg_load_string(name, yaml, strlen(yaml), d);
    if (!doc) {
        mars_diag_print(d, stderr);
        fail_msg("yaml did not load");
    }
    int rc = mars_schema_apply(schema, doc->root, out, reserved, d);
    mars_cfg_doc_destroy(doc);
    return rc;
}

/* conf_opts applied to yaml loaded as "c.yaml". */
static int apply_yaml(const char *yaml, struct conf *c, struct mars_diag *d)
{
    return apply_schema(conf_opts, "c.yaml", yaml, c, sizeof(*c), d);
}

/* Applying yaml must fail with exactly the listed messages (NULL-terminated), in order. */
static void expect_errors(const char *yaml, ...)
{
    struct mars_diag d;
    struct conf c;
    va_list ap;
    size_t n = 0;

    assert_int_equal(apply_yaml(yaml, &c, &d), -EINVAL);
    va_start(ap, yaml);
    for (const char *want; (want = va_arg(ap, const char *)); n++) {
        if (n >= d.n || strcmp(d.msgs[n].text, want) != 0) {
            mars_diag_print(&d, stderr);
            fail_msg("diagnostic %zu: want \"%s\"", n, want);
        }
    }
    va_end(ap);
    if (d.n != n) {
        mars_diag_print(&d, stderr);
        fail_msg("%zu diagnostics, want %zu", d.n, n);
    }
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);
}

static void assert_zeroed(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        if (b[i])
            fail_msg("byte %zu not zero after free", i);
    }
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;

    assert_int_equal(apply_yaml("path: /var/log/x.log\n", &c, &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(c.path, "/var/log/x.log");
    assert_null(c.password);
    assert_int_equal(c.count, -3);
    assert_int_equal(c.workers, 4);
    assert_true(c.ratio == 0.5);
    assert_true(c.enabled);
    assert_int_equal(c.max_bytes, 1 << 20);
    assert_int_equal(c.timeout, 250000000);
    assert_int_equal(c.when_full, FULL_DROP_NEWEST);
    assert_int_equal(c.inputs.n, 0);
    assert_null(c.inputs.v);
    assert_int_equal(c.tags.n, 2);
    assert_string_equal(c.tags.v[0], "a");
    assert_string_equal(c.tags.v[1], "b");
    assert_int_equal(c.labels.n, 1);
    assert_string_equal(c.labels.keys[0], "env");
    assert_string_equal(c.labels.vals[0], "prod");
    /* A section that is not written still gets its defaults. */
    assert_int_equal(c.buffer.max_events, 1000);
    assert_int_equal(c.buffer.max_size, 64 << 20);
    assert_int_equal(c.buffer.when_full, FULL_BLOCK);
    assert_int_equal(c.probes.n, 0);
    assert_null(c.probes.items);
    assert_string_equal(c.name, "x");
    mars_schema_fini(conf_opts, &c);
    assert_zeroed(&c, sizeof(c));
    mars_diag_fini(&d);
}

static void test_all_values(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;
    setenv("MARS_T_WORKERS", "8", 1);
    const char *yaml = "type: file\n"
                       "path: /p\n"
                       "password: s3cret\n"
                       "count: '-9223372036854775808'\n"
                       "workers: ${MARS_T_WORKERS}\n"
                       "ratio: 1e3\n"
                       "enabled: off\n"
                       "max_bytes: 1.5MiB\n"
                       "timeout: 1m30s\n"
                       "when_full: block\n"
                       "inputs: [a, \"b\"]\n"
                       "tags: solo\n"
                       "labels: {app: web, empty: , n: 1}\n"
                       "buffer:\n"
                       "  max_events: 5\n"
                       "  when_full: drop_newest\n"
                       "probes:\n"
                       "  - url: http://a\n"
                       "  - url: http://b\n"
                       "    interval: 1m\n"
                       "name: ''\n";
    assert_int_equal(apply_yaml(yaml, &c, &d), 0);
    assert_string_equal(c.path, "/p");
    assert_string_equal(c.password, "s3cret");
    assert_true(c.count == INT64_MIN);
    assert_int_equal(c.workers, 8);
    assert_true(c.ratio == 1000.0);
    assert_false(c.enabled);
    assert_int_equal(c.max_bytes, 1572864);
    assert_int_equal(c.timeout, 90000000000);
    assert_int_equal(c.when_full, FULL_BLOCK);
    assert_int_equal(c.inputs.n, 2);
    assert_string_equal(c.inputs.v[0], "a");
    assert_string_equal(c.inputs.v[1], "b");
    assert_int_equal(c.tags.n, 1); /* a lone scalar is a list of one; replaces the default */
    assert_string_equal(c.tags.v[0], "solo");
    assert_int_equal(c.labels.n, 3);
    assert_string_equal(c.labels.keys[0], "app");
    assert_string_equal(c.labels.vals[0], "web");
    assert_string_equal(c.labels.keys[1], "empty");
    assert_string_equal(c.labels.vals[1], "");
    assert_string_equal(c.labels.vals[2], "1");
    assert_int_equal(c.buffer.max_events, 5);
    assert_int_equal(c.buffer.max_size, 64 << 20); /* default inside a written section */
    assert_int_equal(c.buffer.when_full, FULL_DROP_NEWEST);
    assert_int_equal(c.probes.n, 2);
    struct probe *p = c.probes.items;
    assert_string_equal(p[0].url, "http://a");
    assert_int_equal(p[0].interval, 10000000000); /* default per item */
    assert_null(p[0].token);
    assert_string_equal(p[1].url, "http://b");
    assert_int_equal(p[1].interval, 60000000000);
    assert_string_equal(c.name, "");
    mars_schema_fini(conf_opts, &c);
    assert_zeroed(&c, sizeof(c));
    /* Freeing twice is harmless: free zeroes what it frees. */
    mars_schema_fini(conf_opts, &c);
    mars_schema_fini(conf_opts, NULL);
    mars_diag_fini(&d);
}

static void test_empty_values_are_unset(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;
    assert_int_equal(apply_yaml("path: /p\nworkers:\ntags: ~\nbuffer:\nprobes:\nlabels:\n", &c, &d),
                     0);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.tags.n, 2);
    assert_int_equal(c.buffer.max_events, 1000);
    assert_int_equal(c.probes.n, 0);
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);
    expect_errors("path:\n", "c.yaml:1:1: missing required option 'path'", NULL);
    /* An empty list and map are written values. */
    assert_int_equal(apply_yaml("path: /p\ntags: []\nlabels: {}\nprobes: []\n", &c, &d), 0);
    assert_int_equal(c.tags.n, 0);
    assert_null(c.tags.v);
    assert_int_equal(c.labels.n, 0);
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);
}

static void test_null_map_and_wrong_root(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;

    mars_diag_init(&d);
    memset(&c, 0, sizeof(c));
    assert_int_equal(mars_schema_apply(conf_opts, NULL, &c, NULL, &d), -EINVAL);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0].text, "<config>: missing required option 'path'");
    assert_int_equal(c.workers, 4); /* defaults applied anyway */
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);

    /* A table without required options applies cleanly to nothing. */
    struct buf_conf b = {0};
    mars_diag_init(&d);
    assert_int_equal(mars_schema_apply(buf_opts, NULL, &b, NULL, &d), 0);
    assert_int_equal(b.max_events, 1000);
    mars_schema_fini(buf_opts, &b);
    mars_diag_fini(&d);

    expect_errors("- a\n- b\n", "c.yaml:1:1: expected a mapping of options, got a list", NULL);
    expect_errors("just text\n", "c.yaml:1:1: expected a mapping of options, got a string", NULL);
}

static void test_unknown_options(void **state)
{
    (void)state;
    expect_errors("path: /p\nmax_bytez: 1MiB\n",
                  "c.yaml:2:1: unknown option 'max_bytez' (did you mean 'max_bytes'?)", NULL);
    expect_errors("path: /p\ncolour: red\n", "c.yaml:2:1: unknown option 'colour'", NULL);
    /* Reserved keys are skipped, and suggested. */
    expect_errors("typ: file\npath: /p\n",
                  "c.yaml:1:1: unknown option 'typ' (did you mean 'type'?)", NULL);
    expect_errors("path: /p\nbuffer:\n  max_evnts: 5\n",
                  "c.yaml:3:3: unknown option 'buffer.max_evnts' (did you mean "
                  "'buffer.max_events'?)",
                  NULL);
    /* Only secrets accept _file; other options do not. */
    expect_errors("path: /p\nname_file: /x\n", "c.yaml:2:1: unknown option 'name_file'", NULL);
    /* Reserved keys apply at the top level only. */
    expect_errors("path: /p\nbuffer: {type: x}\n", "c.yaml:2:10: unknown option 'buffer.type'",
                  NULL);
}

static void test_type_errors(void **state)
{
    (void)state;
    expect_errors("path: [a]\n", "c.yaml:1:7: option 'path': expected a string, got a list", NULL);
    expect_errors("path: {a: 1}\n", "c.yaml:1:7: option 'path': expected a string, got a mapping",
                  NULL);
    expect_errors("path: \"a\\0b\"\n", "c.yaml:1:7: option 'path': value contains a NUL character",
                  NULL);
    expect_errors("path: /p\ncount: abc\n",
                  "c.yaml:2:8: option 'count': expected an integer, got \"abc\"", NULL);
    expect_errors("path: /p\ncount: 1.5\n",
                  "c.yaml:2:8: option 'count': expected an integer, got \"1.5\"", NULL);
    expect_errors("path: /p\ncount: '-'\n",
                  "c.yaml:2:8: option 'count': expected an integer, got \"-\"", NULL);
    expect_errors("path: /p\ncount: 9223372036854775808\n",
                  "c.yaml:2:8: option 'count': \"9223372036854775808\" is out of the 64-bit "
                  "integer range",
                  NULL);
    expect_errors("path: /p\ncount: -9223372036854775809\n",
                  "c.yaml:2:8: option 'count': \"-9223372036854775809\" is out of the 64-bit "
                  "integer range",
                  NULL);
    expect_errors("path: /p\ncount: [1]\n",
                  "c.yaml:2:8: option 'count': expected an integer, got a list", NULL);
    expect_errors("path: /p\nratio: abc\n",
                  "c.yaml:2:8: option 'ratio': expected a number, got \"abc\"", NULL);
    expect_errors("path: /p\nratio: inf\n",
                  "c.yaml:2:8: option 'ratio': expected a number, got \"inf\"", NULL);
    expect_errors("path: /p\nratio: ' 1'\n",
                  "c.yaml:2:8: option 'ratio': expected a number, got \" 1\"", NULL);
    expect_errors("path: /p\nratio: 1e999\n",
                  "c.yaml:2:8: option 'ratio': expected a number, got \"1e999\"", NULL);
    expect_errors("path: /p\nenabled: maybe\n",
                  "c.yaml:2:10: option 'enabled': expected a boolean (true/false, yes/no, "
                  "on/off), got \"maybe\"",
                  NULL);
    expect_errors("path: /p\nmax_bytes: 12XB\n",
                  "c.yaml:2:12: option 'max_bytes': invalid size \"12XB\": unknown unit (use B, "
                  "KB, MB, GB, KiB, MiB, GiB, TiB)",
                  NULL);
    expect_errors("path: /p\nmax_bytes: 1024\n",
                  "c.yaml:2:12: option 'max_bytes': invalid size \"1024\": missing unit (use B, "
                  "KB, MB, GB, KiB, MiB, GiB, TiB)",
                  NULL);
    expect_errors("path: /p\nmax_bytes: 99999999TiB\n",
                  "c.yaml:2:12: option 'max_bytes': invalid size \"99999999TiB\": too large (at "
                  "most 16 EiB)",
                  NULL);
    expect_errors("path: /p\ntimeout: 5x\n",
                  "c.yaml:2:10: option 'timeout': invalid duration \"5x\": unknown unit (use ns, "
                  "us, ms, s, m, h, d)",
                  NULL);
    expect_errors("path: /p\ntimeout: -1s\n",
                  "c.yaml:2:10: option 'timeout': invalid duration \"-1s\": negative durations "
                  "are not allowed",
                  NULL);
    expect_errors("path: /p\ntimeout: 300\n",
                  "c.yaml:2:10: option 'timeout': invalid duration \"300\": missing unit (use ns, "
                  "us, ms, s, m, h, d)",
                  NULL);
    expect_errors("path: /p\ntimeout: 999999999999d\n",
                  "c.yaml:2:10: option 'timeout': invalid duration \"999999999999d\": too large "
                  "(at most about 292 years)",
                  NULL);
}

static void test_long_values_are_cut_in_messages(void **state)
{
    (void)state;
    char yaml[300];
    snprintf(yaml, sizeof(yaml), "path: /p\ncount: %0200d\n", 7);
    yaml[strlen(yaml) - 2] = 'x'; /* make it invalid */
    char want[200];
    snprintf(want, sizeof(want),
             "c.yaml:2:8: option 'count': expected an integer, got \"%074d...\"", 0);
    expect_errors(yaml, want, NULL);
    /* Control characters are shown as '?'. */
    expect_errors("path: /p\ncount: \"a\\tb\"\n",
                  "c.yaml:2:8: option 'count': expected an integer, got \"a?b\"", NULL);
}

static void test_bounds(void **state)
{
    (void)state;
    expect_errors("path: /p\nworkers: 999\n",
                  "c.yaml:2:10: option 'workers': 999 is above the maximum 256", NULL);
    expect_errors("path: /p\nworkers: 0\n",
                  "c.yaml:2:10: option 'workers': 0 is below the minimum 1", NULL);
    expect_errors("path: /p\nbuffer:\n  max_size: 2GiB\n",
                  "c.yaml:3:13: option 'buffer.max_size': 2GiB is above the maximum 1GiB", NULL);
    expect_errors("path: /p\nbuffer:\n  max_size: 1000B\n",
                  "c.yaml:3:13: option 'buffer.max_size': 1000B is below the minimum 1KiB", NULL);
    expect_errors("path: /p\nprobes:\n  - url: u\n    interval: 2h\n",
                  "c.yaml:4:15: option 'probes[0].interval': 2h is above the maximum 1h", NULL);
    expect_errors("path: /p\nprobes:\n  - url: u\n    interval: 999us\n",
                  "c.yaml:4:15: option 'probes[0].interval': 999us is below the minimum 1ms", NULL);
    /* Edges are inclusive. */
    struct mars_diag d;
    struct conf c;
    assert_int_equal(apply_yaml("path: /p\nworkers: 256\nbuffer: {max_size: 1KiB}\n"
                                "probes: [{url: u, interval: 1h}]\n",
                                &c, &d),
                     0);
    assert_int_equal(c.workers, 256);
    assert_int_equal(c.buffer.max_size, 1024);
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);
}

static void test_enums(void **state)
{
    (void)state;
    expect_errors("path: /p\nwhen_full: blok\n",
                  "c.yaml:2:12: option 'when_full': \"blok\" is not one of block, drop_newest "
                  "(did you mean 'block'?)",
                  NULL);
    expect_errors("path: /p\nwhen_full: discard\n",
                  "c.yaml:2:12: option 'when_full': \"discard\" is not one of block, drop_newest",
                  NULL);
    expect_errors("path: /p\nwhen_full: Block\n",
                  "c.yaml:2:12: option 'when_full': \"Block\" is not one of block, drop_newest "
                  "(did you mean 'block'?)",
                  NULL);
    expect_errors("path: /p\nwhen_full: {a: 1}\n",
                  "c.yaml:2:12: option 'when_full': expected a string, got a mapping", NULL);
}

static void test_collections(void **state)
{
    (void)state;
    expect_errors("path: /p\ninputs: {a: 1}\n", "c.yaml:2:9: option 'inputs': expected a list",
                  NULL);
    expect_errors("path: /p\ninputs: [a, {b: 1}, [c]]\n",
                  "c.yaml:2:13: option 'inputs[1]': expected a string, got a mapping",
                  "c.yaml:2:21: option 'inputs[2]': expected a string, got a list", NULL);
    expect_errors("path: /p\ninputs:\n  - a\n  -\n",
                  "c.yaml:4:4: option 'inputs[1]': expected a string, got an empty value", NULL);
    expect_errors("path: /p\nlabels: [a]\n", "c.yaml:2:9: option 'labels': expected a mapping",
                  NULL);
    expect_errors("path: /p\nlabels: x\n", "c.yaml:2:9: option 'labels': expected a mapping", NULL);
    expect_errors("path: /p\nlabels:\n  k: [1]\n",
                  "c.yaml:3:6: option 'labels.k': expected a string, got a list", NULL);
    expect_errors("path: /p\nbuffer: 5\n", "c.yaml:2:9: option 'buffer': expected a mapping", NULL);
    expect_errors("path: /p\nbuffer: [a]\n", "c.yaml:2:9: option 'buffer': expected a mapping",
                  NULL);
    expect_errors("path: /p\nprobes: {url: x}\n", "c.yaml:2:9: option 'probes': expected a list",
                  NULL);
    expect_errors("path: /p\nprobes:\n  - url: a\n  - b\n",
                  "c.yaml:4:5: option 'probes[1]': expected a mapping", NULL);
}

/* A section with an `enabled` option may be written as true or false. */
struct sw_sub {
    bool enabled;
    int64_t level;
};
struct sw_conf {
    struct sw_sub feature;
    struct sw_sub plain;
};
static const struct mars_opt sw_sub_opts[] = {
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = offsetof(struct sw_sub, enabled),
     .def = "true",
     .desc = "On."},
    {.name = "level",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct sw_sub, level),
     .def = "7",
     .desc = "Level."},
    {0},
};
static const struct mars_opt sw_plain_opts[] = {
    {.name = "level",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct sw_sub, level),
     .def = "7",
     .desc = "Level."},
    {0},
};
static const struct mars_opt sw_opts[] = {
    {.name = "feature",
     .type = MARS_OPT_SECTION,
     .offset = offsetof(struct sw_conf, feature),
     .desc = "A switchable section.",
     .sub = sw_sub_opts},
    {.name = "plain",
     .type = MARS_OPT_SECTION,
     .offset = offsetof(struct sw_conf, plain),
     .desc = "A section without enabled.",
     .sub = sw_plain_opts},
    {0},
};

static void test_section_switch(void **state)
{
    (void)state;
    struct sw_conf c;
    struct mars_diag d;
    assert_int_equal(apply_schema(sw_opts, "s.yaml", "feature: true\n", &c, sizeof(c), &d), 0);
    assert_true(c.feature.enabled);
    assert_int_equal(c.feature.level, 7); /* the section's other defaults apply */
    mars_schema_fini(sw_opts, &c);
    mars_diag_fini(&d);
    assert_int_equal(apply_schema(sw_opts, "s.yaml", "feature: off\n", &c, sizeof(c), &d), 0);
    assert_false(c.feature.enabled);
    mars_schema_fini(sw_opts, &c);
    mars_diag_fini(&d);
    assert_int_equal(apply_schema(sw_opts, "s.yaml", "feature: sometimes\n", &c, sizeof(c), &d),
                     -EINVAL);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msgs[0].text, "s.yaml:1:10: option 'feature.enabled'"));
    mars_schema_fini(sw_opts, &c);
    mars_diag_fini(&d);
    /* a section without `enabled` still wants a mapping */
    assert_int_equal(apply_schema(sw_opts, "s.yaml", "plain: true\n", &c, sizeof(c), &d), -EINVAL);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0].text, "s.yaml:1:8: option 'plain': expected a mapping");
    mars_schema_fini(sw_opts, &c);
    mars_diag_fini(&d);
}

static void test_nested_errors(void **state)
{
    (void)state;
    /* Missing required options in a section list item go at the item. */
    expect_errors("path: /p\nprobes:\n  - url: a\n  - interval: 1s\n",
                  "c.yaml:4:5: missing required option 'probes[1].url'", NULL);
    expect_errors("path: /p\nprobes:\n  - url: a\n    bogus: 1\n",
                  "c.yaml:4:5: unknown option 'probes[0].bogus'", NULL);
    expect_errors("path: /p\nbuffer:\n  when_full: drop\n",
                  "c.yaml:3:14: option 'buffer.when_full': \"drop\" is not one of block, "
                  "drop_newest (did you mean 'drop_newest'?)",
                  NULL);
}

static void test_every_error_reported(void **state)
{
    (void)state;
    expect_errors("workers: 0\n"
                  "bogus: 1\n"
                  "enabled: 2\n"
                  "buffer: {max_events: x}\n",
                  "c.yaml:1:10: option 'workers': 0 is below the minimum 1",
                  "c.yaml:2:1: unknown option 'bogus'",
                  "c.yaml:3:10: option 'enabled': expected a boolean (true/false, yes/no, "
                  "on/off), got \"2\"",
                  "c.yaml:4:22: option 'buffer.max_events': expected an integer, got \"x\"",
                  "c.yaml:1:1: missing required option 'path'", NULL);
}

static char *temp_file(const char *content, size_t len)
{
    static char path[64];
    strcpy(path, "/tmp/mars_test_secret_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_secret_files(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;
    char yaml[256], want[256];
    const struct {
        const char *content;
        size_t len;
        const char *want;
    } ok[] = {
        {"hunter2\n", 8, "hunter2"},
        {"hunter2", 7, "hunter2"},
        {"hunter2\r\n", 9, "hunter2"},
        {"two\nlines\n\n", 11, "two\nlines\n"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *path = temp_file(ok[i].content, ok[i].len);
        snprintf(yaml, sizeof(yaml), "path: /p\npassword_file: %s\n", path);
        assert_int_equal(apply_yaml(yaml, &c, &d), 0);
        assert_string_equal(c.password, ok[i].want);
        mars_schema_fini(conf_opts, &c);
        mars_diag_fini(&d);
        unlink(path);
    }

    /* A secret in a section list item. */
    char *path = temp_file("tok\n", 4);
    snprintf(yaml, sizeof(yaml), "path: /p\nprobes:\n  - url: u\n    token_file: %s\n", path);
    assert_int_equal(apply_yaml(yaml, &c, &d), 0);
    assert_string_equal(((struct probe *)c.probes.items)[0].token, "tok");
    mars_schema_fini(conf_opts, &c);
    mars_diag_fini(&d);

    /* Both forms: an error at whichever comes second. */
    snprintf(yaml, sizeof(yaml), "path: /p\npassword: x\npassword_file: %s\n", path);
    expect_errors(yaml, "c.yaml:3:1: options 'password' and 'password_file' are both set (use one)",
                  NULL);
    snprintf(yaml, sizeof(yaml), "path: /p\npassword_file: %s\npassword: x\n", path);
    expect_errors(yaml, "c.yaml:3:1: options 'password' and 'password_file' are both set (use one)",
                  NULL);
    unlink(path);

    /* Unreadable file, NUL byte, too large, wrong kind. */
    expect_errors("path: /p\npassword_file: /nonexistent/secret\n",
                  "c.yaml:2:16: option 'password_file': cannot read \"/nonexistent/secret\": No "
                  "such file or directory",
                  NULL);
    path = temp_file("a\0b", 3);
    snprintf(yaml, sizeof(yaml), "path: /p\npassword_file: %s\n", path);
    snprintf(want, sizeof(want),
             "c.yaml:2:16: option 'password_file': cannot read \"%s\": file contains a NUL byte",
             path);
    expect_errors(yaml, want, NULL);
    unlink(path);
    size_t big = (1u << 20) + 1;
    char *content = calloc(1, big);
    memset(content, 'x', big);
    path = temp_file(content, big);
    free(content);
    snprintf(yaml, sizeof(yaml), "path: /p\npassword_file: %s\n", path);
    snprintf(want, sizeof(want),
             "c.yaml:2:16: option 'password_file': cannot read \"%s\": file is larger than 1 MiB",
             path);
    expect_errors(yaml, want, NULL);
    unlink(path);
    expect_errors("path: /p\npassword_file: [a]\n",
                  "c.yaml:2:16: option 'password_file': expected a file path, got a list", NULL);
    expect_errors("path: /p\nprobes:\n  - url: u\n    token_file: /nonexistent/t\n",
                  "c.yaml:4:17: option 'probes[0].token_file': cannot read \"/nonexistent/t\": "
                  "No such file or directory",
                  NULL);
}

/* ---- defaults that do not parse are reported at <schema> ------------------------------ */

struct bad_conf {
    uint64_t size;
    int64_t dur;
    int64_t i;
    int e;
    bool b;
    struct mars_strlist l;
};

static const struct mars_opt bad_opts[] = {
    {.name = "size",
     .type = MARS_OPT_SIZE,
     .offset = offsetof(struct bad_conf, size),
     .def = "12XB",
     .desc = "x"},
    {.name = "dur",
     .type = MARS_OPT_DURATION,
     .offset = offsetof(struct bad_conf, dur),
     .def = "5",
     .desc = "x"},
    {.name = "i",
     .type = MARS_OPT_INT,
     .offset = offsetof(struct bad_conf, i),
     .def = "300",
     .desc = "x",
     .min = 1,
     .max = 10},
    {.name = "e",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct bad_conf, e),
     .def = "nope",
     .desc = "x",
     .choices = full_choices},
    {.name = "b",
     .type = MARS_OPT_BOOL,
     .offset = offsetof(struct bad_conf, b),
     .def = "ja",
     .desc = "x"},
    {.name = "l",
     .type = MARS_OPT_LIST,
     .offset = offsetof(struct bad_conf, l),
     .def = "[a, ",
     .desc = "x"},
    {0},
};

static void test_bad_defaults(void **state)
{
    (void)state;
    struct mars_diag d;
    struct bad_conf b = {0};

    mars_diag_init(&d);
    assert_int_equal(mars_schema_apply(bad_opts, NULL, &b, NULL, &d), -EINVAL);
    const char *want[] = {
        "<schema>: option 'size': invalid size \"12XB\": unknown unit (use B, KB, MB, GB, KiB, "
        "MiB, GiB, TiB)",
        "<schema>: option 'dur': invalid duration \"5\": missing unit (use ns, us, ms, s, m, h, "
        "d)",
        "<schema>: option 'i': 300 is above the maximum 10",
        "<schema>: option 'e': \"nope\" is not one of block, drop_newest",
        "<schema>: option 'b': expected a boolean (true/false, yes/no, on/off), got \"ja\"",
        "<schema>:2:1: did not find expected node content (while parsing a flow node)",
        "<schema>: option 'l': invalid default \"[a, \"",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (i >= d.n || strcmp(d.msgs[i].text, want[i]) != 0) {
            mars_diag_print(&d, stderr);
            fail_msg("want \"%s\"", want[i]);
        }
    }
    assert_int_equal(d.n, sizeof(want) / sizeof(want[0]));
    mars_schema_fini(bad_opts, &b);
    mars_diag_fini(&d);
}

/* ---- describe ------------------------------------------------------------------------- */

static char *describe(const struct mars_opt *schema, const char *prefix,
                      enum mars_describe_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mars_schema_describe(schema, prefix, fmt, f);
    fclose(f);
    return buf;
}

static const char *const mode_choices[] = {"a|b", "c", NULL};

struct small {
    char *endpoint;
    char *token;
    int mode;
    struct buf_conf buffer;
    struct mars_seclist probes;
    char *quiet;
};

static const struct mars_opt small_opts[] = {
    {.name = "endpoint",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct small, endpoint),
     .desc = "Where to send.",
     .flags = MARS_OPT_REQUIRED},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = offsetof(struct small, token),
     .def = "dont-print-me",
     .desc = "API token."},
    {.name = "mode",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct small, mode),
     .def = "c",
     .desc = "Mode | with a pipe.",
     .choices = mode_choices},
    {.name = "buffer",
     .type = MARS_OPT_SECTION,
     .offset = offsetof(struct small, buffer),
     .desc = "Buffer.",
     .sub = buf_opts},
    {.name = "probes",
     .type = MARS_OPT_SECTION_LIST,
     .offset = offsetof(struct small, probes),
     .desc = "Probes.",
     .sub = probe_opts,
     .sub_size = sizeof(struct probe)},
    {.name = "quiet",
     .type = MARS_OPT_STRING,
     .offset = offsetof(struct small, quiet),
     .def = "",
     .desc = ""},
    {0},
};

static void test_describe_text(void **state)
{
    (void)state;
    char *out = describe(small_opts, NULL, MARS_DESCRIBE_TEXT);
    assert_string_equal(
        out,
        "OPTION               TYPE                     DEFAULT   DESCRIPTION\n"
        "endpoint             string                   required  Where to send.\n"
        "token                secret                   (hidden)  API token.\n"
        "token_file           string                   -         File to read 'token' from, "
        "instead of writing it here.\n"
        "mode                 enum(a|b|c)              c         Mode | with a pipe.\n"
        "buffer               section                  -         Buffer.\n"
        "buffer.max_events    int(1..1000000)          1000      Events held before the buffer "
        "is full.\n"
        "buffer.max_size      size(1KiB..1GiB)         64MiB     Bytes held before the buffer is "
        "full.\n"
        "buffer.when_full     enum(block|drop_newest)  block     What to do when full.\n"
        "probes               list of sections         -         Probes.\n"
        "probes[].url         string                   required  URL to probe.\n"
        "probes[].interval    duration(1ms..1h)        10s       Time between probes.\n"
        "probes[].token       secret                   -         Bearer token.\n"
        "probes[].token_file  string                   -         File to read 'token' from, "
        "instead of writing it here.\n"
        "quiet                string                   \"\"\n");
    assert_null(strstr(out, "dont-print-me"));
    free(out);

    out = describe(buf_opts, "sinks.es.buffer", MARS_DESCRIBE_TEXT);
    assert_string_equal(
        out, "OPTION                      TYPE                     DEFAULT  DESCRIPTION\n"
             "sinks.es.buffer.max_events  int(1..1000000)          1000     Events "
             "held before the buffer is full.\n"
             "sinks.es.buffer.max_size    size(1KiB..1GiB)         64MiB    Bytes held "
             "before the buffer is full.\n"
             "sinks.es.buffer.when_full   enum(block|drop_newest)  block    What to do "
             "when full.\n");
    free(out);
}

static void test_describe_markdown(void **state)
{
    (void)state;
    char *out = describe(small_opts, NULL, MARS_DESCRIBE_MARKDOWN);
    assert_string_equal(
        out,
        "| option | type | default | description |\n"
        "| --- | --- | --- | --- |\n"
        "| `endpoint` | string | required | Where to send. |\n"
        "| `token` | secret | (hidden) | API token. |\n"
        "| `token_file` | string | - | File to read 'token' from, instead of writing it "
        "here. |\n"
        "| `mode` | enum(a\\|b\\|c) | `c` | Mode \\| with a pipe. |\n"
        "| `buffer` | section | - | Buffer. |\n"
        "| `buffer.max_events` | int(1..1000000) | `1000` | Events held before the buffer is "
        "full. |\n"
        "| `buffer.max_size` | size(1KiB..1GiB) | `64MiB` | Bytes held before the buffer is "
        "full. |\n"
        "| `buffer.when_full` | enum(block\\|drop_newest) | `block` | What to do when full. |\n"
        "| `probes` | list of sections | - | Probes. |\n"
        "| `probes[].url` | string | required | URL to probe. |\n"
        "| `probes[].interval` | duration(1ms..1h) | `10s` | Time between probes. |\n"
        "| `probes[].token` | secret | - | Bearer token. |\n"
        "| `probes[].token_file` | string | - | File to read 'token' from, instead of "
        "writing it here. |\n"
        "| `quiet` | string | `\"\"` |  |\n");
    free(out);
}

static void test_type_names(void **state)
{
    (void)state;
    const char *want[] = {"string",  "secret",           "int",  "float",       "bool",
                          "size",    "duration",         "enum", "list",        "map",
                          "section", "list of sections", "url",  "list of urls"};
    for (int t = MARS_OPT_STRING; t <= MARS_OPT_URL_LIST; t++)
        assert_string_equal(mars_opt_type_name((enum mars_opt_type)t), want[t]);
    assert_string_equal(mars_opt_type_name((enum mars_opt_type)99), "?");
}

struct url_conf {
    char *url;
    struct mars_strlist urls;
};

static const struct mars_opt url_opts[] = {
    {.name = "url",
     .type = MARS_OPT_URL,
     .offset = offsetof(struct url_conf, url),
     .desc = "A URL."},
    {.name = "urls",
     .type = MARS_OPT_URL_LIST,
     .offset = offsetof(struct url_conf, urls),
     .def = "[http://a]",
     .desc = "URLs."},
    {0},
};

/* url_opts applied to yaml loaded as "u.yaml". */
static int apply_urls(const char *yaml, struct url_conf *c, struct mars_diag *d)
{
    return apply_schema(url_opts, "u.yaml", yaml, c, sizeof(*c), d);
}

static void test_urls(void **state)
{
    (void)state;
    struct url_conf c;
    struct mars_diag d;
    assert_int_equal(apply_urls("url: https://h:1/p\nurls: [http://x, https://y]\n", &c, &d), 0);
    assert_string_equal(c.url, "https://h:1/p");
    assert_int_equal(c.urls.n, 2);
    assert_string_equal(c.urls.v[1], "https://y");
    mars_schema_fini(url_opts, &c);
    mars_diag_fini(&d);
    /* the default list, and an empty URL left unset as `${VAR:-}` gives it */
    assert_int_equal(apply_urls("url: \"\"\n", &c, &d), 0);
    assert_null(c.url);
    assert_int_equal(c.urls.n, 1);
    assert_string_equal(c.urls.v[0], "http://a");
    mars_schema_fini(url_opts, &c);
    mars_diag_fini(&d);
    /* each bad one at its own position; the scheme is matched as written */
    assert_int_equal(apply_urls("url: ftp://h\nurls: [http://x, HTTP://y, \"\"]\n", &c, &d),
                     -EINVAL);
    assert_int_equal(d.n, 3);
    assert_string_equal(
        d.msgs[0].text,
        "u.yaml:1:6: option 'url': \"ftp://h\" must start with http:// or https://");
    assert_string_equal(d.msgs[1].text, "u.yaml:2:18: option 'urls[1]': \"HTTP://y\" must start "
                                        "with http:// or https://");
    assert_string_equal(d.msgs[2].text,
                        "u.yaml:2:28: option 'urls[2]': \"\" must start with http:// or https://");
    mars_schema_fini(url_opts, &c);
    mars_diag_fini(&d);
}

static void test_reapply_after_free(void **state)
{
    (void)state;
    struct mars_diag d;
    struct conf c;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(apply_yaml("path: /p\ninputs: [a]\nprobes: [{url: u}]\n", &c, &d), 0);
        mars_schema_fini(conf_opts, &c);
        mars_diag_fini(&d);
    }
    /* Partial results after errors are freeable too. */
    assert_int_equal(apply_yaml("path: [x]\ninputs: [a, [b], c]\nlabels: {a: b, c: [d]}\n"
                                "probes: [{url: u, interval: x}, 5]\n",
                                &c, &d),
                     -EINVAL);
    mars_schema_fini(conf_opts, &c);
    assert_zeroed(&c, sizeof(c));
    mars_diag_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_values),
        cmocka_unit_test(test_empty_values_are_unset),
        cmocka_unit_test(test_null_map_and_wrong_root),
        cmocka_unit_test(test_unknown_options),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_long_values_are_cut_in_messages),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_nested_errors),
        cmocka_unit_test(test_section_switch),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_bad_defaults),
        cmocka_unit_test(test_describe_text),
        cmocka_unit_test(test_describe_markdown),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_reapply_after_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
