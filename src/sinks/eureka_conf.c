/*
 * eureka_conf.c - the options of the `eureka` sink and their cross-checks (the registrar
 * is eureka.c). Defaults are written once, here; eureka_client.c fills in what depends on
 * other options (instance_id from host, app and port; the URLs from ip and port). The
 * `pods` section's connection options are the shared pod watch's
 * (MARS_KUBERNETES_API_OPTIONS, the names kubernetes_logs has).
 */
#include <errno.h>
#include <string.h>

#include "sinks/eureka_internal.h"

#define IOFF(f) offsetof(struct eu_instance_conf, f)
static const struct mars_opt instance_options[] = {
    {.name = "app",
     .type = MARS_OPT_STRING,
     .offset = IOFF(app),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Application name (Eureka upper-cases it), e.g. billing."},
    {.name = "instance_id",
     .type = MARS_OPT_STRING,
     .offset = IOFF(instance_id),
     .desc = "Instance id; default {host_name}:{app}:{port}, as Spring Cloud makes it."},
    {.name = "host_name",
     .type = MARS_OPT_STRING,
     .offset = IOFF(host_name),
     .desc = "Host name announced; default the node's host name."},
    {.name = "ip",
     .type = MARS_OPT_STRING,
     .offset = IOFF(ip),
     .flags = MARS_OPT_REQUIRED,
     .desc = "IP address clients connect to."},
    {.name = "port",
     .type = MARS_OPT_INT,
     .offset = IOFF(port),
     .def = "0",
     .min = 0,
     .max = 65535,
     .desc = "Plain port; 0 leaves it disabled (@enabled false)."},
    {.name = "secure_port",
     .type = MARS_OPT_INT,
     .offset = IOFF(secure_port),
     .def = "0",
     .min = 0,
     .max = 65535,
     .desc = "TLS port; 0 leaves it disabled (@enabled false)."},
    {.name = "vip_address",
     .type = MARS_OPT_STRING,
     .offset = IOFF(vip_address),
     .desc = "Virtual IP address (what clients look the service up by); default the app "
             "name in lower case."},
    {.name = "secure_vip_address",
     .type = MARS_OPT_STRING,
     .offset = IOFF(secure_vip_address),
     .desc = "Secure virtual IP address; default vip_address."},
    {.name = "metadata",
     .type = MARS_OPT_MAP,
     .offset = IOFF(metadata),
     .desc = "Metadata map sent with the instance (zone, management.port, version ...)."},
    {.name = "home_page_url",
     .type = MARS_OPT_STRING,
     .offset = IOFF(home_page_url),
     .desc = "Home page URL; default http://{ip}:{port}/."},
    {.name = "status_page_url",
     .type = MARS_OPT_STRING,
     .offset = IOFF(status_page_url),
     .desc = "Status page URL; default http://{ip}:{port}/actuator/info."},
    {.name = "health_check_url",
     .type = MARS_OPT_STRING,
     .offset = IOFF(health_check_url),
     .desc = "Health check URL; default {admin_url}/health/{health_check} when health_check "
             "is set, else http://{ip}:{port}/actuator/health."},
    {.name = "health_check",
     .type = MARS_OPT_STRING,
     .offset = IOFF(health_check),
     .desc = "Name of a health_check source's check (wired with inputs:) whose state is this "
             "instance's status: STARTING before its first result, then UP or DOWN; unset: "
             "always UP."},
    {0},
};

#define POFF(f) offsetof(struct eu_pods_conf, f)
static const struct mars_opt pods_options[] = {
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = POFF(enabled),
     .def = "true",
     .desc = "Register the annotated pods of this node (false keeps the section but turns "
             "it off)."},
    MARS_KUBERNETES_API_OPTIONS(struct eu_pods_conf, api),
    {0},
};

