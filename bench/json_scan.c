/*
 * json_scan.c - the JSON scanner benchmark (issue 6): the lines of a file, in memory, run
 * through one contender, timing only the loop over the lines.
 *
 * Usage: json_scan FILE CONTENDER [-m MAX_MIB]
 *   CONTENDER  validate  mars_json_validate (grammar, escapes, UTF-8; records nothing)
 *              parse     mars_json_parse into a reused field builder (what `parse` does)
 *              parse-utf8  the same with MARS_JSON_VALID_UTF8, as `parse` runs on lines a
 *                        file source validated (the strings' UTF-8 checks are skipped)
 *              jansson   json_loadb + json_decref (a DOM of every value)
 *   -m MIB     read at most this much of FILE (whole lines; default all)
 * Prints one line: `lines N bytes N errors N wall_s X user_s X sys_s X maxrss_kib N`
 * (bench/run reads it). Every contender must accept every line of generated data: errors
 * is the number of lines rejected.
 *
 * Build (bench/run does it, against the build dir next to the mars binary):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o build/json_scan bench/json_scan.c \
 *      build/libmars_core.a -ljansson -lm
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/arena.h"
#include "model/fields.h"
#include "model/json.h"

struct input {
    char *buf;
    size_t len;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Reads FILE (at most max bytes, cut back to the last newline). */
static int load(const char *path, size_t max, struct input *in)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 20;
    in->buf = malloc(cap);
    in->len = 0;
    for (;;) {
        if (in->len == cap) {
            cap *= 2;
            char *nb = realloc(in->buf, cap);
            if (!nb) {
                fclose(f);
                return -ENOMEM;
            }
            in->buf = nb;
        }
        size_t want = cap - in->len;
        if (max && in->len + want > max)
            want = max - in->len;
        size_t got = want ? fread(in->buf + in->len, 1, want, f) : 0;
        in->len += got;
        if (got == 0 || (max && in->len >= max))
            break;
    }
    fclose(f);
    while (in->len > 0 && in->buf[in->len - 1] != '\n')
        in->len--;
    return 0;
}

static int one(const char *what, const char *s, size_t n, struct mars_fbuild *fb,
               struct mars_arena *arena)
{
    size_t at;
    if (strcmp(what, "validate") == 0)
        return mars_json_validate(s, n, MARS_JSON_MAX_DEPTH, &at) == MARS_JSON_OK ? 0 : 1;
    if (strcmp(what, "parse") == 0) {
        mars_fbuild_reset(fb, arena);
        return mars_json_parse(s, n, 64, fb, 0, &at) == MARS_JSON_OK ? 0 : 1;
    }
    if (strcmp(what, "parse-utf8") == 0) { /* as parse json does on a file source's lines */
        mars_fbuild_reset(fb, arena);
        return mars_json_parse_opts(s, n, 64, fb, 0, MARS_JSON_VALID_UTF8, &at) == MARS_JSON_OK ? 0
                                                                                                : 1;
    }
    json_error_t e;
    json_t *j = json_loadb(s, n, 0, &e);
    if (!j)
        return 1;
    json_decref(j);
    return 0;
}

int main(int argc, char **argv)
{
    size_t max = 0;
    if (argc == 5 && strcmp(argv[3], "-m") == 0)
        max = (size_t)atol(argv[4]) << 20;
    else if (argc != 3)
        goto usage;
    const char *what = argv[2];
    if (strcmp(what, "validate") && strcmp(what, "parse") && strcmp(what, "parse-utf8") &&
        strcmp(what, "jansson"))
        goto usage;
    struct input in = {0};
    int rc = load(argv[1], max, &in);
    if (rc) {
        fprintf(stderr, "json_scan: %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    struct mars_fbuild fb;
    struct mars_arena arena;
    mars_fbuild_init(&fb);
    mars_arena_init(&arena);
    unsigned long long lines = 0, errors = 0;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    for (size_t pos = 0; pos < in.len;) {
        char *nl = memchr(in.buf + pos, '\n', in.len - pos);
        size_t n = (size_t)(nl - in.buf) - pos;
        errors += (unsigned)one(what, in.buf + pos, n, &fb, &arena);
        lines++;
        pos += n + 1;
        if ((lines & 1023) == 0)
            mars_arena_fini(&arena); /* as a batch would: decoded keys go with it */
    }
    double wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &r1);
    mars_arena_fini(&arena);
    mars_fbuild_fini(&fb);
    printf("lines %llu bytes %zu errors %llu wall_s %.6f user_s %.6f sys_s %.6f maxrss_kib %ld\n",
           lines, in.len, errors, wall, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
           tv_s(r1.ru_stime) - tv_s(r0.ru_stime), r1.ru_maxrss);
    free(in.buf);
    return 0;
usage:
    fprintf(stderr, "usage: json_scan FILE validate|parse|parse-utf8|jansson [-m MAX_MIB]\n");
    return 2;
}
