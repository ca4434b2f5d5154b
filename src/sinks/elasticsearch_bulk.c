/*
 * elasticsearch_bulk.c - the pure pieces of the Elasticsearch _bulk protocol that the
 * `elasticsearch` sink's data path (elasticsearch.c) calls: what an item or request status
 * means, the action line of each document, generated ids, the bulk URL, and walking a bulk
 * response's items with the JSON scanner (one pass over the items array, nothing
 * allocated).
 *
 * Thread: any (no state).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "sinks/elasticsearch_internal.h"

enum mars_elasticsearch_class mars_elasticsearch_item_class(int status, bool create)
{
    if (status >= 200 && status < 300)
        return MARS_ELASTICSEARCH_OK;
    if (status == 409 && create)
        return MARS_ELASTICSEARCH_OK;
    if (status == 429 || status >= 500 || status == 0)
        return MARS_ELASTICSEARCH_RETRY;
    return MARS_ELASTICSEARCH_PERMANENT;
}

enum mars_elasticsearch_class mars_elasticsearch_request_class(int status)
{
    if (status >= 200 && status < 300)
        return MARS_ELASTICSEARCH_OK;
    if (status == 429 || status >= 500 || status == 401 || status == 403 || status == 407 ||
        status == 408 || status < 400) /* 1xx, 3xx: a proxy or a wrong URL, not the data */
        return MARS_ELASTICSEARCH_RETRY;
    return MARS_ELASTICSEARCH_PERMANENT;
}

/* The value of an item object {"<action>":{...}}: its only member, whatever the action. */
static bool item_body(const struct mars_value *item, struct mars_value *out)
{
    static const char *const actions[] = {"index", "create", "update", "delete"};
    for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
        if (mars_json_object_get(item->ptr, item->len, actions[a], (uint32_t)strlen(actions[a]),
                                 out) &&
            out->kind == MARS_FIELD_OBJECT)
            return true;
    return false;
}

int64_t mars_elasticsearch_items(const char *body, size_t n, bool *all_ok,
                                 void (*fn)(void *ctx, uint32_t i,
                                            const struct mars_elasticsearch_item *it),
                                 void *ctx)
{
    struct mars_value v, items, item, inner, err;
    *all_ok = false;
    if (mars_json_validate(body, n, 64, NULL) != MARS_JSON_OK)
        return -EBADMSG;
    if (mars_json_object_get(body, n, "errors", 6, &v) && v.kind == MARS_FIELD_BOOL &&
        v.len == 5 /* false */) {
        *all_ok = true;
        return 0;
    }
    if (!mars_json_object_get(body, n, "items", 5, &items) || items.kind != MARS_FIELD_ARRAY)
        return -EBADMSG;
    size_t pos = 0;
    uint32_t i = 0;
    while (mars_json_array_next(items.ptr, items.len, &pos, &item)) {
        struct mars_elasticsearch_item it = {0};
        if (item.kind == MARS_FIELD_OBJECT && item_body(&item, &inner)) {
            double st;
            if (mars_json_object_get(inner.ptr, inner.len, "status", 6, &v) &&
                mars_value_number(&v, &st))
                it.status = (int)st;
            if (mars_json_object_get(inner.ptr, inner.len, "error", 5, &err) &&
                err.kind == MARS_FIELD_OBJECT &&
                mars_json_object_get(err.ptr, err.len, "type", 4, &v) &&
                v.kind == MARS_FIELD_STRING) {
                it.etype = v.ptr;
                it.etype_len = v.len;
            }
        }
        fn(ctx, i++, &it);
    }
    return i;
}

int mars_elasticsearch_put_action(struct mars_encoder *e, enum mars_elasticsearch_action a,
                                  const char *index, size_t index_len, const char *id,
                                  size_t id_len)
{
    int rc = a == MARS_ELASTICSEARCH_CREATE ? mars_encoder_put(e, "{\"create\":{\"_index\":", 20)
                                            : mars_encoder_put(e, "{\"index\":{\"_index\":", 19);
    rc = rc ? rc : mars_encode_json_string(e, index, index_len);
    if (id) {
        rc = rc ? rc : mars_encoder_put(e, ",\"_id\":", 7);
        rc = rc ? rc : mars_encode_json_string(e, id, id_len);
    }
    return rc ? rc : mars_encoder_put(e, "}}\n", 3);
}

void mars_elasticsearch_gen_id(uint64_t nonce, uint64_t seq,
                               char out[MARS_ELASTICSEARCH_ID_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[16];
    for (int i = 0; i < 8; i++) {
        raw[i] = (unsigned char)(nonce >> (56 - 8 * i));
        raw[8 + i] = (unsigned char)(seq >> (56 - 8 * i));
    }
    /* 128 bits = 21 whole sextets and 2 bits */
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64[(acc >> bits) & 63];
        }
    }
    out[o++] = b64[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

char *mars_elasticsearch_bulk_url(const char *endpoint, const char *filter_path,
                                  const char *pipeline)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    bool fp = filter_path && *filter_path, pl = pipeline && *pipeline;
    size_t len = n + 64 + (fp ? strlen(filter_path) : 0) + (pl ? strlen(pipeline) : 0);
    char *url = malloc(len);
    if (!url)
        return NULL;
    snprintf(url, len, "%.*s/_bulk%s%s%s%s%s", (int)n, endpoint, fp || pl ? "?" : "",
             fp ? "filter_path=" : "", fp ? filter_path : "", fp && pl ? "&" : "",
             pl ? "pipeline=" : "");
    if (pl)
        strcat(url, pipeline);
    return url;
}
