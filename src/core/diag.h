/*
 * diag.h - collected diagnostics ("FILE:LINE:COL: message") for config loading and
 * validation. Loading does not stop at the first problem: every error found is added here,
 * and `mars validate` prints them all. Messages are owned by the diag.
 */
#ifndef MARS_DIAG_H
#define MARS_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct mars_diag_msg {
    char *text; /* "FILE:LINE:COL: message", owned */
};

struct mars_diag {
    struct mars_diag_msg *msgs;
    size_t n, cap;
    size_t max;     /* stop collecting after this many (0 = 50) */
    size_t dropped; /* problems past max: counted, not kept */
};

void mars_diag_init(struct mars_diag *d);
void mars_diag_fini(struct mars_diag *d);
/* Adds "file:line:col: message". file may be NULL (then "<config>"); line/col 0 are omitted. */
void mars_diag_add(struct mars_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Same with a va_list, for callers that wrap mars_diag_add in their own variadic helper. */
void mars_diag_addv(struct mars_diag *d, const char *file, int line, int col, const char *fmt,
                    va_list ap) __attribute__((format(printf, 5, 0)));
/* Messages kept (at most max), and every problem reported including those past max. */
size_t mars_diag_count(const struct mars_diag *d);
size_t mars_diag_total(const struct mars_diag *d);
/* Prints every message, one per line, to f, then how many more were not kept. */
void mars_diag_print(const struct mars_diag *d, FILE *f);

#endif
