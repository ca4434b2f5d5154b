/*
 * json.c - the zero-copy JSON scanner (see json.h).
 *
 * Recursive descent over the bytes, one function per grammar rule, depth bounded by the
 * caller's limit (so recursion is bounded too). Strings are the hot loop: 32 bytes at a
 * time (AVX2, where the CPU has it), then eight (SWAR), are tested for a quote, a backslash
 * or a control byte, and only those stop the fast path; non-ASCII bytes are only noted, and
 * a string that had some is validated as UTF-8 once, by core/utf8's vector validator (a
 * string is valid JSON text exactly when its bytes are valid UTF-8, since every structural
 * byte is ASCII). Escapes and UTF-8 are checked exactly: \u surrogates must come in
 * high-low pairs, UTF-8 rejects overlongs, surrogates and values above U+10FFFF.
 * Numbers follow the RFC 8259 grammar strictly (no leading zeros, no '+', no bare '.').
 *
 * Recording: when the scanner has a builder, object members become builder entries under
 * their object; values inside arrays are validated but not recorded (the array keeps its
 * raw text), so an array of ten thousand numbers costs no entries. Keys with escapes are
 * decoded into the builder's arena (lookups compare plain bytes); string values are not.
 *
 * Thread: any.
 */
#include "model/json.h"

#include "model/json_internal.h"

#include <string.h>

#include "core/arena.h"
#include "core/utf8.h"

/* The small steps of the scan (a string, a number, a key, a comma) are forced inline into
 * the object loop: as calls, every step stores and reloads sc->p, since the compiler must
 * assume a call may read or write *sc; inline, it stays in a register. Parsing the bench's
 * JSON logs got 24% cheaper (0.754 -> 0.576 CPU-s/GiB). */
#define STEP static inline __attribute__((always_inline))

struct scan {
    const unsigned char *p, *end, *start;
    unsigned max_depth;
    struct mars_fbuild *fb; /* NULL: validate only */
    /* the line index (lines up to INDEX_BYTES): per 64 bytes from start, bits of the quotes,
     * backslashes and control bytes, and of the bytes above 0x7F; NULL when not built */
    const uint64_t *special, *high;
    bool utf8_ok; /* the caller knows the text is valid UTF-8: strings are not checked */
    enum mars_json_error err;
    const unsigned char *err_at;
};

const char *mars_json_strerror(enum mars_json_error e)
{
    static const char *const names[MARS_JSON__COUNT] = {
        [MARS_JSON_OK] = "ok",
        [MARS_JSON_EMPTY] = "empty input",
        [MARS_JSON_TRUNCATED] = "input ends inside a value",
        [MARS_JSON_UNEXPECTED] = "unexpected character",
        [MARS_JSON_CONTROL_CHAR] = "control character in a string",
        [MARS_JSON_BAD_ESCAPE] = "invalid escape in a string",
        [MARS_JSON_BAD_UNICODE] = "invalid \\u escape or unpaired surrogate",
        [MARS_JSON_BAD_UTF8] = "invalid UTF-8 in a string",
        [MARS_JSON_BAD_NUMBER] = "invalid number",
        [MARS_JSON_TOO_DEEP] = "nesting too deep",
        [MARS_JSON_TRAILING] = "bytes after the JSON value",
        [MARS_JSON_NOT_OBJECT] = "not a JSON object",
        [MARS_JSON_TOO_MANY] = "too many members",
        [MARS_JSON_NOMEM] = "out of memory",
    };
    return (unsigned)e < MARS_JSON__COUNT ? names[e] : "unknown error";
}

static bool fail(struct scan *sc, enum mars_json_error e, const unsigned char *at)
{
    if (sc->err == MARS_JSON_OK) {
        sc->err = e;
        sc->err_at = at;
    }
    return false;
}

static inline void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\r' || *sc->p == '\t'))
        sc->p++;
}

/* ---- strings ---- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Checks the up to 4 hex digits of a \u escape that fit before end: BAD_UNICODE when one
 * is not hex, TRUNCATED when they are but fewer than 4 are there, OK otherwise. */
static enum mars_json_error hex_digits(const unsigned char *p, const unsigned char *end)
{
    for (int i = 0; i < 4; i++) {
        if (p + i >= end)
            return MARS_JSON_TRUNCATED;
        if (hexval(p[i]) < 0)
            return MARS_JSON_BAD_UNICODE;
    }
    return MARS_JSON_OK;
}

