/* Unit tests of the kubernetes_logs line decoders (CRI, Docker json-file), timestamps, pod
 * paths and the merge of partial lines, including malformed lines (kept raw, counted); and
 * of the Pod record the shared pod watch keeps (phase, Ready, deletion, IPs). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sources/kubernetes/kubernetes_internal.h"

#define NS 1000000000LL

static void test_time(void **st)
{
    int64_t t;
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30T02:12:41.8443515Z", 28, &t), 0);
    assert_true(t == 1556590361LL * NS + 844351500);
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30T02:12:41Z", 20, &t), 0);
    assert_true(t == 1556590361LL * NS);
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30T04:12:41.000000001+02:00", 35, &t), 0);
    assert_true(t == 1556590361LL * NS + 1);
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30 02:12:41Z", 20, &t), -EINVAL);
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30T02:12:41.Z", 21, &t), -EINVAL);
    assert_int_equal(mars_kubernetes_parse_time("2019-04-30T02:12:41", 19, &t), -EINVAL);
}

static void test_cri(void **st)
{
    struct kubernetes_rec r;
    const char *l = "2024-01-01T00:00:00Z stderr F:x:y hello world";
    assert_int_equal(mars_kubernetes_decode_cri(l, (uint32_t)strlen(l), &r), 0);
    assert_int_equal(r.stream, KUBERNETES_STDERR);
    assert_false(r.partial);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.msg, "hello world", 11);
    l = "2024-01-01T00:00:00Z stdout P  two spaces";
    assert_int_equal(mars_kubernetes_decode_cri(l, (uint32_t)strlen(l), &r), 0);
    assert_true(r.partial);
    assert_int_equal(r.len, 11); /* the message keeps its leading space */
    l = "2024-01-01T00:00:00Z stdout F";
    assert_int_equal(mars_kubernetes_decode_cri(l, (uint32_t)strlen(l), &r), 0);
    assert_int_equal(r.len, 0);
    const char *bad[] = {"hello",
                         "2024-01-01T00:00:00Z stdin F x",
                         "2024-01-01T00:00:00Z stdout X x",
                         "2024-01-01T00:00:00Z stdout",
                         "2024-01-01T00:00:00Z stdout FF x",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mars_kubernetes_decode_cri(bad[i], (uint32_t)strlen(bad[i]), &r), -EINVAL);
}

static void test_docker(void **st)
{
    struct mars_fbuild fb;
    struct mars_arena a;
    struct kubernetes_rec r;
    mars_fbuild_init(&fb);
    mars_arena_init(&a);
    const char *l =
        "{\"log\":\"say \\\"hi\\\"\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.5Z\"}";
    assert_int_equal(mars_kubernetes_decode_docker(l, (uint32_t)strlen(l), &fb, &a, &r), 0);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.msg, "say \"hi\"", 8);
    assert_false(r.partial);
    assert_true(r.ts_ns == 1704067200LL * NS + NS / 2);
    l = "{\"log\":\"piece\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:00Z\",\"attrs\":{}}";
    assert_int_equal(mars_kubernetes_decode_docker(l, (uint32_t)strlen(l), &fb, &a, &r), 0);
    assert_true(r.partial);
    assert_int_equal(r.stream, KUBERNETES_STDERR);
    const char *bad[] = {
        "{\"log\":\"x\\n\"}", "{\"log\":1,\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}",
        "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"yesterday\"}", "{oops"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            mars_kubernetes_decode_docker(bad[i], (uint32_t)strlen(bad[i]), &fb, &a, &r), -EINVAL);
    mars_fbuild_fini(&fb);
    mars_arena_fini(&a);
}

