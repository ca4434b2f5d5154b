/*
 * wire_batch.c - events <-> the BATCH payload (mars.Batch) of the mars native protocol.
 *
 * Encoding walks each event once: its message, timestamp, flags, file path and its field
 * tree flattened in pre-order (an object before its members, each member naming its
 * object's 1-based position, 0 = root). The protobuf-c structs point at the event's own
 * bytes (nothing is copied until pack), live in arrays reused from frame to frame, and
 * their pointers are fixed up only at finish, because the arrays may move while they grow.
 * The packed size is tracked per event so a frame stops before its limit.
 *
 * Decoding unpacks with protobuf-c into the batch's arena (a bump allocator whose memory
 * goes with the batch, so nothing is freed piecemeal), then rebuilds each event: the message
 * and values point at the unpacked bytes, the flat field list becomes the engine's field
 * array with one append per field. Peer bytes are hostile: every kind, flag and parent index
 * is checked, and numbers, escaped strings and raw arrays/objects are validated as JSON,
 * because encoders copy such values into their output as they are.
 *
 * Thread: the worker that owns the batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "mars.pb-c.h"
#include "model/fields_internal.h"
#include "model/json.h"
#include "wire/wire.h"

/* ---- encoding ---- */

void mars_wire_enc_init(struct mars_wire_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void mars_wire_enc_fini(struct mars_wire_enc *e)
{
    free(e->ev);
    free(e->evp);
    free(e->fl);
    free(e->flp);
    free(e->raw);
    free(e->frame);
    memset(e, 0, sizeof(*e));
}

void mars_wire_enc_reset(struct mars_wire_enc *e)
{
    e->nev = e->nfl = 0;
    e->size = 0;
    e->framelen = 0;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static unsigned field_flags(const struct mars_field *f)
{
    unsigned fl = 0;
    if (f->flags & MARS_FF_ESCAPED)
        fl |= MARS__FIELD__FLAG__ESCAPED;
    if (f->flags & MARS_FF_RAW)
        fl |= MARS__FIELD__FLAG__RAW;
    return fl;
}

/* Appends the members of object obj (pre-order) with parent position ppos. */
static void flatten(struct mars_wire_enc *e, const struct mars_fields *f, uint32_t obj,
                    uint32_t ppos, uint32_t base)
{
    Mars__Field *fl = e->fl;
    for (uint32_t i = f->v[obj].first; i != MARS_FIELD_NIL; i = f->v[i].next) {
        const struct mars_field *v = &f->v[i];
        Mars__Field *m = &fl[e->nfl++];
        mars__field__init(m);
        m->key.data = (uint8_t *)v->key;
        m->key.len = v->key_len;
        m->kind = (Mars__Field__Kind)v->kind;
        m->flags = field_flags(v);
        m->parent = ppos;
        bool members = v->kind == MARS_FIELD_OBJECT && !(v->flags & MARS_FF_RAW);
        if (!members) {
            m->value.data = (uint8_t *)v->value;
            m->value.len = v->value_len;
        } else {
            flatten(e, f, i, e->nfl - base, base);
        }
    }
}

static unsigned event_flags(const struct mars_event *ev)
{
    unsigned fl = 0;
    if (ev->flags & MARS_EVF_OVERSIZE)
        fl |= MARS__EVENT__FLAG__OVERSIZE;
    if (ev->flags & MARS_EVF_PARTIAL)
        fl |= MARS__EVENT__FLAG__PARTIAL;
    if (ev->flags & MARS_EVF_NO_MESSAGE)
        fl |= MARS__EVENT__FLAG__NO_MESSAGE;
    return fl;
}

int mars_wire_enc_add(struct mars_wire_enc *e, const struct mars_event *ev, size_t limit)
{
    uint32_t nf = ev->fields ? ev->fields->n : 0;
    if (mars_grow(&e->ev, &e->evcap, (size_t)e->nev + 1, sizeof(Mars__Event)) ||
        mars_grow(&e->evp, &e->evpcap, (size_t)e->nev + 1, sizeof(void *)) ||
        mars_grow(&e->fl, &e->flcap, (size_t)e->nfl + nf, sizeof(Mars__Field)) ||
        mars_grow(&e->flp, &e->flpcap, (size_t)e->nfl + nf, sizeof(void *)))
        return -ENOMEM;

    Mars__Event *m = &((Mars__Event *)e->ev)[e->nev];
    mars__event__init(m);
    m->message.data = (uint8_t *)ev->msg.ptr;
    m->message.len = ev->msg.len;
    m->timestamp_ns = ev->ts_ns;
    m->flags = event_flags(ev);
    if (ev->file) {
        m->file.data = (uint8_t *)ev->file;
        m->file.len = strlen(ev->file);
    }
    if (ev->host) {
        m->host.data = (uint8_t *)ev->host;
        m->host.len = strlen(ev->host);
    }
    uint32_t base = e->nfl;
    if (nf > 1)
        flatten(e, ev->fields, 0, 0, base);
    for (uint32_t i = base; i < e->nfl; i++) /* valid until the arrays grow; fixed at finish */
        e->flp[i] = &((Mars__Field *)e->fl)[i];
    m->n_fields = e->nfl - base;
    m->fields = e->flp ? (Mars__Field **)&e->flp[base] : NULL; /* no field yet: no array */

    size_t es = mars__event__get_packed_size(m);
    size_t add = 1 + varint_len(es) + es;
    if (e->size + add > limit) {
        e->nfl = base;
        return e->nev == 0 ? -EMSGSIZE : -ENOSPC;
    }
    e->size += add;
    e->nev++;
    return 0;
}

int mars_wire_enc_finish(struct mars_wire_enc *e, uint64_t seq, bool lz4)
{
    Mars__Event *ev = e->ev;
    Mars__Field *fl = e->fl;
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->nev; i++) {
        e->evp[i] = &ev[i];
        ev[i].fields = e->flp ? (Mars__Field **)&e->flp[k] : NULL;
        for (size_t j = 0; j < ev[i].n_fields; j++, k++)
            e->flp[k] = &fl[k];
    }
    Mars__Batch batch = MARS__BATCH__INIT;
    batch.n_events = e->nev;
    batch.events = (Mars__Event **)e->evp;
    size_t n = mars__batch__get_packed_size(&batch);
    if (n > UINT32_MAX)
        return -EMSGSIZE;
    size_t bound = lz4 ? mars_wire_lz4_bound(n) : 0;
    size_t need = MARS_WIRE_HDR + (bound > n ? bound : n);
    if (mars_grow(&e->frame, &e->framecap, need, 1))
        return -ENOMEM;
    struct mars_wire_hdr h = {.type = MARS_WIRE_BATCH, .seq = seq, .raw_length = (uint32_t)n};
    size_t clen = 0;
    if (lz4) {
        if (mars_grow(&e->raw, &e->rawcap, n, 1))
            return -ENOMEM;
        mars__batch__pack(&batch, e->raw);
        clen = mars_wire_lz4(e->raw, n, e->frame + MARS_WIRE_HDR, e->framecap - MARS_WIRE_HDR);
        if (clen == 0 && n > 0) /* incompressible: plain */
            memcpy(e->frame + MARS_WIRE_HDR, e->raw, n);
    } else {
        mars__batch__pack(&batch, e->frame + MARS_WIRE_HDR);
    }
    h.flags = clen ? MARS_WIRE_F_LZ4 : 0;
    h.length = clen ? (uint32_t)clen : (uint32_t)n;
    mars_wire_put_hdr(e->frame, &h);
    e->framelen = MARS_WIRE_HDR + h.length;
    return 0;
}

/* ---- decoding ---- */

static void *arena_alloc(void *data, size_t n)
{
    return mars_arena_alloc(data, n ? n : 1);
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the memory goes with the batch */
}

static bool valid_json(struct mars_batch *b, const uint8_t *p, size_t n, char first, bool quote)
{
    if (quote) { /* an escaped string body: validate it as a whole string */
        char *q = mars_arena_alloc(&b->arena, n + 2);
        if (!q)
            return false;
        q[0] = '"';
        if (n) /* an empty string may come as a NULL body */
            memcpy(q + 1, p, n);
        q[n + 1] = '"';
        return mars_json_validate(q, n + 2, MARS_JSON_MAX_DEPTH, NULL) == MARS_JSON_OK;
    }
    if (n == 0 || (first && p[0] != first))
        return false;
    if (!first && p[0] != '-' && (p[0] < '0' || p[0] > '9')) /* a number */
        return false;
    return mars_json_validate((const char *)p, n, MARS_JSON_MAX_DEPTH, NULL) == MARS_JSON_OK;
}

/* Checks field m (1-based position pos) and appends it to f. */
static int add_field(struct mars_batch *b, struct mars_fields *f, const Mars__Field *m,
                     uint32_t pos, const char **why)
{
    const uint8_t *val = m->value.data;
    size_t vlen = m->value.len;
    unsigned flags = 0;

    if (m->parent >= pos || f->v[m->parent].kind != MARS_FIELD_OBJECT ||
        (f->v[m->parent].flags & MARS_FF_RAW)) {
        *why = "field parent is not an earlier object";
        return -EPROTO;
    }
    if (m->key.len > UINT32_MAX || vlen > UINT32_MAX) {
        *why = "field too long";
        return -EPROTO;
    }
    unsigned allowed = m->kind == MARS__FIELD__KIND__STRING   ? MARS__FIELD__FLAG__ESCAPED
                       : m->kind == MARS__FIELD__KIND__OBJECT ? MARS__FIELD__FLAG__RAW
                                                              : 0;
    if (m->flags & ~allowed) {
        *why = "bad field flags";
        return -EPROTO;
    }
    bool ok = true;
    switch (m->kind) {
    case MARS__FIELD__KIND__STRING:
        if (m->flags & MARS__FIELD__FLAG__ESCAPED) {
            flags = MARS_FF_ESCAPED;
            ok = valid_json(b, val, vlen, 0, true);
        }
        break;
    case MARS__FIELD__KIND__NUMBER:
        ok = valid_json(b, val, vlen, 0, false);
        break;
    case MARS__FIELD__KIND__BOOL:
        ok = (vlen == 4 && memcmp(val, "true", 4) == 0) ||
             (vlen == 5 && memcmp(val, "false", 5) == 0);
        break;
    case MARS__FIELD__KIND__NULL:
        val = (const uint8_t *)"null";
        vlen = 4;
        break;
    case MARS__FIELD__KIND__OBJECT:
        if (m->flags & MARS__FIELD__FLAG__RAW) {
            flags = MARS_FF_RAW;
            ok = valid_json(b, val, vlen, '{', false);
        } else {
            val = NULL;
            vlen = 0;
        }
        break;
    case MARS__FIELD__KIND__ARRAY:
        ok = valid_json(b, val, vlen, '[', false);
        break;
    default:
        *why = "unknown field kind";
        return -EPROTO;
    }
    if (!ok) {
        *why = "field value is not valid JSON for its kind";
        return -EPROTO;
    }
    mars_fields_append(f, m->parent, m->key.len ? (const char *)m->key.data : "",
                       (uint32_t)m->key.len, (enum mars_field_kind)m->kind,
                       val ? (const char *)val : "", (uint32_t)vlen, flags);
    return 0;
}

static int decode_event(struct mars_batch *b, const Mars__Event *m, const char **why)
{
    if (m->message.len > UINT32_MAX || m->n_fields >= MARS_FIELDS_MAX) {
        *why = "event too large";
        return -EPROTO;
    }
    if (m->flags & ~(unsigned)(MARS__EVENT__FLAG__OVERSIZE | MARS__EVENT__FLAG__PARTIAL |
                               MARS__EVENT__FLAG__NO_MESSAGE)) {
        *why = "bad event flags";
        return -EPROTO;
    }
    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    ev->kind = MARS_EVENT_LOG;
    ev->source = b->source;
    ev->msg.ptr = m->message.len ? (const char *)m->message.data : "";
    ev->msg.len = (uint32_t)m->message.len;
    ev->ts_ns = m->timestamp_ns;
    if (m->flags & MARS__EVENT__FLAG__OVERSIZE)
        ev->flags |= MARS_EVF_OVERSIZE;
    if (m->flags & MARS__EVENT__FLAG__PARTIAL)
        ev->flags |= MARS_EVF_PARTIAL;
    if (m->flags & MARS__EVENT__FLAG__NO_MESSAGE)
        ev->flags |= MARS_EVF_NO_MESSAGE;
    b->bytes += ev->msg.len;
    if (m->file.len) {
        if (memchr(m->file.data, '\0', m->file.len)) {
            *why = "file path with a NUL byte";
            return -EPROTO;
        }
        ev->file = mars_arena_strndup(&b->arena, (const char *)m->file.data, m->file.len);
        if (!ev->file)
            return -ENOMEM;
    }
    if (m->host.len) {
        if (memchr(m->host.data, '\0', m->host.len)) {
            *why = "host name with a NUL byte";
            return -EPROTO;
        }
        ev->host = mars_arena_strndup(&b->arena, (const char *)m->host.data, m->host.len);
        if (!ev->host)
            return -ENOMEM;
    }
    if (m->n_fields == 0)
        return 0;
    int err = 0;
    struct mars_fields *f = mars_fields_writable(b, ev, (uint32_t)m->n_fields, &err);
    if (!f)
        return err == -E2BIG ? (*why = "too many fields", -EPROTO) : err;
    for (size_t i = 0; i < m->n_fields; i++) {
        int rc = add_field(b, f, m->fields[i], (uint32_t)i + 1, why);
        if (rc)
            return rc;
    }
    return 0;
}

int mars_wire_decode_batch(const uint8_t *p, size_t n, struct mars_batch *b, const char **why)
{
    ProtobufCAllocator a = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &b->arena};
    Mars__Batch *m = mars__batch__unpack(&a, n, p);
    if (!m) {
        *why = "batch payload does not parse";
        return -EPROTO;
    }
    for (size_t i = 0; i < m->n_events; i++) {
        int rc = decode_event(b, m->events[i], why);
        if (rc)
            return rc;
    }
    return 0;
}
