/*
 * registry.c - every built-in component type, in one table. Adding a component means
 * adding its descriptor here; config loading, `mars describe` and the docs find it here.
 * Tests append test-only types (the capture sink) at run time.
 */
#include "pipeline/registry.h"

#include <errno.h>
#include <string.h>

extern const struct mars_component_desc mars_source_demo;
extern const struct mars_component_desc mars_source_file;
extern const struct mars_component_desc mars_source_health_check;
extern const struct mars_component_desc mars_source_internal_metrics;
extern const struct mars_component_desc mars_source_kubernetes_logs;
extern const struct mars_component_desc mars_source_mars;
extern const struct mars_component_desc mars_source_stdin;
extern const struct mars_component_desc mars_transform_filter;
extern const struct mars_component_desc mars_transform_log_to_metric;
extern const struct mars_component_desc mars_transform_modify;
extern const struct mars_component_desc mars_transform_multiline;
extern const struct mars_component_desc mars_transform_parse;
extern const struct mars_component_desc mars_transform_route;
extern const struct mars_component_desc mars_transform_sample;
extern const struct mars_component_desc mars_transform_throttle;
extern const struct mars_component_desc mars_sink_stdout;
extern const struct mars_component_desc mars_sink_tcp;
extern const struct mars_component_desc mars_sink_file;
extern const struct mars_component_desc mars_sink_loki;
extern const struct mars_component_desc mars_sink_blackhole;
extern const struct mars_component_desc mars_sink_elasticsearch;
extern const struct mars_component_desc mars_sink_prometheus_exporter;
extern const struct mars_component_desc mars_sink_mars;
extern const struct mars_component_desc mars_sink_http;

/* Built-in types, in the order `mars describe` lists them within a kind. */
static const struct mars_component_desc *const builtin[] = {
    &mars_source_demo,
    &mars_source_file,
    &mars_source_health_check,
    &mars_source_internal_metrics,
    &mars_source_kubernetes_logs,
    &mars_source_mars,
    &mars_source_stdin,
    &mars_transform_filter,
    &mars_transform_log_to_metric,
    &mars_transform_modify,
    &mars_transform_multiline,
    &mars_transform_parse,
    &mars_transform_route,
    &mars_transform_sample,
    &mars_transform_throttle,
    &mars_sink_blackhole,
    &mars_sink_elasticsearch,
    &mars_sink_file,
    &mars_sink_http,
    &mars_sink_loki,
    &mars_sink_mars,
    &mars_sink_prometheus_exporter,
    &mars_sink_stdout,
    &mars_sink_tcp,
};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

/* Types added at run time (tests). */
#define EXTRA_MAX 32
static const struct mars_component_desc *extra[EXTRA_MAX];
static size_t nextra;

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
    return NBUILTIN + nextra;
}

const struct mars_component_desc *mars_registry_at(size_t i)
{
    if (i < NBUILTIN)
        return builtin[i];
    return i - NBUILTIN < nextra ? extra[i - NBUILTIN] : NULL;
}

int mars_registry_add(const struct mars_component_desc *d)
{
    if (mars_registry_find(d->name, d->kind))
        return -EEXIST;
    if (nextra == EXTRA_MAX)
        return -ENOSPC;
    extra[nextra++] = d;
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