static void test_path(void **st)
{
    struct kubernetes_path p;
    assert_int_equal(
        mars_kubernetes_path_parse(
            "/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0f1e2d3c-aaaa-bbbb/coredns/12.log",
            &p),
        0);
    assert_string_equal(p.ns, "kube-system");
    assert_string_equal(p.pod, "coredns-5d78c9869d-abcde");
    assert_string_equal(p.uid, "0f1e2d3c-aaaa-bbbb");
    assert_string_equal(p.container, "coredns");
    assert_int_equal(p.restart, 12);
    mars_kubernetes_path_fini(&p);
    assert_int_equal(mars_kubernetes_path_parse("/x/ns_pod_uid/c/0.log.20240101-120000", &p), 0);
    assert_int_equal(p.restart, 0);
    mars_kubernetes_path_fini(&p);
    assert_int_equal(mars_kubernetes_path_parse("/x/nspod/c/0.log", &p), -EINVAL);
    assert_int_equal(mars_kubernetes_path_parse("/x/ns_pod_uid/c/app.log", &p), -EINVAL);
    assert_int_equal(mars_kubernetes_path_parse("0.log", &p), -EINVAL);
}

/* A batch whose events are the lines of text (a buffer that outlives the batch). */
static struct mars_batch *lines(char *text)
{
    struct mars_batch *b = mars_batch_create(4);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        struct mars_event *e = mars_batch_push(b);
        e->msg = (struct mars_slice){p, (uint32_t)n};
        e->flags = nl ? MARS_EVF_NL_FOLLOWS : MARS_EVF_PARTIAL;
        b->bytes += n;
        p += n + (nl != NULL);
    }
    return b;
}

static void expect(const struct mars_batch *b, uint32_t i, const char *msg)
{
    assert_true(i < b->n);
    assert_int_equal(b->ev[i].msg.len, strlen(msg));
    assert_memory_equal(b->ev[i].msg.ptr, msg, strlen(msg));
}

static void test_merge(void **st)
{
    struct kubernetes_dec d;
    uint8_t fmt = KUBERNETES_FMT_UNKNOWN;
    mars_kubernetes_dec_init(&d, 1 << 20);
    char text[] = "2024-01-01T00:00:01Z stdout P ab\n"
                  "2024-01-01T00:00:02Z stderr F err line\n"
                  "2024-01-01T00:00:03Z stdout P cd\n"
                  "not a cri line\n"
                  "2024-01-01T00:00:04Z stdout F ef\n"
                  "2024-01-01T00:00:05Z stdout F whole\n";
    struct mars_batch *b = lines(text);
    assert_null(mars_kubernetes_decode_batch(&d, &fmt, b, false));
    assert_int_equal(fmt, KUBERNETES_FMT_CRI);
    assert_int_equal(b->n, 4);
    expect(b, 0, "err line");
    assert_int_equal(d.streams[0], KUBERNETES_STDERR);
    assert_true(b->ev[0].flags & MARS_EVF_NL_FOLLOWS); /* a slice of the line: no copy */
    expect(b, 1, "not a cri line");
    assert_int_equal(d.streams[1], KUBERNETES_NO_STREAM);
    expect(b, 2, "abcdef");
    assert_true(b->ev[2].ts_ns == 1704067201LL * NS); /* the first piece's time */
    assert_false(b->ev[2].flags & MARS_EVF_NL_FOLLOWS);
    expect(b, 3, "whole");
    assert_int_equal(d.st.malformed, 1);
    assert_int_equal(b->bytes, 8 + 14 + 6 + 5);
    mars_batch_release(b);
    mars_kubernetes_dec_fini(&d);
}

static void test_give_back(void **st)
{
    struct kubernetes_dec d;
    uint8_t fmt = KUBERNETES_FMT_UNKNOWN;
    mars_kubernetes_dec_init(&d, 1 << 20);
    char text[] = "2024-01-01T00:00:01Z stdout F one\n"
                  "2024-01-01T00:00:02Z stdout P two-\n"
                  "2024-01-01T00:00:03Z stderr F three\n"
                  "2024-01-01T00:00:04Z stdout P more";
    struct mars_batch *b = lines(text);
    const char *keep = mars_kubernetes_decode_batch(&d, &fmt, b, false);
    /* the run opened by "two-" is given back with everything after it */
    assert_ptr_equal(keep, strstr(text, "2024-01-01T00:00:02Z"));
    assert_int_equal(b->n, 1);
    expect(b, 0, "one");
    mars_batch_release(b);
    /* final: the open run goes out as it is, flagged partial */
    b = lines(keep == NULL ? text : (char *)keep);
    assert_null(mars_kubernetes_decode_batch(&d, &fmt, b, true));
    assert_int_equal(b->n, 2);
    expect(b, 0, "three");
    expect(b, 1, "two-more");
    assert_true(b->ev[1].flags & MARS_EVF_PARTIAL);
    mars_batch_release(b);
    mars_kubernetes_dec_fini(&d);
}