#define OFF(f) offsetof(struct eu_conf, f)
const struct mars_opt mars_eureka_options[] = {
    {.name = "servers",
     .type = MARS_OPT_URL_LIST,
     .offset = OFF(servers),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Eureka base URLs tried in order (http://host:8761/eureka or .../eureka/v2); "
             "user:password@ in a URL is its basic auth."},
    {.name = "username",
     .type = MARS_OPT_STRING,
     .offset = OFF(username),
     .desc = "Basic auth user for servers whose URL carries none."},
    {.name = "password",
     .type = MARS_OPT_SECRET,
     .offset = OFF(password),
     .desc = "Basic auth password (or password_file)."},
    {.name = "tls",
     .type = MARS_OPT_SECTION,
     .offset = OFF(tls),
     .sub = mars_tls_options,
     .desc = "TLS for https:// servers: CA, client certificate, verification."},
    {.name = "instances",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(instances),
     .sub = instance_options,
     .sub_size = sizeof(struct eu_instance_conf),
     .desc = "Instances to register, each with app, ip, ports, URLs, metadata and an optional "
             "health_check."},
    {.name = "pods",
     .type = MARS_OPT_SECTION,
     .offset = OFF(pods),
     .sub = pods_options,
     .desc = "Register every pod of this node annotated eureka.mars.io/app, at its pod IP, "
             "from the shared pod watch (docs/kubernetes.md); the section's presence turns it "
             "on."},
    {.name = "renewal_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(renewal_interval),
     .def = "30s",
     .min = 100000000,
     .max = INT64_MAX,
     .desc = "Heartbeat interval (leaseInfo.renewalIntervalInSecs)."},
    {.name = "lease_duration",
     .type = MARS_OPT_DURATION,
     .offset = OFF(lease_duration),
     .def = "90s",
     .min = 1000000000,
     .max = INT64_MAX,
     .desc = "How long the server keeps an instance without heartbeats "
             "(leaseInfo.durationInSecs, whole seconds)."},
    {.name = "failback_after",
     .type = MARS_OPT_DURATION,
     .offset = OFF(failback_after),
     .def = "5m",
     .desc = "After failing over to a later server, go back to the first one this "
             "long after."},
    {.name = "request_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(request_timeout),
     .def = "5s",
     .min = 1000000,
     .max = INT64_MAX,
     .desc = "Timeout of one register or heartbeat request."},
    {.name = "deregister_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(deregister_timeout),
     .def = "3s",
     .min = 1000000,
     .max = 4500000000,
     .desc = "At shutdown, how long the DELETE of every instance may take (mars waits at most "
             "5 s for a sink's last requests); a reload keeps the instances instead."},
    {.name = "admin_url",
     .type = MARS_OPT_STRING,
     .offset = OFF(admin_url),
     .desc = "mars's admin API as Eureka's users reach it (http://{ip}:8686), for the "
             "default health_check_url."},
    {0},
};

int mars_eureka_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    struct eu_conf *c = conf;
    const struct mars_cfg_node *at = mars_cfg_at(node, "servers", NULL);
    int rc = 0;
    if (c->servers.n == 0) {
        mars_diag_add(diag, at->file, at->line, at->col, "'servers' needs at least one URL");
        rc = -EINVAL;
    }
    c->pods.on = mars_cfg_get(node, "pods") != NULL && c->pods.enabled;
    at = mars_cfg_at(node, "instances", NULL);
    if (c->instances.n == 0 && !c->pods.on) {
        mars_diag_add(diag, at->file, at->line, at->col,
                      "'instances' needs at least one instance (or use 'pods')");
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->instances.n; i++) {
        const struct eu_instance_conf *ic = eu_instance_at(c, i);
        if (ic->port == 0 && ic->secure_port == 0) {
            mars_diag_add(diag, at->file, at->line, at->col,
                          "instance of app '%s' needs port or secure_port", ic->app);
            rc = -EINVAL;
        }
    }
    if (mars_netconf_check(&c->tls, NULL, node, diag))
        rc = -EINVAL;
    return rc;
}
