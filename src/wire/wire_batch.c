/*
 * wire_batch.c - events <-> the BATCH payload (mars.Batch) of the mars native protocol.
 *
 * Encoding walks each event once: its message, timestamp, flags, file path and its field
 * tree flattened in pre-order (an object before its members, each member naming its
 * object's 1-based position, 0 = root). It is packed by hand, not with protobuf-c's
 * generic packer, which spent a third of a disk buffer's CPU walking field descriptors
 * twice per event (size, then pack): small records point at the event's own bytes (nothing
 * is copied until finish), live in arrays reused from frame to frame, and carry their
 * packed size, so a frame stops before its limit and finish writes each byte once.
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

/* What an added event or field packs to: pointers into the event's own bytes (nothing is
 * copied until finish) and the packed size of its message body. */
struct enc_field {
    const uint8_t *key, *value;
    uint32_t key_len, value_len;
    uint32_t kind, flags, parent;
    uint32_t size;
};

struct enc_event {
    const uint8_t *msg, *file, *host;
    uint32_t msg_len, file_len, host_len;
    uint64_t ts; /* int64 on the wire: a negative value is a 10-byte varint */
    uint32_t flags;
    uint32_t first, nfields; /* into e->fl */
    uint32_t size;
};

void mars_wire_enc_init(struct mars_wire_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void mars_wire_enc_fini(struct mars_wire_enc *e)
{
    free(e->ev);
    free(e->fl);
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

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Proto3 leaves out fields at their default (0, empty), as protobuf-c does: the bytes are
 * the ones mars__batch__pack() would make (tests/unit/wire checks it). Tags are one byte:
 * every field number is under 16. */
static size_t bytes_len(uint32_t n)
{
    return n ? 1 + varint_len(n) + n : 0;
}

static size_t uint_len(uint64_t v)
{
    return v ? 1 + varint_len(v) : 0;
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const uint8_t *v, uint32_t n)
{
    if (!n)
        return p;
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, n);
    memcpy(p, v, n);
    return p + n;
}

static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (!v)
        return p;
    *p++ = (uint8_t)(field << 3);
    return put_varint(p, v);
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
    struct enc_field *fl = e->fl;
    for (uint32_t i = f->v[obj].first; i != MARS_FIELD_NIL; i = f->v[i].next) {
        const struct mars_field *v = &f->v[i];
        struct enc_field *m = &fl[e->nfl++];
        *m = (struct enc_field){.key = (const uint8_t *)v->key,
                                .key_len = v->key_len,
                                .kind = v->kind,
                                .flags = field_flags(v),
                                .parent = ppos};
        bool members = v->kind == MARS_FIELD_OBJECT && !(v->flags & MARS_FF_RAW);
        if (!members) {
            m->value = (const uint8_t *)v->value;
            m->value_len = v->value_len;
        }
        m->size = (uint32_t)(bytes_len(m->key_len) + uint_len(m->kind) + bytes_len(m->value_len) +
                             uint_len(m->flags) + uint_len(m->parent));
        if (members)
            flatten(e, f, i, e->nfl - base, base);
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
    if (mars_grow(&e->ev, &e->evcap, (size_t)e->nev + 1, sizeof(struct enc_event)) ||
        mars_grow(&e->fl, &e->flcap, (size_t)e->nfl + nf, sizeof(struct enc_field)))
        return -ENOMEM;

    struct enc_event *m = &((struct enc_event *)e->ev)[e->nev];
    size_t file_len = ev->file ? strlen(ev->file) : 0, host_len = ev->host ? strlen(ev->host) : 0;
    if (file_len > UINT32_MAX || host_len > UINT32_MAX)
        return -EMSGSIZE;
    *m = (struct enc_event){.msg = (const uint8_t *)ev->msg.ptr,
                            .msg_len = ev->msg.len,
                            .ts = (uint64_t)ev->ts_ns,
                            .flags = event_flags(ev),
                            .file = (const uint8_t *)ev->file,
                            .file_len = (uint32_t)file_len,
                            .host = (const uint8_t *)ev->host,
                            .host_len = (uint32_t)host_len,
                            .first = e->nfl};
    if (nf > 1)
        flatten(e, ev->fields, 0, 0, e->nfl);
    m->nfields = e->nfl - m->first;
    size_t es = bytes_len(m->msg_len) + uint_len(m->ts) + uint_len(m->flags) +
                bytes_len(m->file_len) + bytes_len(m->host_len);
    const struct enc_field *fl = e->fl;
    for (uint32_t i = m->first; i < e->nfl; i++)
        es += 1 + varint_len(fl[i].size) + fl[i].size;
    size_t add = 1 + varint_len(es) + es;
    if (es > UINT32_MAX || e->size + add > limit) {
        e->nfl = m->first;
        return e->nev == 0 || es > UINT32_MAX ? -EMSGSIZE : -ENOSPC;
    }
    m->size = (uint32_t)es;
    e->size += add;
    e->nev++;
    return 0;
}

/* Packs the added events as a mars.Batch into out (e->size bytes). */
static void pack_batch(const struct mars_wire_enc *e, uint8_t *out)
{
    const struct enc_event *ev = e->ev;
    const struct enc_field *fl = e->fl;
    uint8_t *p = out;
    for (uint32_t i = 0; i < e->nev; i++) {
        const struct enc_event *m = &ev[i];
        *p++ = 1 << 3 | 2; /* Batch.events */
        p = put_varint(p, m->size);
        p = put_bytes(p, 1, m->msg, m->msg_len);
        p = put_uint(p, 2, m->ts);
        p = put_uint(p, 3, m->flags);
        p = put_bytes(p, 4, m->file, m->file_len);
        for (uint32_t j = m->first; j < m->first + m->nfields; j++) {
            const struct enc_field *f = &fl[j];
            *p++ = 5 << 3 | 2; /* Event.fields */
            p = put_varint(p, f->size);
            p = put_bytes(p, 1, f->key, f->key_len);
            p = put_uint(p, 2, f->kind);
            p = put_bytes(p, 3, f->value, f->value_len);
            p = put_uint(p, 4, f->flags);
            p = put_uint(p, 5, f->parent);
        }
        p = put_bytes(p, 6, m->host, m->host_len);
    }
}

int mars_wire_enc_finish(struct mars_wire_enc *e, uint64_t seq, bool lz4)
{
    size_t n = e->size;
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
        pack_batch(e, e->raw);
        clen = mars_wire_lz4(e->raw, n, e->frame + MARS_WIRE_HDR, e->framecap - MARS_WIRE_HDR);
        if (clen == 0 && n > 0) /* incompressible: plain */
            memcpy(e->frame + MARS_WIRE_HDR, e->raw, n);
    } else {
        pack_batch(e, e->frame + MARS_WIRE_HDR);
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
