/*
 * eureka_internal.h - what the eureka sink's files share:
 *   eureka_conf.c    the options and their cross-checks
 *   eureka_client.c  the registry HTTP client: servers and failover, the instance JSON,
 *                    register / heartbeat / deregister requests and what their answers mean
 *   eureka.c         the sink: the shared registrar, the instance table and each
 *                    instance's state machine, statuses from health_check events, shutdown
 *                    and the hand-over of registrations across a reload
 *   eureka_pods.c    `pods`: instances from the annotated pods of the shared pod watch
 *   eureka_handover.c  the registrations across a reload (the engine's hand-over store)
 */
#ifndef MARS_EUREKA_INTERNAL_H
#define MARS_EUREKA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/ev.h"
#include "core/http_client.h"
#include "core/metrics.h"
#include "component.h"
#include "sources/kubernetes/pods.h"

struct eu_instance_conf {
    char *app;
    char *instance_id;
    char *host_name;
    char *ip;
    int64_t port;
    int64_t secure_port;
    char *vip_address;
    char *secure_vip_address;
    struct mars_strmap metadata;
    char *home_page_url;
    char *status_page_url;
    char *health_check_url;
    char *health_check;
};

struct eu_pods_conf {
    bool enabled;
    struct mars_kubernetes_api_conf api;
    bool on; /* not an option: the section is present and enabled (mars_eureka_check) */
};

struct eu_conf {
    struct mars_strlist servers;
    char *username;
    char *password; /* secret; password_file works too */
    struct mars_tls_conf tls;
    struct mars_seclist instances; /* struct eu_instance_conf */
    int64_t renewal_interval;
    int64_t lease_duration;
    int64_t failback_after;
    int64_t request_timeout;
    int64_t deregister_timeout;
    char *admin_url;
    struct eu_pods_conf pods;
};

extern const struct mars_opt mars_eureka_options[];
int mars_eureka_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

static inline const struct eu_instance_conf *eu_instance_at(const struct eu_conf *c, size_t i)
{
    return (const struct eu_instance_conf *)c->instances.items + i;
}

/* ---- the registrar's state (eureka.c, eureka_client.c, eureka_pods.c) ---- */

enum eu_status { EU_UP, EU_DOWN, EU_STARTING, EU_OUT_OF_SERVICE, EU_UNKNOWN, EU__COUNT };
extern const char *const mars_eureka_status_names[]; /* "UP" ... */

enum eu_op { OP_REGISTER, OP_RENEW, OP_DELETE };
extern const char *const mars_eureka_op_names[]; /* "register", "heartbeat", "deregister" */

/* Bounded failure reasons for mars_eureka_failures_total{reason}. */
enum eu_reason { R_TRANSPORT, R_SERVER_ERROR, R_NOT_FOUND, R_REJECTED, R__COUNT };

/* Where an instance comes from. */
enum eu_origin {
    EU_STATIC,  /* `instances` */
    EU_POD,     /* an annotated pod (`pods`) */
    EU_ADOPTED, /* registered by the engine before a reload, not (yet) claimed by either */
};

/* What is registered: every string owned (mars_eureka_desc_fini). */
struct eu_desc {
    char *app; /* upper-cased, as the server keeps it */
    char *id, *host, *ip, *home, *status_url, *health_url, *vip, *svip;
    int64_t port, secure_port;
    char **mkeys, **mvals;
    size_t nmeta;
    char *health_check; /* the health_check check that drives the status, or NULL */
};

struct eu_server {
    char *url;  /* base without user:pass@ and without a trailing slash */
    char *user; /* NULL: none (or the sink's username) */
    char *password;
};

struct eu_sink;

struct eu_inst {
    struct eu_sink *es;
    struct eu_desc d;
    char *id_esc; /* d.id percent-encoded for a path */
    enum eu_origin origin;
    bool was_pod;                    /* ADOPTED: it was a pod's before the reload */
    bool pod_ready, pod_terminating; /* EU_POD: the pod's state */
    bool pod_pending, seen;          /* seen: in the last pod list (eureka_pods.c) */
    uint64_t hash;                   /* of the registered JSON but its status and times */
    int status;                      /* what the registry was last told (or is about to be) */
    int64_t dirty_ms;                /* lastDirtyTimestamp: when status last changed */
    bool registered, need_register, busy;
    bool removing; /* DELETE, then forget it (a pod gone, an instance a reload dropped) */
    enum eu_op op;
    size_t server;   /* the server of the request in flight */
    unsigned fails;  /* failed requests in a row, for the backoff */
    int64_t next_ns; /* no request before this (monotonic) */
    struct mars_http_req req, del;
    char *url, *del_url, *body;
    struct mars_mseries *m_registered, *m_heartbeats, *m_status[EU__COUNT], *m_fail[R__COUNT];
};

