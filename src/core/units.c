/*
 * units.c - the value syntaxes shared by the schema and the rest of mars: sizes ("64MiB"),
 * durations ("1m30s"), booleans, their exact formatting, and the "did you mean" helper.
 *
 * How it works: a number is read as an integer part plus up to 9 significant fraction
 * digits, then scaled by its unit in integer arithmetic (no floating point), so "1.5MiB" is
 * exactly 1572864 and every overflow is caught. A fraction that does not land on a whole
 * byte or nanosecond is rejected rather than rounded. Formatting picks the exact, compact
 * spelling that the parsers read back to the same value. Suggestions use an edit distance
 * that counts a swap of two neighbouring letters as one typo.
 *
 * Units are case-sensitive as written in the error hints; a unit is required except for a
 * bare "0". Error reasons are static strings.
 *
 * Thread: any; no state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/schema.h"

#define SIZE_HINT       "(use B, KB, MB, GB, KiB, MiB, GiB, TiB)"
#define DURATION_HINT   "(use ns, us, ms, s, m, h, d)"
#define MAX_FRAC_DIGITS 9
#define NS_PER_SEC      1000000000ull

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit size_units[] = {
    {"B", 1},
    {"KB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {NULL, 0},
};

static const struct unit duration_units[] = {
    {"ns", 1},
    {"us", 1000ull},
    {"\xc2\xb5s", 1000ull}, /* "µs" */
    {"ms", 1000ull * 1000},
    {"s", NS_PER_SEC},
    {"m", 60 * NS_PER_SEC},
    {"h", 3600 * NS_PER_SEC},
    {"d", 86400 * NS_PER_SEC},
    {NULL, 0},
};

/* "12.50" as ipart 12, frac 5, frac_digits 1 (trailing zeros dropped). */
struct decimal {
    uint64_t ipart;
    uint64_t frac;
    unsigned frac_digits;
    bool overflow; /* integer part does not fit 64 bits */
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads digits[.digits] at *p and advances *p. 0, or -EINVAL with *err. */
static int parse_decimal(const char **p, struct decimal *d, const char **err)
{
    const char *s = *p;

    memset(d, 0, sizeof(*d));
    if (!is_digit(*s)) {
        *err = "expected a number";
        return -EINVAL;
    }
    for (; is_digit(*s); s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (d->ipart > (UINT64_MAX - digit) / 10)
            d->overflow = true;
        else
            d->ipart = d->ipart * 10 + digit;
    }
    if (*s == '.') {
        const char *start = ++s, *end;
        if (!is_digit(*s)) {
            *err = "expected digits after the decimal point";
            return -EINVAL;
        }
        while (is_digit(*s))
            s++;
        for (end = s; end > start && end[-1] == '0'; end--)
            ;
        if (end - start > MAX_FRAC_DIGITS) {
            *err = "too many decimal places (at most 9)";
            return -EINVAL;
        }
        for (const char *q = start; q < end; q++)
            d->frac = d->frac * 10 + (uint64_t)(*q - '0');
        d->frac_digits = (unsigned)(end - start);
    }
    *p = s;
    return 0;
}

/* d * mult exactly. -ERANGE when too large, -EDOM when the fraction is not whole. */
static int scale(const struct decimal *d, uint64_t mult, uint64_t *out)
{
    uint64_t pow10 = 1;

    if (d->overflow || (mult && d->ipart > UINT64_MAX / mult))
        return -ERANGE;
    for (unsigned i = 0; i < d->frac_digits; i++)
        pow10 *= 10;
    /* frac < pow10 <= 1e9, so frac * (mult % pow10) < 1e18 and frac * (mult / pow10) < mult. */
    uint64_t rem = d->frac * (mult % pow10);
    if (rem % pow10 != 0)
        return -EDOM;
    uint64_t frac = d->frac * (mult / pow10) + rem / pow10;
    uint64_t whole = d->ipart * mult;
    if (whole > UINT64_MAX - frac)
        return -ERANGE;
    *out = whole + frac;
    return 0;
}

static const struct unit *find_unit(const struct unit *units, const char *s, size_t len)
{
    for (const struct unit *u = units; u->name; u++) {
        if (strlen(u->name) == len && memcmp(u->name, s, len) == 0)
            return u;
    }
    return NULL;
}

int mars_parse_size(const char *s, uint64_t *out, const char **err)
{
    struct decimal d;
    const char *p = s;

    if (!s || !*s) {
        *err = "empty value";
        return -EINVAL;
    }
    if (*s == '-') {
        *err = "negative sizes are not allowed";
        return -EINVAL;
    }
    if (parse_decimal(&p, &d, err) < 0)
        return -EINVAL;
    while (*p == ' ')
        p++;
    if (!*p) {
        if (d.ipart == 0 && d.frac == 0 && !d.overflow) {
            *out = 0;
            return 0;
        }
        *err = "missing unit " SIZE_HINT;
        return -EINVAL;
    }
    const struct unit *u = find_unit(size_units, p, strlen(p));
    if (!u) {
        *err = "unknown unit " SIZE_HINT;
        return -EINVAL;
    }
    int rc = scale(&d, u->mult, out);
    if (rc == -ERANGE)
        *err = "too large (at most 16 EiB)";
    else if (rc == -EDOM)
        *err = "fraction does not give a whole number of bytes";
    return rc < 0 ? -EINVAL : 0;
}

/* Letters of a unit name: ASCII letters and the bytes of "µ". */
static bool is_unit_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (unsigned char)c >= 0x80;
}

