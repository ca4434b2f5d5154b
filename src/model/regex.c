/*
 * regex.c - PCRE2 wrapper (see regex.h): compile + JIT once, match with the regex's own
 * match data, named groups read from the pattern's name table at compile time.
 *
 * The JIT is used when the library has it (pcre2_jit_match skips the argument checks
 * pcre2_match repeats per call); otherwise the interpreter runs the same pattern.
 *
 * Thread: the owner's.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/regex.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct named {
    uint32_t group;
    char *name;
};

struct mars_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    bool jit;
    struct named *names;
    uint32_t nnames;
};

static int load_names(struct mars_regex *r)
{
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0)
        return 0;
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMETABLE, &table);
    r->names = calloc(count, sizeof(*r->names));
    if (!r->names)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e = table + (size_t)i * entry;
        r->names[i].group = (uint32_t)e[0] << 8 | e[1];
        r->names[i].name = strdup((const char *)e + 2);
        if (!r->names[i].name)
            return -ENOMEM;
        r->nnames++;
    }
    /* the table is sorted by name; captures read better in group order */
    for (uint32_t i = 1; i < r->nnames; i++)
        for (uint32_t j = i; j > 0 && r->names[j - 1].group > r->names[j].group; j--) {
            struct named t = r->names[j];
            r->names[j] = r->names[j - 1];
            r->names[j - 1] = t;
        }
    return 0;
}

struct mars_regex *mars_regex_compile(const char *pattern, size_t len, size_t *err_at, char *err,
                                      size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    struct mars_regex *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        *err_at = 0;
        return NULL;
    }
    r->code = pcre2_compile((PCRE2_SPTR)pattern, len, 0, &code, &off, NULL);
    if (!r->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "%s", (const char *)msg);
        *err_at = off;
        free(r);
        return NULL;
    }
    r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!r->md || load_names(r)) {
        snprintf(err, errlen, "out of memory");
        *err_at = 0;
        mars_regex_destroy(r);
        return NULL;
    }
    return r;
}

void mars_regex_destroy(struct mars_regex *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nnames; i++)
        free(r->names[i].name);
    free(r->names);
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->code);
    free(r);
}

int mars_regex_match(struct mars_regex *r, const char *s, size_t n)
{
    int rc = r->jit ? pcre2_jit_match(r->code, (PCRE2_SPTR)s, n, 0, 0, r->md, NULL)
                    : pcre2_match(r->code, (PCRE2_SPTR)s, n, 0, 0, r->md, NULL);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -E2BIG;
}

int mars_regex_find(struct mars_regex *r, const char *s, size_t n, size_t from, size_t *start,
                    size_t *end)
{
    int rc = r->jit ? pcre2_jit_match(r->code, (PCRE2_SPTR)s, n, from, 0, r->md, NULL)
                    : pcre2_match(r->code, (PCRE2_SPTR)s, n, from, 0, r->md, NULL);
    if (rc < 0)
        return rc == PCRE2_ERROR_NOMATCH ? 0 : -E2BIG;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    *start = ov[0];
    *end = ov[1] < ov[0] ? ov[0] : ov[1]; /* \K can end a match before its start */
    return 1;
}

uint32_t mars_regex_names(const struct mars_regex *r)
{
    return r->nnames;
}

const char *mars_regex_name(const struct mars_regex *r, uint32_t i)
{
    return i < r->nnames ? r->names[i].name : NULL;
}

bool mars_regex_named(const struct mars_regex *r, uint32_t i, size_t *start, size_t *len)
{
    if (i >= r->nnames)
        return false;
    uint32_t g = r->names[i].group;
    if (g >= pcre2_get_ovector_count(r->md))
        return false;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    if (ov[2 * g] == PCRE2_UNSET)
        return false;
    *start = ov[2 * g];
    *len = ov[2 * g + 1] - ov[2 * g];
    return true;
}
