/*
 * json_escape.c - escaping bytes for the inside of a JSON string (see json_escape.h).
 *
 * How it works: eight bytes at a time while none of them needs a look (word_flags); in a
 * word that has one, the bytes before it go at once, then that byte: copied as it is,
 * checked as the start of a UTF-8 sequence, or escaped. The
 * sink encoder is the hot caller (every event of every JSON sink): it reserves the worst
 * case up front, so escape() is compiled twice from one body, once without room checks
 * for a dst that takes everything and once with them for a bounded dst (the log's line).
 * The choice is one comparison per call. Where the CPU has them, long strings into a dst
 * that takes everything go through vector code instead: AVX-512 (VBMI2's byte expand) for
 * text known to be valid UTF-8, the encoder's common case, and AVX2 otherwise; both are
 * below, each with the way it works. The CPU's features are read at load time, the level
 * used is fixed at the first call (simd_level).
 *
 * Thread: any; no state but the tables and the level, set once.
 */
#include "core/json_escape.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/testhook.h"
#include "core/utf8.h"

/* True when none of the 8 bytes of w needs a look: no control byte, quote, backslash or
 * byte >= 0x80, nor DEL when it is escaped. A byte >= 0x80 is caught by its own high bit,
 * so the "has less than" / "has zero byte" tests need no ~w mask for the others: a byte
 * below 0x80 that is below 0x20, or equal to '"' or '\\' (zero after the xor), wraps to a
 * high bit when subtracted from. A borrow out of a flagged byte may flag its neighbour
 * too, never hide one, so a clean word may take a trip through the byte loop, a dirty one
 * never skips it. */
static inline uint64_t word_flags(uint64_t w, unsigned flags)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t bad = w | (w - ones * 0x20) | (q - ones) | (b - ones);
    if (flags & MARS_JSON_ESC_DEL)
        bad |= (w ^ (ones * 0x7f)) - ones;
    return bad & highs;
}

/* How many bytes at the start of a word with flags f go out as they are: those below its
 * lowest flagged byte, which is a real one (a borrow flags only bytes above the byte that
 * wrapped, and that byte is flagged itself). JSON text in a message has a quote every few
 * bytes: without this each byte before one took a word test and a trip through the byte
 * loop. Little-endian only (byte 0 is the low bits); elsewhere none. */
static inline unsigned plain_prefix(uint64_t f)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)__builtin_ctzll(f) >> 3;
#else
    (void)f;
    return 0;
#endif
}

/* True when the ASCII byte c needs an escape. */
static inline bool ascii_escaped(unsigned char c, unsigned flags)
{
    if (c < 0x20)
        return true;
    if (c == '"' || c == '\\')
        return true;
    return c == 0x7f && (flags & MARS_JSON_ESC_DEL);
}

/* The two-byte escape letter for c, or 0 when c takes \u00XX. */
static inline char short_escape(unsigned char c, unsigned flags)
{
    if (c == '"' || c == '\\')
        return (char)c;
    if (!(flags & MARS_JSON_ESC_SHORT))
        return 0;
    return c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
}

/* Escapes s[i..) until i reaches stop (a UTF-8 sequence that starts before stop is taken
 * whole: it is checked against all n bytes). bounded: check the room left before each write
 * (else dst holds MARS_JSON_ESC_MAX * (n - i)). */
static inline __attribute__((always_inline)) struct mars_json_esc
escape(char *dst, size_t cap, const unsigned char *s, size_t i, size_t stop, size_t n,
       unsigned flags, bool bounded)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    const char *end = dst + cap;
    uint64_t invalid = 0;

    while (i < stop) {
        if (i + 8 <= n && (!bounded || end - o >= 8)) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t f = word_flags(w, flags);
            memcpy(o, &w, 8); /* room for 8 either way; only the plain ones count */
            if (!f) {
                o += 8;
                i += 8;
                continue;
            }
            unsigned k = plain_prefix(f);
            o += k;
            i += k; /* s[i] is the flagged byte: the byte path below takes it */
        }
        unsigned char c = s[i];
        if (c >= 0x80 && (flags & MARS_JSON_ESC_UTF8)) {
            size_t seq = mars_utf8_seq(s + i, n - i);
            if (bounded && end - o < (seq ? (ptrdiff_t)seq : 6))
                goto done;
            if (seq > 0) {
                memcpy(o, s + i, seq);
                o += seq;
                i += seq;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
                invalid++;
            }
            continue;
        }
        if (c >= 0x80 || !ascii_escaped(c, flags)) {
            if (bounded && o == end)
                goto done;
            *o++ = (char)c;
            i++;
            continue;
        }
        char letter = short_escape(c, flags);
        if (bounded && end - o < (letter ? 2 : 6))
            goto done;
        *o++ = '\\';
        if (letter) {
            *o++ = letter;
        } else {
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i++;
    }
