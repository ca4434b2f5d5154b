/*
 * skywalking_conf.c - the `skywalking` sink's options and their checks (the data path is
 * skywalking.c; what each option does is in docs/sinks.md).
 *
 * Thread: the control thread (config load).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "sinks/skywalking_internal.h"

static const char *const transport_names[] = {"grpc", "http", NULL};
static const char *const protocol_names[] = {"v8", "v6", NULL};
static const char *const body_names[] = {"text", "json", NULL};

#define OFF(f) offsetof(struct sw_conf, f)
const struct mars_opt mars_skywalking_options[] = {
    {.name = "address",
     .type = MARS_OPT_STRING,
     .offset = OFF(address),
     .flags = MARS_OPT_REQUIRED,
     .desc = "The OAP as host:port: its gRPC port (11800), or its HTTP port (12800) with "
             "transport http."},
    {.name = "service",
     .type = MARS_OPT_STRING,
     .offset = OFF(service),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Service name the logs, meters and mars's own registration are reported under."},
    {.name = "instance",
     .type = MARS_OPT_STRING,
     .offset = OFF(instance),
     .desc = "Service instance name; default: the pod name (POD_NAME) or the host name."},
    {.name = "layer",
     .type = MARS_OPT_STRING,
     .offset = OFF(layer),
     .desc = "SkyWalking layer of the service (GENERAL, MESH, K8S_SERVICE, ...); empty: the "
             "OAP's default, GENERAL."},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = OFF(token),
     .desc = "Sent as the `authentication` metadata, for OAPs with an authentication token."},
    {.name = "transport",
     .type = MARS_OPT_ENUM,
     .offset = OFF(transport),
     .def = "grpc",
     .choices = transport_names,
     .desc = "grpc (port 11800) or http: the OAP's JSON API (port 12800), /v3/logs and "
             "/v3/management/*; http carries no meters."},
    {.name = "protocol",
     .type = MARS_OPT_ENUM,
     .offset = OFF(protocol),
     .def = "v8",
     .choices = protocol_names,
     .desc = "v8 for OAP 8.x and later; v6 for 6.x/7.x, which only registers and pings "
             "(those OAPs have no log service: events are discarded)."},
    {.name = "body",
     .type = MARS_OPT_ENUM,
     .offset = OFF(body),
     .def = "text",
     .choices = body_names,
     .desc = "text sends the message as a TextLog; json sends the whole event as a JSONLog."},
    {.name = "endpoint_field",
     .type = MARS_OPT_STRING,
     .offset = OFF(endpoint_field),
     .desc = "Field whose value is the log's endpoint (an HTTP route, an RPC method)."},
    {.name = "tags",
     .type = MARS_OPT_LIST,
     .offset = OFF(tags),
     .desc = "Fields sent as log tags (name = the field path), e.g. [level, logger]."},
    {.name = "keepalive_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(keepalive_interval),
     .def = "30s",
     .min = 1000000000LL,
     .max = 3600000000000LL,
     .desc = "How often mars's instance pings the OAP; its properties are reported again "
             "every 10 pings (the OAP expires them)."},
    {.name = "meters",
     .type = MARS_OPT_BOOL,
     .offset = OFF(meters),
     .def = "false",
     .desc = "Send metric events as SkyWalking meters (collectBatch); the OAP keeps only "
             "meters a meter-analyzer rule names."},
    {.name = "max_services",
     .type = MARS_OPT_INT,
     .offset = OFF(max_services),
     .def = "100",
     .min = 0,
     .max = 100000,
     .desc = "Most PHP apps (app_code of an apm_socket register request) the sink registers "
             "with the OAP as services of their own, in the background; one more gets an "
             "empty reply and is counted. 0: apps get the sink's own identity."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = OFF(tls),
     .sub = mars_tls_options,
     .desc = "TLS to the OAP (enabled: true): h2 by ALPN, CA, client certificate."},
    {.name = NULL},
};

int mars_skywalking_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct sw_conf *c = conf;
    int rc = mars_netconf_check(&c->tls, NULL, node, diag);
    if (c->address && mars_netconf_check_address(c->address, node, diag))
        rc = -EINVAL;
    const char *why = NULL;
    if (c->transport == SW_HTTP && c->meters)
        why = "meters: true needs transport grpc (the OAP has no HTTP API for meters)";
    else if (c->transport == SW_HTTP && c->protocol == SW_V6)
        why = "protocol v6 needs transport grpc";
    if (why) {
        mars_diag_add(diag, node->file, node->line, node->col, "%s", why);
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->tags.n + (c->endpoint_field != NULL); i++) {
        const char *f = i < c->tags.n ? c->tags.v[i] : c->endpoint_field;
        size_t at;
        const char *err;
        struct mars_path *p = mars_path_compile(f, strlen(f), &at, &err);
        if (!p) {
            mars_diag_add(diag, node->file, node->line, node->col, "field '%s': %s", f, err);
            rc = -EINVAL;
        }
        mars_path_destroy(p);
    }
    return rc;
}
