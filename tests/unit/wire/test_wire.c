/* Unit tests of the mars native protocol codec (wire/wire.c, wire_batch.c): frame
 * headers and their checks, addresses, the token check, HELLO/ERROR payloads, events
 * with nested fields through encode -> lz4 -> decode, and the hand decoder on bytes our
 * encoder never makes (field order, unknown fields, repeats) and on broken protobuf. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/encode.h"
#include "model/fields.h"
#include "model/json.h"
#include "config/netconf.h"
#include "wire/wire.h"
#include "mars.pb-c.h"

static void test_header(void **state)
{
    uint8_t b[MARS_WIRE_HDR];
    struct mars_wire_hdr h = {.type = MARS_WIRE_BATCH,
                              .flags = MARS_WIRE_F_LZ4,
                              .seq = 1ull << 40,
                              .length = 100,
                              .raw_length = 300},
                         g;
    const char *why = NULL;
    mars_wire_put_hdr(b, &h);
    assert_memory_equal(b, "MR\x01\x02", 4);
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), 0);
    assert_int_equal(g.type, MARS_WIRE_BATCH);
    assert_true(g.seq == 1ull << 40);
    assert_int_equal(g.length, 100);
    assert_int_equal(g.raw_length, 300);
    /* over the limit, after decompression */
    assert_int_equal(mars_wire_get_hdr(b, 299, &g, &why), -EMSGSIZE);
    /* bad magic, version, type, flags */
    b[0] = 'X';
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    b[0] = 'M';
    b[2] = 2;
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    b[2] = 1;
    b[3] = 9;
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    /* plain frame whose lengths differ; payload on an ACK; lz4 on a control frame */
    h = (struct mars_wire_hdr){.type = MARS_WIRE_BATCH, .length = 5, .raw_length = 6};
    mars_wire_put_hdr(b, &h);
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    h = (struct mars_wire_hdr){.type = MARS_WIRE_ACK, .length = 1, .raw_length = 1};
    mars_wire_put_hdr(b, &h);
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    h = (struct mars_wire_hdr){
        .type = MARS_WIRE_HELLO, .flags = MARS_WIRE_F_LZ4, .length = 1, .raw_length = 2};
    mars_wire_put_hdr(b, &h);
    assert_int_equal(mars_wire_get_hdr(b, 1000, &g, &why), -EPROTO);
    /* a control frame is small whatever the batch limit */
    h = (struct mars_wire_hdr){.type = MARS_WIRE_HELLO,
                               .length = MARS_WIRE_CONTROL_MAX + 1,
                               .raw_length = MARS_WIRE_CONTROL_MAX + 1};
    mars_wire_put_hdr(b, &h);
    assert_int_equal(mars_wire_get_hdr(b, 1 << 20, &g, &why), -EMSGSIZE);
}

