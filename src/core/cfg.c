/*
 * cfg.c - the configuration tree: YAML text to mars_cfg_node trees with positions.
 *
 * How it works: libyaml's event parser (yaml_parser_parse) feeds a small recursive-descent
 * builder. Every node records the 1-based line:column of its event's start mark (libyaml
 * marks are 0-based). Collections collect their children in temporary heap vectors and copy
 * them into the document's arena when they end. Scalar values get ${VAR}, ${VAR:-default}
 * and $$ expanded here, so later stages see final text and still know where it came from.
 *
 * Errors: the builder keeps going after a semantic error (alias, anchor, duplicate key,
 * bad interpolation, non-scalar key) so that one run reports every problem; a libyaml
 * error (syntax, invalid UTF-8, control characters) ends the parse because libyaml cannot
 * resume. Any error makes the load return NULL. Input is forced to UTF-8 so that binary
 * garbage is rejected by libyaml's reader instead of being guessed as UTF-16.
 *
 * Invariants: all nodes, strings and child arrays of a doc live in its arena (doc->priv)
 * and are freed together by mars_cfg_doc_destroy(). MAP keys are SCALAR nodes, never
 * interpolated. Nesting deeper than CFG_MAX_DEPTH is an error that ends the parse, which
 * bounds the recursion and the time.
 *
 * Thread: any; a load touches only its own parser, doc and diag (getenv() is read-only).
 */
#include "core/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "core/atomic_file.h"
#include "core/cfg_internal.h"
#include "core/grow.h"

#define CFG_MAX_DEPTH      128         /* nesting levels of mappings and sequences */
#define CFG_MAX_FILE_BYTES (64u << 20) /* a config larger than this is surely a mistake */
#define CFG_BLOCK_BYTES    16384       /* arena block size for small allocations */

/* ---- arena ---------------------------------------------------------------------------- */

