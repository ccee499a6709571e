/* tests/unit/test_wal_torn_batch.c: a power loss during a multi-page
 * batch (issue 12, defect 1). Before the batch's fdatasync returns, the
 * disk may keep any of its pages and lose others (they read as zeros), in
 * any order. Such a tail, within the bound of what one flush round leaves
 * unsynced, is a torn tail: kept in a .broken copy, cut, the records
 * before it intact, the writer continues. Damage a lost page cannot
 * explain (a flipped bit with intact chained records after it), or data
 * further away than one flush round can write, still refuses. And the
 * writer keeps its side of the bound: never more than WAL_FLUSH_MAX_BYTES
 * of record bytes written and not yet synced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

#define BIG_SEG (1u << 20)

/* 3 records synced, then a batch of n; returns the pre-batch image of
 * the segment and (in *end3) where record 3 ends. */
static uint8_t *three_then_batch(uint64_t seg, int n, long *end3)
{
    wal_writer *w = open_writer(NULL, seg);
    append_batch(w, 3, 1000);
    size_t len;
    uint8_t *pre = file_read(seg_path(1), &len);
    long off, size;
    find_record(1, 3, &off, &size);
    *end3 = off + size;
    append_batch(w, n, 2000);
    wal_writer_close(w);
    return pre;
}

/* Recovery calls it a torn tail at `at` (LSN `lsn`), keeps the damaged
 * segment in .broken byte for byte, zeros from `at` on; a rescan is clean
 * and the writer continues from LSN lsn. */
static void expect_torn_batch(long at, uint64_t lsn)
{
    size_t n0;
    uint8_t *damaged = file_read(seg_path(1), &n0);
    wal_scan_result r;
    int rc = recover_plain(&r);
    if (rc)
        fail_msg("recover: %s: %s", wal_strerror(rc), r.message);
    assert_true(r.torn);
    assert_int_equal(r.torn_at.offset, at);
    assert_int_equal(r.torn_at.lsn, lsn);
    assert_int_equal(r.last_lsn, lsn - 1);
    assert_non_null(strstr(r.torn_what, "torn batch"));
    assert_string_equal(r.broken_copy, "00000000000000000001.wal.broken");
    size_t bn, an;
    uint8_t *bb = file_read(dir_path(r.broken_copy), &bn);
    assert_int_equal(bn, n0);
    assert_memory_equal(bb, damaged, n0);
    uint8_t *after = file_read(seg_path(1), &an);
    assert_int_equal(an, n0);
    assert_memory_equal(after, damaged, (size_t)at);
    assert_true(wal_all_zero(after + at, an - (size_t)at));
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_false(r.torn);
    assert_int_equal(s.n, lsn - 1);
    assert_int_equal(s.bad, 0);
    check_writer_continues(lsn - 1, BIG_SEG, true, 9000, &r);
    free(damaged);
    free(bb);
    free(after);
}

/* Refused with `words` in the message, nothing repaired. */
static void expect_refused(long at, uint64_t lsn, const char *words)
{
    wal_scan_result r;
    recover_refused(&r);
    if ((long)r.bad_at.offset != at || r.bad_at.lsn != lsn || !strstr(r.message, words))
        fail_msg("want refusal at %ld LSN %llu (%s), got: %s", at, (unsigned long long)lsn, words,
                 r.message);
}

/* The reproduction: the batch's first page back to its pre-batch
 * contents (the disk kept the batch's later pages, not its first). Before
 * the fix: "(zero header), but data follows at offset 4096". */
static void test_first_page_of_the_batch_lost(void **state)
{
    (void)state;
    long end3;
    uint8_t *pre = three_then_batch(BIG_SEG, 60, &end3);
    size_t n;
    uint8_t *img = file_read(seg_path(1), &n);
    assert_true(end3 < (long)WAL_PAGE);
    assert_false(wal_all_zero(img + WAL_PAGE, 64)); /* the batch reaches page 2 */
    memcpy(img, pre, WAL_PAGE);
    file_write(seg_path(1), img, n);
    expect_torn_batch(end3, 4);
    free(img);
    free(pre);
}

/* A page in the middle of the batch lost: the records before it are
 * whole and chained (kept), the first one touching the lost page is where
 * the log is cut. */
static void test_middle_page_of_the_batch_lost(void **state)
{
    (void)state;
    long end3;
    uint8_t *pre = three_then_batch(BIG_SEG, 200, &end3);
    size_t n;
    uint8_t *img = file_read(seg_path(1), &n);
    size_t offs[512], sizes[512];
    int k = record_offsets(img, n, offs, sizes, 512);
    assert_int_equal(k, 203);
    size_t lost = 2 * WAL_PAGE;
    assert_true(offs[k - 1] > lost + WAL_PAGE); /* pages after it hold records */
    memset(img + lost, 0, WAL_PAGE);
    int first_hit = 0;
    while (offs[first_hit] + sizes[first_hit] <= lost)
        first_hit++;
    file_write(seg_path(1), img, n);
    expect_torn_batch((long)offs[first_hit], (uint64_t)first_hit + 1);
    free(img);
    free(pre);
}

