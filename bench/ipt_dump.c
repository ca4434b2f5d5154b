/*
 * ipt_dump.c - how long one read of the iptables source takes: runs the nft or the legacy
 * reader (src/sources/iptables) N times in this process's network namespace and prints the
 * median CPU time and wall time of one dump, and the series it found.
 *
 * Run it through bench/iptables.sh, which builds a kube-proxy-sized ruleset (10,000 rules
 * with comments and counters) in a private network namespace first:
 *   bench/iptables.sh [build-dir]          (default build/)
 * By hand, in a namespace that has rules: build/ipt_dump_bench nft|legacy [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sources/iptables/ipt_internal.h"

static int64_t ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "nft") != 0 && strcmp(argv[1], "legacy") != 0)) {
        fprintf(stderr, "usage: %s nft|legacy [RUNS]\n", argv[0]);
        return 2;
    }
    bool nft = strcmp(argv[1], "nft") == 0;
    int runs = argc > 2 ? atoi(argv[2]) : 11;
    if (runs < 1 || runs > 1000)
        runs = 11;
    struct ipt_filter f = {.max_series = 1000000};
    int64_t *cpu = calloc((size_t)runs, sizeof(*cpu)), *wall = calloc((size_t)runs, sizeof(*wall));
    size_t series = 0;
    for (int i = 0; i < runs; i++) {
        struct ipt_dump *d = mars_iptables_dump_create();
        int64_t c0 = ns_of(CLOCK_THREAD_CPUTIME_ID), w0 = ns_of(CLOCK_MONOTONIC);
        if (nft)
            mars_iptables_nft_dump(d, &f, true);
        else
            mars_iptables_legacy_dump(d, &f, false);
        cpu[i] = ns_of(CLOCK_THREAD_CPUTIME_ID) - c0;
        wall[i] = ns_of(CLOCK_MONOTONIC) - w0;
        if (d->err) {
            fprintf(stderr, "%s\n", d->why);
            return 1;
        }
        series = d->n;
        mars_iptables_dump_destroy(d);
    }
    qsort(cpu, (size_t)runs, sizeof(*cpu), cmp);
    qsort(wall, (size_t)runs, sizeof(*wall), cmp);
    printf("%s: %zu series, one dump: cpu %.1f ms (min %.1f, max %.1f), wall %.1f ms (min %.1f, "
           "max %.1f), %d runs\n",
           argv[1], series, cpu[runs / 2] / 1e6, cpu[0] / 1e6, cpu[runs - 1] / 1e6,
           wall[runs / 2] / 1e6, wall[0] / 1e6, wall[runs - 1] / 1e6, runs);
    free(cpu);
    free(wall);
    return 0;
}
