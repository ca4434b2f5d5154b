/*
 * test_units.c - sizes, durations, booleans (src/core/units.c): every accepted form, every
 * rejection reason, overflow edges, exact formatting with round trips, and mars_suggest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/schema.h"

#define SIZE_HINT     "(use B, KB, MB, GB, KiB, MiB, GiB, TiB)"
#define DURATION_HINT "(use ns, us, ms, s, m, h, d)"

static void size_ok(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    const char *err = NULL;

    if (mars_parse_size(s, &v, &err) != 0)
        fail_msg("size \"%s\" rejected: %s", s, err);
    if (v != want)
        fail_msg("size \"%s\": got %ju, want %ju", s, (uintmax_t)v, (uintmax_t)want);
}

static void size_bad(const char *s, const char *want_err)
{
    uint64_t v = 7;
    const char *err = NULL;

    assert_int_equal(mars_parse_size(s, &v, &err), -EINVAL);
    assert_non_null(err);
    if (strcmp(err, want_err) != 0)
        fail_msg("size \"%s\": error \"%s\", want \"%s\"", s ? s : "(null)", err, want_err);
    assert_int_equal(v, 7); /* untouched on error */
}

static void duration_ok(const char *s, int64_t want)
{
    int64_t v = 12345;
    const char *err = NULL;

    if (mars_parse_duration(s, &v, &err) != 0)
        fail_msg("duration \"%s\" rejected: %s", s, err);
    if (v != want)
        fail_msg("duration \"%s\": got %jd, want %jd", s, (intmax_t)v, (intmax_t)want);
}

static void duration_bad(const char *s, const char *want_err)
{
    int64_t v = 7;
    const char *err = NULL;

    assert_int_equal(mars_parse_duration(s, &v, &err), -EINVAL);
    assert_non_null(err);
    if (strcmp(err, want_err) != 0)
        fail_msg("duration \"%s\": error \"%s\", want \"%s\"", s ? s : "(null)", err, want_err);
    assert_int_equal(v, 7);
}

static void test_size_parse_ok(void **state)
{
    (void)state;
    size_ok("0", 0);
    size_ok("0B", 0);
    size_ok("0.0", 0);
    size_ok("0KiB", 0);
    size_ok("1B", 1);
    size_ok("1KB", 1000);
    size_ok("1MB", 1000000);
    size_ok("2GB", 2000000000);
    size_ok("1KiB", 1024);
    size_ok("64MiB", 64ull << 20);
    size_ok("1GiB", 1ull << 30);
    size_ok("3TiB", 3ull << 40);
    size_ok("1.5MiB", 1572864);
    size_ok("0.5KiB", 512);
    size_ok("1.50000000000MiB", 1572864); /* trailing zeros do not count as places */
    size_ok("0.001KB", 1);
    size_ok("0.25KiB", 256);
    size_ok("64 MiB", 64ull << 20);
    size_ok("007KB", 7000);
    size_ok("18446744073709551615B", UINT64_MAX);
    size_ok("16777215TiB", 16777215ull << 40);
    size_ok("16777215.5TiB", (16777215ull << 40) + (1ull << 39));
}

static void test_size_parse_errors(void **state)
{
    (void)state;
    size_bad(NULL, "empty value");
    size_bad("", "empty value");
    size_bad("abc", "expected a number");
    size_bad("MiB", "expected a number");
    size_bad(".5MiB", "expected a number");
    size_bad(" 1MiB", "expected a number");
    size_bad("1.MiB", "expected digits after the decimal point");
    size_bad("-1MiB", "negative sizes are not allowed");
    size_bad("1024", "missing unit " SIZE_HINT);
    size_bad("1.5", "missing unit " SIZE_HINT);
    size_bad("12XB", "unknown unit " SIZE_HINT);
    size_bad("1mib", "unknown unit " SIZE_HINT); /* case-sensitive */
    size_bad("1kb", "unknown unit " SIZE_HINT);
    size_bad("1TB", "unknown unit " SIZE_HINT);
    size_bad("1MiB ", "unknown unit " SIZE_HINT);
    size_bad("1MiBs", "unknown unit " SIZE_HINT);
    size_bad("1.5B", "fraction does not give a whole number of bytes");
    size_bad("0.0001KB", "fraction does not give a whole number of bytes");
    size_bad("1.0000000001GiB", "too many decimal places (at most 9)");
    size_bad("16777216TiB", "too large (at most 16 EiB)");
    size_bad("18446744073709551616B", "too large (at most 16 EiB)");
    size_bad("99999999999999999999999KB", "too large (at most 16 EiB)");
    size_bad("16777215.9999999999TiB", "too many decimal places (at most 9)");
    size_bad("16777215.999999999TiB", "fraction does not give a whole number of bytes");
}

