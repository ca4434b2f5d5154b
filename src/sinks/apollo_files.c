/*
 * apollo_files.c - the `apollo_files` sink: writes the namespaces the `apollo` source
 * emits as files that applications read, and tells them when one changed.
 *
 * Each event with app_id, cluster, namespace and format (and `configurations` for a
 * properties namespace, `content` for the others) becomes one file:
 *   layout files       {dir}/{app_id}/{cluster}/{namespace}.properties|.json for properties
 *                      namespaces (`format`), {dir}/{app_id}/{cluster}/{namespace} with the
 *                      raw content for the others (their name has the suffix: db.json)
 *   layout java_cache  {dir}/{app_id}/config-cache/{app_id}+{cluster}+{namespace}.properties,
 *                      the Java client's cache, so Apollo clients fall back to what mars
 *                      fetched (non-properties namespaces as their one key `content`)
 * A file is replaced atomically (core/atomic_file.h: temp file, fsync, rename) with `mode`
 * and `owner`, and only when its content differs from what is on disk (a missing file is
 * written). When a request changed at least one file, `on_change` runs (argv, no shell,
 * bounded by command_timeout and 4 KiB of kept output; a run asked for while one is going
 * runs once after it) or `signal` is sent to the process in `pid_file`; each outcome is
 * counted in mars_apollo_files_notify_total{result}.
 *
 * Synchronous writes: the files are a few KiB on a local disk and change only when someone
 * publishes a release, so they are written on the worker inside write() (open, write,
 * fsync, rename, about 1-5 ms with the fsyncs here), the same trade as the measured
 * exception in config/desc.h. A request that fails to write is retried by the engine.
 * The command's exit is watched with a 50 ms timer on the loop, never waited for.
 *
 * Thread: the sink's worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "core/admin.h"
#include "core/atomic_file.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/spawn.h"
#include "component.h"

#define REAP_POLL_NS (50 * 1000000LL)
#define OUTPUT_KEEP  4096

enum af_layout { LAYOUT_FILES, LAYOUT_JAVA_CACHE };
static const char *const layout_names[] = {"files", "java_cache", NULL};
enum af_format { FMT_PROPERTIES, FMT_JSON };
static const char *const format_names[] = {"properties", "json", NULL};

struct af_conf {
    char *dir;
    int layout;
    int format;
    char *mode;
    char *owner;
    struct mars_strlist on_change;
    char *signal;
    char *pid_file;
    int64_t command_timeout;
};

#define OFF(f) offsetof(struct af_conf, f)
static const struct mars_opt apollo_files_options[] = {
    {.name = "dir",
     .type = MARS_OPT_STRING,
     .offset = OFF(dir),
     .flags = MARS_OPT_REQUIRED,
     .desc = "Directory the files are written under (created when missing)."},
    {.name = "layout",
     .type = MARS_OPT_ENUM,
     .offset = OFF(layout),
     .def = "files",
     .choices = layout_names,
     .desc = "files: {dir}/{app_id}/{cluster}/{namespace}.{format}; java_cache: the Java "
             "client's cache, {dir}/{app_id}/config-cache/{app_id}+{cluster}+{namespace}"
             ".properties."},
    {.name = "format",
     .type = MARS_OPT_ENUM,
     .offset = OFF(format),
     .def = "properties",
     .choices = format_names,
     .desc = "layout files: how properties namespaces are written, as a .properties file or "
             "a flat JSON object; other namespaces keep their own format."},
    {.name = "mode",
     .type = MARS_OPT_STRING,
     .offset = OFF(mode),
     .def = "0600",
     .desc = "Permissions of the files, in octal (configurations often hold secrets)."},
    {.name = "owner",
     .type = MARS_OPT_STRING,
     .offset = OFF(owner),
     .desc = "Owner of the files, user or user:group (names or numbers); default: mars's."},
    {.name = "on_change",
     .type = MARS_OPT_LIST,
     .offset = OFF(on_change),
     .desc = "Command run (program and arguments, no shell) after a request changed files."},
    {.name = "signal",
     .type = MARS_OPT_STRING,
     .offset = OFF(signal),
     .desc = "Signal (HUP, USR1, USR2, TERM, ...) sent after a change to the process whose id "
             "is in pid_file."},
    {.name = "pid_file",
     .type = MARS_OPT_STRING,
     .offset = OFF(pid_file),
     .desc = "With signal: the file holding the process id to signal."},
    {.name = "command_timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(command_timeout),
     .def = "30s",
     .min = 10000000,
     .max = 3600LL * 1000000000,
     .desc = "An on_change command still running after this long is killed (counted as "
             "timeout)."},
    {.name = NULL},
};

enum af_result { RES_OK, RES_FAILED, RES_TIMEOUT, RES__COUNT };
static const char *const result_names[] = {"ok", "failed", "timeout"};

struct af {
    struct mars_sink *sink;
    const struct af_conf *conf;
    unsigned mode;
    uid_t uid;
    gid_t gid;
    int signo;
    struct mars_path *p_app, *p_cluster, *p_ns, *p_format, *p_conf, *p_content;
    struct evbuffer *buf;
    /* on_change command */
    pid_t pid;
    int out_fd;
    char out[OUTPUT_KEEP];
    size_t out_len;
    int64_t started_ns;
    bool killed, pending, timer_armed;
    struct mars_ev_op timer;
    struct mars_mseries *notify[RES__COUNT];
    struct mars_mseries *files_written;
    char **argv; /* on_change, NULL-terminated (borrowed strings) */
};

