/*
 * top.c - `mars top`: a terminal live view of a running mars, like `top` for its pipeline.
 *
 * How it works: once a second it GETs /api/v1/components (counters per component, buffer
 * fill per sink) and /metrics (for mars_build_info's version and io backend, the worker
 * count and the uptime) from the admin API, over TCP or the API's unix socket, with a
 * blocking libcurl easy handle. Rates are the difference between two snapshots over the
 * monotonic time between them; a component that was not in the previous snapshot (a
 * reload) shows no rate yet. The screen is redrawn in place on the terminal's alternate
 * screen (ANSI escapes, no curses), and keys are read in non-canonical mode: s cycles the
 * sort column, r reverses it, q (or Ctrl-C) quits and restores the terminal.
 *
 * When stdout is not a terminal it prints one table (after two snapshots a second apart,
 * so rates are real) and exits: scripts and tests get the same numbers without escapes.
 * An unreachable API is shown in the view and retried (a reload moves it briefly).
 *
 * Thread: the CLI's; nothing else runs in this process.
 */
#include "control/top.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/curl_api.h"
#include "engine/instance.h"
#include "model/json.h"

#define TOP_DEFAULT_ADDRESS "127.0.0.1:8686"
#define TOP_MAX_BODY        (16u << 20)
#define TOP_INTERVAL_MS     1000

struct top_row {
    char id[64], type[32], kind[12];
    uint64_t in_events, out_events, out_bytes, errors;
    double fill; /* 0..1; < 0 for components without a buffer */
    double in_rate, out_rate, bytes_rate, err_rate;
    bool has_rate;
    size_t order; /* position in the API's answer: the config's order */
};

struct top_snap {
    struct top_row *rows;
    size_t n;
    char version[32], backend[32];
    double workers, uptime;
    int64_t at_ns;
};

enum top_sort {
    SORT_CONFIG,
    SORT_ID,
    SORT_IN,
    SORT_OUT,
    SORT_BYTES,
    SORT_ERRORS,
    SORT_FILL,
    SORT__N
};
static const char *const sort_names[SORT__N] = {"config",  "id",     "in/s",  "out/s",
                                                "bytes/s", "errors", "buffer"};

struct top {
    CURL *curl;
    char base[300], socket_path[256], error[640];
    char *body;
    size_t len;
    struct top_snap cur, prev;
    enum top_sort sort;
    bool reverse, tty;
};

static volatile sig_atomic_t top_quit, top_resized;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        top_resized = 1;
    else
        top_quit = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- fetching ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct top *t = arg;
    size_t add = size * n;
    if (t->len + add + 1 > TOP_MAX_BODY)
        return 0; /* curl reports a write error */
    char *b = realloc(t->body, t->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + t->len, p, add);
    t->body = b;
    t->len += add;
    t->body[t->len] = '\0';
    return add;
}

/* GETs path into t->body. Returns 0, or -EIO with t->error set. */
static int fetch(struct top *t, const char *path)
{
    char url[400];
    long status = 0;
    t->len = 0;
    snprintf(url, sizeof(url), "%s%s", t->base, path);
    curl_easy_setopt(t->curl, CURLOPT_URL, url);
    CURLcode rc = curl_easy_perform(t->curl);
    if (rc != CURLE_OK) {
        snprintf(t->error, sizeof(t->error), "cannot reach %s: %s",
                 t->socket_path[0] ? t->socket_path : t->base, curl_easy_strerror(rc));
        return -EIO;
    }
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !t->body) {
        snprintf(t->error, sizeof(t->error), "GET %s answered %ld", path, status);
        return -EIO;
    }
    return 0;
}

static double num_of(const char *raw, size_t n, const char *key)
{
    struct mars_value v;
    double d = 0;
    if (mars_json_object_get(raw, n, key, (uint32_t)strlen(key), &v))
        mars_value_number(&v, &d);
    return d;
}

static void str_of(const char *raw, size_t n, const char *key, char *out, size_t cap)
{
    struct mars_value v;
    out[0] = '\0';
    if (!mars_json_object_get(raw, n, key, (uint32_t)strlen(key), &v) ||
        v.kind != MARS_FIELD_STRING || v.len + 1 > cap)
        return;
    if (v.flags & MARS_FF_ESCAPED)
        out[mars_json_unescape(v.ptr, v.len, out)] = '\0';
    else
        snprintf(out, cap, "%.*s", (int)v.len, v.ptr);
}

