/*
 * health_probe.h - one probe of the health_check source, shared by health_check.c (the
 * component: options, schedule, debounce, events) and health_probe.c (the probes).
 *
 * A run of a probe: mars_health_probe_run() starts it on the worker's ev loop and arms its timeout;
 * whatever decides first (the probe's own result, the timeout, a stop) records the
 * outcome; the other ops are cancelled; once every op has called back and the child (exec)
 * has been reaped, mars_health_probe_finished() gets the result in p->ok / p->error / p->duration.
 * A probe owns its socket, pipe and child from start to that call.
 */
#ifndef MARS_HEALTH_PROBE_H
#define MARS_HEALTH_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/ev.h"
#include "core/http_client.h"
#include "core/schema.h"
#include "component.h"

enum health_probe_type {
    HEALTH_PROBE_HTTP,
    HEALTH_PROBE_TCP,
    HEALTH_PROBE_EXEC,
    HEALTH_PROBE_PIDFILE
};

struct health_probe_conf {
    char *name;
    int type; /* enum health_probe_type */
    char *url;
    char *address;
    struct mars_strlist command;
    char *path;
    char *expect_status;
    char *expect_body;
    struct mars_strmap headers; /* http: extra request headers */
    int64_t interval, timeout;
    int64_t healthy_threshold, unhealthy_threshold;
    uint64_t max_output;
    struct mars_tls_conf tls; /* http: for https:// URLs */
};

struct health_check;

struct health_probe {
    struct health_check *hc;
    struct mars_ev_loop *loop;
    const struct health_probe_conf *conf;
    /* resolved target (http, tcp) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char **argv;            /* exec: command, NULL-terminated (strings borrowed from conf) */
    struct mars_http *http; /* http: the client (created at the first run) */
    struct mars_http_req hreq;
    struct mars_http_tls htls;
    char **hdrs;     /* http: "Name: value" strings, NULL-terminated (owned) */
    bool http_armed; /* hreq in flight */
    int status_lo, status_hi;
    /* schedule and debounce (health_check.c) */
    struct mars_ev_op tick;
    bool tick_armed;
    enum mars_health_status state;
    uint32_t successes, failures;
    int health_id;
    /* the run in flight (health_probe.c) */
    bool running, decided;
    int64_t started_ns;
    struct mars_ev_op io, deadline;
    bool io_armed, deadline_armed;
    int fd;
    char *buf; /* response or command output, max_output + 1 bytes */
    size_t len, cap;
    uint64_t discarded; /* output beyond max_output */
    char scratch[512];  /* output beyond max_output is read here and dropped */
    pid_t pid;          /* exec: child while not reaped, else -1 */
    bool eof;
    /* outcome */
    bool ok;
    char error[256];
    double duration;
};

/* Parses the target of a check (URL, address, status range) into p and, with `resolve`,
 * resolves a tcp check's host (blocking: at source init; http checks resolve per run in
 * libcurl's resolver thread). Returns 0,
 * -ENOMEM, or -EINVAL with a reason in why. The config check runs it without resolve. */
int mars_health_probe_prepare(struct health_probe *p, const struct health_probe_conf *c,
                              bool resolve, char *why, size_t len);
void mars_health_probe_fini(struct health_probe *p);
/* Starts a run (p must not be running). */
void mars_health_probe_run(struct health_probe *p);
/* Ends a run early (stop): the outcome is "stopped", mars_health_probe_finished() still follows. */
void mars_health_probe_cancel(struct health_probe *p);
/* The source stops for good: the HTTP client drops its connections and loop ops. */
void mars_health_probe_shutdown(struct health_probe *p);

/* health_check.c: a run ended (every op called back, child reaped). */
void mars_health_probe_finished(struct health_probe *p);

#endif
