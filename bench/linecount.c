/*
 * linecount.c - the memchr line-count baseline: the least work any line-oriented reader must
 * do on the same data, measured in the same run as mars (bench/run).
 *
 * Usage: linecount FILE      (or "-" / no argument: standard input)
 * Prints "lines=N bytes=B" on stdout. Lines are counted as mars counts them: every '\n', plus
 * one for an unterminated last line.
 * Build: cc -O2 -std=c11 -o linecount bench/linecount.c   (bench/run does it for you)
 *
 * How it works: read() into one 256 KiB buffer, memchr() from '\n' to '\n' across it. No
 * per-line allocation or copy, one syscall per 256 KiB: the same shape as mars's reader.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK (256u << 10)

int main(int argc, char **argv)
{
    int fd = STDIN_FILENO;
    if (argc > 2) {
        fprintf(stderr, "usage: linecount [FILE]\n");
        return 2;
    }
    if (argc == 2 && strcmp(argv[1], "-") != 0) {
        fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "linecount: %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
    }
    char *buf = malloc(BLOCK);
    if (!buf) {
        fprintf(stderr, "linecount: out of memory\n");
        return 1;
    }
    uint64_t lines = 0, bytes = 0;
    char last = '\n';
    for (;;) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "linecount: read: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0)
            break;
        const char *p = buf, *end = buf + n;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
        bytes += (uint64_t)n;
        last = buf[n - 1];
    }
    if (last != '\n')
        lines++;
    printf("lines=%" PRIu64 " bytes=%" PRIu64 "\n", lines, bytes);
    free(buf);
    return 0;
}