static void test_duration_parse_ok(void **state)
{
    (void)state;
    const int64_t s = 1000000000;
    duration_ok("0", 0);
    duration_ok("0s", 0);
    duration_ok("0ms", 0);
    duration_ok("1ns", 1);
    duration_ok("1us", 1000);
    duration_ok("1\xc2\xb5s", 1000);
    duration_ok("250ms", 250000000);
    duration_ok("1s", s);
    duration_ok("1m", 60 * s);
    duration_ok("1h", 3600 * s);
    duration_ok("1d", 86400 * s);
    duration_ok("1m30s", 90 * s);
    duration_ok("1h2m3s4ms5us6ns", 3723 * s + 4005006);
    duration_ok("1.5s", 1500000000);
    duration_ok("0.5ms", 500000);
    duration_ok("1.5h", 5400 * s);
    duration_ok("30s1m", 90 * s); /* any order, summed */
    duration_ok("9223372036854775807ns", INT64_MAX);
    duration_ok("106751d", (int64_t)106751 * 86400 * s);
    duration_ok("0.000000001s", 1);
}

static void test_duration_parse_errors(void **state)
{
    (void)state;
    duration_bad(NULL, "empty value");
    duration_bad("", "empty value");
    duration_bad("-1s", "negative durations are not allowed");
    duration_bad("s", "expected a number");
    duration_bad("1m s", "expected a number");
    duration_bad("1.s", "expected digits after the decimal point");
    duration_bad("10", "missing unit " DURATION_HINT);
    duration_bad("00", "missing unit " DURATION_HINT);
    duration_bad("0.0", "missing unit " DURATION_HINT);
    duration_bad("1m0", "missing unit " DURATION_HINT);
    duration_bad("5x", "unknown unit " DURATION_HINT);
    duration_bad("1S", "unknown unit " DURATION_HINT);
    duration_bad("1sec", "unknown unit " DURATION_HINT);
    duration_bad("1ms2", "missing unit " DURATION_HINT);
    duration_bad("1.5ns", "fraction is finer than a nanosecond");
    duration_bad("0.0000000001s", "too many decimal places (at most 9)");
    duration_bad("9223372036854775808ns", "too large (at most about 292 years)");
    duration_bad("106752d", "too large (at most about 292 years)");
    duration_bad("106751d23h47m16s854775808ns", "too large (at most about 292 years)");
    duration_bad("99999999999999999999999s", "too large (at most about 292 years)");
}

static void test_bool_parse(void **state)
{
    (void)state;
    const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"false", "False", "no", "NO", "off", "Off"};
    const char *bad[] = {"", "1", "0", "y", "n", "maybe", "truee", " true"};
    bool v;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = false;
        assert_int_equal(mars_parse_bool(yes[i], &v), 0);
        assert_true(v);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = true;
        assert_int_equal(mars_parse_bool(no[i], &v), 0);
        assert_false(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mars_parse_bool(bad[i], &v), -EINVAL);
    assert_int_equal(mars_parse_bool(NULL, &v), -EINVAL);
}

