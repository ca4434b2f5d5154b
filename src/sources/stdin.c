/*
 * stdin.c - the `stdin` source: one event per line read from standard input, until end of
 * input (then the source finishes, and mars drains and exits when nothing else runs).
 *
 * Reads go through the ev loop into chunks (lines.c slices them without copying): a regular
 * file (`mars < file`) is read at its position; a pipe, terminal or socket is polled and
 * then read, so the fd's blocking mode (shared with the shell) is left alone. One read
 * is in flight at a time; the next is submitted from the completion unless backpressure
 * paused the source or chunk memory is exhausted, in which case resume() submits it.
 * Any bytes are accepted: binary data and invalid UTF-8 pass through as they are (encoders
 * deal with them); an unterminated last line is emitted at end of input.
 *
 * Thread: the source's worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/log.h"
#include "component.h"

struct stdin_conf {
    uint64_t max_line_bytes;
    int oversize;
    int64_t batch_events;
};

#define OFF(f) offsetof(struct stdin_conf, f)
static const struct mars_opt stdin_options[] = {
    {.name = "max_line_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_line_bytes),
     .def = "1MiB",
     .min = 16,
     .max = (int64_t)1 << 30,
     .desc = "Longest line kept whole; longer lines are cut as `oversize` says and counted."},
    {.name = "oversize",
     .type = MARS_OPT_ENUM,
     .offset = OFF(oversize),
     .def = "split",
     .choices = mars_oversize_names,
     .desc = "What happens to a line longer than max_line_bytes: split into pieces, or "
             "truncate (the rest is skipped)."},
    {.name = "batch_events",
     .type = MARS_OPT_INT,
     .offset = OFF(batch_events),
     .def = "1024",
     .min = 1,
     .max = 65536,
     .desc = "Initial event capacity of the batches this source makes."},
    {.name = NULL},
};

struct stdin_source {
    struct mars_source *src;
    const struct stdin_conf *conf;
    struct mars_lines lines;
    struct mars_ev_op op;
    bool reading, eof, stopping;
    bool regular; /* a regular file: read at the position; otherwise poll, then read */
    int fd;
    char *buf; /* where the pending read lands (poll mode) */
    size_t len;
};

static void stdin_acked(struct mars_batch *b, bool delivered)
{
    struct stdin_source *st = b->ack.ctx;
    if (delivered)
        mars_stat_add(&mars_source_stats(st->src)->acked_events, b->ack.a);
}

static void emit(struct stdin_source *st, struct mars_batch *b)
{
    if (!b)
        return;
    b->ack = (struct mars_batch_ack){.fn = stdin_acked, .ctx = st, .a = b->n};
    mars_source_emit(st->src, b);
}

static void read_next(struct stdin_source *st);

static void finish(struct stdin_source *st)
{
    struct mars_batch *b = NULL;
    /* an unterminated last line is still a line: stdin cannot replay it later */
    if (mars_lines_eof(&st->lines, &b, 1))
        mars_stat_add(&mars_source_stats(st->src)->errors[MARS_ERR_MEMORY], 1);
    emit(st, b);
    st->eof = true;
    mars_source_finished(st->src);
}

static void on_read(struct mars_ev_op *op, int res);

/* Poll mode: the fd is readable (or hung up); read what is there without blocking. */
static void on_ready(struct mars_ev_op *op, int res)
{
    struct stdin_source *st = op->data;
    if (res >= 0) {
        ssize_t n = read(st->fd, st->buf, st->len);
        res = n < 0 ? -errno : (int)n;
    }
    on_read(op, res);
}

static void on_read(struct mars_ev_op *op, int res)
{
    struct stdin_source *st = op->data;
    struct mars_batch *b = NULL;

    st->reading = false;
    if (res == -EINTR || res == -EAGAIN) {
        read_next(st);
        return;
    }
    if (res < 0 && res != -ECANCELED) {
        mars_stat_add(&mars_source_stats(st->src)->errors[MARS_ERR_READ], 1);
        mars_error(mars_source_id(st->src), "read from standard input failed: %s", strerror(-res));
    }
    if (res <= 0) {
        finish(st);
        return;
    }
    if (mars_lines_commit(&st->lines, (size_t)res, &b, (uint32_t)st->conf->batch_events)) {
        mars_stat_add(&mars_source_stats(st->src)->errors[MARS_ERR_MEMORY], 1);
        MARS_LOG_RL(MARS_LOG_ERROR, mars_source_id(st->src), "out of memory slicing lines");
    }
    emit(st, b);
    read_next(st);
}

static void read_next(struct stdin_source *st)
{
    char *buf;
    size_t len;

    if (st->reading || st->eof)
        return;
    if (st->stopping) {
        finish(st);
        return;
    }
    if (mars_source_paused(st->src) || mars_lines_space(&st->lines, &buf, &len))
        return; /* resume() continues */
    if (st->regular) {
        mars_ev_prep_read(&st->op, st->fd, buf, len, MARS_EV_CUR, on_read, st);
    } else {
        st->buf = buf;
        st->len = len;
        mars_ev_prep_poll(&st->op, st->fd, POLLIN, on_ready, st);
    }
    int rc = mars_ev_submit(mars_source_loop(st->src), &st->op);
    if (rc) {
        mars_error(mars_source_id(st->src), "cannot read standard input: %s", strerror(-rc));
        finish(st);
        return;
    }
    st->reading = true;
}

static int stdin_init(struct mars_source *s)
{
    struct stdin_source *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->src = s;
    st->conf = mars_source_conf(s);
    st->fd = STDIN_FILENO;
    struct stat sb;
    st->regular = fstat(st->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    mars_lines_init(&st->lines, s, st->conf->max_line_bytes, st->conf->oversize, '\n');
    mars_source_set_state(s, st);
    return 0;
}

static int stdin_start(struct mars_source *s)
{
    read_next(mars_source_state(s));
    return 0;
}

static void stdin_resume(struct mars_source *s)
{
    read_next(mars_source_state(s));
}

static void stdin_stop(struct mars_source *s)
{
    struct stdin_source *st = mars_source_state(s);
    st->stopping = true;
    if (st->reading)
        mars_ev_cancel(mars_source_loop(s), &st->op);
    else if (!st->eof)
        finish(st);
}

static void stdin_destroy(struct mars_source *s)
{
    struct stdin_source *st = mars_source_state(s);
    mars_lines_fini(&st->lines);
    free(st);
}

const struct mars_component_desc mars_source_stdin = {
    .name = "stdin",
    .description = "Reads lines from standard input until it ends.",
    .kind = MARS_KIND_SOURCE,
    .produces = MARS_DATA_LOG,
    .flags = MARS_DESC_LOCAL_LOGS,
    .options = stdin_options,
    .conf_size = sizeof(struct stdin_conf),
    .source = {.init = stdin_init,
               .start = stdin_start,
               .resume = stdin_resume,
               .stop = stdin_stop,
               .destroy = stdin_destroy},
};
