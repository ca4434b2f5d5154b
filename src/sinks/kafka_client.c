/*
 * kafka_client.c - the client side the kafka sink and source share: the sasl option
 * section, building (and at config load, checking) a librdkafka configuration from the
 * component's options, librdkafka's log into mars's log, and the eventfd bridge that lets
 * the worker's ev loop serve a librdkafka queue (kafka_client.h says how it works).
 *
 * Thread: mars_kafka_conf_build runs on the control thread at config load and on the
 * worker at instance start; the log callback on librdkafka's threads (mars_log is
 * thread-safe); the bridge on the instance's worker.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "sinks/kafka_client.h"

static const char *const sasl_names[] = {"none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};

#define SOFF(f) offsetof(struct mars_kafka_sasl_conf, f)
const struct mars_opt mars_kafka_sasl_options[] = {
    {.name = "mechanism",
     .type = MARS_OPT_ENUM,
     .offset = SOFF(mechanism),
     .def = "none",
     .choices = sasl_names,
     .desc = "SASL mechanism: none, PLAIN or SCRAM-SHA-256/512 (use TLS with PLAIN)."},
    {.name = "username",
     .type = MARS_OPT_STRING,
     .offset = SOFF(username),
     .desc = "SASL user name."},
    {.name = "password",
     .type = MARS_OPT_SECRET,
     .offset = SOFF(password),
     .desc = "SASL password; password_file reads it from a file."},
    {.name = NULL},
};

/* ---- configuration ---- */

int mars_kafka_conf_error(const struct mars_cfg_node *node, const char *name,
                          struct mars_diag *diag, const char *fmt, ...)
{
    const struct mars_cfg_node *at =
        name ? mars_cfg_key_at(node, "librdkafka", name) : mars_cfg_at(node, "librdkafka", NULL);
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (diag && at)
        mars_diag_add(diag, at->file, at->line, at->col, "%s", msg);
    return -EINVAL;
}

/* Sets one property; reports a failure (at librdkafka.<name> when the user wrote it). */
static int set(rd_kafka_conf_t *conf, const char *name, const char *value, bool user,
               const struct mars_cfg_node *node, struct mars_diag *diag, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, why, sizeof(why));
    if (res == RD_KAFKA_CONF_OK)
        return 0;
    if (err && !diag)
        snprintf(err, errlen, "librdkafka property %s: %s", name, why);
    if (diag)
        mars_kafka_conf_error(node, user ? name : NULL, diag, "librdkafka property %s: %s", name,
                              why);
    return -EINVAL;
}

static char *join_brokers(const struct mars_strlist *l)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *s = calloc(1, len);
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, l->v[i]);
    }
    return s;
}

