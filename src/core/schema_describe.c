/*
 * schema_describe.c - `mars describe`: the option reference generated from schema tables,
 * as an aligned text table, a Markdown table (docs/ is generated from it and diffed in a
 * test, so the output must stay deterministic) or roff paragraphs for the man page.
 *
 * How it works: the rows are collected first (one per option; nested sections as dotted
 * names, items of section lists as "name[].sub", and an extra "x_file" row for every
 * secret), then printed, because the text table needs the column widths of all rows.
 * A secret's default is never printed.
 *
 * Thread: any; no shared state.
 */
#include "core/schema.h"
#include "core/schema_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

#define NAME_BUF 256

const char *mars_opt_type_name(enum mars_opt_type t)
{
    switch (t) {
    case MARS_OPT_STRING:
        return "string";
    case MARS_OPT_SECRET:
        return "secret";
    case MARS_OPT_INT:
        return "int";
    case MARS_OPT_FLOAT:
        return "float";
    case MARS_OPT_BOOL:
        return "bool";
    case MARS_OPT_SIZE:
        return "size";
    case MARS_OPT_DURATION:
        return "duration";
    case MARS_OPT_ENUM:
        return "enum";
    case MARS_OPT_LIST:
        return "list";
    case MARS_OPT_MAP:
        return "map";
    case MARS_OPT_SECTION:
        return "section";
    case MARS_OPT_SECTION_LIST:
        return "list of sections";
    case MARS_OPT_URL:
        return "url";
    case MARS_OPT_URL_LIST:
        return "list of urls";
    }
    return "?";
}

/* One reference row; all strings owned. def_literal: def is a value (shown as code). */
struct desc_row {
    char *name, *type, *def, *desc;
    bool def_literal;
};

struct desc_rows {
    struct desc_row *v;
    size_t n, cap;
};

/* A default as it is written in YAML between double quotes: control characters escaped
 * ("\n", "\t", "\r", "\xNN"), so a newline default neither breaks a table row nor shows
 * as a blank. Owned. */
static char *escape_default(const char *def)
{
    char *s = malloc(strlen(def) * 4 + 1), *o = s;

    for (const unsigned char *p = (const unsigned char *)def; s && *p; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += sprintf(o, "\\x%02x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    if (s)
        *o = '\0';
    return s;
}

static void add_row(struct desc_rows *rows, char *name, char *type, const char *def,
                    bool def_literal, char *desc)
{
    struct desc_row r = {name, type, escape_default(def), desc, def_literal};

    if (mars_grow(&rows->v, &rows->cap, rows->n + 1, sizeof(*rows->v)) || !name || !type ||
        !r.def || !desc) {
        free(name);
        free(type);
        free(r.def);
        free(desc);
        return;
    }
    rows->v[rows->n++] = r;
}

/* "enum(a|b)", "int(1..256)", "size(1KiB..1GiB)" or the plain type name; owned. */
static char *type_text(const struct mars_opt *o)
{
    char lo[64], hi[64], *s = NULL;

    if (o->type == MARS_OPT_ENUM) {
        size_t len = sizeof("enum()");
        for (size_t i = 0; o->choices && o->choices[i]; i++)
            len += strlen(o->choices[i]) + 1;
        if (!(s = malloc(len)))
            return NULL;
        strcpy(s, "enum(");
        for (size_t i = 0; o->choices && o->choices[i]; i++) {
            if (i)
                strcat(s, "|");
            strcat(s, o->choices[i]);
        }
        strcat(s, ")");
        return s;
    }
    bool bounded =
        o->type == MARS_OPT_INT || o->type == MARS_OPT_SIZE || o->type == MARS_OPT_DURATION;
    if (!bounded || o->min >= o->max)
        return strdup(mars_opt_type_name(o->type));
    mars_schema_bound_text(o, o->min, lo, sizeof(lo));
    if (o->max == INT64_MAX) /* no upper bound: "duration(100ms..)" */
        hi[0] = '\0';
    else
        mars_schema_bound_text(o, o->max, hi, sizeof(hi));
    if (asprintf(&s, "%s(%s..%s)", mars_opt_type_name(o->type), lo, hi) < 0)
        return NULL;
    return s;
}

static char *owned_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *owned_printf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    return rc < 0 ? NULL : s;
}

static void collect_rows(struct desc_rows *rows, const struct mars_opt *schema, const char *prefix)
{
    char name[NAME_BUF];

    for (const struct mars_opt *o = schema; o->name; o++) {
        bool nested = o->type == MARS_OPT_SECTION || o->type == MARS_OPT_SECTION_LIST;
        const char *def = "-";
        bool literal = false;
        if (o->flags & MARS_OPT_REQUIRED) {
            def = "required";
        } else if (o->def && !nested) {
            literal = o->type != MARS_OPT_SECRET;
            def = o->type == MARS_OPT_SECRET ? "(hidden)" : *o->def ? o->def : "\"\"";
        }
        mars_schema_join_name(name, sizeof(name), prefix, o->name);
        add_row(rows, strdup(name), type_text(o), def, literal, strdup(o->desc ? o->desc : ""));
        if (o->type == MARS_OPT_SECRET)
            add_row(rows, owned_printf("%s_file", name), strdup("string"), "-", false,
                    owned_printf("File to read '%s' from, instead of writing it here.", o->name));
        if (o->type == MARS_OPT_SECTION)
            collect_rows(rows, o->sub, name);
        if (o->type == MARS_OPT_SECTION_LIST) {
            char item[NAME_BUF + 2];
            snprintf(item, sizeof(item), "%s[]", name);
            collect_rows(rows, o->sub, item);
        }
    }
}

/* Markdown cell text: '|' escaped, line breaks as spaces. */
static void put_md(const char *s, FILE *f)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
}

