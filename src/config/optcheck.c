/*
 * optcheck.c - compile-to-check helpers for transform options (see optcheck.h).
 *
 * Thread: the config loader's.
 */
#include "config/optcheck.h"

#include <errno.h>
#include <string.h>

#include "model/condition.h"
#include "model/fields.h"
#include "model/regex.h"
#include "model/template.h"

void mars_cfg_text_pos(const struct mars_cfg_node *n, size_t off, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (n->kind != MARS_CFG_SCALAR || !n->str)
        return;
    if (off > n->len)
        off = n->len;
    const char *nl = NULL;
    for (size_t i = 0; i < off; i++)
        if (n->str[i] == '\n') {
            (*line)++;
            nl = n->str + i;
        }
    if (nl)
        *col = (int)(n->str + off - nl); /* column in a later line (indentation unknown) */
    else
        *col = n->col + (int)off + (n->quoted ? 1 : 0);
}

static void report(struct mars_diag *diag, const struct mars_cfg_node *at, size_t off,
                   const char *what, const char *kind, const char *msg)
{
    int line, col;
    if (at->kind == MARS_CFG_SCALAR)
        mars_cfg_text_pos(at, off, &line, &col);
    else
        line = at->line, col = at->col;
    mars_diag_add(diag, at->file, line, col, "option '%s': %s%s", what, kind, msg);
}

int mars_check_condition(const char *text, const struct mars_cfg_node *at, const char *what,
                         struct mars_diag *diag)
{
    struct mars_cond_error err;
    struct mars_cond *c = mars_cond_compile(text, &err);
    if (c) {
        mars_cond_destroy(c);
        return 0;
    }
    report(diag, at, err.offset, what, "bad condition: ", err.msg);
    return -EINVAL;
}

int mars_check_regex(const char *text, const struct mars_cfg_node *at, const char *what,
                     struct mars_diag *diag)
{
    char why[160];
    size_t off;
    struct mars_regex *r = mars_regex_compile(text, strlen(text), &off, why, sizeof(why));
    if (r) {
        mars_regex_destroy(r);
        return 0;
    }
    report(diag, at, off, what, "bad regular expression: ", why);
    return -EINVAL;
}

int mars_check_path(const char *text, const struct mars_cfg_node *at, const char *what,
                    bool writable, struct mars_diag *diag)
{
    size_t off;
    const char *why;
    struct mars_path *p = mars_path_compile(text, strlen(text), &off, &why);
    if (!p) {
        report(diag, at, off, what, "bad field path: ", why);
        return -EINVAL;
    }
    int rc = 0;
    if (writable && (p->n == 0 || mars_path_has_index(p))) {
        report(diag, at, 0, what, "",
               p->n == 0 ? "a field path is needed here"
                         : "cannot write inside an array (an [index] in the path)");
        rc = -EINVAL;
    }
    mars_path_destroy(p);
    return rc;
}

int mars_check_template(const char *text, const struct mars_cfg_node *at, const char *what,
                        struct mars_diag *diag)
{
    char why[160];
    struct mars_template *t = mars_template_compile(text, 0, why, sizeof(why));
    if (t) {
        mars_template_destroy(t);
        return 0;
    }
    report(diag, at, 0, what, "bad template: ", why);
    return -EINVAL;
}

int mars_check_field_select(const struct mars_strlist *fields, const struct mars_strlist *except,
                            const struct mars_cfg_node *node, struct mars_diag *diag)
{
    if (!fields->n || !except->n)
        return 0;
    const struct mars_cfg_node *n = mars_cfg_at(node, "except_fields", NULL);
    mars_diag_add(diag, n->file, n->line, n->col,
                  "options 'fields' and 'except_fields' exclude each other: set one of them");
    return -EINVAL;
}

int mars_check_key_exclude(const char *key, const char *exclude, const struct mars_cfg_node *node,
                           struct mars_diag *diag)
{
    int rc = 0;
    if (key && mars_check_template(key, mars_cfg_at(node, "key", NULL), "key", diag))
        rc = -EINVAL;
    if (exclude &&
        mars_check_condition(exclude, mars_cfg_at(node, "exclude", NULL), "exclude", diag))
        rc = -EINVAL;
    return rc;
}
