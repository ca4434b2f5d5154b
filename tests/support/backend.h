/*
 * backend.h - the ev backend a tests/backend suite runs against: MARS_IO_BACKEND
 * ("libevent" when unset), as ctest sets it for the <name>@io_uring variants; and the
 * loopback listener those suites share.
 */
#ifndef MARS_TEST_BACKEND_H
#define MARS_TEST_BACKEND_H

#include <netinet/in.h>

#include "core/ev.h"

/* The backend to test. When it cannot run here the suite is skipped: a message naming
 * `suite` is printed and the process exits 0 (libevent, which must always work: exit 1). */
const struct mars_ev_backend *mars_test_backend(const char *suite);

/* A non-blocking TCP socket listening on 127.0.0.1 (a port the kernel picks, written into
 * *addr) with `backlog`; fails the test when it cannot be made. The caller closes it. */
int mars_test_tcp_listener(struct sockaddr_in *addr, int backlog);

#endif