struct cfg_block {
    struct cfg_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

struct cfg_arena {
    struct cfg_block *head;
};

static void *arena_alloc(struct cfg_arena *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    struct cfg_block *b = a->head;

    size = (size + align - 1) / align * align;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > CFG_BLOCK_BYTES ? size : CFG_BLOCK_BYTES;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        /* A big one-off block goes behind the current one so its free space stays usable. */
        if (a->head && cap == size) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

static void arena_destroy(struct cfg_arena *a)
{
    struct cfg_block *b = a ? a->head : NULL;

    while (b) {
        struct cfg_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

/* ---- builder state ------------------------------------------------------------------ */

struct cfg_builder {
    yaml_parser_t parser;
    struct mars_cfg_doc *doc;
    struct cfg_arena *arena;
    struct mars_diag *diag;
    const unsigned char *text; /* the input, to place reader errors */
    size_t len;
    unsigned errors;
    bool literal; /* values are taken as written: no ${VAR} expansion */
    bool fatal;   /* libyaml failed, memory ran out or nesting too deep: no more events */
};

/* A growable array of node pointers used while a collection is open. */
struct node_vec {
    struct mars_cfg_node **v;
    size_t n, cap;
};

__attribute__((format(printf, 4, 5))) static void cfg_error(struct cfg_builder *b, int line,
                                                            int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mars_diag_addv(b->diag, b->doc->file, line, col, fmt, ap);
    va_end(ap);
    b->errors++;
}

static void cfg_oom(struct cfg_builder *b)
{
    cfg_error(b, 0, 0, "out of memory while loading the configuration");
    b->fatal = true;
}

/* A hint for the two syntax errors libyaml explains worst: a tab in indentation, and
 * ${VAR} unquoted inside a flow collection, where '{' and '}' are YAML syntax. */
static const char *syntax_hint(const struct cfg_builder *b, size_t at)
{
    size_t start = at < b->len ? at : b->len;

    if (at < b->len && b->text[at] == '\t')
        return "; tabs are not allowed for indentation, use spaces";
    while (start > 0 && b->text[start - 1] != '\n')
        start--;
    size_t end = at < b->len ? at + 1 : b->len;
    if (memmem(b->text + start, end - start, "${", 2))
        return "; inside [...] or {...}, put values that use ${...} in quotes";
    return "";
}

/* Reports a libyaml failure with its position; ends the parse. */
static void cfg_yaml_error(struct cfg_builder *b)
{
    yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";

    b->fatal = true;
    if (p->error == YAML_MEMORY_ERROR) {
        cfg_oom(b);
    } else if (p->error == YAML_READER_ERROR) {
        /* The reader runs ahead of the scanner, so place the error from its byte offset. */
        size_t off = p->problem_offset < b->len ? p->problem_offset : b->len;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (b->text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (p->problem_value >= 0)
            cfg_error(b, line, col, "%s (byte 0x%02x)", problem, (unsigned)p->problem_value);
        else
            cfg_error(b, line, col, "%s", problem);
    } else {
        int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
        int cline = (int)p->context_mark.line + 1, ccol = (int)p->context_mark.column + 1;
        const char *hint = syntax_hint(b, p->problem_mark.index);
        if (!p->context)
            cfg_error(b, line, col, "%s%s", problem, hint);
        else if (cline == line && ccol == col)
            cfg_error(b, line, col, "%s (%s)%s", problem, p->context, hint);
        else
            cfg_error(b, line, col, "%s (%s at line %d, column %d)%s", problem, p->context, cline,
                      ccol, hint);
    }
}

static int next_event(struct cfg_builder *b, yaml_event_t *ev)
{
    if (b->fatal)
        return -1;
    if (!yaml_parser_parse(&b->parser, ev)) {
        cfg_yaml_error(b);
        return -1;
    }
    return 0;
}

static int vec_push(struct cfg_builder *b, struct node_vec *vec, struct mars_cfg_node *n)
{
    if (mars_grow(&vec->v, &vec->cap, vec->n + 1, sizeof(*vec->v))) {
        cfg_oom(b);
        return -1;
    }
    vec->v[vec->n++] = n;
    return 0;
}

/* Copies a finished vector into the arena. */
static struct mars_cfg_node **vec_finish(struct cfg_builder *b, const struct node_vec *vec)
{
    if (vec->n == 0)
        return NULL;
    struct mars_cfg_node **v = arena_alloc(b->arena, vec->n * sizeof(*v));
    if (!v) {
        cfg_oom(b);
        return NULL;
    }
    memcpy(v, vec->v, vec->n * sizeof(*v));
    return v;
}

static struct mars_cfg_node *new_node(struct cfg_builder *b, enum mars_cfg_kind kind,
                                      yaml_mark_t mark)
{
    struct mars_cfg_node *n = arena_alloc(b->arena, sizeof(*n));

    if (!n) {
        cfg_oom(b);
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->file = b->doc->file;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static char *arena_strndup(struct cfg_builder *b, const char *s, size_t len)
{
    char *p = arena_alloc(b->arena, len + 1);

    if (!p) {
        cfg_oom(b);
        return NULL;
    }
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- interpolation -------------------------------------------------------------------- */

/* A heap string builder for expanded values. */
struct strbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct strbuf *sb, const char *s, size_t len)
{
    if (sb->oom)
        return;
    if (mars_grow(&sb->p, &sb->cap, sb->n + len + 1, 1)) {
        sb->oom = true;
        return;
    }
    memcpy(sb->p + sb->n, s, len);
    sb->n += len;
    sb->p[sb->n] = '\0';
}

static bool valid_var_name(const char *s, size_t len)
{
    if (len == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/*
 * Expands one "${...}" whose body is s[0..len) into sb. Shell semantics: ${V} needs V set
 * (empty is fine); ${V:-d} gives d when V is unset or empty.
 */
static void expand_var(struct cfg_builder *b, const struct mars_cfg_node *n, struct strbuf *sb,
                       const char *s, size_t len)
{
    const char *sep = NULL;
    size_t name_len = len;

    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] == ':' && s[i + 1] == '-') {
            sep = s + i;
            name_len = i;
            break;
        }
    }
    if (!valid_var_name(s, name_len)) {
        cfg_error(b, n->line, n->col,
                  "invalid environment variable name \"%.*s\" in ${...} (use letters, digits "
                  "and _; write $$ for a literal $)",
                  (int)name_len, s);
        return;
    }
    char *name = strndup(s, name_len);
    if (!name) {
        sb->oom = true;
        return;
    }
    const char *val = getenv(name);
    if (sep) {
        if (!val || !*val)
            sb_put(sb, sep + 2, len - name_len - 2);
        else
            sb_put(sb, val, strlen(val));
    } else if (!val) {
        cfg_error(b, n->line, n->col,
                  "environment variable %s is not set (use ${%s:-default} for a default)", name,
                  name);
    } else {
        sb_put(sb, val, strlen(val));
    }
    free(name);
}

/* Sets n->str/len to s[0..len) with ${VAR}, ${VAR:-default} and $$ expanded. */
static int interpolate(struct cfg_builder *b, struct mars_cfg_node *n, const char *s, size_t len)
{
    struct strbuf sb = {0};
    size_t i = 0;

    if (b->literal || !memchr(s, '$', len)) {
        n->str = arena_strndup(b, s, len);
        n->len = len;
        return n->str ? 0 : -1;
    }
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t at = dollar ? (size_t)(dollar - s) : len;
        sb_put(&sb, s + i, at - i);
        i = at;
        if (i == len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            sb_put(&sb, "$", 1);
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            const char *close = memchr(s + i + 2, '}', len - i - 2);
            if (!close) {
                cfg_error(b, n->line, n->col,
                          "unterminated ${ in value (expected '}'; write $$ for a literal $)");
                sb_put(&sb, s + i, len - i);
                break;
            }
            expand_var(b, n, &sb, s + i + 2, (size_t)(close - (s + i + 2)));
            i = (size_t)(close - s) + 1;
        } else {
            sb_put(&sb, "$", 1); /* a lone $ is literal */
            i++;
        }
    }
    if (sb.oom) {
        free(sb.p);
        cfg_oom(b);
        return -1;
    }
    n->str = arena_strndup(b, sb.p ? sb.p : "", sb.n);
    n->len = sb.n;
    free(sb.p);
    return n->str ? 0 : -1;
}

/* ---- nodes ---------------------------------------------------------------------------- */

static bool is_null_text(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strlen(nulls[i]) == len && memcmp(nulls[i], s, len) == 0)
            return true;
    }
    return false;
}

static void reject_anchor(struct cfg_builder *b, const yaml_char_t *anchor, yaml_mark_t mark)
{
    if (anchor)
        cfg_error(b, (int)mark.line + 1, (int)mark.column + 1,
                  "YAML anchors are not supported (&%s)", (const char *)anchor);
}

/* A scalar event to a node. Keys keep their text as written; values are interpolated and
 * plain null spellings become MARS_CFG_NULL. */
static struct mars_cfg_node *build_scalar(struct cfg_builder *b, const yaml_event_t *ev,
                                          bool is_key)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    enum mars_cfg_kind kind =
        !is_key && plain && is_null_text(s, len) ? MARS_CFG_NULL : MARS_CFG_SCALAR;

    reject_anchor(b, ev->data.scalar.anchor, ev->start_mark);
    struct mars_cfg_node *n = new_node(b, kind, ev->start_mark);
    if (!n)
        return NULL;
    /* Quoted and block scalars are strings by intent ("true", |-blocks). */
    n->quoted = !plain;
    if (kind == MARS_CFG_NULL)
        return n;
    if (is_key) {
        n->str = arena_strndup(b, s, len);
        n->len = len;
        return n->str ? n : NULL;
    }
    return interpolate(b, n, s, len) == 0 ? n : NULL;
}

static struct mars_cfg_node *build_node(struct cfg_builder *b, yaml_event_t *ev, int depth);

struct dup_key {
    const struct mars_cfg_node *key;
    int first_line;
};

static int cmp_key_text(const void *pa, const void *pb)
{
    const struct mars_cfg_node *a = *(const struct mars_cfg_node *const *)pa;
    const struct mars_cfg_node *b = *(const struct mars_cfg_node *const *)pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->str, b->str, n);

    if (c != 0)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return (a->col > b->col) - (a->col < b->col);
}

static int cmp_dup_pos(const void *pa, const void *pb)
{
    const struct mars_cfg_node *a = ((const struct dup_key *)pa)->key;
    const struct mars_cfg_node *b = ((const struct dup_key *)pb)->key;

    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return (a->col > b->col) - (a->col < b->col);
}

/* Reports every repeated key of a map at the repeat, in file order. Sorting keeps this
 * O(n log n) even for huge generated maps. */
static void check_duplicates(struct cfg_builder *b, const struct mars_cfg_node *map)
{
    if (map->n < 2)
        return;
    const struct mars_cfg_node **sorted = malloc(map->n * sizeof(*sorted));
    struct dup_key *dups = malloc(map->n * sizeof(*dups));
    size_t ndup = 0;

    if (!sorted || !dups) {
        free(sorted);
        free(dups);
        cfg_oom(b);
        return;
    }
    memcpy(sorted, map->keys, map->n * sizeof(*sorted));
    qsort(sorted, map->n, sizeof(*sorted), cmp_key_text);
    for (size_t i = 1, first = 0; i < map->n; i++) {
        const struct mars_cfg_node *f = sorted[first], *k = sorted[i];
        if (k->len == f->len && memcmp(k->str, f->str, k->len) == 0)
            dups[ndup++] = (struct dup_key){.key = k, .first_line = f->line};
        else
            first = i;
    }
    qsort(dups, ndup, sizeof(*dups), cmp_dup_pos);
    for (size_t i = 0; i < ndup; i++)
        cfg_error(b, dups[i].key->line, dups[i].key->col,
                  "duplicate key '%s' (first defined at line %d)", dups[i].key->str,
                  dups[i].first_line);
    free(sorted);
    free(dups);
}

/* Reads one mapping key; *key is NULL (after an error) when the key cannot be used. */
static int build_key(struct cfg_builder *b, yaml_event_t *ev, int depth, struct mars_cfg_node **key)
{
    *key = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        *key = build_scalar(b, ev, true);
        yaml_event_delete(ev);
        return *key ? 0 : -1;
    }
    bool collection = ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;
    yaml_mark_t mark = ev->start_mark;
    struct mars_cfg_node *k = build_node(b, ev, depth);
    if (!k)
        return -1;
    if (collection) /* aliases were already reported by build_node */
        cfg_error(b, (int)mark.line + 1, (int)mark.column + 1,
                  "mapping keys must be plain strings, not a %s",
                  k->kind == MARS_CFG_SEQ ? "list" : "mapping");
    return 0;
}

