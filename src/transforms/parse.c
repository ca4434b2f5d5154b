/*
 * parse.c - the `parse` transform: turns a field of each log event (the message by
 * default) into fields, with one of the formats in parse_formats.c.
 *
 * Per event: read the source field (a slice of the line, no copy), run the format's parser
 * into a builder that is reused for every event, then merge the result into the event at
 * `target` (the root by default) with one array copy into the batch arena. At the root, a
 * parsed string `message` becomes the event's message; otherwise the line stops being the
 * message (unless keep_original) but stays what text sinks write. Formats that carry the
 * time (cri, docker, syslog, nginx, apache) set the event time; `timestamp.field` takes
 * it from a parsed field instead, with its format and time zone.
 *
 * A line that does not parse is counted (errors{error_type="parse"}), logged at a limited
 * rate, and then kept unchanged (on_error: keep), dropped (drop, also counted as discarded
 * on purpose), or kept with `error_field` set to the reason (tag). on_error: pass is for
 * streams where plain lines are expected among structured ones (JSON logs with start-up
 * banners and panics): the line is kept as it is and only counted in
 * mars_parse_unparsed_events_total, never logged.
 *
 * A timestamp.field that is missing or does not read is not a failed parse: the fields are
 * kept, the event keeps the time it had (the read time), and the miss is counted in
 * mars_parse_timestamp_misses_total{reason}. message_key names the parsed keys the
 * message may come from (msg, log, @message, ...): the first one present with a string
 * value becomes the event's message.
 *
 * Thread: each worker has its own instance (regexes and builders are per thread).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "parse_internal.h"
#include "component.h"
#include "transforms_internal.h"

enum on_error { ON_ERROR_KEEP, ON_ERROR_DROP, ON_ERROR_TAG, ON_ERROR_PASS };
static const char *const on_error_names[] = {"keep", "drop", "tag", "pass", NULL};

struct parse_ts_conf {
    char *field;
    char *format;
    char *timezone;
};

struct parse_conf {
    int format;
    char *field;
    char *target;
    bool keep_original;
    int on_error;
    char *error_field;
    char *pattern;
    char *field_delimiter;
    char *value_delimiter;
    int64_t max_depth;
    struct mars_strlist message_key;
    struct parse_ts_conf timestamp;
};

#define TOFF(f) offsetof(struct parse_ts_conf, f)
static const struct mars_opt timestamp_options[] = {
    {.name = "field",
     .type = MARS_OPT_STRING,
     .offset = TOFF(field),
     .desc = "Parsed field (path inside the parsed data) holding the event time; unset keeps "
             "the time the format carries, or the time the line was read."},
    {.name = "format",
     .type = MARS_OPT_STRING,
     .offset = TOFF(format),
     .def = "rfc3339",
     .desc = "How that field is written: rfc3339, unix, unix_ms, unix_us, unix_ns, or a "
             "strptime-like pattern such as \"%d/%b/%Y:%H:%M:%S %z\"."},
    {.name = "timezone",
     .type = MARS_OPT_STRING,
     .offset = TOFF(timezone),
     .def = "UTC",
     .desc = "Zone of times written without an offset: UTC, local, +hh:mm, or an IANA name "
             "such as Europe/Berlin."},
    {.name = NULL},
};

#define OFF(f) offsetof(struct parse_conf, f)
static const struct mars_opt parse_options[] = {
    {.name = "format",
     .type = MARS_OPT_ENUM,
     .offset = OFF(format),
     .choices = mars_parse_format_names,
     .flags = MARS_OPT_REQUIRED,
     .desc = "What the field holds: json, logfmt, key_value, regex (named captures of "
             "`pattern`), cri, docker (json-file), syslog (RFC 5424 and 3164), nginx or "
             "apache (combined log format)."},
    {.name = "field",
     .type = MARS_OPT_STRING,
     .offset = OFF(field),
     .def = "message",
     .desc = "Field to parse (a path such as message or kubernetes.log)."},
    {.name = "target",
     .type = MARS_OPT_STRING,
     .offset = OFF(target),
     .def = "",
     .desc = "Where parsed fields go: empty merges them at the root, a path puts them under "
             "that object."},
    {.name = "keep_original",
     .type = MARS_OPT_BOOL,
     .offset = OFF(keep_original),
     .def = "false",
     .desc = "Keep the parsed field after a successful parse."},
    {.name = "on_error",
     .type = MARS_OPT_ENUM,
     .offset = OFF(on_error),
     .def = "keep",
     .choices = on_error_names,
     .desc = "What happens to an event whose field does not parse: keep it unchanged, drop "
             "it, or tag it with error_field (each counted as a parse error and logged at a "
             "limited rate); pass keeps it unchanged, counted only in "
             "mars_parse_unparsed_events_total and not logged (plain lines expected among "
             "JSON ones)."},
    {.name = "error_field",
     .type = MARS_OPT_STRING,
     .offset = OFF(error_field),
     .def = "parse_error",
     .desc = "Field set to the reason when on_error is tag."},
    {.name = "pattern",
     .type = MARS_OPT_STRING,
     .offset = OFF(pattern),
     .desc = "format regex: a PCRE2 pattern whose named groups (?<name>...) become fields."},
    {.name = "field_delimiter",
     .type = MARS_OPT_STRING,
     .offset = OFF(field_delimiter),
     .def = " ",
     .desc = "format key_value: what separates pairs."},
    {.name = "value_delimiter",
     .type = MARS_OPT_STRING,
     .offset = OFF(value_delimiter),
     .def = "=",
     .desc = "format key_value: what separates a key from its value."},
    {.name = "max_depth",
     .type = MARS_OPT_INT,
     .offset = OFF(max_depth),
     .def = "64",
     .min = 1,
     .max = 512,
     .desc = "format json and docker: deepest nesting of objects and arrays accepted."},
    {.name = "message_key",
     .type = MARS_OPT_LIST,
     .offset = OFF(message_key),
     .desc = "Parsed keys the message may be under, such as [msg, message, log, \"@message\"]: "
             "the first present with a string value becomes the event's message (parsing at "
             "the root only). Unset: a parsed `message` key, if any."},
    {.name = "timestamp",
     .type = MARS_OPT_SECTION,
     .offset = OFF(timestamp),
     .sub = timestamp_options,
     .desc = "Taking the event time from a parsed field."},
    {.name = NULL},
};

struct parse {
    struct mars_transform *t;
    const struct parse_conf *conf;
    struct mars_path *field, *target, *error_field, *ts_field;
    struct mars_timefmt *ts_fmt;
    struct mars_parse_ctx ctx;
    mars_parse_fn fn;
    bool field_is_message, root;
    bool *keep;
    size_t keep_cap;
    /* message_key: names and lengths */
    const char *const *mkey;
    uint32_t *mkey_len;
    size_t nmkey;
    unsigned shard;
    struct mars_mseries *unparsed, *ts_missing, *ts_invalid;
};