static void test_format_size(void **state)
{
    (void)state;
    char buf[32];
    const struct {
        uint64_t v;
        const char *want;
    } cases[] = {
        {0, "0B"},
        {1, "1B"},
        {1000, "1000B"},
        {1024, "1KiB"},
        {1536, "1536B"},
        {256 << 10, "256KiB"},
        {64ull << 20, "64MiB"},
        {1ull << 30, "1GiB"},
        {3ull << 40, "3TiB"},
        {1ull << 50, "1024TiB"},
        {(1ull << 30) + 1, "1073741825B"},
        {UINT64_MAX, "18446744073709551615B"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(mars_format_size(cases[i].v, buf, sizeof(buf)), cases[i].want);
        uint64_t back;
        const char *err;
        assert_int_equal(mars_parse_size(buf, &back, &err), 0);
        assert_true(back == cases[i].v);
    }
    /* A short buffer is truncated, never overrun. */
    char small[4];
    assert_string_equal(mars_format_size(64ull << 20, small, sizeof(small)), "64M");
}

static void test_format_duration(void **state)
{
    (void)state;
    char buf[64];
    const int64_t s = 1000000000;
    const struct {
        int64_t v;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1000, "1us"},
        {1500, "1.5us"},
        {1000000, "1ms"},
        {1500000, "1.5ms"},
        {250000000, "250ms"},
        {999999999, "999.999999ms"},
        {s, "1s"},
        {1500000000, "1.5s"},
        {90 * s, "1m30s"},
        {300 * s, "5m"},
        {3600 * s, "1h"},
        {3601 * s, "1h1s"},
        {86400 * s, "1d"},
        {90061 * s + 500000000, "1d1h1m1.5s"},
        {60 * s + 1, "1m0.000000001s"},
        {INT64_MAX, "106751d23h47m16.854775807s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(mars_format_duration(cases[i].v, buf, sizeof(buf)), cases[i].want);
        int64_t back;
        const char *err;
        assert_int_equal(mars_parse_duration(buf, &back, &err), 0);
        assert_true(back == cases[i].v);
    }
    assert_string_equal(mars_format_duration(-s, buf, sizeof(buf)), "-1s");
    assert_string_equal(mars_format_duration(-1500000, buf, sizeof(buf)), "-1.5ms");
    assert_string_equal(mars_format_duration(INT64_MIN, buf, sizeof(buf)),
                        "-106751d23h47m16.854775808s");
    char small[5];
    assert_string_equal(mars_format_duration(90 * s, small, sizeof(small)), "1m30");
    char tiny[1] = {'x'};
    mars_format_duration(s, tiny, 0);
    assert_int_equal(tiny[0], 'x');
}

static void test_suggest(void **state)
{
    (void)state;
    const char *opts[] = {"max_events", "max_bytes", "when_full", "path", NULL, "type"};
    const size_t n = sizeof(opts) / sizeof(opts[0]);

    assert_string_equal(mars_suggest("max_evnts", opts, n), "max_events");
    assert_string_equal(mars_suggest("max_event", opts, n), "max_events");
    assert_string_equal(mars_suggest("maxbytes", opts, n), "max_bytes");
    assert_string_equal(mars_suggest("pth", opts, n), "path");
    assert_string_equal(mars_suggest("typ", opts, n), "type");
    /* A swap of neighbours is one edit, within the limit of 1 for 4 letters. */
    assert_string_equal(mars_suggest("tpye", opts, n), "type");
    const char *ids[] = {"logs", "extra"};
    assert_string_equal(mars_suggest("lgos", ids, 2), "logs");
    assert_null(mars_suggest("lsog", ids, 2));                       /* two swaps */
    assert_string_equal(mars_suggest("when", opts, n), "when_full"); /* prefix */
    assert_string_equal(mars_suggest("max", opts, n), "max_bytes");  /* closest prefix */
    assert_null(mars_suggest("colour", opts, n));
    assert_null(mars_suggest("", opts, n));
    assert_null(mars_suggest(NULL, opts, n));
    assert_null(mars_suggest("path", opts, n)); /* an exact match is no typo */
    assert_null(mars_suggest("max_evnts", opts, 0));

    const char *choices[] = {"block", "drop_newest"};
    assert_string_equal(mars_suggest("blok", choices, 2), "block");
    assert_string_equal(mars_suggest("Block", choices, 2), "block");
    assert_string_equal(mars_suggest("drop", choices, 2), "drop_newest");
    assert_null(mars_suggest("xyz", choices, 2));
    /* Limit is max(1, len/3): 6 letters allow 2 edits, not 3. */
    const char *six[] = {"abcdef"};
    assert_string_equal(mars_suggest("abcdxy", six, 1), "abcdef");
    assert_null(mars_suggest("abcxyz", six, 1));
    char longw[100];
    memset(longw, 'a', sizeof(longw) - 1);
    longw[99] = '\0';
    assert_null(mars_suggest(longw, six, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_parse_ok),     cmocka_unit_test(test_size_parse_errors),
        cmocka_unit_test(test_duration_parse_ok), cmocka_unit_test(test_duration_parse_errors),
        cmocka_unit_test(test_bool_parse),        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_format_duration),   cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
