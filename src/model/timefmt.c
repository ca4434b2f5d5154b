/*
 * timefmt.c - timestamp formats and time zones (see timefmt.h).
 *
 * Civil dates convert to epoch seconds with the days-from-civil algorithm (no timegm, no
 * locale, no global TZ), so parsing is thread-safe and allocation-free. A pattern is kept
 * as text and interpreted per call; it is short and the loop is cheap. TZif files are read
 * once, at compile time, into two arrays (transition instants, offsets) searched by
 * bisection.
 *
 * Thread: compile on any thread; compiled objects are immutable.
 */
#include "model/timefmt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- civil time ---- */

int64_t mars_time_from_civil(int64_t y, unsigned mon, unsigned d, unsigned h, unsigned mi,
                             unsigned s)
{
    y -= mon <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

size_t mars_time_rfc3339(int64_t ns, char *buf)
{
    int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec--;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, 40, "%04lld-%02u-%02uT%02u:%02u:%02u.%09lldZ", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60),
                     (long long)nsec);
    return n > 0 && n < 40 ? (size_t)n : 0;
}

/* ---- time zones ---- */

struct mars_tz {
    int64_t *at;  /* transition instants (UTC seconds), ascending */
    int32_t *off; /* offset in effect from at[i] */
    size_t n;
    int32_t initial; /* offset before the first transition (or the fixed offset) */
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses TZif data (version 2+ block when present). Returns 0 or -EINVAL. */
static int tzif_parse(struct mars_tz *tz, const unsigned char *p, size_t len)
{
    size_t tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (len < 44 || memcmp(p, "TZif", 4) != 0)
            return -EINVAL;
        uint32_t isut = be32(p + 20), isstd = be32(p + 24), leap = be32(p + 28);
        uint32_t timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
        size_t body =
            timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || len - 44 < body)
            return -EINVAL;
        if (pass == 0 && p[4] >= '2') { /* skip the 32-bit block, use the 64-bit one */
            p += 44 + body;
            len -= 44 + body;
            tsize = 8;
            continue;
        }
        const unsigned char *times = p + 44, *idx = times + timecnt * tsize;
        const unsigned char *types = idx + timecnt;
        tz->at = malloc((timecnt + 1) * sizeof(*tz->at));
        tz->off = malloc((timecnt + 1) * sizeof(*tz->off));
        if (!tz->at || !tz->off)
            return -ENOMEM;
        tz->initial = (int32_t)be32(types);
        for (uint32_t t = 0; t < typecnt; t++)
            if (types[t * 6 + 4] == 0) { /* first standard-time type */
                tz->initial = (int32_t)be32(types + t * 6);
                break;
            }
        for (uint32_t i = 0; i < timecnt; i++) {
            if (idx[i] >= typecnt)
                return -EINVAL;
            tz->at[i] = tsize == 8 ? be64(times + i * 8) : (int32_t)be32(times + i * 4);
            tz->off[i] = (int32_t)be32(types + idx[i] * 6);
        }
        tz->n = timecnt;
        return 0;
    }
    return -EINVAL;
}

static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    if (!buf)
        return -ENOMEM;
    *out = buf;
    *len = n;
    return 0;
}

/* "+08:00", "-0530", "+8". Returns true with *off in seconds. */
static bool fixed_offset(const char *s, int32_t *off)
{
    int h = 0, m = 0, n = 0;
    if ((s[0] != '+' && s[0] != '-') || !s[1])
        return false;
    const char *p = s + 1;
    while (*p >= '0' && *p <= '9' && n < 4) {
        if (n < 2)
            h = h * 10 + (*p - '0');
        else
            m = m * 10 + (*p - '0');
        p++;
        n++;
        if (n == 2 && *p == ':')
            p++;
    }
    if (*p || (n != 1 && n != 2 && n != 4) || h > 23 || m > 59)
        return false;
    if (n == 1) {
        h = s[1] - '0';
    }
    *off = (int32_t)((h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1));
    return true;
}

static bool tz_name_ok(const char *s)
{
    if (!*s || s[0] == '/' || strstr(s, ".."))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '/' || *s == '-' || *s == '+'))
            return false;
    return true;
}

