/*
 * metrics_text.c - the Prometheus text exposition format 0.0.4 (../shared/protocols.md §5)
 * as a metrics visitor writing into a libevent evbuffer.
 *
 * Per family: `# HELP name text` (\\ and \n escaped) and `# TYPE name type`, then its
 * samples, so a family is one contiguous block. Samples are `name{l="v",...} value`, label
 * values escaped (\\, \", \n), no timestamps. Histograms write cumulative
 * `name_bucket{...,le="b"}` lines in increasing order, the mandatory le="+Inf" bucket equal
 * to `name_count`, then `name_sum` and `name_count`. Values print exactly for integers and
 * as %.17g otherwise, with NaN, +Inf and -Inf spelled as the format wants.
 *
 * Thread: whoever collects (the admin server's thread, a prometheus_exporter's server).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/ev.h"
#include "core/metrics.h"

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return true;
    return !first && c >= '0' && c <= '9';
}

bool mars_metric_name_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, true))
            return false;
    return true;
}

bool mars_label_name_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, false))
            return false;
    return true;
}

/* The two-byte escape of c, or NULL when c stands as it is. */
static const char *prom_escape_of(char c, bool label_value)
{
    if (c == '\\')
        return "\\\\";
    if (c == '\n')
        return "\\n";
    if (c == '"' && label_value)
        return "\\\"";
    return NULL;
}

int mars_prom_escape(struct evbuffer *out, const char *s, size_t n, bool label_value)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = prom_escape_of(s[i], label_value);
        if (!rep)
            continue;
        if (evbuffer_add(out, s + run, i - run) || evbuffer_add(out, rep, 2))
            return -1;
        run = i + 1;
    }
    return evbuffer_add(out, s + run, n - run);
}

size_t mars_prom_escape_to(char *out, const char *s, size_t n, bool label_value)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = prom_escape_of(s[i], label_value);
        if (rep) {
            out[o++] = rep[0];
            out[o++] = rep[1];
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

size_t mars_fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t mars_prom_format_value(double x, char *buf, size_t len)
{
    if (isnan(x))
        return (size_t)snprintf(buf, len, "NaN");
    if (isinf(x))
        return (size_t)snprintf(buf, len, "%s", x > 0 ? "+Inf" : "-Inf");
    if (x == floor(x) && fabs(x) < 9007199254740992.0) { /* 2^53: exact integers */
        size_t o = 0;
        if (x < 0)
            buf[o++] = '-';
        o += mars_fmt_u64(buf + o, (uint64_t)fabs(x));
        buf[o] = '\0';
        return o;
    }
    /* the shortest form that reads back as the same double (0.005, not 0.00500...01) */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return strlen(buf);
}

static const char *type_name(enum mars_mtype t)
{
    static const char *const names[] = {"counter", "gauge", "histogram", "summary"};
    return names[t];
}

static void put(struct mars_prom_text *t, const char *s, size_t n)
{
    if (!t->err && evbuffer_add(t->out, s, n))
        t->err = -ENOMEM;
}

static void puts_(struct mars_prom_text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void on_family(struct mars_mvisitor *v, const struct mars_mfamily_info *f)
{
    struct mars_prom_text *t = MARS_CONTAINER_OF(v, struct mars_prom_text, v);
    t->family = f->name;
    t->type = f->type;
    puts_(t, "# HELP ");
    puts_(t, f->name);
    put(t, " ", 1);
    if (!t->err && mars_prom_escape(t->out, f->help, strlen(f->help), false))
        t->err = -ENOMEM;
    puts_(t, "\n# TYPE ");
    puts_(t, f->name);
    put(t, " ", 1);
    puts_(t, type_name(f->type));
    put(t, "\n", 1);
}

/* name{labels[,le="le"]} value\n (lname: "le", or "quantile" for summaries) */
static void sample_as(struct mars_prom_text *t, const char *suffix, const struct mars_mlabels *l,
                      const char *lname, const char *le, double x)
{
    char num[64];
    puts_(t, t->family);
    puts_(t, suffix);
    if (l->n || le) {
        put(t, "{", 1);
        for (size_t i = 0; i < l->n; i++) {
            if (i)
                put(t, ",", 1);
            puts_(t, l->names[i]);
            put(t, "=\"", 2);
            if (!t->err && mars_prom_escape(t->out, l->values[i], strlen(l->values[i]), true))
                t->err = -ENOMEM;
            put(t, "\"", 1);
        }
        if (le) {
            puts_(t, l->n ? "," : "");
            puts_(t, lname);
            puts_(t, "=\"");
            puts_(t, le);
            put(t, "\"", 1);
        }
        put(t, "}", 1);
    }
    mars_prom_format_value(x, num, sizeof(num));
    put(t, " ", 1);
    puts_(t, num);
    put(t, "\n", 1);
}

static void sample(struct mars_prom_text *t, const char *suffix, const struct mars_mlabels *l,
                   const char *le, double x)
{
    sample_as(t, suffix, l, "le", le, x);
}

static void on_value(struct mars_mvisitor *v, const struct mars_mlabels *l, double x)
{
    struct mars_prom_text *t = MARS_CONTAINER_OF(v, struct mars_prom_text, v);
    sample(t, "", l, NULL, x);
}

static void on_histogram(struct mars_mvisitor *v, const struct mars_mlabels *l,
                         const double *bounds, const uint64_t *cumulative, size_t nbounds,
                         uint64_t count, double sum)
{
    struct mars_prom_text *t = MARS_CONTAINER_OF(v, struct mars_prom_text, v);
    char le[64];
    for (size_t i = 0; i < nbounds; i++) {
        mars_prom_format_value(bounds[i], le, sizeof(le));
        sample(t, "_bucket", l, le, (double)cumulative[i]);
    }
    sample(t, "_bucket", l, "+Inf", (double)count);
    sample(t, "_sum", l, NULL, sum);
    sample(t, "_count", l, NULL, (double)count);
}

static void on_summary(struct mars_mvisitor *v, const struct mars_mlabels *l, const double *qs,
                       const double *values, size_t nq, uint64_t count, double sum)
{
    struct mars_prom_text *t = MARS_CONTAINER_OF(v, struct mars_prom_text, v);
    char q[64];
    for (size_t i = 0; i < nq; i++) {
        mars_prom_format_value(qs[i], q, sizeof(q));
        sample_as(t, "", l, "quantile", q, values[i]);
    }
    sample(t, "_sum", l, NULL, sum);
    sample(t, "_count", l, NULL, (double)count);
}

void mars_prom_text_init(struct mars_prom_text *t, struct evbuffer *out)
{
    *t = (struct mars_prom_text){
        .v = {.family = on_family,
              .value = on_value,
              .histogram = on_histogram,
              .summary = on_summary},
        .out = out,
        .family = "",
    };
}

int mars_metrics_write_text(struct mars_metrics *m, struct evbuffer *out)
{
    struct mars_prom_text t;
    mars_prom_text_init(&t, out);
    mars_metrics_collect(m, &t.v);
    return t.err;
}
