/*
 * backend.h - the ev backend a tests/backend suite runs against: MARS_IO_BACKEND
 * ("libevent" when unset), as ctest sets it for the <name>@io_uring variants; the loop each
 * test gets (cmocka setup and teardown), running it until a count is reached, and the
 * loopback listener those suites share.
 */
#ifndef MARS_TEST_BACKEND_H
#define MARS_TEST_BACKEND_H

#include <netinet/in.h>
#include <stdint.h>

#include "core/ev.h"

/* The backend to test. When it cannot run here the suite is skipped: a message naming
 * `suite` is printed and the process exits 0 (libevent, which must always work: exit 1). */
const struct mars_ev_backend *mars_test_backend(const char *suite);

/* The loop of the running test, on the backend mars_test_backend() chose. */
extern struct mars_ev_loop *mars_test_loop;
/* cmocka setup: creates mars_test_loop. */
int mars_test_loop_setup(void **state);
/* cmocka teardown: destroys mars_test_loop, or fails when ops are still pending (a failed
 * test left them behind: the loop is not destroyed under them). */
int mars_test_loop_teardown(void **state);
/* Runs mars_test_loop (50 ms waits) until *count reaches want; fails the test after
 * deadline_ns or when a run fails. */
void mars_test_run_until(const int *count, int want, int64_t deadline_ns);

/* A non-blocking TCP socket listening on 127.0.0.1 (a port the kernel picks, written into
 * *addr) with `backlog`; fails the test when it cannot be made. The caller closes it. */
int mars_test_tcp_listener(struct sockaddr_in *addr, int backlog);

#endif
