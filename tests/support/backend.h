/*
 * backend.h - the ev backend a tests/backend suite runs against: MARS_IO_BACKEND
 * ("libevent" when unset), as ctest sets it for the <name>@io_uring variants.
 */
#ifndef MARS_TEST_BACKEND_H
#define MARS_TEST_BACKEND_H

#include "core/ev.h"

/* The backend to test. When it cannot run here the suite is skipped: a message naming
 * `suite` is printed and the process exits 0 (libevent, which must always work: exit 1). */
const struct mars_ev_backend *mars_test_backend(const char *suite);

#endif
