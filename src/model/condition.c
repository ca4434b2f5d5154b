/*
 * condition.c - compile and evaluate conditions (see condition.h).
 *
 * Compiling is recursive descent over the text (precedence: || below && below ! below
 * comparison), producing two arrays: nodes (operators, with child and operand indices)
 * and operands (paths and literals). Errors carry the byte offset where they were found,
 * so config checks can point at the line and column. Nesting is bounded (64), which also
 * bounds the recursion of evaluation.
 *
 * Evaluation resolves an operand to a small view (present?, kind, bytes, number) and
 * applies the rules in condition.h. Escaped strings decode into one of two scratch
 * buffers (a comparison has at most two sides), grown with realloc only when a longer
 * value than ever before shows up.
 *
 * Thread: compile anywhere; a compiled condition belongs to one thread.
 */
#include "model/condition.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/schema.h"
#include "model/fields.h"
#include "model/json.h"
#include "model/regex.h"

enum op {
    OP_OR,
    OP_AND,
    OP_NOT,
    OP_CONST,
    OP_TRUTHY,
    OP_CMP,
    OP_EXISTS,
    OP_CONTAINS,
    OP_STARTS,
    OP_ENDS,
    OP_MATCH,
    OP_IN,
};
enum cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
enum opd_kind { OPD_PATH, OPD_STRING, OPD_NUMBER, OPD_BOOL, OPD_NULL };

struct operand {
    enum opd_kind kind;
    struct mars_path *path;
    char *str;
    uint32_t len;
    double num;
    bool b;
};

struct node {
    enum op op;
    enum cmp cmp;
    uint32_t a, b, n; /* children, or operands (IN: list b .. b+n-1) */
    bool value;       /* OP_CONST */
    struct mars_regex *re;
};

struct mars_cond {
    struct node *nodes;
    uint32_t nn;
    size_t capn;
    struct operand *ops;
    uint32_t no;
    size_t capo;
    uint32_t root;
    char *scratch[2];
    size_t scap[2];
};

/* ---- compiling ---- */

struct parser {
    const char *s;
    size_t len, i;
    struct mars_cond *c;
    struct mars_cond_error *err;
    bool failed;
    int depth;
};

__attribute__((format(printf, 3, 4))) static bool perr(struct parser *p, size_t at, const char *fmt,
                                                       ...)
{
    if (p->failed)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    p->err->offset = at;
    p->failed = true;
    return false;
}

static void ws(struct parser *p)
{
    while (p->i < p->len &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static bool peek2(struct parser *p, const char *two)
{
    ws(p);
    return p->i + 1 < p->len && p->s[p->i] == two[0] && p->s[p->i + 1] == two[1];
}

static bool accept(struct parser *p, char c)
{
    ws(p);
    if (p->i < p->len && p->s[p->i] == c) {
        p->i++;
        return true;
    }
    return false;
}

static bool expect(struct parser *p, char c, const char *what)
{
    if (accept(p, c))
        return true;
    return perr(p, p->i, p->i < p->len ? "expected %s" : "expected %s before the end", what);
}

static uint32_t new_node(struct parser *p, enum op op)
{
    struct mars_cond *c = p->c;
    if (mars_grow(&c->nodes, &c->capn, (size_t)c->nn + 1, sizeof(*c->nodes))) {
        perr(p, p->i, "out of memory");
        return UINT32_MAX;
    }
    c->nodes[c->nn] = (struct node){.op = op};
    return c->nn++;
}

static uint32_t new_operand(struct parser *p, struct operand o)
{
    struct mars_cond *c = p->c;
    if (mars_grow(&c->ops, &c->capo, (size_t)c->no + 1, sizeof(*c->ops))) {
        mars_path_destroy(o.path);
        free(o.str);
        perr(p, p->i, "out of memory");
        return UINT32_MAX;
    }
    c->ops[c->no] = o;
    return c->no++;
}

static bool string_literal(struct parser *p, struct operand *o)
{
    char q = p->s[p->i];
    size_t start = p->i++;
    char *out = malloc(p->len - start + 1);
    size_t n = 0;
    if (!out)
        return perr(p, start, "out of memory");
    while (p->i < p->len && p->s[p->i] != q) {
        char ch = p->s[p->i++];
        if (ch == '\\') {
            char e = p->i < p->len ? p->s[p->i++] : 0;
            ch = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            if (!strchr("\"'\\ntr", e) || !e) {
                free(out);
                return perr(p, p->i - 2,
                            "unknown escape in string (use \\\" \\' \\\\ \\n \\r \\t)");
            }
        }
        out[n++] = ch;
    }
    if (p->i >= p->len) {
        free(out);
        return perr(p, start, "unterminated string");
    }
    p->i++;
    out[n] = '\0';
    *o = (struct operand){.kind = OPD_STRING, .str = out, .len = (uint32_t)n};
    return true;
}

static bool number_literal(struct parser *p, struct operand *o)
{
    size_t start = p->i;
    const char *s = p->s;
    if (s[p->i] == '-')
        p->i++;
    while (p->i < p->len &&
           ((s[p->i] >= '0' && s[p->i] <= '9') || s[p->i] == '.' || s[p->i] == 'e' ||
            s[p->i] == 'E' ||
            ((s[p->i] == '-' || s[p->i] == '+') && (s[p->i - 1] == 'e' || s[p->i - 1] == 'E'))))
        p->i++;
    char buf[64];
    size_t n = p->i - start;
    if (n >= sizeof(buf))
        return perr(p, start, "number too long");
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n || n == 0 || !isfinite(v))
        return perr(p, start, "invalid number '%s'", buf);
    *o = (struct operand){.kind = OPD_NUMBER, .num = v};
    return true;
}

static bool is_path_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@' || c == '$' ||
           c == '.';
}

