/*
 * expect.h - helpers for runtime tests of transforms: set up the test-only components
 * (capture sink, lines source), and compare what a capture sink holds with the exact
 * expected events, printing every difference before failing.
 */
#ifndef MARS_TEST_EXPECT_H
#define MARS_TEST_EXPECT_H

#include <stddef.h>

struct mars_stats;

/* Quiet logs, `capture` and `lines` registered, capture stores cleared. */
int mars_expect_setup(void **state);
/* Runs one pipeline to completion on one worker: source `in` (type lines, the YAML flow
 * list `lines`, extra source options in `src_opts` or NULL), the transforms section
 * `transforms` (YAML lines, each indented by two spaces), and sink `cap` (capture, json)
 * reading `cap_input`. Stats of node `stats_of` go to *st when both are given. */
void mars_expect_run(const char *lines, const char *src_opts, const char *transforms,
                     const char *cap_input, const char *stats_of, struct mars_stats *st);
/* Fails the test unless capture `id` holds exactly the n strings of want, in order. */
void mars_expect_capture(const char *id, const char *const *want, size_t n);
#define MARS_EXPECT(id, ...)                                                                       \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        mars_expect_capture((id), want_, sizeof(want_) / sizeof(want_[0]));                        \
    } while (0)

#endif
