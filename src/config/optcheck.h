/*
 * optcheck.h - config-time checks that transforms share: conditions, regexes, field paths
 * and templates are compiled once at load, only to report problems at FILE:LINE:COL of the
 * offending character (workers compile their own copies in init). The node to check at
 * comes from mars_cfg_at() and its kin (core/cfg.h).
 *
 * Positions: a scalar node knows where its text starts; the offset into the text is added
 * (plus one for the opening quote of a quoted scalar, lines counted through newlines).
 * Exact for plain and quoted single-line values without escapes; close otherwise.
 *
 * Thread: the config loader's.
 */
#ifndef MARS_OPTCHECK_H
#define MARS_OPTCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cfg.h"
#include "core/diag.h"
#include "core/schema.h"

/* Where byte `off` of scalar n's text is. */
void mars_cfg_text_pos(const struct mars_cfg_node *n, size_t off, int *line, int *col);

/* Each compiles `text` (the value of option `what`, written at node `at`, which may be the
 * component's map when the option took its default) and adds an error to diag. Return 0
 * or -EINVAL. */
int mars_check_condition(const char *text, const struct mars_cfg_node *at, const char *what,
                         struct mars_diag *diag);
int mars_check_regex(const char *text, const struct mars_cfg_node *at, const char *what,
                     struct mars_diag *diag);
/* writable: the path is written to (no array index, not the root). */
int mars_check_path(const char *text, const struct mars_cfg_node *at, const char *what,
                    bool writable, struct mars_diag *diag);
int mars_check_template(const char *text, const struct mars_cfg_node *at, const char *what,
                        struct mars_diag *diag);

/* The `key` template and `exclude` condition of keyed selections (sample, throttle), either
 * of which may be NULL, checked at their positions. Returns 0 or -EINVAL. */
int mars_check_key_exclude(const char *key, const char *exclude, const struct mars_cfg_node *node,
                           struct mars_diag *diag);

/* The `fields` and `except_fields` of a sink's encoding (MARS_ENCODE_FIELDS_OPTIONS): not
 * both. Returns 0 or -EINVAL. */
int mars_check_field_select(const struct mars_strlist *fields, const struct mars_strlist *except,
                            const struct mars_cfg_node *node, struct mars_diag *diag);

#endif
