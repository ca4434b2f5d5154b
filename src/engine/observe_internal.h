/*
 * observe_internal.h - the state behind observe.h, shared by observe.c (state, heartbeats,
 * hooks, errors, health, shared objects) and observe_report.c (the /metrics families and
 * the /api/v1/components document). Nothing else includes it.
 */
#ifndef MARS_OBSERVE_INTERNAL_H
#define MARS_OBSERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/metrics.h"
#include "engine/engine_internal.h"
#include "engine/observe.h"

#define HEARTBEAT_NS 1000000000LL
#define MAX_HEALTH   256

struct last_error {
    char msg[256];
    int64_t wall_ns;
    uint64_t count;
};

struct health_entry {
    char name[128];
    char type[16];
    enum mars_health_status status;
    char detail[768];
};

struct shared {
    char key[128];
    void *obj;
    unsigned refs;
};

#define MAX_SHARED 64

struct mars_obs {
    struct mars_engine *e;
    struct mars_metrics *metrics;
    struct mars_mseries **latency; /* per node; sinks only */
    _Atomic int64_t *beats;        /* per worker, then the control loop */
    _Atomic int state;             /* enum mars_run_state */
    int64_t start_wall_ns, start_mono_ns;
    struct mars_ev_loop *control_loop;
    struct mars_ev_op control_beat;
    bool control_armed, control_stopping;
    pthread_mutex_t lock;      /* errors and health */
    struct last_error *errors; /* per node */
    struct health_entry health[MAX_HEALTH];
    int nhealth;
    struct shared shared[MAX_SHARED];
};

/* observe.c */
void mars_obs_node_labels(const struct mars_node *nd, const char **v); /* id, type, kind */
int64_t mars_obs_wall_ns(void);
/* observe_report.c: the registry collector of the engine families (arg: the obs) */
void mars_obs_collect(struct mars_mvisitor *v, void *arg);

#endif
