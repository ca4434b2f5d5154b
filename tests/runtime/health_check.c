/*
 * Runtime tests of the health_check source: a tcp check against a listener the test opens,
 * closes and reopens (UP -> DOWN -> UP with debouncing), exec checks that succeed, fail,
 * alternate (never decided: no flapping) and time out (killed), pidfile checks of a live and
 * a dead process, the metric events, /health/<name> on the admin API, and config errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "core/log.h"
#include "httpc.h"
#include "runner.h"

static int setup(void **state)
{
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    mars_capture_setup();
    (void)state;
    return 0;
}

static int listen_on(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}

/* Number of events captured by sink `id` containing s. */
static size_t count_in(const char *id, const char *s)
{
    size_t n = 0, total = mars_capture_count(id);
    for (size_t i = 0; i < total; i++)
        if (strstr(mars_capture_get(id, i), s))
            n++;
    return n;
}

static size_t count_with(const char *s)
{
    return count_in("cap", s);
}

struct want {
    const char *id, *text;
    size_t times;
};

static bool seen(void *arg)
{
    const struct want *w = arg;
    return count_in(w->id, w->text) >= w->times;
}

static void wait_seen_in(const char *id, const char *text, size_t times)
{
    struct want w = {id, text, times};
    mars_wait_until(seen, &w, 20, text);
}

static void wait_seen(const char *text, size_t times)
{
    wait_seen_in("cap", text, times);
}

static void test_tcp_flips_with_debounce(void **state)
{
    int lfd = listen_on(0), port = port_of(lfd);
    char yaml[2048], counter[64];
    snprintf(counter, sizeof(counter), "/tmp/mars-hc-flap-%d", (int)getpid());
    unlink(counter);
    snprintf(yaml, sizeof(yaml),
             "api: {address: \"127.0.0.1:0\"}\n"
             "sources:\n"
             "  hc:\n"
             "    type: health_check\n"
             "    checks:\n"
             "      - {name: port, type: tcp, address: \"127.0.0.1:%d\", interval: 40ms,\n"
             "         timeout: 30ms, healthy_threshold: 2, unhealthy_threshold: 2}\n"
             "      - {name: flappy, type: exec, interval: 20ms, timeout: 1s,\n"
             "         healthy_threshold: 2, unhealthy_threshold: 2,\n"
             "         command: [sh, -c, 'n=$(cat %s 2>/dev/null || echo 0);"
             " echo $((n+1)) > %s; [ $((n %% 2)) -eq 0 ]']}\n"
             "sinks:\n"
             "  cap: {type: capture, inputs: [hc]}\n",
             port, counter, counter);
    struct mars_bg b = {0};
    mars_bg_start(&b, yaml, 1, true);
    const char *api = mars_bg_api(&b);
    struct httpc_resp r;

    wait_seen("health check 'port' (tcp) is UP (2 consecutive successes)", 1);
    wait_seen("mars_health_check_up{check=\"port\",type=\"tcp\"} 1", 1);
    assert_int_equal(httpc_request(api, "GET", "/health/port", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "{\"status\":\"UP\""));
    httpc_resp_fini(&r);

    close(lfd); /* the service goes away */
    wait_seen("health check 'port' (tcp) is DOWN: connect: Connection refused (2 consecutive "
              "failures)",
              1);
    wait_seen("mars_health_check_consecutive_failures{check=\"port\",type=\"tcp\"} 2", 1);
    assert_int_equal(httpc_request(api, "GET", "/health/port", NULL, &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"status\":\"DOWN\""));
    assert_non_null(strstr(r.body, "Connection refused"));
    httpc_resp_fini(&r);

    lfd = listen_on(port); /* and comes back */
    wait_seen("health check 'port' (tcp) is UP", 2);
    assert_int_equal(count_with("health check 'port' (tcp) is DOWN"), 1); /* no flapping */

    /* the alternating command never reaches a threshold: no state change, still UNKNOWN */
    wait_seen("mars_health_check_up{check=\"flappy\",type=\"exec\"} 0", 8);
    assert_int_equal(count_with("health check 'flappy'"), 0);
    assert_int_equal(httpc_request(api, "GET", "/health/flappy", NULL, &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"status\":\"UNKNOWN\""));
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(api, "GET", "/health/none", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_resp_fini(&r);
    assert_int_equal(httpc_request(api, "GET", "/health", NULL, &r), 0);
    assert_int_equal(r.status, 503); /* flappy is not UP */
    assert_non_null(strstr(r.body, "\"port\":{\"status\":\"UP\""));
    httpc_resp_fini(&r);

    mars_bg_stop(&b);
    close(lfd);
    unlink(counter);
    (void)state;
}

static void test_exec_and_pidfile(void **state)
{
    char yaml[2048], live[64], dead[64];
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0); /* child is a pid nobody has now */
    snprintf(live, sizeof(live), "/tmp/mars-hc-live-%d.pid", (int)getpid());
    snprintf(dead, sizeof(dead), "/tmp/mars-hc-dead-%d.pid", (int)getpid());
    FILE *f = fopen(live, "w");
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    f = fopen(dead, "w");
    fprintf(f, "%d\n", (int)child);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "sources:\n"
             "  hc:\n"
             "    type: health_check\n"
             "    checks:\n"
             "      - {name: ok, type: exec, command: ['true'], interval: 50ms}\n"
             "      - {name: bad, type: exec, command: [sh, -c, 'echo broken >&2; exit 7'],\n"
             "         interval: 50ms, unhealthy_threshold: 1}\n"
             "      - {name: slow, type: exec, command: [sleep, '30'], interval: 100ms,\n"
             "         timeout: 50ms, unhealthy_threshold: 1}\n"
             "      - {name: missing, type: exec, command: [/nonexistent/prog], interval: 50ms,\n"
             "         unhealthy_threshold: 1}\n"
             "      - {name: alive, type: pidfile, path: %s, interval: 50ms}\n"
             "      - {name: gone, type: pidfile, path: %s, interval: 50ms,\n"
             "         unhealthy_threshold: 1}\n"
             "sinks:\n"
             "  cap: {type: capture, inputs: [hc]}\n"
             "  events: {type: capture, inputs: [hc], encoding: json}\n",
             live, dead);
    struct mars_bg b = {0};
    mars_bg_start(&b, yaml, 1, false);
    wait_seen("health check 'ok' (exec) is UP", 1);
    wait_seen("health check 'bad' (exec) is DOWN: exit status 7: broken (1 consecutive", 1);
    wait_seen("health check 'slow' (exec) is DOWN: timed out after 50 ms", 1);
    wait_seen("health check 'missing' (exec) is DOWN: cannot run /nonexistent/prog", 1);
    wait_seen("health check 'alive' (pidfile) is UP", 1);
    char want[160];
    snprintf(want, sizeof(want),
             "health check 'gone' (pidfile) is DOWN: process %d from %s is "
             "not running",
             (int)child, dead);
    wait_seen(want, 1);
    wait_seen("mars_health_check_duration_seconds{check=\"slow\",type=\"exec\"}", 2);
    /* the state-change events carry what the eureka sink acts on, as fields */
    wait_seen_in("events", "\"check\":\"ok\",\"type\":\"exec\",\"status\":\"UP\"", 1);
    wait_seen_in("events", "\"check\":\"bad\",\"type\":\"exec\",\"status\":\"DOWN\"", 1);
    wait_seen_in("events", "\"check\":\"gone\",\"type\":\"pidfile\",\"status\":\"DOWN\"", 1);
    mars_bg_stop(&b); /* must not wait for `sleep 30`: the run is cancelled and reaped */
    unlink(live);
    unlink(dead);
    (void)state;
}

