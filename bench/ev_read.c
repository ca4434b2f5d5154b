/*
 * ev_read.c - the ev-level read benchmark: one file read through each event-loop backend
 * in 256 KiB chunks (lines found as mars's line cutter finds them), next to `cat FILE` in
 * the same run. Reports wall time and CPU (user + system) of each, and each backend's
 * ratios to cat.
 *
 * Usage: ev_read FILE [-r RUNS] [-d DEPTH] [-c CHUNK_KIB] [-b BACKEND]... [-F|--fixed-only]
 *                    [--cold] [--no-count] [--no-cat]
 *   -r RUNS    runs of each contender; the fastest (wall) run is reported (default 3)
 *   -d DEPTH   reads kept in flight per loop (default 4; libevent completes each at submit)
 *   -c KIB     chunk size in KiB (default 256)
 *   -b NAME    backend to measure, repeatable (default: libevent and io_uring if built)
 *   -F         also measure each backend with its buffers in one region registered with
 *              mars_ev_register_buffers (as mars's chunk pool does): fixed reads on io_uring,
 *              plain reads elsewhere; rows named BACKEND+fixed
 *   --fixed-only  only the BACKEND+fixed rows (bench/run's ev-read@io_uring+fixed)
 *   --cold     drop the file's page cache (posix_fadvise DONTNEED) before every run; the
 *              default measures a warm cache (one untimed cat first)
 *   --no-count read only, do not count lines
 *   --no-cat   measure only the backends (bench/run measures cat as its own row)
 * Make a 1 GiB text file, for example:
 *   head -c 768M /dev/urandom | base64 -w 100 | head -c 1G > /tmp/ev_read.txt
 * Build (after building mars in build/; any build dir works):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o build/ev_read bench/ev_read.c \
 *      build/libmars_core.a $(pkg-config --libs libevent liburing) -lpthread -lm
 * Run:
 *   build/ev_read /tmp/ev_read.txt
 * bench/run builds it the same way (scenarios ev-read@libevent and ev-read@io_uring).
 *
 * How it works: cat runs as a child (stdout to /dev/null) and wait4() gives its CPU time; a
 * backend run creates a loop, keeps DEPTH reads at increasing offsets in flight, counts the
 * newlines of each completed chunk in its callback and resubmits that buffer at the next
 * unread offset until EOF; getrusage(RUSAGE_SELF) around the run gives its CPU time (which
 * includes io_uring's kernel worker threads, if any ran). Not a test: it checks only that
 * every backend saw the whole file and the same line count.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/delim.h"
#include "core/ev.h"

#define MAX_DEPTH    64
#define MAX_BACKENDS 4

struct cost {
    double wall, user, sys;
};

struct reader;

struct chunk {
    struct mars_ev_op op;
    struct reader *rd;
    char *buf;
    uint64_t off;
};

struct reader {
    struct mars_ev_loop *loop;
    int fd;
    size_t chunk_len;
    uint64_t size, next_off, bytes, lines;
    unsigned inflight;
    bool count;
    int error;
    struct chunk chunks[MAX_DEPTH];
};

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Counts lines the way mars's line cutter finds them (core/delim.h, a batch of delimiter
 * offsets at a time), so the figure includes what a reader really pays per line. */
static uint64_t count_lines(const char *p, size_t n)
{
    uint32_t idx[256];
    uint64_t lines = 0;
    size_t pos = 0, done;

    while (pos < n) {
        lines += mars_delim_index(p + pos, n - pos, '\n', idx, 256, &done);
        pos += done;
    }
    return lines;
}

static void on_read(struct mars_ev_op *op, int res);

/* Submits the chunk at the next unread offset, if any is left. */
static void issue(struct reader *rd, struct chunk *c)
{
    int rc;

    if (rd->next_off >= rd->size)
        return;
    c->off = rd->next_off;
    rd->next_off += rd->chunk_len;
    mars_ev_prep_read(&c->op, rd->fd, c->buf, rd->chunk_len, c->off, on_read, c);
    rc = mars_ev_submit(rd->loop, &c->op);
    if (rc < 0) {
        rd->error = rc;
        return;
    }
    rd->inflight++;
}

