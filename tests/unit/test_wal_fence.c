/* tests/unit/test_wal_fence.c: the fence (wal/fence.c; issue 12, defect
 * 2). A failing writer persists the last durable LSN, its segment and
 * offset; wal_recover then rebuilds that segment from the disk up to the
 * fence (zeros after, full size), keeps the old segment and every later
 * one as "*.fence-<id>.broken", checks the rebuilt log ends at the fence,
 * and only then removes the fence. Each step can be redone after a
 * crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

#include <inttypes.h>

/* Three segments or more; returns the first LSN of the second one, and
 * in *fence a durable end in its middle (after its 3rd record). */
static uint64_t log_with_fence_point(wal_fence *fence)
{
    wal_writer *w = open_writer(NULL, SEG);
    wal_scan_result r;
    do
        append_batch(w, 6, 1000 + wal_writer_last_lsn(w));
    while (scan_plain(&r) == 0 && r.segments < 3);
    wal_writer_close(w);
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    uint64_t second = segs[1].first_lsn;
    free(segs);
    long off = 0, size = 0;
    find_record(second, second + 2, &off, &size);
    memset(fence, 0, sizeof *fence);
    fence->lsn = second + 2;
    fence->offset = (uint64_t)(off + size);
    wal_segment_name(fence->segment, second);
    return second;
}

static char *broken_name(uint64_t first, uint64_t id)
{
    static char p[256];
    snprintf(p, sizeof p, "%s.fence-%" PRIu64 ".broken", seg_path(first), id);
    return p;
}

/* After the fence was applied: the segment holds exactly the bytes before
 * the fence, zeros after, at full size; the originals are kept. */
static void check_applied(const wal_fence *fc, uint64_t second, const uint8_t *orig, size_t on,
                          const wal_scan_result *r)
{
    assert_true(r->fenced);
    assert_non_null(strstr(r->fenced_what, "nothing past it is trusted"));
    assert_int_equal(r->last_lsn, fc->lsn);
    assert_int_equal(r->end_offset, fc->offset);
    assert_string_equal(r->last_segment, fc->segment);
    assert_int_equal(access(dir_path(WAL_FENCE_NAME), F_OK), -1);
    size_t n;
    uint8_t *now = file_read(seg_path(second), &n);
    assert_int_equal(n, SEG);
    assert_memory_equal(now, orig, fc->offset);
    assert_true(wal_all_zero(now + fc->offset, n - fc->offset));
    free(now);
    /* The original, junk and all, is kept under the fence's id. */
    size_t bn;
    uint8_t *b = file_read(broken_name(second, fc->id), &bn);
    assert_int_equal(bn, on);
    assert_memory_equal(b, orig, on);
    free(b);
    assert_int_equal(count_files(".wal"), 2); /* the first, and the rebuilt one */
    assert_true(count_files(".broken") >= 2);
}

static void test_fence_rebuilds_the_segment_up_to_the_fence(void **state)
{
    (void)state;
    wal_fence fc;
    uint64_t second = log_with_fence_point(&fc);
    size_t on;
    uint8_t *orig = file_read(seg_path(second), &on);
    /* Junk past the fence: records the fence does not vouch for, and
     * bytes that are no record at all. */
    memset(orig + SEG - 300, 0xa5, 200);
    file_write(seg_path(second), orig, on);
    const char *call = "";
    assert_int_equal(wal_fence_write(&wal_io_posix, dir, &fc, &call), 0);
    assert_true(fc.id != 0);
    wal_fence back;
    assert_int_equal(wal_fence_read(dir, &back), 0);
    assert_int_equal(back.id, fc.id);
    assert_int_equal(back.lsn, fc.lsn);
    assert_int_equal(back.offset, fc.offset);
    assert_string_equal(back.segment, fc.segment);

    wal_scan_result r;
    int rc = recover_plain(&r);
    if (rc)
        fail_msg("recover: %s: %s", wal_strerror(rc), r.message);
    check_applied(&fc, second, orig, on, &r);
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    assert_int_equal(n, 2);
    free(segs);
    /* A second recovery finds a clean log; the writer continues. */
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.fenced);
    check_writer_continues(fc.lsn, SEG, true, 99999, &r);
    free(orig);
}

/* A crash at each step redoes it the same way: after the segment was
 * moved aside (no segment under its name), and after the rebuild (the
 * fence still there): the kept original is never replaced. */