struct mars_tz *mars_tz_load(const char *name, char *err, size_t errlen)
{
    struct mars_tz *tz = calloc(1, sizeof(*tz));
    char path[512];
    if (!tz) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!name || !*name || strcmp(name, "UTC") == 0 || strcmp(name, "Z") == 0 ||
        strcmp(name, "utc") == 0 || strcmp(name, "GMT") == 0)
        return tz;
    if (fixed_offset(name, &tz->initial))
        return tz;
    if (strcmp(name, "local") == 0) {
        snprintf(path, sizeof(path), "/etc/localtime");
    } else if (tz_name_ok(name)) {
        const char *dir = getenv("TZDIR");
        snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    } else {
        snprintf(err, errlen, "'%s' is not a time zone (UTC, local, +hh:mm or an IANA name)", name);
        free(tz);
        return NULL;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len);
    if (rc == 0)
        rc = tzif_parse(tz, data, len);
    free(data);
    if (rc == -ENOENT && strcmp(name, "local") == 0)
        rc = 0; /* no /etc/localtime: the system's local time is UTC */
    if (rc) {
        snprintf(err, errlen, "unknown time zone '%s' (%s: %s)", name, path,
                 rc == -EINVAL ? "not a TZif file" : strerror(-rc));
        mars_tz_destroy(tz);
        return NULL;
    }
    return tz;
}

