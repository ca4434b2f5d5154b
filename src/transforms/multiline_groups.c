/*
 * multiline_groups.c - the data path of `multiline` (see multiline.c for the rules):
 * finding a line's group, holding its line, completing events into outgoing batches, and
 * the timer that completes quiet groups.
 *
 * Groups live in an open-addressing table of 2 x max_groups slots keyed by source, file
 * and stream (the rendered group_by values). Slots are never deleted one by one; when the
 * table holds max_groups keys and a new one comes, every pending event is completed and
 * the table starts empty again (more live files than max_groups is rare and bounded).
 * Per-group arrays grow by doubling and are reused, so steady state allocates nothing.
 *
 * Thread: the instance's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/arena.h"
#include "core/log.h"
#include "multiline_internal.h"

int mars_multiline_groups_init(struct mars_multiline *m)
{
    uint32_t size = 16;
    while (size < m->max_groups * 2u)
        size *= 2;
    m->groups = calloc(size, sizeof(*m->groups));
    if (!m->groups)
        return -ENOMEM;
    m->mask = size - 1;
    return 0;
}

void mars_multiline_groups_fini(struct mars_multiline *m)
{
    for (uint32_t i = 0; m->groups && i <= m->mask; i++) {
        struct mars_ml_group *g = &m->groups[i];
        /* lines still pending were never passed on: not delivered, so sources that can
         * will read them again */
        for (uint32_t k = 0; k < g->nheld; k++)
            mars_batch_abandon(g->held[k]);
        free(g->key);
        free(g->pieces);
        free(g->held);
    }
    free(m->groups);
    free(m->scratch);
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = mars_hash64(s, n); /* FNV-1a */
    return h ^ (h >> 31);
}

/* source index, then each group_by value, NUL-separated. */
static size_t group_key(struct mars_multiline *m, const struct mars_event *ev)
{
    size_t n = 0;
    memcpy(m->key, &ev->source, sizeof(ev->source));
    n += sizeof(ev->source);
    for (size_t i = 0; i < m->ngroup_by; i++) {
        struct mars_value v;
        uint32_t len = 0;
        const char *s = mars_fields_get(ev, m->group_by[i], &v)
                            ? mars_value_text(&v, &m->scratch, &m->scap, &len)
                            : NULL;
        if (!s)
            len = 0;
        if (n + len + 1 > sizeof(m->key))
            len = (uint32_t)(sizeof(m->key) - n - 1);
        memcpy(m->key + n, s ? s : "", len);
        n += len;
        m->key[n++] = '\0';
    }
    return n;
}

/* Completes g's event into out (its batches become out's to hold). */
static void complete(struct mars_multiline *m, struct mars_ml_group *g, struct mars_batch *out)
{
    struct mars_event ev = g->first;
    const struct mars_ml_piece *last = &g->pieces[g->n - 1];
    bool contiguous = true;
    uint8_t all = MARS_EVF_UTF8; /* kept when every piece has it */
    for (uint32_t k = 0; k < g->n; k++)
        all &= g->pieces[k].flags;
    for (uint32_t k = 1; k < g->n && contiguous; k++)
        contiguous = (g->pieces[k - 1].flags & MARS_EVF_NL_FOLLOWS) &&
                     g->pieces[k].ptr == g->pieces[k - 1].ptr + g->pieces[k - 1].len + 1;
    if (g->n > 1)
        ev.flags = (uint8_t)((ev.flags & ~MARS_EVF_UTF8) | all);
    if (g->n > 1 && contiguous) { /* one widened slice of the chunk */
        ev.msg.len = (uint32_t)(last->ptr + last->len - g->pieces[0].ptr);
        ev.flags =
            (uint8_t)((ev.flags & ~MARS_EVF_NL_FOLLOWS) | (last->flags & MARS_EVF_NL_FOLLOWS));
    } else if (g->n > 1) {
        char *d = mars_arena_alloc(&out->arena, g->bytes);
        uint64_t o = 0;
        if (!d) {
            mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
            d = NULL;
        }
        for (uint32_t k = 0; d && k < g->n; k++) {
            if (k)
                d[o++] = '\n';
            memcpy(d + o, g->pieces[k].ptr, g->pieces[k].len);
            o += g->pieces[k].len;
        }
        if (d) {
            ev.msg.ptr = d;
            ev.msg.len = (uint32_t)o;
            ev.flags &= (uint8_t)~MARS_EVF_NL_FOLLOWS;
        }
    }
    struct mars_event *e = mars_batch_push(out);
    if (e) {
        *e = ev;
        out->bytes += ev.msg.len;
    } else {
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
    }
    for (uint32_t k = 0; k < g->nheld; k++)
        if (mars_batch_hold(out, g->held[k]))
            mars_error(mars_transform_id(m->t), "out of memory: a batch stays unacknowledged");
    g->nheld = 0;
    g->n = 0;
    g->bytes = 0;
    m->pending--;
}

static void complete_all(struct mars_multiline *m, struct mars_batch *out)
{
    for (uint32_t i = 0; i <= m->mask && m->pending; i++)
        if (m->groups[i].used && m->groups[i].n)
            complete(m, &m->groups[i], out);
}

