/*
 * spawn.h - running a command for mars: no shell, its output captured.
 */
#ifndef MARS_SPAWN_H
#define MARS_SPAWN_H

#include <sys/types.h>

/* Starts argv[0] (searched in PATH) with argv, stdin on /dev/null and stdout and stderr
 * into a pipe, in its own process group, with default signal dispositions and an empty
 * signal mask (mars blocks and ignores signals its commands must not inherit). On success
 * returns 0 with *pid set and *out_fd the pipe's non-blocking read end (owned by the
 * caller: close it; reap the child with waitpid). Returns a negative errno otherwise, with
 * *pid = -1 and nothing to close: -EMFILE or -ENFILE when no pipe could be made, what
 * posix_spawnp said (e.g. -ENOENT) when the command could not be started. */
int mars_spawn_captured(char *const argv[], pid_t *pid, int *out_fd);

#endif
