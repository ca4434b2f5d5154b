/*
 * admin.c - an HTTP server thread built on libevent's evhttp (contract in admin.h).
 *
 * Why its own thread: DESIGN.md puts the admin API on the control thread, but the control
 * loop may be io_uring (core/ev.h), where evhttp cannot run. So each server owns a plain
 * event_base and a thread that dispatches it; handlers read the engine's state only
 * through thread-safe accessors. The thread is stopped by an eventfd whose callback breaks
 * the loop; everything else on the base (connections, timers) is freed after the join, on
 * the destroying thread, when nothing runs any more.
 *
 * Connections: evhttp 2.1 has no limit of its own and no deadline for a whole request (its
 * timeout restarts with every byte), so the server tracks each connection itself. It
 * creates each incoming connection's bufferevent (evhttp_set_bevcb), counts it in a
 * struct conn, and holds one reference on it until a zero-delay probe event has run. The
 * probe finds the evhttp connection through the bufferevent's callback argument (NULL
 * once evhttp has freed it) and registers a close callback that uncounts and frees the
 * conn. The reference keeps the bufferevent's memory valid for the probe whatever
 * happened first.
 *  - Deadline: a sweep timer closes a connection that has not delivered a whole request
 *    within request_timeout of its accept, or within idle_timeout of its last request, so
 *    a client trickling a byte at a time holds a slot for seconds, not for ever.
 *  - Cap: a connection over max_connections evicts the one that has waited longest
 *    without a request (the slowest client, or an idle keep-alive one); a flood of slow
 *    connections cannot keep a probe from /healthz. Both are counted (mars_admin_stats).
 *
 * Routing: exact paths, then prefixes, in the order added. Method mismatch gives 405 with
 * Allow; no route gives 404; both as small JSON bodies.
 *
 * Thread: create/route/start/destroy on the owner's thread; handlers on the server thread.
 */
#include "core/admin.h"

#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/grow.h"
#include "core/json_escape.h"
#include "core/log.h"

struct route {
    char *path;
    size_t len;
    bool prefix;
    unsigned methods;
    mars_admin_handler h;
    void *arg;
};

/* One open connection (see the top). */
struct conn {
    struct mars_admin *a;
    struct bufferevent *bev;         /* referenced until the probe ran, then NULL */
    struct event *probe;             /* NULL once it ran */
    struct evhttp_connection *evcon; /* set by the probe; valid until on_conn_close */
    uint64_t since_ms;               /* accept, or the start of the last request */
    bool served;                     /* a request arrived whole on it */
    struct conn *prev, *next;
};

struct mars_admin {
    struct mars_admin_opts o;
    char *name;
    char address[256];
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    int stop_fd;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    struct route *routes;
    size_t nroutes, routes_cap;
    struct conn *conn_list;
    unsigned conns;
    struct event *sweep_ev;
    _Atomic uint64_t timed_out, evicted;
    pthread_t thread;
    bool started;
};

/* ---- address ---- */

static int listen_unix(struct mars_admin *a, const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        mars_error(a->name, "unix socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* a socket file: replace it only if nobody answers on it */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
        if (probe >= 0)
            close(probe);
        if (!live)
            unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 64)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    snprintf(a->unix_path, sizeof(a->unix_path), "%s", path);
    snprintf(a->address, sizeof(a->address), "%s", path);
    return fd;
}

static int split_host_port(const char *addr, char *host, size_t hlen, const char **port)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t n;
    if (!colon || !colon[1])
        return -EINVAL;
    n = (size_t)(colon - addr);
    if (addr[0] == '[') { /* [v6]:port */
        if (n < 2 || addr[n - 1] != ']')
            return -EINVAL;
        h = addr + 1;
        n -= 2;
    }
    if (n == 0 || n >= hlen)
        return -EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

static void format_bound(struct mars_admin *a, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV))
        return;
    snprintf(a->address, sizeof(a->address), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
             serv);
}

