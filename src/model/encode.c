/*
 * encode.c - text and JSON encodings of sink requests (see encode.h).
 *
 * JSON strings: core/json_escape.h, with \n \r \t as short escapes and invalid UTF-8
 * (overlongs, surrogates and values above U+10FFFF too) replaced, since a log line is
 * arbitrary bytes and the output must be valid JSON whatever came in.
 *
 * Parsed fields (fields.h) follow "timestamp" and "message" in their order. Values that are
 * still JSON text validated by the scanner (escaped strings, numbers, arrays, raw objects)
 * are copied as they are; root members named timestamp or message take those two places.
 */
#include "model/encode.h"

#include "model/fields.h"

#include "core/grow.h"
#include "core/json_escape.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const mars_encoding_names[] = {"text", "json", "ndjson", NULL};

static const char newline = '\n';

void mars_encoder_fini(struct mars_encoder *e)
{
    free(e->iov);
    free(e->out);
    *e = (struct mars_encoder){0};
}

static int out_reserve(struct mars_encoder *e, size_t more)
{
    return mars_grow(&e->out, &e->out_cap, e->out_len + more, 1);
}

static int out_put(struct mars_encoder *e, const void *p, size_t n)
{
    if (out_reserve(e, n))
        return -ENOMEM;
    memcpy(e->out + e->out_len, p, n);
    e->out_len += n;
    return 0;
}

static int iov_add(struct mars_encoder *e, const void *base, size_t len)
{
    if (e->niov > 0) {
        struct iovec *last = &e->iov[e->niov - 1];
        if ((const char *)last->iov_base + last->iov_len == (const char *)base) {
            last->iov_len += len;
            return 0;
        }
    }
    if (mars_grow(&e->iov, &e->iov_cap, (size_t)e->niov + 1, sizeof(*e->iov)))
        return -ENOMEM;
    e->iov[e->niov++] = (struct iovec){.iov_base = (void *)base, .iov_len = len};
    return 0;
}

/* utf8: str is known to be valid UTF-8 (MARS_EVF_UTF8), so the escaper need not check it. */
static int put_string(struct mars_encoder *e, const char *str, size_t n, bool utf8)
{
    /* the worst case reserved once, so the escaper runs without room checks */
    if (out_reserve(e, n * MARS_JSON_ESC_MAX + 2))
        return -ENOMEM;
    char *o = e->out + e->out_len;
    *o++ = '"';
    struct mars_json_esc r =
        mars_json_escape(o, n * MARS_JSON_ESC_MAX, str, n,
                         utf8 ? MARS_JSON_ESC_SHORT : MARS_JSON_ESC_SHORT | MARS_JSON_ESC_UTF8);
    o[r.out] = '"';
    e->out_len += r.out + 2;
    e->invalid_utf8 += r.invalid;
    return 0;
}

int mars_encode_json_string(struct mars_encoder *e, const char *str, size_t n)
{
    return put_string(e, str, n, false);
}

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                  "31323334353637383940414243444546474849505152535455565758596061"
                                  "62636465666768697071727374757677787980818283848586878889909192"
                                  "93949596979899";

/* "RFC 3339 with nanoseconds": the date and time of day are formatted once per second. */
static int put_timestamp(struct mars_encoder *e, int64_t ts_ns)
{
    char buf[48];
    int64_t sec = ts_ns / 1000000000;
    long nsec = (long)(ts_ns % 1000000000);
    if (nsec < 0) {
        nsec += 1000000000;
        sec--;
    }
    if (!e->ts_cached || sec != e->ts_sec) {
        struct tm tm;
        time_t t = (time_t)sec;
        gmtime_r(&t, &tm);
        if (strftime(e->ts_prefix, sizeof(e->ts_prefix), "\"%Y-%m-%dT%H:%M:%S.", &tm) != 21)
            return out_put(e, "null", 4); /* a year past 9999 */
        e->ts_sec = sec;
        e->ts_cached = true;
    }
    memcpy(buf, e->ts_prefix, 21);
    buf[21] = (char)('0' + nsec / 100000000); /* then four pairs of digits */
    for (int i = 28; i >= 22; i -= 2, nsec /= 100)
        memcpy(buf + i, digit_pairs + 2 * (nsec % 100), 2);
    buf[30] = 'Z';
    buf[31] = '"';
    return out_put(e, buf, 32);
}

