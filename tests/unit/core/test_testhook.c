/*
 * test_testhook.c - the test hooks (src/core/testhook.c): MARS_TEST_HOOKS read once from the
 * environment, an invalid one ignored with a warning, and every accepted and refused form of
 * a spec through mars_test_hooks_set().
 *
 * The environment is read at the first lookup of the process, so the environment tests run
 * first and each in a forked child that starts with nothing loaded; the parent looks no hook
 * up before them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/testhook.h"

/* ---- the environment (forked children) ------------------------------------------------ */

/* Runs child() in a fresh fork with env MARS_TEST_HOOKS=spec and its log going to a pipe;
 * returns its exit code and leaves what it logged in log (NUL-terminated). */
static int in_child(const char *spec, int (*child)(void), char *log, size_t loglen)
{
    int fds[2], status;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        mars_log_set_fd(fds[1]);
        setenv("MARS_TEST_HOOKS", spec, 1);
        _exit(child());
    }
    close(fds[1]);
    while (n + 1 < loglen && (r = read(fds[0], log + n, loglen - n - 1)) > 0)
        n += (size_t)r;
    log[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Exit codes: 0 when the lookups see what the spec says, a step number otherwise. */
static int child_reads_once(void)
{
    const char *v = mars_test_hook("uring_fail");

    if (v == NULL || strcmp(v, "features") != 0)
        return 1;
    setenv("MARS_TEST_HOOKS", "uring_fail=eperm", 1); /* too late: read once */
    v = mars_test_hook("uring_fail");
    if (v == NULL || strcmp(v, "features") != 0)
        return 2;
    return mars_test_hook("other") == NULL ? 0 : 3;
}

static int child_sees_nothing(void)
{
    return mars_test_hook("uring_fail") == NULL ? 0 : 1;
}

static void test_env_read_once(void **state)
{
    char log[512];

    (void)state;
    assert_int_equal(in_child("uring_fail=features", child_reads_once, log, sizeof(log)), 0);
    assert_string_equal(log, "");
}

static void test_env_invalid_ignored_with_warning(void **state)
{
    char log[512];

    (void)state;
    assert_int_equal(
        in_child("uring_fail=eperm,uring_fial=x", child_sees_nothing, log, sizeof(log)), 0);
    assert_non_null(strstr(log, "WARN"));
    assert_non_null(strstr(log, "MARS_TEST_HOOKS=\"uring_fail=eperm,uring_fial=x\" ignored"));
}

/* ---- mars_test_hooks_set --------------------------------------------------------------- */

static void hook_is(const char *name, const char *want)
{
    const char *v = mars_test_hook(name);

    if (want == NULL && v != NULL)
        fail_msg("hook %s: \"%s\", want none", name, v);
    if (want != NULL && (v == NULL || strcmp(v, want) != 0))
        fail_msg("hook %s: %s%s%s, want \"%s\"", name, v ? "\"" : "", v ? v : "none", v ? "\"" : "",
                 want);
}

static void test_set_accepts(void **state)
{
    static const struct {
        const char *spec, *want; /* want: the value of uring_fail, NULL for none */
    } cases[] = {
        {"uring_fail=features", "features"},
        {"uring_fail=enosys", "enosys"},
        {"uring_fail", ""},        /* a bare name */
        {"uring_fail=", ""},       /* an empty value */
        {"uring_fail=a=b", "a=b"}, /* only the first '=' splits */
        {"", NULL},
        {NULL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mars_test_hooks_set(cases[i].spec) != 0)
            fail_msg("spec \"%s\" refused", cases[i].spec ? cases[i].spec : "(null)");
        hook_is("uring_fail", cases[i].want);
        hook_is("uring", NULL); /* names match whole */
        hook_is("uring_fail=", NULL);
    }
}

static void test_set_refuses_and_keeps(void **state)
{
    char big[300];
    const char *const bad[] = {
        "uring_fial=features",                /* unknown name */
        "uring_fail=eperm,uring_fail=enosys", /* twice */
        "=features",                          /* no name */
        "uring_fail=eperm,",                  /* an empty entry */
        ",uring_fail=eperm",
        "uring_fail=eperm,,",
        "URING_FAIL=eperm", /* names are case-sensitive */
        big,
    };

    (void)state;
    memcpy(big, "uring_fail=", 11);
    memset(big + 11, 'x', 255 - 11); /* 255 bytes: the longest there is room for */
    big[255] = '\0';
    assert_int_equal(mars_test_hooks_set(big), 0);
    hook_is("uring_fail", big + 11);
    memset(big + 11, 'x', sizeof(big) - 12); /* 299 bytes: too long */
    big[sizeof(big) - 1] = '\0';

    assert_int_equal(mars_test_hooks_set("uring_fail=eperm"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mars_test_hooks_set(bad[i]) != -EINVAL)
            fail_msg("spec \"%.40s\" accepted", bad[i]);
        hook_is("uring_fail", "eperm"); /* unchanged */
    }
    assert_int_equal(mars_test_hooks_set(NULL), 0);
    hook_is("uring_fail", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: they need a process that has not loaded the environment yet */
        cmocka_unit_test(test_env_read_once),
        cmocka_unit_test(test_env_invalid_ignored_with_warning),
        cmocka_unit_test(test_set_accepts),
        cmocka_unit_test(test_set_refuses_and_keeps),
    };

    unsetenv("MARS_TEST_HOOKS");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