static void test_address(void **state)
{
    char host[64], port[8];
    assert_int_equal(
        mars_netconf_split_address("agg.logging:6277", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "agg.logging");
    assert_string_equal(port, "6277");
    assert_int_equal(mars_netconf_split_address("[::1]:80", host, sizeof(host), port, sizeof(port)),
                     0);
    assert_string_equal(host, "::1");
    assert_int_equal(mars_netconf_split_address("::1:80", host, sizeof(host), port, sizeof(port)),
                     -EINVAL);
    assert_int_equal(mars_netconf_split_address("host", host, sizeof(host), port, sizeof(port)),
                     -EINVAL);
    assert_int_equal(mars_netconf_split_address("host:", host, sizeof(host), port, sizeof(port)),
                     -EINVAL);
    assert_int_equal(
        mars_netconf_split_address("host:70000", host, sizeof(host), port, sizeof(port)), -EINVAL);
    assert_int_equal(mars_netconf_split_address("host:-1", host, sizeof(host), port, sizeof(port)),
                     -EINVAL);
}

static void test_token_and_control(void **state)
{
    assert_true(mars_wire_token_equal("secret", 6, "secret", 6));
    assert_false(mars_wire_token_equal("secret", 6, "secreT", 6));
    assert_false(mars_wire_token_equal("secret", 6, "secret2", 7));
    assert_false(mars_wire_token_equal("secret", 6, "", 0));

    uint8_t f[MARS_WIRE_HDR + MARS_WIRE_CONTROL_MAX];
    struct mars_wire_hello h = {.version = 1,
                                .token = (const uint8_t *)"tok",
                                .token_len = 3,
                                .name = "agent",
                                .window = 8},
                           g;
    int n = mars_wire_hello_frame(&h, f, sizeof(f));
    assert_true(n > MARS_WIRE_HDR);
    struct mars_wire_hdr hdr;
    const char *why;
    assert_int_equal(mars_wire_get_hdr(f, 1 << 20, &hdr, &why), 0);
    assert_int_equal(hdr.type, MARS_WIRE_HELLO);
    void *scratch = NULL;
    assert_int_equal(mars_wire_hello_parse(f + MARS_WIRE_HDR, hdr.length, &g, &scratch), 0);
    assert_int_equal(g.version, 1);
    assert_int_equal(g.token_len, 3);
    assert_memory_equal(g.token, "tok", 3);
    assert_string_equal(g.name, "agent");
    assert_int_equal(g.window, 8);
    mars_wire_hello_destroy(scratch);

    n = mars_wire_error_frame(7, 1, "wrong\ntoken", f, sizeof(f));
    assert_true(n > MARS_WIRE_HDR);
    assert_int_equal(mars_wire_get_hdr(f, 1 << 20, &hdr, &why), 0);
    assert_true(hdr.seq == 7);
    int code;
    char reason[64];
    assert_int_equal(
        mars_wire_error_parse(f + MARS_WIRE_HDR, hdr.length, &code, reason, sizeof(reason)), 0);
    assert_int_equal(code, 1);
    assert_string_equal(reason, "wrong?token"); /* control bytes never reach the log */
    assert_string_equal(mars_wire_error_name(code), "bad token");
}

/* Encodes b's events into one frame (lz4 as asked) and decodes it into a new batch. */
static struct mars_batch *round_trip(struct mars_batch *b, bool lz4, size_t limit, uint32_t *taken)
{
    struct mars_wire_enc e;
    mars_wire_enc_init(&e);
    *taken = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        int rc = mars_wire_enc_add(&e, &b->ev[i], limit);
        if (rc == -ENOSPC)
            break;
        assert_int_equal(rc, 0);
        (*taken)++;
    }
    assert_int_equal(mars_wire_enc_finish(&e, 3, lz4), 0);
    struct mars_wire_hdr h;
    const char *why = NULL;
    assert_int_equal(mars_wire_get_hdr(e.frame, 1 << 30, &h, &why), 0);
    assert_int_equal(e.framelen, MARS_WIRE_HDR + h.length);
    assert_int_equal(!!(h.flags & MARS_WIRE_F_LZ4), lz4); /* these events compress */
    uint8_t *raw = malloc(h.raw_length);
    if (h.flags & MARS_WIRE_F_LZ4)
        assert_int_equal(mars_wire_unlz4(e.frame + MARS_WIRE_HDR, h.length, raw, h.raw_length), 0);
    else
        memcpy(raw, e.frame + MARS_WIRE_HDR, h.raw_length);
    /* the hand packer makes the bytes protobuf-c's own packer makes of what it decodes */
    Mars__Batch *pb = mars__batch__unpack(NULL, h.raw_length, raw);
    assert_non_null(pb);
    assert_int_equal(mars__batch__get_packed_size(pb), h.raw_length);
    uint8_t *again = malloc(h.raw_length + 1);
    mars__batch__pack(pb, again);
    assert_memory_equal(again, raw, h.raw_length);
    free(again);
    mars__batch__free_unpacked(pb, NULL);
    struct mars_batch *d = mars_batch_create(4);
    assert_int_equal(mars_wire_decode_batch(raw, h.raw_length, d, &why), 0);
    free(raw);
    mars_wire_enc_fini(&e);
    return d;
}

