/*
 * encode.h - turning the events of a sink request into bytes, once, in the sink.
 *
 * text: each message and a newline, as iovecs that point into the chunks the lines were
 * read into. Neighbouring lines that are still contiguous with their newline in the chunk
 * merge into one iovec, so passthrough of a file is a few large writev calls and no copy.
 * json / ndjson (the same for line-oriented sinks): one JSON object per line, built in
 * `out`: {"timestamp":"RFC 3339 with nanoseconds","message":"...",<parsed fields>}
 * (message is left out when a parser removed it); metric events as
 * {"timestamp":...,"name":...,"kind":...,"value":...,"labels":{...}}. Bytes that are not
 * valid UTF-8 become U+FFFD and are counted (the line itself is kept).
 *
 * Thread: the sink's worker. The encoder's buffers are reused across requests; the iovecs
 * stay valid until the next mars_encode_batches() on the same encoder.
 */
#ifndef MARS_ENCODE_H
#define MARS_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/schema.h"
#include "model/batch.h"

enum mars_encoding { MARS_ENC_TEXT, MARS_ENC_JSON, MARS_ENC_NDJSON };
extern const char *const mars_encoding_names[]; /* for ENUM options */

/* `fields` / `except_fields` of the sinks that write JSON: which root members of a log
 * event go out (timestamp, message, file, host and the parsed fields, by name; metric
 * events and the text encoding are not affected). */
struct mars_field_select {
    char *const *names; /* borrowed: the sink's conf */
    size_t n;
    bool except; /* names are left out; otherwise only names are written */
};
/* The two options, for a sink's table (struct mars_strlist members of its conf). */
#define MARS_ENCODE_FIELDS_OPTIONS(conf_type, fields_member, except_member)                        \
    {.name = "fields",                                                                             \
     .type = MARS_OPT_LIST,                                                                        \
     .offset = offsetof(conf_type, fields_member),                                                 \
     .desc = "json and ndjson: only these root members of a log event are written (timestamp, "    \
             "message, file, host or a parsed field's name); [] writes them all."},                \
    {                                                                                              \
        .name = "except_fields", .type = MARS_OPT_LIST,                                            \
        .offset = offsetof(conf_type, except_member),                                              \
        .desc = "json and ndjson: these root members of a log event are left out (e.g. "           \
                "[file, host]); not together with fields."                                         \
    }
/* Fills sel from a sink's two lists (borrowed). -EINVAL when both are set. */
int mars_field_select_init(struct mars_field_select *sel, const struct mars_strlist *fields,
                           const struct mars_strlist *except);

struct mars_encoder {
    struct iovec *iov;
    int niov;
    size_t iov_cap;
    char *out;
    size_t out_len, out_cap;
    uint64_t invalid_utf8; /* replaced sequences, cumulative */
    /* the last second a timestamp was written for, and its `"YYYY-MM-DDTHH:MM:SS.` (events
     * of one second share it: only the nanoseconds are written per event) */
    int64_t ts_sec;
    bool ts_cached;
    char ts_prefix[24];
    const struct mars_field_select *select; /* NULL: every member (set by the sink) */
};

void mars_encoder_fini(struct mars_encoder *e);
/* Encodes every event of the nb batches (reset + events + finish), e.g. a sink request's
 * r->batches. Returns total bytes, or -ENOMEM. */
int64_t mars_encode_batches(struct mars_encoder *e, enum mars_encoding enc,
                            struct mars_batch *const *batches, uint32_t nb);
/* Piecewise: reset, append any number of event ranges, then finish before using iov. */
void mars_encoder_reset(struct mars_encoder *e);
int64_t mars_encode_events(struct mars_encoder *e, enum mars_encoding enc,
                           const struct mars_event *ev, uint32_t n);
int mars_encoder_finish(struct mars_encoder *e, enum mars_encoding enc);
/* Appends one event as JSON (no newline) to e->out. Returns 0 or -ENOMEM. */
int mars_encode_json_event(struct mars_encoder *e, const struct mars_event *ev);
/* Choices for mars_encode_json_event_opts. */
struct mars_json_opts {
    const char *ts_key;   /* key of the timestamp member (NULL: "timestamp"); a root member of
                           * that name, else one named timestamp, is the value */
    const uint32_t *skip; /* field entries (indices into ev->fields->v) to leave out */
    uint32_t nskip;
    bool no_message; /* leave out the raw line when no message field exists */
    /* objects (entries) whose member keys, and those of the objects inside them, are
     * written with '.' replaced by '_' (Elasticsearch reads dots as nesting) */
    const uint32_t *dedot;
    uint32_t ndedot;
};
/* mars_encode_json_event with choices (o may be NULL). Returns 0 or -ENOMEM. */
int mars_encode_json_event_opts(struct mars_encoder *e, const struct mars_event *ev,
                                const struct mars_json_opts *o);
/* Appends raw bytes to e->out. Returns 0 or -ENOMEM. */
int mars_encoder_put(struct mars_encoder *e, const void *p, size_t n);
/* Appends s as a JSON string (quotes included), replacing invalid UTF-8. */
int mars_encode_json_string(struct mars_encoder *e, const char *s, size_t n);

#endif
