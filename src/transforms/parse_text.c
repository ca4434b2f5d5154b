/*
 * parse_text.c - the generic formats of `parse`: json (the zero-copy scanner in json.c),
 * logfmt, key_value and regex (named captures), plus the parser context.
 *
 * logfmt follows the format as Go's go-logfmt reads it: space-separated key=value pairs, a
 * bare key is true, values may be double-quoted with Go escapes (\" \\ \n \r \t \uXXXX),
 * keys and bare values may not hold quotes or control bytes. key_value is the lenient
 * cousin with configurable delimiters: blanks around keys and values are trimmed, values
 * may be quoted with " or ', a key without a value is true. Values stay slices of the line
 * unless quoting needs decoding (then the decoded copy goes to the batch arena); a key seen
 * twice keeps its last value.
 *
 * Thread: the parse instance's worker.
 */
#include <errno.h>
#include <string.h>

#include "core/arena.h"
#include "parse_internal.h"
#include "component.h"

const char *const mars_parse_format_names[] = {"json",   "logfmt", "key_value", "regex",  "cri",
                                               "docker", "syslog", "nginx",     "apache", NULL};

int mars_parse_ctx_init(struct mars_parse_ctx *c)
{
    char err[160];
    mars_fbuild_init(&c->fb);
    c->tf_rfc3339 = mars_timefmt_compile("rfc3339", "UTC", err, sizeof(err));
    c->tf_clf = mars_timefmt_compile("%d/%b/%Y:%H:%M:%S %z", "UTC", err, sizeof(err));
    c->tf_bsd = mars_timefmt_compile("%b %e %H:%M:%S", "UTC", err, sizeof(err));
    if (!c->tf_rfc3339 || !c->tf_clf || !c->tf_bsd) {
        mars_parse_ctx_fini(c);
        return -ENOMEM;
    }
    return 0;
}

void mars_parse_ctx_fini(struct mars_parse_ctx *c)
{
    mars_fbuild_fini(&c->fb);
    mars_timefmt_destroy(c->tf_rfc3339);
    mars_timefmt_destroy(c->tf_clf);
    mars_timefmt_destroy(c->tf_bsd);
    c->tf_rfc3339 = c->tf_clf = c->tf_bsd = NULL;
}

mars_parse_fn mars_parse_fn_for(enum mars_parse_format f)
{
    static const mars_parse_fn fns[] = {
        [MARS_PARSE_JSON] = mars_parse_json,
        [MARS_PARSE_LOGFMT] = mars_parse_logfmt,
        [MARS_PARSE_KEY_VALUE] = mars_parse_key_value,
        [MARS_PARSE_REGEX] = mars_parse_regex,
        [MARS_PARSE_CRI] = mars_parse_cri,
        [MARS_PARSE_DOCKER] = mars_parse_docker,
        [MARS_PARSE_SYSLOG] = mars_parse_syslog,
        [MARS_PARSE_NGINX] = mars_parse_nginx,
        [MARS_PARSE_APACHE] = mars_parse_apache,
    };
    return (unsigned)f < sizeof(fns) / sizeof(fns[0]) ? fns[f] : NULL;
}

bool mars_parse_put(struct mars_parse_ctx *c, uint32_t parent, const char *key, size_t key_len,
                    enum mars_field_kind kind, const char *v, size_t n)
{
    if (n > UINT32_MAX || mars_fbuild_put(&c->fb, parent, key, (uint32_t)key_len, kind, v,
                                          (uint32_t)n, 0, false, NULL) == MARS_FIELD_NIL) {
        c->why = "too many fields";
        return false;
    }
    return true;
}

static int fail(struct mars_parse_ctx *c, const char *why)
{
    c->why = why;
    return -EINVAL;
}

/* ---- json ---- */

int mars_parse_json(struct mars_parse_ctx *c, const char *s, size_t n)
{
    size_t at;
    enum mars_json_error e = mars_json_parse_opts(s, n, c->max_depth, &c->fb, 0,
                                                  c->utf8_valid ? MARS_JSON_VALID_UTF8 : 0, &at);
    return e == MARS_JSON_OK ? 0 : fail(c, mars_json_strerror(e));
}

/* ---- logfmt and key_value ---- */

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 0x20);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes a quoted body with Go-style escapes into the arena. */
static const char *unquote(struct mars_parse_ctx *c, const char *s, size_t n, size_t *out_len)
{
    char *d = mars_arena_alloc(c->fb.arena, n + 1);
    size_t o = 0;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            d[o++] = s[i];
            continue;
        }
        char e = s[++i];
        int h[4];
        switch (e) {
        case 'n':
            d[o++] = '\n';
            break;
        case 't':
            d[o++] = '\t';
            break;
        case 'r':
            d[o++] = '\r';
            break;
        case 'u':
            if (i + 4 < n && (h[0] = hexv(s[i + 1])) >= 0 && (h[1] = hexv(s[i + 2])) >= 0 &&
                (h[2] = hexv(s[i + 3])) >= 0 && (h[3] = hexv(s[i + 4])) >= 0) {
                unsigned cp = (unsigned)(h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3]);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                if (cp < 0x80) {
                    d[o++] = (char)cp;
                } else if (cp < 0x800) {
                    d[o++] = (char)(0xC0 | cp >> 6);
                    d[o++] = (char)(0x80 | (cp & 0x3F));
                } else { /* 6 input bytes, at most 3 out: fits */
                    d[o++] = (char)(0xE0 | cp >> 12);
                    d[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
                    d[o++] = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            d[o++] = '\\';
            d[o++] = e;
            break;
        case '"':
        case '\\':
        case '\'':
            d[o++] = e;
            break;
        default:
            d[o++] = '\\';
            d[o++] = e;
        }
    }
    *out_len = o;
    return d;
}

