/*
 * Unit tests of timestamp formats and time zones (timefmt.c): RFC 3339 variants, epoch
 * numbers, strptime-like patterns, year inference, fixed offsets and IANA zones across a
 * daylight saving change, and malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model/timefmt.h"

#define S 1000000000LL
/* 2024-03-15T12:00:00Z, the "now" for year inference */
#define NOW (1710504000LL * S)

static void check(const char *fmt, const char *tz, const char *in, int64_t want, bool ok)
{
    char err[200];
    int64_t got = 0;
    struct mars_timefmt *f = mars_timefmt_compile(fmt, tz, err, sizeof(err));
    if (!f)
        fail_msg("%s/%s: %s", fmt, tz, err);
    int rc = mars_timefmt_parse(f, in, strlen(in), NOW, &got);
    mars_timefmt_destroy(f);
    if (ok && (rc != 0 || got != want))
        fail_msg("%s '%s' (%s): rc %d, got %lld, want %lld", fmt, in, tz, rc, (long long)got,
                 (long long)want);
    if (!ok && rc == 0)
        fail_msg("%s '%s' parsed, want an error", fmt, in);
}

static void test_rfc3339(void **state)
{
    check("rfc3339", "UTC", "2024-01-01T00:00:00Z", 1704067200 * S, true);
    check("rfc3339", "UTC", "2024-01-01t00:00:00z", 1704067200 * S, true);
    check("rfc3339", "UTC", "2024-01-01 00:00:00.5Z", 1704067200 * S + 500000000, true);
    check("rfc3339", "UTC", "2023-10-06T00:17:09.669794202Z", 1696551429 * S + 669794202, true);
    check("rfc3339", "UTC", "2024-01-01T02:00:00+02:00", 1704067200 * S, true);
    check("rfc3339", "UTC", "2024-01-01T00:00:00-0130", 1704072600 * S, true);
    check("rfc3339", "UTC", "2024-01-01T00:00:00.1234567891234Z", 1704067200 * S + 123456789, true);
    check("rfc3339", "+08:00", "2024-01-01T08:00:00", 1704067200 * S, true);
    check("rfc3339", "UTC", "1969-12-31T23:59:59Z", -1 * S, true);
    check("rfc3339", "UTC", "2016-12-31T23:59:60Z", 1483228799 * S, true); /* leap second */
    check("rfc3339", "UTC", "2024-02-30T00:00:00Z", 1709251200 * S, true); /* day 30 of Feb */
    check("rfc3339", "UTC", "2024-13-01T00:00:00Z", 0, false);
    check("rfc3339", "UTC", "2024-01-01T24:00:00Z", 0, false);
    check("rfc3339", "UTC", "2024-01-01", 0, false);
    check("rfc3339", "UTC", "2024-01-01T00:00:00Zjunk", 0, false);
    check("rfc3339", "UTC", "2024-01-01T00:00:00+25:00", 0, false);
    check("rfc3339", "UTC", "24-01-01T00:00:00Z", 0, false);
    (void)state;
}

static void test_epoch(void **state)
{
    check("unix", "UTC", "1704067200", 1704067200 * S, true);
    check("unix", "UTC", "1704067200.25", 1704067200 * S + 250000000, true);
    check("unix", "UTC", "-1", -S, true);
    check("unix_ms", "UTC", "1704067200123", 1704067200123000000LL, true);
    check("unix_us", "UTC", "1704067200123456", 1704067200123456000LL, true);
    check("unix_ns", "UTC", "1704067200123456789", 1704067200123456789LL, true);
    check("unix", "UTC", "abc", 0, false);
    check("unix", "UTC", "1e400", 0, false);
    check("unix", "UTC", "nan", 0, false);
    check("unix", "UTC", "99999999999999999", 0, false);
    check("unix", "UTC", "", 0, false);
    (void)state;
}

