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
 * Groups live in an open-addressing table of 2 x max_groups slots keyed by source, file
 * and stream (the rendered group_by values). Slots are never deleted one by one; when the
 * table holds max_groups keys and a new one comes, every pending event is completed and
 * the table starts empty again (more live files than max_groups is rare and bounded).
 * Per-group arrays grow by doubling and are reused, so steady state allocates nothing.
 *
 * Layout: options and their checks, the instance, the rule, the groups and the timer,
 * then the hooks.
 *
 * Thread: each worker has its own instance; groups never span workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/ev.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
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

/* ---- the instance ---- */

struct multiline_piece {
    const char *ptr;
    uint32_t len;
    uint8_t flags; /* the line's MARS_EVF_* */
};

/* Lines of one source/file/stream waiting to be completed. */
struct multiline_group {
    bool used;
    uint64_t hash;
    char *key;
    uint32_t key_len;
    struct mars_event first;        /* the first line: time, fields, flags */
    struct multiline_piece *pieces; /* lines so far (reused) */
    uint32_t n;
    size_t cap;
    uint64_t bytes;           /* joined length so far */
    struct mars_batch **held; /* references to the batches of the lines */
    uint32_t nheld;
    size_t held_cap;
    int64_t last_ns; /* loop time of the last line */
};

struct multiline {
    struct mars_transform *t;
    struct mars_regex *start, *cont;
    struct mars_path **group_by;
    size_t ngroup_by;
    int64_t timeout;
    uint32_t max_lines, max_groups;
    uint64_t max_bytes;
    struct multiline_group *groups; /* open addressing, mask + 1 slots */
    uint32_t mask, used, pending;
    struct mars_ev_op timer;
    bool timer_armed, flushed;
    char *scratch;
    size_t scap;
    char key[4096];
};

static struct mars_regex *regex_of(const char *text)
{
    char why[160];
    size_t at;
    return text ? mars_regex_compile(text, strlen(text), &at, why, sizeof(why)) : NULL;
}

/* Does ev continue the event before it? */
static bool joins(struct multiline *m, const struct mars_event *ev)
{
    if (m->cont && mars_regex_match(m->cont, ev->msg.ptr, ev->msg.len) == 1)
        return true;
    return m->start && mars_regex_match(m->start, ev->msg.ptr, ev->msg.len) != 1;
}

/* ---- groups ---- */

static int groups_init(struct multiline *m)
{
    uint32_t size = 16;
    while (size < m->max_groups * 2u)
        size *= 2;
    m->groups = calloc(size, sizeof(*m->groups));
    if (!m->groups)
        return -ENOMEM;
    m->mask = size - 1;
    return 0;
}

/* Releases every held batch and frees the groups. */
static void groups_fini(struct multiline *m)
{
    for (uint32_t i = 0; m->groups && i <= m->mask; i++) {
        struct multiline_group *g = &m->groups[i];
        /* lines still pending were never passed on: not delivered, so sources that can
         * will read them again */
        for (uint32_t k = 0; k < g->nheld; k++)
            mars_batch_abandon(g->held[k]);
        free(g->key);
        free(g->pieces);
        free(g->held);
    }
    free(m->groups);
    free(m->scratch);
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = mars_hash64(s, n); /* FNV-1a */
    return h ^ (h >> 31);
}

/* source index, then each group_by value, NUL-separated. */
static size_t group_key(struct multiline *m, const struct mars_event *ev)
{
    size_t n = 0;
    memcpy(m->key, &ev->source, sizeof(ev->source));
    n += sizeof(ev->source);
    for (size_t i = 0; i < m->ngroup_by; i++) {
        struct mars_value v;
        uint32_t len = 0;
        const char *s = mars_fields_get(ev, m->group_by[i], &v)
                            ? mars_value_text(&v, &m->scratch, &m->scap, &len)
                            : NULL;
        if (!s)
            len = 0;
        if (n + len + 1 > sizeof(m->key))
            len = (uint32_t)(sizeof(m->key) - n - 1);
        memcpy(m->key + n, s ? s : "", len);
        n += len;
        m->key[n++] = '\0';
    }
    return n;
}

