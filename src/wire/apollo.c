/*
 * apollo.c - the Apollo config service's client contract (wire/apollo.h; protocols.md §1,
 * §11): namespace formats, the sorted configuration map, the parsers of /configs (FullSync
 * and IncrementalSync), /notifications/v2 and a meta server's /services/config,
 * percent-encoding, and the access-key signature.
 *
 * Incremental sync is applied to a copy of the previous map and only replaces it whole:
 * a change that does not fit (no previous map, MODIFIED or DELETED of a key that is not
 * there, an unknown change type) makes the parse fail with -ESTALE and the caller fetches
 * the whole map again, so a half-applied map is never seen.
 *
 * Thread: any; no state outside the arguments.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/grow.h"
#include "model/fields.h"
#include "model/json.h"
#include "wire/apollo.h"

const char *const mars_apollo_format_names[] = {"properties", "json", "yaml", "yml",
                                                "xml",        "txt",  NULL};

enum mars_apollo_format mars_apollo_format_of(const char *ns)
{
    const char *dot = strrchr(ns, '.');
    if (!dot)
        return MARS_APOLLO_PROPERTIES;
    for (int f = MARS_APOLLO_JSON; f <= MARS_APOLLO_TXT; f++)
        if (strcmp(dot + 1, mars_apollo_format_names[f]) == 0)
            return (enum mars_apollo_format)f;
    return MARS_APOLLO_PROPERTIES; /* "a.b" without a known suffix is a properties namespace */
}

/* ---- map ---- */

void mars_apollo_map_free(struct mars_apollo_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].k);
        free(m->v[i].v);
    }
    free(m->v);
    *m = (struct mars_apollo_map){0};
}

/* Index of k, or of where it would go (*found false). */
static size_t map_find(const struct mars_apollo_map *m, const char *k, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->v[mid].k, k);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int mars_apollo_map_set(struct mars_apollo_map *m, const char *k, size_t kl, const char *v,
                        size_t vl)
{
    char *key = strndup(k, kl), *val = strndup(v, vl);
    bool found;
    if (!key || !val)
        goto nomem;
    size_t i = map_find(m, key, &found);
    if (found) {
        free(m->v[i].v);
        m->v[i].v = val;
        free(key);
        return 0;
    }
    if (mars_grow(&m->v, &m->cap, m->n + 1, sizeof(*m->v)))
        goto nomem;
    memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
    m->v[i] = (struct mars_apollo_kv){key, val};
    m->n++;
    return 0;
nomem:
    free(key);
    free(val);
    return -ENOMEM;
}

int mars_apollo_map_del(struct mars_apollo_map *m, const char *k)
{
    bool found;
    size_t i = map_find(m, k, &found);
    if (!found)
        return -ENOENT;
    free(m->v[i].k);
    free(m->v[i].v);
    memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
    m->n--;
    return 0;
}

const struct mars_apollo_kv *mars_apollo_map_get(const struct mars_apollo_map *m, const char *k)
{
    bool found;
    size_t i = map_find(m, k, &found);
    return found ? &m->v[i] : NULL;
}

int mars_apollo_map_copy(struct mars_apollo_map *dst, const struct mars_apollo_map *src)
{
    *dst = (struct mars_apollo_map){0};
    for (size_t i = 0; i < src->n; i++) {
        if (mars_apollo_map_set(dst, src->v[i].k, strlen(src->v[i].k), src->v[i].v,
                                strlen(src->v[i].v))) {
            mars_apollo_map_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

bool mars_apollo_map_equal(const struct mars_apollo_map *a, const struct mars_apollo_map *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].k, b->v[i].k) || strcmp(a->v[i].v, b->v[i].v))
            return false;
    return true;
}

/* ---- JSON helpers ---- */

/* The decoded text of a value, copied (owned), or NULL on -ENOMEM. null becomes "". */
static char *value_dup(const struct mars_value *v)
{
    char *scratch = NULL;
    size_t cap = 0;
    uint32_t len = 0;
    if (v->kind == MARS_FIELD_NULL)
        return strdup("");
    const char *t = mars_value_text(v, &scratch, &cap, &len);
    char *out = t ? strndup(t, len) : NULL;
    free(scratch);
    return out;
}

static struct mars_value field_value(const struct mars_field *f)
{
    return (struct mars_value){
        .kind = f->kind, .flags = f->flags, .ptr = f->value, .len = f->value_len};
}

static bool key_is(const struct mars_field *f, const char *k)
{
    return f->key_len == strlen(k) && memcmp(f->key, k, f->key_len) == 0;
}

static bool raw_get(const struct mars_value *obj, const char *k, struct mars_value *out)
{
    return mars_json_object_get(obj->ptr, obj->len, k, (uint32_t)strlen(k), out);
}

/* ---- /configs ---- */

void mars_apollo_configs_fini(struct mars_apollo_configs *c)
{
    free(c->release_key);
    mars_apollo_map_free(&c->map);
    *c = (struct mars_apollo_configs){0};
}