done:
    return (struct mars_json_esc){.out = (size_t)(o - dst), .in = i, .invalid = invalid};
}

/* What the sink encoder asks for: its copy is compiled with them as constants. Each copy
 * is a function of its own so that its loop gets registers of its own. */
#define ENCODER_FLAGS (MARS_JSON_ESC_SHORT | MARS_JSON_ESC_UTF8)

static __attribute__((noinline)) struct mars_json_esc
escape_encoder(char *dst, const unsigned char *s, size_t n)
{
    return escape(dst, 0, s, 0, n, n, ENCODER_FLAGS, false);
}

static __attribute__((noinline)) struct mars_json_esc escape_any(char *dst, const unsigned char *s,
                                                                 size_t n, unsigned flags)
{
    return escape(dst, 0, s, 0, n, n, flags, false);
}

static __attribute__((noinline)) struct mars_json_esc
escape_bounded(char *dst, size_t cap, const unsigned char *s, size_t n, unsigned flags)
{
    return escape(dst, cap, s, 0, n, n, flags, true);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define ESC_SIMD 1
#include <immintrin.h>

/* The AVX2 path, for a dst that takes everything. JSON in a message has a quote every few
 * bytes, so instead of stopping at each one it escapes quotes and backslashes inside the
 * vector: a 32-byte block with none of the rarer bytes (controls, DEL when escaped, bytes
 * >= 0x80 when UTF-8 is checked) goes out as four 8-byte groups, each through one pshufb
 * whose indices (expand[mask of its quotes and backslashes]) write the group with a
 * backslash before every such byte. A block with a rarer byte takes the byte path above for
 * its 32 bytes; so does the tail after the last whole group. Loads stay inside src; a store
 * may write up to 15 bytes past the escaped output, always inside the
 * MARS_JSON_ESC_MAX * n room. expand is filled once at load time. */
static uint8_t expand[256][16] __attribute__((aligned(16)));
enum { SIMD_NONE, SIMD_AVX2, SIMD_AVX512 };
static int cpu_level = SIMD_NONE; /* what the CPU has, set at load time */
static _Atomic int level = -1;    /* what is used: simd_level() */

/* expand[m]: indices 0-7 are the group's bytes, 8 is a backslash, 0x80 a zero (past the
 * 8 + popcount(m) bytes that count). */
static __attribute__((constructor)) void expand_init(void)
{
    for (unsigned m = 0; m < 256; m++) {
        unsigned o = 0;
        for (unsigned j = 0; j < 8; j++) {
            if (m >> j & 1)
                expand[m][o++] = 8;
            expand[m][o++] = (uint8_t)j;
        }
        while (o < 16)
            expand[m][o++] = 0x80;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        cpu_level = SIMD_AVX2;
    if (cpu_level == SIMD_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2"))
        cpu_level = SIMD_AVX512;
}

/* The level the escaper uses: the CPU's, unless the test hook `simd` caps it. Looked up at
 * the first call (the hooks are read then, not at load time); any thread may race to
 * store the same value. */
static int simd_level(void)
{
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l >= 0)
        return l;
    const char *cap = mars_test_hook("simd");
    l = cpu_level;
    if (cap && strcmp(cap, "none") == 0)
        l = SIMD_NONE;
    else if (cap && strcmp(cap, "avx2") == 0 && l > SIMD_AVX2)
        l = SIMD_AVX2;
    atomic_store_explicit(&level, l, memory_order_relaxed);
    return l;
}

/* Writes the 8 bytes of x (low half; the high half holds the backslash at index 8) with a
 * backslash before each byte flagged in m; returns the bytes written. */
__attribute__((target("avx2,popcnt"))) static inline size_t group_out(char *o, __m128i x,
                                                                      unsigned m)
{
    __m128i idx = _mm_load_si128((const __m128i *)expand[m]);
    _mm_storeu_si128((__m128i *)o, _mm_shuffle_epi8(x, idx));
    return 8 + (size_t)__builtin_popcount(m);
}

__attribute__((target("avx2,popcnt"))) static inline
    __attribute__((always_inline)) struct mars_json_esc
    escape_simd(char *dst, const unsigned char *s, size_t n, unsigned flags)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i ctl = _mm256_set1_epi8(0x1f), del = _mm256_set1_epi8(0x7f);
    const __m128i bs = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0, 0, 0, 0, 0);
    char *o = dst;
    size_t i = 0;
    uint64_t invalid = 0;

    while (i + 32 <= n) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i rare = _mm256_cmpeq_epi8(_mm256_max_epu8(v, ctl), ctl); /* v <= 0x1f */
        if (flags & MARS_JSON_ESC_DEL)
            rare = _mm256_or_si256(rare, _mm256_cmpeq_epi8(v, del));
        if (flags & MARS_JSON_ESC_UTF8)
            rare = _mm256_or_si256(rare, v); /* the high bit: a UTF-8 sequence to check */
        if (_mm256_movemask_epi8(rare)) {
            struct mars_json_esc r = escape(o, 0, s, i, i + 32, n, flags, false);
            o += r.out;
            i = r.in;
            invalid += r.invalid;
            continue;
        }
        __m256i q = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash));
        uint32_t m = (uint32_t)_mm256_movemask_epi8(q);
        if (!m) {
            _mm256_storeu_si256((__m256i *)o, v);
            o += 32;
            i += 32;
            continue;
        }
        for (unsigned g = 0; g < 4; g++, i += 8, m >>= 8) {
            __m128i x = _mm_or_si128(_mm_loadl_epi64((const __m128i *)(s + i)), bs);
            o += group_out(o, x, m & 0xff);
        }
    }
    while (i + 8 <= n) { /* the tail, 8 bytes at a time while no rarer byte comes */
        __m128i x = _mm_loadl_epi64((const __m128i *)(s + i));
        __m128i rare = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm256_castsi256_si128(ctl)),
                                      _mm256_castsi256_si128(ctl));
        if (flags & MARS_JSON_ESC_DEL)
            rare = _mm_or_si128(rare, _mm_cmpeq_epi8(x, _mm256_castsi256_si128(del)));
        if (flags & MARS_JSON_ESC_UTF8)
            rare = _mm_or_si128(rare, x);
        if (_mm_movemask_epi8(rare) & 0xff)
            break;
        __m128i q = _mm_or_si128(_mm_cmpeq_epi8(x, _mm256_castsi256_si128(quote)),
                                 _mm_cmpeq_epi8(x, _mm256_castsi256_si128(bslash)));
        o += group_out(o, _mm_or_si128(x, bs), (unsigned)_mm_movemask_epi8(q) & 0xff);
        i += 8;
    }
    struct mars_json_esc r = escape(o, 0, s, i, n, n, flags, false);
    return (struct mars_json_esc){
        .out = (size_t)(o - dst) + r.out, .in = r.in, .invalid = invalid + r.invalid};
}

