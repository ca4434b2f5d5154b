/*
 * template.c - compile and render templates (see template.h).
 *
 * Compiling splits the text into parts: literal runs, which may contain strftime '%'
 * conversions (rendered with strftime on the event time), and field paths (fields.h),
 * compiled once. Rendering walks the parts into the caller's buffer; nothing is allocated
 * per event. A field renders as its text: strings decoded, numbers, booleans and null as
 * written, arrays and objects inside arrays as their JSON text, other objects as nothing.
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
#include "model/json.h"

enum part_kind { PART_TEXT, PART_FIELD };

struct part {
    enum part_kind kind;
    char *s; /* literal (strftime format when has_pct) or field name */
    bool has_pct;
    struct mars_path *path; /* PART_FIELD */
};

struct mars_template {
    struct part *parts;
    size_t n, cap;
    bool has_time, has_field;
    unsigned flags;
};

static int add_part(struct mars_template *t, enum part_kind k, const char *s, size_t len)
{
    if (mars_grow(&t->parts, &t->cap, t->n + 1, sizeof(*t->parts)))
        return -ENOMEM;
    struct part *p = t->parts;
    p[t->n].kind = k;
    p[t->n].s = strndup(s, len);
    if (!p[t->n].s)
        return -ENOMEM;
    p[t->n].has_pct = k == PART_TEXT && memchr(s, '%', len) != NULL;
    p[t->n].path = NULL;
    if (k == PART_FIELD) {
        size_t at;
        const char *why;
        p[t->n].path = mars_path_compile(s, len, &at, &why);
        if (!p[t->n].path) {
            free(p[t->n].s);
            return -EINVAL;
        }
    }
    t->has_time |= p[t->n].has_pct;
    t->has_field |= k == PART_FIELD;
    t->n++;
    return 0;
}

static bool field_name_ok(const char *s, size_t n)
{
    size_t at;
    const char *why;
    struct mars_path *p = n ? mars_path_compile(s, n, &at, &why) : NULL;
    bool ok = p && p->n > 0;
    mars_path_destroy(p);
    return ok;
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
        if (lit && add_part(t, PART_TEXT, p, lit))
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
        if (!field_name_ok(a, (size_t)(b - a))) {
            snprintf(err, errlen, "bad field name '%.*s' at offset %zu", (int)(close - open - 2),
                     open + 2, (size_t)(open - text));
            goto fail;
        }
        if (add_part(t, PART_FIELD, a, (size_t)(b - a)))
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
        mars_path_destroy(t->parts[i].path);
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

static const char *hostname(void)
{
    static char host[256];
    if (!host[0] && gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "localhost");
    return host;
}

/* Appends the text of field p to out at *len. Event fields win over `host` (this
 * machine's name), which is only a fallback. Returns 0 or -ENAMETOOLONG. */
static int field(const struct mars_event *ev, const struct part *p, char *out, size_t outlen,
                 size_t *len)
{
    struct mars_value v;
    const char *s = "";
    size_t n = 0;
    if (mars_fields_get(ev, p->path, &v)) {
        if (v.kind == MARS_FIELD_OBJECT && !(v.flags & MARS_FF_RAW))
            return 0;
        s = v.ptr;
        n = v.len;
        if (v.flags & MARS_FF_ESCAPED) {
            if (*len + n >= outlen)
                return -ENAMETOOLONG; /* decoding never grows */
            *len += mars_json_unescape(v.ptr, v.len, out + *len);
            return 0;
        }
    } else if (mars_path_is(p->path, "host")) {
        s = hostname();
        n = strlen(s);
    }
    if (*len + n >= outlen)
        return -ENAMETOOLONG;
    memcpy(out + *len, s, n);
    *len += n;
    return 0;
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
            if (field(ev, p, out, outlen, &len))
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
    out[len] = '\0';
    return (int)len;
}