/* ---- config ---- */

static const struct {
    const char *name;
    int signo;
} signals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
               {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH}, {"CONT", SIGCONT}};

static int signal_of(const char *s)
{
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        if (strcmp(s, signals[i].name) == 0)
            return signals[i].signo;
    return -1;
}

static int parse_mode(const char *s, unsigned *out)
{
    char *end;
    unsigned long m = strtoul(s, &end, 8);
    if (!*s || *end || m > 07777)
        return -EINVAL;
    *out = (unsigned)m;
    return 0;
}

static int parse_owner(const char *s, uid_t *uid, gid_t *gid, char *why, size_t wlen)
{
    char user[256], *colon;
    snprintf(user, sizeof(user), "%s", s);
    colon = strchr(user, ':');
    if (colon)
        *colon++ = '\0';
    char *end;
    unsigned long n = strtoul(user, &end, 10);
    struct passwd *pw = (*user && !*end) ? NULL : getpwnam(user);
    if (*user && !*end) {
        *uid = (uid_t)n;
        *gid = (gid_t)-1;
    } else if (pw) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    } else {
        snprintf(why, wlen, "owner: no user '%s'", user);
        return -EINVAL;
    }
    if (colon && *colon) {
        n = strtoul(colon, &end, 10);
        struct group *gr = !*end ? NULL : getgrnam(colon);
        if (!*end)
            *gid = (gid_t)n;
        else if (gr)
            *gid = gr->gr_gid;
        else {
            snprintf(why, wlen, "owner: no group '%s'", colon);
            return -EINVAL;
        }
    }
    return 0;
}

static int apollo_files_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct af_conf *c = conf;
    unsigned mode;
    uid_t uid;
    gid_t gid;
    char why[300];
    int rc = 0;
#define BAD(...)                                                                                   \
    do {                                                                                           \
        mars_diag_add(diag, node->file, node->line, node->col, __VA_ARGS__);                       \
        rc = -EINVAL;                                                                              \
    } while (0)
    if (parse_mode(c->mode, &mode))
        BAD("mode '%s' is not an octal permission such as 0600 or 0644", c->mode);
    if (c->owner && parse_owner(c->owner, &uid, &gid, why, sizeof(why)))
        BAD("%s", why);
    if (c->signal && signal_of(c->signal) < 0)
        BAD("signal '%s' is not one of HUP, INT, QUIT, USR1, USR2, TERM, WINCH, CONT", c->signal);
    if ((c->signal != NULL) != (c->pid_file != NULL))
        BAD("signal and pid_file go together");
    if (c->signal && c->on_change.n)
        BAD("give on_change or signal, not both");
#undef BAD
    return rc;
}

/* ---- rendering ---- */

/* Appends s as java.util.Properties text: \, =, :, #, ! and leading blanks escaped (all
 * blanks in keys), controls as \t \n \r \f, non-ASCII as \uXXXX (what Properties.store
 * writes, so Java reads it back as it was). */
