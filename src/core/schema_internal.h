/*
 * schema_internal.h - helpers shared by schema.c (applying options), schema_free.c (giving
 * them back) and schema_describe.c (printing them). Nothing else includes this.
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

/* Where option o lives in the struct out. */
static inline void *mars_schema_field(void *out, const struct mars_opt *o)
{
    return (char *)out + o->offset;
}

/* Free a list, a map, or a list of sections (each by o's sub-schema), leaving them empty. */
void mars_schema_free_strlist(struct mars_strlist *l);
void mars_schema_free_strmap(struct mars_strmap *m);
void mars_schema_free_seclist(const struct mars_opt *o, struct mars_seclist *sl);

#endif
