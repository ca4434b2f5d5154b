/*
 * json.h - mars's zero-copy JSON scanner (RFC 8259).
 *
 * One pass over the bytes validates everything (structure, every escape including \u
 * surrogate pairs, UTF-8, number grammar, nesting depth, no trailing bytes) and, for
 * mars_json_parse(), records the members of objects into a field builder as slices of the
 * input: keys and string values stay where they are (strings with escapes are flagged and
 * decoded only if someone reads them), numbers and literals keep their text, arrays are
 * kept as their raw text. A duplicate key replaces the earlier value (last wins), keeping
 * the position of the first.
 *
 * Thread: any; no state outside the arguments.
 */
#ifndef MARS_JSON_H
#define MARS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "model/fields.h"

enum mars_json_error {
    MARS_JSON_OK = 0,
    MARS_JSON_EMPTY,        /* nothing but whitespace */
    MARS_JSON_TRUNCATED,    /* input ended inside a value */
    MARS_JSON_UNEXPECTED,   /* a byte that cannot start or continue what is expected */
    MARS_JSON_CONTROL_CHAR, /* unescaped byte < 0x20 in a string */
    MARS_JSON_BAD_ESCAPE,   /* backslash followed by an unknown letter */
    MARS_JSON_BAD_UNICODE,  /* malformed \u, or a surrogate without its pair */
    MARS_JSON_BAD_UTF8,     /* invalid UTF-8 in a string */
    MARS_JSON_BAD_NUMBER,   /* number not in the JSON grammar */
    MARS_JSON_TOO_DEEP,     /* nesting beyond the limit */
    MARS_JSON_TRAILING,     /* bytes after the value */
    MARS_JSON_NOT_OBJECT,   /* parse: the value is not an object */
    MARS_JSON_TOO_MANY,     /* parse: more than MARS_FIELDS_MAX members */
    MARS_JSON_NOMEM,
    MARS_JSON__COUNT
};
const char *mars_json_strerror(enum mars_json_error e);

#define MARS_JSON_MAX_DEPTH 1024

/* Validates one JSON value (surrounded by optional whitespace). Returns MARS_JSON_OK or the
 * first error, with its byte offset in *err_at (may be NULL). */
enum mars_json_error mars_json_validate(const char *s, size_t n, unsigned max_depth,
                                        size_t *err_at);
/* Validates s, which must be an object, and adds its members under builder entry `parent`
 * (nested objects become child entries). Returns as mars_json_validate. On error the
 * builder holds a partial result; reset it before reuse. */
enum mars_json_error mars_json_parse(const char *s, size_t n, unsigned max_depth,
                                     struct mars_fbuild *fb, uint32_t parent, size_t *err_at);

/* Options of mars_json_parse_opts. */
enum {
    /* s is known to be valid UTF-8 (an event flagged MARS_EVF_UTF8): the strings' UTF-8
     * checks are skipped. The result is the same; only time is saved. */
    MARS_JSON_VALID_UTF8 = 1u << 0,
};
/* mars_json_parse with options (MARS_JSON_*). */
enum mars_json_error mars_json_parse_opts(const char *s, size_t n, unsigned max_depth,
                                          struct mars_fbuild *fb, uint32_t parent, unsigned opts,
                                          size_t *err_at);

/* Decodes a validated JSON string body (no quotes) into out, which needs n bytes (decoding
 * never grows). Returns the decoded length. */
size_t mars_json_unescape(const char *s, size_t n, char *out);

/* Element idx of a validated raw array (or member key of a validated raw object), as a
 * value: strings point inside the raw text (flagged when escaped), objects and arrays are
 * raw text. Returns true when present. */
bool mars_json_array_at(const char *raw, size_t n, uint32_t idx, struct mars_value *out);
/* Iterates a validated raw array in one pass: *pos starts at 0 and is advanced past each
 * element returned. Returns false after the last one. */
bool mars_json_array_next(const char *raw, size_t n, size_t *pos, struct mars_value *out);
bool mars_json_object_get(const char *raw, size_t n, const char *key, uint32_t key_len,
                          struct mars_value *out);
/* Iterates the members of a validated raw object in one pass, as mars_json_array_next:
 * *key is the member's name (a STRING value), *out its value. */
bool mars_json_object_next(const char *raw, size_t n, size_t *pos, struct mars_value *key,
                           struct mars_value *out);

#endif
