/*
 * Unit tests of the elasticsearch sink's bulk protocol (elasticsearch_bulk.c): walking bulk
 * responses (full, filter_path-shaped, errors:false, malformed), classifying item and
 * request statuses, action lines with escaping, generated ids, and the bulk URL.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sinks/elasticsearch_internal.h"

struct seen {
    int status[16];
    char etype[16][48];
    uint32_t n;
};

static void collect(void *ctx, uint32_t i, const struct mars_elasticsearch_item *it)
{
    struct seen *s = ctx;
    assert_int_equal(i, s->n);
    s->status[i] = it->status;
    snprintf(s->etype[i], sizeof(s->etype[i]), "%.*s", it->etype ? (int)it->etype_len : 0,
             it->etype ? it->etype : "");
    s->n++;
}

static int64_t walk(const char *body, struct seen *s, bool *all_ok)
{
    memset(s, 0, sizeof(*s));
    return mars_elasticsearch_items(body, strlen(body), all_ok, collect, s);
}

static void test_full_response(void **state)
{
    (void)state;
    struct seen s;
    bool ok;
    const char *body =
        "{\"took\":12,\"errors\":true,\"items\":["
        "{\"index\":{\"_index\":\"x\",\"_id\":\"a\",\"status\":201,\"result\":\"created\"}},"
        "{\"create\":{\"_index\":\"x\",\"_id\":\"b\",\"status\":409,\"error\":{\"type\":"
        "\"version_conflict_engine_exception\",\"reason\":\"[b]: exists\"}}},"
        "{\"index\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\"}}},"
        "{\"index\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\","
        "\"caused_by\":{\"type\":\"x\"}}}}]}";
    assert_int_equal(walk(body, &s, &ok), 4);
    assert_false(ok);
    assert_int_equal(s.status[0], 201);
    assert_string_equal(s.etype[0], "");
    assert_int_equal(s.status[1], 409);
    assert_string_equal(s.etype[1], "version_conflict_engine_exception");
    assert_int_equal(s.status[2], 429);
    assert_string_equal(s.etype[3], "mapper_parsing_exception");
}

static void test_filtered_response(void **state)
{
    (void)state;
    struct seen s;
    bool ok;
    /* filter_path=errors,items.*.status,items.*.error.type */
    const char *body =
        "{\"errors\":true,\"items\":[{\"create\":{\"status\":201}},"
        "{\"create\":{\"status\":503,\"error\":{\"type\":\"unavailable_shards_exception\"}}},"
        " {\"create\" : {\"status\" : 200 }} ]}";
    assert_int_equal(walk(body, &s, &ok), 3);
    assert_int_equal(s.status[1], 503);
    assert_string_equal(s.etype[1], "unavailable_shards_exception");
    assert_int_equal(s.status[2], 200);
}

