/*
 * spawn.c - mars_spawn_captured() (contract in spawn.h): posix_spawnp with a pipe for the
 * child's output, used by the health_check exec probe and apollo_files' on_change.
 *
 * The child gets mars's environment less what mars added for itself
 * (GNUTLS_NO_IMPLICIT_INIT, core/curl_api.h).
 *
 * Thread: any.
 */
#include "core/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/curl_api.h"

extern char **environ;

/* environ without the variable mars added, or environ itself; free() it when != environ. */
static char **child_env(void)
{
    const char *added = mars_curl_env_added();
    if (!added)
        return environ;
    size_t n = 0, len = strlen(added);
    while (environ[n])
        n++;
    char **env = malloc((n + 1) * sizeof(*env));
    if (!env)
        return environ;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], added, len) != 0 || environ[i][len] != '=')
            env[k++] = environ[i];
    env[k] = NULL;
    return env;
}

int mars_spawn_captured(char *const argv[], pid_t *pid, int *out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int pfd[2];

    *pid = -1;
    if (pipe2(pfd, O_CLOEXEC))
        return -errno;
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    char **env = child_env();
    int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, env);
    if (env != environ)
        free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pfd[1]);
    if (rc) {
        *pid = -1;
        close(pfd[0]);
        return -rc;
    }
    *out_fd = pfd[0];
    return 0;
}
