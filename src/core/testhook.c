/*
 * testhook.c - the test-only hooks of testhook.h: env MARS_TEST_HOOKS parsed once into a
 * small table of name/value pairs kept as offsets into a copy of the text.
 *
 * A spec is parsed into a scratch table and made active only when all of it is valid, so a
 * typo never half-applies; the names a spec may use are listed in `known` below, so a
 * misspelled hook is refused with a warning instead of leaving a test to test the wrong
 * thing.
 *
 * Thread: the first lookup loads the environment under pthread_once; after that lookups
 * only read. mars_test_hooks_set() writes the table: tests call it before any other thread
 * can read it.
 */
#include "core/testhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define MAX_SPEC  256
#define MAX_HOOKS 8

/* Every hook there is; testhook.h says what each one does. */
static const char *const known[] = {"uring_fail", "simd", "curl_soname"};

/* Offsets rather than pointers, so a table is copied by assignment. */
struct hooks {
    char text[MAX_SPEC]; /* the spec, its ',' and first '=' of each entry made NULs */
    unsigned short name_at[MAX_HOOKS], value_at[MAX_HOOKS];
    unsigned n;
};

static struct hooks active;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static bool is_known(const char *name)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(name, known[i]) == 0)
            return true;
    return false;
}

static const char *find(const struct hooks *h, const char *name)
{
    for (unsigned i = 0; i < h->n; i++)
        if (strcmp(h->text + h->name_at[i], name) == 0)
            return h->text + h->value_at[i];
    return NULL;
}

/* Parses spec into *h; 0 or -EINVAL. Every entry must be a known name, once. */
static int parse(const char *spec, struct hooks *h)
{
    size_t len = spec ? strlen(spec) : 0;

    h->n = 0;
    if (len >= sizeof(h->text))
        return -EINVAL;
    memcpy(h->text, spec ? spec : "", len + 1);
    for (size_t at = 0; len > 0 && at <= len;) {
        char *name = h->text + at, *eq;
        size_t n = strcspn(name, ",");

        name[n] = '\0';
        eq = strchr(name, '=');
        if (eq != NULL)
            *eq = '\0';
        if (!is_known(name) || find(h, name) != NULL || h->n == MAX_HOOKS)
            return -EINVAL;
        h->name_at[h->n] = (unsigned short)at;
        /* the value follows the '='; a bare name's is the empty string its NUL ends */
        h->value_at[h->n++] = (unsigned short)(eq != NULL ? (size_t)(eq + 1 - h->text) : at + n);
        at += n + 1;
    }
    return 0;
}

static void load_env(void)
{
    const char *spec = getenv("MARS_TEST_HOOKS");
    struct hooks h;

    if (spec == NULL)
        return;
    if (parse(spec, &h) < 0) {
        mars_warn("-",
                  "MARS_TEST_HOOKS=\"%s\" ignored: want name=value,... with the names "
                  "of core/testhook.h",
                  spec);
        return;
    }
    active = h;
}

const char *mars_test_hook(const char *name)
{
    pthread_once(&env_once, load_env);
    return find(&active, name);
}

int mars_test_hooks_set(const char *spec)
{
    struct hooks h;

    pthread_once(&env_once, load_env); /* so a later first lookup cannot overwrite spec */
    if (parse(spec, &h) < 0)
        return -EINVAL;
    active = h;
    return 0;
}
