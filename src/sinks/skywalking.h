/*
 * skywalking.h - what other components may ask a `skywalking` sink: the identity it
 * registered with the OAP (service and instance names on v8+, and on v6 the numeric ids
 * the OAP assigned), and that of each PHP app it registers for them in the background. The PHP APM
 * socket answers its clients' register requests from it, so an agent behind mars shows up under the
 * same service and instance as mars's own registration and never registers twice.
 *
 * Where the ids live: in the sink's shared object (one per sink id, refcounted by the
 * engine's mars_shared_acquire table and shared by the sink's instances on every worker),
 * guarded by a mutex. That table already is the engine's one place for objects several
 * workers share, so no SkyWalking-specific registry is added to the engine; readers on any
 * thread get a copy through the function below.
 *
 * Thread: any.
 */
#ifndef MARS_SINKS_SKYWALKING_H
#define MARS_SINKS_SKYWALKING_H

#include <stdbool.h>
#include <stdint.h>

struct mars_obs;

struct mars_skywalking_ids {
    char service[256];
    char instance[256];
    char layer[64];
    int protocol;        /* 6 or 8 (8 stands for every OAP from 8.x on) */
    bool registered;     /* the OAP accepted the registration (v6: both ids known) */
    int32_t service_id;  /* v6 only; 0 until assigned */
    int32_t instance_id; /* v6 only; 0 until assigned */
};

/* Copies the identity of the skywalking sink `sink_id` into *out. Returns 0, or -ENOENT
 * when no such sink runs. */
int mars_skywalking_ids(struct mars_obs *o, const char *sink_id, struct mars_skywalking_ids *out);

/* The identity PHP app `app` (its app_code) has under the skywalking sink `sink_id`: the
 * service named `app` with the sink's instance name, registered with the OAP in the
 * background by the sink (out->registered stays false, and on v6 the ids 0, until the OAP
 * has answered; ask again later). The sink's own identity when `app` is its own service,
 * or when the sink registers no apps (max_services: 0, transport http). Returns 0, -ENOENT
 * when no such sink runs, or -ENOSPC when the sink has max_services apps already (counted
 * in mars_skywalking_services_overflow_total). */
int mars_skywalking_app_ids(struct mars_obs *o, const char *sink_id, const char *app,
                            struct mars_skywalking_ids *out);

#endif