/* Completes g's event into out (its batches become out's to hold). */
static void complete(struct multiline *m, struct multiline_group *g, struct mars_batch *out)
{
    struct mars_event ev = g->first;
    const struct multiline_piece *last = &g->pieces[g->n - 1];
    bool contiguous = true;
    uint8_t all = MARS_EVF_UTF8; /* kept when every piece has it */
    for (uint32_t k = 0; k < g->n; k++)
        all &= g->pieces[k].flags;
    for (uint32_t k = 1; k < g->n && contiguous; k++)
        contiguous = (g->pieces[k - 1].flags & MARS_EVF_NL_FOLLOWS) &&
                     g->pieces[k].ptr == g->pieces[k - 1].ptr + g->pieces[k - 1].len + 1;
    if (g->n > 1)
        ev.flags = (uint8_t)((ev.flags & ~MARS_EVF_UTF8) | all);
    if (g->n > 1 && contiguous) { /* one widened slice of the chunk */
        ev.msg.len = (uint32_t)(last->ptr + last->len - g->pieces[0].ptr);
        ev.flags =
            (uint8_t)((ev.flags & ~MARS_EVF_NL_FOLLOWS) | (last->flags & MARS_EVF_NL_FOLLOWS));
    } else if (g->n > 1) {
        char *d = mars_arena_alloc(&out->arena, g->bytes);
        uint64_t o = 0;
        if (!d) {
            mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
            d = NULL;
        }
        for (uint32_t k = 0; d && k < g->n; k++) {
            if (k)
                d[o++] = '\n';
            memcpy(d + o, g->pieces[k].ptr, g->pieces[k].len);
            o += g->pieces[k].len;
        }
        if (d) {
            ev.msg.ptr = d;
            ev.msg.len = (uint32_t)o;
            ev.flags &= (uint8_t)~MARS_EVF_NL_FOLLOWS;
        }
    }
    struct mars_event *e = mars_batch_push(out);
    if (e) {
        *e = ev;
        out->bytes += ev.msg.len;
    } else {
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
    }
    for (uint32_t k = 0; k < g->nheld; k++)
        if (mars_batch_hold(out, g->held[k]))
            mars_error(mars_transform_id(m->t), "out of memory: a batch stays unacknowledged");
    g->nheld = 0;
    g->n = 0;
    g->bytes = 0;
    m->pending--;
}

static void complete_all(struct multiline *m, struct mars_batch *out)
{
    for (uint32_t i = 0; i <= m->mask && m->pending; i++)
        if (m->groups[i].used && m->groups[i].n)
            complete(m, &m->groups[i], out);
}

static struct multiline_group *group_for(struct multiline *m, const struct mars_event *ev,
                                         struct mars_batch *out)
{
    size_t n = group_key(m, ev);
    uint64_t h = hash(m->key, n);
    for (int attempt = 0; attempt < 2; attempt++) {
        for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
            struct multiline_group *g = &m->groups[i];
            if (g->used && g->hash == h && g->key_len == n && memcmp(g->key, m->key, n) == 0)
                return g;
            if (g->used)
                continue;
            if (m->used >= m->max_groups)
                break;
            char *key = realloc(g->key, n);
            if (!key)
                return NULL;
            memcpy(key, m->key, n);
            *g = (struct multiline_group){.used = true,
                                          .hash = h,
                                          .key = key,
                                          .key_len = (uint32_t)n,
                                          .pieces = g->pieces,
                                          .cap = g->cap,
                                          .held = g->held,
                                          .held_cap = g->held_cap};
            m->used++;
            return g;
        }
        /* full: complete everything and start an empty table */
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_LIMIT], 1);
        complete_all(m, out);
        for (uint32_t i = 0; i <= m->mask; i++)
            m->groups[i].used = false;
        m->used = 0;
    }
    return NULL;
}

static bool add_line(struct multiline *m, struct multiline_group *g, const struct mars_event *ev,
                     struct mars_batch *b)
{
    if (mars_grow(&g->pieces, &g->cap, (size_t)g->n + 1, sizeof(*g->pieces)))
        return false;
    if (g->nheld == 0 || g->held[g->nheld - 1] != b) {
        if (mars_grow(&g->held, &g->held_cap, (size_t)g->nheld + 1, sizeof(*g->held)))
            return false;
        g->held[g->nheld++] = mars_batch_ref(b);
    }
    if (g->n == 0) {
        g->first = *ev;
        m->pending++;
    }
    g->pieces[g->n++] = (struct multiline_piece){ev->msg.ptr, ev->msg.len, ev->flags};
    g->bytes += ev->msg.len + (g->n > 1);
    g->last_ns = mars_ev_now(mars_transform_loop(m->t));
    return true;
}

