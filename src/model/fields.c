/*
 * fields.c - event fields: paths, lookup, edits with copy on write, and the parser-side
 * builder (see fields.h for the model).
 *
 * Lookups walk member chains from the root comparing length, then bytes: events carry tens
 * of fields, so a chain walk beats hashing and needs no index to maintain. Inside arrays
 * (and raw objects) the JSON text is read in place by json.c.
 *
 * Edits first make the array writable in the batch's arena (copying it when another arena
 * owns it, or when it is full: arena memory is never reallocated, so growth copies to a
 * block twice the size and leaves the old one to be freed with the batch). All work is by
 * index, since growing moves the array.
 *
 * The parser-side builder and the merge of its output live in fields_build.c.
 *
 * Thread: the worker that owns the batch.
 */
#include "model/fields.h"

#include "model/fields_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/grow.h"

#include "model/json.h"
#include "model/timefmt.h"

const char *mars_field_kind_name(enum mars_field_kind k)
{
    static const char *const names[] = {"string", "number", "bool", "null", "object", "array"};
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

/* ---- paths ---- */

static bool ident_start(unsigned char c, bool digits)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@' || c == '$' ||
           (digits && c >= '0' && c <= '9');
}

static bool ident_char(unsigned char c)
{
    return ident_start(c, true) || c == '-';
}

struct path_parse {
    const char *s;
    size_t len, i;
    struct mars_path_seg seg[64];
    uint32_t n;
    char *names; /* decoded quoted names, in the caller's allocation */
    size_t names_len;
    const char *why;
};

static bool quoted_segment(struct path_parse *pp)
{
    size_t start = ++pp->i, out = pp->names_len;
    while (pp->i < pp->len && pp->s[pp->i] != '"') {
        char c = pp->s[pp->i];
        if (c == '\\') {
            if (pp->i + 1 >= pp->len || (pp->s[pp->i + 1] != '"' && pp->s[pp->i + 1] != '\\')) {
                pp->why = "only \\\" and \\\\ escapes are allowed in a quoted field name";
                return false;
            }
            c = pp->s[++pp->i];
        }
        if (pp->names)
            pp->names[pp->names_len] = c;
        pp->names_len++;
        pp->i++;
    }
    if (pp->i >= pp->len) {
        pp->i = start - 1;
        pp->why = "unterminated quoted field name";
        return false;
    }
    pp->i++;
    pp->seg[pp->n].name = pp->names ? pp->names + out : "";
    pp->seg[pp->n].len = (uint32_t)(pp->names_len - out);
    pp->n++;
    return true;
}

static bool index_segment(struct path_parse *pp)
{
    uint64_t v = 0;
    size_t start = ++pp->i;
    while (pp->i < pp->len && pp->s[pp->i] >= '0' && pp->s[pp->i] <= '9' && v < UINT32_MAX)
        v = v * 10 + (uint64_t)(pp->s[pp->i++] - '0');
    if (pp->i == start || pp->i >= pp->len || pp->s[pp->i] != ']' || v >= UINT32_MAX) {
        pp->why = "expected an array index like [0]";
        return false;
    }
    pp->i++;
    pp->seg[pp->n].name = NULL;
    pp->seg[pp->n].len = 0;
    pp->seg[pp->n].index = (uint32_t)v;
    pp->n++;
    return true;
}

