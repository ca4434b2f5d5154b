/*
 * atomic_file.h - small files whole: replacing one so that readers (and a crash) only ever
 * see the old content or the new, never a mix or a truncated file; comparing one; reading
 * one into memory with a bound.
 *
 * Thread: any. These are synchronous system calls on local files (a few KiB): callers on
 * an ev loop say why that is acceptable where they call them.
 */
#ifndef MARS_ATOMIC_FILE_H
#define MARS_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes data to a temp file beside path (same directory, O_EXCL), fchmod's it to mode,
 * fchown's it to uid:gid unless uid is (uid_t)-1, fsyncs it, renames it over path and
 * fsyncs the directory. On error the temp file is removed and path is untouched.
 * Returns 0 or -errno. */
int mars_file_replace(const char *path, const void *data, size_t n, unsigned mode, uid_t uid,
                      gid_t gid);

/* True when path is a regular file whose content is exactly data[0..n). */
bool mars_file_same(const char *path, const void *data, size_t n);

/* Reads what is left of fd into a malloc'd, NUL-terminated buffer (*out, *len bytes before
 * the NUL). Returns 0, -EFBIG when there are more than max bytes, -ENOMEM or -errno. */
int mars_fd_read_all(int fd, size_t max, char **out, size_t *len);

/* Creates dir and its missing parents with mode. Returns 0 or -errno. */
int mars_mkdir_p(const char *dir, unsigned mode);

#endif
