/*
 * fuzz_json.c - libFuzzer target for the JSON scanner (model/json.c) and the field
 * model behind it.
 *
 * Properties checked on every input, beyond "no crash, no sanitizer report":
 * - validate and parse agree: an input that validates as an object parses, and parse
 *   never accepts what validate rejects;
 * - round trip: the fields of a parsed object, encoded as a JSON event (encode.c), are
 *   valid JSON again;
 * - decoding an escaped string never grows it and yields valid UTF-8 (checked by
 *   re-scanning it as a JSON string body via the encoder).
 *
 * Run: build with clang (tests/fuzz/fuzz.cmake), then ./fuzz_json corpus/ -max_total_time=60.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "model/encode.h"
#include "model/fields.h"
#include "model/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(struct mars_batch *b, struct mars_event *ev,
                             const struct mars_fbuild *fb)
{
    struct mars_encoder e = {0};
    size_t at;
    if (mars_fields_merge(b, ev, fb, NULL) != 0)
        return;
    if (mars_encode_json_event(&e, ev) == 0 &&
        mars_json_validate(e.out, e.out_len, MARS_JSON_MAX_DEPTH, &at) != MARS_JSON_OK)
        abort(); /* the encoder wrote invalid JSON */
    mars_encoder_fini(&e);
}

static void check_strings(const struct mars_fbuild *fb)
{
    for (uint32_t i = 1; i < fb->n; i++) {
        const struct mars_field *f = &fb->v[i];
        if (f->kind != MARS_FIELD_STRING || !(f->flags & MARS_FF_ESCAPED))
            continue;
        char *out = malloc(f->value_len + 1);
        size_t n = mars_json_unescape(f->value, f->value_len, out);
        if (n > f->value_len)
            abort();
        struct mars_encoder e = {0};
        if (mars_encode_json_string(&e, out, n) == 0 && e.invalid_utf8)
            abort(); /* a validated string decoded to invalid UTF-8 */
        mars_encoder_fini(&e);
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t at;
    enum mars_json_error v = mars_json_validate(s, size, 64, &at);
    if (v != MARS_JSON_OK && at > size)
        abort();

    struct mars_batch *b = mars_batch_create(1);
    struct mars_event *ev = mars_batch_push(b);
    struct mars_fbuild fb;
    ev->msg = (struct mars_slice){s, (uint32_t)size};
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &b->arena);
    enum mars_json_error p = mars_json_parse(s, size, 64, &fb, 0, &at);
    size_t lead = 0;
    while (lead < size && strchr(" \t\r\n", s[lead]) && s[lead])
        lead++;
    bool object = lead < size && s[lead] == '{';
    if (p == MARS_JSON_OK && v != MARS_JSON_OK)
        abort(); /* parse accepted what validate rejected */
    if (v == MARS_JSON_OK && object && p != MARS_JSON_OK && p != MARS_JSON_TOO_MANY)
        abort(); /* a valid object did not parse */
    if (p == MARS_JSON_OK) {
        check_strings(&fb);
        check_round_trip(b, ev, &fb);
    }
    if (mars_utf8_invalid(data, size) == 0) {
        /* text known valid: skipping the strings' UTF-8 checks changes nothing */
        struct mars_fbuild fo;
        size_t at2 = 0;
        mars_fbuild_init(&fo);
        mars_fbuild_reset(&fo, &b->arena);
        enum mars_json_error q =
            mars_json_parse_opts(s, size, 64, &fo, 0, MARS_JSON_VALID_UTF8, &at2);
        if (q != p || at2 != at || (p == MARS_JSON_OK && fo.n != fb.n))
            abort();
        mars_fbuild_fini(&fo);
    }
    mars_fbuild_fini(&fb);
    mars_batch_release(b);
    return 0;
}
