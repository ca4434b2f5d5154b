/*
 * health_probe.h - one probe of the health_check source, shared by health_check.c (the
 * component: options, schedule, debounce, events) and health_probe.c (the probes).
 *
 * A run of a probe: hc_probe_run() starts it on the worker's ev loop and arms its timeout;
 * whatever decides first (the probe's own result, the timeout, a stop) records the
 * outcome; the other ops are cancelled; once every op has called back and the child (exec)
 * has been reaped, hc_probe_finished() gets the result in p->ok / p->error / p->duration.
 * A probe owns its socket, pipe and child from start to that call.
 */
#ifndef MARS_HEALTH_PROBE_H
#define MARS_HEALTH_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/ev.h"
#include "core/http.h"
#include "core/schema.h"
#include "component.h"

enum hc_type { HC_HTTP, HC_TCP, HC_EXEC, HC_PIDFILE };

struct hc_check_conf {
    char *name;
    int type; /* enum hc_type */
    char *url;
    char *address;
    struct mars_strlist command;
    char *path;
    char *expect_status;
    char *expect_body;
    int64_t interval, timeout;
    int64_t healthy_threshold, unhealthy_threshold;
    uint64_t max_output;
    struct mars_tls_conf tls; /* http: for https:// URLs */
};

struct hc;

struct hc_probe {
    struct hc *hc;
    struct mars_ev_loop *loop;
    const struct hc_check_conf *conf;
    /* resolved target (http, tcp) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char **argv;   /* exec: command, NULL-terminated (strings borrowed from conf) */
    struct mars_http *http; /* http: the client (created at the first run) */
    struct mars_http_req hreq;
    struct mars_http_tls htls;
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
int hc_probe_prepare(struct hc_probe *p, const struct hc_check_conf *c, bool resolve, char *why,
                     size_t len);
void hc_probe_fini(struct hc_probe *p);
/* Starts a run (p must not be running). */
void hc_probe_run(struct hc_probe *p);
/* Ends a run early (stop): the outcome is "stopped", hc_probe_finished() still follows. */
void hc_probe_cancel(struct hc_probe *p);
/* The source stops for good: the HTTP client drops its connections and loop ops. */
void hc_probe_shutdown(struct hc_probe *p);

/* health_check.c: a run ended (every op called back, child reaped). */
void hc_probe_finished(struct hc_probe *p);

#endif
