/*
 * log.c - mars's internal log: one line per message, text or JSON, rate-limited on demand.
 *
 * How it works: a message is formatted with vsnprintf into a stack buffer, then copied into
 * a second stack buffer (the line) behind the timestamp, level and component, escaping as it
 * goes: in text, control characters and invalid UTF-8 become \n, \xNN...; in JSON, the usual
 * string escapes (core/json_escape.h, DEL escaped too) and U+FFFD for invalid UTF-8, so
 * every line is valid JSON. The finished
 * line goes out with one write(2). Lines are at most LOG_LINE_MAX bytes (= PIPE_BUF, so a
 * line written to a pipe is never interleaved with another thread's); a longer message is cut
 * at a character boundary and ends with "...". Room for the cut marker, the suppression
 * note and the JSON closing is reserved up front, so they always fit.
 *
 * Rate limiting (mars_log_rl): each call site owns a struct mars_log_rl. The first caller
 * after a window of MARS_LOG_RL_WINDOW_NS wins a compare-and-swap on window_start_ns,
 * resets the window's count and takes the number of lines suppressed in the old window,
 * which it appends as " (N similar messages suppressed)". Relaxed atomics suffice: the
 * counters only need to be exact in total, not ordered with respect to anything else.
 * The window uses CLOCK_MONOTONIC so wall-clock steps cannot open or close it; timestamps
 * use CLOCK_REALTIME in UTC with milliseconds.
 *
 * Thread: any. The settings are atomics; everything else is on the caller's stack.
 */
#include "core/log.h"

#include "core/json_escape.h"
#include "core/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX     4096 /* bytes per line, newline included */
#define LOG_TAIL_RESERVE 96   /* "...", " (N similar messages suppressed)", "\"}", "\n" */

static atomic_int log_level = MARS_LOG_INFO;
static atomic_int log_format = MARS_LOG_TEXT;
static atomic_int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const level_labels[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void mars_log_setup(enum mars_log_level level, enum mars_log_format fmt)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_format, (int)fmt, memory_order_relaxed);
}

