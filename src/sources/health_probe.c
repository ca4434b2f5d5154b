/*
 * health_probe.c - the four probes of the health_check source, each a small state machine
 * on the worker's ev loop (contract in health_probe.h):
 *
 *   tcp      non-blocking connect; success once connected.
 *   http     one GET through the HTTP client of core/http_client.h (libcurl on the worker's loop)
 *            on a fresh connection closed afterwards, http:// or https:// (tls section:
 *            CA, client certificate, verify); the first max_output bytes of the body are
 *            kept; success when the status is in expect_status and the body contains
 *            expect_body.
 *   exec     posix_spawn with stdin /dev/null, stdout+stderr into a pipe read through the
 *            loop (the first max_output bytes kept, the rest drained and dropped), signals
 *            reset to default and unblocked, in its own process group; success on exit
 *            status 0. The exit is polled every 5 ms after the pipe closes; on timeout the
 *            group gets SIGKILL and is reaped the same way.
 *   pidfile  reads the pid from the file and checks it with kill(pid, 0) (EPERM = alive).
 *
 * Invariant: a run ends (mars_health_probe_finished) only when decided, with neither the io op, the
 * HTTP request nor the deadline timer in flight and no child left to reap, so nothing of it
 * outlives the call.
 *
 * Thread: the source's worker.
 */
#include "sources/health_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/spawn.h"

#define REAP_POLL_NS 5000000

static void maybe_complete(struct health_probe *p);

/* ---- preparation ---- */

static int resolve(struct health_probe *p, const char *host, const char *port, char *why,
                   size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(why, len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    p->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* "host:port" or "[v6]:port" into host and port. */
static int split_hostport(const char *s, size_t n, char *host, size_t hlen, char *port, size_t plen,
                          const char *def_port)
{
    const char *colon = NULL;
    const char *h = s;
    size_t hn;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return -EINVAL;
        h = s + 1;
        hn = (size_t)(close - h);
        colon = close + 1 < s + n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        hn = colon ? (size_t)(colon - s) : n;
    }
    size_t pn = colon ? (size_t)(s + n - colon - 1) : strlen(def_port ? def_port : "");
    if (hn == 0 || hn >= hlen || pn == 0 || pn >= plen)
        return -EINVAL;
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, colon ? colon + 1 : def_port, pn);
    port[pn] = '\0';
    return 0;
}

static void free_hdrs(struct health_probe *p)
{
    for (size_t i = 0; p->hdrs && p->hdrs[i]; i++)
        free(p->hdrs[i]);
    free(p->hdrs);
    p->hdrs = NULL;
}

