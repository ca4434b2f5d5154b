/*
 * netconf.c - the `tls` and `auth` option sections and the compression names shared by
 * network components (see netconf.h). Defaults live here once; components only place the
 * sections in their schemas and call mars_netconf_check() from their check hook.
 */
#include "config/netconf.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define TOFF(f) offsetof(struct mars_tls_conf, f)
const struct mars_opt mars_tls_options[] = {
    {.name = "enabled",
     .type = MARS_OPT_BOOL,
     .offset = TOFF(enabled),
     .def = "false",
     .desc = "Use TLS on the connection (for HTTP, an https:// URL turns it on by itself)."},
    {.name = "verify",
     .type = MARS_OPT_BOOL,
     .offset = TOFF(verify),
     .def = "true",
     .desc = "Verify the peer's certificate and name; turning it off is logged as a warning."},
    {.name = "ca_file",
     .type = MARS_OPT_STRING,
     .offset = TOFF(ca_file),
     .desc = "PEM file of the CAs to trust instead of the system store."},
    {.name = "cert_file",
     .type = MARS_OPT_STRING,
     .offset = TOFF(cert_file),
     .desc = "Client certificate (PEM) for mutual TLS; needs key_file."},
    {.name = "key_file",
     .type = MARS_OPT_STRING,
     .offset = TOFF(key_file),
     .desc = "Private key (PEM) of cert_file."},
    {.name = "server_name",
     .type = MARS_OPT_STRING,
     .offset = TOFF(server_name),
     .desc = "Name sent as SNI and verified in the certificate; default: the host connected to."},
    {.name = NULL},
};

static const char *const auth_names[] = {"none", "basic", "bearer", NULL};

#define AOFF(f) offsetof(struct mars_auth_conf, f)
const struct mars_opt mars_auth_options[] = {
    {.name = "strategy",
     .type = MARS_OPT_ENUM,
     .offset = AOFF(strategy),
     .def = "none",
     .choices = auth_names,
     .desc = "none, basic (user and password) or bearer (token) authentication."},
    {.name = "user",
     .type = MARS_OPT_STRING,
     .offset = AOFF(user),
     .desc = "User name for basic authentication."},
    {.name = "password",
     .type = MARS_OPT_SECRET,
     .offset = AOFF(password),
     .desc = "Password for basic authentication (password_file or ${ENV} keep it out of the "
             "config)."},
    {.name = "token",
     .type = MARS_OPT_SECRET,
     .offset = AOFF(token),
     .desc = "Token for bearer authentication (token_file or ${ENV} keep it out of the "
             "config)."},
    {.name = NULL},
};

const char *const mars_compression_names[] = {"none", "gzip", "zstd", "lz4", NULL};

int mars_netconf_check(const struct mars_tls_conf *tls, const struct mars_auth_conf *auth,
                       const struct mars_cfg_node *node, struct mars_diag *diag)
{
    int rc = 0;
    const struct mars_cfg_node *n;
    if (tls && (tls->cert_file != NULL) != (tls->key_file != NULL)) {
        n = mars_cfg_at(node, "tls", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "tls: cert_file and key_file go together (one of them is missing)");
        rc = -EINVAL;
    }
    if (auth && auth->strategy == MARS_AUTH_BASIC && (!auth->user || !auth->password)) {
        n = mars_cfg_at(node, "auth", NULL);
        mars_diag_add(diag, n->file, n->line, n->col,
                      "auth: strategy basic needs user and password");
        rc = -EINVAL;
    }
    if (auth && auth->strategy == MARS_AUTH_BEARER && !auth->token) {
        n = mars_cfg_at(node, "auth", NULL);
        mars_diag_add(diag, n->file, n->line, n->col, "auth: strategy bearer needs token");
        rc = -EINVAL;
    }
    return rc;
}

int mars_netconf_split_address(const char *text, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *h = text, *sep;
    size_t hl;
    if (*text == '[') { /* [v6]:port */
        sep = strchr(text, ']');
        if (!sep || sep[1] != ':')
            return -EINVAL;
        h = text + 1;
        hl = (size_t)(sep - h);
        sep++;
    } else {
        sep = strchr(text, ':');
        if (!sep || strchr(sep + 1, ':')) /* no port, or an IPv6 address without brackets */
            return -EINVAL;
        hl = (size_t)(sep - text);
    }
    const char *p = sep + 1;
    size_t pl = strlen(p);
    if (hl >= hcap || pl == 0 || pl >= pcap || pl > 5 || strspn(p, "0123456789") != pl ||
        atoi(p) > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

int mars_netconf_check_address(const char *address, const struct mars_cfg_node *node,
                               struct mars_diag *diag)
{
    char host[256], port[8];
    if (!address ||
        (mars_netconf_split_address(address, host, sizeof(host), port, sizeof(port)) == 0 &&
         host[0] && atoi(port) > 0))
        return 0;
    const struct mars_cfg_node *n = mars_cfg_at(node, "address", NULL);
    mars_diag_add(diag, n->file, n->line, n->col,
                  "option 'address': '%s' is not host:port (port 1-65535; [addr]:port for IPv6)",
                  address);
    return -EINVAL;
}

void mars_netconf_http_tls(const struct mars_tls_conf *conf, const char *component_id,
                           struct mars_http_tls *out)
{
    *out = (struct mars_http_tls){.ca_file = conf->ca_file,
                                  .cert_file = conf->cert_file,
                                  .key_file = conf->key_file,
                                  .server_name = conf->server_name,
                                  .verify = conf->verify};
    if (!conf->verify)
        mars_warn(component_id, "TLS certificate verification is off (tls.verify: false): the "
                                "peer is not authenticated");
}

void mars_netconf_tls(const struct mars_tls_conf *conf, struct mars_tls_opts *out)
{
    *out = (struct mars_tls_opts){.verify = conf->verify,
                                  .ca_file = conf->ca_file,
                                  .cert_file = conf->cert_file,
                                  .key_file = conf->key_file};
}
