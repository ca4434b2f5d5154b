/*
 * schema_internal.h - helpers shared by schema.c (applying options) and
 * schema_describe.c (printing them). Nothing outside those two files includes this.
 */
#ifndef MARS_SCHEMA_INTERNAL_H
#define MARS_SCHEMA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"

/* "prefix.name", or "name" when prefix is NULL or empty; writes into buf and returns it. */
const char *mars_schema_join_name(char *buf, size_t len, const char *prefix, const char *name);
/* A bound of option o written in its unit ("64MiB", "1s", "256"). */
void mars_schema_bound_text(const struct mars_opt *o, int64_t b, char *buf, size_t len);

#endif