static void prop_escape(struct evbuffer *b, const char *s, size_t n, bool key)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        switch (c) {
        case '\\':
            e = "\\\\";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\f':
            e = "\\f";
            break;
        case '=':
            e = "\\=";
            break;
        case ':':
            e = "\\:";
            break;
        case '#':
            e = "\\#";
            break;
        case '!':
            e = "\\!";
            break;
        case ' ':
            e = (key || i == 0) ? "\\ " : " ";
            break;
        default:
            break;
        }
        if (e) {
            evbuffer_add(b, e, strlen(e));
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            evbuffer_add(b, &s[i], 1);
            continue;
        }
        /* decode one UTF-8 sequence (a bad byte stands for itself, as Latin-1) */
        uint32_t cp = c;
        size_t len = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (len > 1 && i + len <= n) {
            cp = c & (0x3f >> (len - 1));
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
            i += len - 1;
        }
        uint32_t units[2] = {cp, 0};
        int nu = 1;
        if (cp > 0xffff) {
            cp -= 0x10000;
            units[0] = 0xd800 + (cp >> 10);
            units[1] = 0xdc00 + (cp & 0x3ff);
            nu = 2;
        }
        for (int u = 0; u < nu; u++) {
            char x[6] = {'\\',
                         'u',
                         hex[(units[u] >> 12) & 15],
                         hex[(units[u] >> 8) & 15],
                         hex[(units[u] >> 4) & 15],
                         hex[units[u] & 15]};
            evbuffer_add(b, x, 6);
        }
    }
}

/* One member of the event's `configurations` object (or the content) as decoded text. */
struct af_kv {
    const char *k, *v;
    uint32_t kl, vl;
};

static const char *text_of(const struct mars_field *f, struct mars_arena *a, uint32_t *len)
{
    struct mars_value v = {
        .kind = f->kind, .flags = f->flags, .ptr = f->value, .len = f->value_len};
    return mars_value_text_arena(&v, a, len);
}

static void render_props(struct evbuffer *b, const struct af_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        prop_escape(b, kv[i].k, kv[i].kl, true);
        evbuffer_add(b, "=", 1);
        prop_escape(b, kv[i].v, kv[i].vl, false);
        evbuffer_add(b, "\n", 1);
    }
}

static void render_json(struct evbuffer *b, const struct af_kv *kv, size_t n)
{
    evbuffer_add(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        char *k = strndup(kv[i].k, kv[i].kl), *v = strndup(kv[i].v, kv[i].vl);
        if (i)
            evbuffer_add(b, ",", 1);
        mars_json_string(b, k ? k : "");
        evbuffer_add(b, ":", 1);
        mars_json_string(b, v ? v : "");
        free(k);
        free(v);
    }
    evbuffer_add(b, "}\n", 2);
}

static bool safe_name(const char *s, uint32_t n)
{
    return n > 0 && n < 200 && s[0] != '.' && !memchr(s, '/', n) && !memchr(s, '\0', n);
}

/* Text of a root field at p (decoded, in the batch arena), or NULL. */
static const char *field_text(struct mars_batch *b, const struct mars_event *ev,
                              const struct mars_path *p, uint32_t *len)
{
    struct mars_value v;
    if (!mars_fields_get(ev, p, &v) || v.kind == MARS_FIELD_OBJECT || v.kind == MARS_FIELD_ARRAY)
        return NULL;
    return mars_value_text_arena(&v, &b->arena, len);
}

/* Writes the file of one event. Returns 1 when it changed, 0 when it was the same, -EINVAL
 * for an event that is not a namespace, or -errno of the write. */