struct kv_syntax {
    const char *fd, *vd;
    size_t fdl, vdl;
    bool strict; /* logfmt */
};

static bool at_delim(const char *s, size_t i, size_t n, const char *d, size_t dl)
{
    return dl && i + dl <= n && memcmp(s + i, d, dl) == 0;
}

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Quoted value at s[*i] (the quote). Sets value and advances past the closing quote. */
static int quoted_value(struct mars_parse_ctx *c, const char *s, size_t n, size_t *i,
                        const char **v, size_t *vlen)
{
    char q = s[*i];
    size_t st = ++*i;
    bool esc = false;
    while (*i < n && s[*i] != q) {
        if (s[*i] == '\\') {
            esc = true;
            ++*i;
        }
        ++*i;
    }
    if (*i >= n)
        return fail(c, "unterminated quoted value");
    *v = s + st;
    *vlen = *i - st;
    ++*i;
    if (esc && !(*v = unquote(c, s + st, *vlen, vlen)))
        return fail(c, "out of memory");
    return 0;
}

static int kv_value(struct mars_parse_ctx *c, const struct kv_syntax *k, const char *s, size_t n,
                    size_t *i, const char **v, size_t *vlen)
{
    while (!k->strict && *i < n && blank(s[*i]))
        ++*i;
    if (*i < n && (s[*i] == '"' || (!k->strict && s[*i] == '\'')))
        return quoted_value(c, s, n, i, v, vlen);
    size_t st = *i;
    while (*i < n && !at_delim(s, *i, n, k->fd, k->fdl)) {
        if (k->strict && (s[*i] == '"' || (unsigned char)s[*i] < 0x20))
            return fail(c, "unexpected quote or control byte in a value");
        ++*i;
    }
    size_t e = *i;
    while (!k->strict && e > st && blank(s[e - 1]))
        e--;
    *v = s + st;
    *vlen = e - st;
    return 0;
}

static int key_value(struct mars_parse_ctx *c, const char *s, size_t n, const struct kv_syntax *k)
{
    uint64_t bloom = 0;
    size_t i = 0, pairs = 0;
    while (i < n) {
        while (i < n && (at_delim(s, i, n, k->fd, k->fdl) || blank(s[i])))
            i += at_delim(s, i, n, k->fd, k->fdl) ? k->fdl : 1;
        if (i >= n)
            break;
        size_t ks = i;
        while (i < n && !at_delim(s, i, n, k->vd, k->vdl) && !at_delim(s, i, n, k->fd, k->fdl)) {
            if (k->strict && (s[i] == '"' || (unsigned char)s[i] <= ' '))
                return fail(c, "unexpected quote or control byte in a key");
            i++;
        }
        size_t ke = i;
        while (!k->strict && ke > ks && blank(s[ke - 1]))
            ke--;
        if (ke == ks)
            return fail(c, "expected a key before the value delimiter");
        const char *v = "true";
        size_t vlen = 4;
        enum mars_field_kind kind = MARS_FIELD_BOOL;
        size_t j = i;
        while (!k->strict && j < n && blank(s[j]))
            j++; /* "key = value" even when blanks separate pairs */
        if (at_delim(s, j, n, k->vd, k->vdl))
            i = j;
        if (at_delim(s, i, n, k->vd, k->vdl)) {
            i += k->vdl;
            if (kv_value(c, k, s, n, &i, &v, &vlen))
                return -EINVAL;
            kind = MARS_FIELD_STRING;
        }
        if (ke - ks > UINT32_MAX || vlen > UINT32_MAX ||
            mars_fbuild_put(&c->fb, 0, s + ks, (uint32_t)(ke - ks), kind, v, (uint32_t)vlen, 0,
                            true, &bloom) == MARS_FIELD_NIL)
            return fail(c, "too many fields");
        pairs++;
        if (k->strict && i < n && !at_delim(s, i, n, k->fd, k->fdl))
            return fail(c, "expected a space after the value");
    }
    return pairs ? 0 : fail(c, "no key=value pairs");
}

int mars_parse_logfmt(struct mars_parse_ctx *c, const char *s, size_t n)
{
    static const struct kv_syntax logfmt = {
        .fd = " ", .fdl = 1, .vd = "=", .vdl = 1, .strict = true};
    return key_value(c, s, n, &logfmt);
}

int mars_parse_key_value(struct mars_parse_ctx *c, const char *s, size_t n)
{
    struct kv_syntax k = {.fd = c->fdelim ? c->fdelim : " ",
                          .fdl = c->fdelim ? c->fdelim_len : 1,
                          .vd = c->vdelim ? c->vdelim : "=",
                          .vdl = c->vdelim ? c->vdelim_len : 1};
    return key_value(c, s, n, &k);
}

/* ---- regex ---- */

int mars_parse_regex(struct mars_parse_ctx *c, const char *s, size_t n)
{
    int rc = mars_regex_match(c->re, s, n);
    if (rc < 0)
        return fail(c, "regular expression match limit reached");
    if (rc == 0)
        return fail(c, "the line does not match the pattern");
    for (uint32_t i = 0; i < mars_regex_names(c->re); i++) {
        size_t st, len;
        const char *name = mars_regex_name(c->re, i);
        if (mars_regex_named(c->re, i, &st, &len) &&
            !mars_parse_put(c, 0, name, strlen(name), MARS_FIELD_STRING, s + st, len))
            return -EINVAL;
    }
    return 0;
}
