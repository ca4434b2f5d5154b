/*
 * schema_free.c - giving back what mars_schema_apply() filled in: every string, list, map
 * and section of an options struct, by its schema (schema.c has the applying).
 */
#include "core/schema.h"
#include "core/schema_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static void free_fields(const struct mars_opt *schema, void *out);

void mars_schema_free_strlist(struct mars_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void mars_schema_free_strmap(struct mars_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    free(m->style);
    m->keys = m->vals = NULL;
    m->style = NULL;
    m->n = 0;
}

void mars_schema_free_seclist(const struct mars_opt *o, struct mars_seclist *sl)
{
    for (size_t i = 0; i < sl->n; i++)
        free_fields(o->sub, (char *)sl->items + i * o->sub_size);
    free(sl->items);
    sl->items = NULL;
    sl->n = 0;
}

static void free_fields(const struct mars_opt *schema, void *out)
{
    for (const struct mars_opt *o = schema; o->name; o++) {
        void *f = mars_schema_field(out, o);
        switch (o->type) {
        case MARS_OPT_STRING:
        case MARS_OPT_SECRET:
        case MARS_OPT_URL:
            free(*(char **)f);
            *(char **)f = NULL;
            break;
        case MARS_OPT_INT:
        case MARS_OPT_DURATION:
            *(int64_t *)f = 0;
            break;
        case MARS_OPT_FLOAT:
            *(double *)f = 0;
            break;
        case MARS_OPT_BOOL:
            *(bool *)f = false;
            break;
        case MARS_OPT_SIZE:
            *(uint64_t *)f = 0;
            break;
        case MARS_OPT_ENUM:
            *(int *)f = 0;
            break;
        case MARS_OPT_LIST:
        case MARS_OPT_URL_LIST:
            mars_schema_free_strlist(f);
            break;
        case MARS_OPT_MAP:
            mars_schema_free_strmap(f);
            break;
        case MARS_OPT_SECTION:
            free_fields(o->sub, f);
            break;
        case MARS_OPT_SECTION_LIST:
            mars_schema_free_seclist(o, f);
            break;
        }
    }
}

void mars_schema_fini(const struct mars_opt *schema, void *out)
{
    if (schema && out)
        free_fields(schema, out);
}