static int listen_tcp(struct mars_admin *a, const char *addr)
{
    char host[NI_MAXHOST];
    const char *port;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int fd = -1, rc;

    if (split_host_port(addr, host, sizeof(host), &port)) {
        mars_error(a->name, "address '%s' is neither host:port nor a unix socket path", addr);
        return -EINVAL;
    }
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        mars_error(a->name, "cannot resolve '%s': %s", addr, gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
            rc = -errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return rc;
    format_bound(a, fd);
    return fd;
}

/* ---- connections ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void unlink_conn(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->a->conn_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->a->conns--;
}

/* Frees a conn whose evhttp connection is gone (or never reached the probe). */
static void free_conn(struct conn *c)
{
    unlink_conn(c);
    if (c->probe)
        event_free(c->probe);
    if (c->bev)
        bufferevent_decref(c->bev);
    free(c);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    free_conn(arg);
}

/* The connection that has waited longest without a request, other than `keep`. */
static struct conn *oldest_conn(struct mars_admin *a, const struct conn *keep)
{
    struct conn *old = NULL;
    for (struct conn *c = a->conn_list; c; c = c->next)
        if (c != keep && c->evcon && (!old || c->since_ms < old->since_ms))
            old = c;
    return old;
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct mars_admin *a = c->a;
    void *cbarg = NULL;
    (void)fd;
    (void)what;

    bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
    event_free(c->probe);
    c->probe = NULL;
    bufferevent_decref(c->bev);
    c->bev = NULL;
    if (!cbarg) { /* evhttp already closed it */
        free_conn(c);
        return;
    }
    c->evcon = cbarg;
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    if (a->conns <= a->o.max_connections)
        return;
    struct conn *old = oldest_conn(a, c);
    if (!old)
        old = c; /* every other one is brand new: refuse this one */
    atomic_fetch_add_explicit(&a->evicted, 1, memory_order_relaxed);
    MARS_LOG_RL(MARS_LOG_WARN, a->name,
                "%u connections open, the limit: closing the one that waited longest "
                "without a request (%llu ms)",
                a->o.max_connections, (unsigned long long)(now_ms() - old->since_ms));
    evhttp_connection_free(old->evcon); /* on_conn_close frees old */
}

/* Closes connections past their deadline (see the top). */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mars_admin *a = arg;
    uint64_t now = now_ms();
    (void)fd;
    (void)what;

    for (struct conn *c = a->conn_list, *next; c; c = next) {
        next = c->next;
        uint64_t limit =
            c->served ? (uint64_t)a->o.idle_timeout_s * 1000u : a->o.request_timeout_ms;
        if (!c->evcon || now - c->since_ms <= limit)
            continue;
        atomic_fetch_add_explicit(&a->timed_out, 1, memory_order_relaxed);
        MARS_LOG_RL(MARS_LOG_WARN, a->name,
                    "closing a connection that sent no whole request in %llu ms",
                    (unsigned long long)limit);
        evhttp_connection_free(c->evcon);
    }
}

static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    struct mars_admin *a = arg;
    struct conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    static const struct timeval now = {0, 0};

    if (!c || !bev || !(c->probe = event_new(base, -1, 0, on_probe, c))) {
        free(c);
        return bev; /* uncounted; evhttp still serves it, under its idle timeout */
    }
    c->a = a;
    c->bev = bev;
    c->since_ms = now_ms();
    bufferevent_incref(bev);
    c->next = a->conn_list;
    if (a->conn_list)
        a->conn_list->prev = c;
    a->conn_list = c;
    a->conns++;
    event_add(c->probe, &now);
    return bev;
}

/* A whole request arrived on evcon: its deadline starts again. */
static void conn_served(struct mars_admin *a, struct evhttp_connection *evcon)
{
    for (struct conn *c = a->conn_list; c; c = c->next)
        if (c->evcon == evcon) {
            c->since_ms = now_ms();
            c->served = true;
            return;
        }
}

void mars_admin_stats(const struct mars_admin *a, struct mars_admin_stats *st)
{
    st->timed_out = atomic_load_explicit(&a->timed_out, memory_order_relaxed);
    st->evicted = atomic_load_explicit(&a->evicted, memory_order_relaxed);
}

/* ---- requests ---- */

static unsigned method_of(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET:
        return MARS_HTTP_GET;
    case EVHTTP_REQ_HEAD:
        return MARS_HTTP_HEAD;
    case EVHTTP_REQ_POST:
        return MARS_HTTP_POST;
    case EVHTTP_REQ_PUT:
        return MARS_HTTP_PUT;
    case EVHTTP_REQ_DELETE:
        return MARS_HTTP_DELETE;
    default:
        return MARS_HTTP_OTHER;
    }
}

static void allow_header(struct mars_admin_req *r, unsigned m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    char buf[64] = "";
    size_t n = 0;
    if (m & MARS_HTTP_GET)
        m |= MARS_HTTP_HEAD;
    for (int i = 0; i < 5; i++)
        if (m & (1u << i))
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "", names[i]);
    mars_admin_add_header(r, "Allow", buf);
}