long mars_json_hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* Validates the escape at sc->p (a backslash). */
static bool scan_escape(struct scan *sc)
{
    const unsigned char *at = sc->p;
    if (sc->end - sc->p < 2)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    switch (sc->p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        sc->p += 2;
        return true;
    case 'u':
        break;
    default:
        return fail(sc, MARS_JSON_BAD_ESCAPE, at);
    }
    enum mars_json_error e = hex_digits(sc->p + 2, sc->end);
    if (e != MARS_JSON_OK)
        return fail(sc, e, e == MARS_JSON_TRUNCATED ? sc->end : at);
    long cp = mars_json_hex4(sc->p + 2);
    sc->p += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(sc, MARS_JSON_BAD_UNICODE, at); /* low surrogate first */
    if (cp < 0xD800 || cp > 0xDBFF)
        return true;
    /* a high surrogate needs \uDC00-\uDFFF right after it */
    size_t left = (size_t)(sc->end - sc->p);
    if ((left >= 1 && sc->p[0] != '\\') || (left >= 2 && sc->p[1] != 'u'))
        return fail(sc, MARS_JSON_BAD_UNICODE, at);
    if (left < 2)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    e = hex_digits(sc->p + 2, sc->end);
    if (e != MARS_JSON_OK)
        return fail(sc, e, e == MARS_JSON_TRUNCATED ? sc->end : at);
    long lo = mars_json_hex4(sc->p + 2);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(sc, MARS_JSON_BAD_UNICODE, at);
    sc->p += 6;
    return true;
}

/* Validates the UTF-8 sequence at sc->p (lead byte >= 0x80). */
static bool scan_utf8(struct scan *sc)
{
    const unsigned char *p = sc->p;
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return fail(sc, MARS_JSON_BAD_UTF8, p);
    if ((size_t)(sc->end - p) < len) {
        for (const unsigned char *q = p + 1; q < sc->end; q++)
            if ((*q & 0xC0) != 0x80)
                return fail(sc, MARS_JSON_BAD_UTF8, p);
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    }
    if (p[1] < lo || p[1] > hi)
        return fail(sc, MARS_JSON_BAD_UTF8, p);
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return fail(sc, MARS_JSON_BAD_UTF8, p);
    sc->p += len;
    return true;
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "json.c's string scan assumes a little-endian target"
#endif

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when some byte of x is '"', '\\' or below 0x20; the lowest flagged byte is exact
 * (borrows only reach higher bytes). Bytes above 0x7F are not flagged. */
static inline uint64_t special_bytes(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    uint64_t zq = (q - ONES) & ~q, zb = (b - ONES) & ~b;
    uint64_t ctl = (x - ONES * 0x20) & ~x;
    return (zq | zb | ctl) & HIGHS;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The 32 bytes at p: returns the bits of those that are a quote, a backslash or a control
 * byte, and sets *high to the bits of those above 0x7F. */
__attribute__((target("avx2"))) static inline uint32_t specials32(const unsigned char *p,
                                                                  uint32_t *high)
{
    const __m256i q = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\');
    const __m256i c1f = _mm256_set1_epi8(0x1f);
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i ctl = _mm256_cmpeq_epi8(_mm256_max_epu8(v, c1f), c1f); /* v <= 0x1f */
    __m256i x =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, q), _mm256_cmpeq_epi8(v, bs)), ctl);
    *high = (uint32_t)_mm256_movemask_epi8(v);
    return (uint32_t)_mm256_movemask_epi8(x);
}

/* 32 bytes per step from *pp up to the first quote, backslash or control byte: true with
 * *pp there, or false with *pp before the last 31 bytes, where no whole step is left.
 * *high notes bytes above 0x7F among those passed (and maybe a few after). */
__attribute__((target("avx2,bmi"))) static bool
string_run_avx2(const unsigned char **pp, const unsigned char *end, uint32_t *high)
{
    const unsigned char *p = *pp;
    uint32_t h = 0;
    while (end - p >= 32) {
        uint32_t hb, m = specials32(p, &hb);
        h |= hb;
        if (m) {
            *high |= h;
            *pp = p + __builtin_ctz(m);
            return true;
        }
        p += 32;
    }
    *high |= h;
    *pp = p;
    return false;
}
#define HAVE_AVX2() __builtin_cpu_supports("avx2")
#else
#define HAVE_AVX2()                    0
#define string_run_avx2(pp, end, high) false
#endif

