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
 * Decoding is by hand too: protobuf-c's generic unpack was the largest cost of reading a
 * disk buffer back (a fifth of it), copying every message into its own allocation. The
 * payload goes into the batch's arena once (a disk buffer decompresses into it), and each
 * event's message and field values point into it. Each event is read twice: once for its
 * scalars and to count its fields, so the engine's field array is sized once, then for
 * the fields, one append each. Unknown fields are stepped over as protobuf does, a known
 * field with the wrong wire type is an error, and the last of a repeated scalar wins. Peer bytes
 * are hostile: every kind, flag and parent index is checked, and numbers, escaped strings and raw
 * arrays/objects are validated as JSON, because encoders copy such values into their output as they
 * are.
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

/* A reader over protobuf bytes. Peer bytes are hostile: every length is checked against
 * what is left before it is used. */
struct pb {
    const uint8_t *p, *end;
};

static bool pb_varint(struct pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false; /* cut short, or longer than 10 bytes */
}

/* The next tag: its field number and wire type. False at the end or on a bad tag. */
static bool pb_tag(struct pb *r, uint32_t *field, unsigned *wt, const char **why)
{
    uint64_t t;
    if (!pb_varint(r, &t) || t >> 3 == 0 || t >> 3 > 0x1fffffff) {
        *why = "bad protobuf tag";
        return false;
    }
    *field = (uint32_t)(t >> 3);
    *wt = (unsigned)(t & 7);
    return true;
}

static bool pb_bytes(struct pb *r, struct pb *v)
{
    uint64_t n;
    if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
        return false;
    v->p = r->p;
    v->end = r->p + n;
    r->p += n;
    return true;
}

/* Steps over a field this decoder does not know (a newer sender's), as protobuf does. */
static bool pb_skip(struct pb *r, unsigned wt)
{
    uint64_t v;
    struct pb sub;
    switch (wt) {
    case 0:
        return pb_varint(r, &v);
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return false;
        r->p += n;
        return true;
    }
    case 2:
        return pb_bytes(r, &sub);
    default:
        return false; /* groups (3, 4) are not proto3; 6 and 7 do not exist */
    }
}

/* One wire field of a known number: its value as a varint (wt 0) or bytes (wt 2). A wrong
 * wire type for the field is an error, as in protobuf-c. */
static bool pb_field(struct pb *r, unsigned wt, unsigned want, uint64_t *v, struct pb *bytes)
{
    if (wt != want)
        return false;
    return want == 0 ? pb_varint(r, v) : pb_bytes(r, bytes);
}

struct dec_field {
    struct pb key, value;
    uint32_t kind, flags, parent;
};

struct dec_event {
    struct pb msg, file, host;
    int64_t ts;
    uint32_t flags, nfields;
};

static bool decode_field_msg(struct pb r, struct dec_field *m, const char **why)
{
    *m = (struct dec_field){.key = {r.p, r.p}, .value = {r.p, r.p}};
    while (r.p < r.end) {
        uint32_t num = 0;
        unsigned wt = 0;
        uint64_t v = 0;
        if (!pb_tag(&r, &num, &wt, why))
            return false;
        bool ok;
        switch (num) {
        case 1:
            ok = pb_field(&r, wt, 2, &v, &m->key);
            break;
        case 3:
            ok = pb_field(&r, wt, 2, &v, &m->value);
            break;
        case 2:
        case 4:
        case 5:
            ok = pb_field(&r, wt, 0, &v, NULL);
            if (num == 2)
                m->kind = (uint32_t)v; /* int32 enum, uint32s: the low 32 bits, as protobuf */
            else if (num == 4)
                m->flags = (uint32_t)v;
            else
                m->parent = (uint32_t)v;
            break;
        default:
            ok = pb_skip(&r, wt);
        }
        if (!ok) {
            *why = "field does not parse";
            return false;
        }
    }
    return true;
}

