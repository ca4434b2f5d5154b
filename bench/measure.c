/*
 * measure.c - runs one command and reports what it cost: wall time, user and system CPU,
 * peak RSS, how it ended; optionally samples its RSS over time and stops it with SIGTERM.
 * The timing wrapper of bench/run (like /usr/bin/time -v, plus sampling and a stop timer).
 *
 * Usage: measure [-i IN] [-o OUT] [-e ERR] [-s MS -r FILE] [-t SEC] [-k SEC] [-T SEC] -- CMD...
 *   -i IN    standard input from the file IN (default /dev/null)
 *   -o OUT   standard output to OUT (default /dev/null)
 *   -e ERR   standard error to ERR (default: inherited)
 *   -a       open OUT and ERR for appending instead of truncating
 *   -s MS    sample the child's VmRSS every MS milliseconds into -r FILE as
 *            "SECONDS_SINCE_START RSS_KIB" lines
 *   -t SEC   send SIGTERM after SEC seconds (a run that is stopped on purpose)
 *   -k SEC   after SIGTERM, SIGKILL if still running SEC seconds later (default 30)
 *   -T SEC   hard limit: SIGKILL after SEC seconds in all (default none); a run that hangs
 *            is a failed run, not a stuck benchmark
 * Prints one JSON object on stdout:
 *   {"wall_s":..,"user_s":..,"sys_s":..,"maxrss_kib":..,"exit":N|null,"signal":N|null,
 *    "term_sent":bool,"term_to_exit_s":..,"killed":bool}
 * and exits 0 whenever the measurement itself worked (the child's status is in the JSON).
 * SIGTERM or SIGINT sent to measure is forwarded to the child as SIGTERM (and counts as the
 * stop request: term_sent, term_to_exit_s and -k apply), so a caller can stop a run at the
 * moment it chooses, not only after -t.
 * Build: cc -O2 -std=c11 -o measure bench/measure.c   (bench/run does it for you)
 *
 * How it works: fork, redirect, exec; the parent waits on a pidfd with poll() until the next
 * sample or deadline (so the exit is seen at once, without busy polling), and wait4() gives
 * the child's rusage. Peak RSS is ru_maxrss: the kernel's high-water mark of the child, which
 * includes the few hundred KiB this small wrapper had mapped when it forked (as with GNU time).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *in, *out, *err, *rss_file;
    bool append;
    double sample_ms, term_after, kill_grace, hard_limit;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: measure [-i IN] [-o OUT] [-e ERR] [-a] [-s MS -r FILE] [-t SEC] "
                    "[-k SEC] [-T SEC] -- CMD [ARGS...]\n");
}

static int redirect(const char *path, int fd, int flags)
{
    int f = open(path, flags, 0644);
    if (f < 0)
        return -1;
    if (f != fd) {
        if (dup2(f, fd) < 0)
            return -1;
        close(f);
    }
    return 0;
}

/* VmRSS of pid in KiB, or -1 when it cannot be read (the process is gone). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    int c;
    *o = (struct opts){.in = "/dev/null", .out = "/dev/null", .kill_grace = 30};
    while ((c = getopt(argc, argv, "+i:o:e:as:r:t:k:T:")) != -1) {
        switch (c) {
        case 'i':
            o->in = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'e':
            o->err = optarg;
            break;
        case 'a':
            o->append = true;
            break;
        case 's':
            o->sample_ms = atof(optarg);
            break;
        case 'r':
            o->rss_file = optarg;
            break;
        case 't':
            o->term_after = atof(optarg);
            break;
        case 'k':
            o->kill_grace = atof(optarg);
            break;
        case 'T':
            o->hard_limit = atof(optarg);
            break;
        default:
            return -1;
        }
    }
    if (optind >= argc || (o->sample_ms > 0) != (o->rss_file != NULL))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o)) {
        usage();
        return 2;
    }
    FILE *rss = NULL;
    if (o.rss_file && !(rss = fopen(o.rss_file, "w"))) {
        fprintf(stderr, "measure: %s: %s\n", o.rss_file, strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int wflags = O_WRONLY | O_CREAT | (o.append ? O_APPEND : O_TRUNC);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "measure: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        if (redirect(o.in, STDIN_FILENO, O_RDONLY) || redirect(o.out, STDOUT_FILENO, wflags) ||
            (o.err && redirect(o.err, STDERR_FILENO, wflags))) {
            fprintf(stderr, "measure: redirect: %s\n", strerror(errno));
            _exit(126);
        }
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "measure: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }

    int pfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1: fall back to 10 ms polling */
    bool term_sent = false, killed = false;
    double term_at = 0, next_sample = o.sample_ms > 0 ? t0 + o.sample_ms / 1000.0 : -1;
    int status = 0;
    struct rusage ru;

    for (;;) {
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "measure: wait4: %s\n", strerror(errno));
            return 1;
        }
        double t = now_s();
        if (next_sample >= 0 && t >= next_sample) {
            long v = rss_kib(pid);
            if (v >= 0)
                fprintf(rss, "%.3f %ld\n", t - t0, v);
            next_sample += o.sample_ms / 1000.0;
        }
        if (!term_sent && (stop_requested || (o.term_after > 0 && t - t0 >= o.term_after))) {
            kill(pid, SIGTERM);
            term_sent = true;
            term_at = t;
        }
        if (!killed && ((term_sent && t - term_at >= o.kill_grace) ||
                        (o.hard_limit > 0 && t - t0 >= o.hard_limit))) {
            kill(pid, SIGKILL);
            killed = true;
        }
        /* sleep until the child exits or the next thing to do */
        double wake = t + 0.25; /* also bounds how late a forwarded stop is seen */
        if (next_sample >= 0 && next_sample < wake)
            wake = next_sample;
        if (o.term_after > 0 && !term_sent && t0 + o.term_after < wake)
            wake = t0 + o.term_after;
        if (term_sent && !killed && term_at + o.kill_grace < wake)
            wake = term_at + o.kill_grace;
        if (o.hard_limit > 0 && !killed && t0 + o.hard_limit < wake)
            wake = t0 + o.hard_limit;
        int ms = (int)((wake - t) * 1000.0) + 1;
        if (pfd >= 0) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            poll(&p, 1, ms);
        } else {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    double t1 = now_s();
    if (pfd >= 0)
        close(pfd);
    if (rss)
        fclose(rss);

    char ex[16] = "null", sg[16] = "null";
    if (WIFEXITED(status))
        snprintf(ex, sizeof(ex), "%d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        snprintf(sg, sizeof(sg), "%d", WTERMSIG(status));
    printf("{\"wall_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"maxrss_kib\":%ld,\"exit\":%s,"
           "\"signal\":%s,\"term_sent\":%s,\"term_to_exit_s\":%.6f,\"killed\":%s}\n",
           t1 - t0, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss, ex, sg,
           term_sent ? "true" : "false", term_sent ? t1 - term_at : 0.0, killed ? "true" : "false");
    return 0;
}