/* Bytes of a string above 0x7F are checked once per string, by the vector validator, not
 * one sequence at a time; only an invalid string is walked again to say where. */
static bool string_utf8(struct scan *sc, const unsigned char *b, const unsigned char *e)
{
    if (sc->utf8_ok || mars_utf8_invalid(b, (size_t)(e - b)) == 0)
        return true;
    const unsigned char *save = sc->p;
    sc->p = b;
    while (sc->p < e) {
        if (*sc->p < 0x80)
            sc->p++;
        else if (!scan_utf8(sc))
            return false;
    }
    sc->p = save;
    return true;
}

/* ---- the line index ---- */

#define INDEX_BYTES 4096 /* longer text is scanned string by string */
#define INDEX_WORDS (INDEX_BYTES / 64)

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static inline void index_block(const unsigned char *p, uint64_t *sp,
                                                               uint64_t *hi)
{
    uint32_t h0, h1;
    uint64_t m0 = specials32(p, &h0), m1 = specials32(p + 32, &h1);
    *sp = m0 | m1 << 32;
    *hi = h0 | (uint64_t)h1 << 32;
}

/* Builds the index of s[0, n) (n <= INDEX_BYTES) into sp[] and hi[]. The last partial
 * block is copied into a buffer padded with a plain letter, which sets no bit. */
__attribute__((target("avx2"))) static void index_line(const unsigned char *s, size_t n,
                                                       uint64_t *sp, uint64_t *hi)
{
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++)
        index_block(s + i, &sp[w], &hi[w]);
    if (i < n) {
        unsigned char tail[64];
        memset(tail, 'a', sizeof(tail));
        memcpy(tail, s + i, n - i);
        index_block(tail, &sp[w], &hi[w]);
    }
}
#else
#define index_line(s, n, sp, hi) ((void)0)
#endif

/* The first quote, backslash or control byte at or after p, or end. */
static inline const unsigned char *next_special(const struct scan *sc, const unsigned char *p)
{
    size_t off = (size_t)(p - sc->start), w = off >> 6;
    size_t nw = ((size_t)(sc->end - sc->start) + 63) >> 6;
    if (w >= nw)
        return sc->end;
    uint64_t m = sc->special[w] & (~0ULL << (off & 63));
    while (!m) {
        if (++w >= nw)
            return sc->end;
        m = sc->special[w];
    }
    return sc->start + (w << 6) + __builtin_ctzll(m);
}

/* Whether a byte above 0x7F lies in [a, b). */
static inline bool high_between(const struct scan *sc, const unsigned char *a,
                                const unsigned char *b)
{
    if (a >= b)
        return false;
    size_t x = (size_t)(a - sc->start), y = (size_t)(b - sc->start);
    size_t wx = x >> 6, wy = (y - 1) >> 6, top = y - (wy << 6); /* 1..64 bits of word wy */
    uint64_t last = top == 64 ? ~0ULL : (1ULL << top) - 1;
    uint64_t first = sc->high[wx] & (~0ULL << (x & 63));
    if (wx == wy)
        return (first & last) != 0;
    if (first)
        return true;
    for (size_t w = wx + 1; w < wy; w++)
        if (sc->high[w])
            return true;
    return (sc->high[wy] & last) != 0;
}

/* ---- strings: the scan ---- */

/* From sc->p inside a string, with the line index: stops at the closing quote, a control
 * byte or the end; escapes are checked on the way. */
STEP bool string_indexed(struct scan *sc, const unsigned char **from, bool *escaped)
{
    for (;;) {
        sc->p = next_special(sc, sc->p);
        if (sc->p >= sc->end || *sc->p != '\\')
            return true;
        *escaped = true;
        if (!sc->utf8_ok && high_between(sc, *from, sc->p) && !string_utf8(sc, *from, sc->p))
            return false;
        *from = sc->p; /* [from, here) is valid: only what follows is left to check */
        if (!scan_escape(sc))
            return false;
    }
}

/* The same without the index: 32 bytes per step, then eight, then one. *high gathers the
 * bytes above 0x7F seen since *from (and maybe a few after the stop). */