static void parse_row(const char *raw, size_t n, struct top_row *r)
{
    struct mars_value v;
    memset(r, 0, sizeof(*r));
    str_of(raw, n, "id", r->id, sizeof(r->id));
    str_of(raw, n, "type", r->type, sizeof(r->type));
    str_of(raw, n, "kind", r->kind, sizeof(r->kind));
    r->in_events = (uint64_t)num_of(raw, n, "received_events");
    r->out_events = (uint64_t)num_of(raw, n, "sent_events");
    r->out_bytes = (uint64_t)num_of(raw, n, "sent_bytes");
    if (mars_json_object_get(raw, n, "errors", 6, &v))
        for (int k = 0; k < MARS_ERR__COUNT; k++)
            r->errors += (uint64_t)num_of(v.ptr, v.len, mars_error_type_name(k));
    r->fill = -1;
    if (mars_json_object_get(raw, n, "buffer", 6, &v))
        r->fill = num_of(v.ptr, v.len, "fill");
}

/* /api/v1/components into s->rows. */
static int parse_components(struct top *t, struct top_snap *s)
{
    struct mars_value arr, el;
    size_t pos = 0;
    if (mars_json_validate(t->body, t->len, 16, NULL) != MARS_JSON_OK ||
        !mars_json_object_get(t->body, t->len, "components", 10, &arr)) {
        snprintf(t->error, sizeof(t->error), "/api/v1/components is not the expected JSON");
        return -EBADMSG;
    }
    while (mars_json_array_next(arr.ptr, arr.len, &pos, &el)) {
        struct top_row *rows = realloc(s->rows, (s->n + 1) * sizeof(*rows));
        if (!rows)
            return -ENOMEM;
        s->rows = rows;
        parse_row(el.ptr, el.len, &s->rows[s->n]);
        s->rows[s->n].order = s->n;
        s->n++;
    }
    return 0;
}

/* The value of the first sample of `name` in Prometheus text, and optionally one label. */
static bool metric_line(const char *text, const char *name, const char *label, char *lv,
                        size_t lcap, double *value)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || (p[nl] != ' ' && p[nl] != '{'))
            continue;
        const char *end = strchr(p, '\n');
        const char *sp = p[nl] == '{' ? strchr(p, '}') : p + nl;
        if (!sp || (end && sp > end))
            return false;
        if (value)
            *value = strtod(sp + 1, NULL);
        if (label) {
            char key[64];
            snprintf(key, sizeof(key), "%s=\"", label);
            const char *l = strstr(p, key);
            if (l && l < sp) {
                l += strlen(key);
                const char *q = strchr(l, '"');
                snprintf(lv, lcap, "%.*s", q ? (int)(q - l) : 0, l);
            }
        }
        return true;
    }
    return false;
}

static int snapshot(struct top *t, struct top_snap *s)
{
    memset(s, 0, sizeof(*s));
    s->at_ns = now_ns();
    int rc = fetch(t, "/api/v1/components");
    if (rc == 0)
        rc = parse_components(t, s);
    if (rc == 0 && fetch(t, "/metrics") == 0) {
        metric_line(t->body, "mars_build_info", "version", s->version, sizeof(s->version), NULL);
        metric_line(t->body, "mars_build_info", "io_backend", s->backend, sizeof(s->backend), NULL);
        metric_line(t->body, "mars_workers", NULL, NULL, 0, &s->workers);
        metric_line(t->body, "mars_uptime_seconds", NULL, NULL, 0, &s->uptime);
    }
    return rc;
}

static const struct top_row *find_row(const struct top_snap *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->rows[i].id, id) == 0)
            return &s->rows[i];
    return NULL;
}

static double per_s(uint64_t now, uint64_t before, double secs)
{
    return now >= before ? (double)(now - before) / secs : 0; /* a reload resets counters */
}

static void compute_rates(struct top *t)
{
    double secs = (double)(t->cur.at_ns - t->prev.at_ns) / 1e9;
    for (size_t i = 0; i < t->cur.n && secs > 0; i++) {
        struct top_row *r = &t->cur.rows[i];
        const struct top_row *p = find_row(&t->prev, r->id);
        if (!p)
            continue;
        r->in_rate = per_s(r->in_events, p->in_events, secs);
        r->out_rate = per_s(r->out_events, p->out_events, secs);
        r->bytes_rate = per_s(r->out_bytes, p->out_bytes, secs);
        r->err_rate = per_s(r->errors, p->errors, secs);
        r->has_rate = true;
    }
}

