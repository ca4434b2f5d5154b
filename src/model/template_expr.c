/*
 * template_expr.c - compile and evaluate template expressions (see template_internal.h).
 *
 * Compiling is a small recursive descent over the text between the braces: a call is a
 * known function name followed by '(', a literal starts with a quote, a digit or '-', and
 * anything else up to the next ',' or ')' outside quotes is a field path (fields.h).
 * Arity and regexes are checked here, so a template that compiles cannot fail to evaluate
 * except for space.
 */
#include "model/template_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "model/json.h"
#include "model/regex.h"
#include "model/template.h"

enum fn {
    FN_LOWER,
    FN_UPPER,
    FN_REPLACE,
    FN_REDACT,
    FN_SUBSTR,
    FN_HASH,
    FN_DIV,
    FN_MOD,
    FN_CONCAT,
    FN_NUMBER,
    FN_DEFAULT,
};

static const struct {
    const char *name;
    unsigned min, max; /* arguments */
} fns[] = {
    [FN_LOWER] = {"lower", 1, 1},     [FN_UPPER] = {"upper", 1, 1},
    [FN_REPLACE] = {"replace", 3, 3}, [FN_REDACT] = {"redact", 2, 3},
    [FN_SUBSTR] = {"substr", 2, 3},   [FN_HASH] = {"hash", 1, 1},
    [FN_DIV] = {"div", 2, 2},         [FN_MOD] = {"mod", 2, 2},
    [FN_CONCAT] = {"concat", 1, 16},  [FN_NUMBER] = {"number", 1, 1},
    [FN_DEFAULT] = {"default", 2, 2},
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

enum xkind { X_PATH, X_TEXT, X_NUMBER, X_CALL };

struct mars_texpr {
    enum xkind kind;
    enum fn fn;
    struct mars_path *path; /* X_PATH */
    char *text;             /* X_TEXT, X_NUMBER: the literal (decoded) */
    size_t text_len;
    struct mars_regex *re; /* replace, redact: the second argument compiled */
    struct mars_texpr *args[16];
    unsigned nargs;
};

#define MAX_DEPTH 16

struct parser {
    const char *s, *end, *p;
    char *err;
    size_t errlen;
    unsigned depth;
};

static void skip_blank(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static struct mars_texpr *fail(struct parser *ps, struct mars_texpr *x, const char *fmt,
                               const char *what)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, what);
    snprintf(ps->err, ps->errlen, "%s at offset %zu", msg, (size_t)(ps->p - ps->s));
    mars_texpr_destroy(x);
    return NULL;
}

static struct mars_texpr *parse_expr(struct parser *ps);