/* The first pass over an event: everything but its fields, which it only counts. */
static bool decode_event_msg(struct pb r, struct dec_event *m, const char **why)
{
    *m = (struct dec_event){.msg = {r.p, r.p}, .file = {r.p, r.p}, .host = {r.p, r.p}};
    while (r.p < r.end) {
        uint32_t num = 0;
        unsigned wt = 0;
        uint64_t v = 0;
        struct pb sub;
        if (!pb_tag(&r, &num, &wt, why))
            return false;
        bool ok;
        switch (num) {
        case 1:
            ok = pb_field(&r, wt, 2, &v, &m->msg);
            break;
        case 4:
            ok = pb_field(&r, wt, 2, &v, &m->file);
            break;
        case 6:
            ok = pb_field(&r, wt, 2, &v, &m->host);
            break;
        case 5:
            ok = pb_field(&r, wt, 2, &v, &sub);
            m->nfields++;
            break;
        case 2:
            ok = pb_field(&r, wt, 0, &v, NULL);
            m->ts = (int64_t)v;
            break;
        case 3:
            ok = pb_field(&r, wt, 0, &v, NULL);
            m->flags = (uint32_t)v;
            break;
        default:
            ok = pb_skip(&r, wt);
        }
        if (!ok) {
            *why = "event does not parse";
            return false;
        }
    }
    return true;
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
static int add_field(struct mars_batch *b, struct mars_fields *f, const struct dec_field *m,
                     uint32_t pos, const char **why)
{
    const uint8_t *val = m->value.p;
    size_t vlen = (size_t)(m->value.end - m->value.p);
    size_t klen = (size_t)(m->key.end - m->key.p);
    unsigned flags = 0;

    if (m->parent >= pos || f->v[m->parent].kind != MARS_FIELD_OBJECT ||
        (f->v[m->parent].flags & MARS_FF_RAW)) {
        *why = "field parent is not an earlier object";
        return -EPROTO;
    }
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
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
    mars_fields_append(f, m->parent, (const char *)m->key.p, (uint32_t)klen,
                       (enum mars_field_kind)m->kind, val ? (const char *)val : "", (uint32_t)vlen,
                       flags);
    return 0;
}

/* The string of the event before: events of one file share one copy. */
struct dec_prev {
    const char *s;
    size_t n;
};

/* v as a NUL-terminated string in b's arena, or the one of the event before. */
static int dec_string(struct mars_batch *b, struct pb v, struct dec_prev *prev, const char **out,
                      const char *what, const char **why)
{
    size_t n = (size_t)(v.end - v.p);
    if (n == 0)
        return 0;
    if (prev->s && prev->n == n && memcmp(prev->s, v.p, n) == 0) {
        *out = prev->s;
        return 0;
    }
    if (memchr(v.p, '\0', n)) {
        *why = what;
        return -EPROTO;
    }
    *out = prev->s = mars_arena_strndup(&b->arena, (const char *)v.p, n);
    prev->n = n;
    return *out ? 0 : -ENOMEM;
}

struct dec_state {
    struct dec_prev file, host;
};

static int decode_event(struct mars_batch *b, struct pb r, struct dec_state *st, const char **why)
{
    struct dec_event m;
    if (!decode_event_msg(r, &m, why))
        return -EPROTO;
    size_t mlen = (size_t)(m.msg.end - m.msg.p);
    if (mlen > UINT32_MAX || m.nfields >= MARS_FIELDS_MAX) {
        *why = "event too large";
        return -EPROTO;
    }
    if (m.flags & ~(unsigned)(MARS__EVENT__FLAG__OVERSIZE | MARS__EVENT__FLAG__PARTIAL |
                              MARS__EVENT__FLAG__NO_MESSAGE)) {
        *why = "bad event flags";
        return -EPROTO;
    }
    struct mars_event *ev = mars_batch_push(b);
    if (!ev)
        return -ENOMEM;
    ev->kind = MARS_EVENT_LOG;
    ev->source = b->source;
    ev->msg.ptr = mlen ? (const char *)m.msg.p : "";
    ev->msg.len = (uint32_t)mlen;
    ev->ts_ns = m.ts;
    if (m.flags & MARS__EVENT__FLAG__OVERSIZE)
        ev->flags |= MARS_EVF_OVERSIZE;
    if (m.flags & MARS__EVENT__FLAG__PARTIAL)
        ev->flags |= MARS_EVF_PARTIAL;
    if (m.flags & MARS__EVENT__FLAG__NO_MESSAGE)
        ev->flags |= MARS_EVF_NO_MESSAGE;
    b->bytes += ev->msg.len;
    int rc = dec_string(b, m.file, &st->file, &ev->file, "file path with a NUL byte", why);
    if (!rc)
        rc = dec_string(b, m.host, &st->host, &ev->host, "host name with a NUL byte", why);
    if (rc || m.nfields == 0)
        return rc;
    int err = 0;
    struct mars_fields *f = mars_fields_writable(b, ev, m.nfields, &err);
    if (!f)
        return err == -E2BIG ? (*why = "too many fields", -EPROTO) : err;
    /* the second pass: the fields, in order (a parent before its members) */
    uint32_t pos = 0;
    while (r.p < r.end) {
        uint32_t num = 0;
        unsigned wt = 0;
        struct pb sub;
        pb_tag(&r, &num, &wt, why); /* the first pass parsed every tag */
        if (num != 5) {
            pb_skip(&r, wt);
            continue;
        }
        pb_bytes(&r, &sub);
        struct dec_field fm;
        if (!decode_field_msg(sub, &fm, why))
            return -EPROTO;
        if ((rc = add_field(b, f, &fm, ++pos, why)))
            return rc;
    }
    return 0;
}

/* p lives as long as b: events point into it. */
static int decode_batch(const uint8_t *p, size_t n, struct mars_batch *b, const char **why)
{
    if (n == 0)
        return 0; /* an empty batch (p may be NULL) */
    struct pb r = {p, p + n};
    struct dec_state st = {0};
    while (r.p < r.end) {
        uint32_t num = 0;
        unsigned wt = 0;
        uint64_t v;
        struct pb ev;
        if (!pb_tag(&r, &num, &wt, why))
            return -EPROTO;
        bool ok = num == 1 ? pb_field(&r, wt, 2, &v, &ev) : pb_skip(&r, wt);
        if (!ok) {
            *why = "batch payload does not parse";
            return -EPROTO;
        }
        if (num == 1) {
            int rc = decode_event(b, ev, &st, why);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int mars_wire_decode_batch(const uint8_t *p, size_t n, struct mars_batch *b, const char **why)
{
    uint8_t *own = n ? mars_arena_alloc(&b->arena, n) : NULL;
    if (n && !own)
        return -ENOMEM;
    if (n)
        memcpy(own, p, n);
    return decode_batch(own, n, b, why);
}

int mars_wire_decode_batch_owned(const uint8_t *p, size_t n, struct mars_batch *b, const char **why)
{
    return decode_batch(p, n, b, why);
}