static int put_metric(struct mars_encoder *e, const struct mars_metric *m)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram", "summary"};
    char num[128];
    int rc = out_put(e, ",\"name\":", 8);
    rc = rc ? rc : mars_encode_json_string(e, m->name.ptr, m->name.len);
    rc = rc ? rc : out_put(e, ",\"kind\":\"", 9);
    rc = rc ? rc : out_put(e, kinds[m->kind], strlen(kinds[m->kind]));
    int n = snprintf(num, sizeof(num), "\",\"value\":%.17g,", m->value);
    rc = rc ? rc : out_put(e, num, (size_t)n);
    if (m->kind == MARS_METRIC_HISTOGRAM) { /* value is the sum; buckets are cumulative */
        n = snprintf(num, sizeof(num), "\"count\":%llu,\"buckets\":[",
                     (unsigned long long)m->count);
        rc = rc ? rc : out_put(e, num, (size_t)n);
        for (uint32_t i = 0; rc == 0 && i < m->nbuckets; i++) {
            n = snprintf(num, sizeof(num), "%s{\"le\":%.17g,\"count\":%llu}", i ? "," : "",
                         m->buckets[i].le, (unsigned long long)m->buckets[i].count);
            rc = out_put(e, num, (size_t)n);
        }
        rc = rc ? rc : out_put(e, "],", 2);
    }
    if (m->kind == MARS_METRIC_SUMMARY) { /* value is the sum */
        n = snprintf(num, sizeof(num), "\"count\":%llu,\"quantiles\":[",
                     (unsigned long long)m->count);
        rc = rc ? rc : out_put(e, num, (size_t)n);
        for (uint32_t i = 0; rc == 0 && i < m->nquantiles; i++) {
            double v = m->quantiles[i].value;
            n = isfinite(v) ? snprintf(num, sizeof(num), "%s{\"q\":%.17g,\"value\":%.17g}",
                                       i ? "," : "", m->quantiles[i].q, v)
                            : snprintf(num, sizeof(num), "%s{\"q\":%.17g,\"value\":null}",
                                       i ? "," : "", m->quantiles[i].q);
            rc = out_put(e, num, (size_t)n);
        }
        rc = rc ? rc : out_put(e, "],", 2);
    }
    rc = rc ? rc : out_put(e, "\"labels\":{", 10);
    for (uint32_t i = 0; rc == 0 && i < m->nlabels; i++) {
        if (i)
            rc = out_put(e, ",", 1);
        rc = rc ? rc : mars_encode_json_string(e, m->labels[i].name.ptr, m->labels[i].name.len);
        rc = rc ? rc : out_put(e, ":", 1);
        rc = rc ? rc : mars_encode_json_string(e, m->labels[i].value.ptr, m->labels[i].value.len);
    }
    return rc ? rc : out_put(e, "}", 1);
}

static int put_members(struct mars_encoder *e, const struct mars_fields *f, uint32_t obj, bool root,
                       bool comma, const struct mars_json_opts *o, bool dedot);
static bool selected(const struct mars_encoder *e, const char *k, size_t n);

static int put_field_value(struct mars_encoder *e, const struct mars_fields *f, uint32_t i,
                           const struct mars_json_opts *o, bool dedot)
{
    const struct mars_field *v = &f->v[i];
    int rc;
    switch (v->kind) {
    case MARS_FIELD_STRING:
        if (!(v->flags & MARS_FF_ESCAPED))
            return mars_encode_json_string(e, v->value, v->value_len);
        rc = out_put(e, "\"", 1);
        rc = rc ? rc : out_put(e, v->value, v->value_len);
        return rc ? rc : out_put(e, "\"", 1);
    case MARS_FIELD_OBJECT:
        if (v->flags & MARS_FF_RAW)
            return out_put(e, v->value, v->value_len);
        rc = out_put(e, "{", 1);
        rc = rc ? rc : put_members(e, f, i, false, false, o, dedot);
        return rc ? rc : out_put(e, "}", 1);
    default: /* numbers, literals and arrays are valid JSON text */
        return out_put(e, v->value, v->value_len);
    }
}

static bool is_key(const struct mars_field *v, const char *k, uint32_t n)
{
    return v->key_len == n && memcmp(v->key, k, n) == 0;
}

/* Whether entry i is in the list v of n entries (mars_json_opts' skip and dedot). */
static bool listed(const uint32_t *v, uint32_t n, uint32_t i)
{
    for (uint32_t k = 0; k < n; k++)
        if (v[k] == i)
            return true;
    return false;
}

