/*
 * test_ev_fallback.c - backend choice when io_uring cannot run: "auto" falls back to
 * libevent and says why in one line; a forced "io_uring" fails with a clear reason.
 *
 * Two ways to take io_uring away:
 * - simulated: test hook uring_fail=eperm|enosys (core/testhook.h; set in process with
 *   mars_test_hooks_set);
 * - real: a forked child installs a seccomp filter (PR_SET_NO_NEW_PRIVS, then
 *   SECCOMP_SET_MODE_FILTER with a BPF program, no libseccomp) that makes io_uring_setup fail
 *   with EPERM, as container runtimes' default profiles do, or ENOSYS, as an old kernel
 *   would. The child checks the choice in process, or execs the mars binary (env MARS_BIN,
 *   set by ctest) and the parent checks its exit code and startup log.
 * Children are bounded by a deadline and killed if they overrun. Tests that need io_uring
 * to work without the filter (or a known seccomp architecture, or MARS_BIN) skip otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/ev.h"
#include "core/testhook.h"

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define CHILD_DEADLINE_S 20

static char g_tmpdir[64];

/* ---- helpers -------------------------------------------------------------------------- */

static bool uring_works_here(void)
{
    char why[256];

    assert_int_equal(mars_test_hooks_set(NULL), 0);
    return mars_ev_backend_select("io_uring", why, sizeof(why)) != NULL;
}

/* Waits for pid at most CHILD_DEADLINE_S; returns its exit code, or -1 (killed, signal). */
static int wait_child(pid_t pid)
{
    int status;

    for (int i = 0; i < CHILD_DEADLINE_S * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static bool seccomp_arch_known(void)
{
#ifdef TEST_AUDIT_ARCH
    return true;
#else
    return false;
#endif
}

/* Makes io_uring_setup fail with `err` in this process and its future children. */
static int deny_io_uring(int err)
{
#ifdef TEST_AUDIT_ARCH
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
        return -errno;
    return 0;
#else
    (void)err;
    return -ENOTSUP;
#endif
}

/* The checks shared by the simulated and the real cases. Returns 0 or a step number. */
static int check_choice(const char *needle)
{
    const struct mars_ev_backend *b;
    struct mars_ev_loop *loop;
    char why[256];

    b = mars_ev_backend_select("auto", why, sizeof(why));
    if (b == NULL || strcmp(mars_ev_backend_name(b), "libevent") != 0)
        return 1;
    printf("  auto: %s\n", why);
    if (strstr(why, "io_uring unusable") == NULL || strstr(why, "using libevent") == NULL ||
        strstr(why, needle) == NULL || strchr(why, '\n') != NULL)
        return 2;
    if (mars_ev_backend_select("io_uring", why, sizeof(why)) != NULL)
        return 3;
    printf("  forced io_uring: %s\n", why);
    if (strstr(why, "io_uring unusable") == NULL || strstr(why, needle) == NULL)
        return 4;
    loop = mars_ev_loop_create(b); /* and the fallback really runs */
    if (loop == NULL)
        return 5;
    mars_ev_loop_destroy(loop);
    return 0;
}

/* ---- simulated -------------------------------------------------------------------------- */

static void test_simulated_eperm(void **state)
{
    (void)state;
    assert_int_equal(mars_test_hooks_set("uring_fail=eperm"), 0);
    assert_int_equal(check_choice("EPERM"), 0);
    assert_int_equal(mars_test_hooks_set(NULL), 0);
}

static void test_simulated_enosys(void **state)
{
    (void)state;
    assert_int_equal(mars_test_hooks_set("uring_fail=enosys"), 0);
    assert_int_equal(check_choice("ENOSYS"), 0);
    assert_int_equal(mars_test_hooks_set(NULL), 0);
}

static void test_libevent_and_unknown_names(void **state)
{
    char why[256];
    const struct mars_ev_backend *b;

    (void)state;
    assert_int_equal(mars_test_hooks_set("uring_fail=eperm"), 0);
    b = mars_ev_backend_select("libevent", why, sizeof(why));
    assert_non_null(b);
    assert_string_equal(mars_ev_backend_name(b), "libevent");
    assert_null(mars_ev_backend_select("uring", why, sizeof(why)));
    assert_non_null(strstr(why, "\"uring\""));
    assert_int_equal(mars_test_hooks_set(NULL), 0);
}

/* Without the hook, on this machine: whatever it says, it says it in one line. */
static void test_real_probe_reports(void **state)
{
    char why[256];
    const struct mars_ev_backend *b;

    (void)state;
    assert_int_equal(mars_test_hooks_set(NULL), 0);
    b = mars_ev_backend_select("auto", why, sizeof(why));
    assert_non_null(b);
    printf("  auto here: %s -> %s\n", mars_ev_backend_name(b), why);
    assert_true(why[0] != '\0' && strchr(why, '\n') == NULL);
    if (strcmp(mars_ev_backend_name(b), "io_uring") == 0)
        assert_non_null(strstr(why, "Linux"));
}

/* ---- a real seccomp filter ------------------------------------------------------------ */

static void seccomp_in_process(int err, const char *needle)
{
    pid_t pid;
    int rc;

    if (!uring_works_here()) {
        skip();
        return;
    }
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rc = deny_io_uring(err);
        if (rc == -ENOTSUP || rc == -EINVAL || rc == -ENOSYS)
            _exit(77); /* no filter support here (valgrind, for one, has no seccomp()) */
        if (rc < 0)
            _exit(70);
        rc = check_choice(needle);
        fflush(stdout);
        _exit(rc);
    }
    rc = wait_child(pid);
    if (rc == 77) {
        skip();
        return;
    }
    assert_int_equal(rc, 0);
}

static void test_seccomp_eperm(void **state)
{
    (void)state;
    seccomp_in_process(EPERM, "seccomp");
}

static void test_seccomp_enosys(void **state)
{
    (void)state;
    seccomp_in_process(ENOSYS, "ENOSYS");
}

/* Runs MARS_BIN under a seccomp filter denying io_uring; returns its exit code and leaves
 * its stderr in g_tmpdir/err. */
static int run_mars_denied(const char *backend)
{
    char cfg[128], err[128], data[128], arg[64];
    const char *bin = getenv("MARS_BIN");
    FILE *f;
    pid_t pid;

    snprintf(cfg, sizeof(cfg), "%s/c.yaml", g_tmpdir);
    snprintf(err, sizeof(err), "%s/err", g_tmpdir);
    snprintf(data, sizeof(data), "%s/data", g_tmpdir);
    snprintf(arg, sizeof(arg), "--io-backend=%s", backend);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "data_dir: %s\nsources:\n  d: { type: demo, count: 3 }\n"
            "sinks:\n  b: { type: blackhole, inputs: [d] }\n",
            data);
    fclose(f);
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(70);
        if (deny_io_uring(EPERM) < 0)
            _exit(77);
        unsetenv("MARS_IO_BACKEND");
        unsetenv("MARS_TEST_HOOKS");
        /* a busy admin port is fatal: never the default one other tests' mars may hold */
        setenv("MARS_API_ADDRESS", "127.0.0.1:0", 1);
        execl(bin, bin, "-c", cfg, "--once", arg, (char *)NULL);
        _exit(71);
    }
    return wait_child(pid);
}