/* ---- config ---- */

static int check_timestamp(const struct parse_conf *c, const struct mars_cfg_node *node,
                           struct mars_diag *diag)
{
    char why[200];
    int rc = 0;
    const struct mars_cfg_node *ts = mars_cfg_get(node, "timestamp");
    if (c->timestamp.field && mars_check_path(c->timestamp.field, mars_cfg_at(ts, "field", NULL),
                                              "timestamp.field", true, diag))
        rc = -EINVAL;
    struct mars_timefmt *f =
        mars_timefmt_compile(c->timestamp.format, c->timestamp.timezone, why, sizeof(why));
    if (!f) {
        const struct mars_cfg_node *at =
            mars_cfg_at(ts ? ts : node, ts ? "format" : "timestamp", NULL);
        if (strstr(why, "zone"))
            at = mars_cfg_at(ts ? ts : node, ts ? "timezone" : "timestamp", NULL);
        mars_diag_add(diag, at->file, at->line, at->col, "option 'timestamp': %s", why);
        rc = -EINVAL;
    }
    mars_timefmt_destroy(f);
    return rc;
}

static int parse_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct parse_conf *c = conf;
    int rc = 0;
    if (mars_check_path(c->field, mars_cfg_at(node, "field", NULL), "field", false, diag) ||
        mars_check_path(c->error_field, mars_cfg_at(node, "error_field", NULL), "error_field", true,
                        diag))
        rc = -EINVAL;
    if (c->target[0] &&
        mars_check_path(c->target, mars_cfg_at(node, "target", NULL), "target", true, diag))
        rc = -EINVAL;
    if ((c->format == MARS_PARSE_REGEX) != (c->pattern != NULL)) {
        const struct mars_cfg_node *at = mars_cfg_at(node, c->pattern ? "pattern" : "format", NULL);
        mars_diag_add(diag, at->file, at->line, at->col, "%s",
                      c->pattern ? "option 'pattern' is only used by format: regex"
                                 : "format regex needs a 'pattern' with named groups");
        rc = -EINVAL;
    } else if (c->pattern &&
               mars_check_regex(c->pattern, mars_cfg_at(node, "pattern", NULL), "pattern", diag)) {
        rc = -EINVAL;
    }
    if (!c->field_delimiter[0] || !c->value_delimiter[0]) {
        mars_diag_add(diag, node->file, node->line, node->col,
                      "field_delimiter and value_delimiter must not be empty");
        rc = -EINVAL;
    }
    if (c->message_key.n && (c->target[0] || c->keep_original)) {
        const struct mars_cfg_node *at = mars_cfg_at(node, "message_key", NULL);
        mars_diag_add(diag, at->file, at->line, at->col,
                      "option 'message_key' needs the parsed fields at the root (no target) "
                      "and keep_original off: both decide what the message is");
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->message_key.n; i++)
        if (!c->message_key.v[i][0]) {
            const struct mars_cfg_node *at = mars_cfg_item_at(node, "message_key", i);
            mars_diag_add(diag, at->file, at->line, at->col,
                          "option 'message_key': a key must not be empty");
            rc = -EINVAL;
        }
    return check_timestamp(c, node, diag) ? -EINVAL : rc;
}

