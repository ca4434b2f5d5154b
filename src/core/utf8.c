/*
 * utf8.c - UTF-8 validation (see utf8.h).
 *
 * The lead byte decides how many continuation bytes follow and the allowed range of the
 * first of them (Unicode's table of well-formed sequences: E0 needs A0..BF, ED 80..9F,
 * F0 90..BF, F4 80..8F, everything else 80..BF), which rules out overlongs, surrogates and
 * values above U+10FFFF without decoding code points. Runs of ASCII, the common case in
 * logs, are skipped 32 bytes per step (the compiler turns the four-word test into vector
 * instructions), and a word with a high byte jumps straight to it.
 *
 * On CPUs with AVX2 a whole buffer is first checked 32 bytes at a time with the lookup
 * algorithm of Keiser and Lemire ("Validating UTF-8 in less than one instruction per
 * byte", 2021): three 16-entry tables indexed by the nibbles of each byte and of the byte
 * before it classify every two-byte window into error classes, and a saturating compare
 * checks that third and fourth bytes of long sequences are continuations. Every block is
 * classified, without a branch for ASCII ones. The buffer is checked in regions of about
 * 2 KiB that end before an ASCII byte (so no sequence spans two); only a region with an
 * invalid sequence goes through the scalar counter, so valid text (nearly all logs) is
 * checked at memory speed and a few bad bytes cost a rescan of their region only.
 */
#include "core/utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline int cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t mars_utf8_unfinished(const unsigned char *s, size_t n)
{
    size_t k = 0; /* continuation bytes at the end, at most 3 */
    while (k < 3 && k < n && cont(s[n - 1 - k]))
        k++;
    if (k == n)
        return 0;
    unsigned char lead = s[n - 1 - k];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return k + 1 < need ? k + 1 : 0;
}

size_t mars_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    if (len > 2 && !cont(s[2]))
        return 0;
    if (len > 3 && !cont(s[3]))
        return 0;
    return len;
}

