/*
 * http1_parse.h - reads an HTTP/1.x answer as its bytes arrive, in pieces of any size: the
 * status line, the headers, and the body framed by Content-Length, by chunks (trailers
 * included) or by the close of the connection. Interim 1xx answers are stepped over. Used by
 * core/http_direct.c; a libFuzzer target (tests/fuzz/fuzz_http1.c) holds it to giving the
 * same answer however the bytes are split.
 *
 *   struct mars_h1_parser ps = {.on_body = ..., .on_header = ..., .data = ...};
 *   mars_h1_parser_reset(&ps);            // before each answer
 *   rc = mars_h1_parse(&ps, bytes, n);    // 0: more, 1: complete, < 0: broken
 *   ... the peer closed: mars_h1_parse_close(&ps) says whether that completed it
 *   mars_h1_parser_fini(&ps);
 *
 * Thread: any; a parser belongs to one thread.
 */
#ifndef MARS_HTTP1_PARSE_H
#define MARS_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest status, header, chunk-size or trailer line read (an answer with a longer
 * one is refused). */
#define MARS_H1_LINE_MAX (64u * 1024)

struct mars_h1_parser {
    /* ---- the caller's ---- */
    bool head_method; /* the request was HEAD: the answer has no body whatever it says */
    /* Body bytes as they come (chunk framing removed). false: stop (parse returns
     * -ECANCELED). */
    bool (*on_body)(void *data, const char *p, size_t n);
    /* Each header and trailer line with its line end. Optional. */
    void (*on_header)(void *data, const char *line, size_t n);
    void *data;

    /* ---- read-only for the caller once parse returned 1 ---- */
    int status;    /* of the final answer */
    bool keep;     /* the connection may carry another request */
    bool leftover; /* bytes came after the answer (the connection is not to be trusted) */

    /* ---- the parser's ---- */
    int state;
    bool chunked, has_len;
    uint64_t left;
    char *line;
    size_t line_len, line_cap;
};

/* Ready for the next answer; the caller's fields (head_method, callbacks, data) are kept. */
void mars_h1_parser_reset(struct mars_h1_parser *ps);
void mars_h1_parser_fini(struct mars_h1_parser *ps);

/* Feeds n bytes. 0: more wanted; 1: the answer is complete (bytes after it set leftover);
 * -EBADMSG: not a valid HTTP/1.x answer (status line, header, length or chunk);
 * -ECANCELED: on_body said stop; -ENOMEM. After a non-zero return, reset before reuse. */
int mars_h1_parse(struct mars_h1_parser *ps, const char *s, size_t n);

/* The peer closed the connection: true when that completes the answer (a body with neither
 * length nor chunks ends at the close), false when the answer is cut short. */
bool mars_h1_parse_close(struct mars_h1_parser *ps);

/* The answer is complete and the connection may carry the next request. */
bool mars_h1_reusable(const struct mars_h1_parser *ps);

#endif
