/*
 * batch.c - batch lifetime, chunk references, clones and acknowledgement.
 *
 * The ack belongs to the root batch (the one the source created). Clones point at their
 * parent and hold one reference to it, so the root's count only reaches zero after every
 * clone is gone; abandonment is recorded on the root so the ack sees it.
 *
 * Thread: the owning worker.
 */
#include "model/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "core/grow.h"

struct mars_batch *mars_batch_create(uint32_t cap)
{
    struct mars_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (cap == 0)
        cap = 1;
    b->ev = malloc(sizeof(*b->ev) * cap);
    if (!b->ev) {
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->refs = 1;
    b->created_ns = mars_ev_clock_ns();
    mars_arena_init(&b->arena);
    return b;
}

static void batch_destroy(struct mars_batch *b)
{
    struct mars_batch *parent = b->parent;

    for (uint32_t i = 0; i < b->nchunks; i++)
        mars_chunk_unref(b->chunks[i]);
    mars_arena_fini(&b->arena);
    if (b->ack.fn)
        b->ack.fn(b, !b->abandoned);
    free(b->chunks);
    free(b->ev);
    for (uint32_t i = 0; i < b->nholds; i++)
        mars_batch_release(b->holds[i]);
    free(b->holds);
    free(b);
    if (parent)
        mars_batch_release(parent);
}

void mars_batch_release(struct mars_batch *b)
{
    if (--b->refs == 0)
        batch_destroy(b);
}

void mars_batch_abandon(struct mars_batch *b)
{
    struct mars_batch *root = b;
    while (root->parent)
        root = root->parent;
    root->abandoned = true;
    mars_batch_release(b);
}

int mars_batch_hold_chunk(struct mars_batch *b, struct mars_chunk *c)
{
    if (b->nchunks > 0 && b->chunks[b->nchunks - 1] == c)
        return 0;
    if (mars_grow(&b->chunks, &b->chunks_cap, (size_t)b->nchunks + 1, sizeof(*b->chunks)))
        return -ENOMEM;
    mars_chunk_ref(c);
    b->chunks[b->nchunks++] = c;
    return 0;
}

struct mars_event *mars_batch_push(struct mars_batch *b)
{
    if (mars_grow(&b->ev, &b->cap, (size_t)b->n + 1, sizeof(*b->ev)))
        return NULL;
    struct mars_event *e = &b->ev[b->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

int mars_batch_exclusive(struct mars_batch **bp)
{
    struct mars_batch *orig = *bp;
    if (orig->refs == 1)
        return 0;
    struct mars_batch *c = mars_batch_create(orig->n);
    if (!c)
        return -ENOMEM;
    memcpy(c->ev, orig->ev, sizeof(*c->ev) * orig->n);
    c->n = orig->n;
    c->bytes = orig->bytes;
    c->created_ns = orig->created_ns;
    c->source = orig->source;
    c->parent = orig; /* takes over the caller's reference to orig */
    *bp = c;
    return 0;
}

struct mars_batch *mars_batch_split_ack(struct mars_batch *b)
{
    if (b->refs != 1 || b->parent || b->nholds)
        return NULL;
    struct mars_batch *t = mars_batch_create(1);
    if (!t)
        return NULL;
    t->n = b->n; /* a count: the stand-in's ev has no events (see batch.h) */
    t->bytes = b->bytes;
    t->created_ns = b->created_ns;
    t->source = b->source;
    t->ack = b->ack;
    t->abandoned = b->abandoned;
    b->ack = (struct mars_batch_ack){0};
    b->abandoned = false;
    return t;
}

void mars_batch_compact(struct mars_batch *b, const bool *keep)
{
    uint32_t w = 0;
    uint64_t bytes = 0;
    for (uint32_t r = 0; r < b->n; r++) {
        if (!keep[r])
            continue;
        if (w != r)
            b->ev[w] = b->ev[r];
        bytes += b->ev[w].msg.len;
        w++;
    }
    b->n = w;
    b->bytes = bytes;
}

struct mars_batch *mars_batch_select(struct mars_batch *b, const bool *keep, uint32_t extra)
{
    uint32_t n = 0;
    for (uint32_t i = 0; keep && i < b->n; i++)
        n += keep[i];
    struct mars_batch *c = mars_batch_create(n + extra);
    if (!c)
        return NULL;
    for (uint32_t i = 0; keep && i < b->n; i++) {
        if (!keep[i])
            continue;
        c->ev[c->n++] = b->ev[i];
        c->bytes += b->ev[i].msg.len;
    }
    c->created_ns = b->created_ns;
    c->source = b->source;
    c->parent = mars_batch_ref(b);
    return c;
}

static bool in_chunks(const struct mars_batch *b, const char *p)
{
    for (uint32_t i = 0; i < b->nchunks; i++) {
        const struct mars_chunk *c = b->chunks[i];
        if ((const unsigned char *)p >= c->data && (const unsigned char *)p < c->data + c->cap)
            return true;
    }
    return false;
}

/* Bytes an event of an unpinned batch must copy out of the chunks: its message (and the
 * newline after it, so MARS_EVF_NL_FOLLOWS stays true) and its host name. */
static size_t pinned_bytes(const struct mars_batch *b, const struct mars_event *ev)
{
    size_t n = 0;
    if (in_chunks(b, ev->msg.ptr))
        n += ev->msg.len + ((ev->flags & MARS_EVF_NL_FOLLOWS) ? 1 : 0);
    if (ev->host && in_chunks(b, ev->host))
        n += strlen(ev->host) + 1;
    if (ev->file && in_chunks(b, ev->file))
        n += strlen(ev->file) + 1;
    return n;
}

static const char *copy_out(char **dst, const char *src, size_t n)
{
    if (n == 0)
        return "";
    char *d = *dst;
    memcpy(d, src, n);
    *dst += n;
    return d;
}

uint32_t mars_batch_unpin(struct mars_batch *b)
{
    if (b->refs != 1 || b->parent || b->nholds || b->nchunks == 0)
        return 0;
    double share = 0;
    for (uint32_t i = 0; i < b->nchunks; i++)
        share += (double)b->chunks[i]->cap / b->chunks[i]->refs;
    size_t need = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct mars_event *ev = &b->ev[i];
        if (ev->kind != MARS_EVENT_LOG || ev->fields)
            return 0;
        need += pinned_bytes(b, ev);
    }
    if (share <= (double)need * MARS_BATCH_SPARSE)
        return 0;
    char *dst = need ? mars_arena_alloc(&b->arena, need) : NULL;
    if (need && !dst)
        return 0;
    for (uint32_t i = 0; i < b->n; i++) {
        struct mars_event *ev = &b->ev[i];
        if (in_chunks(b, ev->msg.ptr))
            ev->msg.ptr = copy_out(&dst, ev->msg.ptr,
                                   ev->msg.len + ((ev->flags & MARS_EVF_NL_FOLLOWS) ? 1 : 0));
        if (ev->host && in_chunks(b, ev->host))
            ev->host = copy_out(&dst, ev->host, strlen(ev->host) + 1);
        if (ev->file && in_chunks(b, ev->file))
            ev->file = copy_out(&dst, ev->file, strlen(ev->file) + 1);
    }
    uint32_t n = b->nchunks;
    b->nchunks = 0;
    for (uint32_t i = 0; i < n; i++)
        mars_chunk_unref(b->chunks[i]);
    return n;
}

int mars_batch_hold(struct mars_batch *b, struct mars_batch *other)
{
    if (mars_grow(&b->holds, &b->holds_cap, (size_t)b->nholds + 1, sizeof(*b->holds)))
        return -ENOMEM;
    b->holds[b->nholds++] = other;
    return 0;
}