/* "..." or '...' with \" \' \\ \n \t escapes. */
static struct mars_texpr *parse_string(struct parser *ps, struct mars_texpr *x)
{
    char q = *ps->p++;
    x->kind = X_TEXT;
    x->text = malloc((size_t)(ps->end - ps->p) + 1);
    if (!x->text)
        return fail(ps, x, "%s", "out of memory");
    while (ps->p < ps->end && *ps->p != q) {
        char c = *ps->p++;
        if (c == '\\' && ps->p < ps->end) {
            c = *ps->p++;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        x->text[x->text_len++] = c;
    }
    if (ps->p == ps->end)
        return fail(ps, x, "%s", "unclosed string");
    ps->p++;
    x->text[x->text_len] = '\0';
    return x;
}

static struct mars_texpr *parse_number(struct parser *ps, struct mars_texpr *x)
{
    const char *a = ps->p;
    if (*ps->p == '-')
        ps->p++;
    while (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.'))
        ps->p++;
    x->kind = X_NUMBER;
    x->text_len = (size_t)(ps->p - a);
    x->text = strndup(a, x->text_len);
    if (!x->text)
        return fail(ps, x, "%s", "out of memory");
    char *end;
    (void)strtod(x->text, &end);
    if (*end || x->text_len == 0 || (x->text_len == 1 && *a == '-'))
        return fail(ps, x, "bad number '%s'", x->text);
    return x;
}

/* A path runs to the next ',' or ')' outside quotes (or the end). */
static struct mars_texpr *parse_path(struct parser *ps, struct mars_texpr *x)
{
    const char *a = ps->p;
    char q = 0;
    for (; ps->p < ps->end; ps->p++) {
        if (q) {
            if (*ps->p == '\\' && ps->p + 1 < ps->end)
                ps->p++;
            else if (*ps->p == q)
                q = 0;
        } else if (*ps->p == '"') {
            q = '"';
        } else if (*ps->p == ',' || *ps->p == ')' || *ps->p == '(') {
            break;
        }
    }
    const char *b = ps->p;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t at;
    const char *why = "empty";
    x->kind = X_PATH;
    if (b > a)
        x->path = mars_path_compile(a, (size_t)(b - a), &at, &why);
    if (!x->path || x->path->n == 0) {
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(b - a), a);
        ps->p = a;
        if (ps->p < ps->end && *ps->p == '(')
            return fail(ps, x, "%s", "a '(' without a function name");
        return fail(ps, x, "bad field name '%s'", name);
    }
    return x;
}

static int fn_index(const char *s, size_t n)
{
    for (size_t i = 0; i < NFNS; i++)
        if (strlen(fns[i].name) == n && memcmp(fns[i].name, s, n) == 0)
            return (int)i;
    return -1;
}

/* Checks and compiles what a call's arguments must be. */
static struct mars_texpr *finish_call(struct parser *ps, struct mars_texpr *x)
{
    if (x->nargs < fns[x->fn].min || x->nargs > fns[x->fn].max) {
        char what[96];
        if (fns[x->fn].min == fns[x->fn].max)
            snprintf(what, sizeof(what), "%s() takes %u argument%s", fns[x->fn].name,
                     fns[x->fn].min, fns[x->fn].min == 1 ? "" : "s");
        else
            snprintf(what, sizeof(what), "%s() takes %u to %u arguments", fns[x->fn].name,
                     fns[x->fn].min, fns[x->fn].max);
        return fail(ps, x, "%s", what);
    }
    if (x->fn == FN_REPLACE || x->fn == FN_REDACT) {
        if (x->args[1]->kind != X_TEXT)
            return fail(ps, x, "%s() needs its regex as a string literal", fns[x->fn].name);
        if (x->nargs == 3 && x->args[2]->kind != X_TEXT)
            return fail(ps, x, "%s() needs its replacement as a string literal", fns[x->fn].name);
        char why[120];
        size_t at;
        x->re = mars_regex_compile(x->args[1]->text, x->args[1]->text_len, &at, why, sizeof(why));
        if (!x->re)
            return fail(ps, x, "bad regular expression: %s", why);
    }
    if (x->fn == FN_SUBSTR)
        for (unsigned i = 1; i < x->nargs; i++)
            if (x->args[i]->kind != X_NUMBER || strchr(x->args[i]->text, '.'))
                return fail(ps, x, "%s", "substr() needs integer literals for start and length");
    return x;
}

static struct mars_texpr *parse_call(struct parser *ps, struct mars_texpr *x, int fn)
{
    x->kind = X_CALL;
    x->fn = (enum fn)fn;
    ps->p++; /* '(' */
    skip_blank(ps);
    if (ps->p < ps->end && *ps->p == ')') {
        ps->p++;
        return finish_call(ps, x);
    }
    for (;;) {
        if (x->nargs == 16)
            return fail(ps, x, "%s", "too many arguments");
        struct mars_texpr *a = parse_expr(ps);
        if (!a) {
            mars_texpr_destroy(x);
            return NULL;
        }
        x->args[x->nargs++] = a;
        skip_blank(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ')') {
            ps->p++;
            return finish_call(ps, x);
        }
        return fail(ps, x, "%s", "expected ',' or ')'");
    }
}

static struct mars_texpr *parse_expr(struct parser *ps)
{
    struct mars_texpr *x = calloc(1, sizeof(*x));
    if (!x)
        return fail(ps, NULL, "%s", "out of memory");
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, x, "%s", "expression nested too deep");
    skip_blank(ps);
    if (ps->p == ps->end)
        return fail(ps, x, "%s", "expected a field, a literal or a function");
    struct mars_texpr *r;
    char c = *ps->p;
    if (c == '"' || c == '\'') {
        r = parse_string(ps, x);
    } else if ((c >= '0' && c <= '9') || c == '-') {
        r = parse_number(ps, x);
    } else {
        const char *a = ps->p;
        while (a < ps->end && ((*a >= 'a' && *a <= 'z') || *a == '_'))
            a++;
        const char *b = a;
        while (b < ps->end && (*b == ' ' || *b == '\t'))
            b++;
        if (b < ps->end && *b == '(') {
            int fn = fn_index(ps->p, (size_t)(a - ps->p));
            if (fn < 0) {
                char name[48];
                snprintf(name, sizeof(name), "%.*s", (int)(a - ps->p), ps->p);
                return fail(ps, x,
                            "unknown function '%s' (lower, upper, replace, redact, substr, "
                            "hash, div, mod, concat, number, default)",
                            name);
            }
            ps->p = b;
            r = parse_call(ps, x, fn);
        } else {
            r = parse_path(ps, x);
        }
    }
    ps->depth--;
    return r;
}

