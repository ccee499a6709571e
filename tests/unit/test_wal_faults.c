/* tests/unit/test_wal_faults.c: I/O faults through a wal_io_ops that
 * fails pwrite, fdatasync, fsync, open, rename or fallocate with EIO or
 * ENOSPC at the Nth call, or writes short. The flush reports the error,
 * complete says WAL_E_FAILED, the writer stays failed (appends and seals
 * refused, no file touched again, above all no second fdatasync), the
 * place is named, and recovery afterwards finds whole records only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

enum { F_NONE, F_PWRITE, F_SHORT, F_FDATASYNC, F_FSYNC, F_OPEN, F_RENAME, F_FALLOCATE };
static int fault_kind, fault_at, fault_errno, calls;
static bool faulted;
static int calls_after_fault, fdatasyncs_after_fault;

/* Counts a call of `kind`; true when it is the one to fail. */
static bool hit(int kind)
{
    if (faulted)
        calls_after_fault++;
    if (fault_kind != kind && !(fault_kind == F_SHORT && kind == F_PWRITE))
        return false;
    if (++calls != fault_at)
        return false;
    faulted = true;
    errno = fault_errno;
    return true;
}

static int f_open(const char *p, int fl, mode_t m)
{
    return hit(F_OPEN) ? -1 : open(p, fl, m);
}

static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (hit(F_PWRITE)) {
        if (fault_kind == F_SHORT)
            return pwrite(fd, b, n / 2, off);
        return -1;
    }
    return pwrite(fd, b, n, off);
}

static int f_fdatasync(int fd)
{
    if (faulted)
        fdatasyncs_after_fault++;
    return hit(F_FDATASYNC) ? -1 : fdatasync(fd);
}

static int f_fsync(int fd)
{
    return hit(F_FSYNC) ? -1 : fsync(fd);
}

static int f_rename(const char *a, const char *b)
{
    return hit(F_RENAME) ? -1 : rename(a, b);
}

static int f_fallocate(int fd, off_t off, off_t len)
{
    return hit(F_FALLOCATE) ? -1 : wal_io_posix.fallocate(fd, off, len);
}

static int f_ftruncate(int fd, off_t len)
{
    if (faulted)
        calls_after_fault++;
    return ftruncate(fd, len);
}

static const wal_io_ops faulty = {
    .open = f_open,
    .pwrite = f_pwrite,
    .fdatasync = f_fdatasync,
    .fsync = f_fsync,
    .rename = f_rename,
    .fallocate = f_fallocate,
    .ftruncate = f_ftruncate,
    .close = close, /* closing is always allowed */
};

static void arm(int kind, int at, int err)
{
    fault_kind = kind;
    fault_at = at;
    fault_errno = err;
    calls = 0;
    faulted = false;
    calls_after_fault = fdatasyncs_after_fault = 0;
}

/* Batches of 12 records (crossing segment boundaries now and then) until
 * the armed fault strikes; then checks everything that must follow. */
static void fault_case(int kind, int at, int err, const char *where)
{
    wal_reset_dir();
    arm(F_NONE, 0, 0);
    wal_writer *w = open_writer(&faulty, SEG);
    append_batch(w, 3, 1000); /* durable before the fault */
    arm(kind, at, err);
    fault_run f = run_until_fault(w, 200, 12, 2000);
    assert_true(faulted);
    int want = kind == F_SHORT ? -EIO : -err;
    check_failed_for_good(w, &f, want);
    if (strstr(wal_writer_failed_where(w), where) != wal_writer_failed_where(w))
        fail_msg("failed_where \"%s\", want it to start with \"%s\"", wal_writer_failed_where(w),
                 where);
    assert_non_null(strstr(wal_writer_failed_where(w), strerror(-want)));
    wal_writer_close(w);
    assert_int_equal(fdatasyncs_after_fault, 0);
    /* After the failing call only the fence was written, naming the
     * durable end (a batch that rolled over synced its first part). */
    assert_int_equal(calls_after_fault, FENCE_IO_CALLS);
    uint64_t fenced = check_fence(f.durable, f.appended);

    /* Recovery trusts the log up to the fence, no further: everything
     * durable, never a piece of a record; the fence is gone after. */
    arm(F_NONE, 0, 0);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.fenced);
    assert_int_equal(r.last_lsn, fenced);
    assert_int_equal(access(dir_path(WAL_FENCE_NAME), F_OK), -1);
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.n, r.last_lsn);
    assert_false(r.torn);
    assert_int_equal(count_files(".tmp"), 0);
    /* A restarted writer continues after the last whole record. */
    w = open_writer(NULL, SEG);
    append_batch(w, 2, 5000);
    uint64_t end = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, end);
    assert_int_equal(s.bad, 0);
}

static void test_fault_pwrite(void **state)
{
    (void)state;
    fault_case(F_PWRITE, 1, EIO, "pwrite 00000000000000000001.wal: Input/output error");
    fault_case(F_PWRITE, 4, ENOSPC, "pwrite ");
    fault_case(F_PWRITE, 9, EIO, "pwrite ");
}

