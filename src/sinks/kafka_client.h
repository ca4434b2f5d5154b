/*
 * kafka_client.h - what the kafka sink and the kafka source share: the client option
 * sections (brokers, tls, sasl, librdkafka passthrough), turning them into a librdkafka
 * configuration (checked at config load, so a bad property is a FILE:LINE:COL error), and
 * the bridge that serves a librdkafka queue from the worker's ev loop.
 *
 * The bridge: librdkafka runs its own broker threads, but the callbacks mars cares about
 * (delivery reports, errors, rebalances, fetched messages) are ops on a queue that some
 * thread must serve. rd_kafka_queue_io_event_enable() makes librdkafka write 8 bytes to an
 * eventfd whenever that queue turns non-empty; a POLL op of the worker's loop waits for
 * the eventfd and calls the component's serve function, which drains the queue with
 * non-blocking polls. So every callback runs on the worker thread, between other ops,
 * with no lock and no polling thread of mars's own.
 *
 * Thread: the instance's worker, except mars_kafka_check (control thread, config load).
 */
#ifndef MARS_KAFKA_CLIENT_H
#define MARS_KAFKA_CLIENT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "core/ev.h"
#include "component.h"

enum mars_kafka_sasl_mech {
    MARS_KAFKA_SASL_NONE,
    MARS_KAFKA_SASL_PLAIN,
    MARS_KAFKA_SASL_SCRAM_256,
    MARS_KAFKA_SASL_SCRAM_512,
};

struct mars_kafka_sasl_conf {
    int mechanism; /* enum mars_kafka_sasl_mech */
    char *username;
    char *password; /* secret: password or password_file */
};

struct mars_kafka_conf {
    struct mars_strlist brokers;
    struct mars_tls_conf tls;
    struct mars_kafka_sasl_conf sasl;
    struct mars_strmap librdkafka;
};

extern const struct mars_opt mars_kafka_sasl_options[];

/* The four client options of a component whose conf struct T holds a struct
 * mars_kafka_conf named M, for its option table. */
#define MARS_KAFKA_CLIENT_OPTIONS(T, M)                                                            \
    {.name = "brokers",                                                                            \
     .type = MARS_OPT_LIST,                                                                        \
     .offset = offsetof(T, M.brokers),                                                             \
     .flags = MARS_OPT_REQUIRED,                                                                   \
     .desc = "Bootstrap brokers as host:port; the rest of the cluster is discovered."},            \
        {.name = "tls",                                                                            \
         .type = MARS_OPT_SECTION,                                                                 \
         .offset = offsetof(T, M.tls),                                                             \
         .sub = mars_tls_options,                                                                  \
         .desc = "TLS to the brokers (enabled: true); verify is on by default."},                  \
        {.name = "sasl",                                                                           \
         .type = MARS_OPT_SECTION,                                                                 \
         .offset = offsetof(T, M.sasl),                                                            \
         .sub = mars_kafka_sasl_options,                                                           \
         .desc = "SASL authentication to the brokers (PLAIN or SCRAM)."},                          \
    {                                                                                              \
        .name = "librdkafka", .type = MARS_OPT_MAP, .offset = offsetof(T, M.librdkafka),           \
        .desc = "Any other librdkafka property as name: value, checked at config load."            \
    }

/*
 * Builds a librdkafka configuration: brokers, tls and sasl, then `fixed` (NULL-terminated
 * name, value pairs mars chooses; may be NULL), then the passthrough properties, which may
 * override fixed ones unless the name is in `owned` (NULL-terminated; those are refused).
 * With node and diag (config load) every problem is added at its FILE:LINE:COL and NULL is
 * returned after all were found; without (instance start) the first problem goes to err.
 * Returns an owned conf (rd_kafka_conf_destroy, or hand it to rd_kafka_new) or NULL.
 */
rd_kafka_conf_t *mars_kafka_conf_build(const struct mars_kafka_conf *c, const char *const *fixed,
                                       const char *const *owned, const struct mars_cfg_node *node,
                                       struct mars_diag *diag, char *err, size_t errlen);

/* Reads property `name` of conf as an integer (def when unset or not a number). */
long long mars_kafka_conf_int(const rd_kafka_conf_t *conf, const char *name, long long def);

/* Adds an error at the position of librdkafka.<name> (or of the component) and returns
 * -EINVAL. */
int mars_kafka_conf_error(const struct mars_cfg_node *node, const char *name,
                          struct mars_diag *diag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* librdkafka's log lines into mars's log, named after the component: the client's opaque
 * must point at a struct whose first member is the component id (const char *). */
void mars_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* ---- serving a librdkafka queue from the ev loop ---- */

struct mars_kafka_wake {
    struct mars_ev_loop *loop;
    struct mars_ev_op op;
    int fd; /* eventfd librdkafka writes to */
    bool armed, stopping;
    void (*serve)(void *data); /* drains the queue (rd_kafka_poll(rk, 0) until empty) */
    void *data;
};

/* Arms the bridge for queue q (borrowed; the caller keeps its reference). Returns 0 or
 * -errno. */
int mars_kafka_wake_start(struct mars_kafka_wake *w, struct mars_ev_loop *loop, rd_kafka_queue_t *q,
                          void (*serve)(void *data), void *data);
/* Cancels the POLL op; no serve call comes after its cancellation completes. */
void mars_kafka_wake_stop(struct mars_kafka_wake *w);
/* Closes the eventfd (after stop completed, and after io events were disabled or the
 * client destroyed). */
void mars_kafka_wake_fini(struct mars_kafka_wake *w);

#endif