/* Builds the children of a mapping or sequence whose start event was just read. */
static int build_children(struct cfg_builder *b, struct mars_cfg_node *n, int depth)
{
    struct node_vec keys = {0}, vals = {0};
    int rc = -1;
    yaml_event_t ev;

    for (;;) {
        if (next_event(b, &ev) < 0)
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        struct mars_cfg_node *key = NULL;
        if (n->kind == MARS_CFG_MAP) {
            if (build_key(b, &ev, depth, &key) < 0 || next_event(b, &ev) < 0)
                goto out;
        }
        struct mars_cfg_node *val = build_node(b, &ev, depth);
        if (!val)
            goto out;
        if (n->kind == MARS_CFG_SEQ && vec_push(b, &vals, val) < 0)
            goto out;
        if (key && (vec_push(b, &keys, key) < 0 || vec_push(b, &vals, val) < 0))
            goto out;
    }
    n->n = vals.n;
    n->vals = vec_finish(b, &vals);
    n->keys = vec_finish(b, &keys);
    if (b->fatal)
        goto out;
    if (n->kind == MARS_CFG_MAP)
        check_duplicates(b, n);
    rc = 0;
out:
    free(keys.v);
    free(vals.v);
    return rc;
}

/* Builds the node that starts with *ev (consumed). NULL only when the parse cannot go on. */
static struct mars_cfg_node *build_node(struct cfg_builder *b, yaml_event_t *ev, int depth)
{
    struct mars_cfg_node *n = NULL;
    yaml_mark_t mark = ev->start_mark;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = build_scalar(b, ev, false);
        break;
    case YAML_ALIAS_EVENT:
        cfg_error(b, (int)mark.line + 1, (int)mark.column + 1,
                  "YAML aliases are not supported (*%s)", (const char *)ev->data.alias.anchor);
        n = new_node(b, MARS_CFG_NULL, mark);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        reject_anchor(b, seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor,
                      mark);
        n = new_node(b, seq ? MARS_CFG_SEQ : MARS_CFG_MAP, mark);
        if (!n)
            break;
        if (depth >= CFG_MAX_DEPTH) {
            /* Stop here: libyaml rescans its open flow levels for every token, so
             * reading on to the end of a 100,000-level value would take quadratic time
             * (26 s) for an error already known. */
            cfg_error(b, n->line, n->col, "nesting is too deep (more than %d levels)",
                      CFG_MAX_DEPTH);
            b->fatal = true;
        } else if (build_children(b, n, depth + 1) < 0) {
            n = NULL;
        }
        break;
    }
    default:
        cfg_error(b, (int)mark.line + 1, (int)mark.column + 1, "unexpected YAML structure");
        b->fatal = true;
        break;
    }
    yaml_event_delete(ev);
    return b->fatal ? NULL : n;
}

