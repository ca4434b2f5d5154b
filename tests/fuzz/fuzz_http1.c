/*
 * fuzz_http1.c - libFuzzer target for the HTTP/1.x answer reader (core/http1_parse.c), which
 * reads what a peer of the http, elasticsearch and loki sinks sends back.
 *
 * The first byte of an input picks how the rest is cut into pieces (and whether the
 * request was HEAD); the rest is read once whole and once in those pieces. Beyond "no
 * crash, no sanitizer report", both reads must agree: the same outcome (more wanted,
 * complete, or the same error), and for a complete answer the same status, reuse, body
 * bytes and header lines. Where the bytes end with the answer still open, the close of the
 * connection must be judged the same way too.
 *
 * Run: build with clang (tests/fuzz/fuzz.cmake), then ./fuzz_http1 corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    uint64_t body_hash, body_len;
    unsigned headers;
};

static bool on_body(void *d, const char *p, size_t n)
{
    struct seen *s = d;
    for (size_t i = 0; i < n; i++)
        s->body_hash = (s->body_hash ^ (unsigned char)p[i]) * 0x100000001b3ull;
    s->body_len += n;
    return true;
}

static void on_header(void *d, const char *line, size_t n)
{
    struct seen *s = d;
    (void)line;
    (void)n;
    s->headers++;
}

struct outcome {
    int rc;
    bool closed_ok, after; /* after: bytes came after the answer */
    int status;
    bool reusable;
    struct seen seen;
};

/* Reads text in pieces of the sizes `cut` yields (0: whole). */
static void read_answer(const char *text, size_t n, unsigned cut, bool head, struct outcome *o)
{
    struct mars_h1_parser ps = {.on_body = on_body, .on_header = on_header};
    memset(o, 0, sizeof(*o));
    o->seen.body_hash = 0xcbf29ce484222325ull;
    ps.data = &o->seen;
    mars_h1_parser_reset(&ps);
    ps.head_method = head;
    size_t at = 0;
    unsigned state = cut;
    while (at < n) {
        size_t piece = n - at;
        if (cut) {
            state = state * 1103515245u + 12345u;
            size_t want = 1 + (state >> 16) % 17;
            if (want < piece)
                piece = want;
        }
        o->rc = mars_h1_parse(&ps, text + at, piece);
        at += piece;
        if (o->rc != 0)
            break;
    }
    if (o->rc == 1) {
        o->after = ps.leftover || at < n;
        o->status = ps.status;
        o->reusable = ps.keep && !o->after;
    } else if (o->rc == 0) {
        o->closed_ok = mars_h1_parse_close(&ps);
        if (o->closed_ok)
            o->status = ps.status;
    }
    mars_h1_parser_fini(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned cut = data[0] | 1u;
    bool head = data[0] & 0x80;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    struct outcome whole, pieces;
    read_answer(text, n, 0, head, &whole);
    read_answer(text, n, cut, head, &pieces);
    if (whole.rc != pieces.rc || whole.closed_ok != pieces.closed_ok ||
        whole.status != pieces.status || whole.after != pieces.after ||
        whole.reusable != pieces.reusable)
        abort();
    /* the body and headers agree whenever the reads ended the same way without an error
     * (an error may come at a different byte only if the outcome differs, checked above) */
    if (whole.rc >= 0 && (whole.seen.body_len != pieces.seen.body_len ||
                          whole.seen.body_hash != pieces.seen.body_hash ||
                          whole.seen.headers != pieces.seen.headers))
        abort();
    return 0;
}
