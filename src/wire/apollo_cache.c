/*
 * apollo_cache.c - the cache of the last good configuration of an Apollo namespace, used
 * by the `apollo` source and by mars's own configuration from Apollo: one file
 * {dir}/{app}+{cluster}+{namespace}.json holding {"releaseKey":"...","configurations":
 * {...}}, mode 0600 (configurations hold secrets).
 *
 * Written after every change fetched from the config service, through a temp file, fsync
 * and rename (core/atomic_file.h), so a crash leaves the old cache or the new, never a
 * truncated one. The files are a few KiB and local: they are written synchronously on the
 * caller's thread, at most once per published change, which costs about as much as the
 * fetch's own JSON parsing (see the note in config/desc.h on synchronous local file I/O).
 *
 * Thread: any.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/atomic_file.h"
#include "wire/apollo.h"

#define CACHE_MAX_BYTES (16u << 20)

static int cache_path(char *out, size_t len, const char *dir, const char *app, const char *cluster,
                      const char *ns)
{
    int n = snprintf(out, len, "%s/%s+%s+%s.json", dir, app, cluster, ns);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int mars_apollo_cache_save(const char *dir, const char *app, const char *cluster, const char *ns,
                           const char *release_key, const struct mars_apollo_map *m)
{
    char path[PATH_MAX];
    int rc = cache_path(path, sizeof(path), dir, app, cluster, ns);
    if (rc)
        return rc;
    rc = mars_mkdir_p(dir, 0700);
    if (rc)
        return rc;
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return -ENOMEM;
    rc = evbuffer_add_printf(b, "{\"releaseKey\":") < 0 ? -ENOMEM : 0;
    rc = rc ? rc : mars_json_string(b, release_key ? release_key : "");
    rc = rc ? rc : evbuffer_add_printf(b, ",\"configurations\":{") < 0 ? -ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        if (i && evbuffer_add(b, ",", 1))
            rc = -ENOMEM;
        rc = rc ? rc : mars_json_string(b, m->v[i].k);
        rc = rc ? rc : (evbuffer_add(b, ":", 1) ? -ENOMEM : 0);
        rc = rc ? rc : mars_json_string(b, m->v[i].v);
    }
    rc = rc ? rc : (evbuffer_add(b, "}}\n", 3) ? -ENOMEM : 0);
    if (rc == 0) {
        size_t n = evbuffer_get_length(b);
        const char *p = (const char *)evbuffer_pullup(b, -1);
        rc = p ? mars_file_replace(path, p, n, 0600, (uid_t)-1, (gid_t)-1) : -ENOMEM;
    }
    evbuffer_free(b);
    return rc < 0 ? rc : (rc ? -ENOMEM : 0);
}

int mars_apollo_cache_load(const char *dir, const char *app, const char *cluster, const char *ns,
                           char **release_key, struct mars_apollo_map *m)
{
    char path[PATH_MAX], why[160];
    struct stat st;
    *release_key = NULL;
    *m = (struct mars_apollo_map){0};
    int rc = cache_path(path, sizeof(path), dir, app, cluster, ns);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > CACHE_MAX_BYTES) {
        close(fd);
        return -EINVAL;
    }
    size_t n = (size_t)st.st_size, off = 0;
    char *buf = malloc(n + 1);
    while (buf && off < n) {
        ssize_t r = read(fd, buf + off, n - off);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    if (!buf || off != n) {
        free(buf);
        return buf ? -EIO : -ENOMEM;
    }
    buf[n] = '\0';
    struct mars_apollo_configs c;
    rc = mars_apollo_configs_parse(buf, n, NULL, &c, why, sizeof(why));
    free(buf);
    if (rc)
        return -EINVAL;
    *release_key = c.release_key;
    *m = c.map;
    return 0;
}
