/*
 * elasticsearch_internal.h - what the three files of the `elasticsearch` sink share:
 * elasticsearch.c (the data path), elasticsearch_conf.c (options and checks) and
 * elasticsearch_bulk.c (the _bulk protocol: statuses, action lines, ids, the URL, response
 * items). The bulk functions are unit tested in tests/unit/sinks/test_elasticsearch_bulk.c.
 */
#ifndef MARS_ELASTICSEARCH_INTERNAL_H
#define MARS_ELASTICSEARCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"
#include "component.h"
#include "sinks/http_common.h"

/* ---- options (elasticsearch_conf.c) ---- */

enum mars_elasticsearch_action { MARS_ELASTICSEARCH_INDEX, MARS_ELASTICSEARCH_CREATE };
extern const char *const mars_elasticsearch_action_names[]; /* enum order, NULL-terminated */

struct mars_elasticsearch_conf {
    struct mars_strlist endpoints;
    char *endpoint;
    int mode;   /* bulk (the only one so far) */
    int action; /* enum mars_elasticsearch_action */
    char *index;
    char *id_key;
    bool generate_id;
    char *pipeline;
    char *timestamp_key;
    char *filter_path;
    struct mars_strlist dedot;
    struct mars_http_common_conf http; /* tls, auth, headers, compression (none or gzip) */
};
extern const struct mars_opt mars_elasticsearch_options[];
int mars_elasticsearch_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

/* ---- the _bulk protocol (elasticsearch_bulk.c) ---- */

/* What the sink does with one bulk item (or a whole request) by HTTP status. */
enum mars_elasticsearch_class {
    MARS_ELASTICSEARCH_OK,
    MARS_ELASTICSEARCH_RETRY,
    MARS_ELASTICSEARCH_PERMANENT
};
/* Item status: 2xx ok, 409 on create ok (already stored), 429 and 5xx retried, other 4xx
 * permanent. */
enum mars_elasticsearch_class mars_elasticsearch_item_class(int status, bool create);
/* Request status (2xx handled by the caller): 429, 5xx, 401/403/407/408, 1xx and 3xx
 * retried (an auth problem or a wrong URL is fixed by an operator, not by dropping data),
 * other 4xx permanent. */
enum mars_elasticsearch_class mars_elasticsearch_request_class(int status);

struct mars_elasticsearch_item {
    int status;        /* 0 when the item had none */
    const char *etype; /* error.type, not NUL-terminated; NULL when absent */
    uint32_t etype_len;
};
/* Walks the items of a bulk response body, calling fn for each in request order. A body
 * with "errors":false calls nothing and returns 0 with *all_ok set. Returns the number
 * of items walked, or -EBADMSG when the body is not a bulk response (invalid JSON,
 * no items array). */
int64_t mars_elasticsearch_items(const char *body, size_t n, bool *all_ok,
                                 void (*fn)(void *ctx, uint32_t i,
                                            const struct mars_elasticsearch_item *it),
                                 void *ctx);

/* Appends the action line {"<action>":{"_index":"...","_id":"..."}}\n (id omitted when
 * id is NULL). Returns 0 or -ENOMEM. */
int mars_elasticsearch_put_action(struct mars_encoder *e, enum mars_elasticsearch_action a,
                                  const char *index, size_t index_len, const char *id,
                                  size_t id_len);

/* The generated id of sequence number seq in a process whose id nonce is nonce: 22
 * base64url characters and a NUL in out. Unique per (nonce, seq). */
#define MARS_ELASTICSEARCH_ID_LEN 22
void mars_elasticsearch_gen_id(uint64_t nonce, uint64_t seq,
                               char out[MARS_ELASTICSEARCH_ID_LEN + 1]);

/* The bulk URL for endpoint (trailing '/' dropped): <endpoint>/_bulk with filter_path and
 * pipeline in the query when set. Returns owned (free) or NULL. */
char *mars_elasticsearch_bulk_url(const char *endpoint, const char *filter_path,
                                  const char *pipeline);

#endif
