/*
 * multiline.c - the `multiline` transform: joins the lines of one logical event (a stack
 * trace, a wrapped message) into one event, per source and per `group_by` fields (by
 * default file and stream, so interleaved files and stdout/stderr never mix).
 *
 * Rules: a line matching `continuation_pattern` joins the event being built; with only a
 * `start_pattern`, a line that does not match it joins; with both, a line joins when it
 * matches the continuation or does not match the start. Everything else begins a new
 * event. Presets bundle patterns for Java, Python and Go stack traces.
 *
 * Since a line may be continued by the next one, each line waits in its group until the
 * next line of the group decides, or until the group has been quiet for `timeout` (a timer
 * on the worker's loop), or max_lines/max_bytes would be exceeded (counted as limit
 * errors). A group keeps a reference to every batch its lines came from, and hands them to
 * the batch its joined event goes out in (mars_batch_hold), so no source acknowledges a
 * line before the event that holds it is delivered.
 *
 * Joined text: lines that lie back to back in one chunk (the usual case: a trace read in
 * one go) are joined by widening the slice, with no copy; otherwise the lines are copied
 * once, with '\n' between them, into the arena of the outgoing batch. The joined event
 * keeps the first line's time and fields.
 *
 * flush (at drain) emits every group and cancels the timer, so no op is pending when the
 * worker destroys the instance; batches arriving after it pass straight through.
 *
 * Thread: each worker has its own instance; groups never span workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "core/log.h"
#include "multiline_internal.h"
#include "component.h"
#include "transforms_internal.h"

enum preset { PRESET_NONE, PRESET_JAVA, PRESET_PYTHON, PRESET_GO };
static const char *const preset_names[] = {"none", "java", "python", "go", NULL};

/* Continuation patterns of the presets. */
static const char *const preset_patterns[] = {
    NULL,
    "^(\\s+at\\s|\\s+\\.\\.\\.\\s+\\d+\\s+(more|common frames omitted)|\\s*Caused by:|"
    "\\s+Suppressed:|[a-zA-Z_$][\\w$.]*(Exception|Error|Throwable)(:|$))",
    "^(\\s|$|Traceback \\(most recent call last\\):|During handling of the above exception|"
    "The above exception was the direct cause|[A-Za-z_][\\w.]*(Error|Exception|Warning|Exit|"
    "Interrupt|Iteration)(:|$))",
    "^(\\s|$|goroutine \\d+ \\[|[^\\s(]+\\(.*\\)$|created by |\\[signal |exit status )",
};

struct multiline_conf {
    char *start_pattern;
    char *continuation_pattern;
    int preset;
    struct mars_strlist group_by;
    int64_t timeout;
    int64_t max_lines;
    uint64_t max_bytes;
    int64_t max_groups;
};

#define OFF(f) offsetof(struct multiline_conf, f)
static const struct mars_opt multiline_options[] = {
    {.name = "start_pattern",
     .type = MARS_OPT_STRING,
     .offset = OFF(start_pattern),
     .desc = "Regex of lines that begin an event (others join the event before them)."},
    {.name = "continuation_pattern",
     .type = MARS_OPT_STRING,
     .offset = OFF(continuation_pattern),
     .desc = "Regex of lines that continue the event before them (others begin one)."},
    {.name = "preset",
     .type = MARS_OPT_ENUM,
     .offset = OFF(preset),
     .def = "none",
     .choices = preset_names,
     .desc = "Ready patterns for stack traces: java, python or go (instead of patterns)."},
    {.name = "group_by",
     .type = MARS_OPT_LIST,
     .offset = OFF(group_by),
     .def = "[file, stream]",
     .desc = "Fields that keep lines apart besides the source: lines join only lines with "
             "the same values."},
    {.name = "timeout",
     .type = MARS_OPT_DURATION,
     .offset = OFF(timeout),
     .def = "1s",
     .min = 1000000,
     .max = (int64_t)3600 * 1000000000,
     .desc = "An event is complete when its group has had no new line for this long."},
    {.name = "max_lines",
     .type = MARS_OPT_INT,
     .offset = OFF(max_lines),
     .def = "500",
     .min = 1,
     .max = 1000000,
     .desc = "Most lines joined into one event."},
    {.name = "max_bytes",
     .type = MARS_OPT_SIZE,
     .offset = OFF(max_bytes),
     .def = "1MiB",
     .min = 1,
     .max = (int64_t)1 << 30,
     .desc = "Longest joined event."},
    {.name = "max_groups",
     .type = MARS_OPT_INT,
     .offset = OFF(max_groups),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .desc = "Groups (sources, files, streams) tracked per worker; when one more is needed, "
             "every pending event is completed and tracking starts over (a limit error)."},
    {.name = NULL},
};