static void print_text(const struct desc_rows *rows, FILE *f)
{
    int w[3] = {(int)strlen("OPTION"), (int)strlen("TYPE"), (int)strlen("DEFAULT")};

    for (size_t i = 0; i < rows->n; i++) {
        const char *cols[3] = {rows->v[i].name, rows->v[i].type, rows->v[i].def};
        for (int k = 0; k < 3; k++)
            w[k] = (int)strlen(cols[k]) > w[k] ? (int)strlen(cols[k]) : w[k];
    }
    fprintf(f, "%-*s  %-*s  %-*s  %s\n", w[0], "OPTION", w[1], "TYPE", w[2], "DEFAULT",
            "DESCRIPTION");
    for (size_t i = 0; i < rows->n; i++) {
        const struct desc_row *r = &rows->v[i];
        if (*r->desc)
            fprintf(f, "%-*s  %-*s  %-*s  %s\n", w[0], r->name, w[1], r->type, w[2], r->def,
                    r->desc);
        else
            fprintf(f, "%-*s  %-*s  %s\n", w[0], r->name, w[1], r->type, r->def);
    }
}

static void print_markdown(const struct desc_rows *rows, FILE *f)
{
    fputs("| option | type | default | description |\n", f);
    fputs("| --- | --- | --- | --- |\n", f);
    for (size_t i = 0; i < rows->n; i++) {
        const struct desc_row *r = &rows->v[i];
        fputs("| `", f);
        put_md(r->name, f);
        fputs("` | ", f);
        put_md(r->type, f);
        fputs(r->def_literal ? " | `" : " | ", f);
        put_md(r->def, f);
        fputs(r->def_literal ? "` | " : " | ", f);
        put_md(r->desc, f);
        fputs(" |\n", f);
    }
}

/* roff text: backslashes as \e, line breaks as a visible \n, and a '.' or '\'' that would
 * start a line (a request) kept as text with \&. */
static void put_roff(const char *s, FILE *f)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '\n')
            fputs("\\en", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s == '\r' || *s == '\t' ? ' ' : *s, f);
    }
}

static void print_man(const struct desc_rows *rows, FILE *f)
{
    for (size_t i = 0; i < rows->n; i++) {
        const struct desc_row *r = &rows->v[i];
        fputs(".TP\n.B ", f);
        put_roff(r->name, f);
        fputs("\n", f);
        put_roff(r->type, f);
        if (strcmp(r->def, "-") != 0) {
            fputs(r->def_literal ? ", default \\fB" : ", ", f);
            put_roff(r->def, f);
            fputs(r->def_literal ? "\\fR" : "", f);
        }
        if (*r->desc) {
            fputs(".\n", f);
            put_roff(r->desc, f);
        }
        fputs("\n", f);
    }
}

void mars_schema_describe(const struct mars_opt *schema, const char *prefix,
                          enum mars_describe_format fmt, FILE *f)
{
    struct desc_rows rows = {0};

    collect_rows(&rows, schema, prefix);
    if (fmt == MARS_DESCRIBE_MARKDOWN)
        print_markdown(&rows, f);
    else if (fmt == MARS_DESCRIBE_MAN)
        print_man(&rows, f);
    else
        print_text(&rows, f);
    for (size_t i = 0; i < rows.n; i++) {
        free(rows.v[i].name);
        free(rows.v[i].type);
        free(rows.v[i].def);
        free(rows.v[i].desc);
    }
    free(rows.v);
}
