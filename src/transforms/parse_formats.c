/*
 * parse_formats.c - the nine formats of `parse` and the parser context they share (see
 * parse_internal.h for the contract: a parser adds what it finds to the context's builder,
 * or fails with a static reason). The transform itself (options, per-event flow) is
 * parse.c.
 *
 * Generic formats:
 * json       the zero-copy scanner in model/json.c.
 * logfmt     as Go's go-logfmt reads it: space-separated key=value pairs, a bare key is
 *            true, values may be double-quoted with Go escapes (\" \\ \n \r \t \uXXXX),
 *            keys and bare values may not hold quotes or control bytes.
 * key_value  the lenient cousin with configurable delimiters: blanks around keys and values
 *            are trimmed, values may be quoted with " or ', a key without a value is true.
 * regex      the pattern's named captures.
 * Values stay slices of the line unless quoting needs decoding (then the decoded copy goes
 * to the batch arena); a key seen twice keeps its last value.
 *
 * Fixed log formats, each written from its specification:
 * cri     CRI container log line (kubelet, containerd, CRI-O):
 *           TIMESTAMP SP STREAM SP TAG SP MESSAGE    TIMESTAMP RFC 3339 (nanoseconds),
 *           STREAM stdout|stderr, TAG "F" (full) or "P" (partial; colon-separated tags)
 *         -> message, stream, logtag (+ the event time)
 * docker  Docker json-file: {"log":"...\n","stream":"stdout","time":"..."}
 *         -> message (the trailing newline removed), stream, other keys as they are
 * syslog  RFC 5424: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]
 *         ("-" is nil; SD [id k="v" ...] with \" \\ \] escapes; a UTF-8 BOM before MSG is
 *         dropped) -> facility, severity, version, hostname, appname, procid, msgid,
 *         structured_data.ID.NAME, message
 *         RFC 3164: [<PRI>]Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG (an RFC 3339 time is
 *         accepted too; the year is the one that makes the time nearest before now)
 *         -> facility, severity (when PRI is there), hostname, appname, procid, message
 * nginx   combined: ADDR - USER [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT", optionally
 *         followed by "X-FORWARDED-FOR" (nginx's default `main` format)
 * apache  combined: HOST IDENT USER [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT"
 *         -> client, ident, user, request, method, path, protocol, status, size, referer,
 *         agent, forwarded_for; "-" values are left out, size "-" is 0
 *
 * Their values are slices of the line except where escapes must be decoded (syslog SD
 * values). Numbers (status, size, version, procid when numeric) are NUMBER fields.
 *
 * Thread: the parse instance's worker.
 */
#include <errno.h>
#include <string.h>

#include "core/arena.h"
#include "core/metrics.h"
#include "parse_internal.h"
#include "component.h"

/* ---- the format table and the parser context ---- */

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