static bool string_run(struct scan *sc, const unsigned char **from, bool *escaped, uint64_t *high)
{
    bool avx2 = sc->end - sc->p >= 32 && HAVE_AVX2();
    uint32_t vhigh = 0;
    for (;;) {
        bool found = avx2 && string_run_avx2(&sc->p, sc->end, &vhigh);
        while (!found && sc->end - sc->p >= 8) {
            uint64_t x, sp;
            memcpy(&x, sc->p, 8);
            *high |= x;
            if ((sp = special_bytes(x)) != 0) {
                sc->p += (size_t)__builtin_ctzll(sp) / 8; /* little-endian: lowest first */
                break;
            }
            sc->p += 8;
        }
        *high |= vhigh ? HIGHS : 0;
        vhigh = 0;
        if (sc->p >= sc->end)
            return true;
        unsigned char c = *sc->p;
        if (c == '"' || c < 0x20)
            return true;
        if (c == '\\') {
            *escaped = true;
            if ((*high & HIGHS) && !string_utf8(sc, *from, sc->p))
                return false;
            *high = 0;
            *from = sc->p;
            if (!scan_escape(sc))
                return false;
        } else {
            *high |= c; /* the last bytes, one at a time */
            sc->p++;
        }
    }
}

/* String at sc->p (the opening quote). Sets body and whether it has escapes. */
STEP bool scan_string(struct scan *sc, const unsigned char **body, size_t *len, bool *escaped)
{
    const unsigned char *b = ++sc->p, *from = b;
    uint64_t high = 0;
    *escaped = false;
    if (sc->special) {
        if (!string_indexed(sc, &from, escaped))
            return false;
        high = !sc->utf8_ok && high_between(sc, from, sc->p) ? HIGHS : 0;
    } else if (!string_run(sc, &from, escaped, &high)) {
        return false;
    }
    /* invalid UTF-8 before the stop is the first error */
    if ((high & HIGHS) && !string_utf8(sc, from, sc->p))
        return false;
    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    if (*sc->p != '"')
        return fail(sc, MARS_JSON_CONTROL_CHAR, sc->p);
    *body = b;
    *len = (size_t)(sc->p - b);
    sc->p++;
    return true;
}

/* ---- numbers and literals ---- */

STEP bool digits(struct scan *sc)
{
    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    if (*sc->p < '0' || *sc->p > '9')
        return fail(sc, MARS_JSON_BAD_NUMBER, sc->p);
    while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9')
        sc->p++;
    return true;
}

STEP bool scan_number(struct scan *sc)
{
    if (*sc->p == '-')
        sc->p++;
    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    if (*sc->p == '0') {
        sc->p++;
    } else if (!digits(sc)) {
        return false;
    }
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        if (!digits(sc))
            return false;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
            sc->p++;
        if (!digits(sc))
            return false;
    }
    /* "01", "1x": a number must be followed by a delimiter */
    if (sc->p < sc->end && ((*sc->p >= '0' && *sc->p <= '9') || *sc->p == '.' || *sc->p == 'e' ||
                            *sc->p == 'E' || *sc->p == '-' || *sc->p == '+' ||
                            (*sc->p >= 'a' && *sc->p <= 'z') || (*sc->p >= 'A' && *sc->p <= 'Z')))
        return fail(sc, MARS_JSON_BAD_NUMBER, sc->p);
    return true;
}

STEP bool scan_literal(struct scan *sc, const char *word, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sc->p + i >= sc->end)
            return fail(sc, MARS_JSON_TRUNCATED, sc->end);
        if (sc->p[i] != (unsigned char)word[i])
            return fail(sc, MARS_JSON_UNEXPECTED, sc->p + i);
    }
    sc->p += n;
    return true;
}

/* ---- values ---- */

static bool scan_container(struct scan *sc, unsigned depth, uint32_t parent, const char *key,
                           uint32_t key_len, uint64_t *bloom);
STEP bool scan_value(struct scan *sc, unsigned depth, uint32_t parent, const char *key,
                     uint32_t key_len, uint64_t *bloom);

STEP bool put(struct scan *sc, uint32_t parent, const char *key, uint32_t key_len,
              enum mars_field_kind kind, const unsigned char *v, size_t vlen, unsigned flags,
              uint64_t *bloom, uint32_t *idx)
{
    if (vlen > UINT32_MAX)
        return fail(sc, MARS_JSON_TOO_MANY, sc->p);
    *idx = mars_fbuild_put(sc->fb, parent, key, key_len, kind, (const char *)v, (uint32_t)vlen,
                           flags, true, bloom);
    if (*idx == MARS_FIELD_NIL)
        return fail(sc, sc->fb->n >= MARS_FIELDS_MAX ? MARS_JSON_TOO_MANY : MARS_JSON_NOMEM, sc->p);
    return true;
}

