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
 * Connection cap: evhttp 2.1 has no limit of its own, so the server creates each incoming
 * connection's bufferevent itself (evhttp_set_bevcb), counts it, and holds one reference
 * on it until a zero-delay probe event has run. The probe finds the evhttp connection
 * through the bufferevent's callback argument (NULL once evhttp has freed it), then either
 * registers a close callback that uncounts it, or, over the cap, frees it at once. The
 * reference keeps the bufferevent's memory valid for the probe whatever happened first.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

/* A connection accepted but not yet seen by its probe (see the top). */
struct probe {
    struct mars_admin *a;
    struct bufferevent *bev;
    struct event *ev;
    struct probe *prev, *next;
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
    struct probe *probes;
    unsigned conns;
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

static void unlink_probe(struct probe *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->a->probes = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void free_probe(struct probe *p)
{
    unlink_probe(p);
    event_free(p->ev);
    bufferevent_decref(p->bev);
    free(p);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct mars_admin *a = arg;
    (void)evcon;
    if (a->conns > 0)
        a->conns--;
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    struct mars_admin *a = p->a;
    void *cbarg = NULL;
    (void)fd;
    (void)what;

    bufferevent_getcb(p->bev, NULL, NULL, NULL, &cbarg);
    if (!cbarg) {
        a->conns--; /* evhttp already closed it */
    } else if (a->conns > a->o.max_connections) {
        MARS_LOG_RL(MARS_LOG_WARN, a->name, "%u connections open, the limit: closing a new one",
                    a->o.max_connections);
        a->conns--;
        evhttp_connection_free(cbarg);
    } else {
        evhttp_connection_set_closecb(cbarg, on_conn_close, a);
    }
    free_probe(p);
}

static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    struct mars_admin *a = arg;
    struct probe *p = calloc(1, sizeof(*p));
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    static const struct timeval now = {0, 0};

    if (!p || !bev || !(p->ev = event_new(base, -1, 0, on_probe, p))) {
        free(p);
        return bev; /* uncounted; evhttp still serves it */
    }
    p->a = a;
    p->bev = bev;
    bufferevent_incref(bev);
    p->next = a->probes;
    if (a->probes)
        a->probes->prev = p;
    a->probes = p;
    a->conns++;
    event_add(p->ev, &now);
    return bev;
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
    while (a->probes)
        free_probe(a->probes);
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
