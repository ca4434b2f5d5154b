/*
 * backend.c - picking the ev backend of a backend suite, each test's loop, and the
 * loopback listener (backend.h).
 */
#include "backend.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

struct mars_ev_loop *mars_test_loop;
static const struct mars_ev_backend *chosen;

const struct mars_ev_backend *mars_test_backend(const char *suite)
{
    const char *name = getenv("MARS_IO_BACKEND");
    char why[256] = "";
    if (name == NULL || name[0] == '\0')
        name = "libevent";
    const struct mars_ev_backend *b = mars_ev_backend_select(name, why, sizeof(why));
    if (b == NULL) {
        printf("SKIP %s for backend \"%s\": %s\n", suite, name, why);
        exit(strcmp(name, "libevent") == 0 ? 1 : 0);
    }
    printf("%s: backend %s (%s)\n", suite, mars_ev_backend_name(b), why);
    chosen = b;
    return b;
}

int mars_test_loop_setup(void **state)
{
    (void)state;
    mars_test_loop = mars_ev_loop_create(chosen);
    return mars_test_loop != NULL ? 0 : -1;
}

int mars_test_loop_teardown(void **state)
{
    (void)state;
    if (mars_ev_pending(mars_test_loop) != 0)
        return -1;
    mars_ev_loop_destroy(mars_test_loop);
    mars_test_loop = NULL;
    return 0;
}

void mars_test_run_until(const int *count, int want, int64_t deadline_ns)
{
    int64_t deadline = mars_ev_clock_ns() + deadline_ns;
    while (*count < want) {
        assert_true(mars_ev_clock_ns() < deadline);
        assert_true(mars_ev_run_once(mars_test_loop, 50000000) >= 0);
    }
}

int mars_test_tcp_listener(struct sockaddr_in *addr, int backlog)
{
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}
