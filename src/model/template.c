/*
 * template.c - compile and render templates (see template.h).
 *
 * Compiling splits the text into parts: literal runs, which may contain strftime '%'
 * conversions (rendered with strftime on the event time), and expressions between {{ }}
 * (field paths and functions, template_expr.c), compiled once. Rendering walks the parts
 * into the caller's buffer; nothing is allocated per event. A field renders as its text:
 * strings decoded, numbers, booleans and null as written, arrays and objects inside arrays
 * as their JSON text, other objects as nothing.
 */
#include "model/template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "model/fields.h"
#include "model/template_internal.h"

enum part_kind { PART_TEXT, PART_FIELD };

struct part {
    enum part_kind kind;
    char *s; /* literal (strftime format when has_pct) or the expression's text */
    bool has_pct;
    struct mars_texpr *x; /* PART_FIELD */
};

struct mars_template {
    struct part *parts;
    size_t n, cap;
    bool has_time, has_field;
    unsigned flags;
};

/* Adds a literal part, or (x non-NULL, taken over) an expression part. */
static int add_part(struct mars_template *t, enum part_kind k, const char *s, size_t len,
                    struct mars_texpr *x)
{
    if (mars_grow(&t->parts, &t->cap, t->n + 1, sizeof(*t->parts))) {
        mars_texpr_destroy(x);
        return -ENOMEM;
    }
    struct part *p = t->parts;
    p[t->n].kind = k;
    p[t->n].s = strndup(s, len);
    p[t->n].x = x;
    if (!p[t->n].s) {
        mars_texpr_destroy(x);
        return -ENOMEM;
    }
    p[t->n].has_pct = k == PART_TEXT && memchr(s, '%', len) != NULL;
    t->has_time |= p[t->n].has_pct;
    t->has_field |= k == PART_FIELD;
    t->n++;
    return 0;
}

struct mars_template *mars_template_compile(const char *text, unsigned flags, char *err,
                                            size_t errlen)
{
    struct mars_template *t = calloc(1, sizeof(*t));
    const char *p = text;
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->flags = flags;
    while (*p) {
        const char *open = strstr(p, "{{");
        size_t lit = open ? (size_t)(open - p) : strlen(p);
        if (lit && add_part(t, PART_TEXT, p, lit, NULL))
            goto oom;
        if (!open)
            break;
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(err, errlen, "unclosed '{{' at offset %zu", (size_t)(open - text));
            goto fail;
        }
        const char *a = open + 2, *b = close;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        char why[200];
        struct mars_texpr *x = mars_texpr_compile(a, (size_t)(b - a), why, sizeof(why));
        if (!x) {
            snprintf(err, errlen, "in '{{%.*s}}' at offset %zu: %s", (int)(close - open - 2),
                     open + 2, (size_t)(open - text), why);
            goto fail;
        }
        if (add_part(t, PART_FIELD, a, (size_t)(b - a), x))
            goto oom;
        p = close + 2;
    }
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    mars_template_destroy(t);
    return NULL;
}

void mars_template_destroy(struct mars_template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->parts[i].s);
        mars_texpr_destroy(t->parts[i].x);
    }
    free(t->parts);
    free(t);
}

bool mars_template_is_dynamic(const struct mars_template *t)
{
    return t->has_time || t->has_field;
}

bool mars_template_time_only(const struct mars_template *t)
{
    return !t->has_field;
}

static void make_path_safe(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\0' || (i == 0 && s[i] == '.'))
            s[i] = '_';
}

int mars_template_render(const struct mars_template *t, const struct mars_event *ev, char *out,
                         size_t outlen)
{
    return mars_template_render_typed(t, ev, out, outlen, NULL);
}

int mars_template_render_typed(const struct mars_template *t, const struct mars_event *ev,
                               char *out, size_t outlen, enum mars_field_kind *kind)
{
    int k = MARS_FIELD_STRING;
    size_t len = 0;
    struct tm tm;
    time_t sec = (time_t)(ev->ts_ns / 1000000000);

    if (t->has_time)
        gmtime_r(&sec, &tm);
    for (size_t i = 0; i < t->n; i++) {
        const struct part *p = &t->parts[i];
        size_t n;
        if (p->kind == PART_FIELD) {
            size_t at = len;
            if (mars_texpr_eval(p->x, ev, out, outlen, &len, &k))
                return -ENAMETOOLONG;
            if (t->flags & MARS_TEMPLATE_PATH)
                make_path_safe(out + at, len - at);
            continue;
        } else if (p->has_pct) {
            n = strftime(out + len, outlen - len, p->s, &tm);
            if (n == 0 && p->s[0])
                return -ENAMETOOLONG;
        } else {
            n = strlen(p->s);
            if (len + n >= outlen)
                return -ENAMETOOLONG;
            memcpy(out + len, p->s, n);
        }
        len += n;
    }
    if (len >= outlen)
        return -ENAMETOOLONG;
    out[len] = '\0';
    if (kind) /* one expression alone keeps its kind; anything around it makes a string */
        *kind = t->n == 1 && t->parts[0].kind == PART_FIELD && k != MARS_TEXPR_ABSENT
                    ? (enum mars_field_kind)k
                    : MARS_FIELD_STRING;
    return (int)len;
}