static int multiline_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag)
{
    const struct multiline_conf *c = conf;
    bool patterns = c->start_pattern || c->continuation_pattern;
    int rc = 0;
    if (patterns == (c->preset != PRESET_NONE)) {
        mars_diag_add(diag, node->file, node->line, node->col,
                      "multiline needs either a preset or start_pattern/continuation_pattern");
        rc = -EINVAL;
    }
    if (c->start_pattern &&
        mars_check_regex(c->start_pattern, mars_cfg_at(node, "start_pattern", NULL),
                         "start_pattern", diag))
        rc = -EINVAL;
    if (c->continuation_pattern &&
        mars_check_regex(c->continuation_pattern, mars_cfg_at(node, "continuation_pattern", NULL),
                         "continuation_pattern", diag))
        rc = -EINVAL;
    for (size_t i = 0; i < c->group_by.n; i++)
        if (mars_check_path(c->group_by.v[i], mars_cfg_at(node, "group_by", NULL), "group_by",
                            false, diag))
            rc = -EINVAL;
    return rc;
}

static struct mars_regex *regex_of(const char *text)
{
    char why[160];
    size_t at;
    return text ? mars_regex_compile(text, strlen(text), &at, why, sizeof(why)) : NULL;
}

static void multiline_destroy(struct mars_transform *t)
{
    struct mars_multiline *m = mars_transform_state(t);
    if (!m)
        return;
    mars_multiline_groups_fini(m);
    mars_regex_destroy(m->start);
    mars_regex_destroy(m->cont);
    for (size_t i = 0; i < m->ngroup_by; i++)
        mars_path_destroy(m->group_by[i]);
    free(m->group_by);
    free(m);
}

static int multiline_init(struct mars_transform *t)
{
    const struct multiline_conf *c = mars_transform_conf(t);
    struct mars_multiline *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    mars_transform_set_state(t, m);
    m->t = t;
    m->timeout = c->timeout;
    m->max_lines = (uint32_t)c->max_lines;
    m->max_bytes = c->max_bytes;
    m->max_groups = (uint32_t)c->max_groups;
    m->start = regex_of(c->start_pattern);
    m->cont = regex_of(c->preset ? preset_patterns[c->preset] : c->continuation_pattern);
    m->group_by = calloc(c->group_by.n + 1, sizeof(*m->group_by));
    int rc = (!m->start && c->start_pattern) || !m->group_by ||
                     (!m->cont && (c->preset || c->continuation_pattern))
                 ? -ENOMEM
                 : mars_multiline_groups_init(m);
    for (; rc == 0 && m->ngroup_by < c->group_by.n; m->ngroup_by++) {
        const char *g = c->group_by.v[m->ngroup_by];
        if (!(m->group_by[m->ngroup_by] = mars_transform_path(g)))
            rc = -ENOMEM;
    }
    if (rc) {
        multiline_destroy(t);
        mars_transform_set_state(t, NULL);
    }
    return rc;
}

bool mars_multiline_joins(struct mars_multiline *m, const struct mars_event *ev)
{
    if (m->cont && mars_regex_match(m->cont, ev->msg.ptr, ev->msg.len) == 1)
        return true;
    return m->start && mars_regex_match(m->start, ev->msg.ptr, ev->msg.len) != 1;
}

static void multiline_process(struct mars_transform *t, struct mars_batch *b)
{
    struct mars_multiline *m = mars_transform_state(t);
    if (m->flushed) {
        mars_transform_emit(t, b);
        return;
    }
    mars_multiline_batch(m, b);
}

static void multiline_flush(struct mars_transform *t)
{
    struct mars_multiline *m = mars_transform_state(t);
    m->flushed = true;
    mars_multiline_flush_all(m);
    if (m->timer_armed)
        mars_ev_cancel(mars_transform_loop(t), &m->timer);
}

const struct mars_component_desc mars_transform_multiline = {
    .name = "multiline",
    .description = "Joins continuation lines (stack traces, wrapped messages) into one "
                   "event, per source, file and stream.",
    .kind = MARS_KIND_TRANSFORM,
    .produces = MARS_DATA_LOG,
    .accepts = MARS_DATA_LOG,
    .options = multiline_options,
    .conf_size = sizeof(struct multiline_conf),
    .check = multiline_check,
    .transform = {.init = multiline_init,
                  .process = multiline_process,
                  .flush = multiline_flush,
                  .destroy = multiline_destroy},
};