/* A literal, or a path (which may turn out to be a function name: *fname is set then). */
static bool operand(struct parser *p, struct operand *o, struct mars_path **fname)
{
    ws(p);
    *fname = NULL;
    if (p->i >= p->len)
        return perr(p, p->i, "expected a field, string or number before the end");
    char c = p->s[p->i];
    if (c == '"' || c == '\'')
        return string_literal(p, o);
    if ((c >= '0' && c <= '9') || (c == '-' && p->i + 1 < p->len))
        return number_literal(p, o);
    if (!is_path_start(c))
        return perr(p, p->i, "expected a field, string or number, found '%c'", c);
    size_t used, at;
    const char *why;
    size_t start = p->i;
    struct mars_path *path = mars_path_compile_prefix(p->s + p->i, p->len - p->i, &used, &at, &why);
    if (!path)
        return perr(p, start + at, "%s", why);
    p->i += used;
    bool simple = path->n == 1 && path->seg[0].name && p->s[start] != '.' && p->s[start] != '"';
    ws(p);
    if (simple && p->i < p->len && p->s[p->i] == '(') {
        *fname = path;
        return true;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; simple && k < 3; k++) {
        if (mars_path_is(path, lits[k])) {
            mars_path_destroy(path);
            *o = (struct operand){.kind = k == 2 ? OPD_NULL : OPD_BOOL, .b = k == 0};
            return true;
        }
    }
    *o = (struct operand){.kind = OPD_PATH, .path = path};
    return true;
}

static uint32_t parse_or(struct parser *p);

/* fname(args) */
static bool path_arg(struct parser *p, uint32_t *out)
{
    struct operand o = {0};
    struct mars_path *fn;
    size_t at = (ws(p), p->i);
    if (!operand(p, &o, &fn))
        return false;
    if (fn) {
        mars_path_destroy(fn);
        return perr(p, at, "expected a field path as the first argument");
    }
    if (o.kind != OPD_PATH) {
        free(o.str);
        return perr(p, at, "expected a field path as the first argument");
    }
    *out = new_operand(p, o);
    return *out != UINT32_MAX;
}

static bool literal_arg(struct parser *p, uint32_t *out, bool string_only)
{
    struct operand o = {0};
    struct mars_path *fn;
    size_t at = (ws(p), p->i);
    if (!operand(p, &o, &fn))
        return false;
    if (fn || o.kind == OPD_PATH || (string_only && o.kind != OPD_STRING)) {
        mars_path_destroy(fn);
        mars_path_destroy(o.path);
        free(o.str);
        return perr(p, at, string_only ? "expected a string" : "expected a literal");
    }
    *out = new_operand(p, o);
    return *out != UINT32_MAX;
}