/* One pass; with names == NULL it only measures. */
static bool path_scan(struct path_parse *pp, bool prefix)
{
    pp->i = pp->n = 0;
    pp->names_len = 0;
    if (pp->len > 0 && pp->s[0] == '.')
        pp->i++;
    if (pp->i == pp->len && !prefix)
        return true; /* "" or "." : the root */
    for (;;) {
        if (pp->n >= 63) {
            pp->why = "path has too many segments";
            return false;
        }
        unsigned char c = pp->i < pp->len ? (unsigned char)pp->s[pp->i] : 0;
        if (c == '"') {
            if (!quoted_segment(pp))
                return false;
        } else if (pp->i < pp->len && ident_start(c, !prefix)) {
            size_t st = pp->i;
            while (pp->i < pp->len && ident_char((unsigned char)pp->s[pp->i]))
                pp->i++;
            pp->seg[pp->n].name = pp->s + st;
            pp->seg[pp->n].len = (uint32_t)(pp->i - st);
            pp->n++;
        } else {
            pp->why = "expected a field name";
            return false;
        }
        while (pp->i < pp->len && pp->s[pp->i] == '[') {
            if (pp->n >= 63) {
                pp->why = "path has too many segments";
                return false;
            }
            if (!index_segment(pp))
                return false;
        }
        if (pp->i < pp->len && pp->s[pp->i] == '.') {
            pp->i++;
            continue;
        }
        break;
    }
    if (!prefix && pp->i < pp->len) {
        pp->why = "unexpected character in field path";
        return false;
    }
    return true;
}

static struct mars_path *path_compile(const char *s, size_t len, bool prefix, size_t *used,
                                      size_t *err_at, const char **why)
{
    struct path_parse pp = {.s = s, .len = len};
    if (!path_scan(&pp, prefix)) {
        *err_at = pp.i;
        *why = pp.why;
        return NULL;
    }
    size_t consumed = pp.i;
    size_t segs = (size_t)pp.n * sizeof(struct mars_path_seg);
    struct mars_path *p = malloc(sizeof(*p) + segs + pp.names_len + consumed + 2);
    if (!p) {
        *err_at = 0;
        *why = "out of memory";
        return NULL;
    }
    char *names = (char *)p->seg + segs;
    pp.names = names;
    path_scan(&pp, prefix); /* again, now decoding quoted names into place */
    /* unquoted names point at the caller's text: move them to our copy */
    p->text = names + pp.names_len;
    memcpy(p->text, s, consumed);
    p->text[consumed] = '\0';
    p->n = pp.n;
    for (uint32_t k = 0; k < pp.n; k++) {
        p->seg[k] = pp.seg[k];
        if (p->seg[k].name && p->seg[k].name >= s && p->seg[k].name < s + len)
            p->seg[k].name = p->text + (p->seg[k].name - s);
    }
    p->special = 0;
    if (p->n == 1 && p->seg[0].name && p->seg[0].len == 7 &&
        memcmp(p->seg[0].name, "message", 7) == 0)
        p->special = MARS_PATH_MESSAGE;
    if (used)
        *used = consumed;
    return p;
}

struct mars_path *mars_path_compile(const char *s, size_t len, size_t *err_at, const char **why)
{
    return path_compile(s, len, false, NULL, err_at, why);
}

struct mars_path *mars_path_compile_prefix(const char *s, size_t len, size_t *used, size_t *err_at,
                                           const char **why)
{
    return path_compile(s, len, true, used, err_at, why);
}

void mars_path_destroy(struct mars_path *p)
{
    free(p);
}

bool mars_path_has_index(const struct mars_path *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (!p->seg[i].name)
            return true;
    return false;
}

bool mars_path_is(const struct mars_path *p, const char *name)
{
    if (name[0] == 'm' && strcmp(name, "message") == 0)
        return p && p->special == MARS_PATH_MESSAGE;
    size_t n = strlen(name);
    return p && p->n == 1 && p->seg[0].name && p->seg[0].len == n &&
           memcmp(p->seg[0].name, name, n) == 0;
}

/* ---- lookup ---- */

uint32_t mars_fields_member(const struct mars_fields *f, uint32_t obj, const char *key,
                            uint32_t key_len)
{
    if (key_len == 0) {
        for (uint32_t i = f->v[obj].first; i != MARS_FIELD_NIL; i = f->v[i].next)
            if (f->v[i].key_len == 0)
                return i;
        return MARS_FIELD_NIL;
    }
    for (uint32_t i = f->v[obj].first; i != MARS_FIELD_NIL; i = f->v[i].next) {
        const struct mars_field *e = &f->v[i];
        /* length and first byte settle most mismatches without a call */
        if (e->key_len == key_len && e->key[0] == key[0] && memcmp(e->key, key, key_len) == 0)
            return i;
    }
    return MARS_FIELD_NIL;
}

