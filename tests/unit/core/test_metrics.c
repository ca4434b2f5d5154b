/* Unit tests of the metrics registry and the Prometheus text exposition: shard merging,
 * bounded series, histograms, label escaping, value formatting, name checks, concurrent
 * single-writer shards. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "core/log.h"
#include "core/metrics.h"

static char *text_of(struct mars_metrics *m)
{
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(mars_metrics_write_text(m, b), 0);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static const char *const labels_kind[] = {"kind", NULL};

static void test_counter_shards_merge(void **state)
{
    struct mars_metrics *m = mars_metrics_create(3);
    struct mars_mfamily *f =
        mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_events_total",
                                                           .help = "Events.",
                                                           .type = MARS_MT_COUNTER,
                                                           .labels = labels_kind});
    assert_non_null(f);
    struct mars_mseries *a = mars_mfamily_series(f, (const char *[]){"a"});
    assert_ptr_equal(a, mars_mfamily_series(f, (const char *[]){"a"})); /* same label set */
    mars_mseries_add(a, 0, 5);
    mars_mseries_add(a, 1, 7);
    mars_mseries_add(a, 2, 1);
    mars_mseries_add(a, MARS_METRICS_SHARED, 100);
    mars_mseries_add(NULL, 0, 1); /* NULL series: no-op */
    char *t = text_of(m);
    assert_string_equal(t, "# HELP t_events_total Events.\n"
                           "# TYPE t_events_total counter\n"
                           "t_events_total{kind=\"a\"} 113\n");
    free(t);
    mars_metrics_destroy(m);
    (void)state;
}

static void test_gauge_and_escaping(void **state)
{
    struct mars_metrics *m = mars_metrics_create(2);
    struct mars_mfamily *f =
        mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_level",
                                                           .help = "A \\ help\nline.",
                                                           .type = MARS_MT_GAUGE,
                                                           .labels = labels_kind});
    mars_mseries_set(mars_mfamily_series(f, (const char *[]){"q\"uo\\te\nnl"}), 0, 1.5);
    struct mars_mseries *g = mars_mfamily_series(f, (const char *[]){"two"});
    mars_mseries_set(g, 0, 2);
    mars_mseries_set(g, 1, -0.25);
    char *t = text_of(m);
    assert_string_equal(t, "# HELP t_level A \\\\ help\\nline.\n"
                           "# TYPE t_level gauge\n"
                           "t_level{kind=\"q\\\"uo\\\\te\\nnl\"} 1.5\n"
                           "t_level{kind=\"two\"} 1.75\n");
    free(t);
    mars_metrics_destroy(m);
    (void)state;
}

static void test_histogram(void **state)
{
    static const double bounds[] = {0.1, 0.5, 1};
    struct mars_metrics *m = mars_metrics_create(2);
    struct mars_mfamily *f =
        mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_latency_seconds",
                                                           .help = "Latency.",
                                                           .type = MARS_MT_HISTOGRAM,
                                                           .bounds = bounds,
                                                           .nbounds = 3});
    struct mars_mseries *h = mars_mfamily_series(f, NULL);
    mars_mseries_observe(h, 0, 0.05);
    mars_mseries_observe(h, 1, 0.1); /* le is inclusive */
    mars_mseries_observe(h, 0, 0.7);
    mars_mseries_observe(h, 1, 3);
    mars_mseries_add(h, 0, 1); /* not a histogram operation: ignored */
    char *t = text_of(m);
    assert_string_equal(t, "# HELP t_latency_seconds Latency.\n"
                           "# TYPE t_latency_seconds histogram\n"
                           "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
                           "t_latency_seconds_bucket{le=\"0.5\"} 2\n"
                           "t_latency_seconds_bucket{le=\"1\"} 3\n"
                           "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                           "t_latency_seconds_sum 3.85\n"
                           "t_latency_seconds_count 4\n");
    free(t);
    mars_metrics_destroy(m);
    (void)state;
}

static void test_bounded_series(void **state)
{
    struct mars_metrics *m = mars_metrics_create(1);
    struct mars_mfamily *f =
        mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_x_total",
                                                           .help = "X.",
                                                           .type = MARS_MT_COUNTER,
                                                           .labels = labels_kind,
                                                           .max_series = 2});
    assert_non_null(mars_mfamily_series(f, (const char *[]){"a"}));
    assert_non_null(mars_mfamily_series(f, (const char *[]){"b"}));
    assert_null(mars_mfamily_series(f, (const char *[]){"c"}));     /* over the bound */
    assert_non_null(mars_mfamily_series(f, (const char *[]){"a"})); /* existing still found */
    mars_metrics_destroy(m);
    (void)state;
}

