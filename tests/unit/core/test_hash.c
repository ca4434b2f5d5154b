/*
 * test_hash.c - core/hash.c: mars_crc32c() against a bit-by-bit CRC-32C written here, for
 * every length across the three-lane boundaries (3 x 256 and 3 x 8192 bytes) at every
 * alignment, fed whole and in pieces; the standard check value; and mars_hash64()'s FNV-1a
 * values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/hash.h"

static uint32_t crc_bits(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static unsigned char *random_bytes(size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
}

static void test_check_value(void **state)
{
    (void)state;
    assert_int_equal(mars_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(mars_crc32c(0, "", 0), 0);
    unsigned char zeros[32] = {0};
    assert_int_equal(mars_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu); /* RFC 3720 B.4 */
}

static void check_range(const unsigned char *buf, size_t from, size_t to)
{
    for (size_t n = from; n <= to; n++)
        for (size_t off = 0; off < 8; off++) {
            uint32_t want = crc_bits(buf + off, n);
            assert_int_equal(mars_crc32c(0, buf + off, n), want);
            size_t cut = n / 3 + off; /* in two pieces: the register carries over */
            if (cut > n)
                cut = n;
            uint32_t c = mars_crc32c(0, buf + off, cut);
            assert_int_equal(mars_crc32c(c, buf + off + cut, n - cut), want);
        }
}

static void test_lane_boundaries(void **state)
{
    (void)state;
    size_t max = 2 * 3 * 8192 + 3 * 256 + 64;
    unsigned char *buf = random_bytes(max + 8);
    check_range(buf, 0, 3 * 256 + 24);
    check_range(buf, 2 * 3 * 256 - 9, 2 * 3 * 256 + 9);
    check_range(buf, 3 * 8192 - 12, 3 * 8192 + 12);
    check_range(buf, 3 * 8192 + 3 * 256 - 9, 3 * 8192 + 3 * 256 + 9);
    check_range(buf, max - 4, max);
    free(buf);
}

static void test_large(void **state)
{
    (void)state;
    size_t n = (1u << 20) + 4099;
    unsigned char *buf = random_bytes(n);
    uint32_t want = crc_bits(buf, n);
    assert_int_equal(mars_crc32c(0, buf, n), want);
    uint32_t c = 0; /* in uneven pieces */
    for (size_t at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
        size_t k = step < n - at ? step : n - at;
        c = mars_crc32c(c, buf + at, k);
        if (k < step)
            break;
    }
    assert_int_equal(c, want);
    free(buf);
}

static void test_hash64(void **state)
{
    (void)state;
    assert_true(mars_hash64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(mars_hash64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(mars_hash64("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_lane_boundaries),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_hash64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