/* Applies configurationChanges (a raw JSON array) to out->map. */
static int apply_changes(const struct mars_value *arr, struct mars_apollo_configs *out, char *why,
                         size_t wlen)
{
    size_t pos = 0;
    struct mars_value el, k, v, t;
    while (mars_json_array_next(arr->ptr, arr->len, &pos, &el)) {
        if (el.kind != MARS_FIELD_OBJECT || !raw_get(&el, "key", &k) ||
            !raw_get(&el, "configurationChangeType", &t)) {
            snprintf(why, wlen, "a configurationChanges entry lacks key or type");
            return -ESTALE;
        }
        char *key = value_dup(&k), *type = value_dup(&t);
        char *val = raw_get(&el, "newValue", &v) ? value_dup(&v) : strdup("");
        int rc = key && type && val ? 0 : -ENOMEM;
        bool have = rc == 0 && mars_apollo_map_get(&out->map, key);
        if (rc == 0 && strcmp(type, "ADDED") == 0)
            rc = mars_apollo_map_set(&out->map, key, strlen(key), val, strlen(val));
        else if (rc == 0 && strcmp(type, "MODIFIED") == 0 && have)
            rc = mars_apollo_map_set(&out->map, key, strlen(key), val, strlen(val));
        else if (rc == 0 && strcmp(type, "DELETED") == 0 && have)
            rc = mars_apollo_map_del(&out->map, key);
        else if (rc == 0) {
            snprintf(why, wlen, "change %s of key '%.80s' does not fit the previous map", type,
                     key);
            rc = -ESTALE;
        }
        free(key);
        free(type);
        free(val);
        if (rc)
            return rc;
    }
    return 0;
}

static int configs_members(const struct mars_fbuild *fb, const struct mars_apollo_map *prev,
                           struct mars_apollo_configs *out, char *why, size_t wlen)
{
    const struct mars_field *conf = NULL, *changes = NULL, *type = NULL;
    for (uint32_t m = fb->v[0].first; m != MARS_FIELD_NIL; m = fb->v[m].next) {
        const struct mars_field *f = &fb->v[m];
        if (key_is(f, "releaseKey") && f->kind == MARS_FIELD_STRING) {
            struct mars_value v = field_value(f);
            if (!(out->release_key = value_dup(&v)))
                return -ENOMEM;
        } else if (key_is(f, "configurations") && f->kind == MARS_FIELD_OBJECT) {
            conf = f;
        } else if (key_is(f, "configurationChanges") && f->kind == MARS_FIELD_ARRAY) {
            changes = f;
        } else if (key_is(f, "configSyncType") && f->kind == MARS_FIELD_STRING) {
            type = f;
        }
    }
    if (!out->release_key) {
        snprintf(why, wlen, "the answer has no releaseKey");
        return -EINVAL;
    }
    out->incremental =
        type && type->value_len == 15 && memcmp(type->value, "IncrementalSync", 15) == 0;
    if (out->incremental) {
        if (!prev) {
            snprintf(why, wlen, "incremental sync without a previous configuration");
            return -ESTALE;
        }
        if (!changes) {
            snprintf(why, wlen, "incremental sync without configurationChanges");
            return -ESTALE;
        }
        if (mars_apollo_map_copy(&out->map, prev))
            return -ENOMEM;
        struct mars_value arr = field_value(changes);
        return apply_changes(&arr, out, why, wlen);
    }
    if (type && !(type->value_len == 8 && memcmp(type->value, "FullSync", 8) == 0)) {
        snprintf(why, wlen, "unknown configSyncType '%.*s'",
                 (int)(type->value_len < 40 ? type->value_len : 40), type->value);
        return -ESTALE;
    }
    if (!conf) {
        snprintf(why, wlen, "the answer has no configurations");
        return -EINVAL;
    }
    for (uint32_t m = conf->first; m != MARS_FIELD_NIL; m = fb->v[m].next) {
        const struct mars_field *f = &fb->v[m];
        struct mars_value vv = field_value(f);
        char *val = value_dup(&vv); /* keys come decoded from the scanner */
        int rc =
            val ? mars_apollo_map_set(&out->map, f->key, f->key_len, val, strlen(val)) : -ENOMEM;
        free(val);
        if (rc)
            return rc;
    }
    return 0;
}

int mars_apollo_configs_parse(const char *body, size_t n, const struct mars_apollo_map *prev,
                              struct mars_apollo_configs *out, char *why, size_t wlen)
{
    struct mars_arena arena;
    struct mars_fbuild fb;
    size_t at = 0;
    *out = (struct mars_apollo_configs){0};
    mars_arena_init(&arena);
    mars_fbuild_init(&fb);
    mars_fbuild_reset(&fb, &arena);
    enum mars_json_error e = mars_json_parse(body, n, 64, &fb, 0, &at);
    int rc;
    if (e != MARS_JSON_OK) {
        snprintf(why, wlen, "invalid JSON at byte %zu: %s", at, mars_json_strerror(e));
        rc = -EINVAL;
    } else {
        rc = configs_members(&fb, prev, out, why, wlen);
    }
    if (rc == -ENOMEM)
        snprintf(why, wlen, "out of memory");
    if (rc)
        mars_apollo_configs_fini(out);
    mars_fbuild_fini(&fb);
    mars_arena_fini(&arena);
    return rc;
}

