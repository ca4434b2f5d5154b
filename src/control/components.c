/*
 * components.c - every built-in component type, in one list. Adding a component means
 * adding its descriptor here and nowhere else: config loading, `mars describe` and the
 * docs find it through the registry (config/registry.h), which this fills.
 *
 * It sits above the engine with the admin API: main.c (and the test support) call
 * mars_components_register() before loading any config.
 *
 * Thread: the first caller's, before any config is loaded.
 */
#include "control/components.h"

#include "config/registry.h"

extern const struct mars_component_desc mars_source_apm_socket;
extern const struct mars_component_desc mars_source_apollo;
extern const struct mars_component_desc mars_source_demo;
extern const struct mars_component_desc mars_source_file;
extern const struct mars_component_desc mars_source_health_check;
extern const struct mars_component_desc mars_source_internal_metrics;
extern const struct mars_component_desc mars_source_iptables;
extern const struct mars_component_desc mars_source_kafka;
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
extern const struct mars_component_desc mars_sink_apollo_files;
extern const struct mars_component_desc mars_sink_stdout;
extern const struct mars_component_desc mars_sink_tcp;
extern const struct mars_component_desc mars_sink_kafka;
extern const struct mars_component_desc mars_sink_file;
extern const struct mars_component_desc mars_sink_loki;
extern const struct mars_component_desc mars_sink_blackhole;
extern const struct mars_component_desc mars_sink_elasticsearch;
extern const struct mars_component_desc mars_sink_eureka;
extern const struct mars_component_desc mars_sink_prometheus_exporter;
extern const struct mars_component_desc mars_sink_mars;
extern const struct mars_component_desc mars_sink_http;
extern const struct mars_component_desc mars_sink_skywalking;

/* Built-in types, in the order `mars describe` lists them within a kind. */
static const struct mars_component_desc *const builtin[] = {
    &mars_source_apm_socket,
    &mars_source_apollo,
    &mars_source_demo,
    &mars_source_file,
    &mars_source_health_check,
    &mars_source_internal_metrics,
    &mars_source_iptables,
    &mars_source_kafka,
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
    &mars_sink_apollo_files,
    &mars_sink_blackhole,
    &mars_sink_elasticsearch,
    &mars_sink_eureka,
    &mars_sink_file,
    &mars_sink_http,
    &mars_sink_kafka,
    &mars_sink_loki,
    &mars_sink_mars,
    &mars_sink_prometheus_exporter,
    &mars_sink_skywalking,
    &mars_sink_stdout,
    &mars_sink_tcp,
};

void mars_components_register(void)
{
    /* The table refuses a name twice (-EEXIST), so a second call adds nothing. */
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        (void)mars_registry_add(builtin[i]);
}
