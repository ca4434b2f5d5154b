/*
 * apollo_conf.c - the `apollo` source's options and the checks across them, apart from its
 * data path (apollo.c).
 *
 * Thread: the config loader's.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/cfg.h"
#include "core/diag.h"
#include "core/schema.h"

#include "apollo_internal.h"

#define AOFF(f) offsetof(struct ap_app_conf, f)
static const struct mars_opt apollo_app_options[] = {
    {.name = "app_id",
     .type = MARS_OPT_STRING,
     .offset = AOFF(app_id),
     .flags = MARS_OPT_REQUIRED,
     .desc = "The Apollo appId."},
    {.name = "cluster",
     .type = MARS_OPT_STRING,
     .offset = AOFF(cluster),
     .def = "default",
     .desc = "The cluster of the app's namespaces."},
    {.name = "namespaces",
     .type = MARS_OPT_LIST,
     .offset = AOFF(namespaces),
     .def = "[application]",
     .desc = "Namespaces to follow: properties ones by name, others with their suffix "
             "(datasources.json, app.yaml, rules.xml, notes.txt)."},
    {.name = "secret",
     .type = MARS_OPT_SECRET,
     .offset = AOFF(secret),
     .desc = "The app's access key secret: requests are signed (Authorization: Apollo "
             "appId:signature, Timestamp)."},
    {.name = "label",
     .type = MARS_OPT_STRING,
     .offset = AOFF(label),
     .desc = "Gray-release label sent with each fetch."},
    {.name = NULL},
};

#define OFF(f) offsetof(struct ap_conf, f)
const struct mars_opt mars_apollo_options[] = {
    {.name = "config_service",
     .type = MARS_OPT_LIST,
     .offset = OFF(config_service),
     .desc = "Config service base URLs (http://host:8080); a failed request moves to the "
             "next. Give this or meta_server."},
    {.name = "meta_server",
     .type = MARS_OPT_STRING,
     .offset = OFF(meta_server),
     .desc = "Meta server base URL: the config services are read from its /services/config."},
    {.name = "apps",
     .type = MARS_OPT_SECTION_LIST,
     .offset = OFF(apps),
     .flags = MARS_OPT_REQUIRED,
     .sub = apollo_app_options,
     .sub_size = sizeof(struct ap_app_conf),
     .desc = "The apps to follow, each a mapping of the options below."},
    {.name = "ip",
     .type = MARS_OPT_STRING,
     .offset = OFF(ip),
     .desc = "Client IP sent as `ip` (gray releases by IP); default: this host's first "
             "non-loopback IPv4 address."},
    {.name = "data_center",
     .type = MARS_OPT_STRING,
     .offset = OFF(data_center),
     .desc = "Data center sent as `dataCenter`."},
    {.name = "refresh_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(refresh_interval),
     .def = "5m",
     .min = S_NS,
     .max = 24 * 3600 * S_NS,
     .desc = "Every namespace is fetched again this often, beside the long poll."},
    {.name = "meta_refresh_interval",
     .type = MARS_OPT_DURATION,
     .offset = OFF(meta_refresh_interval),
     .def = "5m",
     .min = S_NS,
     .max = 24 * 3600 * S_NS,
     .desc = "With meta_server: how often the list of config services is read again."},
    {.name = "poll_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(poll_timeout),
     .def = "90s",
     .min = S_NS,
     .max = 600 * S_NS,
     .desc = "Timeout of a long poll; above the server's hold (60 s)."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(timeout),
     .def = "5s",
     .min = 10000000,
     .max = 600 * S_NS,
     .desc = "Timeout of a configuration or meta server request."},
    {.name = "connect_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(connect_timeout),
     .def = "1s",
     .min = 10000000,
     .max = 60 * S_NS,
     .desc = "Timeout of a connection to a config service or meta server."},
    {.name = "cache",
     .type = MARS_OPT_BOOL,
     .offset = OFF(cache),
     .def = "true",
     .desc = "Keep the last good configuration of each namespace and use it when no config "
             "service answers at start."},
    {.name = "cache_dir",
     .type = MARS_OPT_STRING,
     .offset = OFF(cache_dir),
     .desc = "Directory of the cache (files mode 0600); default: data_dir/apollo."},
    {.name = NULL},
};

int mars_apollo_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct ap_conf *c = conf;
    int rc = 0;
    if ((c->config_service.n > 0) == (c->meta_server != NULL)) {
        const struct mars_cfg_node *at =
            c->meta_server ? mars_cfg_at(node, "meta_server", NULL) : node;
        mars_diag_add(diag, at->file, at->line, at->col,
                      "give exactly one of config_service and meta_server");
        rc = -EINVAL;
    }
    if (c->apps.n == 0) {
        mars_diag_add(diag, node->file, node->line, node->col, "'apps' needs at least one app");
        rc = -EINVAL;
    }
    for (size_t i = 0; i < c->apps.n; i++) {
        const struct ap_app_conf *a = app_at(c, i);
        const struct mars_cfg_node *at = mars_cfg_item_at(node, "apps", i);
        if (!a->app_id || !*a->app_id || strchr(a->app_id, '/') || strchr(a->app_id, '+') ||
            !a->cluster || !*a->cluster || strchr(a->cluster, '/') || strchr(a->cluster, '+')) {
            mars_diag_add(diag, at->file, at->line, at->col,
                          "app %zu: app_id and cluster must be non-empty, without '/' or '+'",
                          i + 1);
            rc = -EINVAL;
        }
        for (size_t j = 0; j < a->namespaces.n; j++) {
            const char *ns = a->namespaces.v[j];
            if (!*ns || strchr(ns, '/') || strchr(ns, '+') || ns[0] == '.') {
                mars_diag_add(diag, at->file, at->line, at->col,
                              "app %zu: namespace '%s' must be non-empty, without '/' or '+'",
                              i + 1, ns);
                rc = -EINVAL;
            }
        }
    }
    return rc;
}