static bool in_list(struct parser *p, struct node *tmp)
{
    if (!expect(p, '[', "'[' starting the list of values"))
        return false;
    tmp->b = p->c->no;
    tmp->n = 0;
    if (accept(p, ']'))
        return true;
    do {
        uint32_t k;
        if (!literal_arg(p, &k, false))
            return false;
        tmp->n++;
    } while (accept(p, ','));
    return expect(p, ']', "',' or ']' in the list of values");
}

static bool compile_regex(struct parser *p, struct node *tmp, size_t lit_at)
{
    const struct operand *o = &p->c->ops[tmp->b];
    char why[160];
    size_t at;
    tmp->re = mars_regex_compile(o->str, o->len, &at, why, sizeof(why));
    if (!tmp->re)
        return perr(p, lit_at + 1 + at, "bad regular expression: %s", why);
    return true;
}

static uint32_t function(struct parser *p, struct mars_path *fname, size_t at)
{
    static const char *const names[] = {"exists",    "contains", "starts_with",
                                        "ends_with", "match",    "in"};
    static const enum op ops[] = {OP_EXISTS, OP_CONTAINS, OP_STARTS, OP_ENDS, OP_MATCH, OP_IN};
    int f = -1;
    for (int k = 0; k < 6; k++)
        if (mars_path_is(fname, names[k]))
            f = k;
    if (f < 0) {
        const char *hint = mars_suggest(fname->text, names, 6);
        perr(p, at, "unknown function '%s'%s%s%s", fname->text, hint ? " (did you mean '" : "",
             hint ? hint : "",
             hint ? "'?)"
                  : " (exists, contains, starts_with, ends_with, "
                    "match, in)");
        mars_path_destroy(fname);
        return UINT32_MAX;
    }
    mars_path_destroy(fname);
    struct node tmp = {.op = ops[f]};
    p->i++; /* '(' */
    if (!path_arg(p, &tmp.a))
        return UINT32_MAX;
    if (ops[f] != OP_EXISTS) {
        if (!expect(p, ',', "',' and a second argument"))
            return UINT32_MAX;
        size_t lit_at = (ws(p), p->i);
        if (ops[f] == OP_IN ? !in_list(p, &tmp) : !literal_arg(p, &tmp.b, true))
            return UINT32_MAX;
        if (ops[f] == OP_MATCH && !compile_regex(p, &tmp, lit_at))
            return UINT32_MAX;
    }
    if (!expect(p, ')', "')' closing the function call")) {
        if (tmp.re)
            mars_regex_destroy(tmp.re);
        return UINT32_MAX;
    }
    uint32_t n = new_node(p, tmp.op);
    if (n == UINT32_MAX) {
        mars_regex_destroy(tmp.re);
        return n;
    }
    p->c->nodes[n] = tmp;
    return n;
}

static bool cmp_op(struct parser *p, enum cmp *out)
{
    static const struct {
        const char *s;
        enum cmp c;
    } t[] = {{"==", CMP_EQ}, {"!=", CMP_NE}, {"<=", CMP_LE},
             {">=", CMP_GE}, {"<", CMP_LT},  {">", CMP_GT}};
    ws(p);
    for (int k = 0; k < 6; k++) {
        size_t n = strlen(t[k].s);
        if (p->len - p->i >= n && memcmp(p->s + p->i, t[k].s, n) == 0) {
            p->i += n;
            *out = t[k].c;
            return true;
        }
    }
    if (p->i < p->len && p->s[p->i] == '=')
        perr(p, p->i, "use '==' to compare");
    return false;
}

