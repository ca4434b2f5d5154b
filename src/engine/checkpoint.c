/*
 * checkpoint.c - the checkpoint journal (see checkpoint.h).
 *
 * Layout: "MARSCKP1", then records { u32 len; u32 crc32c(payload); payload[len] } with
 * payload = { u8 op (1 put, 2 remove); struct mars_ckpt_rec; u16 path_len; path }.
 * Memory: an array of entries searched linearly by key is enough for thousands of files at
 * one lookup per file open; updates mark entries dirty and the writer appends only those.
 *
 * Locking: `lock` guards the entries and the journal fd and is held only for short
 * critical sections (workers take it on every acknowledgement); `flush_lock` serialises
 * flushes (writer thread, close) so fdatasync can run outside `lock`: workers never wait
 * for the disk.
 */
#include "engine/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"

#define MAGIC        "MARSCKP1"
#define MAGIC_LEN    8
#define OP_PUT       1
#define OP_REMOVE    2
#define MAX_PATH_LEN 4096

struct entry {
    struct mars_ckpt_rec rec;
    char *path;
    bool dirty, removed;
};

struct mars_ckpt {
    struct mars_ckpt *next; /* registry list */
    char *id, *file;
    int refs;
    pthread_mutex_t lock, flush_lock;
    int fd;
    uint64_t journal_bytes, live_bytes;
    struct entry *e;
    size_t n, cap;
    bool first_start, dirty;
    /* writer thread */
    pthread_t writer;
    pthread_cond_t wake;
    bool stop, has_writer;
    int64_t interval_ns;
    atomic_uint_fast64_t write_errors; /* failed flushes, read by the metrics collector */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mars_ckpt *registry;

/* ---- records ---- */

static size_t encode(unsigned char *buf, int op, const struct mars_ckpt_rec *r, const char *path)
{
    size_t plen = path ? strnlen(path, MAX_PATH_LEN) : 0;
    uint16_t pl = (uint16_t)plen;
    unsigned char *p = buf + 8;
    *p++ = (unsigned char)op;
    memcpy(p, r, sizeof(*r));
    p += sizeof(*r);
    memcpy(p, &pl, 2);
    p += 2;
    if (plen)
        memcpy(p, path, plen);
    p += plen;
    uint32_t len = (uint32_t)(p - buf - 8), crc = mars_crc32c(0, buf + 8, len);
    memcpy(buf, &len, 4);
    memcpy(buf + 4, &crc, 4);
    return 8 + len;
}

static struct entry *find(struct mars_ckpt *c, const struct mars_ckpt_key *k)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].rec.key.dev == k->dev && c->e[i].rec.key.ino == k->ino)
            return &c->e[i];
    return NULL;
}

static struct entry *find_or_add(struct mars_ckpt *c, const struct mars_ckpt_key *k)
{
    struct entry *e = find(c, k);
    if (e)
        return e;
    if (mars_grow(&c->e, &c->cap, c->n + 1, sizeof(*c->e)))
        return NULL;
    e = &c->e[c->n++];
    memset(e, 0, sizeof(*e));
    e->rec.key = *k;
    return e;
}

static void drop_entry(struct mars_ckpt *c, struct entry *e)
{
    free(e->path);
    *e = c->e[--c->n];
}

static void set_path(struct entry *e, const char *path, size_t len)
{
    if (e->path && strlen(e->path) == len && memcmp(e->path, path, len) == 0)
        return;
    free(e->path);
    e->path = strndup(path, len);
}

/* Applies one payload; returns false when it is malformed. */
static bool apply_payload(struct mars_ckpt *c, const unsigned char *p, uint32_t len)
{
    struct mars_ckpt_rec r;
    uint16_t pl;
    if (len < 1 + sizeof(r) + 2)
        return false;
    memcpy(&r, p + 1, sizeof(r));
    memcpy(&pl, p + 1 + sizeof(r), 2);
    if (len != 1 + sizeof(r) + 2 + pl)
        return false;
    if (p[0] == OP_REMOVE) {
        struct entry *e = find(c, &r.key);
        if (e)
            drop_entry(c, e);
        return true;
    }
    if (p[0] != OP_PUT)
        return false;
    struct entry *e = find_or_add(c, &r.key);
    if (!e)
        return false;
    e->rec = r;
    set_path(e, (const char *)p + 1 + sizeof(r) + 2, pl);
    return true;
}

/* ---- load ---- */

static void move_aside(const char *file)
{
    char aside[4300];
    if (snprintf(aside, sizeof(aside), "%s.corrupt-%lld", file, (long long)time(NULL)) >=
        (int)sizeof(aside))
        return;
    if (rename(file, aside) == 0)
        mars_error("-",
                   "checkpoint journal %s has a bad header; moved aside to %s and "
                   "starting fresh (files are read from their beginning)",
                   file, aside);
}