__attribute__((target("avx2,popcnt"), noinline)) static struct mars_json_esc
escape_simd_encoder(char *dst, const unsigned char *s, size_t n)
{
    return escape_simd(dst, s, n, ENCODER_FLAGS);
}

__attribute__((target("avx2,popcnt"), noinline)) static struct mars_json_esc
escape_simd_valid(char *dst, const unsigned char *s, size_t n)
{
    return escape_simd(dst, s, n, MARS_JSON_ESC_SHORT);
}

__attribute__((target("avx2,popcnt"), noinline)) static struct mars_json_esc
escape_simd_any(char *dst, const unsigned char *s, size_t n, unsigned flags)
{
    return escape_simd(dst, s, n, flags);
}

/* The AVX-512 path (VBMI2's byte expand), for text known to be valid UTF-8 (no
 * MARS_JSON_ESC_UTF8) into a dst that takes everything. A 32-byte block without a rarer
 * byte goes out in one expand: its bytes are spread over 32 + k positions of a 64-byte
 * register whose other k positions hold backslashes, one before each quote and backslash.
 * The positions: give every input byte j two slots, 2j (its backslash) and 2j + 1 (the
 * byte); keep the slots of the bytes and the backslash slots of the flagged bytes (pdep of
 * the flags onto the even slots); the kept slots in order, 1 for a byte and 0 for a
 * backslash (pext of the odd-slot pattern), are the expand's mask. The last block is
 * loaded and stored under masks, so loads stay inside src and stores inside the escaped
 * output. A block with a rarer byte (a control byte; DEL when escaped) takes the byte
 * path. */
