/*
 * config_watch.c - `--watch-config` (config_watch.h): inotify on the directories that hold
 * the configuration, a debounce, a content hash, and the engine's validated reload.
 *
 * How it works: one thread polls the inotify descriptor and an eventfd that asks it to
 * stop. The first event arms a deadline QUIET_MS later; every further event pushes it back,
 * up to MAX_WAIT_MS after the first, so a burst (a ConfigMap swap is five or six events, an
 * editor's save two or three) ends in one check. The check hashes the names and contents
 * of the files -c stands for (config/config_files.c); a hash equal to the last one seen
 * does nothing (an unrelated file in /etc changed). A new hash asks the engine to reload:
 * -EBUSY (a stop or reload under way, or no engine between two) retries every RETRY_MS.
 *
 * Thread: the watcher's own; `lock` guards `engine` and is held across the reload call, so
 * set_engine(NULL) before an engine is destroyed waits for a reload in progress.
 */
#include "control/config_watch.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/diag.h"
#include "core/hash.h"
#include "core/log.h"
#include "config/config.h"
#include "engine/engine.h"

#define QUIET_MS    300  /* no event for this long ends a burst */
#define MAX_WAIT_MS 3000 /* a burst that never ends is checked after this long */
#define RETRY_MS    1000 /* a reload refused as busy is asked again after this long */
#define LOG_NAME    "config"
#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct mars_config_watch {
    const char *const *paths;
    size_t n;
    int ifd, stop_fd;
    pthread_t thread;
    bool started; /* thread runs: destroy stops and joins it */
    pthread_mutex_t lock;
    struct mars_engine *engine;
    uint64_t hash; /* of the files last seen (loaded or refused) */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Mixes the file names and contents -c stands for into one hash; a file that cannot be
 * read mixes in its errno, so its return is a change too. */
static uint64_t files_hash(const struct mars_config_watch *w)
{
    struct mars_diag diag;
    char **files = NULL;
    size_t nfiles = 0;
    uint64_t h = 0x6d617273; /* "mars" */

    mars_diag_init(&diag);
    if (mars_config_files(w->paths, w->n, &files, &nfiles, &diag)) {
        mars_diag_fini(&diag);
        return h ^ mars_hash64("\0unlistable", 11);
    }
    mars_diag_fini(&diag);
    for (size_t i = 0; i < nfiles; i++) {
        FILE *f = fopen(files[i], "rb");
        char buf[16384];
        size_t got;
        h = h * 31 + mars_hash64(files[i], strlen(files[i]));
        if (!f) {
            h = h * 31 + (uint64_t)errno;
            continue;
        }
        while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
            h = h * 31 + mars_hash64(buf, got);
        fclose(f);
    }
    mars_config_files_free(files, nfiles);
    return h;
}

static void log_problems(char *problems)
{
    for (char *line = problems, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        if ((nl = strchr(line, '\n')))
            *nl = '\0';
        mars_error(LOG_NAME, "%s", line);
    }
}

/* Asks the engine to reload. Returns false when it should be asked again later. */
static bool reload(struct mars_config_watch *w)
{
    char *problems = NULL;
    pthread_mutex_lock(&w->lock);
    int rc = w->engine ? mars_engine_reload(w->engine, &problems) : -EBUSY;
    pthread_mutex_unlock(&w->lock);
    if (rc == -EBUSY)
        return false;
    if (rc == -EINVAL) {
        mars_error(LOG_NAME, "the configuration changed but has problems; keeping the running one");
        log_problems(problems);
    } else if (rc) {
        mars_error(LOG_NAME, "the configuration changed but cannot be reloaded: %s", strerror(-rc));
    } else {
        mars_info(LOG_NAME, "the configuration changed: reloading");
    }
    free(problems);
    return true;
}

/* Reads what inotify has; true when anything arrived. */
static bool drain_events(struct mars_config_watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    ssize_t got;
    while ((got = read(w->ifd, buf, sizeof(buf))) > 0)
        any = true;
    return any;
}

static void *watch_main(void *arg)
{
    struct mars_config_watch *w = arg;
    int64_t first = 0, due = 0; /* 0: nothing pending */
    bool retry = false;

    for (;;) {
        struct pollfd p[2] = {{.fd = w->ifd, .events = POLLIN},
                              {.fd = w->stop_fd, .events = POLLIN}};
        int64_t now = now_ms();
        int timeout = due ? (int)(due > now ? due - now : 0) : -1;
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        now = now_ms();
        if (p[0].revents && drain_events(w)) {
            first = first ? first : now;
            due = now + QUIET_MS < first + MAX_WAIT_MS ? now + QUIET_MS : first + MAX_WAIT_MS;
            retry = false;
        }
        if (!due || now < due)
            continue;
        if (!retry) {
            uint64_t h = files_hash(w);
            if (h == w->hash) {
                first = due = 0;
                continue;
            }
            w->hash = h;
        }
        retry = !reload(w);
        first = 0;
        due = retry ? now + RETRY_MS : 0;
    }
    return NULL;
}

/* The directory part of path into dir ("." when it has none). */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* Watches the directory that holds path (or path itself when it is a directory). A file
 * that is a symlink (/etc/mars/mars.yaml -> /config/mars.yaml) also gets the directory of
 * its target watched, best effort, so a ConfigMap mounted elsewhere is seen too. */
static int add_watch(struct mars_config_watch *w, const char *path, char *why, size_t len)
{
    char dir[PATH_MAX], target[PATH_MAX], joined[PATH_MAX * 2];
    struct stat st;
    bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (is_dir)
        snprintf(dir, sizeof(dir), "%s", path);
    else
        dir_of(path, dir, sizeof(dir));
    if (inotify_add_watch(w->ifd, dir, WATCH_MASK) < 0) {
        int err = errno;
        snprintf(why, len, "cannot watch %s: %s", dir, strerror(err));
        return -err;
    }
    ssize_t n = is_dir ? -1 : readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    if (target[0] == '/')
        snprintf(joined, sizeof(joined), "%s", target);
    else
        snprintf(joined, sizeof(joined), "%s/%s", dir, target);
    dir_of(joined, dir, sizeof(dir));
    (void)inotify_add_watch(w->ifd, dir, WATCH_MASK); /* may be gone later: best effort */
    return 0;
}

struct mars_config_watch *mars_config_watch_start(const char *const *paths, size_t n, char *why,
                                                  size_t len)
{
    struct mars_config_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    w->paths = paths;
    w->n = n;
    w->stop_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0 || (w->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        snprintf(why, len, "%s: %s", w->ifd < 0 ? "inotify" : "eventfd", strerror(errno));
        mars_config_watch_destroy(w);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (add_watch(w, paths[i], why, len)) {
            mars_config_watch_destroy(w);
            return NULL;
        }
    w->hash = files_hash(w);
    /* the thread takes no signals: the engine's signalfd must get SIGTERM and SIGHUP */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(why, len, "cannot start its thread: %s", strerror(rc));
        mars_config_watch_destroy(w);
        return NULL;
    }
    w->started = true;
    return w;
}

void mars_config_watch_set_engine(struct mars_config_watch *w, struct mars_engine *e)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->engine = e;
    pthread_mutex_unlock(&w->lock);
}

void mars_config_watch_destroy(struct mars_config_watch *w)
{
    if (!w)
        return;
    if (w->started) {
        uint64_t one = 1;
        if (write(w->stop_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
            pthread_join(w->thread, NULL);
    }
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->ifd >= 0)
        close(w->ifd);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