/* A flipped payload byte in a record of the batch, with the records after
 * it intact and chained from its stored hash: no page reads as zeros, so
 * it is bit rot in a written record, not a torn write. */
static void test_bit_flip_before_intact_chained_records_refuses(void **state)
{
    (void)state;
    long end3;
    uint8_t *pre = three_then_batch(BIG_SEG, 60, &end3);
    long off, size;
    find_record(1, 30, &off, &size);
    poke(seg_path(1), off + WAL_RECORD_HEADER_LEN + 2, 0x04);
    expect_refused(off, 30, "no page of the damaged record reads as zeros");
    /* The same flip in the last record of the batch, nothing after it: a
     * bad CRC followed by zeros, the torn tail it always was. */
    poke(seg_path(1), off + WAL_RECORD_HEADER_LEN + 2, 0x04);
    find_record(1, 63, &off, &size);
    poke(seg_path(1), off + WAL_RECORD_HEADER_LEN + 2, 0x04);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.torn);
    assert_int_equal(r.last_lsn, 62);
    free(pre);
}

/* A lost page, but non-zero bytes further past the last good record than
 * one flush round can write: refused. Within the bound: torn. */
static void test_data_beyond_the_bound_refuses(void **state)
{
    (void)state;
    long end3;
    uint64_t seg = 2 * WAL_TORN_MAX;
    uint8_t *pre = three_then_batch(seg, 60, &end3);
    size_t n;
    uint8_t *img = file_read(seg_path(1), &n);
    memcpy(img, pre, WAL_PAGE); /* the batch's first page lost */
    img[end3 + WAL_TORN_MAX + 10] = 0x5a;
    file_write(seg_path(1), img, n);
    expect_refused(end3, 4, "further past the last good record than");
    img[end3 + WAL_TORN_MAX + 10] = 0;
    img[end3 + WAL_TORN_MAX - 10] = 0x5a;
    file_write(seg_path(1), img, n);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.torn);
    assert_int_equal(r.torn_end, end3 + WAL_TORN_MAX - 9);
    assert_int_equal(r.last_lsn, 3);
    free(img);
    free(pre);
}

/* A record of LSN 2 copied a page after the end (a lost page before it):
 * not something a torn batch can hold. */
static void test_copied_record_after_a_lost_page_refuses(void **state)
{
    (void)state;
    long end3;
    uint8_t *pre = three_then_batch(BIG_SEG, 3, &end3);
    size_t n;
    uint8_t *img = file_read(seg_path(1), &n);
    memcpy(img, pre, WAL_PAGE);
    long off, size;
    find_record(1, 2, &off, &size);
    memcpy(img + WAL_PAGE + 100, img + off, (size_t)size);
    file_write(seg_path(1), img, n);
    expect_refused(end3, 4, "an intact record of LSN 2 lies at offset 4196");
    free(img);
    free(pre);
}

/* ---- the writer's side: rounds of at most WAL_FLUSH_MAX_BYTES ---- */

static uint64_t lo = UINT64_MAX, hi; /* non-zero bytes written since the last sync */
static int syncs, violations;

static ssize_t r_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (!wal_all_zero(b, n)) {
        if ((uint64_t)off < lo)
            lo = (uint64_t)off;
        if ((uint64_t)off + n > hi)
            hi = (uint64_t)off + n;
    }
    return pwrite(fd, b, n, off);
}

static int r_fdatasync(int fd)
{
    if (hi > lo && hi - lo > WAL_FLUSH_MAX_BYTES)
        violations++;
    lo = UINT64_MAX;
    hi = 0;
    syncs++;
    return fdatasync(fd);
}

static const wal_io_ops rounds_io = {
    .open = io_open,
    .pwrite = r_pwrite,
    .fdatasync = r_fdatasync,
    .fsync = fsync,
    .rename = rename,
    .fallocate = io_fallocate,
    .ftruncate = ftruncate,
    .close = close,
};

/* One batch of 11 MiB of records in one segment: written and synced in
 * rounds, each at most WAL_FLUSH_MAX_BYTES of record bytes. Before the
 * bound: one pwrite of the whole batch, one fdatasync. */
static void test_flush_syncs_in_bounded_rounds(void **state)
{
    (void)state;
    wal_writer *w = open_writer(&rounds_io, 32u << 20);
    static uint8_t big[WAL_MAX_PAYLOAD];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 1);
    syncs = violations = 0;
    for (int i = 0; i < 11; i++)
        assert_int_equal(wal_writer_append(w, 1, 1000, 0, "", big, sizeof big, NULL), 0);
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), 11);
    assert_int_equal(violations, 0);
    assert_true(syncs >= 3); /* 11 MiB in rounds of at most 4 MiB */
    wal_writer_close(w);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.last_lsn, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_page_of_the_batch_lost, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_middle_page_of_the_batch_lost, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_bit_flip_before_intact_chained_records_refuses,
                                        wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_data_beyond_the_bound_refuses, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_copied_record_after_a_lost_page_refuses, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_flush_syncs_in_bounded_rounds, wal_setup,
                                        wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
