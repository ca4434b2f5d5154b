/*
 * backend.c - picking the ev backend of a backend suite (backend.h).
 */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct mars_ev_backend *mars_test_backend(const char *suite)
{
    const char *name = getenv("MARS_IO_BACKEND");
    char why[256] = "";
    if (name == NULL || name[0] == '\0')
        name = "libevent";
    const struct mars_ev_backend *b = mars_ev_backend_select(name, why, sizeof(why));
    if (b == NULL) {
        printf("SKIP %s for backend \"%s\": %s\n", suite, name, why);
        exit(strcmp(name, "libevent") == 0 ? 1 : 0);
    }
    printf("%s: backend %s (%s)\n", suite, mars_ev_backend_name(b), why);
    return b;
}