void mars_tz_destroy(struct mars_tz *tz)
{
    if (!tz)
        return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

int32_t mars_tz_offset(const struct mars_tz *tz, int64_t utc_sec)
{
    if (tz->n == 0 || utc_sec < tz->at[0])
        return tz->initial;
    size_t lo = 0, hi = tz->n; /* last i with at[i] <= utc_sec */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= utc_sec)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

int64_t mars_tz_local_to_utc(const struct mars_tz *tz, int64_t local_sec)
{
    int64_t guess = local_sec - mars_tz_offset(tz, local_sec);
    return local_sec - mars_tz_offset(tz, guess);
}

/* ---- formats ---- */

enum fmt_kind { FMT_RFC3339, FMT_UNIX, FMT_UNIX_MS, FMT_UNIX_US, FMT_UNIX_NS, FMT_PATTERN };

struct mars_timefmt {
    enum fmt_kind kind;
    char *pattern;
    struct mars_tz *tz;
    bool has_year;
};

static const char *const month_names[] = {"january",   "february", "march",    "april",
                                          "may",       "june",     "july",     "august",
                                          "september", "october",  "november", "december"};

struct mars_timefmt *mars_timefmt_compile(const char *format, const char *tz, char *err,
                                          size_t errlen)
{
    static const char *const names[] = {"rfc3339", "unix", "unix_ms", "unix_us", "unix_ns"};
    struct mars_timefmt *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->kind = FMT_PATTERN;
    for (int i = 0; i < 5; i++)
        if (strcmp(format, names[i]) == 0)
            f->kind = (enum fmt_kind)i;
    if (f->kind == FMT_PATTERN) {
        if (!strchr(format, '%')) {
            snprintf(err, errlen,
                     "'%s' is not a time format (rfc3339, unix, unix_ms, unix_us, unix_ns or a "
                     "%%-pattern)",
                     format);
            free(f);
            return NULL;
        }
        for (const char *p = format; *p; p++) {
            if (*p != '%')
                continue;
            p++;
            if (!*p || !strchr("YymdeHIpMSfzZbhBaAjsTF%", *p)) {
                snprintf(err, errlen, "unknown conversion '%%%.1s' in time format", p);
                free(f);
                return NULL;
            }
            f->has_year |= *p == 'Y' || *p == 'y' || *p == 's' || *p == 'F';
        }
        f->pattern = strdup(format);
    }
    f->tz = mars_tz_load(tz, err, errlen);
    if (!f->tz || (f->kind == FMT_PATTERN && !f->pattern)) {
        mars_timefmt_destroy(f);
        return NULL;
    }
    return f;
}

void mars_timefmt_destroy(struct mars_timefmt *f)
{
    if (!f)
        return;
    mars_tz_destroy(f->tz);
    free(f->pattern);
    free(f);
}

struct tparse {
    const char *p, *end;
    int64_t year;
    unsigned mon, day, hour, min, sec;
    int64_t nsec;
    int32_t off;
    bool has_off, pm, has_pm, has_epoch;
    int64_t epoch;
};

static bool num(struct tparse *t, int min_digits, int max_digits, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    while (t->p < t->end && n < max_digits && *t->p >= '0' && *t->p <= '9') {
        v = v * 10 + (*t->p++ - '0');
        n++;
    }
    *out = v;
    return n >= min_digits;
}

static bool fraction(struct tparse *t)
{
    int64_t v = 0;
    int n = 0;
    while (t->p < t->end && *t->p >= '0' && *t->p <= '9') {
        if (n < 9) {
            v = v * 10 + (*t->p - '0');
            n++;
        }
        t->p++;
    }
    if (n == 0)
        return false;
    while (n++ < 9)
        v *= 10;
    t->nsec = v;
    return true;
}

/* Z, +hh:mm, +hhmm, +hh */
static bool zone_offset(struct tparse *t)
{
    if (t->p < t->end && (*t->p == 'Z' || *t->p == 'z')) {
        t->p++;
        t->off = 0;
        t->has_off = true;
        return true;
    }
    if (t->p >= t->end || (*t->p != '+' && *t->p != '-'))
        return false;
    int sign = *t->p++ == '-' ? -1 : 1;
    int64_t h, m = 0;
    if (!num(t, 2, 2, &h))
        return false;
    if (t->p < t->end && *t->p == ':')
        t->p++;
    if (t->p < t->end && *t->p >= '0' && *t->p <= '9' && !num(t, 2, 2, &m))
        return false;
    if (h > 23 || m > 59)
        return false;
    t->off = (int32_t)(sign * (h * 3600 + m * 60));
    t->has_off = true;
    return true;
}

static bool name_match(struct tparse *t, const char *const *names, int count, int *which)
{
    for (int i = 0; i < count; i++) {
        size_t full = strlen(names[i]), k = 0;
        while (t->p + k < t->end && k < full && (t->p[k] | 0x20) == names[i][k])
            k++;
        if (k == full || k == 3) {
            t->p += k;
            *which = i;
            return true;
        }
    }
    return false;
}

static bool rfc3339(struct tparse *t)
{
    int64_t y, mo, d, h, mi, s;
    if (!num(t, 4, 4, &y) || t->p >= t->end || *t->p++ != '-' || !num(t, 2, 2, &mo) ||
        t->p >= t->end || *t->p++ != '-' || !num(t, 2, 2, &d) || t->p >= t->end ||
        (*t->p != 'T' && *t->p != 't' && *t->p != ' '))
        return false;
    t->p++;
    if (!num(t, 2, 2, &h) || t->p >= t->end || *t->p++ != ':' || !num(t, 2, 2, &mi) ||
        t->p >= t->end || *t->p++ != ':' || !num(t, 2, 2, &s))
        return false;
    if (t->p < t->end && (*t->p == '.' || *t->p == ',')) {
        t->p++;
        if (!fraction(t))
            return false;
    }
    if (t->p < t->end && !zone_offset(t))
        return false;
    t->year = y;
    t->mon = (unsigned)mo;
    t->day = (unsigned)d;
    t->hour = (unsigned)h;
    t->min = (unsigned)mi;
    t->sec = (unsigned)s;
    return true;
}

static bool conversion(struct tparse *t, char c)
{
    static const char *const days[] = {"sunday",   "monday", "tuesday", "wednesday",
                                       "thursday", "friday", "saturday"};
    int64_t v;
    int which;
    switch (c) {
    case 'Y':
        if (!num(t, 4, 4, &v))
            return false;
        t->year = v;
        return true;
    case 'y':
        if (!num(t, 2, 2, &v))
            return false;
        t->year = v < 69 ? 2000 + v : 1900 + v;
        return true;
    case 'm':
        if (!num(t, 1, 2, &v))
            return false;
        t->mon = (unsigned)v;
        return true;
    case 'e':
        while (t->p < t->end && *t->p == ' ')
            t->p++; /* fall through */
    /* FALLTHROUGH */
    case 'd':
        if (!num(t, 1, 2, &v))
            return false;
        t->day = (unsigned)v;
        return true;
    case 'H':
    case 'I':
        if (!num(t, 1, 2, &v))
            return false;
        t->hour = (unsigned)v;
        return true;
    case 'M':
        if (!num(t, 1, 2, &v))
            return false;
        t->min = (unsigned)v;
        return true;
    case 'S':
        if (!num(t, 1, 2, &v))
            return false;
        t->sec = (unsigned)v;
        return true;
    case 'f':
        return fraction(t);
    case 'z':
        return zone_offset(t);
    case 'Z':
        if (t->end - t->p >= 3 && (memcmp(t->p, "UTC", 3) == 0 || memcmp(t->p, "GMT", 3) == 0)) {
            t->p += 3;
        } else if (t->p < t->end && *t->p == 'Z') {
            t->p++;
        } else {
            return false;
        }
        t->off = 0;
        t->has_off = true;
        return true;
    case 'b':
    case 'h':
    case 'B':
        if (!name_match(t, month_names, 12, &which))
            return false;
        t->mon = (unsigned)which + 1;
        return true;
    case 'a':
    case 'A':
        return name_match(t, days, 7, &which);
    case 'p':
        if (t->end - t->p < 2 || ((t->p[1] | 0x20) != 'm'))
            return false;
        t->has_pm = true;
        t->pm = (t->p[0] | 0x20) == 'p';
        t->p += 2;
        return true;
    case 'j':
        return num(t, 1, 3, &v);
    case 's': {
        bool neg = t->p < t->end && *t->p == '-';
        t->p += neg;
        if (!num(t, 1, 18, &v))
            return false;
        t->epoch = neg ? -v : v;
        t->has_epoch = true;
        return true;
    }
    case '%':
        return t->p < t->end && *t->p++ == '%';
    }
    return false;
}

static bool pattern(struct tparse *t, const char *f)
{
    for (; *f; f++) {
        if (*f == '%') {
            char c = *++f;
            bool ok = c == 'T'   ? pattern(t, "%H:%M:%S")
                      : c == 'F' ? pattern(t, "%Y-%m-%d")
                                 : conversion(t, c);
            if (!ok)
                return false;
        } else if (*f == ' ') {
            if (t->p >= t->end || (*t->p != ' ' && *t->p != '\t'))
                return false;
            while (t->p < t->end && (*t->p == ' ' || *t->p == '\t'))
                t->p++;
        } else if (t->p >= t->end || *t->p++ != *f) {
            return false;
        }
    }
    return true;
}

/* [-]digits[.digits] exactly, or a number in exponent form (read as a double). */
static int epoch_number(const char *s, size_t n, int64_t unit_ns, int64_t *out)
{
    size_t i = s[0] == '-' && n > 1, int_start = i;
    int64_t v = 0, frac = 0, scale = 1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (s[i++] - '0');
    }
    if (i == int_start)
        return -EINVAL;
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (scale < 1000000000) {
                frac = frac * 10 + (s[i] - '0');
                scale *= 10;
            }
    }
    if (i == n) {
        if (v > INT64_MAX / unit_ns - 1)
            return -EINVAL; /* past year 2262 */
        int64_t ns = v * unit_ns + frac * unit_ns / scale;
        *out = s[0] == '-' ? -ns : ns;
        return 0;
    }
    char buf[64], *end;
    if (n >= sizeof(buf) || strpbrk(s, "xXnNiI"))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double d = strtod(buf, &end) * (double)unit_ns;
    if (end != buf + n || !(d < 9.2e18) || !(d > -9.2e18))
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

