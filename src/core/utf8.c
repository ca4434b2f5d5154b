/*
 * utf8.c - UTF-8 validation (see utf8.h).
 *
 * The lead byte decides how many continuation bytes follow and the allowed range of the
 * first of them (Unicode's table of well-formed sequences: E0 needs A0..BF, ED 80..9F,
 * F0 90..BF, F4 80..8F, everything else 80..BF), which rules out overlongs, surrogates and
 * values above U+10FFFF without decoding code points. Runs of ASCII, the common case in
 * logs, are skipped 32 bytes per step (the compiler turns the four-word test into vector
 * instructions), and a word with a high byte jumps straight to it.
 */
#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

static inline int cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
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

size_t mars_utf8_invalid(const unsigned char *s, size_t n)
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
