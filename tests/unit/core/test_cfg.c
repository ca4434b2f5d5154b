/*
 * test_cfg.c - the config tree (src/core/cfg.c) and diagnostics (src/core/diag.c):
 * structure and positions, null/quoted scalars, interpolation, every rejected construct
 * with its exact FILE:LINE:COL message, libyaml syntax and encoding errors, garbage input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/diag.h"

static struct mars_cfg_doc *load(const char *yaml, struct mars_diag *d)
{
    mars_diag_init(d);
    return mars_cfg_load_string("t.yaml", yaml, strlen(yaml), d);
}

static void assert_diag(const struct mars_diag *d, const char *want)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->msgs[i].text, want) == 0)
            return;
    }
    mars_diag_print(d, stderr);
    fail_msg("expected diagnostic not found: %s", want);
}

/* Loading must fail with exactly these messages (NULL-terminated), in order. */
static void expect_errors(const char *yaml, ...)
{
    struct mars_diag d;
    struct mars_cfg_doc *doc = load(yaml, &d);
    va_list ap;
    size_t n = 0;

    assert_null(doc);
    va_start(ap, yaml);
    for (const char *want; (want = va_arg(ap, const char *)); n++) {
        if (n >= d.n || strcmp(d.msgs[n].text, want) != 0) {
            mars_diag_print(&d, stderr);
            fail_msg("diagnostic %zu: want \"%s\"", n, want);
        }
    }
    va_end(ap);
    assert_int_equal(d.n, n);
    mars_diag_fini(&d);
}

static void test_structure_and_positions(void **state)
{
    (void)state;
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("a: 1\n"
                                    "list: [x, 'y']\n"
                                    "nested:\n"
                                    "  key: value\n"
                                    "  seq:\n"
                                    "    - one\n"
                                    "    - two\n",
                                    &d);
    assert_non_null(doc);
    assert_int_equal(d.n, 0);
    const struct mars_cfg_node *root = doc->root;
    assert_int_equal(root->kind, MARS_CFG_MAP);
    assert_int_equal(root->n, 3);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->col, 1);
    assert_string_equal(root->file, "t.yaml");
    assert_string_equal(doc->file, "t.yaml");

    const struct mars_cfg_node *a = mars_cfg_get(root, "a");
    assert_int_equal(a->kind, MARS_CFG_SCALAR);
    assert_string_equal(a->str, "1");
    assert_int_equal(a->len, 1);
    assert_false(a->quoted);
    assert_int_equal(a->line, 1);
    assert_int_equal(a->col, 4);

    const struct mars_cfg_node *list = mars_cfg_get(root, "list");
    assert_int_equal(list->kind, MARS_CFG_SEQ);
    assert_int_equal(list->n, 2);
    assert_null(list->keys);
    assert_string_equal(list->vals[0]->str, "x");
    assert_string_equal(list->vals[1]->str, "y");
    assert_true(list->vals[1]->quoted);
    assert_int_equal(list->vals[1]->line, 2);
    assert_int_equal(list->vals[1]->col, 11);

    const struct mars_cfg_node *nested = mars_cfg_get(root, "nested");
    assert_int_equal(nested->kind, MARS_CFG_MAP);
    assert_int_equal(nested->line, 4);
    assert_int_equal(nested->col, 3);
    const struct mars_cfg_node *key = mars_cfg_get_key(nested, "seq");
    assert_int_equal(key->line, 5);
    assert_int_equal(key->col, 3);
    const struct mars_cfg_node *seq = mars_cfg_get(nested, "seq");
    assert_int_equal(seq->n, 2);
    assert_string_equal(seq->vals[1]->str, "two");
    assert_int_equal(seq->vals[1]->line, 7);
    assert_int_equal(seq->vals[1]->col, 7);

    /* Keys are kept in file order. */
    assert_string_equal(root->keys[0]->str, "a");
    assert_string_equal(root->keys[1]->str, "list");
    assert_string_equal(root->keys[2]->str, "nested");

    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