static void value_of_entry(const struct mars_fields *f, uint32_t parent, uint32_t idx,
                           struct mars_value *out)
{
    const struct mars_field *e = &f->v[idx];
    out->kind = e->kind;
    out->flags = e->flags;
    out->idx = idx;
    out->parent = parent;
    out->ptr = e->value;
    out->len = e->value_len;
}

/* Root member `message`, `timestamp` or `file` with no entry: the event itself. */
static bool synthesized(const struct mars_event *ev, const struct mars_path_seg *s,
                        struct mars_value *out)
{
    out->idx = MARS_FIELD_NIL;
    out->flags = 0;
    if (s->len == 7 && memcmp(s->name, "message", 7) == 0) {
        if (ev->flags & MARS_EVF_NO_MESSAGE)
            return false;
        out->kind = MARS_FIELD_STRING;
        out->ptr = ev->msg.ptr;
        out->len = ev->msg.len;
        return true;
    }
    if (s->len == 4 && memcmp(s->name, "file", 4) == 0 && ev->file) {
        out->kind = MARS_FIELD_STRING;
        out->ptr = ev->file;
        out->len = (uint32_t)strlen(ev->file);
        return true;
    }
    if (s->len == 4 && memcmp(s->name, "host", 4) == 0 && ev->host) {
        out->kind = MARS_FIELD_STRING;
        out->ptr = ev->host;
        out->len = (uint32_t)strlen(ev->host);
        return true;
    }
    if (s->len == 9 && memcmp(s->name, "timestamp", 9) == 0) {
        out->kind = MARS_FIELD_STRING;
        out->len = (uint32_t)mars_time_rfc3339(ev->ts_ns, out->buf);
        out->ptr = out->buf;
        return true;
    }
    return false;
}

/* One step down from *out (already filled) by segment s. */
static bool descend(const struct mars_fields *f, const struct mars_path_seg *s,
                    struct mars_value *out)
{
    struct mars_value next;
    if (out->idx != MARS_FIELD_NIL && out->kind == MARS_FIELD_OBJECT &&
        !(out->flags & MARS_FF_RAW)) {
        if (!s->name)
            return false;
        uint32_t m = mars_fields_member(f, out->idx, s->name, s->len);
        if (m == MARS_FIELD_NIL)
            return false;
        value_of_entry(f, out->idx, m, out);
        return true;
    }
    if (s->name && out->kind == MARS_FIELD_OBJECT) {
        if (!mars_json_object_get(out->ptr, out->len, s->name, s->len, &next))
            return false;
    } else if (!s->name && out->kind == MARS_FIELD_ARRAY) {
        if (!mars_json_array_at(out->ptr, out->len, s->index, &next))
            return false;
    } else {
        return false;
    }
    out->kind = next.kind;
    out->flags = next.flags;
    out->idx = MARS_FIELD_NIL;
    out->ptr = next.ptr;
    out->len = next.len;
    return true;
}

bool mars_fields_get(const struct mars_event *ev, const struct mars_path *p, struct mars_value *out)
{
    const struct mars_fields *f = ev->fields;
    if (p->n == 0) {
        if (!f)
            return false;
        value_of_entry(f, MARS_FIELD_NIL, 0, out);
        return true;
    }
    const struct mars_path_seg *s0 = &p->seg[0];
    if (!s0->name)
        return false;
    uint32_t m = f ? mars_fields_member(f, 0, s0->name, s0->len) : MARS_FIELD_NIL;
    if (m == MARS_FIELD_NIL)
        return p->n == 1 && synthesized(ev, s0, out);
    value_of_entry(f, 0, m, out);
    for (uint32_t i = 1; i < p->n; i++)
        if (!descend(f, &p->seg[i], out))
            return false;
    return true;
}

const char *mars_value_text(const struct mars_value *v, char **scratch, size_t *scap, uint32_t *len)
{
    if (v->kind == MARS_FIELD_OBJECT && !(v->flags & MARS_FF_RAW)) {
        *len = 0;
        return "";
    }
    if (!(v->flags & MARS_FF_ESCAPED)) {
        *len = v->len;
        return v->ptr;
    }
    if (mars_grow(scratch, scap, (size_t)v->len + 1, 1))
        return NULL;
    *len = (uint32_t)mars_json_unescape(v->ptr, v->len, *scratch);
    return *scratch;
}

