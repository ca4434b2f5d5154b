/* Unit tests of core/atomic_file.c's bounded whole-file read (mars_fd_read_all). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/atomic_file.h"

/* A temporary file holding n bytes of a pattern, opened for reading at its start. */
static int file_of(size_t n)
{
    char path[] = "/tmp/mars-test-read-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(write(fd, &c, 1), 1);
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void test_read_all(void **state)
{
    (void)state;
    /* sizes around the first buffer (8 KiB) and around the bound */
    static const size_t sizes[] = {0, 1, 8190, 8191, 8192, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], len = 7;
        char *buf = NULL;
        int fd = file_of(n);
        assert_int_equal(mars_fd_read_all(fd, 100000, &buf, &len), 0);
        close(fd);
        assert_int_equal(len, n);
        assert_int_equal(buf[n], '\0');
        for (size_t i = 0; i < n; i++)
            assert_int_equal(buf[i], 'a' + i % 26);
        free(buf);
    }
}

static void test_read_all_bound(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    int fd = file_of(4097);
    assert_int_equal(mars_fd_read_all(fd, 4096, &buf, &len), -EFBIG);
    close(fd);
    assert_null(buf);
    fd = file_of(4096); /* exactly the bound: fine */
    assert_int_equal(mars_fd_read_all(fd, 4096, &buf, &len), 0);
    close(fd);
    assert_int_equal(len, 4096);
    free(buf);
    assert_int_equal(mars_fd_read_all(-1, 4096, &buf, &len), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_all),
        cmocka_unit_test(test_read_all_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
