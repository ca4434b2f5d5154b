/*
 * httpc.c - blocking test HTTP client (see httpc.h). Sockets get a 30 s receive and send
 * timeout so a broken server fails a test instead of hanging it.
 */
#include "httpc.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

int httpc_connect(const char *addr)
{
    /* generous: the suite runs on loaded machines, and a server that answers late is not
     * what these tests check */
    struct timeval tv = {30, 0};
    int fd;
    if (addr[0] == '/') {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", addr);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    } else {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        char host[64];
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof(host))
            return -EINVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
            return -EINVAL;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

int httpc_raw(const char *addr, const char *raw, size_t len, struct httpc_resp *r)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    int fd = httpc_connect(addr);
    memset(r, 0, sizeof(*r));
    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return fd < 0 ? fd : -ENOMEM;
    }
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, raw + off, len - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the server may close early (limits): read what it said */
        off += (size_t)k;
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k < 0 && errno == EINTR)
            continue; /* a socket with a timeout is not restarted after a signal */
        if (k < 0)
            fprintf(stderr, "httpc: %s: recv after %zu bytes: %s\n", addr, n, strerror(errno));
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = 0;
    size_t hlen = end ? (size_t)(end - buf) : n;
    r->head = strndup(buf, hlen);
    r->body = strdup(end ? end + 4 : "");
    r->body_len = end ? n - hlen - 4 : 0;
    free(buf);
    return 0;
}

int httpc_request(const char *addr, const char *method, const char *path, const char *headers,
                  struct httpc_resp *r)
{
    char req[4096];
    int n =
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s\r\n",
                 method, path, headers ? headers : "");
    return httpc_raw(addr, req, (size_t)n, r);
}

void httpc_resp_fini(struct httpc_resp *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}