static void test_events(void **state)
{
    static const char *const lines[] = {
        "{\"a\":1,\"s\":\"x\\u00e9\\\"y\",\"o\":{\"k\":[1,{\"z\":null}],\"t\":true},\"m\":\"m\"}",
        "plain line without fields, plain line without fields, plain line without fields",
        "{\"message\":\"replaced\",\"n\":-1.5e3,\"f\":false}",
        "",
    };
    struct mars_batch *b = mars_batch_create(4);
    struct mars_fbuild fb;
    mars_fbuild_init(&fb);
    for (int i = 0; i < 4; i++) {
        struct mars_event *ev = mars_batch_push(b);
        ev->msg = (struct mars_slice){lines[i], (uint32_t)strlen(lines[i])};
        ev->ts_ns = i == 3 ? -5 : 1700000000123456789LL + i; /* negative: a 10-byte varint */
        ev->flags = i == 1 ? MARS_EVF_PARTIAL : 0;
        ev->file = i == 0 ? "/var/log/pods/a/0.log" : NULL;
        ev->host = i == 2 ? "node-1" : NULL;
        if (i == 0 || i == 2) {
            mars_fbuild_reset(&fb, &b->arena);
            assert_int_equal(mars_json_parse(ev->msg.ptr, ev->msg.len, 64, &fb, 0, NULL), 0);
            assert_int_equal(mars_fields_merge(b, ev, &fb, NULL), 0);
        }
    }
    mars_fbuild_fini(&fb);

    uint32_t taken;
    for (int lz4 = 0; lz4 < 2; lz4++) {
        struct mars_batch *d = round_trip(b, lz4, 1 << 20, &taken);
        assert_int_equal(taken, 4);
        assert_int_equal(d->n, 4);
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < 4; i++)
            bytes += b->ev[i].msg.len;
        assert_true(d->bytes == bytes); /* the receiver's buffer accounting */
        for (uint32_t i = 0; i < 4; i++) {
            struct mars_encoder x = {0}, y = {0};
            assert_int_equal(mars_encode_json_event(&x, &b->ev[i]), 0);
            assert_int_equal(mars_encode_json_event(&y, &d->ev[i]), 0);
            assert_int_equal(x.out_len, y.out_len); /* the same JSON, byte for byte */
            assert_memory_equal(x.out, y.out, x.out_len);
            assert_int_equal(d->ev[i].flags, b->ev[i].flags);
            assert_true(d->ev[i].ts_ns == b->ev[i].ts_ns);
            mars_encoder_fini(&x);
            mars_encoder_fini(&y);
        }
        assert_string_equal(d->ev[0].file, "/var/log/pods/a/0.log");
        assert_null(d->ev[1].file);
        assert_string_equal(d->ev[2].host, "node-1");
        assert_int_equal(d->ev[3].msg.len, 0);
        mars_batch_release(d);
    }
    /* a limit that fits one event: the frame stops there; one event bigger than the limit
     * alone is -EMSGSIZE */
    struct mars_batch *d = round_trip(b, false, 250, &taken);
    assert_int_equal(taken, 1);
    mars_batch_release(d);
    struct mars_wire_enc e;
    mars_wire_enc_init(&e);
    assert_int_equal(mars_wire_enc_add(&e, &b->ev[0], 16), -EMSGSIZE);
    mars_wire_enc_fini(&e);
    mars_batch_release(b);
}

static void test_decode_rejects(void **state)
{
    /* Batch{events:[Event{message:"x", fields:[Field{key:"k", kind, value, flags, parent}]}]} */
    struct {
        uint8_t kind, flags, parent;
        const char *value;
        bool ok;
    } cases[] = {
        {1, 0, 0, "12.5", true},  {1, 0, 0, "12a", false},      {1, 0, 0, "\"1\"", false},
        {2, 0, 0, "true", true},  {2, 0, 0, "yes", false},      {5, 0, 0, "[1,2]", true},
        {5, 0, 0, "{}", false},   {4, 2, 0, "{\"a\":1}", true}, {4, 2, 0, "[1]", false},
        {0, 1, 0, "a\\nb", true}, {0, 1, 0, "a\\qb", false},    {0, 1, 0, "a\"b", false},
        {0, 2, 0, "x", false},    {9, 0, 0, "x", false},        {0, 0, 1, "x", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t field[64], ev[96], batch[128];
        size_t vl = strlen(cases[i].value), n = 0;
        field[n++] = 0x0a, field[n++] = 1, field[n++] = 'k';
        field[n++] = 0x10, field[n++] = cases[i].kind;
        field[n++] = 0x1a, field[n++] = (uint8_t)vl;
        memcpy(field + n, cases[i].value, vl), n += vl;
        field[n++] = 0x20, field[n++] = cases[i].flags;
        field[n++] = 0x28, field[n++] = cases[i].parent;
        size_t m = 0;
        ev[m++] = 0x0a, ev[m++] = 1, ev[m++] = 'x';
        ev[m++] = 0x2a, ev[m++] = (uint8_t)n;
        memcpy(ev + m, field, n), m += n;
        size_t k = 0;
        batch[k++] = 0x0a, batch[k++] = (uint8_t)m;
        memcpy(batch + k, ev, m), k += m;
        struct mars_batch *b = mars_batch_create(1);
        const char *why = NULL;
        int rc = mars_wire_decode_batch(batch, k, b, &why);
        if (cases[i].ok)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, -EPROTO);
        mars_batch_release(b);
    }
}

/* Appends a varint / a tag / a length-delimited field to a test buffer. */
static size_t put_v(uint8_t *b, size_t n, uint64_t v)
{
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return n;
}

static size_t put_ld(uint8_t *b, size_t n, unsigned field, const void *v, size_t len)
{
    n = put_v(b, n, field << 3 | 2);
    n = put_v(b, n, len);
    memcpy(b + n, v, len);
    return n + len;
}

static int decode_bytes(const uint8_t *p, size_t n, struct mars_batch **out)
{
    struct mars_batch *b = mars_batch_create(2);
    const char *why = NULL;
    int rc = mars_wire_decode_batch(p, n, b, &why);
    if (rc)
        assert_non_null(why);
    *out = b;
    return rc;
}

