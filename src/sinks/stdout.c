/*
 * stdout.c - the `stdout` sink: writes events to standard output as text lines or JSON
 * lines. Meant for trying pipelines out and for piping mars into other tools.
 *
 * Writes are synchronous writev calls under a process-wide lock: several workers may feed
 * it, and a pipe only keeps writes of up to PIPE_BUF bytes whole, so the lock is what keeps
 * lines from interleaving. A full terminal or pipe therefore blocks the worker; that is the
 * backpressure a shell user expects. EPIPE (the reader went away, as in `mars | head`)
 * stops mars gracefully instead of generating into the void.
 *
 * Thread: the sink's worker (all workers share the lock).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "component.h"

struct stdout_conf {
    int encoding;
    struct mars_strlist fields, except_fields;
};

static const struct mars_opt stdout_options[] = {
    {.name = "encoding",
     .type = MARS_OPT_ENUM,
     .offset = offsetof(struct stdout_conf, encoding),
     .def = "text",
     .choices = mars_encoding_names,
     .desc = "text writes each message as a line; json and ndjson write one JSON object per "
             "line with timestamp and message."},
    MARS_ENCODE_FIELDS_OPTIONS(struct stdout_conf, fields, except_fields),
    {.name = NULL},
};

static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

struct stdout_sink {
    const struct stdout_conf *conf;
    struct mars_encoder enc;
    struct mars_field_select sel;
    int fd;
    bool broken; /* EPIPE seen */
};

/* Writes the whole array; returns 0 or a negative errno. */
static int write_all(int fd, struct iovec *iov, int n)
{
    int pos = 0;
    while (pos < n) {
        int cnt = n - pos > IOV_MAX ? IOV_MAX : n - pos;
        ssize_t w = writev(fd, iov + pos, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (w > 0 && pos < n) {
            if ((size_t)w >= iov[pos].iov_len) {
                w -= (ssize_t)iov[pos].iov_len;
                pos++;
            } else {
                iov[pos].iov_base = (char *)iov[pos].iov_base + w;
                iov[pos].iov_len -= (size_t)w;
                w = 0;
            }
        }
    }
    return 0;
}

static void stdout_write(struct mars_sink *s, struct mars_sink_req *r)
{
    struct stdout_sink *st = mars_sink_state(s);
    uint64_t bad = st->enc.invalid_utf8;
    int64_t bytes = mars_encode_batches(&st->enc, st->conf->encoding, r->batches, r->n);
    if (bytes < 0) {
        mars_sink_done(s, r, MARS_SINK_RETRY, 0);
        return;
    }
    if (st->enc.invalid_utf8 > bad)
        mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_INVALID_UTF8],
                      st->enc.invalid_utf8 - bad);
    pthread_mutex_lock(&stdout_lock);
    int rc = write_all(st->fd, st->enc.iov, st->enc.niov);
    pthread_mutex_unlock(&stdout_lock);
    if (rc == 0) {
        mars_sink_done(s, r, MARS_SINK_OK, (uint64_t)bytes);
        return;
    }
    mars_stat_add(&mars_sink_stats(s)->errors[MARS_ERR_WRITE], 1);
    if (rc == -EPIPE) {
        /* the reader is gone for good (mars | head): stop like SIGTERM would; what is
         * still queued cannot be written and is abandoned at the shutdown timeout */
        if (!st->broken)
            mars_sink_request_shutdown(s, "standard output was closed by its reader");
        st->broken = true;
        mars_sink_done(s, r, MARS_SINK_ABORTED, 0);
        return;
    }
    MARS_LOG_RL(MARS_LOG_ERROR, mars_sink_id(s), "write to standard output failed: %s",
                strerror(-rc));
    mars_sink_done(s, r, MARS_SINK_RETRY, 0);
}

static int stdout_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct stdout_conf *c = conf;
    return mars_check_field_select(&c->fields, &c->except_fields, node, diag);
}

static int stdout_init(struct mars_sink *s)
{
    struct stdout_sink *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->conf = mars_sink_conf(s);
    st->fd = STDOUT_FILENO;
    mars_field_select_init(&st->sel, &st->conf->fields, &st->conf->except_fields);
    st->enc.select = &st->sel;
    mars_sink_set_state(s, st);
    return 0;
}

static void stdout_destroy(struct mars_sink *s)
{
    struct stdout_sink *st = mars_sink_state(s);
    mars_encoder_fini(&st->enc);
    free(st);
}

const struct mars_component_desc mars_sink_stdout = {
    .name = "stdout",
    .description = "Writes events to standard output as text or JSON lines.",
    .kind = MARS_KIND_SINK,
    .accepts = MARS_DATA_ANY,
    .options = stdout_options,
    .check = stdout_check,
    .conf_size = sizeof(struct stdout_conf),
    .sink = {.init = stdout_init, .write = stdout_write, .destroy = stdout_destroy},
};