/* A member key: plain bytes of the input, or decoded into the arena when escaped. */
STEP bool member_key(struct scan *sc, const char **key, uint32_t *klen)
{
    const unsigned char *body;
    size_t len;
    bool esc;
    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    if (*sc->p != '"')
        return fail(sc, MARS_JSON_UNEXPECTED, sc->p);
    if (!scan_string(sc, &body, &len, &esc))
        return false;
    if (len > UINT32_MAX)
        return fail(sc, MARS_JSON_TOO_MANY, sc->p);
    *key = (const char *)body;
    *klen = (uint32_t)len;
    if (esc && sc->fb) {
        char *d = mars_arena_alloc(sc->fb->arena, len);
        if (!d)
            return fail(sc, MARS_JSON_NOMEM, sc->p);
        *klen = (uint32_t)mars_json_unescape((const char *)body, len, d);
        *key = d;
    }
    return true;
}

/* Object at sc->p ('{'); members recorded under obj unless obj is NIL. */
/* After a member or element: `close` ends the container (0, consumed), a comma and the
 * whitespace after it lead to the next one (1); anything else fails (-1). */
STEP int close_or_comma(struct scan *sc, char close)
{
    skip_ws(sc);
    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end) ? 0 : -1;
    if (*sc->p == close) {
        sc->p++;
        return 0;
    }
    if (*sc->p != ',')
        return fail(sc, MARS_JSON_UNEXPECTED, sc->p) ? 0 : -1;
    sc->p++;
    skip_ws(sc);
    return 1;
}

static bool scan_object(struct scan *sc, unsigned depth, uint32_t obj)
{
    uint64_t bloom = 0;
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return true;
    }
    for (;;) {
        const char *key;
        uint32_t klen;
        if (!member_key(sc, &key, &klen))
            return false;
        skip_ws(sc);
        if (sc->p >= sc->end)
            return fail(sc, MARS_JSON_TRUNCATED, sc->end);
        if (*sc->p != ':')
            return fail(sc, MARS_JSON_UNEXPECTED, sc->p);
        sc->p++;
        skip_ws(sc);
        if (!scan_value(sc, depth, obj, key, klen, &bloom))
            return false;
        int next = close_or_comma(sc, '}');
        if (next <= 0)
            return next == 0;
    }
}

static bool scan_array(struct scan *sc, unsigned depth)
{
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
        return true;
    }
    for (;;) {
        if (!scan_value(sc, depth, MARS_FIELD_NIL, NULL, 0, NULL))
            return false;
        int next = close_or_comma(sc, ']');
        if (next <= 0)
            return next == 0;
    }
}

static bool scan_container(struct scan *sc, unsigned depth, uint32_t parent, const char *key,
                           uint32_t key_len, uint64_t *bloom)
{
    const unsigned char *start = sc->p;
    bool record = parent != MARS_FIELD_NIL;
    uint32_t idx = MARS_FIELD_NIL;

    if (depth + 1 > sc->max_depth)
        return fail(sc, MARS_JSON_TOO_DEEP, sc->p);
    if (*sc->p == '{') {
        if (record && !put(sc, parent, key, key_len, MARS_FIELD_OBJECT, start, 0, 0, bloom, &idx))
            return false;
        return scan_object(sc, depth + 1, idx);
    }
    if (!scan_array(sc, depth + 1))
        return false;
    return !record || put(sc, parent, key, key_len, MARS_FIELD_ARRAY, start,
                          (size_t)(sc->p - start), 0, bloom, &idx);
}