static void parse_destroy(struct mars_transform *t)
{
    struct parse *p = mars_transform_state(t);
    if (!p)
        return;
    mars_path_destroy(p->field);
    mars_path_destroy(p->target);
    mars_path_destroy(p->error_field);
    mars_path_destroy(p->ts_field);
    mars_timefmt_destroy(p->ts_fmt);
    mars_regex_destroy(p->ctx.re);
    mars_parse_ctx_fini(&p->ctx);
    free(p->keep);
    free(p->mkey_len);
    free(p);
}

static int parse_setup(struct mars_transform *t, struct parse *p);

/* The worker calls destroy only after a successful init: a failed init cleans up here. */
static int parse_init(struct mars_transform *t)
{
    struct parse *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    mars_transform_set_state(t, p);
    int rc = parse_setup(t, p);
    if (rc) {
        parse_destroy(t);
        mars_transform_set_state(t, NULL);
    }
    return rc;
}

/* The outcomes that are not errors get families of their own (errors_total would make a
 * JSON stream with a few plain lines look broken). */
static void register_metrics(struct mars_transform *t, struct parse *p)
{
    static const char *const reason_labels[] = {"component_id", "reason", NULL};
    struct mars_obs *obs = mars_transform_obs(t);
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    if (!m)
        return;
    const char *id = mars_transform_id(t);
    p->shard = mars_transform_shard(t);
    struct mars_mfamily *ts = mars_metrics_family(
        m, &(struct mars_mfamily_desc){
               .name = "mars_parse_timestamp_misses_total",
               .help = "Parsed events whose timestamp.field was missing or did not read; they "
                       "keep their read time.",
               .type = MARS_MT_COUNTER,
               .labels = reason_labels});
    p->unparsed = mars_parse_unparsed_series(obs, id);
    p->ts_missing = ts ? mars_mfamily_series(ts, (const char *const[]){id, "missing"}) : NULL;
    p->ts_invalid = ts ? mars_mfamily_series(ts, (const char *const[]){id, "invalid"}) : NULL;
}

