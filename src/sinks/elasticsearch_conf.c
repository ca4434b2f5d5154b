/*
 * elasticsearch_conf.c - the `elasticsearch` sink's options and their checks (endpoints,
 * the index template, id_key, filter_path, compression); the bulk protocol is in
 * elasticsearch_bulk.c and the data path in elasticsearch.c.
 *
 * Thread: any (no state).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/compress.h"
#include "component.h"
#include "sinks/elasticsearch_internal.h"

const char *const mars_elasticsearch_action_names[] = {"index", "create", NULL};
static const char *const mode_names[] = {"bulk", NULL};

#define OFF(f) offsetof(struct mars_elasticsearch_conf, f)
const struct mars_opt mars_elasticsearch_options[] = {
    {.name = "endpoint",
     .type = MARS_OPT_URL,
     .offset = OFF(endpoint),
     .desc = "Base URL of the cluster (http://host:9200); use endpoints for several."},
    {.name = "endpoints",
     .type = MARS_OPT_URL_LIST,
     .offset = OFF(endpoints),
     .desc = "Base URLs of several nodes, used in turn; a failed request goes to the next."},
    {.name = "mode",
     .type = MARS_OPT_ENUM,
     .offset = OFF(mode),
     .def = "bulk",
     .choices = mode_names,
     .desc = "bulk sends events with the _bulk API, the only mode so far; the option is "
             "there so a data-stream or single-document mode can be added without changing "
             "configs that name it."},
    {.name = "action",
     .type = MARS_OPT_ENUM,
     .offset = OFF(action),
     .def = "index",
     .choices = mars_elasticsearch_action_names,
     .desc = "index stores (or replaces) each document; create only adds new ones, as data "
             "streams require, and a document whose id exists (409) counts as delivered."},
    {.name = "index",
     .type = MARS_OPT_STRING,
     .offset = OFF(index),
     .def = "mars-%Y.%m.%d",
     .desc = "Index or data stream name; strftime parts use the event time in UTC and "
             "{{ field }} parts the event's fields (logs-{{ kubernetes.namespace }}-%Y.%m.%d)."},
    {.name = "dedot",
     .type = MARS_OPT_LIST,
     .offset = OFF(dedot),
     .def = "[kubernetes.labels, kubernetes.annotations]",
     .desc = "Objects whose keys are sent with '.' replaced by '_' (at any depth below "
             "them): pod labels app and app.kubernetes.io/name would otherwise clash in the "
             "index mapping (a value and an object). [] sends keys as they are."},
    {.name = "id_key",
     .type = MARS_OPT_STRING,
     .offset = OFF(id_key),
     .desc = "Field whose value is the document _id, so a resent event replaces (index) or "
             "is recognised (create) instead of being stored twice."},
    {.name = "generate_id",
     .type = MARS_OPT_BOOL,
     .offset = OFF(generate_id),
     .def = "false",
     .desc = "Give each event an _id unique to this mars process, so every resend by this "
             "process (retries, partial failures) is idempotent; replays after a restart get "
             "new ids."},
    {.name = "pipeline",
     .type = MARS_OPT_STRING,
     .offset = OFF(pipeline),
     .desc = "Ingest pipeline to run documents through."},
    {.name = "timestamp_key",
     .type = MARS_OPT_STRING,
     .offset = OFF(timestamp_key),
     .def = "@timestamp",
     .desc = "Key of the event time in each document (data streams need "
             "@timestamp)."},
    {.name = "filter_path",
     .type = MARS_OPT_STRING,
     .offset = OFF(filter_path),
     .def = "errors,items.*.status,items.*.error.type",
     .desc = "Response filter sent with each request, keeping answers small; it must keep "
             "errors and items.*.status; empty sends none."},
    MARS_HTTP_COMMON_OPTIONS(struct mars_elasticsearch_conf, http, "none"),
    {.name = NULL},
};

static void diag_at(const struct mars_cfg_node *node, const char *key, struct mars_diag *diag,
                    const char *fmt, const char *arg)
{
    const struct mars_cfg_node *n = mars_cfg_at(node, key, NULL);
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, arg);
    mars_diag_add(diag, n->file, n->line, n->col, "%s", msg);
}

int mars_elasticsearch_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct mars_elasticsearch_conf *c = conf;
    int rc = mars_http_common_check(&c->http, node, diag);
    char err[160];

    if (!c->endpoint == !c->endpoints.n) {
        diag_at(node, "endpoint", diag, "%s", "set one of endpoint and endpoints");
        rc = -EINVAL;
    }
    struct mars_template *t = mars_template_compile(c->index, 0, err, sizeof(err));
    if (!t) {
        diag_at(node, "index", diag, "option 'index': %s", err);
        rc = -EINVAL;
    }
    mars_template_destroy(t);
    for (size_t i = 0; i < c->dedot.n; i++)
        if (mars_check_path(c->dedot.v[i], mars_cfg_item_at(node, "dedot", i), "dedot", true, diag))
            rc = -EINVAL;
    if (c->id_key) {
        size_t at;
        const char *why;
        struct mars_path *p = mars_path_compile(c->id_key, strlen(c->id_key), &at, &why);
        if (!p) {
            diag_at(node, "id_key", diag, "option 'id_key': %s", why);
            rc = -EINVAL;
        }
        mars_path_destroy(p);
    }
    if (c->filter_path && *c->filter_path &&
        (!strstr(c->filter_path, "errors") || !strstr(c->filter_path, "status"))) {
        diag_at(node, "filter_path", diag,
                "filter_path '%s' must keep errors and "
                "items.*.status (or be empty)",
                c->filter_path);
        rc = -EINVAL;
    }
    if (c->id_key && c->generate_id) {
        diag_at(node, "generate_id", diag, "%s", "id_key and generate_id exclude each other");
        rc = -EINVAL;
    }
    if (c->http.compression != MARS_CODEC_NONE && c->http.compression != MARS_CODEC_GZIP) {
        diag_at(node, "compression", diag, "compression '%s': Elasticsearch takes none or gzip",
                mars_compression_names[c->http.compression]);
        rc = -EINVAL;
    }
    return rc;
}
