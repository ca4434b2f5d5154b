/*
 * pod_parser.c - the parser a pod asks for in its annotations (mars.io/parser, or
 * mars.io/parser-<container> for one container), applied by kubernetes_logs to the
 * container's lines as the `parse` transform would at the root with on_error: pass: the
 * parsed fields join the pod fields, a parsed string `message` becomes the message, and a
 * line that does not parse (a start-up banner among JSON lines) is shipped as it is and
 * counted in mars_parse_unparsed_events_total. The event keeps the runtime's timestamp.
 *
 * Formats a pod may name: json, logfmt, key_value (space and '=' delimiters), syslog, nginx
 * and apache. regex needs a pattern and cri/docker are the runtime's own framing, so those
 * names (and unknown ones) are logged at a limited rate and the lines go unparsed.
 *
 * Thread: one kubernetes_logs instance (one worker).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "kubernetes_internal.h"
#include "transforms/parse_internal.h"

struct kubernetes_parser {
    struct mars_parse_ctx ctx;
    struct mars_source *src;
    struct mars_path *message;
    struct mars_mseries *unparsed;
    unsigned shard;
    const char *id;
};

struct kubernetes_parser *mars_kubernetes_parser_create(struct mars_source *s)
{
    struct kubernetes_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    size_t at;
    const char *why;
    if (mars_parse_ctx_init(&p->ctx)) {
        free(p);
        return NULL;
    }
    if (!(p->message = mars_path_compile("message", 7, &at, &why))) {
        mars_kubernetes_parser_destroy(p);
        return NULL;
    }
    p->src = s;
    p->ctx.max_depth = 64;
    p->ctx.fdelim = " ";
    p->ctx.fdelim_len = 1;
    p->ctx.vdelim = "=";
    p->ctx.vdelim_len = 1;
    p->id = mars_source_id(s);
    p->shard = mars_source_shard(s);
    p->unparsed = mars_parse_unparsed_series(mars_source_obs(s), p->id);
    return p;
}

void mars_kubernetes_parser_destroy(struct kubernetes_parser *p)
{
    if (!p)
        return;
    mars_parse_ctx_fini(&p->ctx);
    mars_path_destroy(p->message);
    free(p);
}

static mars_parse_fn parser_for(const char *name)
{
    static const enum mars_parse_format allowed[] = {MARS_PARSE_JSON,      MARS_PARSE_LOGFMT,
                                                     MARS_PARSE_KEY_VALUE, MARS_PARSE_SYSLOG,
                                                     MARS_PARSE_NGINX,     MARS_PARSE_APACHE};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcmp(name, mars_parse_format_names[allowed[i]]) == 0)
            return mars_parse_fn_for(allowed[i]);
    return NULL;
}

void mars_kubernetes_parser_apply(struct kubernetes_parser *p, const char *name,
                                  struct mars_batch *b)
{
    mars_parse_fn fn = parser_for(name);
    if (!fn) {
        MARS_LOG_RL(MARS_LOG_WARN, p->id,
                    "a pod asks for parser '%s': use json, logfmt, key_value, syslog, nginx or "
                    "apache; its lines go unparsed",
                    name);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    p->ctx.now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    uint64_t unparsed = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        struct mars_event *ev = &b->ev[i];
        mars_fbuild_reset(&p->ctx.fb, &b->arena);
        p->ctx.utf8_valid = (ev->flags & MARS_EVF_UTF8) != 0;
        if (p->ctx.fb.n == 0 || fn(&p->ctx, ev->msg.ptr, ev->msg.len)) {
            unparsed++;
            continue;
        }
        /* the parsed data replaces the line, as parse does without keep_original */
        mars_fields_remove(b, ev, p->message);
        if (mars_fields_merge(b, ev, &p->ctx.fb, NULL))
            mars_stat_add(&mars_source_stats(p->src)->errors[MARS_ERR_MEMORY], 1);
    }
    mars_mseries_add(p->unparsed, p->shard, unparsed);
}