static void test_invalid_families(void **state)
{
    static const char *const bad_label[] = {"le", NULL};
    static const double unsorted[] = {1, 0.5};
    struct mars_metrics *m = mars_metrics_create(1);
    assert_null(mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "9bad", .help = "x", .type = MARS_MT_GAUGE}));
    assert_null(mars_metrics_family(
        m, &(struct mars_mfamily_desc){
               .name = "t_ok", .help = "x", .type = MARS_MT_GAUGE, .labels = bad_label}));
    assert_null(mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_h",
                                                                   .help = "x",
                                                                   .type = MARS_MT_HISTOGRAM,
                                                                   .bounds = unsorted,
                                                                   .nbounds = 2}));
    struct mars_mfamily *g = mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "t_g", .help = "x", .type = MARS_MT_GAUGE});
    assert_non_null(g);
    assert_ptr_equal(
        g, mars_metrics_family(
               m, &(struct mars_mfamily_desc){.name = "t_g", .help = "x", .type = MARS_MT_GAUGE}));
    /* same name, other type */
    assert_null(mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "t_g", .help = "x", .type = MARS_MT_COUNTER}));
    mars_metrics_destroy(m);
    (void)state;
}

static void test_names_and_values(void **state)
{
    char buf[64];
    assert_true(mars_metric_name_valid("a:b_c9", 6));
    assert_false(mars_metric_name_valid("a-b", 3));
    assert_false(mars_metric_name_valid("", 0));
    assert_true(mars_label_name_valid("_x1", 3));
    assert_false(mars_label_name_valid("a:b", 3));
    mars_prom_format_value(NAN, buf, sizeof(buf));
    assert_string_equal(buf, "NaN");
    mars_prom_format_value(INFINITY, buf, sizeof(buf));
    assert_string_equal(buf, "+Inf");
    mars_prom_format_value(-INFINITY, buf, sizeof(buf));
    assert_string_equal(buf, "-Inf");
    mars_prom_format_value(18446744073709551616.0, buf, sizeof(buf));
    assert_float_equal(strtod(buf, NULL), 18446744073709551616.0, 0);
    mars_prom_format_value(123456789, buf, sizeof(buf));
    assert_string_equal(buf, "123456789");
    mars_prom_format_value(0.005, buf, sizeof(buf));
    assert_string_equal(buf, "0.005");
    /* integers without printf: the length comes back, the sign and 2^53 - 1 stay exact */
    assert_int_equal(mars_prom_format_value(-42, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "-42");
    assert_int_equal(mars_prom_format_value(0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(mars_prom_format_value(9007199254740991.0, buf, sizeof(buf)), 16);
    assert_string_equal(buf, "9007199254740991");
    assert_int_equal(mars_prom_format_value(-2.5, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "-2.5");
    assert_int_equal(mars_fmt_u64(buf, UINT64_MAX), 20);
    assert_memory_equal(buf, "18446744073709551615", 20);
    /* escaping into a buffer: label values escape quotes, HELP text does not */
    assert_int_equal(mars_prom_escape_to(buf, "a\"b\\c\nd", 7, true), 10);
    assert_memory_equal(buf, "a\\\"b\\\\c\\nd", 10);
    assert_int_equal(mars_prom_escape_to(buf, "a\"b", 3, false), 3);
    assert_memory_equal(buf, "a\"b", 3);
    (void)state;
}

/* ---- concurrency: single writers per shard plus shared writers, no lost update ---- */

struct writer {
    struct mars_mseries *c, *h;
    unsigned shard;
};

#define ROUNDS 200000

static int values_seen, histograms_seen; /* callbacks run by the collection below */

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        mars_mseries_add(w->c, w->shard, 1);
        mars_mseries_observe(w->h, w->shard, 1);
    }
    return NULL;
}

static void count_value(struct mars_mvisitor *v, const struct mars_mlabels *l, double x)
{
    (void)v;
    (void)l;
    assert_float_equal(x, 6.0 * ROUNDS, 0);
    values_seen++;
}

static void count_hist(struct mars_mvisitor *v, const struct mars_mlabels *l, const double *b,
                       const uint64_t *cum, size_t nb, uint64_t count, double sum)
{
    (void)v;
    (void)l;
    (void)b;
    assert_int_equal(nb, 1);
    assert_int_equal(cum[0], 6 * ROUNDS);
    assert_int_equal(count, 6 * ROUNDS);
    assert_float_equal(sum, 6.0 * ROUNDS, 0);
    histograms_seen++;
}

static void ignore_family(struct mars_mvisitor *v, const struct mars_mfamily_info *f)
{
    (void)v;
    (void)f;
}

static void test_concurrent_writers(void **state)
{
    static const double one[] = {1};
    struct mars_metrics *m = mars_metrics_create(4);
    struct mars_mseries *c = mars_mfamily_series(
        mars_metrics_family(
            m,
            &(struct mars_mfamily_desc){.name = "t_c_total", .help = "c", .type = MARS_MT_COUNTER}),
        NULL);
    struct mars_mseries *h = mars_mfamily_series(
        mars_metrics_family(m, &(struct mars_mfamily_desc){.name = "t_h",
                                                           .help = "h",
                                                           .type = MARS_MT_HISTOGRAM,
                                                           .bounds = one,
                                                           .nbounds = 1}),
        NULL);
    pthread_t th[6];
    struct writer w[6];
    for (unsigned i = 0; i < 6; i++) {
        /* shards 0-3 have one writer each; two more threads share the shared shard */
        w[i] = (struct writer){c, h, i < 4 ? i : MARS_METRICS_SHARED};
        assert_int_equal(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    struct mars_mvisitor v = {
        .family = ignore_family, .value = count_value, .histogram = count_hist};
    values_seen = histograms_seen = 0;
    mars_metrics_collect(m, &v);
    /* the checks are in the callbacks: each series must have been visited, once */
    assert_int_equal(values_seen, 1);
    assert_int_equal(histograms_seen, 1);
    mars_metrics_destroy(m);
    (void)state;
}

static void collector(struct mars_mvisitor *v, void *arg)
{
    static const char *const n[] = {"id"};
    const char *val[] = {arg};
    v->family(v, &(struct mars_mfamily_info){
                     .name = "t_collected", .help = "From a collector.", .type = MARS_MT_GAUGE});
    v->value(v, &(struct mars_mlabels){n, val, 1}, 42);
}

static void test_collector_after_registry(void **state)
{
    struct mars_metrics *m = mars_metrics_create(1);
    mars_metrics_family(
        m, &(struct mars_mfamily_desc){.name = "t_first", .help = "First.", .type = MARS_MT_GAUGE});
    assert_int_equal(mars_metrics_add_collector(m, collector, "x"), 0);
    char *t = text_of(m);
    assert_string_equal(t, "# HELP t_first First.\n# TYPE t_first gauge\n"
                           "# HELP t_collected From a collector.\n# TYPE t_collected gauge\n"
                           "t_collected{id=\"x\"} 42\n");
    free(t);
    mars_metrics_destroy(m);
    (void)state;
}

/* The text visitor's summary form: quantile samples, then _sum and _count. */
static void test_summary_text(void **state)
{
    static const char *const names[] = {"k"}, *const values[] = {"a\"b"};
    static const double qs[] = {0.5, 0.99}, vals[] = {1.5, NAN};
    struct evbuffer *b = evbuffer_new();
    struct mars_prom_text t;
    mars_prom_text_init(&t, b);
    t.v.family(&t.v,
               &(struct mars_mfamily_info){.name = "t_s", .help = "S.", .type = MARS_MT_SUMMARY});
    t.v.summary(&t.v, &(struct mars_mlabels){names, values, 1}, qs, vals, 2, 7, 12.25);
    t.v.summary(&t.v, &(struct mars_mlabels){NULL, NULL, 0}, qs, vals, 1, 0, 0);
    size_t n = evbuffer_get_length(b);
    char *s = calloc(1, n + 1);
    evbuffer_remove(b, s, n);
    assert_string_equal(s, "# HELP t_s S.\n"
                           "# TYPE t_s summary\n"
                           "t_s{k=\"a\\\"b\",quantile=\"0.5\"} 1.5\n"
                           "t_s{k=\"a\\\"b\",quantile=\"0.99\"} NaN\n"
                           "t_s_sum{k=\"a\\\"b\"} 12.25\n"
                           "t_s_count{k=\"a\\\"b\"} 7\n"
                           "t_s{quantile=\"0.5\"} 1.5\n"
                           "t_s_sum 0\n"
                           "t_s_count 0\n");
    assert_int_equal(t.err, 0);
    free(s);
    evbuffer_free(b);
    (void)state;
}

int main(void)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_shards_merge),
        cmocka_unit_test(test_gauge_and_escaping),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_bounded_series),
        cmocka_unit_test(test_invalid_families),
        cmocka_unit_test(test_names_and_values),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_collector_after_registry),
        cmocka_unit_test(test_summary_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