static uint32_t comparison(struct parser *p, struct operand left, size_t at)
{
    enum cmp c;
    uint32_t a = new_operand(p, left);
    if (a == UINT32_MAX)
        return a;
    if (!cmp_op(p, &c)) {
        if (p->failed)
            return UINT32_MAX;
        if (left.kind == OPD_PATH) {
            uint32_t n = new_node(p, OP_TRUTHY);
            if (n != UINT32_MAX)
                p->c->nodes[n].a = a;
            return n;
        }
        if (left.kind == OPD_BOOL) {
            uint32_t n = new_node(p, OP_CONST);
            if (n != UINT32_MAX)
                p->c->nodes[n].value = left.b;
            return n;
        }
        perr(p, at, "expected a comparison after the value");
        return UINT32_MAX;
    }
    struct operand right = {0};
    struct mars_path *fn;
    size_t rat = (ws(p), p->i);
    if (!operand(p, &right, &fn))
        return UINT32_MAX;
    if (fn) {
        mars_path_destroy(fn);
        perr(p, rat, "a function call cannot be compared");
        return UINT32_MAX;
    }
    bool unordered = left.kind == OPD_BOOL || left.kind == OPD_NULL || right.kind == OPD_BOOL ||
                     right.kind == OPD_NULL;
    if (unordered && c != CMP_EQ && c != CMP_NE) {
        mars_path_destroy(right.path);
        free(right.str);
        perr(p, rat, "true, false and null can only be compared with == or !=");
        return UINT32_MAX;
    }
    uint32_t b = new_operand(p, right);
    uint32_t n = b == UINT32_MAX ? b : new_node(p, OP_CMP);
    if (n != UINT32_MAX) {
        p->c->nodes[n].cmp = c;
        p->c->nodes[n].a = a;
        p->c->nodes[n].b = b;
    }
    return n;
}

static uint32_t primary(struct parser *p)
{
    ws(p);
    size_t at = p->i;
    if (accept(p, '(')) {
        uint32_t n = parse_or(p);
        if (n != UINT32_MAX && !expect(p, ')', "')'"))
            return UINT32_MAX;
        return n;
    }
    struct operand o = {0};
    struct mars_path *fname;
    if (!operand(p, &o, &fname))
        return UINT32_MAX;
    if (fname)
        return function(p, fname, at);
    return comparison(p, o, at);
}

static uint32_t unary(struct parser *p)
{
    if (++p->depth > 64) {
        perr(p, p->i, "condition nests too deeply");
        return UINT32_MAX;
    }
    uint32_t r;
    ws(p);
    if (p->i < p->len && p->s[p->i] == '!' && !peek2(p, "!=")) {
        p->i++;
        uint32_t a = unary(p);
        r = a == UINT32_MAX ? a : new_node(p, OP_NOT);
        if (r != UINT32_MAX)
            p->c->nodes[r].a = a;
    } else {
        r = primary(p);
    }
    p->depth--;
    return r;
}

static uint32_t binary(struct parser *p, bool is_or)
{
    uint32_t left = is_or ? binary(p, false) : unary(p);
    while (left != UINT32_MAX && peek2(p, is_or ? "||" : "&&")) {
        p->i += 2;
        uint32_t right = is_or ? binary(p, false) : unary(p);
        if (right == UINT32_MAX)
            return right;
        uint32_t n = new_node(p, is_or ? OP_OR : OP_AND);
        if (n == UINT32_MAX)
            return n;
        p->c->nodes[n].a = left;
        p->c->nodes[n].b = right;
        left = n;
    }
    return left;
}

static uint32_t parse_or(struct parser *p)
{
    if (++p->depth > 64) {
        perr(p, p->i, "condition nests too deeply");
        return UINT32_MAX;
    }
    uint32_t r = binary(p, true);
    p->depth--;
    return r;
}

struct mars_cond *mars_cond_compile(const char *text, struct mars_cond_error *err)
{
    struct mars_cond *c = calloc(1, sizeof(*c));
    struct parser p = {.s = text, .len = strlen(text), .c = c, .err = err};
    if (!c) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        err->offset = 0;
        return NULL;
    }
    ws(&p);
    if (p.i == p.len) {
        perr(&p, 0, "the condition is empty");
    } else {
        c->root = parse_or(&p);
        ws(&p);
        if (!p.failed && p.i < p.len)
            perr(&p, p.i, "unexpected '%c' (conditions combine with && and ||)", text[p.i]);
    }
    if (p.failed || c->root == UINT32_MAX) {
        mars_cond_destroy(c);
        return NULL;
    }
    return c;
}

