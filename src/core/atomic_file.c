/*
 * atomic_file.c - temp file + fsync + rename replacement of small files (atomic_file.h).
 *
 * The temp file is "<path>.tmp.<pid>.<n>" in the target's directory, so the rename never
 * crosses file systems; a kill -9 between write and rename leaves at worst that temp file
 * (never a truncated target), which the next replace of the same path does not reuse
 * (O_EXCL with a new name).
 *
 * Thread: any.
 */
#include "core/atomic_file.h"

#include "core/grow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t l = (size_t)(slash - path);
        if (l >= sizeof(dir))
            return;
        memcpy(dir, path, l ? l : 1);
        dir[l ? l : 1] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int mars_file_replace(const char *path, const void *data, size_t n, unsigned mode, uid_t uid,
                      gid_t gid)
{
    static _Atomic unsigned seq;
    char tmp[PATH_MAX];
    int len = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", path, (long)getpid(),
                       atomic_fetch_add(&seq, 1));
    if (len < 0 || (size_t)len >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, data, n);
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = -errno;
    if (rc == 0 && uid != (uid_t)-1 && fchown(fd, uid, gid) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    sync_dir(path);
    return 0;
}

bool mars_file_same(const char *path, const void *data, size_t n)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == n;
    char buf[8192];
    size_t off = 0;
    while (same && off < n) {
        ssize_t r = read(fd, buf, sizeof(buf) < n - off ? sizeof(buf) : n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || memcmp(buf, (const char *)data + off, (size_t)r) != 0)
            same = false;
        else
            off += (size_t)r;
    }
    close(fd);
    return same;
}

int mars_fd_read_all(int fd, size_t max, char **out, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 2 && mars_grow(&buf, &cap, n + 2 > 8192 ? n + 2 : 8192, 1)) {
            free(buf);
            return -ENOMEM;
        }
        size_t room = cap - n - 1; /* the last byte is the NUL's */
        if (room > max + 1 - n)
            room = max + 1 - n; /* one byte past max tells "too large" */
        ssize_t r = read(fd, buf + n, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            free(buf);
            return -err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            free(buf);
            return -EFBIG;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int mars_mkdir_p(const char *dir, unsigned mode)
{
    char p[PATH_MAX];
    size_t l = strlen(dir);
    if (l == 0 || l >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, dir, l + 1);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}