static void test_patterns(void **state)
{
    check("%d/%b/%Y:%H:%M:%S %z", "UTC", "10/Oct/2000:13:55:36 -0700", 971211336 * S, true);
    check("%Y-%m-%d %H:%M:%S,%f", "UTC", "2024-01-01 00:00:01,250", 1704067201 * S + 250000000,
          true);
    check("%F %T", "UTC", "2024-01-01 00:00:00", 1704067200 * S, true);
    check("%a, %d %B %Y %T %Z", "UTC", "Mon, 01 January 2024 00:00:00 GMT", 1704067200 * S, true);
    check("%m/%d/%y %I:%M %p", "UTC", "01/01/24 12:30 AM", 1704069000 * S, true);
    check("%m/%d/%y %I:%M %p", "UTC", "01/01/24 01:30 pm", 1704115800 * S, true);
    check("%s", "UTC", "1704067200", 1704067200 * S, true);
    check("[%d/%b/%Y]", "UTC", "[01/jan/2024]", 1704067200 * S, true);
    check("%Y%m%d", "UTC", "202401", 0, false);
    check("%d/%b/%Y", "UTC", "01/Foo/2024", 0, false);
    check("%H:%M", "UTC", "25:00", 0, false);
    /* no year: the one that puts the time nearest before now (+1 day) */
    check("%b %e %H:%M:%S", "UTC", "Mar  5 10:00:00", 1709632800 * S, true);
    check("%b %e %H:%M:%S", "UTC", "Dec 31 23:00:00", 1704063600 * S, true); /* last year */
    check("%b %e %H:%M:%S", "UTC", "Mar 16 01:00:00", 1710550800 * S, true); /* clock skew */
    (void)state;
}

static void test_zones(void **state)
{
    char err[200];
    /* Europe/Berlin: CET (+1) in winter, CEST (+2) in summer; DST began 2024-03-31 01:00Z */
    check("%F %T", "Europe/Berlin", "2024-01-15 12:00:00", 1705316400 * S, true);
    check("%F %T", "Europe/Berlin", "2024-07-15 12:00:00", 1721037600 * S, true);
    check("%F %T", "Europe/Berlin", "2024-03-31 03:30:00", 1711848600 * S, true);
    check("%F %T", "America/New_York", "2024-07-04 08:00:00", 1720094400 * S, true);
    check("%F %T", "-05:00", "2024-07-04 07:00:00", 1720094400 * S, true);
    check("rfc3339", "Asia/Kolkata", "2024-01-01T05:30:00", 1704067200 * S, true);
    /* an explicit offset wins over the zone */
    check("rfc3339", "Asia/Kolkata", "2024-01-01T00:00:00Z", 1704067200 * S, true);
    struct mars_tz *tz = mars_tz_load("Europe/Berlin", err, sizeof(err));
    assert_non_null(tz);
    assert_int_equal(mars_tz_offset(tz, 1705316400), 3600);
    assert_int_equal(mars_tz_offset(tz, 1721037600), 7200);
    mars_tz_destroy(tz);
    assert_null(mars_tz_load("Nowhere/Atlantis", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown time zone"));
    assert_null(mars_tz_load("../../etc/passwd", err, sizeof(err)));
    assert_null(mars_tz_load("+25:00", err, sizeof(err)));
    assert_null(mars_timefmt_compile("%Q", "UTC", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown conversion '%Q'"));
    assert_null(mars_timefmt_compile("iso", "UTC", err, sizeof(err)));
    (void)state;
}

static void test_format_rfc3339(void **state)
{
    char buf[40];
    assert_int_equal(mars_time_rfc3339(0, buf), 30);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000000Z");
    mars_time_rfc3339(1704067200123456789LL, buf);
    assert_string_equal(buf, "2024-01-01T00:00:00.123456789Z");
    mars_time_rfc3339(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999999Z");
    mars_time_rfc3339(951782400LL * S, buf); /* leap day 2000 */
    assert_string_equal(buf, "2000-02-29T00:00:00.000000000Z");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_patterns),       cmocka_unit_test(test_zones),
        cmocka_unit_test(test_format_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
