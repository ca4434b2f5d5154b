/*
 * json_escape.h - the one JSON string escaper, for every writer of JSON in mars: the sink
 * encoder (model/encode.c), the internal log's JSON lines (core/log.c) and the admin API's
 * bodies (core/admin.c, control/api.c).
 *
 * It writes the inside of a string (no quotes) into memory the caller owns, so each writer
 * keeps its own buffer: the encoder's growing one, the log's fixed line, an evbuffer's
 * reserved space. Always escaped: '"' and '\' as \" and \\, other bytes below 0x20 as
 * \u00XX (lowercase hex). The flags add what some writers do on top.
 */
#ifndef MARS_JSON_ESCAPE_H
#define MARS_JSON_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

enum {
    MARS_JSON_ESC_SHORT = 1u << 0, /* \n \r \t as those two-byte escapes, not \u000a ... */
    MARS_JSON_ESC_DEL = 1u << 1,   /* DEL (0x7f) as \u007f, not as it is */
    MARS_JSON_ESC_UTF8 = 1u << 2,  /* each byte of an invalid UTF-8 sequence as \ufffd; without
                                    * it, bytes >= 0x80 go out as they are */
};

/* The most bytes one input byte becomes (\u00XX); dst room for MARS_JSON_ESC_MAX * n takes
 * any n bytes whole. */
#define MARS_JSON_ESC_MAX 6

struct mars_json_esc {
    size_t out;       /* bytes written to dst */
    size_t in;        /* bytes of src consumed */
    uint64_t invalid; /* invalid UTF-8 bytes replaced (MARS_JSON_ESC_UTF8) */
};

/* Escapes src[0..n) into dst, which has room for cap bytes, stopping before the first
 * character or escape that would not fit whole (so a cut never splits either): r.in < n
 * tells the caller it was cut. Nothing is NUL-terminated. */
struct mars_json_esc mars_json_escape(char *dst, size_t cap, const char *src, size_t n,
                                      unsigned flags);

#endif
