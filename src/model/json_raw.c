/*
 * json_raw.c - reading JSON text the scanner (json.c) has already validated: decoding string
 * bodies, and walking raw arrays and objects (kept as text by the field model) to one
 * element or member, without building anything.
 *
 * Every function here trusts its input to be valid JSON: bounds are still checked, but
 * grammar errors are not reported.
 *
 * Thread: any.
 */
#include "model/json.h"

#include <string.h>

#include "model/json_internal.h"

/* ---- decoding ---- */

static size_t put_utf8(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t mars_json_unescape(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t o = 0;
    while (p < end) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memmove(out + o, p, run);
        o += run;
        p += run;
        if (!bs || end - p < 2)
            break;
        unsigned char c = p[1];
        p += 2;
        switch (c) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            long cp = end - p >= 4 ? mars_json_hex4(p) : -1;
            if (cp < 0)
                return o; /* not validated input: stop */
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                long lo = mars_json_hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD;
            o += put_utf8(out + o, (uint32_t)cp);
            break;
        }
        default:
            out[o++] = (char)c; /* " \ / */
        }
    }
    return o;
}

/* ---- reading raw (validated) text ---- */

static const char *skip_ws_raw(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* End of the validated value starting at p. */
static const char *skip_value_raw(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\')
                p++;
        return p < end ? p + 1 : end;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; p < end; p++) {
            if (*p == '"') {
                p = skip_value_raw(p, end) - 1;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
        }
        return end;
    }
    while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p;
}

static void raw_value(const char *p, const char *e, struct mars_value *out)
{
    out->idx = MARS_FIELD_NIL;
    out->flags = 0;
    switch (*p) {
    case '"':
        out->kind = MARS_FIELD_STRING;
        out->ptr = p + 1;
        out->len = (uint32_t)(e - p - 2);
        if (memchr(out->ptr, '\\', out->len))
            out->flags = MARS_FF_ESCAPED;
        return;
    case '{':
        out->kind = MARS_FIELD_OBJECT;
        out->flags = MARS_FF_RAW;
        break;
    case '[':
        out->kind = MARS_FIELD_ARRAY;
        break;
    case 't':
    case 'f':
        out->kind = MARS_FIELD_BOOL;
        break;
    case 'n':
        out->kind = MARS_FIELD_NULL;
        break;
    default:
        out->kind = MARS_FIELD_NUMBER;
    }
    out->ptr = p;
    out->len = (uint32_t)(e - p);
}

bool mars_json_array_at(const char *raw, size_t n, uint32_t idx, struct mars_value *out)
{
    const char *p = skip_ws_raw(raw, raw + n), *end = raw + n;
    if (p >= end || *p != '[')
        return false;
    p = skip_ws_raw(p + 1, end);
    for (uint32_t i = 0; p < end && *p != ']'; i++) {
        const char *e = skip_value_raw(p, end);
        if (i == idx) {
            raw_value(p, e, out);
            return true;
        }
        p = skip_ws_raw(e, end);
        if (p < end && *p == ',')
            p = skip_ws_raw(p + 1, end);
    }
    return false;
}

/* Where the next element (or member) of an iteration at *pos starts: past the opening
 * bracket `open` at the start, past the comma after that; NULL when raw does not open
 * with `open`. */
static const char *iter_at(const char *raw, size_t n, size_t pos, char open)
{
    const char *end = raw + n, *p;
    if (pos == 0) {
        p = skip_ws_raw(raw, end);
        return p < end && *p == open ? skip_ws_raw(p + 1, end) : NULL;
    }
    p = skip_ws_raw(raw + pos, end);
    return p < end && *p == ',' ? skip_ws_raw(p + 1, end) : p;
}

bool mars_json_array_next(const char *raw, size_t n, size_t *pos, struct mars_value *out)
{
    const char *end = raw + n, *p = iter_at(raw, n, *pos, '[');
    if (!p)
        return false;
    if (p >= end || *p == ']') {
        *pos = n;
        return false;
    }
    const char *e = skip_value_raw(p, end);
    raw_value(p, e, out);
    *pos = (size_t)(e - raw);
    return true;
}

static bool key_equals(const char *body, size_t n, const char *key, uint32_t key_len)
{
    char buf[512];
    if (!memchr(body, '\\', n))
        return n == key_len && memcmp(body, key, n) == 0;
    if (n > sizeof(buf))
        return false;
    size_t d = mars_json_unescape(body, n, buf);
    return d == key_len && memcmp(buf, key, d) == 0;
}

bool mars_json_object_get(const char *raw, size_t n, const char *key, uint32_t key_len,
                          struct mars_value *out)
{
    const char *p = skip_ws_raw(raw, raw + n), *end = raw + n;
    bool found = false;
    if (p >= end || *p != '{')
        return false;
    p = skip_ws_raw(p + 1, end);
    while (p < end && *p == '"') {
        const char *ke = skip_value_raw(p, end);
        bool match = key_equals(p + 1, (size_t)(ke - p - 2), key, key_len);
        p = skip_ws_raw(ke, end);
        p = skip_ws_raw(p + 1, end); /* ':' */
        const char *e = skip_value_raw(p, end);
        if (match) {
            raw_value(p, e, out); /* last wins, as when parsing */
            found = true;
        }
        p = skip_ws_raw(e, end);
        if (p < end && *p == ',')
            p = skip_ws_raw(p + 1, end);
    }
    return found;
}

bool mars_json_object_next(const char *raw, size_t n, size_t *pos, struct mars_value *key,
                           struct mars_value *out)
{
    const char *end = raw + n, *p = iter_at(raw, n, *pos, '{');
    if (!p)
        return false;
    if (p >= end || *p != '"') {
        *pos = n;
        return false;
    }
    const char *ke = skip_value_raw(p, end);
    raw_value(p, ke, key);
    p = skip_ws_raw(ke, end);
    p = skip_ws_raw(p + 1, end); /* ':' */
    const char *e = skip_value_raw(p, end);
    raw_value(p, e, out);
    *pos = (size_t)(e - raw);
    return true;
}