static int prepare_http(struct health_probe *p, const struct health_probe_conf *c, bool res,
                        char *why, size_t len)
{
    char host[256], port[16];
    const char *u = c->url;
    size_t skip = u && strncasecmp(u, "http://", 7) == 0    ? 7
                  : u && strncasecmp(u, "https://", 8) == 0 ? 8
                                                            : 0;
    if (!skip) {
        snprintf(why, len, "url must start with http:// or https://");
        return -EINVAL;
    }
    u += skip;
    const char *path = strchr(u, '/');
    size_t hn = path ? (size_t)(path - u) : strlen(u);
    if (split_hostport(u, hn, host, sizeof(host), port, sizeof(port), "80")) {
        snprintf(why, len, "url '%s' has no valid host[:port]", c->url);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->headers.n; i++) {
        const char *k = c->headers.keys[i], *v = c->headers.vals[i];
        if (!*k || strpbrk(k, ": \t\r\n") || strpbrk(v, "\r\n")) {
            snprintf(why, len, "headers: '%s' is not a valid header name and value", k);
            return -EINVAL;
        }
    }
    if (!res)
        return 0;
    mars_netconf_http_tls(&c->tls, c->name, &p->htls);
    free_hdrs(p);
    /* the Accept header, then the configured ones, then NULL */
    if (!(p->hdrs = calloc(c->headers.n + 2, sizeof(*p->hdrs))) ||
        !(p->hdrs[0] = strdup("Accept: */*"))) {
        snprintf(why, len, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->headers.n; i++)
        if (asprintf(&p->hdrs[i + 1], "%s: %s", c->headers.keys[i], c->headers.vals[i]) < 0) {
            p->hdrs[i + 1] = NULL;
            snprintf(why, len, "out of memory");
            return -ENOMEM;
        }
    return 0;
}

static int parse_status_range(struct health_probe *p, const char *s, char *why, size_t len)
{
    int lo, hi, n = 0;
    if (sscanf(s, "%d-%d%n", &lo, &hi, &n) == 2 && s[n] == '\0') {
        /* a range */
    } else if (sscanf(s, "%d%n", &lo, &n) == 1 && s[n] == '\0') {
        hi = lo;
    } else {
        lo = hi = 0;
    }
    if (lo < 100 || hi > 599 || lo > hi) {
        snprintf(why, len, "expect_status '%s' is not a status or range like 200-399", s);
        return -EINVAL;
    }
    p->status_lo = lo;
    p->status_hi = hi;
    return 0;
}

int mars_health_probe_prepare(struct health_probe *p, const struct health_probe_conf *c, bool res,
                              char *why, size_t len)
{
    char host[256], port[16];
    p->conf = c;
    p->fd = -1;
    p->pid = -1;
    switch (c->type) {
    case HEALTH_PROBE_HTTP:
        if (parse_status_range(p, c->expect_status, why, len))
            return -EINVAL;
        return prepare_http(p, c, res, why, len);
    case HEALTH_PROBE_TCP:
        if (!c->address || split_hostport(c->address, strlen(c->address), host, sizeof(host), port,
                                          sizeof(port), NULL)) {
            snprintf(why, len, "tcp checks need address: host:port");
            return -EINVAL;
        }
        return res ? resolve(p, host, port, why, len) : 0;
    case HEALTH_PROBE_EXEC:
        if (c->command.n == 0) {
            snprintf(why, len, "exec checks need command: [program, args...]");
            return -EINVAL;
        }
        if (res) {
            p->argv = calloc(c->command.n + 1, sizeof(*p->argv));
            if (!p->argv)
                return -ENOMEM;
            memcpy(p->argv, c->command.v, c->command.n * sizeof(*p->argv));
        }
        return 0;
    case HEALTH_PROBE_PIDFILE:
        if (!c->path || !*c->path) {
            snprintf(why, len, "pidfile checks need path");
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

void mars_health_probe_fini(struct health_probe *p)
{
    mars_http_destroy(p->http); /* the source has stopped: its requests and ops are done */
    free(p->buf);
    free(p->argv);
    free_hdrs(p);
    p->http = NULL;
    p->buf = NULL;
    p->argv = NULL;
}

/* ---- run bookkeeping ---- */

static void decide(struct health_probe *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void decide(struct health_probe *p, bool ok, const char *fmt, ...)
{
    if (p->decided)
        return;
    p->decided = true;
    p->ok = ok;
    p->error[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
    }
    if (p->deadline_armed)
        mars_ev_cancel(p->loop, &p->deadline);
    if (p->io_armed)
        mars_ev_cancel(p->loop, &p->io);
    if (p->http_armed)
        mars_http_cancel(p->http, &p->hreq);
    if (p->pid > 0) {
        kill(-p->pid, SIGKILL); /* its process group, then itself in case setpgid failed */
        kill(p->pid, SIGKILL);
    }
    maybe_complete(p);
}

static void submit_io(struct health_probe *p)
{
    int rc = mars_ev_submit(p->loop, &p->io);
    p->io_armed = rc == 0;
    if (rc)
        decide(p, false, "cannot start an operation: %s", strerror(-rc));
}

static void on_reap_poll(struct mars_ev_op *op, int res);

/* Reaps the child if it has exited. Returns true when there is no child any more. */
static bool try_reap(struct health_probe *p, int *status)
{
    if (p->pid <= 0)
        return true;
    pid_t r = waitpid(p->pid, status, WNOHANG);
    if (r == 0)
        return false;
    p->pid = -1;
    if (r < 0)
        *status = -1;
    return true;
}

static void arm_reap_poll(struct health_probe *p)
{
    mars_ev_prep_timer(&p->io, REAP_POLL_NS, on_reap_poll, p);
    submit_io(p);
}

static void maybe_complete(struct health_probe *p)
{
    int status;
    if (!p->decided || p->io_armed || p->deadline_armed || p->http_armed)
        return;
    if (!try_reap(p, &status)) {
        arm_reap_poll(p); /* killed at decide(); comes back here once it is gone */
        return;
    }
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->running = false;
    p->duration = (double)(mars_ev_clock_ns() - p->started_ns) / 1e9;
    mars_health_probe_finished(p);
}

static void on_deadline(struct mars_ev_op *op, int res)
{
    struct health_probe *p = op->data;
    p->deadline_armed = false;
    if (res != -ECANCELED)
        decide(p, false, "timed out after %lld ms", (long long)(p->conf->timeout / 1000000));
    maybe_complete(p);
}

/* ---- http ---- */

static void on_http_done(struct mars_http_req *r, const struct mars_http_resp *resp)
{
    struct health_probe *p = r->data;
    p->http_armed = false;
    if (p->decided) {
        maybe_complete(p);
        return;
    }
    if (resp->error == -ECONNREFUSED || resp->error == -EHOSTUNREACH) {
        decide(p, false, "connect: %s", strerror(-resp->error)); /* as the tcp probe says it */
        return;
    }
    if (resp->error) {
        decide(p, false, "%s", resp->error_text);
        return;
    }
    if (resp->status < p->status_lo || resp->status > p->status_hi) {
        decide(p, false, "HTTP status %d, expected %d-%d", resp->status, p->status_lo,
               p->status_hi);
        return;
    }
    const char *want = p->conf->expect_body;
    if (want && *want && !memmem(resp->body, resp->body_len, want, strlen(want))) {
        decide(p, false, "HTTP status %d, but the body does not contain \"%.64s\"", resp->status,
               want);
        return;
    }
    decide(p, true, NULL);
}

static void start_http(struct health_probe *p)
{
    if (!p->http && !(p->http = mars_http_create(
                          p->loop, &(struct mars_http_opts){
                                       .user_agent = "mars-health-check/" MARS_VERSION,
                                       .curl_on_demand = mars_http_url_direct(p->conf->url)}))) {
        decide(p, false, "cannot create an HTTP client: %s", strerror(errno));
        return;
    }
    p->hreq = (struct mars_http_req){
        .method = "GET",
        .url = p->conf->url,
        .headers = (const char *const *)p->hdrs,
        .timeout_ns = p->conf->timeout,
        .connect_timeout_ns = p->conf->timeout,
        .tls = &p->htls,
        .max_body = p->cap ? p->cap : 1,
        .fresh_connection = true,
        .direct = true,
        .done = on_http_done,
        .data = p,
    };
    int rc = mars_http_submit(p->http, &p->hreq);
    p->http_armed = rc == 0;
    if (rc)
        decide(p, false, "cannot start the request: %s", strerror(-rc));
}

void mars_health_probe_shutdown(struct health_probe *p)
{
    if (p->http)
        mars_http_shutdown(p->http);
}

/* ---- tcp ---- */

static void on_connect(struct mars_ev_op *op, int res)
{
    struct health_probe *p = op->data;
    p->io_armed = false;
    if (p->decided) {
        maybe_complete(p);
        return;
    }
    if (res < 0)
        decide(p, false, "connect: %s", strerror(-res));
    else
        decide(p, true, NULL);
}

static void start_connect(struct health_probe *p)
{
    p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        decide(p, false, "socket: %s", strerror(errno));
        return;
    }
    mars_ev_prep_connect(&p->io, p->fd, (struct sockaddr *)&p->addr, p->addrlen, on_connect, p);
    submit_io(p);
}

/* ---- exec ---- */

static void exec_verdict(struct health_probe *p, int status)
{
    char out[128] = "";
    size_t n = 0;
    while (n < p->len && n < sizeof(out) - 1 && p->buf[n] != '\n') {
        out[n] = p->buf[n] >= 0x20 ? p->buf[n] : ' ';
        n++;
    }
    out[n] = '\0';
    if (status < 0)
        decide(p, false, "cannot wait for the command: %s", strerror(errno));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        decide(p, true, NULL);
    else if (WIFEXITED(status))
        decide(p, false, "exit status %d%s%s", WEXITSTATUS(status), n ? ": " : "", out);
    else
        decide(p, false, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void on_reap_poll(struct mars_ev_op *op, int res)
{
    struct health_probe *p = op->data;
    int status = 0;
    p->io_armed = false;
    (void)res;
    if (!try_reap(p, &status)) {
        arm_reap_poll(p);
        return;
    }
    if (!p->decided)
        exec_verdict(p, status);
    maybe_complete(p);
}

static void read_output(struct health_probe *p);

static void on_output(struct mars_ev_op *op, int res)
{
    struct health_probe *p = op->data;
    p->io_armed = false;
    if (res > 0) {
        if (p->len < p->cap)
            p->len += (size_t)res;
        else
            p->discarded += (uint64_t)res;
    }
    if (res > 0 && !p->decided) {
        read_output(p);
        return;
    }
    /* end of output (or an error): the exit status decides */
    close(p->fd);
    p->fd = -1;
    if (!p->decided)
        on_reap_poll(op, 0);
    else
        maybe_complete(p);
}

static void read_output(struct health_probe *p)
{
    if (p->len < p->cap)
        mars_ev_prep_read(&p->io, p->fd, p->buf + p->len, p->cap - p->len, MARS_EV_CUR, on_output,
                          p);
    else
        mars_ev_prep_read(&p->io, p->fd, p->scratch, sizeof(p->scratch), MARS_EV_CUR, on_output, p);
    submit_io(p);
}

static void start_exec(struct health_probe *p)
{
    int rc = mars_spawn_captured(p->argv, &p->pid, &p->fd);
    if (rc == -EMFILE || rc == -ENFILE) {
        decide(p, false, "pipe: %s", strerror(-rc));
        return;
    }
    if (rc) {
        decide(p, false, "cannot run %s: %s", p->argv[0], strerror(-rc));
        return;
    }
    read_output(p);
}

/* ---- pidfile ---- */

static void check_pidfile(struct health_probe *p)
{
    char buf[32];
    int fd = open(p->conf->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        decide(p, false, "cannot open %s: %s", p->conf->path, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (n <= 0 || pid <= 0 || pid > 4194304 || (*end && *end != '\n' && *end != ' ')) {
        decide(p, false, "%s holds no process id", p->conf->path);
        return;
    }
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        decide(p, true, NULL);
    else
        decide(p, false, "process %ld from %s is not running", pid, p->conf->path);
}

/* ---- run ---- */

void mars_health_probe_run(struct health_probe *p)
{
    size_t want = p->conf->max_output;
    if (!p->buf) {
        p->buf = malloc(want + 1);
        p->cap = p->buf ? want : 0;
    }
    p->running = true;
    p->decided = p->ok = p->eof = false;
    p->error[0] = '\0';
    p->len = 0;
    p->discarded = 0;
    p->fd = -1;
    p->pid = -1;
    p->started_ns = mars_ev_clock_ns();
    if (!p->buf) {
        decide(p, false, "out of memory");
        return;
    }
    mars_ev_prep_timer(&p->deadline, p->conf->timeout, on_deadline, p);
    p->deadline_armed = mars_ev_submit(p->loop, &p->deadline) == 0;
    switch (p->conf->type) {
    case HEALTH_PROBE_HTTP:
        start_http(p);
        break;
    case HEALTH_PROBE_TCP:
        start_connect(p);
        break;
    case HEALTH_PROBE_EXEC:
        start_exec(p);
        break;
    case HEALTH_PROBE_PIDFILE:
        check_pidfile(p);
        break;
    }
}

void mars_health_probe_cancel(struct health_probe *p)
{
    if (p->running)
        decide(p, false, "stopped");
}