/* ---- documents ------------------------------------------------------------------------ */

/* Reads the event stream: at most one document; sets doc->root. */
static void build_stream(struct cfg_builder *b)
{
    yaml_event_t ev;

    if (next_event(b, &ev) < 0) /* STREAM-START */
        return;
    yaml_event_delete(&ev);
    if (next_event(b, &ev) < 0)
        return;
    if (ev.type == YAML_STREAM_END_EVENT) { /* nothing but comments and blanks */
        yaml_event_delete(&ev);
        return;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(b, &ev) < 0)
        return;
    struct mars_cfg_node *root = build_node(b, &ev, 0);
    if (!root)
        return;
    b->doc->root = root->kind == MARS_CFG_NULL ? NULL : root;
    if (next_event(b, &ev) < 0) /* DOCUMENT-END */
        return;
    yaml_event_delete(&ev);
    if (next_event(b, &ev) < 0)
        return;
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        cfg_error(b, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                  "only one YAML document per file is supported");
    yaml_event_delete(&ev);
}

static struct mars_cfg_doc *load_string(const char *name, const char *text, size_t len,
                                        bool literal, struct mars_diag *diag)
{
    struct cfg_builder b = {.diag = diag, .literal = literal};
    struct mars_cfg_doc *doc = calloc(1, sizeof(*doc));

    if (!text) { /* libyaml asserts on a NULL input even when it is empty */
        text = "";
        len = 0;
    }
    b.text = (const unsigned char *)text;
    b.len = len;

    if (!doc || !(doc->file = strdup(name ? name : "<config>")) ||
        !(b.arena = calloc(1, sizeof(*b.arena)))) {
        mars_diag_add(diag, name, 0, 0, "out of memory while loading the configuration");
        mars_cfg_doc_destroy(doc);
        return NULL;
    }
    doc->priv = b.arena;
    b.doc = doc;
    if (!yaml_parser_initialize(&b.parser)) {
        cfg_oom(&b);
        mars_cfg_doc_destroy(doc);
        return NULL;
    }
    yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    build_stream(&b);
    yaml_parser_delete(&b.parser);
    if (b.errors > 0) {
        mars_cfg_doc_destroy(doc);
        return NULL;
    }
    return doc;
}