static void test_lookups(void **state)
{
    (void)state;
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("a: 1\nb: [1]\n", &d);
    assert_non_null(doc);
    assert_null(mars_cfg_get(doc->root, "c"));
    assert_null(mars_cfg_get_key(doc->root, "c"));
    assert_null(mars_cfg_get(NULL, "a"));
    assert_null(mars_cfg_get(mars_cfg_get(doc->root, "b"), "a")); /* not a MAP */
    assert_null(mars_cfg_get(doc->root, ""));                     /* no prefix matches */
    assert_string_equal(mars_cfg_kind_name(MARS_CFG_NULL), "null");
    assert_string_equal(mars_cfg_kind_name(MARS_CFG_SCALAR), "scalar");
    assert_string_equal(mars_cfg_kind_name(MARS_CFG_MAP), "mapping");
    assert_string_equal(mars_cfg_kind_name(MARS_CFG_SEQ), "list");
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

/* The node at (line, col), checked. */
static void assert_at(const struct mars_cfg_node *n, int line, int col)
{
    assert_non_null(n);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void test_diagnostic_nodes(void **state)
{
    (void)state;
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("opt: 1\n"
                                    "list: [a, b]\n"
                                    "map:\n"
                                    "  k: v\n"
                                    "  sub: {x: 1}\n",
                                    &d);
    assert_non_null(doc);
    const struct mars_cfg_node *root = doc->root;
    assert_at(mars_cfg_at(root, "opt", NULL), 1, 6);
    assert_ptr_equal(mars_cfg_at(root, "absent", NULL), root); /* a default: the mapping */
    assert_null(mars_cfg_at(NULL, "opt", NULL));
    assert_at(mars_cfg_at(root, "map", "k"), 4, 6);   /* a scalar entry: its value */
    assert_at(mars_cfg_at(root, "map", "sub"), 5, 3); /* not a scalar: its key */
    assert_at(mars_cfg_at(root, "map", "no"), 4, 3);  /* no such entry: the option */
    assert_at(mars_cfg_item_at(root, "list", 1), 2, 11);
    assert_at(mars_cfg_item_at(root, "list", 2), 2, 7); /* past the end: the list */
    assert_at(mars_cfg_item_at(root, "opt", 0), 1, 6);  /* not a list: the option */
    assert_ptr_equal(mars_cfg_item_at(root, "absent", 0), root);
    assert_at(mars_cfg_key_at(root, "map", "k"), 4, 3);
    assert_at(mars_cfg_key_at(root, "map", "no"), 4, 3);
    assert_ptr_equal(mars_cfg_key_at(root, "absent", "k"), root);
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

static void test_null_and_quoted_scalars(void **state)
{
    (void)state;
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("empty:\n"
                                    "tilde: ~\n"
                                    "null1: null\n"
                                    "null2: NULL\n"
                                    "qnull: 'null'\n"
                                    "qempty: \"\"\n"
                                    "qtrue: \"true\"\n"
                                    "block: |\n"
                                    "  line1\n"
                                    "  line2\n"
                                    "~: tilde-key\n",
                                    &d);
    assert_non_null(doc);
    const struct mars_cfg_node *r = doc->root;
    assert_int_equal(mars_cfg_get(r, "empty")->kind, MARS_CFG_NULL);
    assert_int_equal(mars_cfg_get(r, "tilde")->kind, MARS_CFG_NULL);
    assert_int_equal(mars_cfg_get(r, "null1")->kind, MARS_CFG_NULL);
    assert_int_equal(mars_cfg_get(r, "null2")->kind, MARS_CFG_NULL);
    assert_null(mars_cfg_get(r, "tilde")->str);
    const struct mars_cfg_node *q = mars_cfg_get(r, "qnull");
    assert_int_equal(q->kind, MARS_CFG_SCALAR);
    assert_string_equal(q->str, "null");
    assert_true(q->quoted);
    q = mars_cfg_get(r, "qempty");
    assert_int_equal(q->kind, MARS_CFG_SCALAR);
    assert_int_equal(q->len, 0);
    assert_true(mars_cfg_get(r, "qtrue")->quoted);
    q = mars_cfg_get(r, "block");
    assert_string_equal(q->str, "line1\nline2\n");
    assert_true(q->quoted);
    /* Keys are never null nodes. */
    assert_string_equal(mars_cfg_get(r, "~")->str, "tilde-key");
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

static void test_empty_documents(void **state)
{
    (void)state;
    const char *empties[] = {"", "# only a comment\n", "\n\n", "---\n", "~\n", "--- ~\n...\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        struct mars_diag d;
        struct mars_cfg_doc *doc = load(empties[i], &d);
        assert_non_null(doc);
        assert_null(doc->root);
        assert_int_equal(d.n, 0);
        mars_cfg_doc_destroy(doc);
        mars_diag_fini(&d);
    }
    /* A NULL text with length 0 is an empty document too. */
    struct mars_diag d;
    mars_diag_init(&d);
    struct mars_cfg_doc *doc = mars_cfg_load_string(NULL, NULL, 0, &d);
    assert_non_null(doc);
    assert_null(doc->root);
    assert_string_equal(doc->file, "<config>");
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
    mars_cfg_doc_destroy(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mars_test_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "a:\n  b: c\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    struct mars_diag d;
    mars_diag_init(&d);
    struct mars_cfg_doc *doc = mars_cfg_load_file(path, &d);
    assert_non_null(doc);
    const struct mars_cfg_node *b = mars_cfg_get(mars_cfg_get(doc->root, "a"), "b");
    assert_string_equal(b->str, "c");
    assert_string_equal(b->file, path);
    mars_cfg_doc_destroy(doc);

    /* Errors carry the path. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a: [\n", 5), 5);
    close(fd);
    assert_null(mars_cfg_load_file(path, &d));
    char want[128];
    snprintf(want, sizeof(want),
             "%s:2:1: did not find expected node content (while parsing a flow node)", path);
    assert_diag(&d, want);
    unlink(path);
    mars_diag_fini(&d);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct mars_diag d;
    mars_diag_init(&d);
    assert_null(mars_cfg_load_file("/nonexistent/mars.yaml", &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0].text,
                        "/nonexistent/mars.yaml: cannot open: No such file or directory");
    assert_null(mars_cfg_load_file("/tmp", &d));
    assert_string_equal(d.msgs[1].text, "/tmp: cannot read: Is a directory");

    /* A sparse file just over the 64 MiB limit. */
    char path[] = "/tmp/mars_test_cfg_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (64 << 20) + 1), 0);
    close(fd);
    assert_null(mars_cfg_load_file(path, &d));
    char want[128];
    snprintf(want, sizeof(want), "%s: cannot read: file is larger than 64 MiB", path);
    assert_string_equal(d.msgs[2].text, want);
    unlink(path);
    mars_diag_fini(&d);
}

static void test_interpolation(void **state)
{
    (void)state;
    setenv("MARS_T_HOST", "es.local", 1);
    setenv("MARS_T_EMPTY", "", 1);
    unsetenv("MARS_T_UNSET");
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("plain: http://${MARS_T_HOST}:9200/\n"
                                    "quoted: '${MARS_T_HOST}'\n"
                                    "dflt: ${MARS_T_UNSET:-fallback value}\n"
                                    "dflt_set: ${MARS_T_HOST:-x}\n"
                                    "dflt_empty: ${MARS_T_EMPTY:-used}\n"
                                    "empty_ok: a${MARS_T_EMPTY}b\n"
                                    "empty_dflt: ${MARS_T_UNSET:-}\n"
                                    "dollars: cost $$5 and $$${MARS_T_HOST}\n"
                                    "lone: $ and $x and a$\n"
                                    "two: ${MARS_T_HOST}/${MARS_T_HOST}\n"
                                    "list: [\"${MARS_T_HOST}\"]\n" /* flow context needs quotes */
                                    "${MARS_T_HOST}: key-not-expanded\n",
                                    &d);
    assert_non_null(doc);
    const struct mars_cfg_node *r = doc->root;
    assert_string_equal(mars_cfg_get(r, "plain")->str, "http://es.local:9200/");
    assert_string_equal(mars_cfg_get(r, "quoted")->str, "es.local");
    assert_string_equal(mars_cfg_get(r, "dflt")->str, "fallback value");
    assert_string_equal(mars_cfg_get(r, "dflt_set")->str, "es.local");
    assert_string_equal(mars_cfg_get(r, "dflt_empty")->str, "used");
    assert_string_equal(mars_cfg_get(r, "empty_ok")->str, "ab");
    const struct mars_cfg_node *e = mars_cfg_get(r, "empty_dflt");
    assert_int_equal(e->kind, MARS_CFG_SCALAR);
    assert_int_equal(e->len, 0);
    assert_string_equal(mars_cfg_get(r, "dollars")->str, "cost $5 and $es.local");
    assert_string_equal(mars_cfg_get(r, "lone")->str, "$ and $x and a$");
    assert_string_equal(mars_cfg_get(r, "two")->str, "es.local/es.local");
    assert_string_equal(mars_cfg_get(r, "list")->vals[0]->str, "es.local");
    assert_string_equal(mars_cfg_get(r, "${MARS_T_HOST}")->str, "key-not-expanded");
    assert_int_equal(mars_cfg_get(r, "plain")->len, strlen("http://es.local:9200/"));
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

static void test_interpolation_errors(void **state)
{
    (void)state;
    unsetenv("MARS_T_UNSET");
    expect_errors("a: 1\nb: x-${MARS_T_UNSET}\n",
                  "t.yaml:2:4: environment variable MARS_T_UNSET is not set "
                  "(use ${MARS_T_UNSET:-default} for a default)",
                  NULL);
    expect_errors("a: ${MARS_T_UNSET\n",
                  "t.yaml:1:4: unterminated ${ in value (expected '}'; write $$ for a literal $)",
                  NULL);
    expect_errors("a: \"${}\"\n",
                  "t.yaml:1:4: invalid environment variable name \"\" in ${...} (use letters, "
                  "digits and _; write $$ for a literal $)",
                  NULL);
    expect_errors("- ${1ABC}\n- ${A-B:-x}\n",
                  "t.yaml:1:3: invalid environment variable name \"1ABC\" in ${...} (use "
                  "letters, digits and _; write $$ for a literal $)",
                  "t.yaml:2:3: invalid environment variable name \"A-B\" in ${...} (use "
                  "letters, digits and _; write $$ for a literal $)",
                  NULL);
    /* Every bad value is reported, not just the first. */
    expect_errors("a: ${MARS_T_UNSET}\nb: ${MARS_T_UNSET}\n",
                  "t.yaml:1:4: environment variable MARS_T_UNSET is not set "
                  "(use ${MARS_T_UNSET:-default} for a default)",
                  "t.yaml:2:4: environment variable MARS_T_UNSET is not set "
                  "(use ${MARS_T_UNSET:-default} for a default)",
                  NULL);
}

static void test_anchors_and_aliases(void **state)
{
    (void)state;
    expect_errors("a: &x 1\nb: 2\n", "t.yaml:1:4: YAML anchors are not supported (&x)", NULL);
    expect_errors("base: &b {x: 1}\n", "t.yaml:1:7: YAML anchors are not supported (&b)", NULL);
    expect_errors("l: &s [1]\n", "t.yaml:1:4: YAML anchors are not supported (&s)", NULL);
    expect_errors("a: &x 1\nb: *x\n", "t.yaml:1:4: YAML anchors are not supported (&x)",
                  "t.yaml:2:4: YAML aliases are not supported (*x)", NULL);
    expect_errors("a: &x {k: v}\nb:\n  <<: *x\n", "t.yaml:1:4: YAML anchors are not supported (&x)",
                  "t.yaml:3:7: YAML aliases are not supported (*x)", NULL);
    /* An alias used as a key is reported once. */
    expect_errors("a: &k x\n*k : 1\n", "t.yaml:1:4: YAML anchors are not supported (&k)",
                  "t.yaml:2:1: YAML aliases are not supported (*k)", NULL);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_errors("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first defined at line 1)",
                  NULL);
    /* Reported in file order, each pointing at the first definition. */
    expect_errors("a: 1\nb: 2\na: 3\nb: 4\na: 5\n",
                  "t.yaml:3:1: duplicate key 'a' (first defined at line 1)",
                  "t.yaml:4:1: duplicate key 'b' (first defined at line 2)",
                  "t.yaml:5:1: duplicate key 'a' (first defined at line 1)", NULL);
    expect_errors("outer:\n  k: 1\n  k: 2\n",
                  "t.yaml:3:3: duplicate key 'k' (first defined at line 2)", NULL);
    expect_errors("{x: 1, y: 2, x: 3}", "t.yaml:1:14: duplicate key 'x' (first defined at line 1)",
                  NULL);
    /* Same key in different maps is fine; quoting does not make a key different. */
    struct mars_diag d;
    struct mars_cfg_doc *doc = load("a: {k: 1}\nb: {k: 2}\n", &d);
    assert_non_null(doc);
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
    expect_errors("k: 1\n'k': 2\n", "t.yaml:2:1: duplicate key 'k' (first defined at line 1)",
                  NULL);
}

static void test_duplicate_keys_large_map(void **state)
{
    (void)state;
    size_t cap = 4000 * 16, at = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    for (int i = 0; i < 4000; i++)
        at += (size_t)snprintf(yaml + at, cap - at, "k%d: %d\n", i % 3999, i);
    struct mars_diag d;
    assert_null(load(yaml, &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0].text,
                        "t.yaml:4000:1: duplicate key 'k0' (first defined at line 1)");
    mars_diag_fini(&d);
    free(yaml);
}

static void test_non_scalar_keys(void **state)
{
    (void)state;
    expect_errors("? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be plain strings, not a list",
                  NULL);
    expect_errors("{[a]: 1, {b: 2}: 3, c: 4}",
                  "t.yaml:1:2: mapping keys must be plain strings, not a list",
                  "t.yaml:1:10: mapping keys must be plain strings, not a mapping", NULL);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_errors("a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context", NULL);
    expect_errors("a: 1\n b: 2\n", "t.yaml:2:3: mapping values are not allowed in this context",
                  NULL);
    expect_errors("a: [1, 2\n",
                  "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence "
                  "at line 1, column 4)",
                  NULL);
    expect_errors("a: \"unterminated\n",
                  "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar "
                  "at line 1, column 4)",
                  NULL);
    expect_errors("a:\n\tb: 1\n",
                  "t.yaml:2:1: found character that cannot start any token (while scanning "
                  "for the next token); tabs are not allowed for indentation, use spaces",
                  NULL);
    expect_errors("gen: {type: demo, count: ${N}}\n",
                  "t.yaml:1:27: did not find expected ',' or '}' (while parsing a flow mapping at "
                  "line 1, column 6); inside [...] or {...}, put values that use ${...} in quotes",
                  NULL);
    expect_errors("a: @x\n",
                  "t.yaml:1:4: found character that cannot start any token (while scanning "
                  "for the next token)",
                  NULL);
    expect_errors("key: - a\n",
                  "t.yaml:1:6: block sequence entries are not allowed in this context", NULL);
    expect_errors("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document per file is supported",
                  NULL);
    /* Errors found before a syntax error are kept. */
    expect_errors("a: &x 1\nb: [\n", "t.yaml:1:4: YAML anchors are not supported (&x)",
                  "t.yaml:3:1: did not find expected node content (while parsing a flow node)",
                  NULL);
}

static void test_encoding_errors(void **state)
{
    (void)state;
    struct mars_diag d;
    mars_diag_init(&d);
    assert_null(mars_cfg_load_string("t.yaml", "a: b\0c\n", 7, &d));
    assert_diag(&d, "t.yaml:1:5: control characters are not allowed (byte 0x00)");
    mars_diag_fini(&d);
    expect_errors("a: 1\nb: \xc3\x28\n", "t.yaml:2:5: invalid trailing UTF-8 octet (byte 0x28)",
                  NULL);
    expect_errors("\xff\xfe\x41\x00", "t.yaml:1:1: invalid leading UTF-8 octet (byte 0xff)", NULL);
    expect_errors("a: \x01\n", "t.yaml:1:4: control characters are not allowed (byte 0x01)", NULL);
    /* Valid UTF-8 and a byte order mark are fine. */
    struct mars_cfg_doc *doc = load("\xef\xbb\xbfname: caf\xc3\xa9\n", &d);
    assert_non_null(doc);
    assert_string_equal(mars_cfg_get(doc->root, "name")->str, "caf\xc3\xa9");
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

/* Deterministic pseudo-random garbage: never a crash, always a clear outcome. */
static void test_binary_garbage(void **state)
{
    (void)state;
    uint32_t x = 12345;
    char buf[512];
    static const char alphabet[] = "{}[]:,-?&*!|>'\"%@`#\n\t ab1$\\~";

    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(round % 500) + 1;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            /* Half the rounds raw bytes, half YAML punctuation soup. */
            buf[i] = round % 2 ? (char)(x >> 16) : alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
        }
        struct mars_diag d;
        mars_diag_init(&d);
        struct mars_cfg_doc *doc = mars_cfg_load_string("g.yaml", buf, len, &d);
        if (doc)
            assert_int_equal(d.n, 0);
        else
            assert_true(d.n > 0);
        for (size_t i = 0; i < d.n; i++)
            assert_true(strncmp(d.msgs[i].text, "g.yaml", 6) == 0);
        mars_cfg_doc_destroy(doc);
        mars_diag_fini(&d);
    }
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 5000;
    char *yaml = malloc(depth * 2 + 1);
    assert_non_null(yaml);
    memset(yaml, '[', depth);
    memset(yaml + depth, ']', depth);
    yaml[depth * 2] = '\0';
    struct mars_diag d;
    assert_null(load(yaml, &d));
    assert_diag(&d, "t.yaml:1:129: nesting is too deep (more than 128 levels)");
    assert_int_equal(d.n, 1);
    mars_diag_fini(&d);
    free(yaml);

    /* 100 levels are fine. */
    char ok[201];
    memset(ok, '[', 100);
    memset(ok + 100, ']', 100);
    ok[200] = '\0';
    struct mars_cfg_doc *doc = load(ok, &d);
    assert_non_null(doc);
    mars_cfg_doc_destroy(doc);
    mars_diag_fini(&d);
}

static void test_diag_format_and_limit(void **state)
{
    (void)state;
    struct mars_diag d;
    mars_diag_init(&d);
    mars_diag_add(&d, "f.yaml", 3, 7, "bad %s", "thing");
    mars_diag_add(&d, NULL, 0, 0, "no position");
    mars_diag_add(&d, "f.yaml", 4, 0, "line only");
    mars_diag_add(&d, "f.yaml", 0, 9, "column without line");
    assert_int_equal(mars_diag_count(&d), 4);
    assert_string_equal(d.msgs[0].text, "f.yaml:3:7: bad thing");
    assert_string_equal(d.msgs[1].text, "<config>: no position");
    assert_string_equal(d.msgs[2].text, "f.yaml:4: line only");
    assert_string_equal(d.msgs[3].text, "f.yaml: column without line");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mars_diag_print(&d, f);
    fclose(f);
    assert_string_equal(buf, "f.yaml:3:7: bad thing\n<config>: no position\nf.yaml:4: line only\n"
                             "f.yaml: column without line\n");
    free(buf);
    mars_diag_fini(&d);
    assert_int_equal(mars_diag_count(&d), 0);

    /* Default cap of 50, the rest counted and summed up, and a custom cap. */
    mars_diag_init(&d);
    for (int i = 0; i < 250; i++)
        mars_diag_add(&d, "f", i + 1, 1, "e%d", i);
    assert_int_equal(mars_diag_count(&d), 50);
    assert_int_equal(mars_diag_total(&d), 250);
    assert_string_equal(d.msgs[49].text, "f:50:1: e49");
    f = open_memstream(&buf, &len);
    mars_diag_print(&d, f);
    fclose(f);
    assert_non_null(strstr(buf, "f:50:1: e49\n(200 more problems not shown)\n"));
    free(buf);
    mars_diag_fini(&d);
    mars_diag_init(&d);
    d.max = 3;
    for (int i = 0; i < 10; i++)
        mars_diag_add(&d, "f", 1, 1, "e");
    assert_int_equal(mars_diag_count(&d), 3);
    mars_diag_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure_and_positions),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_diagnostic_nodes),
        cmocka_unit_test(test_null_and_quoted_scalars),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_interpolation_errors),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_duplicate_keys_large_map),
        cmocka_unit_test(test_non_scalar_keys),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_encoding_errors),
        cmocka_unit_test(test_binary_garbage),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_diag_format_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
