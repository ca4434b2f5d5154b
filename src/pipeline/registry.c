/*
 * registry.c - every built-in component type, in one table. Adding a component means
 * adding its descriptor here; config loading, `mars describe` and the docs find it here.
 * Tests append test-only types (the capture sink) at run time.
 */
#include "pipeline/registry.h"

#include <errno.h>
#include <string.h>

extern const struct mars_component_desc mars_source_demo;
extern const struct mars_component_desc mars_source_stdin;
extern const struct mars_component_desc mars_sink_stdout;
extern const struct mars_component_desc mars_sink_file;
extern const struct mars_component_desc mars_sink_blackhole;

#define REGISTRY_MAX 64

static const struct mars_component_desc *registry[REGISTRY_MAX] = {
    &mars_source_demo,
    &mars_source_stdin,
    &mars_sink_blackhole,
    &mars_sink_file,
    &mars_sink_stdout,
};
static size_t registry_n = 5;

const struct mars_component_desc *mars_registry_find(const char *name, enum mars_kind kind)
{
    for (size_t i = 0; i < registry_n; i++)
        if (registry[i]->kind == kind && strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

size_t mars_registry_count(void)
{
    return registry_n;
}

const struct mars_component_desc *mars_registry_at(size_t i)
{
    return i < registry_n ? registry[i] : NULL;
}

int mars_registry_add(const struct mars_component_desc *d)
{
    if (mars_registry_find(d->name, d->kind))
        return -EEXIST;
    if (registry_n == REGISTRY_MAX)
        return -ENOSPC;
    registry[registry_n++] = d;
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