/* existed: the journal was there before this open (an empty one then lost its data). */
static int load(struct mars_ckpt *c, bool existed)
{
    unsigned char hdr[8];
    uint64_t good = MAGIC_LEN;
    struct stat st;

    if (fstat(c->fd, &st) != 0)
        return -errno;
    if (st.st_size == 0) {
        if (existed) /* every other damage is logged: so is this one */
            mars_warn(c->id,
                      "checkpoint journal %s is empty (a crash on a file system that lost "
                      "its data?): starting fresh, files are read from their beginning",
                      c->file);
        c->first_start = true;
        if (pwrite(c->fd, MAGIC, MAGIC_LEN, 0) != MAGIC_LEN)
            return -errno;
        c->journal_bytes = MAGIC_LEN;
        return 0;
    }
    char magic[MAGIC_LEN];
    if (pread(c->fd, magic, MAGIC_LEN, 0) != MAGIC_LEN || memcmp(magic, MAGIC, MAGIC_LEN) != 0)
        return -EBADMSG;
    unsigned char *buf = malloc(1 + sizeof(struct mars_ckpt_rec) + 2 + MAX_PATH_LEN);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        uint32_t len, crc;
        if (pread(c->fd, hdr, 8, (off_t)good) != 8)
            break;
        memcpy(&len, hdr, 4);
        memcpy(&crc, hdr + 4, 4);
        if (len > 1 + sizeof(struct mars_ckpt_rec) + 2 + MAX_PATH_LEN ||
            pread(c->fd, buf, len, (off_t)good + 8) != (ssize_t)len ||
            mars_crc32c(0, buf, len) != crc || !apply_payload(c, buf, len))
            break;
        good += 8 + len;
    }
    free(buf);
    if ((uint64_t)st.st_size > good) {
        mars_warn("-",
                  "checkpoint journal %s: dropped a torn or corrupt tail of %llu bytes "
                  "(the files it covered are re-read from their last good checkpoint)",
                  c->file, (unsigned long long)((uint64_t)st.st_size - good));
        if (ftruncate(c->fd, (off_t)good) != 0)
            return -errno;
    }
    c->journal_bytes = good;
    c->first_start = c->n == 0;
    return 0;
}

/* ---- write ---- */

#define REC_MAX (8 + 1 + sizeof(struct mars_ckpt_rec) + 2 + MAX_PATH_LEN)

/* Rewrites the journal with only the live entries. Called with the lock held. */
static int compact(struct mars_ckpt *c)
{
    char tmp[4300];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", c->file) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    unsigned char *buf = malloc(REC_MAX);
    uint64_t total = MAGIC_LEN;
    int rc = buf && write(fd, MAGIC, MAGIC_LEN) == MAGIC_LEN ? 0 : -EIO;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        size_t n = encode(buf, OP_PUT, &c->e[i].rec, c->e[i].path);
        if (write(fd, buf, n) != (ssize_t)n)
            rc = -errno;
        total += n;
        c->e[i].dirty = false;
    }
    free(buf);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, c->file) != 0)
        rc = -errno;
    if (rc) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    close(c->fd);
    c->fd = fd;
    c->journal_bytes = total;
    c->live_bytes = total;
    /* the rename itself must survive a crash */
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s", c->file);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

static int append_dirty(struct mars_ckpt *c)
{
    unsigned char *buf = malloc(REC_MAX);
    uint64_t live = MAGIC_LEN;
    int rc = buf ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        struct entry *e = &c->e[i];
        size_t n = encode(buf, OP_PUT, &e->rec, e->path);
        live += n;
        if (!e->dirty)
            continue;
        if (pwrite(c->fd, buf, n, (off_t)c->journal_bytes) != (ssize_t)n) {
            rc = -errno;
            break;
        }
        c->journal_bytes += n;
        e->dirty = false;
    }
    free(buf);
    c->live_bytes = live;
    return rc;
}

int mars_ckpt_flush(struct mars_ckpt *c)
{
    int rc = 0, fd = -1;
    pthread_mutex_lock(&c->flush_lock);
    pthread_mutex_lock(&c->lock);
    if (c->dirty) {
        c->dirty = false;
        if (c->journal_bytes > 4 * c->live_bytes + 65536)
            rc = compact(c); /* fsyncs the new file itself */
        else if ((rc = append_dirty(c)) == 0)
            fd = c->fd;
        if (rc)
            c->dirty = true; /* try again next time */
    }
    pthread_mutex_unlock(&c->lock);
    if (fd >= 0 && fdatasync(fd) != 0) /* fd stays valid: only a flush replaces it */
        rc = -errno;
    pthread_mutex_unlock(&c->flush_lock);
    if (rc) {
        atomic_fetch_add_explicit(&c->write_errors, 1, memory_order_relaxed);
        MARS_LOG_RL(MARS_LOG_ERROR, c->id, "cannot write checkpoints to %s: %s", c->file,
                    strerror(-rc));
    }
    return rc;
}

static void *writer_main(void *arg)
{
    struct mars_ckpt *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + c->interval_ns;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->lock);
        mars_ckpt_flush(c);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- registry and API ---- */