/* A key with '.' written as '_' (keys longer than the stack copy go through the heap). */
static int put_dedot_key(struct mars_encoder *e, const char *k, uint32_t n)
{
    char buf[256], *d = n <= sizeof(buf) ? buf : malloc(n);
    if (!d)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        d[i] = k[i] == '.' ? '_' : k[i];
    int rc = mars_encode_json_string(e, d, n);
    if (d != buf)
        free(d);
    return rc;
}

static bool skipped(const struct mars_json_opts *o, uint32_t i)
{
    return o && listed(o->skip, o->nskip, i);
}

/* Members of object obj. At the root, timestamp and message (and o's timestamp key) were
 * written already; entries listed in o->skip are left out at any depth. */
static int put_members(struct mars_encoder *e, const struct mars_fields *f, uint32_t obj, bool root,
                       bool comma, const struct mars_json_opts *o, bool dedot)
{
    int rc = 0;
    for (uint32_t i = f->v[obj].first; rc == 0 && i != MARS_FIELD_NIL; i = f->v[i].next) {
        const struct mars_field *v = &f->v[i];
        if (root && (is_key(v, "timestamp", 9) || is_key(v, "message", 7) ||
                     (o && o->ts_key && is_key(v, o->ts_key, (uint32_t)strlen(o->ts_key)))))
            continue;
        if (skipped(o, i) || (root && !selected(e, v->key, v->key_len)))
            continue;
        if (comma)
            rc = out_put(e, ",", 1);
        comma = true;
        rc = rc ? rc
             : dedot && memchr(v->key, '.', v->key_len)
                 ? put_dedot_key(e, v->key, v->key_len)
                 : mars_encode_json_string(e, v->key, v->key_len);
        rc = rc ? rc : out_put(e, ":", 1);
        rc = rc ? rc : put_field_value(e, f, i, o, dedot || (o && listed(o->dedot, o->ndedot, i)));
    }
    return rc;
}

int mars_encode_json_event(struct mars_encoder *e, const struct mars_event *ev)
{
    return mars_encode_json_event_opts(e, ev, NULL);
}

int mars_encoder_put(struct mars_encoder *e, const void *p, size_t n)
{
    return out_put(e, p, n);
}

int mars_field_select_init(struct mars_field_select *sel, const struct mars_strlist *fields,
                           const struct mars_strlist *except)
{
    if (fields->n && except->n)
        return -EINVAL;
    *sel = (struct mars_field_select){.names = fields->n ? fields->v : except->v,
                                      .n = fields->n ? fields->n : except->n,
                                      .except = except->n > 0};
    return 0;
}

/* Whether root member k goes out under the encoder's field selection. */
static bool selected(const struct mars_encoder *e, const char *k, size_t n)
{
    const struct mars_field_select *sel = e->select;
    if (!sel || sel->n == 0)
        return true;
    for (size_t i = 0; i < sel->n; i++)
        if (strlen(sel->names[i]) == n && memcmp(sel->names[i], k, n) == 0)
            return !sel->except;
    return sel->except;
}

/* Writes `"k":` after a comma when *comma (then sets it); k is escaped unless plain (one
 * of the encoder's own names, copied as it is). */
static inline __attribute__((always_inline)) int put_key(struct mars_encoder *e, bool *comma,
                                                         const char *k, uint32_t n, bool plain)
{
    int rc = *comma ? out_put(e, ",", 1) : 0;
    *comma = true;
    if (plain) { /* inlined where k is a literal: one room check, fixed-size copies */
        if (rc || out_reserve(e, (size_t)n + 3))
            return -ENOMEM;
        char *o = e->out + e->out_len;
        o[0] = '"';
        memcpy(o + 1, k, n);
        memcpy(o + 1 + n, "\":", 2);
        e->out_len += (size_t)n + 3;
        return 0;
    }
    rc = rc ? rc : mars_encode_json_string(e, k, n);
    return rc ? rc : out_put(e, ":", 1);
}