/* Shared by the sink's instances on every worker (mars_shared_acquire): the latest state
 * of each health check the sink's events carried, posted from any worker. */
struct eu_check {
    char *name;
    int status;
};
struct eu_reg {
    struct eu_sink *owner;
    pthread_mutex_t lock;
    struct eu_check *checks;
    size_t nchecks, cap;
};

struct eu_sink {
    struct mars_sink *sink;
    const struct eu_conf *conf;
    struct eu_reg *reg;
    bool owner;
    struct mars_ev_loop *loop;
    struct mars_http *http;
    struct mars_http_tls tls;
    const char *headers[3];
    struct eu_server *servers;
    size_t nservers, cur;
    int64_t failed_over_ns;
    struct eu_inst **inst; /* the owner's instances */
    size_t ninst, cap;
    struct mars_ev_op tick, fin;
    bool tick_armed, fin_armed, stopping;
    unsigned deleting;
    unsigned shard;
    char node_host[256];
    struct mars_mfamily *f_registered, *f_heartbeats, *f_status, *f_fail;
    /* pods (eureka_pods.c) */
    struct mars_kubernetes_pods *pods;
    struct mars_kubernetes_pods_sub *pods_sub;
    uint64_t pods_version;
    bool pods_synced;
};

/* eureka_client.c */
int mars_eureka_parse_server(const char *text, struct eu_server *sv);
/* The desc of static instance conf c (node_host: the default host name). 0 or -ENOMEM. */
int mars_eureka_desc_static(const struct eu_conf *conf, const struct eu_instance_conf *c,
                            const char *node_host, struct eu_desc *d);
void mars_eureka_desc_fini(struct eu_desc *d);
uint64_t mars_eureka_desc_hash(const struct eu_desc *d);
char *mars_eureka_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mars_eureka_escape_segment(const char *s);
/* An owned copy of s in upper (up) or lower case (ASCII), or NULL. */
char *mars_eureka_strdup_case(const char *s, bool up);
void mars_eureka_metrics(struct eu_sink *es);
void mars_eureka_inst_metrics(struct eu_inst *in);
void mars_eureka_set_status_metric(struct eu_inst *in);
void mars_eureka_count_failure(struct eu_inst *in, enum eu_op op, enum eu_reason r);
/* Sends op for in (register, heartbeat or the DELETE of a removing instance). */
void mars_eureka_send(struct eu_inst *in, enum eu_op op);
/* At shutdown: DELETE in with the `del` request; returns 0 when it was sent. */
int mars_eureka_send_delete(struct eu_inst *in, int64_t timeout,
                            void (*done)(struct mars_http_req *, const struct mars_http_resp *));
int64_t mars_eureka_backoff_ns(const struct eu_inst *in);

/* eureka.c: the instance table and state machine */
struct eu_inst *mars_eureka_inst_find(struct eu_sink *es, const char *app, const char *id);
/* Adds an instance with d (taken over; zeroed on return). NULL on -ENOMEM (d freed). */
struct eu_inst *mars_eureka_inst_add(struct eu_sink *es, struct eu_desc *d, enum eu_origin o);
/* Replaces in's desc by d (taken over): registers again when what is sent changed. */
void mars_eureka_inst_update(struct eu_inst *in, struct eu_desc *d);
/* Deregisters in and forgets it (at once when it was never registered). */
void mars_eureka_inst_remove(struct eu_inst *in);
/* The request of in has ended (eureka_client.c): what comes next. */
void mars_eureka_step(struct eu_inst *in);
/* A removing instance's DELETE is done (or given up): frees it. */
void mars_eureka_inst_forget(struct eu_inst *in);

int64_t mars_eureka_wall_ms(void);
/* Check `name` has state st now (if_new: only when it has none yet). Any worker. */
void mars_eureka_reg_post(struct eu_reg *r, const struct mars_slice *name, int st, bool if_new);

/* eureka_handover.c */
/* At a stop for a reload (owner): leaves the registrations for the next engine's sink. */
void mars_eureka_hand_over(struct eu_sink *es);
/* In init (owner), after the static instances: what the last engine's sink registered
 * becomes this sink's. */
void mars_eureka_take_over(struct eu_sink *es);
/* The hand-over store's destroy of what a reload left and no sink took: DELETEs it. */
void mars_eureka_deregister_leftovers(void *obj);

/* eureka_pods.c */
int mars_eureka_pods_start(struct eu_sink *es);
void mars_eureka_pods_stop(struct eu_sink *es);
/* The status a pod instance's pod asks for, or -1 when the pod does not decide it. */
int mars_eureka_pod_status(const struct eu_inst *in);

#endif