static int parse_setup(struct mars_transform *t, struct parse *p)
{
    const struct parse_conf *c = mars_transform_conf(t);
    char why[200];
    size_t at;
    p->t = t;
    p->conf = c;
    p->fn = mars_parse_fn_for(c->format);
    p->field = mars_transform_path(c->field);
    p->target = mars_transform_path(c->target);
    p->error_field = mars_transform_path(c->error_field);
    p->ts_field = c->timestamp.field ? mars_transform_path(c->timestamp.field) : NULL;
    p->ts_fmt = mars_timefmt_compile(c->timestamp.format, c->timestamp.timezone, why, sizeof(why));
    if (mars_parse_ctx_init(&p->ctx) || !p->field || !p->target || !p->error_field || !p->ts_fmt ||
        (c->timestamp.field && !p->ts_field))
        return -ENOMEM;
    p->field_is_message = mars_path_is(p->field, "message");
    p->root = p->target->n == 0;
    p->ctx.max_depth = (unsigned)c->max_depth;
    p->ctx.fdelim = c->field_delimiter;
    p->ctx.fdelim_len = strlen(c->field_delimiter);
    p->ctx.vdelim = c->value_delimiter;
    p->ctx.vdelim_len = strlen(c->value_delimiter);
    if (c->pattern &&
        !(p->ctx.re = mars_regex_compile(c->pattern, strlen(c->pattern), &at, why, sizeof(why))))
        return -EINVAL;
    p->nmkey = c->message_key.n;
    p->mkey = (const char *const *)c->message_key.v;
    if (p->nmkey && !(p->mkey_len = calloc(p->nmkey, sizeof(*p->mkey_len))))
        return -ENOMEM;
    for (size_t i = 0; i < p->nmkey; i++)
        p->mkey_len[i] = (uint32_t)strlen(p->mkey[i]);
    register_metrics(t, p);
    return 0;
}

/* ---- data path ---- */

/* Builder entry at a path inside the parsed data (names only), or NIL. */
static uint32_t builder_get(const struct mars_fbuild *fb, const struct mars_path *p,
                            uint32_t *parent)
{
    uint32_t at = 0, m = MARS_FIELD_NIL;
    for (uint32_t i = 0; i < p->n; i++) {
        if (!p->seg[i].name || fb->v[at].kind != MARS_FIELD_OBJECT)
            return MARS_FIELD_NIL;
        m = mars_fbuild_find(fb, at, p->seg[i].name, p->seg[i].len);
        if (m == MARS_FIELD_NIL)
            return m;
        *parent = at;
        at = m;
    }
    return m;
}

static void builder_unlink(struct mars_fbuild *fb, uint32_t parent, uint32_t m)
{
    uint32_t prev = MARS_FIELD_NIL;
    for (uint32_t k = fb->v[parent].first; k != MARS_FIELD_NIL; prev = k, k = fb->v[k].next) {
        if (k != m)
            continue;
        if (prev == MARS_FIELD_NIL)
            fb->v[parent].first = fb->v[k].next;
        else
            fb->v[prev].next = fb->v[k].next;
        if (fb->v[parent].last == k)
            fb->v[parent].last = prev;
        return;
    }
}

/* timestamp.field: parse it into the event time; the root `timestamp` member itself is
 * dropped once it is the event time (it would shadow it in JSON output). A field that is
 * missing or does not read leaves the event its time and every parsed field: counted, and
 * logged at a limited rate when it is there but unreadable (a format mismatch is a
 * configuration problem worth seeing; a missing field is routine). */