static void test_no_errors_shortcut(void **state)
{
    (void)state;
    struct seen s;
    bool ok;
    assert_int_equal(walk("{\"errors\":false}", &s, &ok), 0);
    assert_true(ok);
    assert_int_equal(
        walk("{\"took\":3,\"errors\":false,\"items\":[{\"index\":{\"status\":201}}]}", &s, &ok), 0);
    assert_true(ok);
    assert_int_equal(s.n, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    struct seen s;
    bool ok;
    assert_int_equal(walk("", &s, &ok), -EBADMSG);
    assert_int_equal(walk("{\"errors\":true,\"items\":[{\"index\":{\"status\":201}}", &s, &ok),
                     -EBADMSG); /* truncated */
    assert_int_equal(walk("{\"errors\":true}", &s, &ok), -EBADMSG);
    assert_int_equal(walk("{\"error\":{\"type\":\"x\"},\"status\":400}", &s, &ok), -EBADMSG);
    /* an item without a status is reported with status 0 (retried) */
    assert_int_equal(walk("{\"errors\":true,\"items\":[{\"index\":{}},7]}", &s, &ok), 2);
    assert_int_equal(s.status[0], 0);
    assert_int_equal(s.status[1], 0);
}

static void test_classes(void **state)
{
    (void)state;
    assert_int_equal(mars_elasticsearch_item_class(201, false), MARS_ELASTICSEARCH_OK);
    assert_int_equal(mars_elasticsearch_item_class(200, true), MARS_ELASTICSEARCH_OK);
    assert_int_equal(mars_elasticsearch_item_class(409, true), MARS_ELASTICSEARCH_OK);
    assert_int_equal(mars_elasticsearch_item_class(409, false), MARS_ELASTICSEARCH_PERMANENT);
    assert_int_equal(mars_elasticsearch_item_class(429, false), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_item_class(500, true), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_item_class(503, false), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_item_class(0, false), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_item_class(400, false), MARS_ELASTICSEARCH_PERMANENT);
    assert_int_equal(mars_elasticsearch_item_class(404, true), MARS_ELASTICSEARCH_PERMANENT);
    assert_int_equal(mars_elasticsearch_request_class(429), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_request_class(502), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_request_class(401), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_request_class(403), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_request_class(301), MARS_ELASTICSEARCH_RETRY);
    assert_int_equal(mars_elasticsearch_request_class(400), MARS_ELASTICSEARCH_PERMANENT);
    assert_int_equal(mars_elasticsearch_request_class(404), MARS_ELASTICSEARCH_PERMANENT);
}

static void test_action_lines(void **state)
{
    (void)state;
    struct mars_encoder e = {0};
    assert_int_equal(
        mars_elasticsearch_put_action(&e, MARS_ELASTICSEARCH_INDEX, "logs-a", 6, NULL, 0), 0);
    assert_int_equal(
        mars_elasticsearch_put_action(&e, MARS_ELASTICSEARCH_CREATE, "q\"\\", 3, "i\n1", 3), 0);
    const char *want = "{\"index\":{\"_index\":\"logs-a\"}}\n"
                       "{\"create\":{\"_index\":\"q\\\"\\\\\",\"_id\":\"i\\n1\"}}\n";
    assert_int_equal(e.out_len, strlen(want));
    assert_memory_equal(e.out, want, e.out_len);
    mars_encoder_fini(&e);
}

static void test_generated_ids(void **state)
{
    (void)state;
    char a[MARS_ELASTICSEARCH_ID_LEN + 1], b[MARS_ELASTICSEARCH_ID_LEN + 1];
    mars_elasticsearch_gen_id(0x0123456789abcdefULL, 0, a);
    mars_elasticsearch_gen_id(0x0123456789abcdefULL, 1, b);
    assert_int_equal(strlen(a), MARS_ELASTICSEARCH_ID_LEN);
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    mars_elasticsearch_gen_id(0x0123456789abcdefULL, 0, b); /* stable */
    assert_string_equal(a, b);
    mars_elasticsearch_gen_id(0x0123456789abcdeeULL, 0, b); /* nonce matters */
    assert_string_not_equal(a, b);
    /* the low bits of seq reach the last characters */
    mars_elasticsearch_gen_id(0, 0, a);
    assert_string_equal(a, "AAAAAAAAAAAAAAAAAAAAAA");
    mars_elasticsearch_gen_id(0, 1, a);
    assert_string_equal(a, "AAAAAAAAAAAAAAAAAAAAAQ");
}

static void test_bulk_url(void **state)
{
    (void)state;
    char *u = mars_elasticsearch_bulk_url("http://es:9200/", NULL, NULL);
    assert_string_equal(u, "http://es:9200/_bulk");
    free(u);
    u = mars_elasticsearch_bulk_url("https://es:9200/prefix", "errors,items.*.status", "p1");
    assert_string_equal(
        u, "https://es:9200/prefix/_bulk?filter_path=errors,items.*.status&pipeline=p1");
    free(u);
    u = mars_elasticsearch_bulk_url("http://es:9200", "", "p1");
    assert_string_equal(u, "http://es:9200/_bulk?pipeline=p1");
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_response),
        cmocka_unit_test(test_filtered_response),
        cmocka_unit_test(test_no_errors_shortcut),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_action_lines),
        cmocka_unit_test(test_generated_ids),
        cmocka_unit_test(test_bulk_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
