/*
 * parse_internal.h - the format parsers behind the `parse` transform, shared by parse.c
 * (the transform), parse_formats.c (the parsers: json, logfmt, key_value, regex, cri,
 * docker, syslog, nginx, apache) and their unit tests.
 *
 * A parser reads one value (s, n) and adds what it found to the builder in its context as
 * members of the root: slices of s wherever the bytes can be used as they are, decoded
 * copies in ctx->fb.arena otherwise. A format that carries the event time (cri, docker,
 * syslog, nginx, apache) sets ts_ns/has_ts instead of adding a time member. On failure a
 * parser returns -EINVAL with a static reason in ctx->why (the builder is then discarded).
 *
 * Thread: a context belongs to one transform instance (one worker).
 */
#ifndef MARS_PARSE_INTERNAL_H
#define MARS_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component.h"

enum mars_parse_format {
    MARS_PARSE_JSON,
    MARS_PARSE_LOGFMT,
    MARS_PARSE_KEY_VALUE,
    MARS_PARSE_REGEX,
    MARS_PARSE_CRI,
    MARS_PARSE_DOCKER,
    MARS_PARSE_SYSLOG,
    MARS_PARSE_NGINX,
    MARS_PARSE_APACHE,
};
extern const char *const mars_parse_format_names[];

struct mars_regex;
struct mars_timefmt;

struct mars_parse_ctx {
    struct mars_fbuild fb;
    /* settings */
    unsigned max_depth;          /* json, docker */
    struct mars_regex *re;       /* regex */
    const char *fdelim, *vdelim; /* key_value */
    size_t fdelim_len, vdelim_len;
    struct mars_timefmt *tf_rfc3339, *tf_clf, *tf_bsd; /* format times (owned) */
    int64_t now_ns;  /* wall clock of the batch, for year-less times */
    bool utf8_valid; /* this call's text is known valid UTF-8 (json, docker) */
    /* results of the last call */
    int64_t ts_ns;
    bool has_ts;
    const char *why;
};

/* Sets up a context for `format` (times compiled; re, delimiters and max_depth are set by
 * the caller). Returns 0 or -ENOMEM. */
int mars_parse_ctx_init(struct mars_parse_ctx *c);
void mars_parse_ctx_fini(struct mars_parse_ctx *c);

typedef int (*mars_parse_fn)(struct mars_parse_ctx *c, const char *s, size_t n);
mars_parse_fn mars_parse_fn_for(enum mars_parse_format f);

int mars_parse_json(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_logfmt(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_key_value(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_regex(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_cri(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_docker(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_syslog(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_nginx(struct mars_parse_ctx *c, const char *s, size_t n);
int mars_parse_apache(struct mars_parse_ctx *c, const char *s, size_t n);

/* The series of mars_parse_unparsed_events_total for component id (NULL without metrics):
 * one family for the parse transform and for kubernetes_logs' pod parsers, so both register
 * it alike. */
struct mars_obs;
struct mars_mseries *mars_parse_unparsed_series(struct mars_obs *obs, const char *id);

/* Adds a member (plain bytes) under parent; false (with ctx->why) when the builder is
 * full. MARS_PARSE_PUT takes the key as a string literal (its length known at compile). */
bool mars_parse_put(struct mars_parse_ctx *c, uint32_t parent, const char *key, size_t key_len,
                    enum mars_field_kind kind, const char *v, size_t n);
#define MARS_PARSE_PUT(c, parent, lit, kind, v, n)                                                 \
    mars_parse_put((c), (parent), lit, sizeof(lit) - 1, (kind), (v), (n))

#endif