static void explicit_time(struct parse *p, struct mars_event *ev)
{
    struct mars_fbuild *fb = &p->ctx.fb;
    uint32_t parent = 0, m = builder_get(fb, p->ts_field, &parent);
    int64_t ns;
    if (m == MARS_FIELD_NIL || fb->v[m].kind == MARS_FIELD_NULL) {
        mars_mseries_add(p->ts_missing, p->shard, 1);
        return;
    }
    if (fb->v[m].kind == MARS_FIELD_OBJECT || fb->v[m].kind == MARS_FIELD_ARRAY ||
        (fb->v[m].flags & MARS_FF_ESCAPED) ||
        mars_timefmt_parse(p->ts_fmt, fb->v[m].value, fb->v[m].value_len, p->ctx.now_ns, &ns)) {
        mars_mseries_add(p->ts_invalid, p->shard, 1);
        MARS_LOG_RL(MARS_LOG_WARN, mars_transform_id(p->t),
                    "%s does not read as timestamp.format %s: the event keeps its read time",
                    p->conf->timestamp.field, p->conf->timestamp.format);
        return;
    }
    ev->ts_ns = ns;
    if (p->root && mars_path_is(p->ts_field, "timestamp"))
        builder_unlink(fb, 0, m);
}

/* message_key: the first listed root key with a string value is renamed `message` (which
 * makes it the event's message in the merge); a parsed `message` it displaces is dropped,
 * since the user ranked it lower. */
static void pick_message(struct parse *p)
{
    struct mars_fbuild *fb = &p->ctx.fb;
    for (size_t i = 0; i < p->nmkey; i++) {
        uint32_t m = mars_fbuild_find(fb, 0, p->mkey[i], p->mkey_len[i]);
        if (m == MARS_FIELD_NIL || fb->v[m].kind != MARS_FIELD_STRING)
            continue;
        if (p->mkey_len[i] == 7 && memcmp(p->mkey[i], "message", 7) == 0)
            return;
        uint32_t old = mars_fbuild_find(fb, 0, "message", 7);
        while (old != MARS_FIELD_NIL) { /* duplicates were kept: drop them all */
            builder_unlink(fb, 0, old);
            old = mars_fbuild_find(fb, 0, "message", 7);
        }
        fb->v[m].key = "message";
        fb->v[m].key_len = 7;
        return;
    }
}

/* The bytes to parse: the source field as plain text living as long as the batch. */
static const char *source_text(struct parse *p, struct mars_batch *b, struct mars_event *ev,
                               uint32_t *len)
{
    struct mars_value v;
    if (!mars_fields_get(ev, p->field, &v)) {
        p->ctx.why = "the field to parse is missing";
        return NULL;
    }
    if (v.kind != MARS_FIELD_STRING) {
        p->ctx.why = "the field to parse is not a string";
        return NULL;
    }
    const char *s = mars_value_text_arena(&v, &b->arena, len);
    if (!s)
        p->ctx.why = "out of memory";
    return s;
}

static int parse_one(struct parse *p, struct mars_batch *b, struct mars_event *ev)
{
    uint32_t n;
    const char *s = source_text(p, b, ev, &n);
    if (!s)
        return -EINVAL;
    mars_fbuild_reset(&p->ctx.fb, &b->arena);
    p->ctx.has_ts = false;
    /* the very bytes the source validated (whichever field they were read as) */
    p->ctx.utf8_valid = (ev->flags & MARS_EVF_UTF8) && s == ev->msg.ptr && n == ev->msg.len;
    if (p->ctx.fb.n == 0) {
        p->ctx.why = "out of memory";
        return -ENOMEM;
    }
    if (p->fn(&p->ctx, s, n))
        return -EINVAL;
    if (p->ts_field)
        explicit_time(p, ev);
    else if (p->ctx.has_ts)
        ev->ts_ns = p->ctx.ts_ns;
    if (p->nmkey)
        pick_message(p);
    if (p->conf->keep_original && p->field_is_message && p->root) {
        uint32_t m = mars_fbuild_find(&p->ctx.fb, 0, "message", 7);
        if (m != MARS_FIELD_NIL) /* the original message wins */
            builder_unlink(&p->ctx.fb, 0, m);
    }
    if (!p->conf->keep_original)
        mars_fields_remove(b, ev, p->field); /* before the merge: parsed data wins */
    int rc = mars_fields_merge(b, ev, &p->ctx.fb, p->target);
    if (rc)
        p->ctx.why = rc == -E2BIG ? "too many fields" : "out of memory";
    return rc;
}