STEP bool scan_value(struct scan *sc, unsigned depth, uint32_t parent, const char *key,
                     uint32_t key_len, uint64_t *bloom)
{
    const unsigned char *start = sc->p;
    bool record = parent != MARS_FIELD_NIL;
    enum mars_field_kind kind;
    uint32_t idx;

    if (sc->p >= sc->end)
        return fail(sc, MARS_JSON_TRUNCATED, sc->end);
    switch (*sc->p) {
    case '{':
    case '[':
        return scan_container(sc, depth, parent, key, key_len, bloom);
    case '"': {
        const unsigned char *body;
        size_t len;
        bool esc;
        if (!scan_string(sc, &body, &len, &esc))
            return false;
        return !record || put(sc, parent, key, key_len, MARS_FIELD_STRING, body, len,
                              esc ? MARS_FF_ESCAPED : 0, bloom, &idx);
    }
    case 't':
        kind = MARS_FIELD_BOOL;
        if (!scan_literal(sc, "true", 4))
            return false;
        break;
    case 'f':
        kind = MARS_FIELD_BOOL;
        if (!scan_literal(sc, "false", 5))
            return false;
        break;
    case 'n':
        kind = MARS_FIELD_NULL;
        if (!scan_literal(sc, "null", 4))
            return false;
        break;
    default:
        if (*sc->p != '-' && (*sc->p < '0' || *sc->p > '9'))
            return fail(sc, MARS_JSON_UNEXPECTED, sc->p);
        kind = MARS_FIELD_NUMBER;
        if (!scan_number(sc))
            return false;
    }
    return !record ||
           put(sc, parent, key, key_len, kind, start, (size_t)(sc->p - start), 0, bloom, &idx);
}

static enum mars_json_error finish(struct scan *sc, bool ok, size_t *err_at)
{
    if (ok) {
        skip_ws(sc);
        if (sc->p < sc->end)
            fail(sc, MARS_JSON_TRAILING, sc->p);
    }
    if (err_at)
        *err_at = sc->err ? (size_t)(sc->err_at - sc->start) : 0;
    return sc->err;
}

/* Indexes the text when it is short enough and the CPU can (the arrays are the caller's). */
static void maybe_index(struct scan *sc, uint64_t *sp, uint64_t *hi)
{
    size_t n = (size_t)(sc->end - sc->start);
    if (n == 0 || n > INDEX_BYTES || !HAVE_AVX2())
        return;
    index_line(sc->start, n, sp, hi);
    sc->special = sp;
    sc->high = hi;
}

enum mars_json_error mars_json_validate(const char *s, size_t n, unsigned max_depth, size_t *err_at)
{
    uint64_t sp[INDEX_WORDS], hi[INDEX_WORDS];
    struct scan sc = {.p = (const unsigned char *)s,
                      .end = (const unsigned char *)s + n,
                      .start = (const unsigned char *)s,
                      .max_depth = max_depth};
    maybe_index(&sc, sp, hi);
    skip_ws(&sc);
    if (sc.p >= sc.end) {
        fail(&sc, MARS_JSON_EMPTY, sc.p);
        return finish(&sc, false, err_at);
    }
    bool ok = scan_value(&sc, 0, MARS_FIELD_NIL, NULL, 0, NULL);
    return finish(&sc, ok, err_at);
}

enum mars_json_error mars_json_parse(const char *s, size_t n, unsigned max_depth,
                                     struct mars_fbuild *fb, uint32_t parent, size_t *err_at)
{
    return mars_json_parse_opts(s, n, max_depth, fb, parent, 0, err_at);
}

enum mars_json_error mars_json_parse_opts(const char *s, size_t n, unsigned max_depth,
                                          struct mars_fbuild *fb, uint32_t parent, unsigned opts,
                                          size_t *err_at)
{
    uint64_t sp[INDEX_WORDS], hi[INDEX_WORDS];
    struct scan sc = {.p = (const unsigned char *)s,
                      .end = (const unsigned char *)s + n,
                      .start = (const unsigned char *)s,
                      .max_depth = max_depth,
                      .fb = fb,
                      .utf8_ok = (opts & MARS_JSON_VALID_UTF8) != 0};
    maybe_index(&sc, sp, hi);
    bool ok = false;
    skip_ws(&sc);
    if (sc.p >= sc.end)
        fail(&sc, MARS_JSON_EMPTY, sc.p);
    else if (*sc.p != '{') {
        /* still report a syntax error first, so "not an object" means valid JSON */
        struct scan v = sc;
        v.fb = NULL;
        if (scan_value(&v, 0, MARS_FIELD_NIL, NULL, 0, NULL))
            fail(&sc, MARS_JSON_NOT_OBJECT, sc.p);
        else
            fail(&sc, v.err, v.err_at);
    } else if (max_depth < 1) {
        fail(&sc, MARS_JSON_TOO_DEEP, sc.p);
    } else {
        ok = scan_object(&sc, 1, parent);
    }
    return finish(&sc, ok, err_at);
}