void mars_log_set_fd(int fd)
{
    atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

enum mars_log_level mars_log_get_level(void)
{
    return (enum mars_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int mars_log_level_parse(const char *s, enum mars_log_level *out)
{
    for (int i = MARS_LOG_ERROR; s && i <= MARS_LOG_TRACE; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum mars_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- line assembly -------------------------------------------------------------------- */

struct log_line {
    char buf[LOG_LINE_MAX];
    size_t len;
    size_t limit; /* bytes the header and message may use; the tail has the rest */
    bool cut;     /* something did not fit */
};

/* Appends n bytes as a unit, or nothing (and marks the line cut) when they do not fit. */
static bool put(struct log_line *l, const char *s, size_t n)
{
    if (l->cut || l->len + n > l->limit) {
        l->cut = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool put_str(struct log_line *l, const char *s)
{
    return put(l, s, strlen(s));
}

/* The text format's escape for the byte c (len: its UTF-8 sequence length, 0 if invalid),
 * or NULL when the bytes go out as they are. esc is scratch space for \xNN. */
static const char *text_escape(unsigned char c, size_t len, char esc[8])
{
    if (len != 0 && c == '\n')
        return "\\n";
    if (len != 0 && c == '\r')
        return "\\r";
    if (len == 0 || (c < 0x20 && c != '\t') || c == 0x7f) {
        snprintf(esc, 8, "\\x%02x", c);
        return esc;
    }
    return NULL;
}

/* Appends s escaped for the format; stops at the first unit that does not fit, so a cut
 * never splits a character or an escape. */
static void put_escaped(struct log_line *l, const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    char esc[8];

    if (l->cut)
        return;
    if (json) {
        struct mars_json_esc r =
            mars_json_escape(l->buf + l->len, l->limit - l->len, s, n,
                             MARS_JSON_ESC_SHORT | MARS_JSON_ESC_DEL | MARS_JSON_ESC_UTF8);
        l->len += r.out;
        l->cut = r.in < n;
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t len = mars_utf8_seq(p + i, n - i);
        const char *rep = text_escape(p[i], len, esc);
        if (!(rep ? put_str(l, rep) : put(l, s + i, len)))
            return;
        i += rep ? 1 : len;
    }
}

static void put_timestamp(struct log_line *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[64];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
    put_str(l, buf);
}

static void write_line(const char *buf, size_t len)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);

    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a failing log */
        buf += w;
        len -= (size_t)w;
    }
}

/* Formats and writes one line; `suppressed` > 0 adds the rate limiter's note. */
static void emit(enum mars_log_level level, const char *component, unsigned suppressed,
                 const char *fmt, va_list ap)
{
    struct log_line l = {.limit = LOG_LINE_MAX - LOG_TAIL_RESERVE};
    bool json = atomic_load_explicit(&log_format, memory_order_relaxed) == MARS_LOG_JSON;
    char msg[LOG_LINE_MAX], note[64];
    int lvl = level <= MARS_LOG_TRACE ? (int)level : MARS_LOG_TRACE;

    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        n = 0;
        msg[0] = '\0';
    }
    if (!component || !*component)
        component = "-";
    if (json) {
        put_str(&l, "{\"ts\":\"");
        put_timestamp(&l);
        put_str(&l, "\",\"level\":\"");
        put_str(&l, level_names[lvl]);
        put_str(&l, "\",\"component\":\"");
        put_escaped(&l, component, true);
        put_str(&l, "\",\"msg\":\"");
    } else {
        put_timestamp(&l);
        put_str(&l, " ");
        put_str(&l, level_labels[lvl]);
        put_str(&l, lvl == MARS_LOG_INFO || lvl == MARS_LOG_WARN ? "  [" : " [");
        put_escaped(&l, component, false);
        put_str(&l, "] ");
    }
    put_escaped(&l, msg, json);
    bool cut = l.cut || (size_t)n >= sizeof(msg);
    l.limit = sizeof(l.buf);
    l.cut = false;
    if (cut)
        put_str(&l, "...");
    if (suppressed > 0) {
        snprintf(note, sizeof(note), " (%u similar messages suppressed)", suppressed);
        put_str(&l, note);
    }
    if (json)
        put_str(&l, "\"}");
    put_str(&l, "\n");
    write_line(l.buf, l.len);
}

void mars_log(enum mars_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;

    if (level > mars_log_get_level())
        return;
    va_start(ap, fmt);
    emit(level, component, 0, fmt, ap);
    va_end(ap);
}

/* ---- rate limiting -------------------------------------------------------------------- */

static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mars_log_rl(struct mars_log_rl *rl, enum mars_log_level level, const char *component,
                 const char *fmt, ...)
{
    const memory_order rlx = memory_order_relaxed;
    unsigned carried = 0;
    va_list ap;

    if (level > mars_log_get_level())
        return; /* filtered lines use no budget */
    int64_t now = monotonic_ns();
    int64_t start = atomic_load_explicit(&rl->window_start_ns, rlx);
    if (start == 0 || now - start >= MARS_LOG_RL_WINDOW_NS) {
        /* One thread opens the new window and reports the old window's suppressions. */
        if (atomic_compare_exchange_strong_explicit(&rl->window_start_ns, &start, now, rlx, rlx)) {
            atomic_store_explicit(&rl->in_window, 0, rlx);
            carried = atomic_exchange_explicit(&rl->suppressed, 0, rlx);
        }
    }
    if (atomic_fetch_add_explicit(&rl->in_window, 1, rlx) >= MARS_LOG_RL_BURST) {
        /* Over the burst (possible for the window opener only in a race): count, and keep
         * any carried count for the next line that gets through. */
        atomic_fetch_add_explicit(&rl->suppressed, 1 + carried, rlx);
        return;
    }
    va_start(ap, fmt);
    emit(level, component, carried, fmt, ap);
    va_end(ap);
}
