/*
 * template.h - strings with per-event parts, compiled once at startup: strftime
 * conversions (%Y, %m, %d, %H, ...) taken from the event's timestamp in UTC, and
 * expressions `{{ ... }}`: a field path (fields.h) or a function of fields and literals
 * such as {{ lower(level) }} or {{ div(status, 100) }}xx (template_internal.h lists them).
 * Used for file paths, modify's set, sample and throttle keys, metric labels, index names
 * and URLs. `host` is this machine's hostname unless the event has a field of that name. A
 * missing field renders as empty.
 *
 * Thread: a compiled template belongs to one thread (its regexes keep match data).
 */
#ifndef MARS_TEMPLATE_H
#define MARS_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/batch.h"
#include "model/fields.h"

struct mars_template;

enum {
    /* Field values are path components: '/' becomes '_', as does a leading '.', so event
     * data cannot climb out of (or into another) directory. */
    MARS_TEMPLATE_PATH = 1u << 0,
};

/* Returns an owned template (free with mars_template_destroy) or NULL with a reason in err. */
struct mars_template *mars_template_compile(const char *text, unsigned flags, char *err,
                                            size_t errlen);
void mars_template_destroy(struct mars_template *t);
/* True when the output can differ between events (time or field parts). */
bool mars_template_is_dynamic(const struct mars_template *t);
/* Same output for every event whose timestamp is in the same second (no field parts). */
bool mars_template_time_only(const struct mars_template *t);
/* Renders for ev into out (NUL-terminated). Returns the length, or -ENAMETOOLONG. */
int mars_template_render(const struct mars_template *t, const struct mars_event *ev, char *out,
                         size_t outlen);
/* The same, and *kind tells what the text is: a template that is one expression alone
 * ("{{ status }}", "{{ div(size, 1024) }}") keeps its value's kind (NUMBER, BOOL, NULL,
 * ARRAY...); anything else, or a missing value, is a STRING. */
/* This machine's name as `host` gets it by default: $NODE_NAME, else the hostname (cached
 * at the first call; the engine makes that call before its workers start). It is what
 * {{ host }} renders for an event without `host`, and host.name's default. */
const char *mars_host_default(void);
int mars_template_render_typed(const struct mars_template *t, const struct mars_event *ev,
                               char *out, size_t outlen, enum mars_field_kind *kind);

#endif