static int write_event(struct af *af, struct mars_batch *b, const struct mars_event *ev)
{
    const struct af_conf *c = af->conf;
    uint32_t al, cl, nl, fl;
    const char *app = field_text(b, ev, af->p_app, &al),
               *cl_ = field_text(b, ev, af->p_cluster, &cl), *ns = field_text(b, ev, af->p_ns, &nl),
               *fmt = field_text(b, ev, af->p_format, &fl);
    if (!app || !cl_ || !ns || !fmt || !safe_name(app, al) || !safe_name(cl_, cl) ||
        !safe_name(ns, nl))
        return -EINVAL;
    bool props = fl == 10 && memcmp(fmt, "properties", 10) == 0;
    struct af_kv *kv = NULL;
    size_t n = 0;
    struct mars_value v;
    if (props) {
        if (!mars_fields_get(ev, af->p_conf, &v) || v.kind != MARS_FIELD_OBJECT ||
            (v.flags & MARS_FF_RAW) || v.idx == MARS_FIELD_NIL)
            return -EINVAL;
        const struct mars_field *fv = ev->fields->v;
        for (uint32_t m = fv[v.idx].first; m != MARS_FIELD_NIL; m = fv[m].next)
            n++;
        kv = mars_arena_alloc(&b->arena, (n ? n : 1) * sizeof(*kv));
        if (!kv)
            return -ENOMEM;
        size_t i = 0;
        for (uint32_t m = fv[v.idx].first; m != MARS_FIELD_NIL; m = fv[m].next, i++) {
            kv[i].k = fv[m].key;
            kv[i].kl = fv[m].key_len;
            if (!(kv[i].v = text_of(&fv[m], &b->arena, &kv[i].vl)))
                return -ENOMEM;
        }
    } else {
        kv = mars_arena_alloc(&b->arena, sizeof(*kv));
        if (!kv || !(kv->v = field_text(b, ev, af->p_content, &kv->vl)))
            return kv ? -EINVAL : -ENOMEM;
        kv->k = "content";
        kv->kl = 7;
        n = 1;
    }
    char dir[PATH_MAX], path[PATH_MAX];
    int len;
    evbuffer_drain(af->buf, evbuffer_get_length(af->buf));
    if (c->layout == LAYOUT_JAVA_CACHE) {
        snprintf(dir, sizeof(dir), "%s/%.*s/config-cache", c->dir, (int)al, app);
        len = snprintf(path, sizeof(path), "%s/%.*s+%.*s+%.*s.properties", dir, (int)al, app,
                       (int)cl, cl_, (int)nl, ns);
        render_props(af->buf, kv, n);
    } else {
        snprintf(dir, sizeof(dir), "%s/%.*s/%.*s", c->dir, (int)al, app, (int)cl, cl_);
        if (props)
            len = snprintf(path, sizeof(path), "%s/%.*s.%s", dir, (int)nl, ns,
                           format_names[c->format]);
        else
            len = snprintf(path, sizeof(path), "%s/%.*s", dir, (int)nl, ns);
        if (!props)
            evbuffer_add(af->buf, kv->v, kv->vl);
        else if (c->format == FMT_JSON)
            render_json(af->buf, kv, n);
        else
            render_props(af->buf, kv, n);
    }
    if (len < 0 || (size_t)len >= sizeof(path))
        return -ENAMETOOLONG;
    size_t sz = evbuffer_get_length(af->buf);
    const char *data = sz ? (const char *)evbuffer_pullup(af->buf, -1) : "";
    if (mars_file_same(path, data, sz))
        return 0;
    int rc = mars_mkdir_p(dir, 0755);
    if (rc == 0)
        rc = mars_file_replace(path, data, sz, af->mode, af->uid, af->gid);
    if (rc) {
        mars_sink_last_error(af->sink, "cannot write %s: %s", path, strerror(-rc));
        return rc;
    }
    mars_info(mars_sink_id(af->sink), "wrote %s (%zu bytes)", path, sz);
    mars_mseries_add(af->files_written, mars_sink_shard(af->sink), 1);
    return 1;
}

/* ---- notify ---- */

static void count(struct af *af, enum af_result r)
{
    mars_mseries_add(af->notify[r], mars_sink_shard(af->sink), 1);
}

static void run_command(struct af *af);

static void drain_output(struct af *af)
{
    char tmp[4096];
    for (;;) {
        ssize_t r = read(af->out_fd, tmp, sizeof(tmp));
        if (r <= 0)
            return;
        size_t keep = sizeof(af->out) - 1 - af->out_len;
        if (keep > (size_t)r)
            keep = (size_t)r;
        memcpy(af->out + af->out_len, tmp, keep);
        af->out_len += keep;
    }
}

