/*
 * curl_api.h - libcurl, loaded when the first component that speaks HTTP starts.
 *
 * mars does not link libcurl: a pipeline without HTTP (files into tcp, kafka, another
 * mars) never maps it, nor the ~25 libraries it pulls in (GnuTLS, Kerberos, LDAP, SSH,
 * ...), which were ~3.8 MiB of every process's resident memory and most of its start-up
 * relocations. mars_curl_load() opens libcurl.so.4 once and fills a table with the
 * functions mars calls; this header then names each libcurl function after its entry,
 * so the code that uses libcurl reads as it always did:
 *
 *     #include "core/curl_api.h"
 *
 *     if (mars_curl_load(err, sizeof(err)))
 *         return -1;           // err says why ("libcurl.so.4: cannot open ...")
 *     CURL *e = curl_easy_init();
 *
 * Every libcurl call must come after a mars_curl_load() that returned 0. A function mars
 * starts to call goes into MARS_CURL_FUNCS below (its prototype comes from curl.h).
 * GnuTLS, which libcurl's dependencies bring along and mars never uses, is loaded with its
 * implicit initialisation off: main() calls mars_curl_env_init() first thing.
 *
 * Thread: mars_curl_load() from any thread (the load runs once); the table is read-only
 * afterwards. mars_curl_env_init() only before threads start.
 */
#ifndef MARS_CURL_API_H
#define MARS_CURL_API_H

#include <stddef.h>

#include <curl/curl.h>

/* The soname opened; the runtime package must provide it (deploy/, cmake/install.cmake). */
#define MARS_CURL_SONAME "libcurl.so.4"

#define MARS_CURL_FUNCS(X)                                                                         \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_strerror)                                                                          \
    X(curl_free)                                                                                   \
    X(curl_global_init)                                                                            \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_assign)                                                                           \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_init)                                                                             \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_socket_action)                                                                    \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_get)                                                                                \
    X(curl_url_set)                                                                                \
    X(curl_version_info)

/* One pointer per function, typed from curl.h's own prototype. */
#define MARS_CURL_ENTRY(name) __typeof__(&name) name;
struct mars_curl_api {
    MARS_CURL_FUNCS(MARS_CURL_ENTRY)
};
#undef MARS_CURL_ENTRY

extern struct mars_curl_api mars_curl;

/* Sets GNUTLS_NO_IMPLICIT_INIT=1 unless the environment has it. Call before any thread
 * starts (setenv is not safe beside getenv in other threads). */
void mars_curl_env_init(void);

/* The name of the variable mars_curl_env_init() added, or NULL (none, or the user's own):
 * processes mars starts get their environment without it. */
const char *mars_curl_env_added(void);

/* Opens libcurl, fills mars_curl and initialises libcurl (curl_global_init), once per
 * process. Returns 0, or -1 with why in err (the same answer on every later call). */
int mars_curl_load(char *err, size_t errlen);

/* From here on each libcurl name is its table entry (curl.h's type-checking macros for
 * curl_easy_setopt and friends give way to them); curl_api.c, which fills the table by
 * member name, goes without, and so does cppcheck (scripts/cppcheck.sh defines
 * __CPPCHECK__): it reads no system header, and calls through these pointers sent its
 * 2.10 into a loop of many minutes on http_client.c, where plain calls take 0.1 s. */
#if !defined(MARS_CURL_API_IMPL) && !defined(__CPPCHECK__)
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_easy_cleanup        (*mars_curl.curl_easy_cleanup)
#define curl_easy_getinfo        (*mars_curl.curl_easy_getinfo)
#define curl_easy_init           (*mars_curl.curl_easy_init)
#define curl_easy_perform        (*mars_curl.curl_easy_perform)
#define curl_easy_setopt         (*mars_curl.curl_easy_setopt)
#define curl_easy_strerror       (*mars_curl.curl_easy_strerror)
#define curl_free                (*mars_curl.curl_free)
#define curl_global_init         (*mars_curl.curl_global_init)
#define curl_multi_add_handle    (*mars_curl.curl_multi_add_handle)
#define curl_multi_assign        (*mars_curl.curl_multi_assign)
#define curl_multi_cleanup       (*mars_curl.curl_multi_cleanup)
#define curl_multi_info_read     (*mars_curl.curl_multi_info_read)
#define curl_multi_init          (*mars_curl.curl_multi_init)
#define curl_multi_remove_handle (*mars_curl.curl_multi_remove_handle)
#define curl_multi_setopt        (*mars_curl.curl_multi_setopt)
#define curl_multi_socket_action (*mars_curl.curl_multi_socket_action)
#define curl_slist_append        (*mars_curl.curl_slist_append)
#define curl_slist_free_all      (*mars_curl.curl_slist_free_all)
#define curl_url                 (*mars_curl.curl_url)
#define curl_url_cleanup         (*mars_curl.curl_url_cleanup)
#define curl_url_get             (*mars_curl.curl_url_get)
#define curl_url_set             (*mars_curl.curl_url_set)
#define curl_version_info        (*mars_curl.curl_version_info)
#endif

#endif