/* Takes a new snapshot; the old one becomes `prev`. */
static int refresh(struct top *t)
{
    struct top_snap s;
    int rc = snapshot(t, &s);
    if (rc) {
        free(s.rows);
        return rc;
    }
    free(t->prev.rows);
    t->prev = t->cur;
    t->cur = s;
    t->error[0] = '\0';
    compute_rates(t);
    return 0;
}

/* ---- drawing ---- */

static double sort_value(const struct top_row *r, enum top_sort k)
{
    switch (k) {
    case SORT_IN:
        return r->in_rate;
    case SORT_OUT:
        return r->out_rate;
    case SORT_BYTES:
        return r->bytes_rate;
    case SORT_ERRORS:
        return (double)r->errors;
    case SORT_FILL:
        return r->fill;
    default:
        return 0;
    }
}

struct sort_by {
    enum top_sort key;
    bool reverse;
};

static int cmp_rows(const void *a, const void *b, void *arg)
{
    const struct top_row *x = a, *y = b;
    const struct sort_by *by = arg;
    int c;
    if (by->key == SORT_CONFIG) {
        c = x->order < y->order ? -1 : x->order > y->order;
    } else if (by->key == SORT_ID) {
        c = strcmp(x->id, y->id);
    } else {
        double dx = sort_value(x, by->key), dy = sort_value(y, by->key);
        c = dx < dy ? 1 : dx > dy ? -1 : strcmp(x->id, y->id); /* biggest first */
    }
    return by->reverse ? -c : c;
}

static void human(char *out, size_t cap, double v, const char *unit)
{
    static const char *const pre[] = {"", "K", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        i++;
    }
    snprintf(out, cap, i ? "%.1f%s%s" : "%.0f%s%s", v, pre[i], unit);
}

static void draw_row(FILE *f, const struct top_row *r, int width)
{
    char in[16] = "-", out[16] = "-", bytes[16] = "-", err_rate[16] = "-", total[24], fill[16];
    if (r->has_rate) {
        human(in, sizeof(in), r->in_rate, "");
        human(out, sizeof(out), r->out_rate, "");
        human(bytes, sizeof(bytes), r->bytes_rate, "B");
        human(err_rate, sizeof(err_rate), r->err_rate, "");
    }
    snprintf(total, sizeof(total), "%llu", (unsigned long long)r->out_events);
    if (r->fill >= 0)
        snprintf(fill, sizeof(fill), "%.1f%%", r->fill * 100);
    else
        snprintf(fill, sizeof(fill), "-");
    fprintf(f, "%-*.*s %-9s %-19.19s %9s %9s %12s %10s %8llu %7s %7s", width < 100 ? 16 : 24,
            width < 100 ? 16 : 24, r->id, r->kind, r->type, in, out, total, bytes,
            (unsigned long long)r->errors, err_rate, fill);
}

static void draw(struct top *t, FILE *f, int height, int width)
{
    const char *eol = t->tty ? "\033[K\n" : "\n";
    char up[32];
    unsigned long s = (unsigned long)t->cur.uptime;
    snprintf(up, sizeof(up), "%luh%02lum%02lus", s / 3600, s / 60 % 60, s % 60);
    if (t->tty)
        fputs("\033[H", f);
    fprintf(f, "mars %s  io backend: %s  workers: %.0f  up %s  %s%s",
            t->cur.version[0] ? t->cur.version : "?", t->cur.backend[0] ? t->cur.backend : "?",
            t->cur.workers, up, t->socket_path[0] ? t->socket_path : t->base + 7, eol);
    fprintf(f, "sort: %s%s%s%s", sort_names[t->sort], t->reverse ? " (reversed)" : "",
            t->tty ? "   keys: s sort  r reverse  q quit" : "", eol);
    fprintf(f, "%s%s", t->error[0] ? t->error : "", eol);
    fprintf(f, "%-*s %-9s %-19s %9s %9s %12s %10s %8s %7s %7s%s", width < 100 ? 16 : 24, "ID",
            "KIND", "TYPE", "IN/S", "OUT/S", "EVENTS OUT", "BYTES/S", "ERRORS", "ERR/S", "BUFFER",
            eol);
    struct sort_by by = {t->sort, t->reverse};
    qsort_r(t->cur.rows, t->cur.n, sizeof(*t->cur.rows), cmp_rows, &by);
    for (size_t i = 0; i < t->cur.n && (!t->tty || (int)i < height - 5); i++) {
        draw_row(f, &t->cur.rows[i], width);
        fputs(eol, f);
    }
    if (t->tty)
        fputs("\033[J", f);
    fflush(f);
}

