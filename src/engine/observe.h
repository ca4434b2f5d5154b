/*
 * observe.h - what the engine knows about itself, readable from any thread: the metrics
 * registry and the DESIGN §7 families built from the per-component counters, loop
 * heartbeats, the engine's run state, each component's last error, and the health-check
 * table behind /health/<name>. The engine writes it and the admin API (control/api.c)
 * reads it through the functions here; components reach their part of it through
 * engine/instance.h.
 *
 * One struct mars_obs per engine, created with it and destroyed after every thread that
 * uses it has stopped. Every function here is thread-safe unless it says otherwise.
 */
#ifndef MARS_OBSERVE_H
#define MARS_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/instance.h"

struct evbuffer;
struct mars_engine;
struct mars_metrics;
struct mars_obs;
struct mars_worker;

enum mars_run_state { MARS_RUN_STARTING, MARS_RUN_RUNNING, MARS_RUN_STOPPING };

/* ---- engine side (engine.c, worker.c, sinkq.c) ---- */

/* Returns owned state for e (whose config and workers array must exist), or NULL. */
struct mars_obs *mars_obs_create(struct mars_engine *e);
void mars_obs_destroy(struct mars_obs *o);
void mars_obs_set_state(struct mars_obs *o, enum mars_run_state st);
/* Heartbeat timers: on the worker's own thread after its sources started, and before its
 * loop is drained for the last time. The control loop's from engine.c the same way. */
void mars_obs_worker_start(struct mars_worker *w);
void mars_obs_worker_stop(struct mars_worker *w);
void mars_obs_control_start(struct mars_obs *o, struct mars_ev_loop *loop);
void mars_obs_control_stop(struct mars_obs *o);
/* A sink answered r with res (the sink's worker, from mars_sink_done): batch latency on
 * OK, consecutive failures, last error. */
void mars_obs_sink_result(struct mars_sink *s, const struct mars_sink_req *r,
                          enum mars_sink_result res);

/* ---- readers (control/api.c) ---- */

/* 0 when every live loop turned within api.heartbeat_timeout; otherwise -1 with a reason. */
int mars_obs_healthz(struct mars_obs *o, char *why, size_t len);
/* 0 when running (and, with api.readiness: sinks, no sink is at api.sink_failure_threshold);
 * otherwise -1, a reason and the component at fault ("" if none). */
int mars_obs_readyz(struct mars_obs *o, char *why, size_t len, char *component, size_t clen);
/* Appends the /api/v1/components JSON document to out. Returns 0 or -ENOMEM. */
int mars_obs_components_json(struct mars_obs *o, struct evbuffer *out);

/* ---- last error of a component by node index (any thread; not for per-event paths) ---- */

void mars_obs_set_error(struct mars_obs *o, uint32_t node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ---- health checks (/health/<name>) ---- */

/* Appends {"status":...,...} for name; returns the HTTP status (200 UP, 503 otherwise) or
 * 404 when no check has the name. With name NULL, every check under "components". */
int mars_health_json(struct mars_obs *o, const char *name, struct evbuffer *out);

#endif