static const struct route *match(const struct mars_admin *a, const char *path, bool prefix)
{
    for (size_t i = 0; i < a->nroutes; i++) {
        const struct route *rt = &a->routes[i];
        if (rt->prefix != prefix)
            continue;
        if (prefix ? strncmp(path, rt->path, rt->len) == 0 : strcmp(path, rt->path) == 0)
            return rt;
    }
    return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mars_admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    size_t dlen = 0;
    char *path = evhttp_uridecode(raw && *raw ? raw : "/", 0, &dlen);
    struct mars_admin_req r = {.req = req, .method = method_of(evhttp_request_get_command(req))};

    conn_served(a, evhttp_request_get_connection(req));

    if (!path || strlen(path) != dlen) { /* an encoded NUL */
        free(path);
        mars_admin_reply_json(&r, 400, "{\"error\":\"bad path\"}");
        return;
    }
    r.path = path;
    r.query = uri ? evhttp_uri_get_query(uri) : NULL;
    const struct route *rt = match(a, path, false);
    if (!rt)
        rt = match(a, path, true);
    unsigned allowed = rt ? rt->methods | ((rt->methods & MARS_HTTP_GET) ? MARS_HTTP_HEAD : 0) : 0;
    if (!rt) {
        mars_admin_reply_json(&r, 404, "{\"error\":\"not found\"}");
    } else if (!(allowed & r.method)) {
        allow_header(&r, rt->methods);
        mars_admin_reply_json(&r, 405, "{\"error\":\"method not allowed\"}");
    } else {
        rt->h(&r, rt->arg);
        if (!r.replied)
            mars_admin_reply_json(&r, 500, "{\"error\":\"no response\"}");
    }
    free(path);
}

const char *mars_admin_header(struct mars_admin_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

struct evbuffer *mars_admin_body(struct mars_admin_req *r)
{
    return evhttp_request_get_input_buffer(r->req);
}

void mars_admin_add_header(struct mars_admin_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

void mars_admin_reply(struct mars_admin_req *r, int status, const char *content_type,
                      struct evbuffer *body)
{
    static const struct {
        int code;
        const char *reason;
    } reasons[] = {{200, "OK"},
                   {400, "Bad Request"},
                   {401, "Unauthorized"},
                   {403, "Forbidden"},
                   {404, "Not Found"},
                   {405, "Method Not Allowed"},
                   {500, "Internal Server Error"},
                   {501, "Not Implemented"},
                   {503, "Service Unavailable"}};
    const char *reason = "Unknown";
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == status)
            reason = reasons[i].reason;
    if (r->replied)
        return;
    r->replied = true;
    if (content_type)
        mars_admin_add_header(r, "Content-Type", content_type);
    mars_admin_add_header(r, "Cache-Control", "no-store");
    evhttp_send_reply(r->req, status, reason, body);
}

void mars_admin_reply_json(struct mars_admin_req *r, int status, const char *fmt, ...)
{
    struct evbuffer *b = evbuffer_new();
    va_list ap;
    if (b) {
        va_start(ap, fmt);
        evbuffer_add_vprintf(b, fmt, ap);
        va_end(ap);
        evbuffer_add(b, "\n", 1);
    }
    mars_admin_reply(r, status, "application/json", b);
    if (b)
        evbuffer_free(b);
}

int mars_json_string_n(struct evbuffer *out, const char *s, size_t n)
{
    struct evbuffer_iovec v;
    size_t room = n * MARS_JSON_ESC_MAX + 2;

    if (evbuffer_reserve_space(out, (ev_ssize_t)room, &v, 1) != 1)
        return -ENOMEM;
    char *o = v.iov_base;
    o[0] = '"';
    struct mars_json_esc r = mars_json_escape(o + 1, room - 2, s, n, 0);
    o[r.out + 1] = '"';
    v.iov_len = r.out + 2;
    return evbuffer_commit_space(out, &v, 1) ? -ENOMEM : 0;
}

int mars_json_string(struct evbuffer *out, const char *s)
{
    return mars_json_string_n(out, s, strlen(s));
}

/* ---- life cycle ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct mars_admin *a = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* nothing to do: the loop stops either way */
    }
    event_base_loopbreak(a->base);
}

static int setup_http(struct mars_admin *a)
{
    a->base = event_base_new();
    a->http = a->base ? evhttp_new(a->base) : NULL;
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!a->http || a->stop_fd < 0)
        return -ENOMEM;
    a->stop_ev = event_new(a->base, a->stop_fd, EV_READ | EV_PERSIST, on_stop, a);
    if (!a->stop_ev || event_add(a->stop_ev, NULL))
        return -ENOMEM;
    /* deadlines are checked 4 times a second: closed within 250 ms of passing them */
    static const struct timeval sweep = {0, 250000};
    a->sweep_ev = event_new(a->base, -1, EV_PERSIST, on_sweep, a);
    if (!a->sweep_ev || event_add(a->sweep_ev, &sweep))
        return -ENOMEM;
    evhttp_set_max_headers_size(a->http, (ev_ssize_t)a->o.max_headers_size);
    evhttp_set_max_body_size(a->http, (ev_ssize_t)a->o.max_body_size);
    evhttp_set_timeout(a->http, a->o.idle_timeout_s);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, on_request, a);
    evhttp_set_bevcb(a->http, on_new_conn, a);
    if (!evhttp_accept_socket_with_handle(a->http, a->fd))
        return -EIO;
    a->fd = -1; /* the listener owns it now */
    return 0;
}

