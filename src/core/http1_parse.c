/*
 * http1_parse.c - the HTTP/1.x answer reader of http1_parse.h: a state machine over lines
 * (status, headers, chunk sizes, trailers) and counted body bytes.
 *
 * Thread: any; a parser belongs to one thread.
 */
#include "core/http1_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"

enum rstate {
    RS_STATUS,
    RS_HEADERS,
    RS_BODY,       /* Content-Length: `left` bytes */
    RS_CHUNK_SIZE, /* chunked: the size line */
    RS_CHUNK_DATA, /* `left` bytes of a chunk */
    RS_CHUNK_END,  /* the CRLF after a chunk */
    RS_TRAILERS,
    RS_EOF, /* no length: the body ends when the peer closes */
    RS_DONE,
};

void mars_h1_parser_reset(struct mars_h1_parser *x)
{
    x->status = 0;
    x->keep = x->leftover = x->chunked = x->has_len = false;
    x->state = RS_STATUS;
    x->left = 0;
    x->line_len = 0;
}

void mars_h1_parser_fini(struct mars_h1_parser *x)
{
    free(x->line);
    x->line = NULL;
    x->line_len = x->line_cap = 0;
}

bool mars_h1_parse_close(struct mars_h1_parser *x)
{
    if (x->state != RS_EOF)
        return x->state == RS_DONE;
    x->state = RS_DONE;
    return true;
}

bool mars_h1_reusable(const struct mars_h1_parser *x)
{
    return x->state == RS_DONE && x->keep && !x->leftover;
}

/* A header (or trailer) line without its line end: what the framing needs from it. */
static int header(struct mars_h1_parser *x, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return -EBADMSG;
    size_t nlen = (size_t)(colon - s);
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (nlen == 14 && strncasecmp(s, "content-length", 14) == 0) {
        uint64_t len = 0;
        if (vlen == 0)
            return -EBADMSG;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9' || len > UINT64_MAX / 20)
                return -EBADMSG;
            len = len * 10 + (uint64_t)(v[i] - '0');
        }
        if (x->has_len && len != x->left)
            return -EBADMSG; /* two different lengths: the framing is unknowable */
        x->has_len = true;
        x->left = len;
    } else if (nlen == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
        /* chunked is always the last coding when present */
        x->chunked = vlen >= 7 && strncasecmp(end - 7, "chunked", 7) == 0;
    } else if (nlen == 10 && strncasecmp(s, "connection", 10) == 0) {
        for (size_t i = 0; i + 5 <= vlen; i++) {
            if (strncasecmp(v + i, "close", 5) == 0)
                x->keep = false;
            else if (i + 10 <= vlen && strncasecmp(v + i, "keep-alive", 10) == 0)
                x->keep = true;
        }
    }
    return 0;
}

static int status_line(struct mars_h1_parser *x, const char *s, size_t n)
{
    /* HTTP/1.x SSS reason */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ' || s[9] < '1' || s[9] > '5' ||
        s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' || (n > 12 && s[12] != ' '))
        return -EBADMSG;
    x->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    x->keep = s[7] != '0'; /* HTTP/1.0 keeps the connection only when it says so */
    x->chunked = x->has_len = false;
    x->left = 0;
    return 0;
}

/* A whole line (x->line, line_len bytes with its line end) in the state it belongs to. */
static int line(struct mars_h1_parser *x)
{
    const char *s = x->line;
    size_t n = x->line_len;
    int rc = 0;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    switch (x->state) {
    case RS_STATUS:
        if (n == 0)
            return 0; /* a stray empty line before the status is tolerated */
        if ((rc = status_line(x, s, n)) == 0)
            x->state = RS_HEADERS;
        return rc;
    case RS_HEADERS:
        if (n > 0) {
            if (x->on_header)
                x->on_header(x->data, s, x->line_len);
            return header(x, s, n);
        }
        if (x->status / 100 == 1) {
            if (x->status == 101)
                return -EBADMSG;  /* no upgrade was asked for */
            x->state = RS_STATUS; /* an interim answer (100, 103): the real one follows */
        } else if (x->head_method || x->status == 204 || x->status == 304) {
            x->state = RS_DONE;
        } else if (x->chunked) {
            x->state = RS_CHUNK_SIZE;
        } else if (x->has_len) {
            x->state = x->left ? RS_BODY : RS_DONE;
        } else {
            x->state = RS_EOF;
            x->keep = false;
        }
        return 0;
    case RS_CHUNK_SIZE: {
        uint64_t v = 0;
        size_t i = 0;
        for (; i < n; i++) {
            char ch = s[i];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                break;
            if (v >> 56)
                return -EBADMSG;
            v = v * 16 + (uint64_t)d;
        }
        if (i == 0 || (i < n && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
            return -EBADMSG;
        x->left = v;
        x->state = v ? RS_CHUNK_DATA : RS_TRAILERS;
        return 0;
    }
    case RS_CHUNK_END:
        if (n != 0)
            return -EBADMSG;
        x->state = RS_CHUNK_SIZE;
        return 0;
    case RS_TRAILERS:
        if (n == 0) {
            x->state = RS_DONE;
            return 0;
        }
        if (x->on_header)
            x->on_header(x->data, s, x->line_len);
        return 0;
    default:
        return -EBADMSG;
    }
}

/* Feeds the bytes of the answer: 0 more wanted, 1 the answer is complete, < 0 an error
 * (-EBADMSG: not HTTP/1.x as it should be; -ECANCELED: on_data asked to stop). */
int mars_h1_parse(struct mars_h1_parser *x, const char *s, size_t n)
{
    while (n > 0 && x->state != RS_DONE) {
        if (x->state == RS_BODY || x->state == RS_CHUNK_DATA || x->state == RS_EOF) {
            size_t take = n;
            if (x->state != RS_EOF && x->left < take)
                take = (size_t)x->left;
            if (!x->on_body(x->data, s, take))
                return -ECANCELED;
            s += take;
            n -= take;
            if (x->state == RS_EOF)
                continue;
            x->left -= take;
            if (x->left == 0)
                x->state = x->state == RS_BODY ? RS_DONE : RS_CHUNK_END;
            continue;
        }
        const char *nl = memchr(s, '\n', n);
        size_t take = nl ? (size_t)(nl - s) + 1 : n;
        if (x->line_len + take > MARS_H1_LINE_MAX)
            return -EBADMSG;
        if (mars_grow(&x->line, &x->line_cap, x->line_len + take + 1, 1))
            return -ENOMEM;
        memcpy(x->line + x->line_len, s, take);
        x->line_len += take;
        s += take;
        n -= take;
        if (!nl)
            break;
        int rc = line(x);
        x->line_len = 0;
        if (rc)
            return rc;
    }
    if (x->state != RS_DONE)
        return 0;
    x->leftover = n > 0; /* bytes after the answer: the connection is not trusted again */
    return 1;
}
