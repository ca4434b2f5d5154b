/*
 * httpc.h - a blocking HTTP/1.1 client for tests of mars's HTTP endpoints (admin API,
 * prometheus_exporter): one request per connection, bounded by a timeout.
 */
#ifndef MARS_TEST_HTTPC_H
#define MARS_TEST_HTTPC_H

#include <stddef.h>

struct httpc_resp {
    int status; /* 0 when no status line came back (connection closed, timeout) */
    char *head; /* status line and headers, NUL-terminated (owned) */
    char *body; /* NUL-terminated (owned) */
    size_t body_len;
};

/* Sends `raw` (a whole request, sent as is) to addr ("127.0.0.1:PORT" or a unix socket path)
 * and reads the response until the peer closes. Returns 0 or -errno. */
int httpc_raw(const char *addr, const char *raw, size_t len, struct httpc_resp *r);
/* method path with "Connection: close" and optional extra header lines ("A: b\r\n"). */
int httpc_request(const char *addr, const char *method, const char *path, const char *headers,
                  struct httpc_resp *r);
void httpc_resp_fini(struct httpc_resp *r);
/* A connected socket to addr (for tests that hold connections open), or -errno. */
int httpc_connect(const char *addr);

#endif