static void failed(struct parse *p, struct mars_batch *b, struct mars_event *ev, bool *keep)
{
    struct mars_stats *st = mars_transform_stats(p->t);
    if (p->conf->on_error == ON_ERROR_PASS) {
        mars_mseries_add(p->unparsed, p->shard, 1);
        return;
    }
    mars_stat_add(&st->errors[MARS_ERR_PARSE], 1);
    MARS_LOG_RL(MARS_LOG_WARN, mars_transform_id(p->t), "cannot parse %s as %s: %s", p->conf->field,
                mars_parse_format_names[p->conf->format], p->ctx.why);
    if (p->conf->on_error == ON_ERROR_DROP) {
        *keep = false;
    } else if (p->conf->on_error == ON_ERROR_TAG) {
        const char *why = p->ctx.why;
        if (mars_fields_set(b, ev, p->error_field, MARS_FIELD_STRING, why, (uint32_t)strlen(why),
                            0))
            mars_stat_add(&st->errors[MARS_ERR_MEMORY], 1);
    }
}

static void parse_process(struct mars_transform *t, struct mars_batch *b)
{
    struct parse *p = mars_transform_state(t);
    struct mars_stats *st = mars_transform_stats(t);
    struct timespec now;

    if (mars_batch_exclusive(&b) || !mars_transform_flags(&p->keep, &p->keep_cap, b->n)) {
        mars_stat_add(&st->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(t, b); /* unparsed, but not lost */
        return;
    }
    memset(p->keep, 1, b->n * sizeof(*p->keep));
    uint32_t kept = b->n;
    clock_gettime(CLOCK_REALTIME, &now);
    p->ctx.now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    for (uint32_t i = 0; i < b->n; i++) {
        struct mars_event *ev = &b->ev[i];
        if (ev->kind != MARS_EVENT_LOG || parse_one(p, b, ev) == 0)
            continue;
        failed(p, b, ev, &p->keep[i]);
        kept -= !p->keep[i];
    }
    mars_transform_emit_kept(t, b, p->keep, kept);
}

const struct mars_component_desc mars_transform_parse = {
    .name = "parse",
    .description = "Parses a field (the message by default) into fields: JSON, logfmt, "
                   "key/value, regex, CRI, Docker, syslog, nginx or Apache lines.",
    .notes = "Fields each format produces (at the root, or under `target`):\n\n"
             "| format | fields |\n"
             "| --- | --- |\n"
             "| json | the object's members as they are (numbers, booleans, null, objects, arrays "
             "keep their JSON kind); a string `message` becomes the message |\n"
             "| logfmt, key_value | one string per key (`a=1` gives \"1\"); a key without a value "
             "is `true`; a repeated key keeps its last value |\n"
             "| regex | one string per named group that took part in the match |\n"
             "| cri | message, stream (stdout or stderr), logtag (P or F); the event time |\n"
             "| docker | message (from `log`, the trailing newline cut), stream and any other "
             "member; the event time from `time` |\n"
             "| syslog (RFC 5424) | facility (kern, user, ... local7), severity (emerg ... debug), "
             "version, "
             "hostname, appname, procid (a number when it is one), msgid, structured_data "
             "(`{id: {param: value}}`), message; the event time |\n"
             "| syslog (RFC 3164) | facility and severity (when PRI is there), hostname, appname, "
             "procid, message; the event time (the year that puts it nearest before now) |\n"
             "| nginx | client, user, request, method, path, protocol, status (number), size "
             "(number, `-` is 0), referer, agent, forwarded_for (the optional last field); the "
             "event time |\n"
             "| apache | client, ident, user, request, method, path, protocol, status, size, "
             "referer, agent; the event time |\n\n"
             "Values written `-` (nginx, apache) are left out. method, path and protocol are "
             "missing when the request line is not `METHOD PATH PROTOCOL` (a TLS handshake sent "
             "to a plain port, say); request is kept.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = parse_options,
    .conf_size = sizeof(struct parse_conf),
    .check = parse_check,
    .transform = {.init = parse_init, .process = parse_process, .destroy = parse_destroy},
};