void mars_cond_destroy(struct mars_cond *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->nn; i++)
        mars_regex_destroy(c->nodes[i].re);
    for (uint32_t i = 0; i < c->no; i++) {
        mars_path_destroy(c->ops[i].path);
        free(c->ops[i].str);
    }
    free(c->nodes);
    free(c->ops);
    free(c->scratch[0]);
    free(c->scratch[1]);
    free(c);
}

/* ---- evaluation ---- */

struct view {
    bool present;
    enum opd_kind lit; /* literal kind, or OPD_PATH */
    struct mars_value v;
    const char *s;
    uint32_t len;
};

/* The view of a literal. A path is not one: it needs an event (resolve); given one, the
 * view is absent, so it equals nothing. */
static void literal_view(const struct operand *o, struct view *w)
{
    w->lit = o->kind;
    w->present = true;
    switch (o->kind) {
    case OPD_PATH:
        w->present = false;
        w->s = NULL;
        w->len = 0;
        return;
    case OPD_STRING:
        w->s = o->str;
        w->len = o->len;
        return;
    case OPD_BOOL:
        w->s = o->b ? "true" : "false";
        w->len = o->b ? 4 : 5;
        return;
    case OPD_NULL:
        w->s = "null";
        w->len = 4;
        return;
    case OPD_NUMBER:
        w->s = NULL;
        w->len = 0;
        return;
    }
}

/* The view of operand o on event ev: a field's text decodes into scratch buffer `slot`. */
static void resolve(struct mars_cond *c, const struct mars_event *ev, const struct operand *o,
                    int slot, struct view *w)
{
    if (o->kind != OPD_PATH) {
        literal_view(o, w);
        return;
    }
    w->lit = OPD_PATH;
    w->present = mars_fields_get(ev, o->path, &w->v);
    if (w->present)
        w->s = mars_value_text(&w->v, &c->scratch[slot], &c->scap[slot], &w->len);
    w->present = w->present && w->s;
}

static bool as_number(const struct view *w, const struct operand *o, double *out)
{
    if (w->lit == OPD_NUMBER) {
        *out = o->num;
        return true;
    }
    return w->lit == OPD_PATH && mars_value_number(&w->v, out);
}

