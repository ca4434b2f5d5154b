/*
 * regex.h - PCRE2 regular expressions, JIT-compiled, for conditions (match), parse
 * (format: regex) and multiline patterns.
 *
 * Patterns work on bytes (no UTF mode), since log lines are not guaranteed to be UTF-8. A
 * compiled regex carries its own match data, so it belongs to one thread: components
 * compile their regexes per instance in init (config checks compile once more, only to
 * report errors at their position).
 *
 * Thread: the owner's.
 */
#ifndef MARS_REGEX_H
#define MARS_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mars_regex;

/* Returns an owned regex (free with mars_regex_destroy), or NULL with the byte offset of the
 * problem in *err_at and a reason in err. */
struct mars_regex *mars_regex_compile(const char *pattern, size_t len, size_t *err_at, char *err,
                                      size_t errlen);
void mars_regex_destroy(struct mars_regex *r);
/* Matches s[0..n). Returns 1 on a match, 0 on none, -E2BIG when a match limit was hit. */
int mars_regex_match(struct mars_regex *r, const char *s, size_t n);
/* Finds the first match in s[0..n) at or after `from`: its span in *start, *end. Returns 1,
 * 0 when there is none, -E2BIG when a match limit was hit. */
int mars_regex_find(struct mars_regex *r, const char *s, size_t n, size_t from, size_t *start,
                    size_t *end);
/* Named groups of the pattern, in group-number order: count, and name of the i-th. */
uint32_t mars_regex_names(const struct mars_regex *r);
const char *mars_regex_name(const struct mars_regex *r, uint32_t i);
/* After a match: the span of the i-th named group. False when the group did not take part. */
bool mars_regex_named(const struct mars_regex *r, uint32_t i, size_t *start, size_t *len);

#endif
