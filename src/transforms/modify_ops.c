/*
 * modify_ops.c - the data path of `modify`: each operation on one event (see modify.c for
 * the order and the rules). Values are read with mars_fields_get(), written back with
 * mars_fields_set(); new bytes go to the batch arena only when they differ from bytes that
 * already exist.
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "modify_internal.h"
#include "component.h"

const char *const mars_modify_coerce_names[] = {"string", "int", "float", "bool", NULL};

int mars_modify_coerce_type(const char *name)
{
    for (int i = 0; mars_modify_coerce_names[i]; i++)
        if (strcmp(name, mars_modify_coerce_names[i]) == 0)
            return i;
    return -1;
}

bool mars_modify_paths_overlap(const char *a, const char *b)
{
    size_t at;
    const char *why;
    struct mars_path *pa = mars_path_compile(a, strlen(a), &at, &why);
    struct mars_path *pb = mars_path_compile(b, strlen(b), &at, &why);
    bool overlap = false;
    if (pa && pb) {
        uint32_t n = pa->n < pb->n ? pa->n : pb->n;
        overlap = true;
        for (uint32_t i = 0; i < n && overlap; i++)
            overlap = pa->seg[i].name && pb->seg[i].name && pa->seg[i].len == pb->seg[i].len &&
                      memcmp(pa->seg[i].name, pb->seg[i].name, pa->seg[i].len) == 0;
    }
    mars_path_destroy(pa);
    mars_path_destroy(pb);
    return overlap;
}

void mars_modify_free(struct mars_modify *md)
{
    for (size_t i = 0; i < md->nrename; i++) {
        mars_path_destroy(md->rename[i].from);
        mars_path_destroy(md->rename[i].to);
    }
    for (size_t i = 0; i < md->ncopy; i++) {
        mars_path_destroy(md->copy[i].from);
        mars_path_destroy(md->copy[i].to);
    }
    for (size_t i = 0; i < md->nset; i++) {
        mars_path_destroy(md->set[i].path);
        mars_template_destroy(md->set[i].tpl);
    }
    for (size_t i = 0; i < md->ncoerce; i++)
        mars_path_destroy(md->coerce[i].path);
    for (size_t i = 0; i < md->ntrunc; i++)
        mars_path_destroy(md->trunc[i].path);
    for (size_t i = 0; i < md->nlower; i++)
        mars_path_destroy(md->lower[i]);
    for (size_t i = 0; i < md->nupper; i++)
        mars_path_destroy(md->upper[i]);
    for (size_t i = 0; i < md->nremove; i++)
        mars_path_destroy(md->remove[i]);
    free(md->rename);
    free(md->copy);
    free(md->set);
    free(md->coerce);
    free(md->trunc);
    free(md->lower);
    free(md->upper);
    free(md->remove);
    free(md->scratch);
    free(md);
}

static void count_error(struct mars_modify *md)
{
    mars_stat_add(&mars_transform_stats(md->t)->errors[MARS_ERR_CONVERT], 1);
}

static void done(struct mars_modify *md, int rc)
{
    if (rc && rc != -ENOENT)
        count_error(md);
}

static void set_one(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev,
                    const struct mars_modify_set *s)
{
    const char *v = s->literal;
    uint32_t len = s->lit_len;
    if (!v) {
        int n = mars_template_render(s->tpl, ev, md->render, sizeof(md->render));
        char *d = n >= 0 ? mars_arena_strndup(&b->arena, md->render, (size_t)n) : NULL;
        if (!d) {
            count_error(md);
            return;
        }
        v = d;
        len = (uint32_t)n;
    }
    done(md, mars_fields_set(b, ev, s->path, MARS_FIELD_STRING, v, len, 0));
}

/* ---- coerce ---- */

static bool number_chars(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", s[i]))
            return false;
    return n > 0;
}

/* A NUMBER value for text s: s itself when it is already valid JSON of that type, else the
 * number written again (shortest form that reads back the same) in the arena. */
static int to_number(struct mars_batch *b, const char *s, uint32_t n, bool integer,
                     const char **out, uint32_t *out_len)
{
    char buf[64], fmt[48], *end;
    int len;
    if (!number_chars(s, n) || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (integer) {
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end || errno)
            return -EINVAL;
        len = snprintf(fmt, sizeof(fmt), "%lld", v);
    } else {
        double v = strtod(buf, &end);
        if (*end || !isfinite(v))
            return -EINVAL;
        if (mars_json_validate(s, n, 1, NULL) == MARS_JSON_OK) {
            *out = s;
            *out_len = n;
            return 0;
        }
        len = snprintf(fmt, sizeof(fmt), "%.15g", v);
        if (strtod(fmt, NULL) != v)
            len = snprintf(fmt, sizeof(fmt), "%.17g", v);
    }
    if ((uint32_t)len == n && memcmp(fmt, s, n) == 0) {
        *out = s;
        *out_len = n;
        return 0;
    }
    char *d = mars_arena_strndup(&b->arena, fmt, (size_t)len);
    if (!d)
        return -ENOMEM;
    *out = d;
    *out_len = (uint32_t)len;
    return 0;
}

