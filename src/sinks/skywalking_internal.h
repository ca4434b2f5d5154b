/*
 * skywalking_internal.h - what the files of the `skywalking` sink share: the options,
 * the per-instance state, the shared (per sink) identity, and the management and meter
 * parts (skywalking_mgmt.c, skywalking_meter.c) that skywalking.c drives.
 *
 * Thread: the sink's worker, except struct sw_shared (any thread, under its lock).
 */
#ifndef MARS_SINKS_SKYWALKING_INTERNAL_H
#define MARS_SINKS_SKYWALKING_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ev.h"
#include "core/grpc.h"
#include "core/http_client.h"
#include "component.h"
#include "sinks/skywalking.h"

enum sw_transport { SW_GRPC, SW_HTTP };
enum sw_protocol { SW_V8, SW_V6 };
enum sw_body { SW_BODY_TEXT, SW_BODY_JSON };

struct sw_conf {
    char *address;
    char *service;
    char *instance;
    char *layer;
    char *token;
    int transport; /* enum sw_transport */
    int protocol;  /* enum sw_protocol */
    int body;      /* enum sw_body */
    char *endpoint_field;
    struct mars_strlist tags;
    int64_t keepalive_interval;
    bool meters;
    int64_t max_services;
    struct mars_tls_conf tls;
};

/* The options and their check (skywalking_conf.c). */
extern const struct mars_opt mars_skywalking_options[];
int mars_skywalking_check(void *conf, const struct mars_cfg_node *node, struct mars_diag *diag);

/* One PHP app registered in the background for the apm_socket source (skywalking_apps.c):
 * a service named after its app_code, with this sink's instance name. */
enum sw_app_state { SW_APP_NEW, SW_APP_SERVICE, SW_APP_READY };
struct sw_app {
    char name[256];
    enum sw_app_state state; /* NEW: report (v8) / service register (v6); SERVICE: v6
                              * instance register; READY: keepalive / ping */
    bool registered;
    int32_t service_id, instance_id; /* v6 */
    unsigned pings;                  /* since the last property report (v8) */
    int64_t due_ns;                  /* next call, on the owner's loop clock; 0: at once */
};

/* The identity of one sink, shared by its instances on every worker (sinks/skywalking.h). */
struct sw_shared {
    pthread_mutex_t lock;
    atomic_bool owned; /* an instance runs the management calls */
    struct mars_skywalking_ids ids;
    /* apps registered in the background: at most max_apps, never removed (pointers into
     * the array stay valid); 0 when apps get the sink's own identity */
    struct sw_app *apps;
    size_t napps, max_apps;
    struct mars_mseries *overflow; /* mars_skywalking_services_overflow_total */
};

struct sw_sink;

/* The management state machine (register, keep alive; v6 register and ping). Runs in one
 * instance per sink (the owner), on its worker's loop. */
struct sw_mgmt {
    struct sw_sink *sw;
    struct mars_ev_op timer;
    bool timer_armed, stopping;
    int state;      /* enum in skywalking_mgmt.c */
    unsigned ticks; /* keepalives since the last property report */
    struct mars_grpc_call call;
    struct mars_http_req http;
    char *http_body;
    bool http_active;
    struct mars_grpc_buf buf;
    bool auth_warned;
    /* the apps' registrations (skywalking_apps.c): one call at a time, beside mars's own */
    struct mars_ev_op apps_timer;
    bool apps_armed, apps_busy;
    struct mars_grpc_call apps_call;
    struct mars_grpc_buf apps_buf;
    struct sw_app *apps_cur;
    int apps_call_kind; /* enum sw_call */
};

struct sw_sink {
    struct mars_sink *sink;
    const struct sw_conf *conf;
    const char *id;
    char *instance; /* configured, or the pod or host name */
    struct mars_http *http;
    struct mars_http_tls tls;
    struct mars_grpc_channel *ch;
    char *base_url;      /* transport http: http(s)://address */
    const char *hdrs[4]; /* transport http: content type, authentication */
    char *auth_hdr;
    char *auth_md; /* grpc: "authentication: <token>" */
    struct mars_path *endpoint, *trace_id, *segment_id, *span_id;
    struct mars_path **tags;
    size_t ntags;
    struct sw_slot *slots;
    unsigned nslots;
    struct sw_shared *shared;
    bool owner;
    struct sw_mgmt mgmt;
};

