/*
 * apollo.h - the Apollo config service's client contract (shared/protocols.md §1, §11),
 * shared by the `apollo` source and mars's own configuration from Apollo
 * (control/apollo_config.c): the configuration map of a namespace, URLs, signatures,
 * response parsing with incremental sync (apollo.c), and the on-disk cache of the last
 * good configuration of a namespace (apollo_cache.c). Neither runs requests: callers
 * drive core/http_client.h.
 *
 * Thread: any; no state outside the arguments.
 */
#ifndef MARS_WIRE_APOLLO_H
#define MARS_WIRE_APOLLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Namespace formats, from the namespace name's suffix (none: properties). */
enum mars_apollo_format {
    MARS_APOLLO_PROPERTIES,
    MARS_APOLLO_JSON,
    MARS_APOLLO_YAML,
    MARS_APOLLO_YML,
    MARS_APOLLO_XML,
    MARS_APOLLO_TXT
};
extern const char *const mars_apollo_format_names[];
enum mars_apollo_format mars_apollo_format_of(const char *ns);

/* A namespace's configuration: keys sorted (strcmp), both strings owned. */
struct mars_apollo_kv {
    char *k, *v;
};
struct mars_apollo_map {
    struct mars_apollo_kv *v;
    size_t n, cap;
};
void mars_apollo_map_free(struct mars_apollo_map *m);
/* Sets k = v (copies both). Returns 0 or -ENOMEM. */
int mars_apollo_map_set(struct mars_apollo_map *m, const char *k, size_t kl, const char *v,
                        size_t vl);
/* Removes k. Returns 0 or -ENOENT. */
int mars_apollo_map_del(struct mars_apollo_map *m, const char *k);
const struct mars_apollo_kv *mars_apollo_map_get(const struct mars_apollo_map *m, const char *k);
/* Deep copy into dst (zeroed). Returns 0 or -ENOMEM. */
int mars_apollo_map_copy(struct mars_apollo_map *dst, const struct mars_apollo_map *src);
bool mars_apollo_map_equal(const struct mars_apollo_map *a, const struct mars_apollo_map *b);

/* A parsed /configs answer. */
struct mars_apollo_configs {
    char *release_key;          /* owned */
    struct mars_apollo_map map; /* FullSync: the whole map; IncrementalSync: the merged result */
    bool incremental;           /* the server sent IncrementalSync */
};
void mars_apollo_configs_fini(struct mars_apollo_configs *c);
/* Parses a 200 body of /configs. With IncrementalSync, the changes are applied to a copy
 * of `prev` (NULL: none known). Returns 0, -EINVAL for a body that is not the contract
 * (why says what), or -ESTALE when the changes cannot be applied to prev (refetch in full). */
int mars_apollo_configs_parse(const char *body, size_t n, const struct mars_apollo_map *prev,
                              struct mars_apollo_configs *out, char *why, size_t wlen);

/* One entry of a /notifications/v2 answer. */
struct mars_apollo_notif {
    char *ns; /* owned */
    int64_t id;
    char *messages; /* owned raw JSON of "messages", or NULL */
};
/* Parses a 200 body of /notifications/v2 into *out (owned array of *n; free with
 * mars_apollo_notifs_free). Returns 0 or -EINVAL. */
int mars_apollo_notifs_parse(const char *body, size_t n, struct mars_apollo_notif **out,
                             size_t *nout);
void mars_apollo_notifs_free(struct mars_apollo_notif *v, size_t n);

/* Parses a meta server's /services/config answer into homepage URLs without their trailing
 * '/' (owned array of owned strings). Returns 0 (maybe *n == 0) or -EINVAL. */
int mars_apollo_meta_parse(const char *body, size_t n, char ***urls, size_t *nurls);

/* Percent-encodes s (all but unreserved characters) and appends it to buf. Returns 0 or
 * -ENOMEM. */
struct mars_apollo_buf {
    char *p;
    size_t n, cap;
};
int mars_apollo_buf_add(struct mars_apollo_buf *b, const char *s, size_t n);
int mars_apollo_buf_addf(struct mars_apollo_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int mars_apollo_buf_urlenc(struct mars_apollo_buf *b, const char *s);
void mars_apollo_buf_fini(struct mars_apollo_buf *b);

/* The Authorization and Timestamp headers for a request whose path with query (exactly
 * the bytes sent) is path_query, signed with secret at time now_ms. Writes "Authorization:
 * Apollo ..." into auth and "Timestamp: ..." into ts. Returns 0 or -EIO. */
int mars_apollo_sign(const char *app_id, const char *secret, const char *path_query, int64_t now_ms,
                     char *auth, size_t alen, char *ts, size_t tlen);

/* ---- cache (apollo_cache.c) ---- */

/* The cache file of a namespace: {dir}/{app}+{cluster}+{ns}.json, written atomically (temp
 * file, fsync, rename, mode 0600). Returns 0 or -errno. */
int mars_apollo_cache_save(const char *dir, const char *app, const char *cluster, const char *ns,
                           const char *release_key, const struct mars_apollo_map *m);
/* Loads it. Returns 0 (map filled, *release_key owned), -ENOENT, or -EINVAL (corrupt). */
int mars_apollo_cache_load(const char *dir, const char *app, const char *cluster, const char *ns,
                           char **release_key, struct mars_apollo_map *m);
#endif