static void on_read(struct mars_ev_op *op, int res)
{
    struct chunk *c = op->data;
    struct reader *rd = c->rd;

    rd->inflight--;
    if (res < 0) {
        rd->error = res;
        return;
    }
    rd->bytes += (uint64_t)res;
    if (rd->count)
        rd->lines += count_lines(c->buf, (size_t)res);
    if ((size_t)res < rd->chunk_len && c->off + (uint64_t)res < rd->size) {
        rd->error = -EIO; /* a short read before EOF: keep the benchmark honest */
        return;
    }
    issue(rd, c);
}

static int run_backend(const char *name, const char *path, unsigned depth, size_t chunk_len,
                       bool count, bool fixed, struct cost *cost, uint64_t *lines)
{
    struct reader *rd = calloc(1, sizeof(*rd));
    unsigned char *region = NULL;
    struct rusage r0, r1;
    struct stat st;
    char why[256];
    const struct mars_ev_backend *b = mars_ev_backend_select(name, why, sizeof(why));
    int64_t t0, t1;
    int rc = -ENOMEM;

    if (b == NULL) {
        fprintf(stderr, "ev_read: backend %s: %s\n", name, why);
        free(rd);
        return -ENOTSUP;
    }
    if (rd == NULL)
        return -ENOMEM;
    rd->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (rd->fd < 0 || fstat(rd->fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    rd->size = (uint64_t)st.st_size;
    rd->chunk_len = chunk_len;
    rd->count = count;
    if (fixed) {
        region = mmap(NULL, chunk_len * depth, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
        if (region == MAP_FAILED) {
            region = NULL;
            goto out;
        }
    }
    for (unsigned i = 0; i < depth; i++) {
        rd->chunks[i].rd = rd;
        rd->chunks[i].buf = fixed ? (char *)region + chunk_len * i : aligned_alloc(4096, chunk_len);
        if (rd->chunks[i].buf == NULL)
            goto out;
    }
    getrusage(RUSAGE_SELF, &r0);
    t0 = mars_ev_clock_ns();
    rd->loop = mars_ev_loop_create(b);
    if (rd->loop == NULL) {
        rc = -errno;
        goto out;
    }
    rc = 0;
    if (fixed && mars_ev_register_buffers(rd->loop, region, chunk_len, depth) == 0 &&
        !(mars_ev_caps(rd->loop) & MARS_EV_CAP_FIXED_BUFFERS))
        rc = -EIO; /* registered but the cap is off: not what we mean to measure */
    for (unsigned i = 0; i < depth && rc == 0; i++)
        issue(rd, &rd->chunks[i]);
    while (rd->inflight > 0 && rc >= 0)
        rc = mars_ev_run_once(rd->loop, -1);
    mars_ev_loop_destroy(rd->loop);
    t1 = mars_ev_clock_ns();
    getrusage(RUSAGE_SELF, &r1);
    cost->wall = (double)(t1 - t0) / 1e9;
    cost->user = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
    cost->sys = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
    *lines = rd->lines;
    if (rc >= 0 && rd->error < 0)
        rc = rd->error;
    if (rc >= 0 && rd->bytes != rd->size)
        rc = -EIO;
out:
    for (unsigned i = 0; i < depth && !fixed; i++)
        free(rd->chunks[i].buf);
    if (region != NULL)
        munmap(region, chunk_len * depth);
    if (rd->fd >= 0)
        close(rd->fd);
    free(rd);
    return rc < 0 ? rc : 0;
}

static int run_cat(const char *path, struct cost *cost)
{
    struct rusage ru;
    int status;
    int64_t t0 = mars_ev_clock_ns();
    pid_t pid = fork();

    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null < 0 || dup2(null, 1) < 0)
            _exit(127);
        execlp("cat", "cat", path, (char *)NULL);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -EIO;
    cost->wall = (double)(mars_ev_clock_ns() - t0) / 1e9;
    cost->user = tv_s(ru.ru_utime);
    cost->sys = tv_s(ru.ru_stime);
    return 0;
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static void print_row(const char *name, const struct cost *c, const struct cost *cat, double mib)
{
    printf("%-15s wall %7.3f s  cpu %7.3f s (user %6.3f sys %6.3f)  %8.0f MiB/s", name, c->wall,
           c->user + c->sys, c->user, c->sys, mib / c->wall);
    if (cat != NULL)
        printf("  wall/cat %.2fx  cpu/cat %.2fx", c->wall / cat->wall,
               (c->user + c->sys) / (cat->user + cat->sys));
    printf("\n");
}

static void usage(void)
{
    fprintf(stderr, "usage: ev_read FILE [-r RUNS] [-d DEPTH] [-c CHUNK_KIB] [-b BACKEND]... "
                    "[-F|--fixed-only] [--cold] [--no-count] [--no-cat]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *backends[MAX_BACKENDS];
    unsigned runs = 3, depth = 4, nb = 0;
    size_t chunk = 256u << 10;
    bool cold = false, count = true, with_cat = true, fixed = false, plain = true;
    struct cost cat = {0}, best = {0};
    struct stat st;
    uint64_t lines = 0, first_lines = UINT64_MAX;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            runs = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            depth = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            chunk = (size_t)atoi(argv[++i]) << 10;
        else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc && nb < MAX_BACKENDS)
            backends[nb++] = argv[++i];
        else if (strcmp(argv[i], "-F") == 0)
            fixed = true;
        else if (strcmp(argv[i], "--fixed-only") == 0)
            fixed = true, plain = false;
        else if (strcmp(argv[i], "--cold") == 0)
            cold = true;
        else if (strcmp(argv[i], "--no-count") == 0)
            count = false;
        else if (strcmp(argv[i], "--no-cat") == 0)
            with_cat = false;
        else if (argv[i][0] != '-' && path == NULL)
            path = argv[i];
        else
            usage();
    }
    if (path == NULL || runs == 0 || depth == 0 || depth > MAX_DEPTH || chunk == 0)
        usage();
    if (nb == 0) {
        backends[nb++] = "libevent";
        if (strstr(mars_ev_backends_compiled(), "io_uring") != NULL)
            backends[nb++] = "io_uring";
    }
    if (stat(path, &st) != 0) {
        fprintf(stderr, "ev_read: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("file %s: %.0f MiB, chunk %zu KiB, depth %u, %s cache, best of %u, lines %s\n", path,
           (double)st.st_size / 1048576.0, chunk >> 10, depth, cold ? "cold" : "warm", runs,
           count ? "counted" : "not counted");
    for (unsigned r = 0; with_cat && r <= runs; r++) {
        struct cost c = {0};

        if (cold)
            drop_cache(path);
        if (run_cat(path, &c) != 0)
            return 1;
        if (r == 1 || (r > 1 && c.wall < cat.wall))
            cat = c; /* run 0 only warms the page cache */
    }
    if (with_cat)
        print_row("cat", &cat, NULL, (double)st.st_size / 1048576.0);
    for (unsigned v = 0; v < nb * (fixed ? 2u : 1u); v++) {
        unsigned b = fixed ? v / 2 : v;
        bool fx = fixed && v % 2 == 1;
        char label[32];

        if (!plain && !fx)
            continue;

        for (unsigned r = 0; r < runs; r++) {
            struct cost c = {0};
            int rc;

            if (cold)
                drop_cache(path);
            rc = run_backend(backends[b], path, depth, chunk, count, fx, &c, &lines);
            if (rc < 0) {
                fprintf(stderr, "ev_read: %s%s: %s\n", backends[b], fx ? "+fixed" : "",
                        strerror(-rc));
                return 1;
            }
            if (count && first_lines != UINT64_MAX && lines != first_lines) {
                fprintf(stderr, "ev_read: %s counted %llu lines, expected %llu\n", backends[b],
                        (unsigned long long)lines, (unsigned long long)first_lines);
                return 1;
            }
            first_lines = lines;
            if (r == 0 || c.wall < best.wall)
                best = c;
        }
        snprintf(label, sizeof(label), "%s%s", backends[b], fx ? "+fixed" : "");
        print_row(label, &best, with_cat ? &cat : NULL, (double)st.st_size / 1048576.0);
    }
    if (count)
        printf("lines %llu\n", (unsigned long long)first_lines);
    return 0;
}
