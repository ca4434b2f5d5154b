/*
 * diag.c - collected diagnostics for config loading and validation.
 *
 * How it works: every message is formatted once, with its "FILE:LINE:COL: " prefix, into a
 * heap string appended to a growable array. Loading and validation keep going after an error
 * so that `mars validate` can show every problem at once; the array stops growing at `max`
 * messages so that a badly broken file cannot flood the terminal or memory.
 *
 * Invariants: n <= cap; msgs[0..n) hold owned, NUL-terminated texts. An allocation failure
 * drops that one message (the caller's own error count still makes the load fail).
 *
 * Thread: whichever thread loads the config (the control thread); a diag is not shared.
 */
#include "core/diag.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

#define MARS_DIAG_DEFAULT_MAX 50

void mars_diag_init(struct mars_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void mars_diag_fini(struct mars_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msgs[i].text);
    free(d->msgs);
    d->msgs = NULL;
    d->n = d->cap = d->dropped = 0;
}

/* Makes room for one more message; 0 or -1 when full or out of memory. */
static int diag_reserve(struct mars_diag *d)
{
    size_t max = d->max ? d->max : MARS_DIAG_DEFAULT_MAX;

    if (d->n >= max) {
        d->dropped++;
        return -1;
    }
    return mars_grow(&d->msgs, &d->cap, d->n + 1, sizeof(*d->msgs)) ? -1 : 0;
}

void mars_diag_addv(struct mars_diag *d, const char *file, int line, int col, const char *fmt,
                    va_list ap)
{
    char prefix[64];
    char *msg = NULL;
    char *text = NULL;

    if (diag_reserve(d) < 0)
        return;
    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    if (line > 0 && col > 0)
        snprintf(prefix, sizeof(prefix), ":%d:%d", line, col);
    else if (line > 0)
        snprintf(prefix, sizeof(prefix), ":%d", line);
    else
        prefix[0] = '\0';
    if (asprintf(&text, "%s%s: %s", file ? file : "<config>", prefix, msg) < 0)
        text = NULL;
    free(msg);
    if (text)
        d->msgs[d->n++].text = text;
}

void mars_diag_add(struct mars_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mars_diag_addv(d, file, line, col, fmt, ap);
    va_end(ap);
}

size_t mars_diag_count(const struct mars_diag *d)
{
    return d->n;
}

void mars_diag_print(const struct mars_diag *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(f, "%s\n", d->msgs[i].text);
    if (d->dropped)
        fprintf(f, "(%zu more problem%s not shown)\n", d->dropped, d->dropped == 1 ? "" : "s");
}

size_t mars_diag_total(const struct mars_diag *d)
{
    return d->n + d->dropped;
}
