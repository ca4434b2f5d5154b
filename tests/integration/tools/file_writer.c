/*
 * file_writer.c - the log writer of the file source tests (tests/integration/file_*.sh).
 * Built by the scripts themselves (cc -O2 -o $TMP/fw file_writer.c); not part of mars.
 *
 * Every line it writes is
 *     KEY:SEQ:PAYLOAD\n
 * with SEQ 9 decimal digits counting from 0 per KEY, and PAYLOAD a deterministic function
 * of SEQ (10 to 49 bytes), so lib/file_source.bash can check every delivered line exactly:
 * its content, its order within its KEY (one key per file generation) and duplicates.
 *
 *   fw gen KEY START COUNT
 *       prints lines START..START+COUNT-1 of KEY to stdout.
 *   fw append PATH KEY START COUNT BURST PAUSE_US
 *       appends (O_APPEND, creating PATH) COUNT lines in bursts of BURST lines, one write
 *       per burst, sleeping PAUSE_US between bursts.
 *   fw rotate PATH KEY GENS PER_GEN LATE BURST PAUSE_US
 *       logrotate "create" at a high rate: for generation g (key KEY.g<g>) writes PER_GEN
 *       lines to PATH, renames PATH to PATH.<g>, writes LATE more lines to the renamed file
 *       through the descriptor it still holds (a writer that reopens late), then creates
 *       PATH anew. The last generation stays at PATH (PER_GEN lines, no LATE ones).
 *   fw copytruncate PATH KEY TOTAL EVERY BURST PAUSE_US [WAITOUT]
 *       one O_APPEND descriptor writes TOTAL lines; after every EVERY lines (and before
 *       the next write) PATH is copied to PATH.<n>.copy and truncated to 0, as logrotate's
 *       copytruncate does. With WAITOUT, before each copy it waits (30 s at most, else
 *       exits 2) until WAITOUT holds as many lines as were written, so that everything
 *       before a truncation is known to be delivered. Nothing is written between the copy
 *       and the truncation, so the copies and PATH hold every line exactly once.
 *       FW_COPY_CHUNK=BYTES and FW_COPY_PAUSE_US=US copy in chunks with pauses between.
 *   fw tree ROOT NDIRS NSUBS NFILES LINES [START]
 *       ROOT/d<i>/s<j>/f<k>.log for every i < NDIRS, j < NSUBS, k < NFILES, each with lines
 *       START..START+LINES-1 (START 0 by default: created; otherwise appended) of key
 *       d<i>s<j>f<k>, one write per file.
 *   fw lines FILE
 *       prints the number of newlines in FILE (0 if missing).
 *   fw reuse PATH INODE TRIES
 *       creates PATH empty with inode INODE (just freed by deleting a file): the file
 *       system hands out the lowest free inode of the directory's group, so files are
 *       created (and kept aside as PATH.hold<n>) until one gets INODE or TRIES are spent;
 *       the ones kept aside are deleted. Exit 0 when PATH has INODE, 1 when not (it is
 *       then absent).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char ALPHA[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static size_t fmt_line(char *buf, const char *key, long seq)
{
    int plen = 10 + (int)(seq % 40);
    return (size_t)sprintf(buf, "%s:%09ld:%.*s\n", key, seq, plen, ALPHA);
}

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "fw: %s %s: %s\n", what, arg, strerror(errno));
    exit(1);
}

static void write_all(int fd, const char *p, size_t n, const char *path)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write", path);
        }
        p += w;
        n -= (size_t)w;
    }
}

static void pause_us(long us)
{
    if (us <= 0)
        return;
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Writes COUNT lines of KEY from START to fd in bursts; returns the next seq. */
static char *burst_buf;
static size_t burst_cap;

static long write_lines(int fd, const char *path, const char *key, long start, long count,
                        long burst, long pause)
{
    size_t need = (size_t)burst * (strlen(key) + 64);
    if (need > burst_cap) {
        free(burst_buf);
        burst_buf = malloc(need);
        if (!burst_buf)
            die("malloc", "");
        burst_cap = need;
    }
    long seq = start, end = start + count;
    while (seq < end) {
        size_t n = 0;
        for (long i = 0; i < burst && seq < end; i++)
            n += fmt_line(burst_buf + n, key, seq++);
        write_all(fd, burst_buf, n, path);
        if (seq < end)
            pause_us(pause);
    }
    return seq;
}

static long count_lines(const char *file)
{
    char buf[1 << 16];
    long n = 0;
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < r; i++)
            n += buf[i] == '\n';
    close(fd);
    return n;
}

static long num(const char *s);

/* FW_COPY_CHUNK (bytes, 64 KiB at most) and FW_COPY_PAUSE_US make a slow copier: one
 * write per chunk, a pause after each but the last. */
static void copy_file(const char *from, const char *to)
{
    char buf[1 << 16];
    const char *chunk_env = getenv("FW_COPY_CHUNK"), *pause_env = getenv("FW_COPY_PAUSE_US");
    size_t chunk = chunk_env ? (size_t)num(chunk_env) : sizeof(buf);
    long pause = pause_env ? num(pause_env) : 0;
    if (chunk == 0 || chunk > sizeof(buf))
        chunk = sizeof(buf);
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0)
        die("open", from);
    if (out < 0)
        die("open", to);
    ssize_t r;
    bool first = true;
    while ((r = read(in, buf, chunk)) > 0) {
        if (!first)
            pause_us(pause);
        first = false;
        write_all(out, buf, (size_t)r, to);
    }
    close(in);
    close(out);
}

