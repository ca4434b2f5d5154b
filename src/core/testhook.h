/*
 * testhook.h - test-only hooks: the one way a test makes production code take a path this
 * machine would not take by itself (a kernel without io_uring, a ring without its optional
 * features), so fallbacks are tested everywhere. Hooks are not configuration: no user sets
 * them, and nothing else in src/ reads the environment on behalf of tests.
 *
 * Hooks come from env MARS_TEST_HOOKS, a comma-separated list of name=value, read once, at
 * the first lookup:
 *
 *     MARS_TEST_HOOKS=uring_fail=features ctest -R backend/
 *
 * The hooks (a name not in this list makes the whole list invalid):
 *   uring_fail=enosys|eperm  the io_uring probe fails as if io_uring_setup had returned
 *                            ENOSYS (old kernel) or EPERM (seccomp, kernel.io_uring_disabled),
 *                            so `auto` falls back to libevent (core/ev_uring_probe.c)
 *   uring_fail=features      rings report none of the optional features (zero-copy send,
 *                            multishot accept, registered buffers), as on a 5.x kernel
 *                            (core/ev_uring.c)
 *   simd=avx2|none           the JSON escaper uses at most AVX2, or no vector code, on a CPU
 *                            that has more (core/json_escape.c)
 *   curl_soname=PATH         libcurl is opened from PATH instead of libcurl.so.4, to see
 *                            what a machine without it answers (core/curl_api.c)
 * A new hook gets a line here and its name in testhook.c's table.
 *
 * Thread: mars_test_hook() from any thread; mars_test_hooks_set() only while no other
 * thread may look a hook up (a test's own setup).
 */
#ifndef MARS_TESTHOOK_H
#define MARS_TESTHOOK_H

/* The value of hook `name` ("" for a bare name), or NULL when it is not set. An invalid
 * MARS_TEST_HOOKS (unknown name, name given twice, no name, longer than 255 bytes) is
 * ignored as a whole, with one warning. Borrowed: valid until mars_test_hooks_set(). */
const char *mars_test_hook(const char *name);

/* Replaces the hooks with `spec` (MARS_TEST_HOOKS syntax; NULL or "" clears them), for tests
 * that run the code under test in their own process. Returns 0, or -EINVAL with the hooks
 * unchanged when spec is invalid. */
int mars_test_hooks_set(const char *spec);

#endif