/* Settles a missing year: the one that puts the time nearest before now (+1 day slack). */
static int64_t infer_year(const struct mars_timefmt *f, const struct tparse *t, int64_t now_ns)
{
    int64_t now = now_ns / 1000000000, y;
    unsigned m, d;
    civil_from_days((now + mars_tz_offset(f->tz, now)) / 86400, &y, &m, &d);
    int64_t local = mars_time_from_civil(y, t->mon, t->day, t->hour, t->min, t->sec);
    int64_t local_now = now + mars_tz_offset(f->tz, now);
    return local > local_now + 86400 ? y - 1 : y;
}

int mars_timefmt_parse(const struct mars_timefmt *f, const char *s, size_t n, int64_t now_ns,
                       int64_t *out_ns)
{
    static const int64_t units[] = {0, 1000000000, 1000000, 1000, 1};
    struct tparse t = {.p = s, .end = s + n, .year = 1970, .mon = 1, .day = 1};

    if (f->kind >= FMT_UNIX && f->kind <= FMT_UNIX_NS)
        return epoch_number(s, n, units[f->kind], out_ns);
    bool ok = f->kind == FMT_RFC3339 ? rfc3339(&t) : pattern(&t, f->pattern);
    if (!ok || t.p != t.end)
        return -EINVAL;
    if (t.has_epoch) {
        *out_ns = t.epoch * 1000000000 + t.nsec;
        return 0;
    }
    if (t.has_pm) {
        if (t.hour < 1 || t.hour > 12)
            return -EINVAL;
        t.hour = t.hour % 12 + (t.pm ? 12 : 0);
    }
    if (f->kind == FMT_PATTERN && !f->has_year)
        t.year = infer_year(f, &t, now_ns);
    if (t.mon < 1 || t.mon > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.min > 59 ||
        t.sec > 60 || t.year < 0 || t.year > 9999)
        return -EINVAL;
    if (t.sec == 60)
        t.sec = 59; /* leap second: the nearest representable instant */
    int64_t sec = mars_time_from_civil(t.year, t.mon, t.day, t.hour, t.min, t.sec);
    sec = t.has_off ? sec - t.off : mars_tz_local_to_utc(f->tz, sec);
    *out_ns = sec * 1000000000 + t.nsec;
    return 0;
}