static bool listed(const char *const *names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

/* brokers, tls, sasl. Returns the number of problems. */
static int set_client(rd_kafka_conf_t *conf, const struct mars_kafka_conf *c,
                      const struct mars_cfg_node *node, struct mars_diag *diag, char *err,
                      size_t errlen)
{
    static const char *const mech[] = {NULL, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    const struct mars_kafka_sasl_conf *sa = &c->sasl;
    int bad = 0;
    char *list = join_brokers(&c->brokers);

    if (c->brokers.n == 0) {
        bad++;
        mars_kafka_conf_error(node, NULL, diag, "brokers: at least one host:port is needed");
        if (err && !diag)
            snprintf(err, errlen, "brokers: at least one host:port is needed");
    }
    for (size_t i = 0; i < c->brokers.n; i++)
        if (diag && mars_netconf_check_address(c->brokers.v[i], node, diag))
            bad++;
    if (!list || set(conf, "bootstrap.servers", list, false, node, diag, err, errlen))
        bad++;
    free(list);
    const char *proto = c->tls.enabled ? (sa->mechanism ? "sasl_ssl" : "ssl")
                                       : (sa->mechanism ? "sasl_plaintext" : "plaintext");
    bad += set(conf, "security.protocol", proto, false, node, diag, err, errlen) != 0;
    if (c->tls.server_name) {
        bad++;
        mars_kafka_conf_error(node, NULL, diag,
                              "tls.server_name: not supported by the kafka client "
                              "(librdkafka verifies each broker's advertised name)");
    }
    if (c->tls.enabled) {
        if (c->tls.ca_file)
            bad +=
                set(conf, "ssl.ca.location", c->tls.ca_file, false, node, diag, err, errlen) != 0;
        if (c->tls.cert_file)
            bad += set(conf, "ssl.certificate.location", c->tls.cert_file, false, node, diag, err,
                       errlen) != 0;
        if (c->tls.key_file)
            bad +=
                set(conf, "ssl.key.location", c->tls.key_file, false, node, diag, err, errlen) != 0;
        bad += set(conf, "enable.ssl.certificate.verification", c->tls.verify ? "true" : "false",
                   false, node, diag, err, errlen) != 0;
        bad += set(conf, "ssl.endpoint.identification.algorithm", c->tls.verify ? "https" : "none",
                   false, node, diag, err, errlen) != 0;
    }
    if (sa->mechanism) {
        bad +=
            set(conf, "sasl.mechanisms", mech[sa->mechanism], false, node, diag, err, errlen) != 0;
        if (sa->username)
            bad += set(conf, "sasl.username", sa->username, false, node, diag, err, errlen) != 0;
        if (sa->password)
            bad += set(conf, "sasl.password", sa->password, false, node, diag, err, errlen) != 0;
        if (!sa->username || !sa->password) {
            bad++;
            mars_kafka_conf_error(node, NULL, diag, "sasl: username and password are needed");
        }
    }
    return bad;
}

rd_kafka_conf_t *mars_kafka_conf_build(const struct mars_kafka_conf *c, const char *const *fixed,
                                       const char *const *owned, const struct mars_cfg_node *node,
                                       struct mars_diag *diag, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad;

    if (!conf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bad = set_client(conf, c, node, diag, err, errlen);
    for (size_t i = 0; fixed && fixed[i]; i += 2)
        bad += set(conf, fixed[i], fixed[i + 1], false, node, diag, err, errlen) != 0;
    for (size_t i = 0; i < c->librdkafka.n; i++) {
        const char *k = c->librdkafka.keys[i];
        if (listed(owned, k) || !strcmp(k, "bootstrap.servers") ||
            !strcmp(k, "metadata.broker.list")) {
            bad++;
            mars_kafka_conf_error(node, k, diag,
                                  "librdkafka property %s is set by mars (see the component's "
                                  "own options)",
                                  k);
            if (err && !diag)
                snprintf(err, errlen, "librdkafka property %s is set by mars", k);
            continue;
        }
        bad += set(conf, k, c->librdkafka.vals[i], true, node, diag, err, errlen) != 0;
    }
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

long long mars_kafka_conf_int(const rd_kafka_conf_t *conf, const char *name, long long def)
{
    char buf[64];
    size_t len = sizeof(buf);
    if (rd_kafka_conf_get(conf, name, buf, &len) != RD_KAFKA_CONF_OK)
        return def;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end != buf ? v : def;
}

void mars_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *const *idp = rd_kafka_opaque(rk);
    const char *id = idp ? *idp : NULL;
    enum mars_log_level l = level <= 2   ? MARS_LOG_ERROR
                            : level <= 4 ? MARS_LOG_WARN
                            : level <= 6 ? MARS_LOG_INFO
                                         : MARS_LOG_DEBUG;
    MARS_LOG_RL(l, id ? id : "-", "librdkafka %s: %s", fac, buf);
}

/* ---- the ev loop bridge ---- */

static void on_ready(struct mars_ev_op *op, int res)
{
    struct mars_kafka_wake *w = op->data;
    uint64_t v;

    w->armed = false;
    if (res == -ECANCELED || w->stopping)
        return;
    if (read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        mars_error("-", "kafka: eventfd read: %s", strerror(errno));
    w->serve(w->data); /* may call mars_kafka_wake_stop */
    if (w->stopping)
        return;
    mars_ev_prep_poll(&w->op, w->fd, POLLIN, on_ready, w);
    if (mars_ev_submit(w->loop, &w->op) == 0)
        w->armed = true;
}

int mars_kafka_wake_start(struct mars_kafka_wake *w, struct mars_ev_loop *loop, rd_kafka_queue_t *q,
                          void (*serve)(void *data), void *data)
{
    static const uint64_t one = 1;
    int rc;

    memset(w, 0, sizeof(*w));
    w->loop = loop;
    w->serve = serve;
    w->data = data;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return -errno;
    rd_kafka_queue_io_event_enable(q, w->fd, &one, sizeof(one));
    mars_ev_prep_poll(&w->op, w->fd, POLLIN, on_ready, w);
    rc = mars_ev_submit(loop, &w->op);
    if (rc) {
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
        close(w->fd);
        w->fd = -1;
        return rc;
    }
    w->armed = true;
    return 0;
}

void mars_kafka_wake_stop(struct mars_kafka_wake *w)
{
    w->stopping = true;
    if (w->armed)
        mars_ev_cancel(w->loop, &w->op);
}

void mars_kafka_wake_fini(struct mars_kafka_wake *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}
