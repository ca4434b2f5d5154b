/*
 * json_escape.c - escaping bytes for the inside of a JSON string (see json_escape.h).
 *
 * How it works: eight bytes at a time while none of them needs a look (word_flags); in a
 * word that has one, the bytes before it go at once, then that byte: copied as it is,
 * checked as the start of a UTF-8 sequence, or escaped. The
 * sink encoder is the hot caller (every event of every JSON sink): it reserves the worst
 * case up front, so escape() is compiled twice from one body, once without room checks
 * for a dst that takes everything and once with them for a bounded dst (the log's line).
 * The choice is one comparison per call.
 *
 * Thread: any; no state.
 */
#include "core/json_escape.h"

#include <stdbool.h>
#include <string.h>

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

/* bounded: check the room left before each write (else dst holds MARS_JSON_ESC_MAX * n). */
static inline __attribute__((always_inline)) struct mars_json_esc
escape(char *dst, size_t cap, const unsigned char *s, size_t n, unsigned flags, bool bounded)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    const char *end = dst + cap;
    size_t i = 0;
    uint64_t invalid = 0;

    while (i < n) {
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
    return escape(dst, 0, s, n, ENCODER_FLAGS, false);
}

static __attribute__((noinline)) struct mars_json_esc escape_any(char *dst, const unsigned char *s,
                                                                 size_t n, unsigned flags)
{
    return escape(dst, 0, s, n, flags, false);
}

static __attribute__((noinline)) struct mars_json_esc
escape_bounded(char *dst, size_t cap, const unsigned char *s, size_t n, unsigned flags)
{
    return escape(dst, cap, s, n, flags, true);
}

struct mars_json_esc mars_json_escape(char *dst, size_t cap, const char *src, size_t n,
                                      unsigned flags)
{
    const unsigned char *s = (const unsigned char *)src;

    if (n > cap / MARS_JSON_ESC_MAX)
        return escape_bounded(dst, cap, s, n, flags);
    return flags == ENCODER_FLAGS ? escape_encoder(dst, s, n) : escape_any(dst, s, n, flags);
}
