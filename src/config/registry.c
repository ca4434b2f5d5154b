/*
 * registry.c - the table of component types that config loading, `mars describe` and the
 * docs look names up in. It knows no component itself: control/components.c adds every
 * built-in type (main.c calls it first thing) and tests add test-only types (capture).
 *
 * Thread: filled before any config is loaded; read-only afterwards.
 */
#include "config/registry.h"

#include <errno.h>
#include <string.h>

#define TYPES_MAX 96
static const struct mars_component_desc *types[TYPES_MAX];
static size_t ntypes;

const struct mars_component_desc *mars_registry_find(const char *name, enum mars_kind kind)
{
    for (size_t i = 0; i < mars_registry_count(); i++) {
        const struct mars_component_desc *d = mars_registry_at(i);
        if (d->kind == kind && strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

size_t mars_registry_count(void)
{
    return ntypes;
}

const struct mars_component_desc *mars_registry_at(size_t i)
{
    return i < ntypes ? types[i] : NULL;
}

int mars_registry_add(const struct mars_component_desc *d)
{
    if (mars_registry_find(d->name, d->kind))
        return -EEXIST;
    if (ntypes == TYPES_MAX)
        return -ENOSPC;
    types[ntypes++] = d;
    return 0;
}

const char *mars_kind_name(enum mars_kind k)
{
    static const char *const names[] = {"source", "transform", "sink"};
    return names[k];
}

const char *mars_kind_plural(enum mars_kind k)
{
    static const char *const names[] = {"sources", "transforms", "sinks"};
    return names[k];
}