static struct mars_ml_group *group_for(struct mars_multiline *m, const struct mars_event *ev,
                                       struct mars_batch *out)
{
    size_t n = group_key(m, ev);
    uint64_t h = hash(m->key, n);
    for (int attempt = 0; attempt < 2; attempt++) {
        for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
            struct mars_ml_group *g = &m->groups[i];
            if (g->used && g->hash == h && g->key_len == n && memcmp(g->key, m->key, n) == 0)
                return g;
            if (g->used)
                continue;
            if (m->used >= m->max_groups)
                break;
            char *key = realloc(g->key, n);
            if (!key)
                return NULL;
            memcpy(key, m->key, n);
            *g = (struct mars_ml_group){.used = true,
                                        .hash = h,
                                        .key = key,
                                        .key_len = (uint32_t)n,
                                        .pieces = g->pieces,
                                        .cap = g->cap,
                                        .held = g->held,
                                        .held_cap = g->held_cap};
            m->used++;
            return g;
        }
        /* full: complete everything and start an empty table */
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_LIMIT], 1);
        complete_all(m, out);
        for (uint32_t i = 0; i <= m->mask; i++)
            m->groups[i].used = false;
        m->used = 0;
    }
    return NULL;
}

static bool add_line(struct mars_multiline *m, struct mars_ml_group *g, const struct mars_event *ev,
                     struct mars_batch *b)
{
    if (mars_grow(&g->pieces, &g->cap, (size_t)g->n + 1, sizeof(*g->pieces)))
        return false;
    if (g->nheld == 0 || g->held[g->nheld - 1] != b) {
        if (mars_grow(&g->held, &g->held_cap, (size_t)g->nheld + 1, sizeof(*g->held)))
            return false;
        g->held[g->nheld++] = mars_batch_ref(b);
    }
    if (g->n == 0) {
        g->first = *ev;
        m->pending++;
    }
    g->pieces[g->n++] = (struct mars_ml_piece){ev->msg.ptr, ev->msg.len, ev->flags};
    g->bytes += ev->msg.len + (g->n > 1);
    g->last_ns = mars_ev_now(mars_transform_loop(m->t));
    return true;
}

static void one_line(struct mars_multiline *m, struct mars_batch *b, const struct mars_event *ev,
                     struct mars_batch *out)
{
    struct mars_ml_group *g = ev->kind == MARS_EVENT_LOG ? group_for(m, ev, out) : NULL;
    if (g && g->n && mars_multiline_joins(m, ev)) {
        if (g->n < m->max_lines && g->bytes + 1 + ev->msg.len <= m->max_bytes &&
            add_line(m, g, ev, b))
            return;
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_LIMIT], 1);
    }
    if (g && g->n)
        complete(m, g, out);
    if (g && add_line(m, g, ev, b))
        return;
    struct mars_event *e = mars_batch_push(out); /* passes through as it is */
    if (e) {
        *e = *ev;
        out->bytes += ev->msg.len;
    }
}

static void on_timer(struct mars_ev_op *op, int res);

static void arm(struct mars_multiline *m, int64_t ns)
{
    if (m->timer_armed || m->flushed || m->pending == 0)
        return;
    mars_ev_prep_timer(&m->timer, ns, on_timer, m);
    m->timer_armed = mars_ev_submit(mars_transform_loop(m->t), &m->timer) == 0;
}

static void emit(struct mars_multiline *m, struct mars_batch *out)
{
    if (out->n)
        mars_transform_emit(m->t, out);
    else
        mars_batch_release(out);
}

void mars_multiline_batch(struct mars_multiline *m, struct mars_batch *b)
{
    struct mars_batch *out = mars_batch_select(b, NULL, b->n);
    if (!out) {
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(m->t, b); /* unjoined rather than lost */
        return;
    }
    for (uint32_t i = 0; i < b->n; i++)
        one_line(m, b, &b->ev[i], out);
    mars_batch_release(b);
    emit(m, out);
    arm(m, m->timeout);
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct mars_multiline *m = op->data;
    m->timer_armed = false;
    if (res == -ECANCELED || m->flushed)
        return;
    int64_t now = mars_ev_now(mars_transform_loop(m->t)), next = m->timeout;
    struct mars_batch *out = mars_batch_create(16);
    if (!out) {
        arm(m, m->timeout);
        return;
    }
    for (uint32_t i = 0; i <= m->mask && m->pending; i++) {
        struct mars_ml_group *g = &m->groups[i];
        if (!g->used || !g->n)
            continue;
        int64_t quiet = now - g->last_ns;
        if (quiet >= m->timeout) {
            out->source = g->first.source;
            complete(m, g, out);
        } else if (m->timeout - quiet < next) {
            next = m->timeout - quiet;
        }
    }
    emit(m, out);
    arm(m, next > 1000000 ? next : 1000000);
}

void mars_multiline_flush_all(struct mars_multiline *m)
{
    if (m->pending == 0)
        return;
    struct mars_batch *out = mars_batch_create(m->pending);
    if (!out)
        return; /* destroy releases the held batches: not lost, only unacknowledged */
    complete_all(m, out);
    emit(m, out);
}
