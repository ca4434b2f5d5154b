/* Unit tests of the checkpoint journal: durability across reopen, torn tails, corrupt
 * headers, an empty journal, compaction, removal and the data_dir lock. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/checkpoint.h"

static char dir[256];
static char journal[512];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/mars-ckpt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(journal, sizeof(journal), "%s/checkpoints/src.journal", dir);
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    (void)state;
    return 0;
}

static struct mars_ckpt *open_store(void)
{
    int err = 0;
    struct mars_ckpt *c = mars_ckpt_acquire(dir, "src", 1000000000, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

static struct mars_ckpt_rec rec(uint64_t ino, uint64_t off)
{
    return (struct mars_ckpt_rec){.key = {.dev = 7, .ino = ino},
                                  .offset = off,
                                  .fp_hash = ino * 3,
                                  .fp_len = 64,
                                  .marker = off ^ 5,
                                  .marker_len = 32,
                                  .updated = 1000};
}

static void test_round_trip(void **state)
{
    struct mars_ckpt *c = open_store();
    assert_true(mars_ckpt_first_start(c));
    for (uint64_t i = 1; i <= 100; i++) {
        struct mars_ckpt_rec r = rec(i, i * 10);
        mars_ckpt_put(c, &r, "/var/log/x.log");
    }
    struct mars_ckpt *same = open_store(); /* shared: one store per id */
    assert_ptr_equal(same, c);
    mars_ckpt_release(same);
    mars_ckpt_release(c); /* last reference: flushed */
    c = open_store();
    assert_false(mars_ckpt_first_start(c));
    assert_int_equal(mars_ckpt_count(c), 100);
    struct mars_ckpt_rec got, want = rec(42, 420);
    assert_true(mars_ckpt_get(c, &want.key, &got));
    assert_memory_equal(&got, &want, sizeof(got));
    struct mars_ckpt_key missing = {.dev = 7, .ino = 1000};
    assert_false(mars_ckpt_get(c, &missing, &got));
    mars_ckpt_release(c);
    (void)state;
}

static void test_torn_tail_truncated(void **state)
{
    struct mars_ckpt *c = open_store();
    struct mars_ckpt_rec a = rec(1, 100), b = rec(2, 200);
    mars_ckpt_put(c, &a, "a");
    assert_int_equal(mars_ckpt_flush(c), 0);
    mars_ckpt_put(c, &b, "b");
    mars_ckpt_release(c);
    struct stat st;
    assert_int_equal(stat(journal, &st), 0);
    /* cut the last record in half: a crash in the middle of a write */
    assert_int_equal(truncate(journal, st.st_size - 20), 0);
    c = open_store();
    struct mars_ckpt_rec got;
    assert_true(mars_ckpt_get(c, &a.key, &got));
    assert_int_equal(got.offset, 100);
    assert_false(mars_ckpt_get(c, &b.key, &got)); /* the torn one is gone, not garbage */
    mars_ckpt_put(c, &b, "b");                    /* and appending works after it */
    mars_ckpt_release(c);
    c = open_store();
    assert_true(mars_ckpt_get(c, &b.key, &got));
    assert_int_equal(got.offset, 200);
    mars_ckpt_release(c);
    /* flip a byte inside the last record: its CRC fails, it is dropped */
    assert_int_equal(stat(journal, &st), 0);
    int fd = open(journal, O_RDWR);
    char x = 0x55;
    assert_int_equal(pwrite(fd, &x, 1, st.st_size - 5), 1);
    close(fd);
    c = open_store();
    assert_true(mars_ckpt_get(c, &a.key, &got));
    assert_int_equal(mars_ckpt_count(c), 1);
    mars_ckpt_release(c);
    (void)state;
}

static void test_bad_header_moved_aside(void **state)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/checkpoints && printf 'garbage!garbage' > %s", dir,
             journal);
    assert_int_equal(system(cmd), 0);
    struct mars_ckpt *c = open_store();
    assert_true(mars_ckpt_first_start(c));
    assert_int_equal(mars_ckpt_count(c), 0);
    mars_ckpt_release(c);
    snprintf(cmd, sizeof(cmd), "ls %s/checkpoints | grep -q 'src.journal.corrupt-'", dir);
    assert_int_equal(system(cmd), 0);
    (void)state;
}

/* Reads what the log wrote to fd since it was set (from the start of the file). */
static void read_log(int fd, char *buf, size_t len)
{
    ssize_t n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* An empty journal (a crash on a file system that lost its data) starts fresh, like every
 * other damage, and says so; a journal that did not exist yet starts fresh silently. */
static void test_empty_journal_warns(void **state)
{
    char cmd[1400], logbuf[4096], path[600], want[800];
    snprintf(path, sizeof(path), "%s/log", dir);
    int lfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(lfd >= 0);
    mars_log_setup(MARS_LOG_WARN, MARS_LOG_TEXT);
    mars_log_set_fd(lfd);

    struct mars_ckpt *c = open_store(); /* no journal yet */
    assert_true(mars_ckpt_first_start(c));
    mars_ckpt_release(c);
    read_log(lfd, logbuf, sizeof(logbuf));
    assert_string_equal(logbuf, "");

    snprintf(cmd, sizeof(cmd), ": > %s", journal); /* it exists, with nothing in it */
    assert_int_equal(system(cmd), 0);
    c = open_store();
    assert_true(mars_ckpt_first_start(c));
    assert_int_equal(mars_ckpt_count(c), 0);
    mars_ckpt_release(c);
    read_log(lfd, logbuf, sizeof(logbuf));
    snprintf(want, sizeof(want),
             "WARN  [src] checkpoint journal %s is empty (a crash on a file system that lost "
             "its data?): starting fresh, files are read from their beginning\n",
             journal);
    assert_non_null(strstr(logbuf, want));
    assert_ptr_equal(strstr(strstr(logbuf, want) + 1, "WARN"), NULL); /* one line only */

    mars_log_set_fd(2);
    mars_log_setup(MARS_LOG_ERROR, MARS_LOG_TEXT);
    close(lfd);
    (void)state;
}

static void test_compaction_and_remove(void **state)
{
    struct mars_ckpt *c = open_store();
    struct mars_ckpt_rec keep = rec(9, 1);
    mars_ckpt_put(c, &keep, "keep");
    for (uint64_t i = 0; i < 5000; i++) {
        struct mars_ckpt_rec r = rec(1, i);
        mars_ckpt_put(c, &r, "/a/long/path/to/a/log/file/that/takes/space.log");
        assert_int_equal(mars_ckpt_flush(c), 0);
    }
    struct stat st;
    assert_int_equal(stat(journal, &st), 0);
    assert_true(st.st_size < 100000); /* 5000 appends of ~100 B were compacted */
    struct mars_ckpt_key k = {.dev = 7, .ino = 1};
    mars_ckpt_remove(c, &k);
    mars_ckpt_release(c);
    c = open_store();
    struct mars_ckpt_rec got;
    assert_false(mars_ckpt_get(c, &k, &got));
    assert_true(mars_ckpt_get(c, &keep.key, &got));
    mars_ckpt_release(c);
    (void)state;
}

static void test_data_dir_lock(void **state)
{
    int fd = mars_data_dir_lock(dir);
    assert_true(fd >= 0);
    assert_int_equal(mars_data_dir_lock(dir), -EWOULDBLOCK); /* a second mars */
    close(fd);
    fd = mars_data_dir_lock(dir);
    assert_true(fd >= 0);
    close(fd);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_journal_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
