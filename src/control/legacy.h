/*
 * legacy.h - `mars convert-legacy`: reads the old mars-agent's YAML (one root key `mars`, see
 * docs/node-agent.md) and prints a mars pipeline doing the same jobs, with a comment on every
 * setting that could not be carried over and why.
 */
#ifndef MARS_LEGACY_H
#define MARS_LEGACY_H

#include <stdio.h>

#include "core/diag.h"

/* Converts the old agent's config in `path` and writes the mars configuration to out.
 * Returns 0, or -EINVAL with the problems (FILE:LINE:COL) in diag when the old file cannot
 * be read or is not a mars-agent config (nothing is written then). */
int mars_legacy_convert(const char *path, FILE *out, struct mars_diag *diag);

#endif
