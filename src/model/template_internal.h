/*
 * template_internal.h - the expressions between {{ and }} of a template (template.c), kept
 * in template_expr.c: a field path, a string or number literal, or a function call whose
 * arguments are expressions again.
 *
 *   {{ kubernetes.pod_name }}            a field (host falls back to this machine's name)
 *   {{ lower(level) }}                   lower, upper: ASCII case
 *   {{ div(status, 100) }}xx             div, mod: integers (status_class 5xx)
 *   {{ replace(path, "[0-9]+", ":id") }} every match of a regex replaced
 *   {{ redact(message, "\\d{16}") }}     every match replaced by [REDACTED] (or a 3rd arg)
 *   {{ substr(trace_id, 0, 8) }}         bytes from start (negative: from the end), length
 *   {{ hash(user.email) }}               16 hex digits of a 64-bit FNV-1a (not a secret)
 *   {{ concat(app, "-", env) }}          texts joined
 *   {{ number(size) }}                   the text as a number (nothing when it is not one)
 *   {{ default(team, "none") }}          the first argument unless missing, empty or null
 *
 * Evaluation appends to the caller's buffer and allocates nothing: a function evaluates its
 * first argument in place and rewrites it there (replace writes after it and moves back).
 * Regexes are compiled once, so a compiled expression belongs to one thread, like the
 * template holding it.
 */
#ifndef MARS_TEMPLATE_INTERNAL_H
#define MARS_TEMPLATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "model/event.h"
#include "model/fields.h"

struct mars_texpr;

/* Value kinds an expression yields: a mars_field_kind, or ABSENT (a missing field, a
 * function with nothing to say), which renders as nothing. */
#define MARS_TEXPR_ABSENT (-1)

/* Compiles s[0..n). NULL with a reason in err (naming the offset from s). */
struct mars_texpr *mars_texpr_compile(const char *s, size_t n, char *err, size_t errlen);
void mars_texpr_destroy(struct mars_texpr *x);
/* Appends x's text for ev to out at *len (not NUL-terminated) and sets *kind. Returns 0 or
 * -ENAMETOOLONG when outlen is too small. */
int mars_texpr_eval(const struct mars_texpr *x, const struct mars_event *ev, char *out,
                    size_t outlen, size_t *len, int *kind);

#endif