static void test_fence_redone_after_a_crash(void **state)
{
    (void)state;
    wal_fence fc;
    uint64_t second = log_with_fence_point(&fc);
    size_t on;
    uint8_t *orig = file_read(seg_path(second), &on);
    const char *call = "";
    assert_int_equal(wal_fence_write(&wal_io_posix, dir, &fc, &call), 0);
    /* Crash 1: the segment was moved aside, nothing more. */
    assert_int_equal(rename(seg_path(second), broken_name(second, fc.id)), 0);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    check_applied(&fc, second, orig, on, &r);
    /* Crash 2: everything done but the fence's removal. */
    assert_int_equal(wal_fence_write(&wal_io_posix, dir, &fc, &call), 0);
    assert_int_equal(unlink(seg_path(second)), 0);
    assert_int_equal(recover_plain(&r), 0); /* rebuilt again from the kept original */
    check_applied(&fc, second, orig, on, &r);
    assert_int_equal(wal_fence_write(&wal_io_posix, dir, &fc, &call), 0);
    assert_int_equal(recover_plain(&r), 0); /* the rebuilt segment in place */
    check_applied(&fc, second, orig, on, &r);
    free(orig);
}

/* A fence the disk does not bear out (it says more is durable than the
 * segment holds), or an unreadable one: refused, the fence kept. */
static void test_fence_not_borne_out_refuses(void **state)
{
    (void)state;
    wal_fence fc;
    log_with_fence_point(&fc);
    fc.lsn += 1; /* one more record than ends at that offset */
    const char *call = "";
    assert_int_equal(wal_fence_write(&wal_io_posix, dir, &fc, &call), 0);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), WAL_E_CORRUPT);
    assert_non_null(strstr(r.message, "synced records are lost"));
    assert_int_equal(access(dir_path(WAL_FENCE_NAME), F_OK), 0);
    file_write(dir_path(WAL_FENCE_NAME), (const uint8_t *)"hallq-wal-fence 1\nid 1\n", 23);
    assert_int_equal(recover_plain(&r), WAL_E_CORRUPT);
    assert_non_null(strstr(r.message, "FENCE is unreadable"));
}

/* ---- the writer writes it ---- */

static bool fail_fence_rename;

static int x_fdatasync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static int x_rename(const char *a, const char *b)
{
    if (fail_fence_rename && strstr(b, WAL_FENCE_NAME)) {
        errno = ENOSPC;
        return -1;
    }
    return rename(a, b);
}

static const wal_io_ops failing_sync = {
    .open = io_open,
    .pwrite = pwrite,
    .fdatasync = x_fdatasync,
    .fsync = fsync,
    .rename = x_rename,
    .fallocate = io_fallocate,
    .ftruncate = ftruncate,
    .close = close,
};

/* A failed fdatasync: the fence names the end of the last synced batch;
 * a restart's recovery drops the failed batch although the page cache
 * holds it whole. */
static void test_writer_fences_on_a_failed_sync(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 4, 1000);
    wal_writer_close(w);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    uint64_t end = r.end_offset;
    w = open_writer(&failing_sync, SEG);
    fault_run f = run_until_fault(w, 1, 3, 2000);
    check_failed_for_good(w, &f, -EIO);
    wal_writer_close(w);
    wal_fence fc;
    assert_int_equal(wal_fence_read(dir, &fc), 0);
    assert_int_equal(fc.lsn, 4);
    assert_int_equal(fc.offset, end);
    assert_string_equal(fc.segment, "00000000000000000001.wal");
    assert_int_equal(scan_plain(&r), 0);
    assert_int_equal(r.last_lsn, 7); /* the failed batch, whole in the cache */
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.fenced);
    assert_int_equal(r.last_lsn, 4);
    assert_int_equal(scan_plain(&r), 0);
    assert_int_equal(r.last_lsn, 4);
}

/* When even the fence cannot be written, failed_where says so. */
static void test_fence_write_failure_is_reported(void **state)
{
    (void)state;
    fail_fence_rename = true;
    wal_writer *w = open_writer(&failing_sync, SEG);
    fault_run f = run_until_fault(w, 1, 3, 2000);
    check_failed_for_good(w, &f, -EIO);
    const char *where = wal_writer_failed_where(w);
    if (!strstr(where, "fdatasync 00000000000000000001.wal: Input/output error") ||
        !strstr(where, "the fence could not be written (rename FENCE: No space left on device)"))
        fail_msg("failed_where \"%s\"", where);
    wal_writer_close(w);
    fail_fence_rename = false;
    assert_int_equal(access(dir_path(WAL_FENCE_NAME), F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fence_rebuilds_the_segment_up_to_the_fence, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_fence_redone_after_a_crash, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fence_not_borne_out_refuses, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_writer_fences_on_a_failed_sync, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_fence_write_failure_is_reported, wal_setup,
                                        wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