static void one_line(struct multiline *m, struct mars_batch *b, const struct mars_event *ev,
                     struct mars_batch *out)
{
    struct multiline_group *g = ev->kind == MARS_EVENT_LOG ? group_for(m, ev, out) : NULL;
    if (g && g->n && joins(m, ev)) {
        if (g->n < m->max_lines && g->bytes + 1 + ev->msg.len <= m->max_bytes &&
            add_line(m, g, ev, b))
            return;
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_LIMIT], 1);
    }
    if (g && g->n)
        complete(m, g, out);
    if (g && add_line(m, g, ev, b))
        return;
    struct mars_event *e = mars_batch_push(out); /* passes through as it is */
    if (e) {
        *e = *ev;
        out->bytes += ev->msg.len;
    }
}

static void on_timer(struct mars_ev_op *op, int res);

static void arm(struct multiline *m, int64_t ns)
{
    if (m->timer_armed || m->flushed || m->pending == 0)
        return;
    mars_ev_prep_timer(&m->timer, ns, on_timer, m);
    m->timer_armed = mars_ev_submit(mars_transform_loop(m->t), &m->timer) == 0;
}

static void emit(struct multiline *m, struct mars_batch *out)
{
    if (out->n)
        mars_transform_emit(m->t, out);
    else
        mars_batch_release(out);
}

/* Takes b: lines join their groups; completed events go out in one batch. */
static void process_batch(struct multiline *m, struct mars_batch *b)
{
    struct mars_batch *out = mars_batch_select(b, NULL, b->n);
    if (!out) {
        mars_stat_add(&mars_transform_stats(m->t)->errors[MARS_ERR_MEMORY], 1);
        mars_transform_emit(m->t, b); /* unjoined rather than lost */
        return;
    }
    for (uint32_t i = 0; i < b->n; i++)
        one_line(m, b, &b->ev[i], out);
    mars_batch_release(b);
    emit(m, out);
    arm(m, m->timeout);
}

static void on_timer(struct mars_ev_op *op, int res)
{
    struct multiline *m = op->data;
    m->timer_armed = false;
    if (res == -ECANCELED || m->flushed)
        return;
    int64_t now = mars_ev_now(mars_transform_loop(m->t)), next = m->timeout;
    struct mars_batch *out = mars_batch_create(16);
    if (!out) {
        arm(m, m->timeout);
        return;
    }
    for (uint32_t i = 0; i <= m->mask && m->pending; i++) {
        struct multiline_group *g = &m->groups[i];
        if (!g->used || !g->n)
            continue;
        int64_t quiet = now - g->last_ns;
        if (quiet >= m->timeout) {
            out->source = g->first.source;
            complete(m, g, out);
        } else if (m->timeout - quiet < next) {
            next = m->timeout - quiet;
        }
    }
    emit(m, out);
    arm(m, next > 1000000 ? next : 1000000);
}

/* Emits every pending event now. */
static void flush_all(struct multiline *m)
{
    if (m->pending == 0)
        return;
    struct mars_batch *out = mars_batch_create(m->pending);
    if (!out)
        return; /* destroy releases the held batches: not lost, only unacknowledged */
    complete_all(m, out);
    emit(m, out);
}

/* ---- hooks ---- */

static void multiline_destroy(struct mars_transform *t)
{
    struct multiline *m = mars_transform_state(t);
    if (!m)
        return;
    groups_fini(m);
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
    struct multiline *m = calloc(1, sizeof(*m));
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
                 : groups_init(m);
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

static void multiline_process(struct mars_transform *t, struct mars_batch *b)
{
    struct multiline *m = mars_transform_state(t);
    if (m->flushed) {
        mars_transform_emit(t, b);
        return;
    }
    process_batch(m, b);
}

static void multiline_flush(struct mars_transform *t)
{
    struct multiline *m = mars_transform_state(t);
    m->flushed = true;
    flush_all(m);
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
