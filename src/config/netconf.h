/*
 * netconf.h - option sections shared by every network sink and source: `tls`, `auth`,
 * and the `compression` choice. A component puts them in its schema as sections
 * ({.name = "tls", .type = MARS_OPT_SECTION, .sub = mars_tls_options, ...}) so every
 * component spells and documents them the same way.
 */
#ifndef MARS_NETCONF_H
#define MARS_NETCONF_H

#include <stdbool.h>

#include "core/compress.h"
#include "core/http_client.h"
#include "core/tls.h"
#include "core/schema.h"

struct mars_tls_conf {
    bool enabled; /* tcp/mars: use TLS; http: implied by https:// */
    bool verify;  /* default true */
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
};
extern const struct mars_opt mars_tls_options[];

enum mars_auth_strategy { MARS_AUTH_NONE, MARS_AUTH_BASIC, MARS_AUTH_BEARER };
struct mars_auth_conf {
    int strategy; /* enum mars_auth_strategy */
    char *user;
    char *password; /* secret */
    char *token;    /* secret */
};
extern const struct mars_opt mars_auth_options[];

/* Choices of a `compression` option, in enum mars_codec order (core/compress.h). */
extern const char *const mars_compression_names[];

/* Cross-option checks (cert without key, basic without user, ...): adds errors at node's
 * position and returns -EINVAL. `tls` or `auth` may be NULL. */
struct mars_cfg_node;
struct mars_diag;
int mars_netconf_check(const struct mars_tls_conf *tls, const struct mars_auth_conf *auth,
                       const struct mars_cfg_node *node, struct mars_diag *diag);

/* "host:port" or "[v6]:port" into host and port (NUL-terminated). The host may be empty
 * and the port 0 (listeners: any address, any port). Returns 0 or -EINVAL (malformed, a
 * bare IPv6 address, a port outside 0..65535, or a buffer too small). */
int mars_netconf_split_address(const char *text, char *host, size_t hcap, char *port, size_t pcap);
/* The check hook's part for an `address` option to connect to (host and a port 1..65535
 * required): adds the error at the option's position and returns -EINVAL. */
int mars_netconf_check_address(const char *address, const struct mars_cfg_node *node,
                               struct mars_diag *diag);

/* Fills an HTTP client TLS description from the section (strings borrowed from conf) and
 * logs the one warning when verification is off. */
void mars_netconf_http_tls(const struct mars_tls_conf *conf, const char *component_id,
                           struct mars_http_tls *out);

/* Fills the settings of a mars socket TLS ctx (core/tls.h) from the section (strings
 * borrowed from conf); mars_tls_ctx_create() logs the warning when verify is off. */
void mars_netconf_tls(const struct mars_tls_conf *conf, struct mars_tls_opts *out);

#endif