static bool file_has(const char *path, const char *needle)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_binary_under_seccomp(void **state)
{
    char err[128];
    int rc;

    (void)state;
    if (getenv("MARS_BIN") == NULL || !uring_works_here() || !seccomp_arch_known()) {
        skip();
        return;
    }
    snprintf(err, sizeof(err), "%s/err", g_tmpdir);
    rc = run_mars_denied("io_uring");
    if (rc == 77) {
        skip(); /* the filter cannot be installed here */
        return;
    }
    assert_int_equal(rc, 3); /* "could not start" */
    assert_true(file_has(err, "io_uring unusable"));
    assert_true(file_has(err, "seccomp"));
    rc = run_mars_denied("auto");
    assert_int_equal(rc, 0);
    assert_true(file_has(err, "io backend libevent (io_uring unusable"));
    assert_true(file_has(err, "seccomp"));
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_tmpdir, sizeof(g_tmpdir), "/tmp/mars-ev-fallback-XXXXXX");
    return mkdtemp(g_tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simulated_eperm),
        cmocka_unit_test(test_simulated_enosys),
        cmocka_unit_test(test_libevent_and_unknown_names),
        cmocka_unit_test(test_real_probe_reports),
        cmocka_unit_test(test_seccomp_eperm),
        cmocka_unit_test(test_seccomp_enosys),
        cmocka_unit_test(test_binary_under_seccomp),
    };

    if (strstr(mars_ev_backends_compiled(), "io_uring") == NULL) {
        printf("SKIP ev fallback: io_uring not built into this mars\n");
        return 0;
    }
    return cmocka_run_group_tests_name("ev_fallback", tests, group_setup, group_teardown);
}
