/*
 * utf8.c - UTF-8 validation (see utf8.h). The ASCII fast path tests eight bytes per step
 * for a high bit; log text is mostly ASCII, so validation costs little next to reading.
 */
#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

size_t mars_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t mars_utf8_invalid(const unsigned char *s, size_t n)
{
    size_t i = 0, bad = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
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