struct mars_texpr *mars_texpr_compile(const char *s, size_t n, char *err, size_t errlen)
{
    struct parser ps = {.s = s, .end = s + n, .p = s, .err = err, .errlen = errlen};
    struct mars_texpr *x = parse_expr(&ps);
    if (!x)
        return NULL;
    skip_blank(&ps);
    if (ps.p != ps.end)
        return fail(&ps, x, "%s", "unexpected text after the expression");
    return x;
}

void mars_texpr_destroy(struct mars_texpr *x)
{
    if (!x)
        return;
    for (unsigned i = 0; i < x->nargs; i++)
        mars_texpr_destroy(x->args[i]);
    mars_path_destroy(x->path);
    mars_regex_destroy(x->re);
    free(x->text);
    free(x);
}

/* ---- evaluation ---- */

const char *mars_host_default(void)
{
    static char host[256];
    const char *env = getenv("NODE_NAME");
    if (!host[0] && env && env[0])
        snprintf(host, sizeof(host), "%s", env);
    else if (!host[0] && gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "localhost");
    return host;
}

static int put(char *out, size_t outlen, size_t *len, const char *s, size_t n)
{
    if (*len + n >= outlen)
        return -ENAMETOOLONG;
    memmove(out + *len, s, n);
    *len += n;
    return 0;
}

/* A field's text: strings decoded, numbers, booleans and null as written, arrays and raw
 * objects as JSON, other objects absent. Event fields win over `host`. */
static int eval_path(const struct mars_texpr *x, const struct mars_event *ev, char *out,
                     size_t outlen, size_t *len, int *kind)
{
    struct mars_value v;
    if (!mars_fields_get(ev, x->path, &v)) {
        if (!mars_path_is(x->path, "host")) {
            *kind = MARS_TEXPR_ABSENT;
            return 0;
        }
        *kind = MARS_FIELD_STRING;
        return put(out, outlen, len, mars_host_default(), strlen(mars_host_default()));
    }
    *kind = v.kind;
    if (v.kind == MARS_FIELD_OBJECT && !(v.flags & MARS_FF_RAW)) {
        *kind = MARS_TEXPR_ABSENT;
        return 0;
    }
    if (v.kind == MARS_FIELD_OBJECT)
        *kind = MARS_FIELD_STRING; /* its JSON text */
    if (v.flags & MARS_FF_ESCAPED) {
        if (*len + v.len >= outlen)
            return -ENAMETOOLONG; /* decoding never grows */
        *len += mars_json_unescape(v.ptr, v.len, out + *len);
        return 0;
    }
    return put(out, outlen, len, v.ptr, v.len);
}

/* The integer in out[a..b), or false. */
static bool as_int(const char *s, size_t n, int64_t *v)
{
    char buf[32], *end;
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, &end);
    if (*end || errno || d != d || d > 9.2e18 || d < -9.2e18)
        return false;
    *v = (int64_t)d;
    return true;
}

static int eval_arith(const struct mars_texpr *x, const struct mars_event *ev, char *out,
                      size_t outlen, size_t *len, int *kind)
{
    size_t a = *len, b;
    int k;
    int64_t l, r;
    if (mars_texpr_eval(x->args[0], ev, out, outlen, len, &k))
        return -ENAMETOOLONG;
    b = *len;
    if (mars_texpr_eval(x->args[1], ev, out, outlen, len, &k))
        return -ENAMETOOLONG;
    bool ok = as_int(out + a, b - a, &l) && as_int(out + b, *len - b, &r) && r != 0 &&
              !(l == INT64_MIN && r == -1);
    *len = a;
    *kind = MARS_TEXPR_ABSENT;
    if (!ok)
        return 0;
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, x->fn == FN_DIV ? l / r : l % r);
    *kind = MARS_FIELD_NUMBER;
    return put(out, outlen, len, num, (size_t)n);
}

/* Every match of x->re in out[a..*len) replaced by with; the result ends at *len again. */
static int eval_replace(const struct mars_texpr *x, char *out, size_t outlen, size_t a, size_t *len,
                        const char *with, size_t wlen)
{
    size_t in_end = *len, from = 0, n = in_end - a, s, e;
    const char *in = out + a;
    int rc;
    while (from <= n && (rc = mars_regex_find(x->re, in, n, from, &s, &e)) == 1) {
        if (put(out, outlen, len, in + from, s - from) || put(out, outlen, len, with, wlen))
            return -ENAMETOOLONG;
        if (e == s) { /* an empty match: keep one byte and move past it */
            if (s < n && put(out, outlen, len, in + s, 1))
                return -ENAMETOOLONG;
            e = s + 1;
        }
        from = e;
    }
    if (from < n && put(out, outlen, len, in + from, n - from))
        return -ENAMETOOLONG;
    memmove(out + a, out + in_end, *len - in_end);
    *len = a + (*len - in_end);
    return 0;
}

