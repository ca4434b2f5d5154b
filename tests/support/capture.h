/*
 * capture.h - the test-only `capture` sink and helpers for runtime tests.
 *
 * `capture` keeps a copy of every message it receives, per component id, in process
 * memory, so a test can build a pipeline from inline YAML, run it to completion and compare
 * exactly what arrived. Options: `block: true` holds every request (never completes it)
 * until mars_capture_unblock(), to test backpressure; `fail_first: N` answers RETRY to the
 * first N requests, to test engine retries; `encoding: json` keeps each event's JSON
 * encoding (with its parsed fields) instead of its message; mars_capture_fail() makes it fail every
 * request until cleared, a peer that goes down and comes back; `stall: DURATION` blocks its worker
 * thread in the first request, a stuck event loop.
 */
#ifndef MARS_TEST_CAPTURE_H
#define MARS_TEST_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component.h"
#include "config/config.h"
#include "engine/engine.h"

/* Registers `capture` (idempotent) and clears every capture buffer. */
void mars_capture_setup(void);
/* Number of messages captured under id, and the i-th one (NUL-terminated copy, owned by
 * the capture store until the next setup). */
size_t mars_capture_count(const char *id);
const char *mars_capture_get(const char *id, size_t i);
/* Requests currently held by blocking capture sinks, and a release of all of them. */
size_t mars_capture_held(const char *id);
void mars_capture_unblock(const char *id);
uint64_t mars_capture_requests(const char *id);
/* While failing is set, every request of capture sink `id` is answered RETRY (the peer is
 * "down"); clearing it lets the engine's retries through again. */
void mars_capture_fail(const char *id, bool failing);

/* mars_test_run() leaves the admin API off (no on_running hook starts it), so
 * runtime tests never bind 127.0.0.1:8686; tests of the API use mars_bg_start(..., serve_api =
 * true). */
/* Loads yaml (fails the test on a config error), runs it to completion with `workers`
 * workers and returns 0 or the engine's error. Stats of node `stats_of` (if not NULL) are
 * copied to *st before the engine is destroyed. */
int mars_test_run(const char *yaml, unsigned workers, const char *stats_of, struct mars_stats *st);

#endif
