/*
 * condition.h - the condition language of filter, route, sample and log_to_metric.
 *
 *   level == "error" && !(http.status < 500)
 *   exists(trace_id) || contains(message, "timeout")
 *   match(path, "^/api/v[0-9]+/") && in(method, ["POST", "PUT"])
 *
 * Operands: field paths (see fields.h; a path starting with a quoted segment needs a
 * leading dot: ."odd key"), strings ("..." or '...' with \" \' \\ \n \r \t), numbers,
 * true, false, null. Comparisons == != < <= > >=; && || ! and parentheses; functions
 * exists(p), contains(p, "x") (substring, or element of an array), starts_with(p, "x"),
 * ends_with(p, "x"), match(p, "regex") (PCRE2, JIT), in(p, ["a", 1, ...]). A bare path is
 * true when the field exists and is not false or null.
 *
 * Comparison rules: against a number the field is read as a number (a numeric string
 * counts); against a string the field's text is compared bytewise; true/false/null equal
 * only fields of that kind. A missing field makes == and ordering false and != true.
 *
 * Compiled once (per worker instance, regexes have per-thread match data) into a node
 * array; evaluation walks it without allocating (string escapes decode into scratch
 * buffers that the condition keeps and reuses).
 *
 * Thread: a compiled condition belongs to one thread.
 */
#ifndef MARS_CONDITION_H
#define MARS_CONDITION_H

#include <stdbool.h>
#include <stddef.h>

#include "model/event.h"

struct mars_cond;

struct mars_cond_error {
    size_t offset; /* byte offset in the condition text */
    char msg[192];
};

/* Returns an owned condition (free with mars_cond_destroy) or NULL with *err filled. */
struct mars_cond *mars_cond_compile(const char *text, struct mars_cond_error *err);
void mars_cond_destroy(struct mars_cond *c);
/* Evaluates c on ev. */
bool mars_cond_eval(struct mars_cond *c, const struct mars_event *ev);

#endif