static bool utf8_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

static void eval_substr(const struct mars_texpr *x, char *out, size_t a, size_t *len)
{
    int64_t n = (int64_t)(*len - a), start = strtoll(x->args[1]->text, NULL, 10);
    int64_t count = x->nargs == 3 ? strtoll(x->args[2]->text, NULL, 10) : n;
    if (start < 0)
        start = start + n < 0 ? 0 : start + n;
    if (start > n)
        start = n;
    if (count < 0)
        count = 0;
    if (count > n - start)
        count = n - start;
    size_t s = (size_t)start, e = (size_t)(start + count);
    while (s > 0 && s < (size_t)n && utf8_cont(out[a + s])) /* whole characters */
        s--;
    while (e > s && e < (size_t)n && utf8_cont(out[a + e]))
        e--;
    memmove(out + a, out + a + s, e - s);
    *len = a + (e - s);
}

static int eval_call(const struct mars_texpr *x, const struct mars_event *ev, char *out,
                     size_t outlen, size_t *len, int *kind)
{
    size_t a = *len;
    int k;
    if (x->fn == FN_DIV || x->fn == FN_MOD)
        return eval_arith(x, ev, out, outlen, len, kind);
    if (x->fn == FN_CONCAT) {
        for (unsigned i = 0; i < x->nargs; i++)
            if (mars_texpr_eval(x->args[i], ev, out, outlen, len, &k))
                return -ENAMETOOLONG;
        *kind = MARS_FIELD_STRING;
        return 0;
    }
    if (mars_texpr_eval(x->args[0], ev, out, outlen, len, &k))
        return -ENAMETOOLONG;
    *kind = MARS_FIELD_STRING;
    switch (x->fn) {
    case FN_LOWER:
    case FN_UPPER: {
        char lo = x->fn == FN_UPPER ? 'a' : 'A', hi = x->fn == FN_UPPER ? 'z' : 'Z';
        for (size_t i = a; i < *len; i++)
            if (out[i] >= lo && out[i] <= hi)
                out[i] ^= 0x20;
        break;
    }
    case FN_REPLACE:
        return eval_replace(x, out, outlen, a, len, x->args[2]->text, x->args[2]->text_len);
    case FN_REDACT:
        return x->nargs == 3
                   ? eval_replace(x, out, outlen, a, len, x->args[2]->text, x->args[2]->text_len)
                   : eval_replace(x, out, outlen, a, len, "[REDACTED]", 10);
    case FN_SUBSTR:
        eval_substr(x, out, a, len);
        break;
    case FN_HASH: {
        char hex[17];
        snprintf(hex, sizeof(hex), "%016" PRIx64, mars_hash64(out + a, *len - a));
        *len = a;
        return put(out, outlen, len, hex, 16);
    }
    case FN_NUMBER: { /* a JSON number literal, as a NUMBER field holds */
        size_t n = *len - a;
        char c = n ? out[a] : 0;
        bool ok = (c == '-' || (c >= '0' && c <= '9')) &&
                  mars_json_validate(out + a, n, 1, NULL) == MARS_JSON_OK;
        if (!ok)
            *len = a;
        *kind = ok ? MARS_FIELD_NUMBER : MARS_TEXPR_ABSENT;
        break;
    }
    case FN_DEFAULT:
        if (k == MARS_TEXPR_ABSENT || k == MARS_FIELD_NULL || *len == a) {
            *len = a;
            return mars_texpr_eval(x->args[1], ev, out, outlen, len, kind);
        }
        *kind = k;
        break;
    default:
        break;
    }
    return 0;
}

int mars_texpr_eval(const struct mars_texpr *x, const struct mars_event *ev, char *out,
                    size_t outlen, size_t *len, int *kind)
{
    switch (x->kind) {
    case X_PATH:
        return eval_path(x, ev, out, outlen, len, kind);
    case X_TEXT:
    case X_NUMBER:
        *kind = x->kind == X_TEXT ? MARS_FIELD_STRING : MARS_FIELD_NUMBER;
        return put(out, outlen, len, x->text, x->text_len);
    case X_CALL:
        return eval_call(x, ev, out, outlen, len, kind);
    }
    return 0;
}