struct mars_admin *mars_admin_create(const struct mars_admin_opts *o)
{
    struct mars_admin *a = calloc(1, sizeof(*a));
    const char *addr = o->address ? o->address : "";
    int rc;
    if (!a)
        return NULL;
    a->o = *o;
    a->fd = a->stop_fd = -1;
    a->name = strdup(o->name ? o->name : "http");
    if (!a->o.max_connections)
        a->o.max_connections = 64;
    if (!a->o.max_headers_size)
        a->o.max_headers_size = 8192;
    if (!a->o.max_body_size)
        a->o.max_body_size = 65536;
    if (!a->o.idle_timeout_s)
        a->o.idle_timeout_s = 10;
    if (!a->o.request_timeout_ms)
        a->o.request_timeout_ms = 5000;
    if (!a->name) {
        free(a);
        return NULL;
    }
    if (strncmp(addr, "unix:", 5) == 0)
        a->fd = listen_unix(a, addr + 5);
    else if (addr[0] == '/')
        a->fd = listen_unix(a, addr);
    else
        a->fd = listen_tcp(a, addr);
    if (a->fd < 0) {
        rc = a->fd;
        a->fd = -1;
        if (rc != -EINVAL)
            mars_error(a->name, "cannot listen on %s: %s", addr, strerror(-rc));
        mars_admin_destroy(a);
        errno = -rc;
        return NULL;
    }
    if ((rc = setup_http(a)) != 0) {
        mars_error(a->name, "cannot set up the HTTP server on %s: %s", addr, strerror(-rc));
        mars_admin_destroy(a);
        errno = -rc;
        return NULL;
    }
    return a;
}

int mars_admin_route(struct mars_admin *a, const char *path, bool prefix, unsigned methods,
                     mars_admin_handler h, void *arg)
{
    if (mars_grow(&a->routes, &a->routes_cap, a->nroutes + 1, sizeof(*a->routes)))
        return -ENOMEM;
    struct route *r = &a->routes[a->nroutes];
    *r = (struct route){
        .path = strdup(path), .prefix = prefix, .methods = methods, .h = h, .arg = arg};
    if (!r->path)
        return -ENOMEM;
    r->len = strlen(path);
    a->nroutes++;
    return 0;
}

static void *server_main(void *arg)
{
    struct mars_admin *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

int mars_admin_start(struct mars_admin *a)
{
    /* evhttp writes with plain write(): a client that hung up must give EPIPE, not kill
     * mars (the binary ignores SIGPIPE already; embedders such as tests may not) */
    signal(SIGPIPE, SIG_IGN);
    int rc = pthread_create(&a->thread, NULL, server_main, a);
    if (rc) {
        mars_error(a->name, "cannot start the HTTP server thread: %s", strerror(rc));
        return -rc;
    }
    a->started = true;
    mars_info(a->name, "listening on %s", a->address);
    return 0;
}

const char *mars_admin_address(const struct mars_admin *a)
{
    return a->address;
}

void mars_admin_destroy(struct mars_admin *a)
{
    if (!a)
        return;
    if (a->started) {
        uint64_t one = 1;
        if (write(a->stop_fd, &one, sizeof(one)) < 0)
            mars_error(a->name, "cannot signal the HTTP server thread: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    if (a->http)
        evhttp_free(a->http); /* closes the listener and every connection */
    while (a->conn_list)      /* the ones evhttp_free did not close: their probe never ran */
        free_conn(a->conn_list);
    if (a->sweep_ev)
        event_free(a->sweep_ev);
    if (a->stop_ev)
        event_free(a->stop_ev);
    if (a->base)
        event_base_free(a->base);
    if (a->stop_fd >= 0)
        close(a->stop_fd);
    if (a->fd >= 0)
        close(a->fd);
    if (a->unix_path[0])
        unlink(a->unix_path);
    for (size_t i = 0; i < a->nroutes; i++)
        free(a->routes[i].path);
    free(a->routes);
    free(a->name);
    free(a);
}