static int mkdir_p(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static void free_store(struct mars_ckpt *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].path);
    free(c->e);
    if (c->fd >= 0)
        close(c->fd);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->flush_lock);
    pthread_cond_destroy(&c->wake);
    free(c->id);
    free(c->file);
    free(c);
}

static struct mars_ckpt *open_store(const char *data_dir, const char *id, int *err)
{
    char dir[4096], file[4300];
    struct mars_ckpt *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    if (snprintf(dir, sizeof(dir), "%s/checkpoints", data_dir) >= (int)sizeof(dir) ||
        snprintf(file, sizeof(file), "%s/%s.journal", dir, id) >= (int)sizeof(file)) {
        *err = -ENAMETOOLONG;
        free(c);
        return NULL;
    }
    c->id = strdup(id);
    c->file = strdup(file);
    c->fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->flush_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!c->id || !c->file || (*err = mkdir_p(dir)) != 0) {
        if (!*err)
            *err = -ENOMEM;
        free_store(c);
        return NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool existed = true;
        c->fd = open(file, O_RDWR | O_CLOEXEC);
        if (c->fd < 0 && errno == ENOENT) {
            existed = false;
            c->fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        }
        if (c->fd < 0) {
            *err = -errno;
            break;
        }
        *err = load(c, existed);
        if (*err != -EBADMSG)
            break;
        close(c->fd);
        c->fd = -1;
        move_aside(file);
    }
    if (*err) {
        mars_error(id, "cannot use checkpoint journal %s: %s", file, strerror(-*err));
        free_store(c);
        return NULL;
    }
    c->live_bytes = c->journal_bytes;
    return c;
}

struct mars_ckpt *mars_ckpt_acquire(const char *data_dir, const char *id, int64_t interval_ns,
                                    int *err)
{
    struct mars_ckpt *c;
    *err = 0;
    pthread_mutex_lock(&registry_lock);
    for (c = registry; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            break;
    if (!c && (c = open_store(data_dir, id, err)) != NULL) {
        c->interval_ns = interval_ns;
        if (pthread_create(&c->writer, NULL, writer_main, c) == 0)
            c->has_writer = true;
        c->next = registry;
        registry = c;
    }
    if (c) {
        c->refs++;
        pthread_mutex_lock(&c->lock);
        if (interval_ns < c->interval_ns)
            c->interval_ns = interval_ns;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void mars_ckpt_release(struct mars_ckpt *c)
{
    pthread_mutex_lock(&registry_lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (struct mars_ckpt **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (c->has_writer) {
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->writer, NULL);
    }
    mars_ckpt_flush(c);
    free_store(c);
}

bool mars_ckpt_first_start(const struct mars_ckpt *c)
{
    return c->first_start;
}

bool mars_ckpt_get(struct mars_ckpt *c, const struct mars_ckpt_key *key, struct mars_ckpt_rec *out)
{
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, key);
    if (e)
        *out = e->rec;
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

void mars_ckpt_put(struct mars_ckpt *c, const struct mars_ckpt_rec *rec, const char *path)
{
    pthread_mutex_lock(&c->lock);
    struct entry *e = find_or_add(c, &rec->key);
    if (e) {
        e->rec = *rec;
        if (path)
            set_path(e, path, strnlen(path, MAX_PATH_LEN));
        e->dirty = true;
        c->dirty = true;
    }
    pthread_mutex_unlock(&c->lock);
}

void mars_ckpt_remove(struct mars_ckpt *c, const struct mars_ckpt_key *key)
{
    unsigned char buf[8 + 1 + sizeof(struct mars_ckpt_rec) + 2];
    struct mars_ckpt_rec r = {.key = *key};
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, key);
    if (e) {
        drop_entry(c, e);
        size_t n = encode(buf, OP_REMOVE, &r, NULL);
        if (pwrite(c->fd, buf, n, (off_t)c->journal_bytes) == (ssize_t)n)
            c->journal_bytes += n;
        c->dirty = true;
    }
    pthread_mutex_unlock(&c->lock);
}

size_t mars_ckpt_count(struct mars_ckpt *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void mars_ckpt_visit_errors(void (*fn)(void *arg, const char *id, uint64_t write_errors), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct mars_ckpt *c = registry; c; c = c->next)
        fn(arg, c->id, (uint64_t)atomic_load_explicit(&c->write_errors, memory_order_relaxed));
    pthread_mutex_unlock(&registry_lock);
}

int mars_data_dir_lock(const char *data_dir)
{
    char path[4300], pid[32];
    int rc = mkdir_p(data_dir);
    if (rc)
        return rc;
    if (snprintf(path, sizeof(path), "%s/mars.lock", data_dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        mars_error("-", "data_dir %s is in use by another mars (pid %s)", data_dir,
                   n > 0 ? pid : "unknown");
        close(fd);
        return rc;
    }
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        mars_warn("-", "cannot record the pid in %s", path);
    return fd;
}