static void expect_config_error(const char *checks, const char *msg)
{
    char yaml[1024];
    struct mars_diag d;
    struct mars_config *cfg = NULL;
    snprintf(yaml, sizeof(yaml),
             "sources: {hc: {type: health_check, checks: [%s]}}\n"
             "sinks: {cap: {type: capture, inputs: [hc]}}\n",
             checks);
    mars_diag_init(&d);
    assert_int_not_equal(mars_config_load_string("t.yaml", yaml, &cfg, &d), 0);
    bool found = false;
    for (size_t i = 0; i < mars_diag_count(&d); i++)
        found = found || strstr(d.msgs[i].text, msg);
    if (!found) {
        mars_diag_print(&d, stderr);
        fail_msg("no error containing '%s'", msg);
    }
    mars_diag_fini(&d);
}

static void test_config_errors(void **state)
{
    expect_config_error("{name: a, type: http, url: 'ftp://x/'}", "http:// or https://");
    expect_config_error("{name: a, type: http, url: 'https://x/', tls: {cert_file: /c.pem}}",
                        "cert_file and key_file go together");
    expect_config_error("{name: a, type: http, url: 'http://x/', expect_status: '600'}",
                        "expect_status");
    expect_config_error("{name: a, type: tcp}", "address");
    expect_config_error("{name: a, type: exec}", "command");
    expect_config_error("{name: a, type: pidfile}", "path");
    expect_config_error("{name: a, type: tcp, address: 'x:1'}, {name: a, type: tcp, "
                        "address: 'x:2'}",
                        "used by another check");
    expect_config_error("{name: 'a/b', type: tcp, address: 'x:1'}", "without '/'");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tcp_flips_with_debounce, setup),
        cmocka_unit_test_setup(test_exec_and_pidfile, setup),
        cmocka_unit_test_setup(test_config_errors, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