/* ---- the terminal ---- */

static void term_size(int *h, int *w)
{
    struct winsize ws;
    *h = 24;
    *w = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *h = ws.ws_row;
        *w = ws.ws_col;
    }
}

static void on_key(struct top *t, char c)
{
    if (c == 'q' || c == 'Q')
        top_quit = 1;
    else if (c == 's')
        t->sort = (t->sort + 1) % SORT__N;
    else if (c == 'S')
        t->sort = (t->sort + SORT__N - 1) % SORT__N;
    else if (c == 'r')
        t->reverse = !t->reverse;
}

static void run_tty(struct top *t)
{
    struct termios saved, raw;
    bool have_term = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (have_term) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    fputs("\033[?1049h\033[?25l\033[2J", stdout);
    int64_t next = 0;
    while (!top_quit) {
        int h, w;
        if (now_ns() >= next) {
            refresh(t);
            next = now_ns() + (int64_t)TOP_INTERVAL_MS * 1000000;
        }
        term_size(&h, &w);
        draw(t, stdout, h, w);
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int wait_ms = (int)((next - now_ns()) / 1000000);
        if (poll(&p, have_term ? 1 : 0, wait_ms > 0 ? wait_ms : 0) > 0) {
            char c;
            if (read(STDIN_FILENO, &c, 1) == 1)
                on_key(t, c);
            else
                top_quit = 1; /* the terminal went away */
        }
    }
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    if (have_term)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

static int set_address(struct top *t, const char *address)
{
    if (!address || !*address)
        address = getenv("MARS_API_ADDRESS");
    if (!address || !*address)
        address = TOP_DEFAULT_ADDRESS;
    if (strncmp(address, "http://", 7) == 0) {
        snprintf(t->base, sizeof(t->base), "%s", address);
    } else if (strchr(address, '/')) { /* the API's unix socket */
        if (strlen(address) >= sizeof(t->socket_path))
            return -ENAMETOOLONG;
        snprintf(t->socket_path, sizeof(t->socket_path), "%s", address);
        snprintf(t->base, sizeof(t->base), "http://localhost");
        curl_easy_setopt(t->curl, CURLOPT_UNIX_SOCKET_PATH, t->socket_path);
    } else {
        snprintf(t->base, sizeof(t->base), "http://%s", address);
    }
    size_t n = strlen(t->base);
    if (n && t->base[n - 1] == '/')
        t->base[n - 1] = '\0';
    return 0;
}

int mars_top_run(const char *address)
{
    struct top t = {.tty = isatty(STDOUT_FILENO)};
    int rc = 0;
    char err[320];
    if (mars_curl_load(err, sizeof(err))) {
        fprintf(stderr, "mars top: %s\n", err);
        return -ENOENT;
    }
    if (!(t.curl = curl_easy_init())) {
        fprintf(stderr, "mars top: cannot initialise libcurl\n");
        return -ENOMEM;
    }
    curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
    if (set_address(&t, address)) {
        fprintf(stderr, "mars top: address too long: %s\n", address);
        rc = -ENAMETOOLONG;
    } else if (!t.tty) {
        /* one table with real rates: two snapshots a second apart */
        if ((rc = refresh(&t)) == 0) {
            usleep(TOP_INTERVAL_MS * 1000);
            rc = refresh(&t);
        }
        if (rc)
            fprintf(stderr, "mars top: %s\n", t.error);
        else
            draw(&t, stdout, 0, 120);
    } else {
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGWINCH, &sa, NULL);
        run_tty(&t);
    }
    free(t.cur.rows);
    free(t.prev.rows);
    free(t.body);
    curl_easy_cleanup(t.curl);
    return rc;
}