const char *mars_value_text_arena(const struct mars_value *v, struct mars_arena *a, uint32_t *len)
{
    if (!(v->flags & MARS_FF_ESCAPED) || v->kind != MARS_FIELD_STRING) {
        char *none = NULL;
        size_t zero = 0;
        return mars_value_text(v, &none, &zero, len);
    }
    char *d = mars_arena_alloc(a, v->len);
    if (!d)
        return NULL;
    *len = (uint32_t)mars_json_unescape(v->ptr, v->len, d);
    return d;
}

bool mars_value_number(const struct mars_value *v, double *out)
{
    char buf[128];
    if ((v->kind != MARS_FIELD_NUMBER && v->kind != MARS_FIELD_STRING) ||
        (v->flags & MARS_FF_ESCAPED) || v->len == 0 || v->len >= sizeof(buf))
        return false;
    uint32_t k = v->ptr[0] == '-';
    int64_t n = 0;
    if (v->len - k >= 1 && v->len - k <= 15) { /* an integer: exact in a double, no strtod */
        while (k < v->len && v->ptr[k] >= '0' && v->ptr[k] <= '9')
            n = n * 10 + (v->ptr[k++] - '0');
        if (k == v->len) {
            *out = (double)(v->ptr[0] == '-' ? -n : n);
            return true;
        }
    }
    for (uint32_t i = 0; i < v->len; i++) {
        char c = v->ptr[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            return false;
    }
    memcpy(buf, v->ptr, v->len);
    buf[v->len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return end == buf + v->len;
}

/* ---- writing ---- */

void mars_fields_init_entry(struct mars_field *e, const char *key, uint32_t key_len,
                            enum mars_field_kind kind, const char *value, uint32_t len,
                            unsigned flags)
{
    *e = (struct mars_field){.key = key,
                             .key_len = key_len,
                             .value = value,
                             .value_len = len,
                             .first = MARS_FIELD_NIL,
                             .last = MARS_FIELD_NIL,
                             .next = MARS_FIELD_NIL,
                             .kind = (uint8_t)kind,
                             .flags = (uint8_t)flags};
}

/* Makes ev's fields editable in b's arena with room for `extra` more entries. */
struct mars_fields *mars_fields_writable(struct mars_batch *b, struct mars_event *ev,
                                         uint32_t extra, int *err)
{
    struct mars_fields *f = ev->fields;
    bool mine = f && f->owner == &b->arena;
    uint32_t n = f ? f->n : 1;

    if (mine && n + extra <= f->cap)
        return f;
    if ((uint64_t)n + extra > MARS_FIELDS_MAX) {
        *err = -E2BIG;
        return NULL;
    }
    uint32_t cap = n + extra + 4;
    if (mine && cap < f->cap * 2)
        cap = f->cap * 2 > MARS_FIELDS_MAX ? MARS_FIELDS_MAX : f->cap * 2;
    struct mars_fields *nf = mine ? f : mars_arena_alloc(&b->arena, sizeof(*nf));
    struct mars_field *v = mars_arena_alloc(&b->arena, (size_t)cap * sizeof(*v));
    if (!nf || !v) {
        *err = -ENOMEM;
        return NULL;
    }
    if (f)
        memcpy(v, f->v, (size_t)n * sizeof(*v));
    else
        mars_fields_init_entry(&v[0], "", 0, MARS_FIELD_OBJECT, NULL, 0, 0);
    *nf = (struct mars_fields){.v = v, .n = n, .cap = cap, .owner = &b->arena};
    ev->fields = nf;
    return nf;
}

uint32_t mars_fields_append(struct mars_fields *f, uint32_t obj, const char *key, uint32_t key_len,
                            enum mars_field_kind kind, const char *value, uint32_t len,
                            unsigned flags)
{
    uint32_t i = f->n++; /* the caller made room */
    mars_fields_init_entry(&f->v[i], key, key_len, kind, value, len, flags);
    if (f->v[obj].last == MARS_FIELD_NIL)
        f->v[obj].first = i;
    else
        f->v[f->v[obj].last].next = i;
    f->v[obj].last = i;
    return i;
}

void mars_fields_overwrite(struct mars_field *e, enum mars_field_kind kind, const char *value,
                           uint32_t len, unsigned flags)
{
    e->kind = (uint8_t)kind;
    e->flags = (uint8_t)flags;
    e->value = value;
    e->value_len = len;
    e->first = e->last = MARS_FIELD_NIL; /* members of an old object are dropped */
}

/* Walks to the object holding the last segment of p, creating objects on the way. Returns
 * its index, or NIL with *err set. */
uint32_t mars_fields_parent_of(struct mars_fields *f, const struct mars_path *p, bool create,
                               int *err)
{
    uint32_t obj = 0;
    for (uint32_t i = 0; i + 1 < p->n; i++) {
        const struct mars_path_seg *s = &p->seg[i];
        uint32_t m = mars_fields_member(f, obj, s->name, s->len);
        if (m == MARS_FIELD_NIL) {
            if (!create) {
                *err = -ENOENT;
                return MARS_FIELD_NIL;
            }
            m = mars_fields_append(f, obj, s->name, s->len, MARS_FIELD_OBJECT, NULL, 0, 0);
        } else if (f->v[m].kind != MARS_FIELD_OBJECT || (f->v[m].flags & MARS_FF_RAW)) {
            *err = create ? -EINVAL : -ENOENT;
            return MARS_FIELD_NIL;
        }
        obj = m;
    }
    return obj;
}

void mars_event_set_message(struct mars_batch *b, struct mars_event *ev, const char *ptr,
                            uint32_t len)
{
    b->bytes = b->bytes - ev->msg.len + len;
    ev->msg.ptr = ptr;
    ev->msg.len = len;
    ev->flags &=
        (uint8_t) ~(MARS_EVF_NL_FOLLOWS | MARS_EVF_NO_MESSAGE | MARS_EVF_UTF8 | MARS_EVF_TRACE);
}

void mars_fields_unlink(struct mars_fields *f, uint32_t obj, uint32_t m)
{
    uint32_t prev = MARS_FIELD_NIL;
    for (uint32_t i = f->v[obj].first; i != MARS_FIELD_NIL; prev = i, i = f->v[i].next) {
        if (i != m)
            continue;
        if (prev == MARS_FIELD_NIL)
            f->v[obj].first = f->v[m].next;
        else
            f->v[prev].next = f->v[m].next;
        if (f->v[obj].last == m)
            f->v[obj].last = prev;
        f->v[m].next = MARS_FIELD_NIL;
        return;
    }
}

int mars_fields_set(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p,
                    enum mars_field_kind kind, const char *value, uint32_t len, unsigned flags)
{
    int err = 0;
    if (p->n == 0 || mars_path_has_index(p))
        return -EINVAL;
    if (mars_path_is(p, "message") && kind == MARS_FIELD_STRING) {
        if (flags & MARS_FF_ESCAPED) {
            char *d = mars_arena_alloc(&b->arena, len);
            if (!d)
                return -ENOMEM;
            len = (uint32_t)mars_json_unescape(value, len, d);
            value = d;
        }
        if (ev->fields && mars_fields_member(ev->fields, 0, "message", 7) != MARS_FIELD_NIL)
            mars_fields_remove(b, ev, p);
        mars_event_set_message(b, ev, value, len);
        return 0;
    }
    struct mars_fields *f = mars_fields_writable(b, ev, p->n + 1, &err);
    if (!f)
        return err;
    uint32_t obj = mars_fields_parent_of(f, p, true, &err);
    if (obj == MARS_FIELD_NIL)
        return err;
    const struct mars_path_seg *s = &p->seg[p->n - 1];
    uint32_t m = mars_fields_member(f, obj, s->name, s->len);
    if (m == MARS_FIELD_NIL)
        mars_fields_append(f, obj, s->name, s->len, kind, value, len, flags);
    else
        mars_fields_overwrite(&f->v[m], kind, value, len, flags);
    return 0;
}

int mars_fields_remove(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p)
{
    struct mars_value v;
    int err = 0;
    if (p->n == 0 || mars_path_has_index(p))
        return -EINVAL;
    if (!mars_fields_get(ev, p, &v))
        return -ENOENT;
    if (v.idx == MARS_FIELD_NIL) { /* the event's own (timestamp cannot be removed) */
        if (mars_path_is(p, "file"))
            ev->file = NULL;
        else if (mars_path_is(p, "host"))
            ev->host = NULL;
        else if (mars_path_is(p, "message"))
            ev->flags |= MARS_EVF_NO_MESSAGE;
        else
            return -ENOENT;
        return 0;
    }
    struct mars_fields *f = mars_fields_writable(b, ev, 0, &err);
    if (!f)
        return err;
    mars_fields_unlink(f, v.parent, v.idx); /* indices survive the copy on write */
    if (p->special == MARS_PATH_MESSAGE)
        ev->flags |= MARS_EVF_NO_MESSAGE;
    return 0;
}

int mars_fields_replace(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p,
                        const struct mars_value *v, enum mars_field_kind kind, const char *value,
                        uint32_t len, unsigned flags)
{
    int err = 0;
    if (v->idx == MARS_FIELD_NIL || v->idx == 0 || kind == MARS_FIELD_OBJECT ||
        p->special == MARS_PATH_MESSAGE)
        return mars_fields_set(b, ev, p, kind, value, len, flags);
    struct mars_fields *f = mars_fields_writable(b, ev, 0, &err);
    if (!f)
        return err;
    mars_fields_overwrite(&f->v[v->idx], kind, value, len, flags);
    return 0;
}

static uint32_t subtree_size(const struct mars_fields *f, uint32_t i)
{
    uint32_t n = 1;
    if (f->v[i].kind == MARS_FIELD_OBJECT)
        for (uint32_t c = f->v[i].first; c != MARS_FIELD_NIL; c = f->v[c].next)
            n += subtree_size(f, c);
    return n;
}

/* Copies the members of src under dst (room was made by the caller). */
static void copy_members(struct mars_fields *f, uint32_t dst, uint32_t src)
{
    for (uint32_t c = f->v[src].first; c != MARS_FIELD_NIL; c = f->v[c].next) {
        const struct mars_field e = f->v[c];
        uint32_t i =
            mars_fields_append(f, dst, e.key, e.key_len, e.kind, e.value, e.value_len, e.flags);
        if (e.kind == MARS_FIELD_OBJECT)
            copy_members(f, i, c);
    }
}

static bool is_prefix(const struct mars_path *a, const struct mars_path *b)
{
    if (a->n > b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->seg[i].len != b->seg[i].len ||
            memcmp(a->seg[i].name, b->seg[i].name, a->seg[i].len) != 0)
            return false;
    return true;
}

/* Moves or copies an OBJECT entry with members. */
static int move_object(struct mars_batch *b, struct mars_event *ev, const struct mars_path *from,
                       uint32_t idx, const struct mars_path *to, bool copy)
{
    int err = 0;
    struct mars_fields *f = mars_fields_writable(b, ev, 0, &err);
    uint32_t size = f ? subtree_size(f, idx) : 0;
    if (!f || !(f = mars_fields_writable(b, ev, to->n + size, &err)))
        return err;
    uint32_t obj = mars_fields_parent_of(f, to, true, &err);
    if (obj == MARS_FIELD_NIL)
        return err;
    const struct mars_path_seg *s = &to->seg[to->n - 1];
    uint32_t m = mars_fields_member(f, obj, s->name, s->len);
    if (m == MARS_FIELD_NIL)
        m = mars_fields_append(f, obj, s->name, s->len, MARS_FIELD_OBJECT, NULL, 0, 0);
    else
        mars_fields_overwrite(&f->v[m], MARS_FIELD_OBJECT, NULL, 0, 0);
    copy_members(f, m, idx);
    if (!copy) {
        uint32_t from_obj = mars_fields_parent_of(f, from, false, &err);
        if (from_obj != MARS_FIELD_NIL)
            mars_fields_unlink(f, from_obj, idx);
    }
    return 0;
}

int mars_fields_move(struct mars_batch *b, struct mars_event *ev, const struct mars_path *from,
                     const struct mars_path *to, bool copy)
{
    struct mars_value v;
    if (to->n == 0 || mars_path_has_index(to) || is_prefix(from, to) || is_prefix(to, from))
        return -EINVAL;
    if (!mars_fields_get(ev, from, &v))
        return -ENOENT;
    if (v.kind == MARS_FIELD_OBJECT && !(v.flags & MARS_FF_RAW))
        return move_object(b, ev, from, v.idx, to, copy);
    const char *ptr = v.ptr;
    if (ptr == v.buf) { /* a synthesized timestamp lives on our stack */
        char *d = mars_arena_strndup(&b->arena, v.buf, v.len);
        if (!d)
            return -ENOMEM;
        ptr = d;
    }
    int rc = mars_fields_set(b, ev, to, v.kind, ptr, v.len, v.flags);
    if (rc || copy || mars_path_has_index(from))
        return rc;
    if (v.idx == MARS_FIELD_NIL) { /* message itself, or the event time (which stays) */
        if (from->special == MARS_PATH_MESSAGE)
            ev->flags |= MARS_EVF_NO_MESSAGE;
        return 0;
    }
    struct mars_fields *f = mars_fields_writable(b, ev, 0, &rc); /* (set to message does not) */
    if (!f)
        return rc;
    mars_fields_unlink(f, v.parent, v.idx);
    if (from->special == MARS_PATH_MESSAGE)
        ev->flags |= MARS_EVF_NO_MESSAGE;
    return 0;
}

/* ---- dedot ---- */

static bool has_dotted_key(const struct mars_fields *f, uint32_t obj)
{
    for (uint32_t m = f->v[obj].first; m != MARS_FIELD_NIL; m = f->v[m].next) {
        if (memchr(f->v[m].key, '.', f->v[m].key_len))
            return true;
        if (f->v[m].kind == MARS_FIELD_OBJECT && has_dotted_key(f, m))
            return true;
    }
    return false;
}

static int dedot_object(struct mars_fields *f, uint32_t obj, struct mars_arena *a)
{
    int changed = 0;
    for (uint32_t m = f->v[obj].first; m != MARS_FIELD_NIL; m = f->v[m].next) {
        if (memchr(f->v[m].key, '.', f->v[m].key_len)) {
            char *k = mars_arena_strndup(a, f->v[m].key, f->v[m].key_len);
            if (!k)
                return -ENOMEM;
            for (uint32_t i = 0; i < f->v[m].key_len; i++)
                k[i] = k[i] == '.' ? '_' : k[i];
            f->v[m].key = k;
            changed++;
        }
        if (f->v[m].kind == MARS_FIELD_OBJECT) {
            int rc = dedot_object(f, m, a);
            if (rc < 0)
                return rc;
            changed += rc;
        }
    }
    return changed;
}

int mars_fields_dedot(struct mars_batch *b, struct mars_event *ev, const struct mars_path *p)
{
    struct mars_value v;
    uint32_t obj = 0;
    int err = 0;
    if (!ev->fields)
        return p->n ? -ENOENT : 0;
    if (p->n) {
        if (!mars_fields_get(ev, p, &v))
            return -ENOENT;
        if (v.kind != MARS_FIELD_OBJECT || v.idx == MARS_FIELD_NIL)
            return -EINVAL;
        if (v.flags & MARS_FF_RAW)
            return 0; /* an object kept as its JSON text has no members to rename */
        obj = v.idx;
    }
    if (!has_dotted_key(ev->fields, obj))
        return 0; /* nothing to change: no copy on write */
    struct mars_fields *f = mars_fields_writable(b, ev, 0, &err);
    if (!f)
        return err;
    return dedot_object(f, obj, &b->arena); /* indices survive the copy on write */
}