struct mars_mseries *mars_parse_unparsed_series(struct mars_obs *obs, const char *id)
{
    struct mars_mfamily *f =
        obs ? mars_metrics_family(
                  mars_obs_metrics(obs),
                  &(struct mars_mfamily_desc){
                      .name = "mars_parse_unparsed_events_total",
                      .help = "Events passed on unchanged because their field did not parse "
                              "(on_error: pass).",
                      .type = MARS_MT_COUNTER,
                      .labels = (const char *const[]){"component_id", NULL}})
            : NULL;
    return f ? mars_mfamily_series(f, (const char *const[]){id}) : NULL;
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

/* ---- helpers of the fixed log formats ---- */

/* The token at s[*i] up to the next space (or end); advances past one space. */
static bool token(const char *s, size_t n, size_t *i, const char **t, size_t *tl)
{
    size_t st = *i;
    while (*i < n && s[*i] != ' ')
        ++*i;
    *t = s + st;
    *tl = *i - st;
    if (*i < n)
        ++*i;
    return *tl > 0;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n == 1 || s[0] != '0';
}

/* A string member at the root; the key is a string literal. */
#define put_str(c, lit, v, n) MARS_PARSE_PUT((c), 0, lit, MARS_FIELD_STRING, (v), (n))
/* The same, unless the value is the nil value "-". */
#define put_unless_nil(c, lit, v, n) (((n) == 1 && (v)[0] == '-') || put_str((c), lit, (v), (n)))

static bool set_time(struct mars_parse_ctx *c, const struct mars_timefmt *f, const char *s,
                     size_t n)
{
    c->has_ts = mars_timefmt_parse(f, s, n, c->now_ns, &c->ts_ns) == 0;
    return c->has_ts;
}

/* ---- cri ---- */

int mars_parse_cri(struct mars_parse_ctx *c, const char *s, size_t n)
{
    const char *ts, *stream, *tag;
    size_t tsl, sl, tl, i = 0;
    if (!token(s, n, &i, &ts, &tsl) || !token(s, n, &i, &stream, &sl) ||
        !token(s, n, &i, &tag, &tl))
        return fail(c, "not a CRI line (TIME STREAM TAG MESSAGE)");
    if (!((sl == 6 && memcmp(stream, "stdout", 6) == 0) ||
          (sl == 6 && memcmp(stream, "stderr", 6) == 0)))
        return fail(c, "CRI stream is neither stdout nor stderr");
    if (tag[0] != 'F' && tag[0] != 'P')
        return fail(c, "CRI tag is neither F nor P");
    if (!set_time(c, c->tf_rfc3339, ts, tsl))
        return fail(c, "CRI timestamp is not RFC 3339");
    if (!put_str(c, "message", s + i, n - i) || !put_str(c, "stream", stream, sl) ||
        !put_str(c, "logtag", tag, tl))
        return -EINVAL;
    return 0;
}

/* ---- docker ---- */

int mars_parse_docker(struct mars_parse_ctx *c, const char *s, size_t n)
{
    size_t at;
    enum mars_json_error e = mars_json_parse_opts(s, n, c->max_depth ? c->max_depth : 64, &c->fb, 0,
                                                  c->utf8_valid ? MARS_JSON_VALID_UTF8 : 0, &at);
    if (e != MARS_JSON_OK)
        return fail(c, mars_json_strerror(e));
    uint32_t log = mars_fbuild_find(&c->fb, 0, "log", 3);
    uint32_t tm = mars_fbuild_find(&c->fb, 0, "time", 4);
    if (log == MARS_FIELD_NIL || c->fb.v[log].kind != MARS_FIELD_STRING)
        return fail(c, "docker line without a \"log\" string");
    struct mars_field *f = &c->fb.v[log];
    if (f->flags & MARS_FF_ESCAPED) { /* the usual case: "...\n" */
        char *d = mars_arena_alloc(c->fb.arena, f->value_len);
        if (!d)
            return fail(c, "out of memory");
        f->value_len = (uint32_t)mars_json_unescape(f->value, f->value_len, d);
        f->value = d;
        f->flags = 0;
    }
    if (f->value_len && f->value[f->value_len - 1] == '\n')
        f->value_len--;
    f->key = "message";
    f->key_len = 7;
    if (tm != MARS_FIELD_NIL && c->fb.v[tm].kind == MARS_FIELD_STRING &&
        !(c->fb.v[tm].flags & MARS_FF_ESCAPED) &&
        set_time(c, c->tf_rfc3339, c->fb.v[tm].value, c->fb.v[tm].value_len)) {
        /* the time is the event's now: unlink the member */
        uint32_t prev = MARS_FIELD_NIL;
        for (uint32_t k = c->fb.v[0].first; k != MARS_FIELD_NIL; prev = k, k = c->fb.v[k].next)
            if (k == tm) {
                if (prev == MARS_FIELD_NIL)
                    c->fb.v[0].first = c->fb.v[k].next;
                else
                    c->fb.v[prev].next = c->fb.v[k].next;
                if (c->fb.v[0].last == k)
                    c->fb.v[0].last = prev;
                break;
            }
    }
    return 0;
}

/* ---- syslog ---- */

static const char *const severities[] = {"emerg",   "alert",  "crit", "err",
                                         "warning", "notice", "info", "debug"};
static const char *const facilities[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};

/* <PRI> at s[*i]; returns the value (0-191), -1 when absent, -2 when malformed. */
static int priority(const char *s, size_t n, size_t *i)
{
    if (n == 0 || s[0] != '<')
        return -1;
    int v = 0;
    size_t k = 1;
    while (k < n && k <= 4 && s[k] >= '0' && s[k] <= '9')
        v = v * 10 + (s[k++] - '0');
    if (k == 1 || k > 4 || k >= n || s[k] != '>' || v > 191 || (k > 2 && s[1] == '0'))
        return -2;
    *i = k + 1;
    return v;
}

static bool put_pri(struct mars_parse_ctx *c, int pri)
{
    const char *f = facilities[pri / 8], *sv = severities[pri % 8];
    return put_str(c, "facility", f, strlen(f)) && put_str(c, "severity", sv, strlen(sv));
}

/* One SD-ELEMENT at s[*i] ('['): adds structured_data.ID.NAME = VALUE. */
static int sd_element(struct mars_parse_ctx *c, const char *s, size_t n, size_t *i, uint32_t sd)
{
    size_t st = ++*i;
    while (*i < n && s[*i] != ' ' && s[*i] != ']' && s[*i] != '=' && s[*i] != '"')
        ++*i;
    if (*i == st || *i >= n)
        return fail(c, "bad syslog structured data id");
    uint32_t id = mars_fbuild_put(&c->fb, sd, s + st, (uint32_t)(*i - st), MARS_FIELD_OBJECT, NULL,
                                  0, 0, true, NULL);
    if (id == MARS_FIELD_NIL)
        return fail(c, "too many fields");
    while (*i < n && s[*i] == ' ') {
        size_t ns = ++*i;
        while (*i < n && s[*i] != '=' && s[*i] != ' ' && s[*i] != ']' && s[*i] != '"')
            ++*i;
        if (*i == ns || *i + 1 >= n || s[*i] != '=' || s[*i + 1] != '"')
            return fail(c, "bad syslog structured data parameter");
        size_t nl = *i - ns;
        *i += 2;
        char *d = mars_arena_alloc(c->fb.arena, n - *i + 1);
        size_t o = 0;
        if (!d)
            return fail(c, "out of memory");
        while (*i < n && s[*i] != '"') {
            if (s[*i] == '\\' && *i + 1 < n && strchr("\"\\]", s[*i + 1]))
                ++*i;
            d[o++] = s[(*i)++];
        }
        if (*i >= n)
            return fail(c, "unterminated syslog structured data value");
        ++*i;
        if (mars_fbuild_put(&c->fb, id, s + ns, (uint32_t)nl, MARS_FIELD_STRING, d, (uint32_t)o, 0,
                            true, NULL) == MARS_FIELD_NIL)
            return fail(c, "too many fields");
    }
    if (*i >= n || s[*i] != ']')
        return fail(c, "bad syslog structured data element");
    ++*i;
    return 0;
}

static int structured_data(struct mars_parse_ctx *c, const char *s, size_t n, size_t *i)
{
    if (*i < n && s[*i] == '-') {
        ++*i;
        return 0;
    }
    if (*i >= n || s[*i] != '[')
        return fail(c, "syslog structured data is neither - nor [...]");
    uint32_t sd = mars_fbuild_put(&c->fb, 0, "structured_data", 15, MARS_FIELD_OBJECT, NULL, 0, 0,
                                  false, NULL);
    if (sd == MARS_FIELD_NIL)
        return fail(c, "too many fields");
    while (*i < n && s[*i] == '[')
        if (sd_element(c, s, n, i, sd))
            return -EINVAL;
    return 0;
}

static int rfc5424(struct mars_parse_ctx *c, const char *s, size_t n, size_t i, int pri)
{
    const char *t[6];
    size_t tl[6];
    static const char *const names[] = {NULL, NULL, "hostname", "appname", "procid", "msgid"};
    for (int k = 0; k < 6; k++)
        if (!token(s, n, &i, &t[k], &tl[k]))
            return fail(c, "syslog (RFC 5424) header is incomplete");
    if (!all_digits(t[0], tl[0]) || tl[0] > 2)
        return fail(c, "bad syslog version");
    if (!(tl[1] == 1 && t[1][0] == '-') && !set_time(c, c->tf_rfc3339, t[1], tl[1]))
        return fail(c, "syslog timestamp is not RFC 3339");
    if (!put_pri(c, pri) || !MARS_PARSE_PUT(c, 0, "version", MARS_FIELD_NUMBER, t[0], tl[0]))
        return -EINVAL;
    for (int k = 2; k < 6; k++) {
        bool num = k == 4 && all_digits(t[k], tl[k]);
        if (!(tl[k] == 1 && t[k][0] == '-') &&
            !mars_parse_put(c, 0, names[k], strlen(names[k]),
                            num ? MARS_FIELD_NUMBER : MARS_FIELD_STRING, t[k], tl[k]))
            return -EINVAL;
    }
    if (structured_data(c, s, n, &i))
        return -EINVAL;
    if (i < n && s[i] != ' ')
        return fail(c, "expected a space after syslog structured data");
    i += i < n;
    if (n - i >= 3 && memcmp(s + i, "\xEF\xBB\xBF", 3) == 0)
        i += 3;
    return put_str(c, "message", s + i, n - i) ? 0 : -EINVAL;
}

/* TAG[PID]: at s[i]; returns where the message starts, or i when there is no tag. */
static size_t bsd_tag(struct mars_parse_ctx *c, const char *s, size_t n, size_t i, bool *ok)
{
    size_t st = i, pe = 0, ps = 0;
    *ok = true;
    while (i < n && s[i] != ':' && s[i] != '[' && s[i] != ' ')
        i++;
    size_t te = i;
    if (i < n && s[i] == '[') {
        ps = ++i;
        while (i < n && s[i] != ']' && s[i] != ' ')
            i++;
        if (i >= n || s[i] != ']')
            return st;
        pe = i++;
    }
    if (te == st || i >= n || s[i] != ':')
        return st;
    i++;
    *ok = put_str(c, "appname", s + st, te - st) &&
          (pe == 0 ||
           MARS_PARSE_PUT(c, 0, "procid",
                          all_digits(s + ps, pe - ps) ? MARS_FIELD_NUMBER : MARS_FIELD_STRING,
                          s + ps, pe - ps));
    return i < n && s[i] == ' ' ? i + 1 : i;
}

static int rfc3164(struct mars_parse_ctx *c, const char *s, size_t n, size_t i, int pri)
{
    const char *host;
    size_t hl, k = i;
    /* "Mmm dd hh:mm:ss" is 15 bytes; an RFC 3339 time is one token */
    if (n - i >= 16 && s[i + 15] == ' ' && set_time(c, c->tf_bsd, s + i, 15)) {
        i += 16;
    } else {
        const char *t;
        size_t tl;
        if (!token(s, n, &k, &t, &tl) || !set_time(c, c->tf_rfc3339, t, tl))
            return fail(c, "syslog (RFC 3164) line without a timestamp");
        i = k;
    }
    if (!token(s, n, &i, &host, &hl))
        return fail(c, "syslog (RFC 3164) line without a hostname");
    if ((pri >= 0 && !put_pri(c, pri)) || !put_str(c, "hostname", host, hl))
        return -EINVAL;
    bool ok;
    i = bsd_tag(c, s, n, i, &ok);
    if (!ok || !put_str(c, "message", s + i, n - i))
        return -EINVAL;
    return 0;
}

int mars_parse_syslog(struct mars_parse_ctx *c, const char *s, size_t n)
{
    size_t i = 0;
    int pri = priority(s, n, &i);
    if (pri == -2)
        return fail(c, "bad syslog priority");
    if (pri >= 0 && i + 1 < n && s[i] >= '1' && s[i] <= '9' &&
        (s[i + 1] == ' ' || (s[i + 1] >= '0' && s[i + 1] <= '9')))
        return rfc5424(c, s, n, i, pri);
    return rfc3164(c, s, n, i, pri);
}

/* ---- nginx and apache combined ---- */

/* "..." at s[*i]: a backslash escapes the next byte (apache writes \"). Quotes are found
 * with memchr; one preceded by an odd run of backslashes is escaped and skipped. */
static bool quoted(const char *s, size_t n, size_t *i, const char **v, size_t *vl)
{
    if (*i >= n || s[*i] != '"')
        return false;
    size_t st = ++*i;
    for (;;) {
        const char *q = memchr(s + *i, '"', n - *i);
        if (!q)
            return false;
        size_t k = (size_t)(q - s), bs = 0;
        while (k - bs > st && s[k - bs - 1] == '\\')
            bs++;
        *i = k + 1;
        if (bs % 2 == 0) {
            *v = s + st;
            *vl = k - st;
            return true;
        }
    }
}

static bool space(const char *s, size_t n, size_t *i)
{
    if (*i >= n || s[*i] != ' ')
        return false;
    ++*i;
    return true;
}

/* "METHOD PATH PROTOCOL" -> method, path, protocol (when the request has that shape). */
static bool request_parts(struct mars_parse_ctx *c, const char *r, size_t n)
{
    const char *sp1 = memchr(r, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(r + n - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == r || sp2 == sp1 + 1 || sp2 + 1 == r + n)
        return true;
    for (const char *p = r; p < sp1; p++)
        if (*p < 'A' || *p > 'Z')
            return true;
    return put_str(c, "method", r, (size_t)(sp1 - r)) &&
           put_str(c, "path", sp1 + 1, (size_t)(sp2 - sp1 - 1)) &&
           put_str(c, "protocol", sp2 + 1, (size_t)(r + n - sp2 - 1));
}

static int combined(struct mars_parse_ctx *c, const char *s, size_t n, bool apache)
{
    const char *client, *ident, *user, *req, *status, *size, *ref, *agent, *xff = NULL;
    size_t cl, il, ul, rl, stl, szl, refl, al, xl = 0, i = 0;
    if (!token(s, n, &i, &client, &cl) || !token(s, n, &i, &ident, &il) ||
        !token(s, n, &i, &user, &ul) || i >= n || s[i] != '[')
        return fail(c, "not a combined log line (ADDR IDENT USER [TIME] ...)");
    const char *close = memchr(s + i, ']', n - i);
    if (!close || !set_time(c, c->tf_clf, s + i + 1, (size_t)(close - s - i - 1)))
        return fail(c, "combined log time is not [dd/Mmm/yyyy:hh:mm:ss +zzzz]");
    i = (size_t)(close - s) + 1;
    if (!space(s, n, &i) || !quoted(s, n, &i, &req, &rl) || !space(s, n, &i) ||
        !token(s, n, &i, &status, &stl) || !token(s, n, &i, &size, &szl) ||
        !quoted(s, n, &i, &ref, &refl) || !space(s, n, &i) || !quoted(s, n, &i, &agent, &al))
        return fail(c, "not a combined log line (\"REQUEST\" STATUS BYTES \"REFERER\" \"AGENT\")");
    bool has_xff = !apache && space(s, n, &i) && quoted(s, n, &i, &xff, &xl);
    if (i != n)
        return fail(c, "unexpected bytes after the combined log fields");
    if (!all_digits(status, stl) || stl != 3 ||
        (!all_digits(size, szl) && !(szl == 1 && size[0] == '-')))
        return fail(c, "combined log status or size is not a number");
    bool ok = put_str(c, "client", client, cl) &&
              (!apache || put_unless_nil(c, "ident", ident, il)) &&
              put_unless_nil(c, "user", user, ul) && put_str(c, "request", req, rl) &&
              request_parts(c, req, rl) &&
              MARS_PARSE_PUT(c, 0, "status", MARS_FIELD_NUMBER, status, stl) &&
              MARS_PARSE_PUT(c, 0, "size", MARS_FIELD_NUMBER, size[0] == '-' ? "0" : size,
                             size[0] == '-' ? 1 : szl) &&
              put_unless_nil(c, "referer", ref, refl) && put_unless_nil(c, "agent", agent, al) &&
              (!has_xff || put_unless_nil(c, "forwarded_for", xff, xl));
    return ok ? 0 : -EINVAL;
}

int mars_parse_nginx(struct mars_parse_ctx *c, const char *s, size_t n)
{
    return combined(c, s, n, false);
}

int mars_parse_apache(struct mars_parse_ctx *c, const char *s, size_t n)
{
    return combined(c, s, n, true);
}