static int open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open", path);
    return fd;
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "fw: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "gen") == 0 && argc == 5) {
        char line[128];
        long start = num(argv[3]), count = num(argv[4]);
        for (long s = start; s < start + count; s++) {
            size_t n = fmt_line(line, argv[2], s);
            if (fwrite(line, 1, n, stdout) != n)
                return 1;
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (strcmp(mode, "append") == 0 && argc == 8) {
        int fd = open_append(argv[2]);
        write_lines(fd, argv[2], argv[3], num(argv[4]), num(argv[5]), num(argv[6]), num(argv[7]));
        return close(fd) == 0 ? 0 : 1;
    }
    if (strcmp(mode, "rotate") == 0 && argc == 9) {
        const char *path = argv[2];
        long gens = num(argv[4]), per = num(argv[5]), late = num(argv[6]), burst = num(argv[7]),
             pause = num(argv[8]);
        char key[256], rotated[4096];
        for (long g = 0; g < gens; g++) {
            snprintf(key, sizeof(key), "%s.g%ld", argv[3], g);
            int fd = open_append(path);
            long seq = write_lines(fd, path, key, 0, per, burst, pause);
            if (g + 1 < gens) {
                snprintf(rotated, sizeof(rotated), "%s.%ld", path, g);
                if (rename(path, rotated) != 0)
                    die("rename", path);
                write_lines(fd, rotated, key, seq, late, burst, 0);
            }
            close(fd);
            pause_us(pause);
        }
        return 0;
    }
    if (strcmp(mode, "copytruncate") == 0 && (argc == 8 || argc == 9)) {
        const char *path = argv[2], *waitout = argc == 9 ? argv[8] : NULL;
        long total = num(argv[4]), every = num(argv[5]), burst = num(argv[6]), pause = num(argv[7]);
        char copy[4096];
        int fd = open_append(path), n = 0;
        long seq = 0;
        while (seq < total) {
            long k = every < total - seq ? every : total - seq;
            seq = write_lines(fd, path, argv[3], seq, k, burst, pause);
            if (seq >= total)
                break;
            if (waitout) {
                struct timespec t0, t;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                while (count_lines(waitout) < seq) {
                    clock_gettime(CLOCK_MONOTONIC, &t);
                    if (t.tv_sec - t0.tv_sec > 30) {
                        fprintf(stderr, "fw: %s did not reach %ld lines in 30 s\n", waitout, seq);
                        return 2;
                    }
                    pause_us(2000);
                }
            }
            snprintf(copy, sizeof(copy), "%s.%d.copy", path, n++);
            copy_file(path, copy);
            if (truncate(path, 0) != 0)
                die("truncate", path);
            pause_us(pause);
        }
        return close(fd) == 0 ? 0 : 1;
    }
    if (strcmp(mode, "reuse") == 0 && argc == 5) {
        const char *path = argv[2];
        unsigned long want = (unsigned long)num(argv[3]);
        long tries = num(argv[4]), held = 0;
        char hold[4096];
        int ok = 0;
        for (long t = 0; t < tries && !ok; t++) {
            struct stat st;
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0 || fstat(fd, &st) != 0)
                die("create", path);
            close(fd);
            if ((unsigned long)st.st_ino == want) {
                ok = 1;
                break;
            }
            snprintf(hold, sizeof(hold), "%s.hold%ld", path, held++);
            if (rename(path, hold) != 0)
                die("rename", path);
        }
        for (long i = 0; i < held; i++) {
            snprintf(hold, sizeof(hold), "%s.hold%ld", path, i);
            unlink(hold);
        }
        return ok ? 0 : 1;
    }
    if (strcmp(mode, "tree") == 0 && (argc == 7 || argc == 8)) {
        long nd = num(argv[3]), ns = num(argv[4]), nf = num(argv[5]), lines = num(argv[6]),
             start = argc == 8 ? num(argv[7]) : 0;
        char path[4096], key[64];
        for (long i = 0; i < nd; i++)
            for (long j = 0; j < ns; j++) {
                snprintf(path, sizeof(path), "%s/d%ld", argv[2], i);
                mkdir(path, 0755);
                snprintf(path, sizeof(path), "%s/d%ld/s%ld", argv[2], i, j);
                mkdir(path, 0755);
                for (long k = 0; k < nf; k++) {
                    snprintf(path, sizeof(path), "%s/d%ld/s%ld/f%ld.log", argv[2], i, j, k);
                    snprintf(key, sizeof(key), "d%lds%ldf%ld", i, j, k);
                    int fd =
                        open(path, O_WRONLY | O_CREAT | O_APPEND | (start ? 0 : O_TRUNC), 0644);
                    if (fd < 0)
                        die("open", path);
                    write_lines(fd, path, key, start, lines, lines, 0);
                    close(fd);
                }
            }
        return 0;
    }
    if (strcmp(mode, "lines") == 0 && argc == 3) {
        printf("%ld\n", count_lines(argv[2]));
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of file_writer.c\n");
    return 2;
}