static size_t invalid_scalar(const unsigned char *s, size_t n)
{
    size_t i = 0, bad = 0;
    while (i < n) {
        if (i + 32 <= n) {
            uint64_t w[4];
            memcpy(w, s + i, 32);
            if (((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL) == 0) {
                i += 32;
                continue;
            }
        }
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t high = w & 0x8080808080808080ULL;
            if (high == 0) {
                i += 8;
                continue;
            }
            /* skip the ASCII bytes before the first high one (little endian: lowest byte
             * first; elsewhere the byte loop below does the same, slower) */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            i += (size_t)__builtin_ctzll(high) / 8;
#endif
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = mars_utf8_seq(s + i, n - i);
        if (len == 0) {
            bad++;
            len = 1;
        }
        i += len;
    }
    return bad;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Error classes of two-byte windows (bit per class; a window is invalid when the classes
 * of its first byte's high nibble, first byte's low nibble and second byte's high nibble
 * share a bit). */
enum {
    E_SHORT = 1 << 0,     /* lead byte followed by a non-continuation */
    E_LONG = 1 << 1,      /* continuation after ASCII */
    E_OVERLONG3 = 1 << 2, /* E0 80..9F */
    E_LARGE = 1 << 3,     /* above U+10FFFF */
    E_SURROGATE = 1 << 4, /* ED A0..BF */
    E_OVERLONG2 = 1 << 5, /* C0, C1 */
    E_LARGE1000 = 1 << 6, /* F5+ 80..8F */
    E_OVERLONG4 = 1 << 6, /* F0 80..8F */
    E_TWOCONTS = 1 << 7,  /* continuation after continuation (unless a 3rd/4th byte) */
    E_CARRY = E_SHORT | E_LONG | E_TWOCONTS,
};

#define T16(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)

__attribute__((target("avx2"))) static inline __m256i prev_n(__m256i in, __m256i prev, int n)
{
    /* in shifted by n bytes, the gap filled from the end of prev (across the lanes) */
    __m256i t = _mm256_permute2x128_si256(prev, in, 0x21);
    switch (n) {
    case 1:
        return _mm256_alignr_epi8(in, t, 15);
    case 2:
        return _mm256_alignr_epi8(in, t, 14);
    default:
        return _mm256_alignr_epi8(in, t, 13);
    }
}

__attribute__((target("avx2"), always_inline)) static inline __m256i block_errors(__m256i in,
                                                                                  __m256i prev)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    const __m256i b1_high =
        T16(E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, (char)E_TWOCONTS,
            (char)E_TWOCONTS, (char)E_TWOCONTS, (char)E_TWOCONTS, E_SHORT | E_OVERLONG2, E_SHORT,
            E_SHORT | E_OVERLONG3 | E_SURROGATE, E_SHORT | E_LARGE | E_LARGE1000 | E_OVERLONG4);
    const char c = (char)E_CARRY, cl = (char)(E_CARRY | E_LARGE | E_LARGE1000);
    const __m256i b1_low =
        T16((char)(E_CARRY | E_OVERLONG3 | E_OVERLONG2 | E_OVERLONG4),
            (char)(E_CARRY | E_OVERLONG2), c, c, (char)(E_CARRY | E_LARGE), cl, cl, cl, cl, cl, cl,
            cl, cl, (char)(E_CARRY | E_LARGE | E_LARGE1000 | E_SURROGATE), cl, cl);
    const char c8 = (char)(E_LONG | E_OVERLONG2 | E_TWOCONTS | E_OVERLONG3 | E_LARGE1000 |
                           E_OVERLONG4),
               c9 = (char)(E_LONG | E_OVERLONG2 | E_TWOCONTS | E_OVERLONG3 | E_LARGE),
               cab = (char)(E_LONG | E_OVERLONG2 | E_TWOCONTS | E_SURROGATE | E_LARGE);
    const __m256i b2_high = T16(E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT,
                                E_SHORT, c8, c9, cab, cab, E_SHORT, E_SHORT, E_SHORT, E_SHORT);
    __m256i p1 = prev_n(in, prev, 1);
    __m256i k = _mm256_and_si256(
        _mm256_and_si256(
            _mm256_shuffle_epi8(b1_high, _mm256_and_si256(_mm256_srli_epi16(p1, 4), lo4)),
            _mm256_shuffle_epi8(b1_low, _mm256_and_si256(p1, lo4))),
        _mm256_shuffle_epi8(b2_high, _mm256_and_si256(_mm256_srli_epi16(in, 4), lo4)));
    /* a continuation two or three bytes after an E_/F_ lead is expected (bit 7 set), and
     * exactly those windows carry E_TWOCONTS: they must agree */
    __m256i third = _mm256_subs_epu8(prev_n(in, prev, 2), _mm256_set1_epi8((char)(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(prev_n(in, prev, 3), _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i must = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must, k);
}

/* A sequence still open at the end of the block (a lead byte too close to its end). */
__attribute__((target("avx2"), always_inline)) static inline __m256i block_incomplete(__m256i in)
{
    const __m256i max = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         (char)(0xF0 - 1), (char)(0xE0 - 1), (char)(0xC0 - 1));
    return _mm256_subs_epu8(in, max);
}

__attribute__((target("avx2"))) static bool valid_avx2(const unsigned char *s, size_t n)
{
    __m256i err = _mm256_setzero_si256(), prev = _mm256_setzero_si256();
    size_t i = 0;
    /* every block is classified, ASCII or not: a test for ASCII blocks would be a branch
     * taken at random in logs with a few non-ASCII words (a quarter of the blocks of the
     * bench's JSON logs), and the mispredictions cost more than the classification they
     * save (0.156 -> 0.069 s/GiB on those logs). An open sequence at the end of a block
     * is caught by the next block's classification (a lead without its continuations). */
    for (; i + 32 <= n; i += 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        err = _mm256_or_si256(err, block_errors(in, prev));
        prev = in;
    }
    unsigned char tail[32] = {0}; /* zero padding: the end of the buffer ends sequences */
    memcpy(tail, s + i, n - i);
    __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)tail);
    err = _mm256_or_si256(err, block_errors(in, prev));
    err = _mm256_or_si256(err, block_incomplete(in));
    return _mm256_testz_si256(err, err);
}

#define REGION 2048 /* bytes checked at once; an invalid one is recounted by the scalar code */

size_t mars_utf8_invalid(const unsigned char *s, size_t n)
{
    if (n < 64 || !__builtin_cpu_supports("avx2"))
        return invalid_scalar(s, n);
    size_t bad = 0;
    for (size_t a = 0; a < n;) {
        /* end the region before an ASCII byte: no sequence spans it, so counting the
         * region alone gives what a walk of the whole buffer gives */
        size_t b = a + REGION < n ? a + REGION : n;
        while (b < n && s[b] >= 0x80)
            b++;
        if (!valid_avx2(s + a, b - a))
            bad += invalid_scalar(s + a, b - a);
        a = b;
    }
    return bad;
}

#else

size_t mars_utf8_invalid(const unsigned char *s, size_t n)
{
    return invalid_scalar(s, n);
}

#endif