static void test_fault_short_write(void **state)
{
    (void)state;
    fault_case(F_SHORT, 1, 0, "pwrite 00000000000000000001.wal: Input/output error (short write");
    fault_case(F_SHORT, 3, 0, "pwrite ");
    fault_case(F_SHORT, 8, 0, "pwrite ");
}

static void test_fault_fdatasync(void **state)
{
    (void)state;
    fault_case(F_FDATASYNC, 1, EIO, "fdatasync 00000000000000000001.wal: Input/output error");
    fault_case(F_FDATASYNC, 4, EIO, "fdatasync ");
    fault_case(F_FDATASYNC, 7, ENOSPC, "fdatasync ");
}

/* Creating a segment at roll-over: each of its steps can fail. */
static void test_fault_rollover(void **state)
{
    (void)state;
    fault_case(F_OPEN, 1, ENOSPC, "open 0");  /* the new segment ("<name>.tmp") */
    fault_case(F_OPEN, 2, EIO, "open dir /"); /* the directory, to fsync it */
    fault_case(F_FALLOCATE, 1, ENOSPC, "fallocate 0");
    fault_case(F_FSYNC, 1, EIO, "fsync 0");     /* the new segment */
    fault_case(F_FSYNC, 2, EIO, "fsync dir /"); /* the directory */
    fault_case(F_RENAME, 1, EIO, "rename 0");
    fault_case(F_RENAME, 2, ENOSPC, "rename 0");
}

/* The daemon's worker never ran (cancelled): failed, the segment untouched,
 * the fence written. */
static void test_cancelled_flush(void **state)
{
    (void)state;
    arm(F_NONE, 0, 0);
    wal_writer *w = open_writer(&faulty, SEG);
    append_batch(w, 2, 1000);
    append_one(w, 1000);
    assert_int_equal(wal_writer_seal(w), 0);
    arm(F_FDATASYNC, 1000, EIO);
    faulted = true; /* count every call from here on */
    assert_int_equal(wal_writer_complete(w, -ECANCELED), WAL_E_FAILED);
    assert_int_equal(wal_writer_failed(w), -ECANCELED);
    assert_non_null(strstr(wal_writer_failed_where(w), strerror(ECANCELED)));
    assert_int_equal(wal_writer_flush(w), -ECANCELED);
    assert_int_equal(wal_writer_append(w, 1, 2000, 0, "", "x", 1, NULL), WAL_E_FAILED);
    wal_writer_close(w);
    assert_int_equal(calls_after_fault, FENCE_IO_CALLS); /* the fence, by the owner */
    assert_int_equal(check_fence(2, 2), 2);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.fenced);
    assert_int_equal(r.last_lsn, 2);
}

/* The first segment of a new log cannot be created: open fails. */
static void test_fault_first_segment(void **state)
{
    (void)state;
    int kinds[] = {F_OPEN, F_FALLOCATE, F_PWRITE, F_FSYNC, F_RENAME};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        wal_reset_dir();
        arm(kinds[i], 1, ENOSPC);
        wal_writer_options wo = {.dir = dir, .hall_id = HALL, .segment_bytes = SEG, .io = &faulty};
        wal_writer *w = NULL;
        assert_int_equal(wal_writer_open(&w, &wo, NULL), -ENOSPC);
        assert_null(w);
        arm(F_NONE, 0, 0);
        assert_int_equal(count_files(".wal"), 0);
        assert_int_equal(count_files(".tmp"), 0);
    }
}

/* Repairing a torn tail can fail too: reported, and a later recovery
 * (on a healthy disk) repairs it. */
static void test_fault_in_recover(void **state)
{
    (void)state;
    int kinds[] = {F_OPEN, F_PWRITE, F_FSYNC, F_RENAME, F_FDATASYNC};
    const char *calls_named[] = {"open", "pwrite", "fsync", "rename", "fdatasync"};
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 5, 1000);
    wal_writer_close(w);
    long off = 0, size = 0;
    find_record(1, 5, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    memset(keep + off + 20, 0, (size_t)size - 20); /* torn in place */
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        file_write(seg_path(1), keep, n);
        arm(kinds[i], 1, EIO);
        wal_scan_options o = {.dir = dir, .hall_id = HALL};
        wal_scan_result r;
        assert_int_equal(wal_recover(&o, &faulty, &r), -EIO);
        assert_true(r.torn);
        assert_non_null(strstr(r.message, calls_named[i]));
        assert_non_null(strstr(r.message, "00000000000000000001.wal"));
        arm(F_NONE, 0, 0);
        assert_int_equal(count_files(".tmp"), 0);
        assert_int_equal(wal_recover(&o, NULL, &r), 0);
        assert_int_equal(r.last_lsn, 4);
        assert_int_equal(recover_plain(&r), 0);
        assert_false(r.torn);
    }
    free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_pwrite, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fault_short_write, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fault_fdatasync, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fault_rollover, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_flush, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fault_first_segment, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_fault_in_recover, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