struct mars_cfg_doc *mars_cfg_load_string(const char *name, const char *text, size_t len,
                                          struct mars_diag *diag)
{
    return load_string(name, text, len, false, diag);
}

static struct mars_cfg_doc *load_file(const char *path, bool literal, struct mars_diag *diag)
{
    char *text = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        mars_diag_add(diag, path, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    int rc = mars_fd_read_all(fd, CFG_MAX_FILE_BYTES, &text, &len);
    close(fd);
    if (rc < 0) {
        mars_diag_add(diag, path, 0, 0, "cannot read: %s",
                      rc == -EFBIG ? "file is larger than 64 MiB" : strerror(-rc));
        return NULL;
    }
    struct mars_cfg_doc *doc = load_string(path, text, len, literal, diag);
    free(text);
    return doc;
}

struct mars_cfg_doc *mars_cfg_load_file(const char *path, struct mars_diag *diag)
{
    return load_file(path, false, diag);
}

struct mars_cfg_doc *mars_cfg_load_file_literal(const char *path, struct mars_diag *diag)
{
    return load_file(path, true, diag);
}

struct mars_cfg_doc *mars_cfg_doc_create(const char *name)
{
    struct mars_cfg_doc *doc = calloc(1, sizeof(*doc));

    if (!doc || !(doc->file = strdup(name)) || !(doc->priv = calloc(1, sizeof(struct cfg_arena)))) {
        mars_cfg_doc_destroy(doc);
        return NULL;
    }
    return doc;
}

void *mars_cfg_doc_alloc(struct mars_cfg_doc *doc, size_t size)
{
    return arena_alloc(doc->priv, size);
}

void mars_cfg_doc_destroy(struct mars_cfg_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nparts; i++)
        mars_cfg_doc_destroy(doc->parts[i]);
    free(doc->parts);
    arena_destroy(doc->priv);
    free(doc->file);
    free(doc);
}