static void test_bound_and_docker(void **st)
{
    struct kubernetes_dec d;
    uint8_t fmt = KUBERNETES_FMT_UNKNOWN;
    mars_kubernetes_dec_init(&d, 8);
    char text[] = "{\"log\":\"12345\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
                  "{\"log\":\"6789\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
                  "{\"log\":\"ab\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
                  "2024-01-01T00:00:04Z stdout F cri in a docker file\n";
    struct mars_batch *b = lines(text);
    assert_null(mars_kubernetes_decode_batch(&d, &fmt, b, false));
    assert_int_equal(fmt, KUBERNETES_FMT_DOCKER);
    assert_int_equal(b->n, 3);
    expect(b, 0, "12345"); /* 5 + 4 > 8: cut at the bound, flagged and counted */
    assert_true(b->ev[0].flags & MARS_EVF_OVERSIZE);
    expect(b, 1, "6789ab");
    expect(b, 2, "2024-01-01T00:00:04Z stdout F cri in a docker file");
    assert_int_equal(d.st.oversize, 1);
    assert_int_equal(d.st.malformed, 1);
    mars_batch_release(b);
    mars_kubernetes_dec_fini(&d);
}

static struct kubernetes_pod *pod_of(const char *json)
{
    struct mars_arena a;
    struct mars_fbuild fb;
    mars_arena_init(&a);
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &a);
    assert_int_equal(mars_json_parse(json, strlen(json), 64, &fb, 0, NULL), MARS_JSON_OK);
    struct kubernetes_pod *p = mars_kubernetes_pod_from_fb(&fb, 0, 1);
    mars_fbuild_fini(&fb);
    mars_arena_fini(&a);
    return p;
}

static void test_pod_record(void **st)
{
    (void)st;
    struct kubernetes_pod *p =
        pod_of("{\"metadata\":{\"uid\":\"u1\",\"namespace\":\"ns\",\"name\":\"web-1\","
               "\"annotations\":{\"eureka.mars.io/app\":\"web\"}},\"spec\":{\"nodeName\":\"n1\"},"
               "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"podIPs\":[{\"ip\":"
               "\"10.0.0.5\"},{\"ip\":\"fd00::5\"}],\"conditions\":[{\"type\":\"Initialized\","
               "\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    assert_non_null(p);
    assert_string_equal(p->phase, "Running");
    assert_true(p->ready);
    assert_false(p->terminating);
    assert_int_equal(p->nips, 2);
    assert_string_equal(p->ips[0], "10.0.0.5");
    assert_string_equal(p->ips[1], "fd00::5");
    mars_kubernetes_pod_destroy(p);
    /* an old server: podIP only; not Ready; terminating */
    p = pod_of("{\"metadata\":{\"uid\":\"u2\",\"namespace\":\"ns\",\"name\":\"db-1\","
               "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"status\":{\"podIP\":"
               "\"10.0.0.6\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}");
    assert_non_null(p);
    assert_null(p->phase);
    assert_false(p->ready);
    assert_true(p->terminating);
    assert_int_equal(p->nips, 1);
    assert_string_equal(p->ips[0], "10.0.0.6");
    mars_kubernetes_pod_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_cri),
        cmocka_unit_test(test_docker),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_give_back),
        cmocka_unit_test(test_bound_and_docker),
        cmocka_unit_test(test_pod_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