static void command_done(struct af *af, int status)
{
    const char *id = mars_sink_id(af->sink);
    af->out[af->out_len] = '\0';
    for (size_t i = 0; i < af->out_len; i++)
        if ((unsigned char)af->out[i] < 0x20)
            af->out[i] = ' ';
    if (af->killed) {
        count(af, RES_TIMEOUT);
        mars_error(id, "on_change %s was killed after %lld ms: %s", af->conf->on_change.v[0],
                   (long long)(af->conf->command_timeout / 1000000), af->out);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        count(af, RES_OK);
        mars_info(id, "on_change %s exited 0", af->conf->on_change.v[0]);
    } else {
        count(af, RES_FAILED);
        mars_error(id, "on_change %s failed (%s %d): %s", af->conf->on_change.v[0],
                   WIFEXITED(status) ? "exit status" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), af->out);
        mars_sink_last_error(af->sink, "on_change failed");
    }
    close(af->out_fd);
    af->out_fd = -1;
    af->pid = -1;
    if (af->pending) {
        af->pending = false;
        run_command(af);
    }
}

static void on_reap(struct mars_ev_op *op, int res)
{
    struct af *af = op->data;
    int status = 0;
    af->timer_armed = false;
    (void)res;
    drain_output(af);
    pid_t r = waitpid(af->pid, &status, WNOHANG);
    if (r == af->pid || r < 0) {
        drain_output(af);
        command_done(af, r < 0 ? 0x7f00 : status);
        return;
    }
    if (!af->killed && mars_ev_clock_ns() - af->started_ns > af->conf->command_timeout) {
        kill(-af->pid, SIGKILL);
        af->killed = true;
    }
    mars_ev_prep_timer(&af->timer, REAP_POLL_NS, on_reap, af);
    af->timer_armed = mars_ev_submit(mars_sink_loop(af->sink), &af->timer) == 0;
}

static void run_command(struct af *af)
{
    if (af->pid > 0) {
        af->pending = true; /* runs once more when this one ends */
        return;
    }
    int rc = mars_spawn_captured(af->argv, &af->pid, &af->out_fd);
    if (rc) {
        count(af, RES_FAILED);
        if (rc != -EMFILE && rc != -ENFILE)
            mars_error(mars_sink_id(af->sink), "cannot run on_change %s: %s",
                       af->conf->on_change.v[0], strerror(-rc));
        return;
    }
    af->out_len = 0;
    af->killed = false;
    af->started_ns = mars_ev_clock_ns();
    mars_ev_prep_timer(&af->timer, REAP_POLL_NS, on_reap, af);
    af->timer_armed = mars_ev_submit(mars_sink_loop(af->sink), &af->timer) == 0;
}

static void send_signal(struct af *af)
{
    char buf[32] = "";
    const char *id = mars_sink_id(af->sink);
    int fd = open(af->conf->pid_file, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid <= 1 || kill((pid_t)pid, af->signo) != 0) {
        count(af, RES_FAILED);
        mars_error(id, "cannot signal the process in %s (pid %ld): %s", af->conf->pid_file, pid,
                   pid <= 1 ? "no valid pid" : strerror(errno));
        mars_sink_last_error(af->sink, "cannot signal the process in %s", af->conf->pid_file);
        return;
    }
    count(af, RES_OK);
    mars_info(id, "sent SIG%s to %ld", af->conf->signal, pid);
}

/* ---- sink ---- */

static void apollo_files_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct af *af = mars_sink_state(s);
    bool changed = false;
    int err = 0;
    uint64_t bad = 0;
    for (uint32_t i = 0; i < r->n && !err; i++) {
        struct mars_batch *b = r->batches[i];
        for (uint32_t j = 0; j < b->n && !err; j++) {
            const struct mars_event *ev = &b->ev[j];
            int rc = ev->kind == MARS_EVENT_LOG && ev->fields ? write_event(af, b, ev) : -EINVAL;
            if (rc == 1)
                changed = true;
            else if (rc == -EINVAL)
                bad++;
            else if (rc < 0)
                err = rc;
        }
    }
    if (bad) {
        mars_sink_last_error(s,
                             "%llu event(s) were not Apollo namespaces (need app_id, "
                             "cluster, namespace, format and configurations or content)",
                             (unsigned long long)bad);
        r->rejected_events = bad;
    }
    if (changed && af->conf->on_change.n)
        run_command(af);
    else if (changed && af->conf->signal)
        send_signal(af);
    mars_sink_done(s, r, err ? MARS_SINK_RETRY : MARS_SINK_OK, 0);
}

