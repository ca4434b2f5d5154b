/* Unit tests of the disk-buffer segment format: records round trip, a torn tail is told
 * from damage, a payload or header with a bad CRC is skipped and the reader finds the next
 * good record; the delivered mark reads back, and a torn one reads as 0 (everything again). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/dbuf_internal.h"
#include "engine/dbuf_seg.h"

static char path[] = "/tmp/mars-dbuf-seg-XXXXXX";
static int fd = -1;

static int setup(void **state)
{
    strcpy(path, "/tmp/mars-dbuf-seg-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, MARS_DBUF_SEG_MAGIC, MARS_DBUF_SEG_HDR), MARS_DBUF_SEG_HDR);
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    close(fd);
    unlink(path);
    (void)state;
    return 0;
}

/* Appends a record of seq with a payload "record <seq> ..." of len bytes; returns its
 * offset. */
static uint64_t append(uint64_t seq, uint32_t len)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31 + i);
    struct mars_dbuf_rec r = {.seq = seq,
                              .wall_ns = 1000 + (int64_t)seq,
                              .len = len,
                              .events = (uint32_t)seq,
                              .source = 3};
    uint8_t h[MARS_DBUF_REC_HDR];
    mars_dbuf_rec_header(h, &r, p);
    off_t off = lseek(fd, 0, SEEK_END);
    assert_int_equal(write(fd, h, sizeof(h)), sizeof(h));
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    free(p);
    return (uint64_t)off;
}

static uint64_t end_of_file(void)
{
    return (uint64_t)lseek(fd, 0, SEEK_END);
}

static void flip(uint64_t off)
{
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
}

/* Walks the file; returns the seqs of the good records in seqs and counts the rest. */
static int walk(uint64_t *seqs, int max, int *corrupt, int *torn)
{
    struct mars_dbuf_rbuf rb = {0};
    struct mars_dbuf_rec r;
    uint64_t off = MARS_DBUF_SEG_HDR, next, end = end_of_file();
    int n = 0, err;
    *corrupt = *torn = 0;
    for (;;) {
        enum mars_dbuf_next res = mars_dbuf_seg_next(fd, off, end, true, &rb, &r, &next, &err);
        if (res == MARS_DBUF_END)
            break;
        assert_int_not_equal(res, MARS_DBUF_IOERR);
        if (res == MARS_DBUF_TORN) {
            (*torn)++;
            break;
        }
        if (res == MARS_DBUF_CORRUPT)
            (*corrupt)++;
        if (res == MARS_DBUF_OK) {
            assert_true(n < max);
            assert_int_equal(r.events, (uint32_t)r.seq);
            assert_int_equal(r.source, 3);
            assert_int_equal(r.wall_ns, 1000 + (int64_t)r.seq);
            for (uint32_t i = 0; i < r.len; i++)
                assert_int_equal(rb.p[i], (uint8_t)(r.seq * 31 + i));
            seqs[n++] = r.seq;
        }
        assert_true(next > off);
        off = next;
    }
    free(rb.p);
    return n;
}

static void test_round_trip(void **state)
{
    for (uint64_t s = 1; s <= 50; s++)
        append(s, (uint32_t)(s * 97 % 5000));
    append(51, 0); /* an empty payload is a record too */
    assert_int_equal(mars_dbuf_seg_check_magic(fd), 0);
    uint64_t seqs[64];
    int corrupt, torn;
    assert_int_equal(walk(seqs, 64, &corrupt, &torn), 51);
    assert_int_equal(corrupt, 0);
    assert_int_equal(torn, 0);
    for (int i = 0; i < 51; i++)
        assert_int_equal(seqs[i], (uint64_t)i + 1);
    (void)state;
}

static void test_torn_tail(void **state)
{
    append(1, 100);
    append(2, 100);
    uint64_t third = append(3, 1000);
    uint64_t seqs[8];
    int corrupt, torn;
    /* the payload cut short, then the header cut short */
    assert_int_equal(ftruncate(fd, (off_t)(third + MARS_DBUF_REC_HDR + 10)), 0);
    assert_int_equal(walk(seqs, 8, &corrupt, &torn), 2);
    assert_int_equal(torn, 1);
    assert_int_equal(corrupt, 0);
    assert_int_equal(ftruncate(fd, (off_t)(third + 7)), 0);
    assert_int_equal(walk(seqs, 8, &corrupt, &torn), 2);
    assert_int_equal(torn, 1);
    (void)state;
}

static void test_crc_mismatch_skipped(void **state)
{
    uint64_t off[6];
    for (uint64_t s = 1; s <= 6; s++)
        off[s - 1] = append(s, 300);
    flip(off[1] + MARS_DBUF_REC_HDR + 150); /* payload of 2 */
    flip(off[3] + 9);                       /* length of 4 (its header CRC catches it) */
    flip(off[4]);                           /* magic of 5 */
    uint64_t seqs[8];
    int corrupt, torn;
    int n = walk(seqs, 8, &corrupt, &torn);
    assert_int_equal(n, 3);
    assert_int_equal(seqs[0], 1);
    assert_int_equal(seqs[1], 3);
    assert_int_equal(seqs[2], 6);
    assert_int_equal(corrupt, 2); /* 2 alone; 4 and 5 as one damaged span */
    assert_int_equal(torn, 0);
    (void)state;
}

static void test_bad_magic(void **state)
{
    flip(2);
    assert_int_equal(mars_dbuf_seg_check_magic(fd), -EPROTO);
    (void)state;
}

static void test_mark(void **state)
{
    (void)state;
    char buf[MARS_DBUF_MARK_LEN + 1];
    uint64_t vals[] = {0, 1, 123456789, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        mars_dbuf_format_mark(buf, vals[i]);
        assert_int_equal(strlen(buf), MARS_DBUF_MARK_LEN);
        assert_true(mars_dbuf_parse_mark(buf) == vals[i]);
    }
    assert_true(mars_dbuf_parse_mark("4711\n") == 4711); /* a file of an older mars */
    assert_true(mars_dbuf_parse_mark("") == 0);
    /* torn: another digit, or the old CRC with new digits, is never taken */
    mars_dbuf_format_mark(buf, 123456789);
    for (int k = 0; k < 20; k++) {
        char t[sizeof(buf)];
        memcpy(t, buf, sizeof(buf));
        t[k] = t[k] == '9' ? '8' : '9';
        assert_true(mars_dbuf_parse_mark(t) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc_mismatch_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test(test_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
