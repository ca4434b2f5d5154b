/*
 * apollo_internal.h - what the `apollo` source's files share: the configuration map of a
 * namespace, the Apollo wire helpers (URLs, signatures, response parsing, incremental sync)
 * in apollo_proto.c, and the on-disk cache in apollo_cache.c. apollo.c runs the requests.
 *
 * Thread: the source's worker.
 */
#ifndef MARS_APOLLO_INTERNAL_H
#define MARS_APOLLO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Namespace formats, from the namespace name's suffix (none: properties). */
enum ap_format { AP_PROPERTIES, AP_JSON, AP_YAML, AP_YML, AP_XML, AP_TXT };
extern const char *const ap_format_names[];
enum ap_format ap_format_of(const char *ns);

/* A namespace's configuration: keys sorted (strcmp), both strings owned. */
struct ap_kv {
    char *k, *v;
};
struct ap_map {
    struct ap_kv *v;
    size_t n, cap;
};
void ap_map_free(struct ap_map *m);
/* Sets k = v (copies both). Returns 0 or -ENOMEM. */
int ap_map_set(struct ap_map *m, const char *k, size_t kl, const char *v, size_t vl);
/* Removes k. Returns 0 or -ENOENT. */
int ap_map_del(struct ap_map *m, const char *k);
const struct ap_kv *ap_map_get(const struct ap_map *m, const char *k);
/* Deep copy into dst (zeroed). Returns 0 or -ENOMEM. */
int ap_map_copy(struct ap_map *dst, const struct ap_map *src);
bool ap_map_equal(const struct ap_map *a, const struct ap_map *b);

/* A parsed /configs answer. */
struct ap_configs {
    char *release_key; /* owned */
    struct ap_map map; /* FullSync: the whole map; IncrementalSync: the merged result */
    bool incremental;  /* the server sent IncrementalSync */
};
void ap_configs_fini(struct ap_configs *c);
/* Parses a 200 body of /configs. With IncrementalSync, the changes are applied to a copy
 * of `prev` (NULL: none known). Returns 0, -EINVAL for a body that is not the contract
 * (why says what), or -ESTALE when the changes cannot be applied to prev (refetch in full). */
int ap_configs_parse(const char *body, size_t n, const struct ap_map *prev, struct ap_configs *out,
                     char *why, size_t wlen);

/* One entry of a /notifications/v2 answer. */
struct ap_notif {
    char *ns; /* owned */
    int64_t id;
    char *messages; /* owned raw JSON of "messages", or NULL */
};
/* Parses a 200 body of /notifications/v2 into *out (owned array of *n; free with
 * ap_notifs_free). Returns 0 or -EINVAL. */
int ap_notifs_parse(const char *body, size_t n, struct ap_notif **out, size_t *nout);
void ap_notifs_free(struct ap_notif *v, size_t n);

/* Parses a meta server's /services/config answer into homepage URLs without their trailing
 * '/' (owned array of owned strings). Returns 0 (maybe *n == 0) or -EINVAL. */
int ap_meta_parse(const char *body, size_t n, char ***urls, size_t *nurls);

/* Percent-encodes s (all but unreserved characters) and appends it to buf. Returns 0 or
 * -ENOMEM. */
struct ap_buf {
    char *p;
    size_t n, cap;
};
int ap_buf_add(struct ap_buf *b, const char *s, size_t n);
int ap_buf_addf(struct ap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ap_buf_urlenc(struct ap_buf *b, const char *s);
void ap_buf_fini(struct ap_buf *b);

/* The Authorization and Timestamp headers for a request whose path with query (exactly
 * the bytes sent) is path_query, signed with secret at time now_ms. Writes "Authorization:
 * Apollo ..." into auth and "Timestamp: ..." into ts. Returns 0 or -EIO. */
int ap_sign(const char *app_id, const char *secret, const char *path_query, int64_t now_ms,
            char *auth, size_t alen, char *ts, size_t tlen);

/* ---- cache (apollo_cache.c) ---- */

/* The cache file of a namespace: {dir}/{app}+{cluster}+{ns}.json, written atomically (temp
 * file, fsync, rename, mode 0600). Returns 0 or -errno. */
int ap_cache_save(const char *dir, const char *app, const char *cluster, const char *ns,
                  const char *release_key, const struct ap_map *m);
/* Loads it. Returns 0 (map filled, *release_key owned), -ENOENT, or -EINVAL (corrupt). */
int ap_cache_load(const char *dir, const char *app, const char *cluster, const char *ns,
                  char **release_key, struct ap_map *m);
#endif