static void test_decode_by_hand(void **state)
{
    (void)state;
    /* Field{value first, an unknown fixed32, key, kind twice (the last wins), parent 0} */
    uint8_t f[64], ev[256], batch[512];
    size_t fn = 0;
    fn = put_ld(f, fn, 3, "42", 2);
    fn = put_v(f, fn, 9 << 3 | 5), memcpy(f + fn, "\1\2\3\4", 4), fn += 4;
    fn = put_ld(f, fn, 1, "n", 1);
    fn = put_v(f, fn, 2 << 3), fn = put_v(f, fn, 2); /* BOOL: "42" would be rejected */
    fn = put_v(f, fn, 2 << 3), fn = put_v(f, fn, 1); /* NUMBER wins */
    /* Event{fields, an unknown varint, an unknown fixed64, timestamp, message, file twice} */
    size_t en = 0;
    en = put_ld(ev, en, 5, f, fn);
    en = put_v(ev, en, 15 << 3), en = put_v(ev, en, 1ull << 62);
    en = put_v(ev, en, 12 << 3 | 1), memcpy(ev + en, "abcdefgh", 8), en += 8;
    en = put_v(ev, en, 2 << 3), en = put_v(ev, en, (uint64_t)-7); /* 10-byte varint */
    en = put_ld(ev, en, 1, "hello", 5);
    en = put_ld(ev, en, 4, "/old", 4);
    en = put_ld(ev, en, 4, "/var/log/x.log", 14);
    en = put_ld(ev, en, 7, "unknown bytes", 13);
    /* Batch{unknown bytes, the event three times} */
    size_t bn = put_ld(batch, 0, 2, "zz", 2);
    for (int i = 0; i < 3; i++)
        bn = put_ld(batch, bn, 1, ev, en);

    /* protobuf-c reads the same values (the reference for what these bytes mean) */
    Mars__Batch *pb = mars__batch__unpack(NULL, bn, batch);
    assert_non_null(pb);
    assert_int_equal(pb->n_events, 3);
    assert_true(pb->events[0]->timestamp_ns == -7);
    assert_int_equal(pb->events[0]->fields[0]->kind, 1);
    mars__batch__free_unpacked(pb, NULL);

    struct mars_batch *b;
    assert_int_equal(decode_bytes(batch, bn, &b), 0);
    assert_int_equal(b->n, 3);
    for (uint32_t i = 0; i < 3; i++) {
        const struct mars_event *e = &b->ev[i];
        assert_int_equal(e->msg.len, 5);
        assert_memory_equal(e->msg.ptr, "hello", 5);
        assert_true(e->ts_ns == -7);
        assert_string_equal(e->file, "/var/log/x.log");
        assert_ptr_equal(e->file, b->ev[0].file); /* one copy for the events of one file */
        assert_null(e->host);
        struct mars_encoder x = {0};
        assert_int_equal(mars_encode_json_event(&x, e), 0);
        assert_non_null(memmem(x.out, x.out_len, "\"n\":42", 6)); /* a number, not "42" */
        mars_encoder_fini(&x);
    }
    assert_true(b->bytes == 15);
    mars_batch_release(b);

    /* broken bytes: each is refused with a reason, never read past the end */
    struct {
        const char *what;
        uint8_t bytes[16];
        size_t n;
    } bad[] = {
        {"varint cut short", {0x0a, 0x80}, 2},
        {"length past the end", {0x0a, 0x05, 0x0a, 0x01}, 4},
        {"tag 0", {0x00, 0x01}, 2},
        {"group wire type", {0x0b, 0x0c}, 2},
        {"wire type 7", {0x0f, 0x00}, 2},
        {"events with a varint wire type", {0x08, 0x01}, 2},
        {"message as a varint", {0x0a, 0x02, 0x08, 0x01}, 4},
        {"11-byte varint",
         {0x0a, 0x0c, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
         14},
        {"unknown fixed64 cut short", {0x0a, 0x05, 0x61, 1, 2, 3, 4}, 7},
        {"field past the event's end", {0x0a, 0x03, 0x2a, 0x05, 0x0a}, 5},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *copy = malloc(bad[i].n); /* exactly n bytes: ASan sees any overread */
        memcpy(copy, bad[i].bytes, bad[i].n);
        int rc = decode_bytes(copy, bad[i].n, &b);
        if (rc != -EPROTO)
            fail_msg("%s: decoded (%d)", bad[i].what, rc);
        mars_batch_release(b);
        free(copy);
    }
    /* an empty payload is an empty batch */
    assert_int_equal(decode_bytes((const uint8_t *)"", 0, &b), 0);
    assert_int_equal(b->n, 0);
    mars_batch_release(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_token_and_control),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
