/*
 * fields_build.c - the parser side of event fields (see fields.h): a builder that parsers
 * fill for one event at a time in a reused heap array, and the merge of its members into
 * an event (one array copy in the common case of a first parse at the root).
 *
 * Duplicate keys: put() replaces an equal key in place when asked (JSON's last wins). A
 * 64-bit Bloom filter per object, kept by the caller, skips the search for keys certainly
 * not seen yet, so a wide object costs a hash per key rather than a scan.
 *
 * Thread: the worker that owns the builder and the batch.
 */
#include "model/fields.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "model/fields_internal.h"
#include "model/json.h"

/* ---- builder ---- */

void mars_fbuild_init(struct mars_fbuild *fb)
{
    *fb = (struct mars_fbuild){0};
}

void mars_fbuild_fini(struct mars_fbuild *fb)
{
    free(fb->v);
    *fb = (struct mars_fbuild){0};
}

static bool fbuild_grow(struct mars_fbuild *fb)
{
    if (fb->n >= MARS_FIELDS_MAX)
        return false;
    return mars_grow(&fb->v, &fb->cap, (size_t)fb->n + 1, sizeof(*fb->v)) == 0;
}

void mars_fbuild_reset(struct mars_fbuild *fb, struct mars_arena *arena)
{
    fb->arena = arena;
    fb->n = 0;
    if (fbuild_grow(fb)) {
        mars_fields_init_entry(&fb->v[0], "", 0, MARS_FIELD_OBJECT, NULL, 0, 0);
        fb->n = 1;
    }
}

uint32_t mars_fbuild_find(const struct mars_fbuild *fb, uint32_t parent, const char *key,
                          uint32_t key_len)
{
    if (fb->n == 0)
        return MARS_FIELD_NIL;
    for (uint32_t i = fb->v[parent].first; i != MARS_FIELD_NIL; i = fb->v[i].next)
        if (fb->v[i].key_len == key_len && memcmp(fb->v[i].key, key, key_len) == 0)
            return i;
    return MARS_FIELD_NIL;
}

static uint64_t key_bit(const char *key, uint32_t len)
{
    uint32_t h = len;
    if (len) {
        h = h * 131u + (unsigned char)key[0];
        h = h * 131u + (unsigned char)key[len - 1];
        h = h * 131u + (unsigned char)key[len / 2];
    }
    return 1ULL << ((h ^ (h >> 7)) & 63);
}

uint32_t mars_fbuild_put(struct mars_fbuild *fb, uint32_t parent, const char *key, uint32_t key_len,
                         enum mars_field_kind kind, const char *value, uint32_t value_len,
                         unsigned flags, bool replace, uint64_t *bloom)
{
    if (fb->n == 0)
        return MARS_FIELD_NIL;
    if (replace) {
        uint64_t bit = key_bit(key, key_len);
        if (!bloom || (*bloom & bit)) {
            uint32_t m = mars_fbuild_find(fb, parent, key, key_len);
            if (m != MARS_FIELD_NIL) {
                mars_fields_overwrite(&fb->v[m], kind, value, value_len, flags);
                return m;
            }
        }
        if (bloom)
            *bloom |= bit;
    }
    if (!fbuild_grow(fb))
        return MARS_FIELD_NIL;
    uint32_t i = fb->n++;
    mars_fields_init_entry(&fb->v[i], key, key_len, kind, value, value_len, flags);
    struct mars_field *p = &fb->v[parent];
    if (p->last == MARS_FIELD_NIL)
        p->first = i;
    else
        fb->v[p->last].next = i;
    p->last = i;
    return i;
}

/* ---- merge ---- */