static void apollo_files_free(struct af *af)
{
    mars_path_destroy(af->p_app);
    mars_path_destroy(af->p_cluster);
    mars_path_destroy(af->p_ns);
    mars_path_destroy(af->p_format);
    mars_path_destroy(af->p_conf);
    mars_path_destroy(af->p_content);
    if (af->buf)
        evbuffer_free(af->buf);
    free(af->argv);
    free(af);
}

static struct mars_path *path(const char *s)
{
    size_t at;
    const char *why;
    return mars_path_compile(s, strlen(s), &at, &why);
}

static int apollo_files_init(struct mars_sink *s)
{
    static const char *const nl[] = {"component_id", "result", NULL};
    static const char *const wl[] = {"component_id", NULL};
    struct af *af = calloc(1, sizeof(*af));
    char why[300];
    if (!af)
        return -ENOMEM;
    af->sink = s;
    af->conf = mars_sink_conf(s);
    af->pid = -1;
    af->out_fd = -1;
    af->uid = (uid_t)-1;
    af->gid = (gid_t)-1;
    af->buf = evbuffer_new();
    af->p_app = path("app_id");
    af->p_cluster = path("cluster");
    af->p_ns = path("namespace");
    af->p_format = path("format");
    af->p_conf = path("configurations");
    af->p_content = path("content");
    if (!af->buf || !af->p_app || !af->p_cluster || !af->p_ns || !af->p_format || !af->p_conf ||
        !af->p_content || parse_mode(af->conf->mode, &af->mode) ||
        (af->conf->owner && parse_owner(af->conf->owner, &af->uid, &af->gid, why, sizeof(why)))) {
        apollo_files_free(af);
        return -ENOMEM;
    }
    if (af->conf->on_change.n) {
        if (!(af->argv = calloc(af->conf->on_change.n + 1, sizeof(*af->argv)))) {
            apollo_files_free(af);
            return -ENOMEM;
        }
        memcpy(af->argv, af->conf->on_change.v, af->conf->on_change.n * sizeof(*af->argv));
    }
    af->signo = af->conf->signal ? signal_of(af->conf->signal) : 0;
    struct mars_obs *obs = mars_sink_obs(s);
    struct mars_metrics *m = obs ? mars_obs_metrics(obs) : NULL;
    struct mars_mfamily *f =
        m ? mars_metrics_family(
                m, &(struct mars_mfamily_desc){.name = "mars_apollo_files_notify_total",
                                               .help =
                                                   "on_change commands and signals after a change, "
                                                   "by result (ok, failed, timeout).",
                                               .type = MARS_MT_COUNTER,
                                               .labels = nl})
          : NULL;
    for (int i = 0; f && i < RES__COUNT; i++)
        af->notify[i] =
            mars_mfamily_series(f, (const char *const[]){mars_sink_id(s), result_names[i], NULL});
    f = m ? mars_metrics_family(
                m, &(struct mars_mfamily_desc){.name = "mars_apollo_files_written_total",
                                               .help = "Files apollo_files replaced because their "
                                                       "content changed.",
                                               .type = MARS_MT_COUNTER,
                                               .labels = wl})
          : NULL;
    af->files_written =
        f ? mars_mfamily_series(f, (const char *const[]){mars_sink_id(s), NULL}) : NULL;
    mars_sink_set_state(s, af);
    return 0;
}

static void apollo_files_destroy(struct mars_sink *s)
{
    struct af *af = mars_sink_state(s);
    if (!af)
        return;
    if (af->out_fd >= 0)
        close(af->out_fd);
    apollo_files_free(af);
}

const struct mars_component_desc mars_sink_apollo_files = {
    .name = "apollo_files",
    .description = "Writes Apollo namespaces (from the apollo source) as files apps read, "
                   "atomically, and runs a command or sends a signal after a change.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_LOG,
    .options = apollo_files_options,
    .conf_size = sizeof(struct af_conf),
    .check = apollo_files_check,
    .sink = {.init = apollo_files_init,
             .write = apollo_files_write,
             .destroy = apollo_files_destroy},
};
