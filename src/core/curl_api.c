/*
 * curl_api.c - libcurl opened at run time (see curl_api.h).
 *
 * How it works: the first mars_curl_load() opens MARS_CURL_SONAME with dlopen (RTLD_NOW,
 * so a missing symbol fails here and not at a first call; RTLD_LOCAL, so its symbols stay
 * out of the global scope), looks every function of MARS_CURL_FUNCS up into the table and
 * runs curl_global_init, for every user of libcurl in the process. The outcome, and the
 * reason when it failed, are kept: later calls answer the same.
 *
 * libcurl's dependencies on Debian (librtmp, libldap) link GnuTLS, whose constructor
 * initialises it (its RNG, p11-kit's module list: ~1 MiB resident) unless the environment
 * has GNUTLS_NO_IMPLICIT_INIT. mars never calls GnuTLS (libcurl uses OpenSSL), so main()
 * sets the variable at start, before any thread (mars_curl_env_init), and processes mars
 * starts get the environment without it (core/spawn.c asks mars_curl_env_added), unless
 * the user had set it.
 *
 * The test hook curl_soname=PATH opens PATH instead (a missing library's error).
 *
 * Thread: any; the load runs once (pthread_once).
 */
#define MARS_CURL_API_IMPL 1
#include "core/curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/testhook.h"

struct mars_curl_api mars_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256]; /* empty: loaded */
static bool env_added;     /* mars set GNUTLS_NO_IMPLICIT_INIT itself */

#define GNUTLS_VAR "GNUTLS_NO_IMPLICIT_INIT"

void mars_curl_env_init(void)
{
    if (getenv(GNUTLS_VAR) || setenv(GNUTLS_VAR, "1", 1) != 0)
        return;
    env_added = true;
}

const char *mars_curl_env_added(void)
{
    return env_added ? GNUTLS_VAR : NULL;
}

static void load(void)
{
    const char *hook = mars_test_hook("curl_soname");
    const char *soname = hook && *hook ? hook : MARS_CURL_SONAME;
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_err, sizeof(load_err), "cannot load libcurl: %s (install %s)",
                 why ? why : soname, "libcurl4");
        return;
    }
#define MARS_CURL_LOOKUP(name)                                                                     \
    if (!load_err[0] && !(*(void **)&mars_curl.name = dlsym(lib, #name)))                          \
        snprintf(load_err, sizeof(load_err), "cannot load libcurl: %s has no %s", soname, #name);
    MARS_CURL_FUNCS(MARS_CURL_LOOKUP)
#undef MARS_CURL_LOOKUP
    /* on a failure the library stays open: the pointers already set point into it */
    if (load_err[0])
        return;
    CURLcode rc = mars_curl.curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        snprintf(load_err, sizeof(load_err), "libcurl initialisation failed: %s",
                 mars_curl.curl_easy_strerror(rc));
}

int mars_curl_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (!load_err[0])
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", load_err);
    return -1;
}