int mars_parse_duration(const char *s, int64_t *out_ns, const char **err)
{
    const char *p = s;
    uint64_t total = 0;

    if (!s || !*s) {
        *err = "empty value";
        return -EINVAL;
    }
    if (*s == '-') {
        *err = "negative durations are not allowed";
        return -EINVAL;
    }
    while (*p) {
        struct decimal d;
        uint64_t part;
        if (parse_decimal(&p, &d, err) < 0)
            return -EINVAL;
        const char *unit = p;
        while (is_unit_char(*p))
            p++;
        if (p == unit) {
            /* Only a lone zero may go without a unit. */
            if (unit == s + 1 && !*p && d.ipart == 0) {
                *out_ns = 0;
                return 0;
            }
            *err = "missing unit " DURATION_HINT;
            return -EINVAL;
        }
        const struct unit *u = find_unit(duration_units, unit, (size_t)(p - unit));
        if (!u) {
            *err = "unknown unit " DURATION_HINT;
            return -EINVAL;
        }
        int rc = scale(&d, u->mult, &part);
        if (rc == -EDOM) {
            *err = "fraction is finer than a nanosecond";
            return -EINVAL;
        }
        if (rc < 0 || part > (uint64_t)INT64_MAX - total) {
            *err = "too large (at most about 292 years)";
            return -EINVAL;
        }
        total += part;
    }
    *out_ns = (int64_t)total;
    return 0;
}

int mars_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

char *mars_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const struct unit binary[] = {
        {"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};

    for (size_t i = 0; bytes && i < sizeof(binary) / sizeof(binary[0]); i++) {
        if (bytes % binary[i].mult == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", bytes / binary[i].mult, binary[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64 "B", bytes);
    return buf;
}

/* Appends "WHOLE[.FRAC]UNIT" where frac has `width` digits, trailing zeros dropped. */
static size_t put_decimal(char *buf, size_t len, size_t at, uint64_t whole, uint64_t frac,
                          int width, const char *unit)
{
    int n;

    if (at >= len)
        return at;
    if (frac == 0) {
        n = snprintf(buf + at, len - at, "%" PRIu64 "%s", whole, unit);
    } else {
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        n = snprintf(buf + at, len - at, "%" PRIu64 ".%0*" PRIu64 "%s", whole, width, frac, unit);
    }
    return n < 0 ? at : at + (size_t)n;
}

char *mars_format_duration(int64_t ns, char *buf, size_t len)
{
    /* Magnitude without overflow for INT64_MIN. */
    uint64_t u = ns < 0 ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
    size_t at = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (ns < 0 && len > 1) {
        buf[at++] = '-';
        buf[at] = '\0';
    }
    if (u < 1000) {
        put_decimal(buf, len, at, u, 0, 0, u == 0 ? "s" : "ns");
    } else if (u < 1000000) {
        put_decimal(buf, len, at, u / 1000, u % 1000, 3, "us");
    } else if (u < NS_PER_SEC) {
        put_decimal(buf, len, at, u / 1000000, u % 1000000, 6, "ms");
    } else {
        uint64_t secs = u / NS_PER_SEC, sub = u % NS_PER_SEC;
        uint64_t parts[] = {secs / 86400, secs / 3600 % 24, secs / 60 % 60};
        static const char *const names[] = {"d", "h", "m"};
        for (size_t i = 0; i < 3; i++) {
            if (parts[i])
                at = put_decimal(buf, len, at, parts[i], 0, 0, names[i]);
        }
        if (secs % 60 || sub)
            put_decimal(buf, len, at, secs % 60, sub, 9, "s");
    }
    return buf;
}

/*
 * Edit distance where an adjacent transposition counts as one edit, like an insertion,
 * deletion or substitution (optimal string alignment): "tpye" is one typo away from "type".
 * Three rolling rows; strings longer than SUGGEST_MAX_LEN are not compared.
 */
#define SUGGEST_MAX_LEN 64

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][SUGGEST_MAX_LEN + 1];
    size_t *older = rows[0], *prev = rows[1], *cur = rows[2];

    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]));
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                older[j - 2] + 1 < cur[j])
                cur[j] = older[j - 2] + 1;
        }
        size_t *t = older;
        older = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *mars_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t lw = word ? strlen(word) : 0;
    size_t limit = lw / 3 > 1 ? lw / 3 : 1;
    size_t best_dist = SIZE_MAX;
    const char *best = NULL;

    if (lw == 0 || lw > SUGGEST_MAX_LEN)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t lc = c ? strlen(c) : 0;
        if (lc == 0 || lc > SUGGEST_MAX_LEN || strcmp(c, word) == 0)
            continue;
        size_t dist = edit_distance(word, lw, c, lc);
        bool prefix = strncmp(c, word, lw) == 0;
        if ((dist <= limit || prefix) && dist < best_dist) {
            best = c;
            best_dist = dist;
        }
    }
    return best;
}
