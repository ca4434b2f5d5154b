/*
 * log.h - mars's internal log: leveled, one line per message, on stderr, as text or JSON.
 * Every line names the component it is about ("-" for the process itself).
 *
 * Hot paths use MARS_LOG_RL(): a per-call-site limiter lets through at most a burst of
 * lines per interval and reports how many it suppressed in the next line it lets through.
 * Thread-safe: a line is formatted into a stack buffer and written with one write(2).
 */
#ifndef MARS_LOG_H
#define MARS_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum mars_log_level {
    MARS_LOG_ERROR,
    MARS_LOG_WARN,
    MARS_LOG_INFO,
    MARS_LOG_DEBUG,
    MARS_LOG_TRACE,
};

enum mars_log_format { MARS_LOG_TEXT, MARS_LOG_JSON };

void mars_log_setup(enum mars_log_level level, enum mars_log_format fmt);
/* Writes log lines to fd instead of stderr (tests). */
void mars_log_set_fd(int fd);
enum mars_log_level mars_log_get_level(void);
/* Parses "error|warn|info|debug|trace"; returns 0 or -EINVAL. */
int mars_log_level_parse(const char *s, enum mars_log_level *out);

void mars_log(enum mars_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Per-call-site rate limiter state; zero-initialised static storage is ready to use. */
struct mars_log_rl {
    _Atomic int64_t window_start_ns;
    atomic_uint in_window;
    atomic_uint suppressed;
};
#define MARS_LOG_RL_BURST     10           /* lines per window per call site */
#define MARS_LOG_RL_WINDOW_NS 5000000000LL /* 5 s */

void mars_log_rl(struct mars_log_rl *rl, enum mars_log_level level, const char *component,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Rate-limited log from a hot path: each call site has its own limiter. */
#define MARS_LOG_RL(level, component, ...)                                                         \
    do {                                                                                           \
        static struct mars_log_rl mars_rl_;                                                        \
        if ((level) <= mars_log_get_level())                                                       \
            mars_log_rl(&mars_rl_, (level), (component), __VA_ARGS__);                             \
    } while (0)

#define mars_error(comp, ...) mars_log(MARS_LOG_ERROR, (comp), __VA_ARGS__)
#define mars_warn(comp, ...)  mars_log(MARS_LOG_WARN, (comp), __VA_ARGS__)
#define mars_info(comp, ...)  mars_log(MARS_LOG_INFO, (comp), __VA_ARGS__)
#define mars_debug(comp, ...)                                                                      \
    do {                                                                                           \
        if (mars_log_get_level() >= MARS_LOG_DEBUG)                                                \
            mars_log(MARS_LOG_DEBUG, (comp), __VA_ARGS__);                                         \
    } while (0)

#endif
