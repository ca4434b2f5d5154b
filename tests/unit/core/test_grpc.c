/*
 * test_grpc.c - the pure parts of the gRPC client (src/core/grpc.c): message framing both
 * ways (real protobuf-c messages, empty messages, truncated and compressed frames), the
 * grpc-timeout value, grpc-message percent-decoding, and the status tables. Live calls are
 * covered by tests/integration/skywalking*.sh against a python3-grpcio server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/grpc.h"
#include "skywalking/common.pb-c.h"

static void test_frame_round_trip(void **state)
{
    (void)state;
    struct mars_grpc_buf b = {0};
    Skywalking__V3__KeyStringValuePair kv = SKYWALKING__V3__KEY_STRING_VALUE_PAIR__INIT;
    kv.key = "level";
    kv.value = "INFO";
    Skywalking__V3__Commands empty = SKYWALKING__V3__COMMANDS__INIT;
    assert_int_equal(mars_grpc_buf_add(&b, &kv.base), 0);
    assert_int_equal(mars_grpc_buf_add(&b, &empty.base), 0);
    assert_int_equal(mars_grpc_buf_add_raw(&b, "xyz", 3), 0);
    size_t kvlen = protobuf_c_message_get_packed_size(&kv.base);
    assert_int_equal(b.len, 5 + kvlen + 5 + 5 + 3);
    /* prefix: flag 0, big-endian length */
    assert_int_equal(b.p[0], 0);
    assert_int_equal(b.p[4], kvlen);
    const uint8_t empty_frame[5] = {0, 0, 0, 0, 0};
    assert_memory_equal(b.p + 5 + kvlen, empty_frame, 5);

    size_t off = 0, len;
    const uint8_t *m;
    assert_int_equal(mars_grpc_frame_next(b.p, b.len, &off, &m, &len), 1);
    Skywalking__V3__KeyStringValuePair *back =
        skywalking__v3__key_string_value_pair__unpack(NULL, len, m);
    assert_non_null(back);
    assert_string_equal(back->key, "level");
    assert_string_equal(back->value, "INFO");
    skywalking__v3__key_string_value_pair__free_unpacked(back, NULL);
    assert_int_equal(mars_grpc_frame_next(b.p, b.len, &off, &m, &len), 1);
    assert_int_equal(len, 0);
    assert_int_equal(mars_grpc_frame_next(b.p, b.len, &off, &m, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(m, "xyz", 3);
    assert_int_equal(mars_grpc_frame_next(b.p, b.len, &off, &m, &len), 0);

    mars_grpc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    mars_grpc_buf_fini(&b);
    assert_null(b.p);
}

static void test_frame_errors(void **state)
{
    (void)state;
    const uint8_t short_hdr[3] = {0, 0, 0};
    const uint8_t short_body[7] = {0, 0, 0, 0, 9, 'a', 'b'};
    const uint8_t compressed[6] = {1, 0, 0, 0, 1, 'a'};
    size_t off = 0, len = 0;
    const uint8_t *m = NULL;
    assert_int_equal(mars_grpc_frame_next(short_hdr, 3, &off, &m, &len), -EBADMSG);
    assert_int_equal(off, 0);
    assert_int_equal(mars_grpc_frame_next(short_body, 7, &off, &m, &len), -EBADMSG);
    assert_int_equal(mars_grpc_frame_next(compressed, 6, &off, &m, &len), -ENOTSUP);
    assert_int_equal(mars_grpc_frame_next(compressed, 0, &off, &m, &len), 0);
}

static void timeout_is(int64_t ns, const char *want)
{
    char v[16];
    size_t n = mars_grpc_timeout_value(ns, v, sizeof(v));
    assert_int_equal(n, strlen(want));
    assert_string_equal(v, want);
}

static void test_timeout_value(void **state)
{
    (void)state;
    timeout_is(0, "0n");
    timeout_is(999, "999n");
    timeout_is(250000000, "250000u"); /* 250 ms: the finest unit within 8 digits */
    timeout_is(30000000000LL, "30000000u");
    timeout_is(1000000001LL, "1000001u"); /* rounded up, never shorter */
    timeout_is(3600000000000000LL, "3600000S");
    timeout_is(INT64_MAX, "2562048H");
    char small[3];
    assert_int_equal(mars_grpc_timeout_value(30000000000LL, small, sizeof(small)), 0);
}

static void decode_is(const char *in, const char *want)
{
    char b[64];
    strcpy(b, in);
    size_t n = mars_grpc_percent_decode(b, strlen(b));
    assert_int_equal(n, strlen(want));
    assert_string_equal(b, want);
}

static void test_percent_decode(void **state)
{
    (void)state;
    decode_is("plain text", "plain text");
    decode_is("token%20is%20wrong", "token is wrong");
    decode_is("gr%C3%BC%C3%9F", "gr\xc3\xbc\xc3\x9f");
    decode_is("100%", "100%");
    decode_is("%4", "%4");
    decode_is("%zz%41", "%zzA");
}

static void test_codes(void **state)
{
    (void)state;
    assert_string_equal(mars_grpc_code_name(MARS_GRPC_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(mars_grpc_code_name(MARS_GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(mars_grpc_code_name(99), "UNKNOWN");
    assert_string_equal(mars_grpc_code_name(-1), "UNKNOWN");
    assert_true(mars_grpc_retryable(MARS_GRPC_UNAVAILABLE));
    assert_true(mars_grpc_retryable(MARS_GRPC_RESOURCE_EXHAUSTED));
    assert_true(mars_grpc_retryable(MARS_GRPC_DEADLINE_EXCEEDED));
    assert_false(mars_grpc_retryable(MARS_GRPC_UNAUTHENTICATED));
    assert_false(mars_grpc_retryable(MARS_GRPC_PERMISSION_DENIED));
    assert_false(mars_grpc_retryable(MARS_GRPC_OK));
    assert_int_equal(mars_grpc_code_from_http(401), MARS_GRPC_UNAUTHENTICATED);
    assert_int_equal(mars_grpc_code_from_http(403), MARS_GRPC_PERMISSION_DENIED);
    assert_int_equal(mars_grpc_code_from_http(404), MARS_GRPC_UNIMPLEMENTED);
    assert_int_equal(mars_grpc_code_from_http(503), MARS_GRPC_UNAVAILABLE);
    assert_int_equal(mars_grpc_code_from_http(429), MARS_GRPC_UNAVAILABLE);
    assert_int_equal(mars_grpc_code_from_http(400), MARS_GRPC_INTERNAL);
    assert_int_equal(mars_grpc_code_from_http(418), MARS_GRPC_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_timeout_value),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
