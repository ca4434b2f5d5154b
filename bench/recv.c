/*
 * recv.c - the TCP receiver of the network scenarios: accepts connections on loopback,
 * counts newline-terminated lines and bytes, and exits as soon as it has the expected count
 * (completion is exact, never a sleep). With --latency every line must start with the
 * writer's CLOCK_REALTIME in nanoseconds; the receiver records now - that stamp per line
 * and prints p50/p99/max.
 *
 * Usage: recv --port-file FILE --expect N [--latency] [--timeout SEC]
 *   Listens on 127.0.0.1 on a free port and writes the port number to FILE (written to
 *   FILE.tmp then renamed, so a reader never sees half a number).
 * Prints on stdout: "lines=N bytes=B conns=C" and with --latency " p50_ms=.. p99_ms=..
 * max_ms=..". Exit 0 when N lines arrived, 1 on timeout (default 600 s) or error.
 * Build: cc -O2 -std=c11 -o recv bench/recv.c   (bench/run does it for you)
 *
 * How it works: one thread, poll() over the listener and up to 64 connections, 256 KiB
 * reads, memchr for newlines. Latency parsing keeps a tiny per-connection state machine
 * (at line start / in the stamp / in the rest of the line) so stamps split across reads
 * are handled.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BUF       (256u << 10)

enum lstate { AT_START, IN_STAMP, IN_REST };

struct conn {
    int fd;
    enum lstate st;
    uint64_t stamp;
};

static int64_t *lat; /* latencies in ns */
static size_t nlat, caplat;

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_latency(int64_t v)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof(*lat));
        if (!lat) {
            fprintf(stderr, "recv: out of memory\n");
            exit(1);
        }
    }
    lat[nlat++] = v;
}

/* Walks one read for latency stamps; counts nothing (lines are counted with memchr). */
static void scan_stamps(struct conn *c, const char *p, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        switch (c->st) {
        case AT_START:
        case IN_STAMP:
            if (ch >= '0' && ch <= '9') {
                c->stamp = c->stamp * 10 + (uint64_t)(ch - '0');
                c->st = IN_STAMP;
                break;
            }
            if (c->st == IN_STAMP)
                add_latency(now - (int64_t)c->stamp);
            c->stamp = 0;
            c->st = ch == '\n' ? AT_START : IN_REST;
            break;
        case IN_REST: {
            const char *nl = memchr(p + i, '\n', n - i);
            if (!nl)
                return;
            i = (size_t)(nl - p);
            c->st = AT_START;
            break;
        }
        }
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(double q)
{
    if (nlat == 0)
        return 0;
    size_t k = (size_t)(q * (double)(nlat - 1) + 0.5);
    return (double)lat[k] / 1e6;
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    uint64_t expect = 0;
    bool latency = false;
    double timeout = 600;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--latency") == 0)
            latency = true;
        else if (i + 1 < argc && strcmp(argv[i], "--port-file") == 0)
            port_file = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--expect") == 0)
            expect = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0)
            timeout = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: recv --port-file FILE --expect N [--latency] "
                            "[--timeout SEC]\n");
            return 2;
        }
    }
    if (!port_file || expect == 0) {
        fprintf(stderr, "recv: --port-file and --expect N (> 0) are required\n");
        return 2;
    }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 64) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl)) {
        fprintf(stderr, "recv: listen: %s\n", strerror(errno));
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(pf) ||
        rename(tmp, port_file)) {
        fprintf(stderr, "recv: %s: %s\n", port_file, strerror(errno));
        return 1;
    }

    char *buf = malloc(BUF);
    struct conn conns[MAX_CONNS];
    struct pollfd pfds[MAX_CONNS + 1];
    int nconns = 0, total_conns = 0, rc = 1;
    uint64_t lines = 0, bytes = 0;
    double deadline = mono_s() + timeout;

    while (lines < expect) {
        double left = deadline - mono_s();
        if (left <= 0) {
            fprintf(stderr, "recv: timeout with %" PRIu64 " of %" PRIu64 " lines\n", lines, expect);
            goto out;
        }
        pfds[0] = (struct pollfd){.fd = ls, .events = nconns < MAX_CONNS ? POLLIN : 0};
        for (int i = 0; i < nconns; i++)
            pfds[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        int n = poll(pfds, (nfds_t)nconns + 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "recv: poll: %s\n", strerror(errno));
            goto out;
        }
        if (n <= 0)
            continue;
        for (int i = nconns - 1; i >= 0; i--) {
            if (!pfds[i + 1].revents)
                continue;
            ssize_t r = read(conns[i].fd, buf, BUF);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                close(conns[i].fd);
                conns[i] = conns[--nconns];
                continue;
            }
            bytes += (uint64_t)r;
            for (const char *p = buf, *end = buf + r; (p = memchr(p, '\n', (size_t)(end - p)));)
                lines++, p++;
            if (latency)
                scan_stamps(&conns[i], buf, (size_t)r, realtime_ns());
        }
        if (pfds[0].revents & POLLIN) {
            int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                conns[nconns++] = (struct conn){.fd = fd, .st = AT_START};
                total_conns++;
            }
        }
    }
    rc = 0;
out:
    printf("lines=%" PRIu64 " bytes=%" PRIu64 " conns=%d", lines, bytes, total_conns);
    if (latency) {
        qsort(lat, nlat, sizeof(*lat), cmp64);
        printf(" samples=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", nlat, pct_ms(0.50), pct_ms(0.99),
               nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
    }
    printf("\n");
    return rc;
}