static int bytes_cmp(const struct view *a, const struct view *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int r = n ? memcmp(a->s, b->s, n) : 0;
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

static bool apply(enum cmp c, int r)
{
    switch (c) {
    case CMP_EQ:
        return r == 0;
    case CMP_NE:
        return r != 0;
    case CMP_LT:
        return r < 0;
    case CMP_LE:
        return r <= 0;
    case CMP_GT:
        return r > 0;
    case CMP_GE:
        return r >= 0;
    }
    return false;
}

static bool textual(const struct view *w)
{
    return w->lit != OPD_PATH || (w->v.kind != MARS_FIELD_OBJECT || (w->v.flags & MARS_FF_RAW));
}

/* Kind test for true/false/null literals: the field must have that kind. */
static bool kind_equal(const struct view *lit, const struct view *other)
{
    if (other->lit != OPD_PATH)
        return other->lit == lit->lit && bytes_cmp(lit, other) == 0;
    enum mars_field_kind k = lit->lit == OPD_NULL ? MARS_FIELD_NULL : MARS_FIELD_BOOL;
    return other->v.kind == k && bytes_cmp(lit, other) == 0;
}

static bool compare(struct mars_cond *c, const struct mars_event *ev, const struct node *n)
{
    const struct operand *oa = &c->ops[n->a], *ob = &c->ops[n->b];
    struct view a, b;
    double x, y;
    resolve(c, ev, oa, 0, &a);
    resolve(c, ev, ob, 1, &b);
    if (!a.present || !b.present)
        return n->cmp == CMP_NE;
    if (a.lit == OPD_BOOL || a.lit == OPD_NULL || b.lit == OPD_BOOL || b.lit == OPD_NULL) {
        bool eq =
            (a.lit == OPD_BOOL || a.lit == OPD_NULL) ? kind_equal(&a, &b) : kind_equal(&b, &a);
        return n->cmp == CMP_EQ ? eq : !eq;
    }
    bool numeric = a.lit == OPD_NUMBER || b.lit == OPD_NUMBER ||
                   (a.lit == OPD_PATH && b.lit == OPD_PATH &&
                    (a.v.kind == MARS_FIELD_NUMBER || b.v.kind == MARS_FIELD_NUMBER));
    if (numeric) {
        if (as_number(&a, oa, &x) && as_number(&b, ob, &y))
            return apply(n->cmp, (x > y) - (x < y));
        if (a.lit == OPD_NUMBER || b.lit == OPD_NUMBER)
            return n->cmp == CMP_NE;
    }
    if (!textual(&a) || !textual(&b))
        return n->cmp == CMP_NE;
    return apply(n->cmp, bytes_cmp(&a, &b));
}

/* Does w equal o, a member of an in() list or contains()'s needle? The parser admits only
 * literals there (literal_arg), and a literal needs no event: it is never looked up in one. */
static bool equals_operand(const struct view *w, const struct operand *o)
{
    struct view lit;
    double x;
    literal_view(o, &lit);
    if (!lit.present)
        return false;
    if (o->kind == OPD_NUMBER)
        return as_number(w, NULL, &x) && x == o->num;
    if (o->kind == OPD_BOOL || o->kind == OPD_NULL)
        return kind_equal(&lit, w);
    return textual(w) && bytes_cmp(w, &lit) == 0;
}

static bool array_contains(const struct view *w, const struct operand *needle, struct mars_cond *c)
{
    struct mars_value e;
    for (uint32_t i = 0; mars_json_array_at(w->v.ptr, w->v.len, i, &e); i++) {
        struct view ew = {.present = true, .lit = OPD_PATH, .v = e};
        ew.s = mars_value_text(&e, &c->scratch[1], &c->scap[1], &ew.len);
        if (ew.s && equals_operand(&ew, needle))
            return true;
    }
    return false;
}

static bool text_function(struct mars_cond *c, const struct mars_event *ev, const struct node *n)
{
    struct view w;
    const struct operand *arg = &c->ops[n->b];
    resolve(c, ev, &c->ops[n->a], 0, &w);
    if (!w.present)
        return false;
    if (n->op == OP_CONTAINS && w.v.kind == MARS_FIELD_ARRAY)
        return array_contains(&w, arg, c);
    if (!textual(&w))
        return false;
    switch (n->op) {
    case OP_CONTAINS:
        return arg->len == 0 || (w.len >= arg->len && memmem(w.s, w.len, arg->str, arg->len));
    case OP_STARTS:
        return w.len >= arg->len && memcmp(w.s, arg->str, arg->len) == 0;
    case OP_ENDS:
        return w.len >= arg->len && memcmp(w.s + w.len - arg->len, arg->str, arg->len) == 0;
    case OP_MATCH:
        return mars_regex_match(n->re, w.s, w.len) == 1;
    default:
        return false;
    }
}

static bool eval(struct mars_cond *c, const struct mars_event *ev, uint32_t i)
{
    const struct node *n = &c->nodes[i];
    struct view w;
    switch (n->op) {
    case OP_OR:
        return eval(c, ev, n->a) || eval(c, ev, n->b);
    case OP_AND:
        return eval(c, ev, n->a) && eval(c, ev, n->b);
    case OP_NOT:
        return !eval(c, ev, n->a);
    case OP_CONST:
        return n->value;
    case OP_CMP:
        return compare(c, ev, n);
    case OP_EXISTS:
    case OP_TRUTHY:
        resolve(c, ev, &c->ops[n->a], 0, &w);
        if (n->op == OP_EXISTS || !w.present)
            return w.present;
        return w.v.kind != MARS_FIELD_NULL &&
               !(w.v.kind == MARS_FIELD_BOOL && w.len == 5); /* "false" */
    case OP_IN:
        resolve(c, ev, &c->ops[n->a], 0, &w);
        for (uint32_t k = 0; w.present && k < n->n; k++)
            if (equals_operand(&w, &c->ops[n->b + k]))
                return true;
        return false;
    default:
        return text_function(c, ev, n);
    }
}

bool mars_cond_eval(struct mars_cond *c, const struct mars_event *ev)
{
    return eval(c, ev, c->root);
}