/* ---- /notifications/v2 ---- */

void mars_apollo_notifs_free(struct mars_apollo_notif *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].ns);
        free(v[i].messages);
    }
    free(v);
}

int mars_apollo_notifs_parse(const char *body, size_t n, struct mars_apollo_notif **out,
                             size_t *nout)
{
    struct mars_value el, v;
    size_t pos = 0, cnt = 0, cap = 0;
    struct mars_apollo_notif *arr = NULL;
    *out = NULL;
    *nout = 0;
    if (mars_json_validate(body, n, 64, NULL) != MARS_JSON_OK)
        return -EINVAL;
    while (n && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t'))
        body++, n--;
    if (!n || *body != '[')
        return -EINVAL;
    while (mars_json_array_next(body, n, &pos, &el)) {
        double id;
        if (el.kind != MARS_FIELD_OBJECT || !raw_get(&el, "namespaceName", &v) ||
            v.kind != MARS_FIELD_STRING)
            goto bad;
        if (mars_grow(&arr, &cap, cnt + 1, sizeof(*arr)))
            goto bad;
        struct mars_apollo_notif *x = &arr[cnt++];
        *x = (struct mars_apollo_notif){.ns = value_dup(&v), .id = -1};
        if (!x->ns)
            goto bad;
        if (raw_get(&el, "notificationId", &v) && mars_value_number(&v, &id))
            x->id = (int64_t)id;
        if (raw_get(&el, "messages", &v) && v.kind == MARS_FIELD_OBJECT &&
            !(x->messages = strndup(v.ptr, v.len)))
            goto bad;
    }
    *out = arr;
    *nout = cnt;
    return 0;
bad:
    mars_apollo_notifs_free(arr, cnt);
    return -EINVAL;
}

/* ---- meta server ---- */

int mars_apollo_meta_parse(const char *body, size_t n, char ***urls, size_t *nurls)
{
    struct mars_value el, v;
    size_t pos = 0, cnt = 0, cap = 0;
    char **arr = NULL;
    *urls = NULL;
    *nurls = 0;
    if (mars_json_validate(body, n, 64, NULL) != MARS_JSON_OK)
        return -EINVAL;
    while (n && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t'))
        body++, n--;
    if (!n || *body != '[')
        return -EINVAL;
    while (mars_json_array_next(body, n, &pos, &el)) {
        if (el.kind != MARS_FIELD_OBJECT || !raw_get(&el, "homepageUrl", &v) ||
            v.kind != MARS_FIELD_STRING)
            continue;
        char *u = value_dup(&v);
        if (!u || mars_grow(&arr, &cap, cnt + 1, sizeof(*arr))) {
            free(u);
            break;
        }
        size_t l = strlen(u);
        while (l && u[l - 1] == '/')
            u[--l] = '\0';
        arr[cnt++] = u;
    }
    *urls = arr;
    *nurls = cnt;
    return 0;
}

/* ---- buffers, encoding, signature ---- */

int mars_apollo_buf_add(struct mars_apollo_buf *b, const char *s, size_t n)
{
    if (mars_grow(&b->p, &b->cap, b->n + n + 1, 1))
        return -ENOMEM;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int mars_apollo_buf_addf(struct mars_apollo_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -EINVAL;
    return mars_apollo_buf_add(b, tmp, (size_t)n);
}

int mars_apollo_buf_urlenc(struct mars_apollo_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        int rc = plain ? mars_apollo_buf_add(b, (const char *)&c, 1) : mars_apollo_buf_add(b, e, 3);
        if (rc)
            return rc;
    }
    return 0;
}

void mars_apollo_buf_fini(struct mars_apollo_buf *b)
{
    free(b->p);
    *b = (struct mars_apollo_buf){0};
}

int mars_apollo_sign(const char *app_id, const char *secret, const char *path_query, int64_t now_ms,
                     char *auth, size_t alen, char *ts, size_t tlen)
{
    char msg[8192];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    int n = snprintf(msg, sizeof(msg), "%lld\n%s", (long long)now_ms, path_query);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EIO;
    if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac,
              &maclen))
        return -EIO;
    EVP_EncodeBlock(b64, mac, (int)maclen);
    snprintf(auth, alen, "Authorization: Apollo %s:%s", app_id, (const char *)b64);
    snprintf(ts, tlen, "Timestamp: %lld", (long long)now_ms);
    return 0;
}