int mars_encode_json_event_opts(struct mars_encoder *e, const struct mars_event *ev,
                                const struct mars_json_opts *o)
{
    const struct mars_fields *f = ev->kind == MARS_EVENT_LOG ? ev->fields : NULL;
    static const char timestamp_key[] = "timestamp";
    const char *ts_key = o && o->ts_key ? o->ts_key : timestamp_key;
    uint32_t ts_len = (uint32_t)strlen(ts_key);
    uint32_t ts = f ? mars_fields_member(f, 0, ts_key, ts_len) : MARS_FIELD_NIL;
    if (ts == MARS_FIELD_NIL && f && o && o->ts_key)
        ts = mars_fields_member(f, 0, "timestamp", 9);
    uint32_t msg = f ? mars_fields_member(f, 0, "message", 7) : MARS_FIELD_NIL;
    bool msg_skipped = msg != MARS_FIELD_NIL && skipped(o, msg);
    bool metric = ev->kind == MARS_EVENT_METRIC && ev->metric, comma = false;
    int rc = out_put(e, "{", 1);
    if (metric || selected(e, ts_key, ts_len)) {
        rc = rc ? rc : put_key(e, &comma, ts_key, ts_len, ts_key == timestamp_key);
        if (ts != MARS_FIELD_NIL)
            rc = rc ? rc : put_field_value(e, f, ts, o, false);
        else
            rc = rc ? rc : put_timestamp(e, ev->ts_ns);
    }
    if (metric) {
        rc = rc ? rc : put_metric(e, ev->metric);
        return rc ? rc : out_put(e, "}", 1); /* the event object (put_metric closes labels) */
    }
    if (msg_skipped || !selected(e, "message", 7)) {
        /* removed by the caller or not selected: neither the field nor the raw line */
    } else if (msg != MARS_FIELD_NIL) {
        rc = rc ? rc : put_key(e, &comma, "message", 7, true);
        rc = rc ? rc : put_field_value(e, f, msg, o, false);
    } else if (!(ev->flags & MARS_EVF_NO_MESSAGE) && !(o && o->no_message)) {
        rc = rc ? rc : put_key(e, &comma, "message", 7, true);
        rc = rc ? rc : put_string(e, ev->msg.ptr, ev->msg.len, ev->flags & MARS_EVF_UTF8);
    }
    if (ev->file && (!f || mars_fields_member(f, 0, "file", 4) == MARS_FIELD_NIL) &&
        selected(e, "file", 4)) {
        rc = rc ? rc : put_key(e, &comma, "file", 4, true);
        rc = rc ? rc : mars_encode_json_string(e, ev->file, strlen(ev->file));
    }
    if (ev->host && (!f || mars_fields_member(f, 0, "host", 4) == MARS_FIELD_NIL) &&
        selected(e, "host", 4)) {
        rc = rc ? rc : put_key(e, &comma, "host", 4, true);
        rc = rc ? rc : mars_encode_json_string(e, ev->host, strlen(ev->host));
    }
    if (f)
        rc = rc ? rc : put_members(e, f, 0, true, comma, o, false);
    return rc ? rc : out_put(e, "}", 1);
}

void mars_encoder_reset(struct mars_encoder *e)
{
    e->niov = 0;
    e->out_len = 0;
}

static int64_t encode_text(struct mars_encoder *e, const struct mars_event *ev, uint32_t n)
{
    int64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        if (ev[i].flags & MARS_EVF_NL_FOLLOWS) {
            rc = iov_add(e, ev[i].msg.ptr, ev[i].msg.len + 1u);
        } else {
            rc = iov_add(e, ev[i].msg.ptr, ev[i].msg.len);
            rc = rc ? rc : iov_add(e, &newline, 1);
        }
        if (rc)
            return rc;
        total += ev[i].msg.len + 1;
    }
    return total;
}

static int64_t encode_json(struct mars_encoder *e, const struct mars_event *ev, uint32_t n)
{
    size_t before = e->out_len;
    for (uint32_t i = 0; i < n; i++)
        if (mars_encode_json_event(e, &ev[i]) || out_put(e, "\n", 1))
            return -ENOMEM;
    return (int64_t)(e->out_len - before);
}

int64_t mars_encode_events(struct mars_encoder *e, enum mars_encoding enc,
                           const struct mars_event *ev, uint32_t n)
{
    return enc == MARS_ENC_TEXT ? encode_text(e, ev, n) : encode_json(e, ev, n);
}

/* JSON output lives in one growing buffer, so its iovec is only taken at the end. */
int mars_encoder_finish(struct mars_encoder *e, enum mars_encoding enc)
{
    if (enc != MARS_ENC_TEXT && e->out_len)
        return iov_add(e, e->out, e->out_len);
    return 0;
}

int64_t mars_encode_batches(struct mars_encoder *e, enum mars_encoding enc,
                            struct mars_batch *const *batches, uint32_t nb)
{
    int64_t total = 0;
    mars_encoder_reset(e);
    for (uint32_t b = 0; b < nb; b++) {
        int64_t n = mars_encode_events(e, enc, batches[b]->ev, batches[b]->n);
        if (n < 0)
            return n;
        total += n;
    }
    return mars_encoder_finish(e, enc) ? -ENOMEM : total;
}