static int to_bool(const char *s, uint32_t n, const char **out, uint32_t *out_len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (n == strlen(yes[i]) && strncasecmp(s, yes[i], n) == 0) {
            *out = "true", *out_len = 4;
            return 0;
        }
        if (n == strlen(no[i]) && strncasecmp(s, no[i], n) == 0) {
            *out = "false", *out_len = 5;
            return 0;
        }
    }
    return -EINVAL;
}

static void coerce_one(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev,
                       const struct mars_modify_coerce *c)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, c->path, &v))
        return;
    if (v.kind == MARS_FIELD_OBJECT || v.kind == MARS_FIELD_ARRAY) {
        count_error(md);
        return;
    }
    const char *s = mars_value_text_arena(&v, &b->arena, &len), *out = NULL;
    uint32_t out_len = 0;
    enum mars_field_kind kind = MARS_FIELD_STRING;
    int rc = s ? 0 : -ENOMEM;
    if (rc == 0 && c->type == MARS_COERCE_STRING) {
        out = s, out_len = len;
    } else if (rc == 0 && c->type == MARS_COERCE_BOOL) {
        kind = MARS_FIELD_BOOL;
        rc = to_bool(s, len, &out, &out_len);
    } else if (rc == 0) {
        kind = MARS_FIELD_NUMBER;
        rc = to_number(b, s, len, c->type == MARS_COERCE_INT, &out, &out_len);
    }
    if (rc == 0 && v.kind == kind && out == v.ptr)
        return; /* already that */
    done(md, rc ? rc : mars_fields_replace(b, ev, c->path, &v, kind, out, out_len, 0));
}

/* ---- case and truncation ---- */

static void change_case(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev,
                        const struct mars_path *p, bool upper)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, p, &v) || v.kind != MARS_FIELD_STRING)
        return;
    const char *s = mars_value_text(&v, &md->scratch, &md->scap, &len);
    if (!s) {
        count_error(md);
        return;
    }
    char lo = upper ? 'a' : 'A', hi = upper ? 'z' : 'Z';
    uint32_t i = 0;
    while (i < len && !(s[i] >= lo && s[i] <= hi))
        i++;
    if (i == len)
        return; /* nothing to change: no copy */
    char *d = mars_arena_alloc(&b->arena, len ? len : 1);
    if (!d) {
        count_error(md);
        return;
    }
    for (uint32_t k = 0; k < len; k++)
        d[k] = s[k] >= lo && s[k] <= hi ? (char)(s[k] ^ 0x20) : s[k];
    done(md, mars_fields_replace(b, ev, p, &v, MARS_FIELD_STRING, d, len, 0));
}

static void truncate_one(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev,
                         const struct mars_modify_trunc *t)
{
    struct mars_value v;
    uint32_t len;
    if (!mars_fields_get(ev, t->path, &v) || v.kind != MARS_FIELD_STRING)
        return;
    if (!(v.flags & MARS_FF_ESCAPED) && v.len <= t->max)
        return;
    const char *s = mars_value_text_arena(&v, &b->arena, &len);
    if (!s) {
        count_error(md);
        return;
    }
    if (len <= t->max) {
        if (s != v.ptr) /* decoded, still short enough */
            done(md, mars_fields_replace(b, ev, t->path, &v, MARS_FIELD_STRING, s, len, 0));
        return;
    }
    uint32_t cut = t->max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--; /* do not split a UTF-8 sequence */
    if (t->slen) {
        char *d = mars_arena_alloc(&b->arena, (size_t)cut + t->slen);
        if (!d) {
            count_error(md);
            return;
        }
        memcpy(d, s, cut);
        memcpy(d + cut, t->suffix, t->slen);
        s = d;
    }
    done(md, mars_fields_replace(b, ev, t->path, &v, MARS_FIELD_STRING, s, cut + t->slen, 0));
}

void mars_modify_event(struct mars_modify *md, struct mars_batch *b, struct mars_event *ev)
{
    for (size_t i = 0; i < md->nrename; i++)
        done(md, mars_fields_move(b, ev, md->rename[i].from, md->rename[i].to, false));
    for (size_t i = 0; i < md->ncopy; i++)
        done(md, mars_fields_move(b, ev, md->copy[i].from, md->copy[i].to, true));
    for (size_t i = 0; i < md->nset; i++)
        set_one(md, b, ev, &md->set[i]);
    for (size_t i = 0; i < md->ncoerce; i++)
        coerce_one(md, b, ev, &md->coerce[i]);
    for (size_t i = 0; i < md->nlower; i++)
        change_case(md, b, ev, md->lower[i], false);
    for (size_t i = 0; i < md->nupper; i++)
        change_case(md, b, ev, md->upper[i], true);
    for (size_t i = 0; i < md->ntrunc; i++)
        truncate_one(md, b, ev, &md->trunc[i]);
    for (size_t i = 0; i < md->nremove; i++)
        done(md, mars_fields_remove(b, ev, md->remove[i]));
}
