/*
 * fuzz_wire.c - libFuzzer target for the mars native protocol decoder (wire/wire.c,
 * wire_batch.c): the input is a byte stream as a mars source receives it, cut into frames
 * the way the source does (header, then the payload by its length).
 *
 * Properties checked on every input, beyond "no crash, no sanitizer report":
 * - every event a BATCH decodes into encodes as valid JSON (the decoder must have rejected
 *   every number, escaped string and raw array/object that is not valid JSON, because the
 *   encoder copies those as they are);
 * - round trip: the decoded events, encoded again with the sink's encoder (lz4 on), decode
 *   to the same number of events with the same JSON.
 *
 * Run: build with clang (tests/fuzz/fuzz.cmake), then ./fuzz_wire corpus/ -max_total_time=60.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/encode.h"
#include "model/json.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAYLOAD (1u << 20)

/* JSON of every event of b, concatenated, into e (each event's must be valid JSON). */
static void events_json(const struct mars_batch *b, struct mars_encoder *e)
{
    mars_encoder_reset(e);
    for (uint32_t i = 0; i < b->n; i++) {
        size_t start = e->out_len, at;
        if (mars_encode_json_event(e, &b->ev[i]) != 0)
            abort();
        if (mars_json_validate(e->out + start, e->out_len - start, MARS_JSON_MAX_DEPTH, &at) !=
            MARS_JSON_OK)
            abort(); /* the decoder let a value through that is not valid JSON */
    }
}

static struct mars_batch *decode_frame(const struct mars_wire_hdr *h, const uint8_t *p)
{
    const char *why;
    uint8_t *raw = NULL;
    if (h->flags & MARS_WIRE_F_LZ4) {
        raw = malloc(h->raw_length ? h->raw_length : 1);
        if (mars_wire_unlz4(p, h->length, raw, h->raw_length)) {
            free(raw);
            return NULL;
        }
        p = raw;
    }
    struct mars_batch *b = mars_batch_create(16);
    if (mars_wire_decode_batch(p, h->raw_length, b, &why)) {
        mars_batch_release(b);
        b = NULL;
    }
    free(raw);
    return b;
}

static void round_trip(const struct mars_batch *b, const struct mars_encoder *first)
{
    struct mars_wire_enc enc;
    struct mars_wire_hdr h;
    const char *why;
    mars_wire_enc_init(&enc);
    for (uint32_t i = 0; i < b->n; i++)
        if (mars_wire_enc_add(&enc, &b->ev[i], SIZE_MAX) != 0)
            abort();
    if (mars_wire_enc_finish(&enc, 7, true) != 0 ||
        mars_wire_get_hdr(enc.frame, UINT32_MAX, &h, &why) != 0 || h.seq != 7 ||
        enc.framelen != MARS_WIRE_HDR + h.length)
        abort();
    struct mars_batch *b2 = decode_frame(&h, enc.frame + MARS_WIRE_HDR);
    if (!b2 || b2->n != b->n)
        abort(); /* what we encode, we must decode */
    struct mars_encoder second = {0};
    events_json(b2, &second);
    if (second.out_len != first->out_len ||
        (first->out_len && memcmp(second.out, first->out, first->out_len) != 0))
        abort(); /* (no memcmp of two NULL buffers: an empty batch encodes to nothing) */
    mars_encoder_fini(&second);
    mars_batch_release(b2);
    mars_wire_enc_fini(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (size - off >= MARS_WIRE_HDR) {
        struct mars_wire_hdr h;
        const char *why;
        if (mars_wire_get_hdr(data + off, MAX_PAYLOAD, &h, &why) != 0)
            break;
        if (size - off - MARS_WIRE_HDR < h.length)
            break;
        const uint8_t *p = data + off + MARS_WIRE_HDR;
        off += MARS_WIRE_HDR + h.length;
        if (h.type == MARS_WIRE_HELLO) {
            struct mars_wire_hello hello;
            void *scratch = NULL;
            (void)mars_wire_hello_parse(p, h.length, &hello, &scratch);
            mars_wire_hello_destroy(scratch);
        } else if (h.type == MARS_WIRE_ERROR) {
            char reason[64];
            int code;
            (void)mars_wire_error_parse(p, h.length, &code, reason, sizeof(reason));
        } else if (h.type == MARS_WIRE_BATCH) {
            struct mars_batch *b = decode_frame(&h, p);
            if (!b)
                continue;
            struct mars_encoder first = {0};
            events_json(b, &first);
            round_trip(b, &first);
            mars_encoder_fini(&first);
            mars_batch_release(b);
        }
    }
    return 0;
}
