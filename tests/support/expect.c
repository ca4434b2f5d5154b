/*
 * expect.c - exact comparison of captured events for runtime tests (see expect.h).
 */
#include "expect.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "component.h"
#include "core/log.h"
#include "lines_source.h"

int mars_expect_setup(void **state)
{
    (void)state;
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_capture_setup();
    mars_lines_source_setup();
    return 0;
}

void mars_expect_capture(const char *id, const char *const *want, size_t n)
{
    size_t got = mars_capture_count(id), bad = 0;
    for (size_t i = 0; i < n || i < got; i++) {
        const char *g = i < got ? mars_capture_get(id, i) : NULL;
        const char *w = i < n ? want[i] : NULL;
        if (g && w && strcmp(g, w) == 0)
            continue;
        bad++;
        fprintf(stderr, "%s[%zu]:\n  want: %s\n  got:  %s\n", id, i, w ? w : "(nothing)",
                g ? g : "(nothing)");
    }
    if (bad)
        fail_msg("%s: %zu of %zu events differ (got %zu events)", id, bad, n, got);
}

void mars_expect_run(const char *lines, const char *src_opts, const char *transforms,
                     const char *cap_input, const char *stats_of, struct mars_stats *st)
{
    size_t len = strlen(lines) + strlen(transforms) + (src_opts ? strlen(src_opts) : 0) + 512;
    char *yaml = malloc(len);
    struct mars_stats local;
    assert_non_null(yaml);
    snprintf(yaml, len,
             "sources:\n"
             "  in: {type: lines, lines: %s%s%s}\n"
             "transforms:\n"
             "%s\n"
             "sinks:\n"
             "  cap: {type: capture, inputs: [%s], encoding: json}\n",
             lines, src_opts ? ", " : "", src_opts ? src_opts : "", transforms, cap_input);
    int rc = mars_test_run(yaml, 1, stats_of, st ? st : &local);
    if (rc)
        fprintf(stderr, "pipeline:\n%s", yaml);
    free(yaml);
    assert_int_equal(rc, 0);
}
