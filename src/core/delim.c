/*
 * delim.c - delimiter positions, 64 bytes per step (see delim.h).
 *
 * The AVX2 path compares two 32-byte halves with the delimiter, folds the two byte masks
 * into one 64-bit mask, and turns each set bit into an offset (count trailing zeros, clear
 * the lowest bit). A step runs only while out[] has room for 64 more offsets, so a step is
 * never left half done. The bytes after the last whole step, and CPUs without AVX2, go
 * through memchr, one match at a time, still bounded by cap.
 */
#include "core/delim.h"

#include <string.h>

static size_t index_memchr(const unsigned char *s, size_t from, size_t n, unsigned char d,
                           uint32_t *out, size_t k, size_t cap, size_t *done)
{
    size_t i = from;
    while (i < n && k < cap) {
        const unsigned char *q = memchr(s + i, d, n - i);
        if (!q) {
            i = n;
            break;
        }
        out[k++] = (uint32_t)(q - s);
        i = (size_t)(q - s) + 1;
    }
    *done = i;
    return k;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2,bmi"))) static size_t index_avx2(const unsigned char *s, size_t n,
                                                             unsigned char d, uint32_t *out,
                                                             size_t cap, size_t *done)
{
    const __m256i dv = _mm256_set1_epi8((char)d);
    size_t i = 0, k = 0;
    /* two 64-byte steps at a time while both fit: half the loop's overhead per byte */
    for (; i + 128 <= n && k + 128 <= cap; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 64));
        __m256i e = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 96));
        uint64_t m0 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, dv)) |
                      (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, dv)) << 32;
        uint64_t m1 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(c, dv)) |
                      (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(e, dv)) << 32;
        while (m0) {
            out[k++] = (uint32_t)(i + (size_t)__builtin_ctzll(m0));
            m0 &= m0 - 1;
        }
        while (m1) {
            out[k++] = (uint32_t)(i + 64 + (size_t)__builtin_ctzll(m1));
            m1 &= m1 - 1;
        }
    }
    for (; i + 64 <= n && k + 64 <= cap; i += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 32));
        uint64_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, dv));
        uint64_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, dv));
        uint64_t m = lo | hi << 32;
        while (m) {
            out[k++] = (uint32_t)(i + (size_t)__builtin_ctzll(m));
            m &= m - 1;
        }
    }
    if (k + 64 > cap && i + 64 <= n) {
        *done = i; /* out[] is nearly full: the caller comes back for the rest */
        return k;
    }
    return index_memchr(s, i, n, d, out, k, cap, done);
}

size_t mars_delim_index(const void *p, size_t n, unsigned char d, uint32_t *out, size_t cap,
                        size_t *done)
{
    if (n >= 64 && __builtin_cpu_supports("avx2"))
        return index_avx2(p, n, d, out, cap, done);
    return index_memchr(p, 0, n, d, out, 0, cap, done);
}

#else

size_t mars_delim_index(const void *p, size_t n, unsigned char d, uint32_t *out, size_t cap,
                        size_t *done)
{
    return index_memchr(p, 0, n, d, out, 0, cap, done);
}

#endif