/* Management: start from init (the owner only), stop from abort, free from destroy. */
void mars_skywalking_mgmt_start(struct sw_sink *sw);
void mars_skywalking_mgmt_stop(struct sw_sink *sw);
void mars_skywalking_mgmt_fini(struct sw_sink *sw);

/* The management calls, for mars's own instance and the apps' (skywalking_mgmt.c). */
enum sw_call {
    SW_CALL_REPORT,      /* v8 reportInstanceProperties */
    SW_CALL_PING,        /* v8 keepAlive */
    SW_CALL_V6_SERVICE,  /* v6 doServiceRegister */
    SW_CALL_V6_INSTANCE, /* v6 doServiceInstanceRegister (sid) */
    SW_CALL_V6_PING      /* v6 doPing (iid) */
};
const char *mars_skywalking_call_path(enum sw_call c);
/* Appends the call's request for (service, instance) to b. Returns 0 or -ENOMEM. */
int mars_skywalking_call_encode(struct sw_sink *sw, enum sw_call c, const char *service,
                                const char *instance, int32_t sid, int32_t iid,
                                struct mars_grpc_buf *b);
/* The id a v6 register answer (SW_CALL_V6_SERVICE or _INSTANCE) gives `want`, or 0. */
int32_t mars_skywalking_v6_mapped(enum sw_call c, const struct mars_grpc_result *res,
                                  const char *want);
/* True when a v6 ping answer asks for a new registration (ServiceMetadataReset). */
bool mars_skywalking_v6_reset(const struct mars_grpc_result *res);

/* The apps' background registration (skywalking_apps.c), run by the owner beside its
 * own: start from mars_skywalking_mgmt_start, stop from _stop, free from _fini. */
void mars_skywalking_apps_start(struct sw_sink *sw);
void mars_skywalking_apps_stop(struct sw_sink *sw);
void mars_skywalking_apps_fini(struct sw_sink *sw);

/* The shared identity: acquire at init (creates it on first use), release at destroy. */
struct sw_shared *mars_skywalking_shared_acquire(struct sw_sink *sw);
void mars_skywalking_shared_release(struct sw_sink *sw);

/* Appends the request's metric events as one MeterDataCollection message to b. Sets
 * *n to the number of meters written and *skipped to the summaries left out (SkyWalking
 * has no summary). Returns 0 or -ENOMEM. */
int mars_skywalking_meter_encode(struct sw_sink *sw, const struct mars_sink_req *r,
                                 struct mars_grpc_buf *b, uint64_t *n, uint64_t *skipped);

/* Appends the request's trace events (MARS_EVF_TRACE) as TraceSegmentReportService/collect
 * messages to b: SegmentObject on v8, V6UpstreamSegment on v6 (skywalking_trace.c). Sets
 * *n to the segments written and *bad to the records that could not be converted (skipped).
 * Returns 0 or -ENOMEM. */
int mars_skywalking_trace_encode(struct sw_sink *sw, const struct mars_sink_req *r,
                                 struct mars_grpc_buf *b, uint64_t *n, uint64_t *bad);

/* The answer for a gRPC status: OK, RETRY (UNAVAILABLE, transport errors, timeouts) or
 * REJECTED (auth and the rest), logged and kept as the sink's last error. */
enum mars_sink_result mars_skywalking_classify(struct sw_sink *sw, const char *what,
                                               const struct mars_grpc_result *res, uint64_t events);

/* Appends a string literal (without its NUL) to an encoder. */
#define PUT_LIT(e, lit) mars_encoder_put((e), (lit), sizeof(lit) - 1)

/* Milliseconds since the epoch now. */
int64_t mars_skywalking_now_ms(void);

#endif