/* Copies builder members of `src` into object `dst` of f, replacing equal keys. */
static void merge_members(struct mars_fields *f, uint32_t dst, const struct mars_fbuild *fb,
                          uint32_t src)
{
    for (uint32_t c = fb->v[src].first; c != MARS_FIELD_NIL; c = fb->v[c].next) {
        const struct mars_field *e = &fb->v[c];
        uint32_t m = mars_fields_member(f, dst, e->key, e->key_len);
        if (m == MARS_FIELD_NIL)
            m = mars_fields_append(f, dst, e->key, e->key_len, e->kind, e->value, e->value_len,
                                   e->flags);
        else
            mars_fields_overwrite(&f->v[m], e->kind, e->value, e->value_len, e->flags);
        if (e->kind == MARS_FIELD_OBJECT)
            merge_members(f, m, fb, c);
    }
}

/* A string `message` member at the root of the builder becomes ev->msg. Returns its index
 * (to skip), or NIL. */
static uint32_t take_message(struct mars_batch *b, struct mars_event *ev,
                             const struct mars_fbuild *fb, int *err)
{
    uint32_t m = mars_fbuild_find(fb, 0, "message", 7);
    if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_STRING)
        return MARS_FIELD_NIL;
    const struct mars_field *e = &fb->v[m];
    const char *ptr = e->value;
    uint32_t len = e->value_len;
    if (e->flags & MARS_FF_ESCAPED) {
        char *d = mars_arena_alloc(&b->arena, len);
        if (!d) {
            *err = -ENOMEM;
            return MARS_FIELD_NIL;
        }
        len = (uint32_t)mars_json_unescape(ptr, len, d);
        ptr = d;
    }
    mars_event_set_message(b, ev, ptr, len);
    return m;
}

int mars_fields_merge(struct mars_batch *b, struct mars_event *ev, const struct mars_fbuild *fb,
                      const struct mars_path *target)
{
    int err = 0;
    bool root = !target || target->n == 0;
    uint32_t msg = root ? take_message(b, ev, fb, &err) : MARS_FIELD_NIL;
    if (err)
        return err;
    if (root && !ev->fields) { /* the common case: one array copy */
        struct mars_fields *f = mars_fields_writable(b, ev, fb->n, &err);
        if (!f)
            return err;
        memcpy(f->v, fb->v, (size_t)fb->n * sizeof(*f->v));
        f->n = fb->n;
        if (msg != MARS_FIELD_NIL)
            mars_fields_unlink(f, 0, msg);
        return 0;
    }
    struct mars_fields *f = mars_fields_writable(b, ev, fb->n + (root ? 0 : target->n), &err);
    if (!f)
        return err;
    uint32_t dst = 0;
    if (!root) {
        dst = mars_fields_parent_of(f, target, true, &err);
        if (dst == MARS_FIELD_NIL)
            return err;
        const struct mars_path_seg *s = &target->seg[target->n - 1];
        uint32_t m = mars_fields_member(f, dst, s->name, s->len);
        if (m == MARS_FIELD_NIL)
            m = mars_fields_append(f, dst, s->name, s->len, MARS_FIELD_OBJECT, NULL, 0, 0);
        else if (f->v[m].kind != MARS_FIELD_OBJECT || (f->v[m].flags & MARS_FF_RAW))
            mars_fields_overwrite(&f->v[m], MARS_FIELD_OBJECT, NULL, 0, 0);
        dst = m;
    }
    for (uint32_t c = fb->v[0].first; c != MARS_FIELD_NIL; c = fb->v[c].next) {
        if (c == msg) {
            uint32_t old = mars_fields_member(f, 0, "message", 7);
            if (old != MARS_FIELD_NIL) /* an earlier non-string message member */
                mars_fields_unlink(f, 0, old);
            continue;
        }
        const struct mars_field *e = &fb->v[c];
        uint32_t m = mars_fields_member(f, dst, e->key, e->key_len);
        if (m == MARS_FIELD_NIL)
            m = mars_fields_append(f, dst, e->key, e->key_len, e->kind, e->value, e->value_len,
                                   e->flags);
        else
            mars_fields_overwrite(&f->v[m], e->kind, e->value, e->value_len, e->flags);
        if (e->kind == MARS_FIELD_OBJECT)
            merge_members(f, m, fb, c);
    }
    return 0;
}
