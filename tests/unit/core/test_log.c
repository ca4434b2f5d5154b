/*
 * test_log.c - the internal log (src/core/log.c): text and JSON line formats, levels,
 * escaping, truncation, the per-call-site rate limiter and its suppression note, and whole
 * lines under concurrent writers. Lines are read back through a pipe or a temp file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    mars_log_set_fd(pipe_fds[1]);
    mars_log_setup(MARS_LOG_INFO, MARS_LOG_TEXT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mars_log_set_fd(2);
    mars_log_setup(MARS_LOG_INFO, MARS_LOG_TEXT);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Everything written to the pipe so far; owned by the caller. */
static char *drain(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t r = read(pipe_fds[0], buf + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The part of a text line after "TIMESTAMP ". */
static const char *after_ts(const char *line)
{
    assert_true(strlen(line) > 25);
    assert_int_equal(line[24], ' ');
    return line + 25;
}

static void test_text_format(void **state)
{
    (void)state;
    mars_info("file", "opened %s at offset %d", "/var/log/a.log", 42);
    char *out = drain();
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "INFO  \\[file\\] opened /var/log/a.log at offset 42\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("unexpected line: %s", out);
    regfree(&re);

    /* The timestamp is now, in UTC. */
    struct tm tm = {0};
    assert_non_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t logged = timegm(&tm), now = time(NULL);
    assert_true(logged <= now && now - logged < 5);
    free(out);
}

static void test_levels(void **state)
{
    (void)state;
    mars_error("a", "e");
    mars_warn("a", "w");
    mars_info("a", "i");
    mars_debug("a", "d");
    mars_log(MARS_LOG_TRACE, "a", "t");
    char *out = drain();
    assert_int_equal(count_lines(out), 3);
    char *l2 = strchr(out, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_true(strncmp(after_ts(out), "ERROR [a] e\n", 12) == 0);
    assert_true(strncmp(after_ts(l2), "WARN  [a] w\n", 12) == 0);
    assert_true(strncmp(after_ts(l3), "INFO  [a] i\n", 12) == 0);
    free(out);

    mars_log_setup(MARS_LOG_TRACE, MARS_LOG_TEXT);
    assert_int_equal(mars_log_get_level(), MARS_LOG_TRACE);
    mars_debug("a", "d");
    mars_log(MARS_LOG_TRACE, "a", "t");
    out = drain();
    assert_int_equal(count_lines(out), 2);
    l2 = strchr(out, '\n') + 1;
    assert_true(strncmp(after_ts(out), "DEBUG [a] d\n", 12) == 0);
    assert_string_equal(after_ts(l2), "TRACE [a] t\n");
    free(out);

    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_warn("a", "hidden");
    mars_error("a", "shown");
    out = drain();
    assert_int_equal(count_lines(out), 1);
    assert_string_equal(after_ts(out), "ERROR [a] shown\n");
    free(out);
}

static void test_level_parse(void **state)
{
    (void)state;
    const char *names[] = {"error", "warn", "info", "debug", "trace"};
    enum mars_log_level lvl;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mars_log_level_parse(names[i], &lvl), 0);
        assert_int_equal(lvl, i);
    }
    assert_int_equal(mars_log_level_parse("INFO", &lvl), 0);
    assert_int_equal(lvl, MARS_LOG_INFO);
    assert_int_equal(mars_log_level_parse("warning", &lvl), -EINVAL);
    assert_int_equal(mars_log_level_parse("", &lvl), -EINVAL);
    assert_int_equal(mars_log_level_parse(NULL, &lvl), -EINVAL);
}

static void test_text_escaping(void **state)
{
    (void)state;
    mars_info(NULL, "line1\nline2\r\ttab \x01 caf\xc3\xa9 bad\xff \"q\" \\");
    mars_info("", "empty component");
    char *out = drain();
    char *l2 = strchr(out, '\n') + 1;
    *strchr(out, '\n') = '\0';
    assert_string_equal(after_ts(out),
                        "INFO  [-] line1\\nline2\\r\ttab \\x01 caf\xc3\xa9 bad\\xff \"q\" \\");
    assert_string_equal(after_ts(l2), "INFO  [-] empty component\n");
    free(out);
}

/* The JSON line without its timestamp value, which changes. */
static char *json_without_ts(char *line)
{
    const char *prefix = "{\"ts\":\"";
    assert_true(strncmp(line, prefix, strlen(prefix)) == 0);
    char *end = strchr(line + strlen(prefix), '"');
    assert_non_null(end);
    assert_int_equal(end - line - (ptrdiff_t)strlen(prefix), 24);
    return end + 1;
}

static void test_json_format(void **state)
{
    (void)state;
    mars_log_setup(MARS_LOG_INFO, MARS_LOG_JSON);
    mars_warn("sink \"es\"", "said: \"no\"\n\tpath C:\\x \x01\x1f caf\xc3\xa9 \xff\xfe end");
    mars_info(NULL, "plain");
    char *out = drain();
    char *l2 = strchr(out, '\n') + 1;
    l2[-1] = '\0';
    assert_string_equal(json_without_ts(out),
                        ",\"level\":\"warn\",\"component\":\"sink \\\"es\\\"\",\"msg\":\"said: "
                        "\\\"no\\\"\\n\\tpath C:\\\\x \\u0001\\u001f caf\xc3\xa9 "
                        "\\ufffd\\ufffd end\"}");
    assert_string_equal(json_without_ts(l2),
                        ",\"level\":\"info\",\"component\":\"-\",\"msg\":\"plain\"}\n");
    /* The timestamp has the text format's shape. */
    regex_t re;
    assert_int_equal(regcomp(&re, "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z\"",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    free(out);
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80 ? 1 : s[i] >> 5 == 6 ? 2 : s[i] >> 4 == 14 ? 3 : 4;
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += len;
    }
    return true;
}

static void test_truncation(void **state)
{
    (void)state;
    char *big = malloc(10001);
    memset(big, 'x', 10000);
    big[10000] = '\0';

    mars_info("c", "%s", big);
    char *out = drain();
    size_t len = strlen(out);
    assert_true(len <= 4096);
    assert_true(len > 3900);
    assert_int_equal(count_lines(out), 1);
    assert_string_equal(out + len - 4, "...\n");
    free(out);

    mars_log_setup(MARS_LOG_INFO, MARS_LOG_JSON);
    mars_info("c", "%s", big);
    out = drain();
    len = strlen(out);
    assert_true(len <= 4096);
    assert_string_equal(out + len - 6, "...\"}\n");
    free(out);

    /* Escapes and multi-byte characters are never split. */
    for (size_t i = 0; i + 2 <= 10000; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    mars_info("c", "%s", big);
    out = drain();
    len = strlen(out);
    assert_true(len <= 4096);
    assert_true(valid_utf8((const unsigned char *)out, len));
    free(out);
    memset(big, '"', 10000);
    mars_info("c", "%s", big);
    out = drain();
    len = strlen(out);
    assert_string_equal(out + len - 8, "\\\"...\"}\n");
    free(out);
    free(big);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Makes the limiter's window look expired. */
static void expire_window(struct mars_log_rl *rl)
{
    atomic_store(&rl->window_start_ns, monotonic_ns() - MARS_LOG_RL_WINDOW_NS - 1);
}

static void test_rate_limit(void **state)
{
    (void)state;
    struct mars_log_rl rl = {0};

    for (int i = 0; i < 25; i++)
        mars_log_rl(&rl, MARS_LOG_WARN, "tail", "line %d", i);
    char *out = drain();
    assert_int_equal(count_lines(out), MARS_LOG_RL_BURST);
    assert_null(strstr(out, "suppressed"));
    free(out);

    expire_window(&rl);
    mars_log_rl(&rl, MARS_LOG_WARN, "tail", "again");
    mars_log_rl(&rl, MARS_LOG_WARN, "tail", "and again");
    out = drain();
    char *l2 = strchr(out, '\n') + 1;
    l2[-1] = '\0';
    assert_string_equal(after_ts(out), "WARN  [tail] again (15 similar messages suppressed)");
    assert_string_equal(after_ts(l2), "WARN  [tail] and again\n");
    free(out);

    /* Nothing suppressed in the last window: no note. */
    expire_window(&rl);
    mars_log_rl(&rl, MARS_LOG_WARN, "tail", "quiet");
    out = drain();
    assert_string_equal(after_ts(out), "WARN  [tail] quiet\n");
    free(out);

    /* JSON: the note is part of msg. */
    mars_log_setup(MARS_LOG_INFO, MARS_LOG_JSON);
    for (int i = 0; i < MARS_LOG_RL_BURST + 2; i++)
        mars_log_rl(&rl, MARS_LOG_WARN, "tail", "x");
    free(drain());
    expire_window(&rl);
    mars_log_rl(&rl, MARS_LOG_WARN, "tail", "y");
    out = drain();
    assert_string_equal(json_without_ts(out), ",\"level\":\"warn\",\"component\":\"tail\","
                                              "\"msg\":\"y (3 similar messages suppressed)\"}\n");
    free(out);

    /* Lines below the level are neither written nor counted. */
    struct mars_log_rl quiet = {0};
    for (int i = 0; i < 50; i++)
        mars_log_rl(&quiet, MARS_LOG_DEBUG, "tail", "debug");
    assert_int_equal(atomic_load(&quiet.suppressed), 0);
    assert_int_equal(atomic_load(&quiet.in_window), 0);
    out = drain();
    assert_string_equal(out, "");
    free(out);
}

static void test_rate_limit_macro(void **state)
{
    (void)state;
    for (int i = 0; i < 30; i++)
        MARS_LOG_RL(MARS_LOG_ERROR, "src", "failed %d", i);
    for (int i = 0; i < 3; i++) /* another call site has its own budget */
        MARS_LOG_RL(MARS_LOG_ERROR, "src", "other %d", i);
    for (int i = 0; i < 30; i++) /* below the level: the macro skips the call */
        MARS_LOG_RL(MARS_LOG_DEBUG, "src", "debug %d", i);
    char *out = drain();
    assert_int_equal(count_lines(out), MARS_LOG_RL_BURST + 3);
    assert_non_null(strstr(out, "failed 9\n"));
    assert_null(strstr(out, "failed 10\n"));
    assert_non_null(strstr(out, "other 2\n"));
    free(out);
}

/* ---- concurrency: whole lines and exact counts --------------------------------------- */

#define THREADS    4
#define PER_THREAD 1000

static struct mars_log_rl shared_rl;

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        mars_info("t", "thread %d line %d %s", id, i, "padding padding padding padding");
        mars_log_rl(&shared_rl, MARS_LOG_INFO, "rl", "limited %d", id);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    char path[] = "/tmp/mars_test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
    mars_log_set_fd(fd);
    memset(&shared_rl, 0, sizeof(shared_rl));

    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    expire_window(&shared_rl);
    mars_log_rl(&shared_rl, MARS_LOG_INFO, "rl", "after");
    mars_log_set_fd(pipe_fds[1]);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t plain = 0, limited = 0;
    bool saw_note = false;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        assert_int_equal(line[len - 1], '\n');
        const char *rest = after_ts(line);
        if (strncmp(rest, "INFO  [t] thread ", 17) == 0) {
            assert_non_null(strstr(rest, " padding padding padding padding\n"));
            plain++;
        } else if (strncmp(rest, "INFO  [rl] limited ", 19) == 0) {
            limited++;
        } else {
            char want[128];
            snprintf(want, sizeof(want), "INFO  [rl] after (%d similar messages suppressed)\n",
                     THREADS * PER_THREAD - MARS_LOG_RL_BURST);
            assert_string_equal(rest, want);
            saw_note = true;
        }
    }
    fclose(f);
    unlink(path);
    close(fd);
    assert_int_equal(plain, THREADS * PER_THREAD);
    assert_int_equal(limited, MARS_LOG_RL_BURST);
    assert_true(saw_note);
}

static void test_bad_fd_is_harmless(void **state)
{
    (void)state;
    mars_log_set_fd(-1);
    mars_error("x", "goes nowhere");
    mars_log_set_fd(pipe_fds[1]);
    char *out = drain();
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_macro, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fd_is_harmless, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