#define AVX512 "avx512f,avx512bw,avx512vl,avx512vbmi2,bmi2,popcnt"

/* The bytes of v with a backslash before each one flagged, as a 64-byte register. */
__attribute__((target(AVX512))) static inline __attribute__((always_inline)) __m512i
block_expand(__m256i v, uint32_t flagged)
{
    const uint64_t odd = 0xAAAAAAAAAAAAAAAAull;
    uint64_t spread = _pdep_u64(flagged, 0x5555555555555555ull);
    return _mm512_mask_expand_epi8(_mm512_set1_epi8('\\'), _pext_u64(odd, spread | odd),
                                   _mm512_castsi256_si512(v));
}

/* Flags the bytes of v under mask `in` that take the byte path (*rare) and the quotes and
 * backslashes (the return). */
__attribute__((target(AVX512))) static inline __attribute__((always_inline)) uint32_t
block_flags(__m256i v, __mmask32 in, unsigned flags, __mmask32 *rare)
{
    *rare = _mm256_mask_cmple_epu8_mask(in, v, _mm256_set1_epi8(0x1f));
    if (flags & MARS_JSON_ESC_DEL)
        *rare |= _mm256_mask_cmpeq_epi8_mask(in, v, _mm256_set1_epi8(0x7f));
    return _mm256_mask_cmpeq_epi8_mask(in, v, _mm256_set1_epi8('"')) |
           _mm256_mask_cmpeq_epi8_mask(in, v, _mm256_set1_epi8('\\'));
}

__attribute__((target(AVX512), noinline)) static struct mars_json_esc
escape_avx512(char *dst, const unsigned char *s, size_t n, unsigned flags)
{
    char *o = dst;
    size_t i = 0;
    __mmask32 rare;

    for (;;) {
        while (i + 32 <= n) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
            uint32_t flagged = block_flags(v, ~(__mmask32)0, flags, &rare);
            if (rare)
                break;
            /* 64 bytes stored, 32 + k kept: 6 * (n - i) >= 192 bytes of room are left */
            _mm512_storeu_si512(o, block_expand(v, flagged));
            o += 32 + (size_t)__builtin_popcount(flagged);
            i += 32;
        }
        if (i == n)
            break;
        if (i + 32 > n) {
            /* the tail: loaded and stored under masks (its bytes and their backslashes) */
            __mmask32 in = ((__mmask32)1 << (n - i)) - 1;
            __m256i v = _mm256_maskz_loadu_epi8(in, s + i);
            uint32_t flagged = block_flags(v, in, flags, &rare);
            if (!rare) {
                size_t len = n - i + (size_t)__builtin_popcount(flagged);
                _mm512_mask_storeu_epi8(o, (1ull << len) - 1, block_expand(v, flagged));
                o += len;
                i = n;
                break;
            }
        }
        /* a block with a rarer byte (no UTF-8 check here, so nothing counts as invalid) */
        struct mars_json_esc r = escape(o, 0, s, i, i + 32 <= n ? i + 32 : n, n, flags, false);
        o += r.out;
        i = r.in;
    }
    return (struct mars_json_esc){.out = (size_t)(o - dst), .in = i};
}
#endif

struct mars_json_esc mars_json_escape(char *dst, size_t cap, const char *src, size_t n,
                                      unsigned flags)
{
    const unsigned char *s = (const unsigned char *)src;

    if (n > cap / MARS_JSON_ESC_MAX)
        return escape_bounded(dst, cap, s, n, flags);
#ifdef ESC_SIMD
    int simd = n >= 8 ? simd_level() : SIMD_NONE;
    if (simd == SIMD_AVX512 && !(flags & MARS_JSON_ESC_UTF8))
        return escape_avx512(dst, s, n, flags);
    if (simd >= SIMD_AVX2)
        return flags == ENCODER_FLAGS         ? escape_simd_encoder(dst, s, n)
               : flags == MARS_JSON_ESC_SHORT ? escape_simd_valid(dst, s, n)
                                              : escape_simd_any(dst, s, n, flags);
#endif
    return flags == ENCODER_FLAGS ? escape_encoder(dst, s, n) : escape_any(dst, s, n, flags);
}
