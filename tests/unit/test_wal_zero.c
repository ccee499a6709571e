/* tests/unit/test_wal_zero.c: the writer's zeroing ahead (wal/writer.c).
 * With sync on, once a segment's records reach WAL_ZERO_FROM, each flush
 * keeps the zeroed frontier at least WAL_ZERO_AHEAD past the records (up
 * to the segment's end), writing zeros only past the records, in pwrites
 * of at most WAL_ZERO_WRITE, before the batch's one fdatasync; sync off
 * writes no zeros; the log is byte for byte the one written without
 * zeros, across many batches, reopens and roll-overs, and recovers record
 * for record; a failing write of zeros fails the writer for good, like a
 * failing write of records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

enum { EV_HDR = 1, EV_REC, EV_ZERO, EV_SYNC };
#define MAX_EV 64

static int ev[MAX_EV], nev;
static uint64_t rec_end;    /* end of the records written to the current segment */
static uint64_t zero_end;   /* end of the zeros seen written to it (0: none) */
static uint64_t zero_bytes; /* zeros written, all told */
static int zero_writes, bad_zero, bad_rec, n_rename;
/* A fault on the Nth write of zeros: errno, or a short write. */
static int fault_zero_at, fault_errno;
static bool fault_short, faulted;
static int calls_after_fault, syncs_after_fault;

static void reset_counters(void)
{
    nev = 0;
    rec_end = WAL_SEGMENT_HEADER_LEN;
    zero_end = zero_bytes = 0;
    zero_writes = bad_zero = bad_rec = n_rename = 0;
    fault_zero_at = fault_errno = 0;
    fault_short = faulted = false;
    calls_after_fault = syncs_after_fault = 0;
}

static void event(int e)
{
    if (nev < MAX_EV)
        ev[nev] = e;
    nev++;
}

static void count_call(void)
{
    if (faulted)
        calls_after_fault++;
}

static int z_open(const char *p, int fl, mode_t m)
{
    count_call();
    return open(p, fl, m);
}

/* Tells the writes apart: a header at offset 0 (a new segment), records
 * (never all zeros: a record's length field is not 0), zeros. Checks that
 * records follow each other and that zeros land past them only. */
static ssize_t z_pwrite(int fd, const void *b, size_t n, off_t off)
{
    count_call();
    if (off == 0) {
        event(EV_HDR);
        rec_end = n;
        zero_end = 0;
    } else if (!wal_all_zero(b, n)) {
        event(EV_REC);
        if ((uint64_t)off != rec_end)
            bad_rec++;
        rec_end = (uint64_t)off + n;
    } else {
        event(EV_ZERO);
        if ((uint64_t)off < rec_end || n > WAL_ZERO_WRITE)
            bad_zero++;
        zero_writes++;
        zero_bytes += n;
        if ((uint64_t)off + n > zero_end)
            zero_end = (uint64_t)off + n;
        if (fault_zero_at && zero_writes == fault_zero_at) {
            faulted = true;
            if (fault_short)
                return pwrite(fd, b, n / 2, off);
            errno = fault_errno;
            return -1;
        }
    }
    return pwrite(fd, b, n, off);
}

static int z_fdatasync(int fd)
{
    count_call();
    if (faulted)
        syncs_after_fault++;
    event(EV_SYNC);
    return fdatasync(fd);
}

static int z_fsync(int fd)
{
    count_call();
    return fsync(fd);
}

static int z_rename(const char *a, const char *b)
{
    count_call();
    n_rename++;
    return rename(a, b);
}

static int z_fallocate(int fd, off_t off, off_t len)
{
    count_call();
    return wal_io_posix.fallocate(fd, off, len);
}

static int z_ftruncate(int fd, off_t len)
{
    count_call();
    return ftruncate(fd, len);
}

static const wal_io_ops zio = {
    .open = z_open,
    .pwrite = z_pwrite,
    .fdatasync = z_fdatasync,
    .fsync = z_fsync,
    .rename = z_rename,
    .fallocate = z_fallocate,
    .ftruncate = z_ftruncate,
    .close = close,
};

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Recovers the log and opens a writer over zio at its end. */
static wal_writer *reopen(uint64_t seg, bool sync)
{
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.torn);
    wal_writer_options wo = {
        .dir = dir, .hall_id = HALL, .segment_bytes = seg, .sync = sync, .io = &zio};
    wal_writer *w;
    assert_int_equal(wal_writer_open(&w, &wo, &r), 0);
    if (r.last_segment[0])
        rec_end = r.end_offset;
    zero_end = 0; /* only what this writer writes counts */
    return w;
}

/* The frontier as seen from the calls: records or zeros written. */
static uint64_t seen_written(void)
{
    return zero_end > rec_end ? zero_end : rec_end;
}

static void flush_ok(wal_writer *w)
{
    nev = 0;
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), wal_writer_last_lsn(w));
}

/* One flush's calls, as the writer must order them: the batch's last
 * record write, then zeros only, then its one fdatasync. */
static void check_flush_order(int *zeros_seen)
{
    assert_true(nev <= MAX_EV);
    int last_rec = -1, syncs_after = 0, zeros = 0;
    for (int i = 0; i < nev; i++)
        if (ev[i] == EV_REC)
            last_rec = i;
    assert_true(last_rec >= 0);
    for (int i = last_rec + 1; i < nev; i++) {
        assert_true(ev[i] == EV_ZERO || ev[i] == EV_SYNC);
        if (ev[i] == EV_SYNC)
            syncs_after++;
        else if (syncs_after == 0)
            zeros++;
        else
            fail_msg("zeros written after the batch's fdatasync");
    }
    assert_int_equal(syncs_after, 1);
    assert_int_equal(ev[nev - 1], EV_SYNC);
    for (int i = 0; i < last_rec; i++)
        assert_true(ev[i] != EV_ZERO); /* zeros never before the records */
    *zeros_seen = zeros;
}

/* The frontier: nothing before WAL_ZERO_FROM, then always at least
 * WAL_ZERO_AHEAD past the records (or at the segment's end), at most a
 * chunk further; a segment is written to its end before it is left; the
 * log reads back whole. */
static void test_frontier_advances(void **state)
{
    (void)state;
    const uint64_t seg = 6u << 20;
    reset_counters();
    wal_writer *w = reopen(seg, true);
    assert_int_equal(wal_writer_zeroed_to(w), WAL_SEGMENT_HEADER_LEN);
    n_rename = 0; /* count the roll-overs, not the first segment */
    bool saw_before_from = false, saw_after_from = false;
    int fills = 0;
    while (n_rename < 2) {
        int renames = n_rename, zw0 = zero_writes;
        uint64_t z0 = wal_writer_zeroed_to(w), zb0 = zero_bytes;
        for (int i = 0; i < 250; i++)
            append_one(w, 1000);
        flush_ok(w);
        uint64_t z = wal_writer_zeroed_to(w);
        assert_int_equal(z, seen_written());
        if (n_rename != renames) {
            /* Rolled over: the segment left had been written to its end
             * (zeros ahead reached it), and the new one is not zeroed
             * before its records reach WAL_ZERO_FROM. */
            assert_int_equal(z0, seg);
            assert_true(rec_end < WAL_ZERO_FROM);
            assert_int_equal(z, rec_end);
            continue;
        }
        int zeros;
        check_flush_order(&zeros);
        assert_int_equal(zeros, zero_writes - zw0);
        if (rec_end < WAL_ZERO_FROM) {
            saw_before_from = true;
            assert_int_equal(zero_writes, zw0);
            assert_int_equal(z, rec_end);
        } else {
            saw_after_from = true;
            assert_true(z >= min64(rec_end + WAL_ZERO_AHEAD, seg));
            assert_true(z <= rec_end + WAL_ZERO_AHEAD + WAL_ZERO_CHUNK);
            assert_true(zero_bytes - zb0 <= WAL_ZERO_CHUNK);
            if (zero_bytes > zb0) {
                fills++;
                assert_true(z0 < rec_end + WAL_ZERO_AHEAD); /* only when near */
            }
        }
    }
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_true(saw_before_from && saw_after_from);
    assert_int_equal(bad_zero, 0);
    assert_int_equal(bad_rec, 0);
    /* Two segments zeroed nearly whole, chunk by chunk. */
    assert_true(zero_bytes >= 2 * (seg - 2 * WAL_ZERO_FROM));
    assert_true(fills >= 2 * (int)((seg - WAL_ZERO_FROM) / WAL_ZERO_CHUNK));
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(r.segments, 3);
    assert_int_equal(s.n, last);
    assert_int_equal(s.bad, 0);
    assert_false(r.torn);
}

/* The log of a deterministic run: batches of 1..400 records, a restart
 * every 25 batches, segments of 3 MiB (several roll-overs). */
static uint64_t write_run(bool sync)
{
    const uint64_t seg = 3u << 20;
    reset_counters();
    wal_writer *w = reopen(seg, sync);
    for (int b = 0; b < 300; b++) {
        if (b && b % 25 == 0) {
            wal_writer_close(w);
            w = reopen(seg, sync);
        }
        int n = 1 + (b * 37) % 400;
        for (int i = 0; i < n; i++)
            append_one(w, 1000 + (uint64_t)b);
        flush_ok(w);
        /* Also right after a restart: zeros resume past the records (a
         * restarted writer cannot know what lies past them). */
        if (sync && rec_end >= WAL_ZERO_FROM)
            assert_true(seen_written() >= min64(rec_end + WAL_ZERO_AHEAD, seg));
    }
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_int_equal(bad_zero, 0);
    assert_int_equal(bad_rec, 0);
    return last;
}

/* Renames each segment "<name>" to "<name>.ref" (the scan ignores them). */
static int keep_as_ref(void)
{
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    for (size_t i = 0; i < n; i++) {
        char ref[200];
        snprintf(ref, sizeof ref, "%s.ref", dir_path(segs[i].name));
        assert_int_equal(rename(dir_path(segs[i].name), ref), 0);
    }
    free(segs);
    return (int)n;
}

/* Many batches, restarts and roll-overs: with zeros written ahead, the
 * log is byte for byte the one written with sync off (no zeros), and it
 * recovers record for record. */
static void test_same_log_and_recovery(void **state)
{
    (void)state;
    uint64_t last_ref = write_run(false);
    assert_int_equal(zero_writes, 0); /* sync off: no zeros */
    int nref = keep_as_ref();
    assert_true(nref >= 3);

    uint64_t last = write_run(true);
    assert_int_equal(last, last_ref);
    assert_true(zero_bytes >= (uint64_t)(nref - 1) * ((3u << 20) - 2 * WAL_ZERO_FROM));
    wal_scan_result r;
    seen s;
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.torn);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(r.segments, nref);
    assert_int_equal(s.n, last);
    assert_int_equal(s.first, 1);
    assert_int_equal(s.bad, 0);
    assert_false(r.torn);

    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    assert_int_equal((int)n, nref);
    for (size_t i = 0; i < n; i++) {
        char ref[200];
        snprintf(ref, sizeof ref, "%s.ref", dir_path(segs[i].name));
        size_t na, nb;
        uint8_t *a = file_read(dir_path(segs[i].name), &na);
        uint8_t *b = file_read(ref, &nb);
        assert_int_equal(na, 3u << 20);
        assert_int_equal(na, nb);
        if (memcmp(a, b, na) != 0)
            fail_msg("segment %s differs from the one written without zeros", segs[i].name);
        free(a);
        free(b);
    }
    free(segs);

    /* Every record of the run is there, across restarts and segments,
     * and the log continues after a last restart. */
    reset_counters();
    wal_writer *w = reopen(3u << 20, true);
    assert_int_equal(wal_writer_last_lsn(w), last);
    for (int i = 0; i < 50; i++)
        append_one(w, 9000);
    flush_ok(w);
    wal_writer_close(w);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, last + 50);
    assert_int_equal(s.bad, 0);
}

/* A failed write of zeros ahead fails the writer exactly like a failed
 * write of records: the batch is not durable, the place is named, nothing
 * is synced or touched again, appends are refused; recovery finds whole
 * records only. */
static void zero_fault_case(int at, int err, bool short_write)
{
    wal_reset_dir();
    reset_counters();
    wal_writer *w = reopen(6u << 20, true);
    fault_zero_at = at;
    fault_errno = err;
    fault_short = short_write;
    fault_run f = run_until_fault(w, 2000, 250, 1000);
    assert_true(faulted);
    int want = short_write ? -EIO : -err;
    const char *where = wal_writer_failed_where(w);
    char head[128];
    snprintf(head, sizeof head, "pwrite 00000000000000000001.wal: %s", strerror(-want));
    if (strstr(where, head) != where || !strstr(where, "(zeroing ahead at offset ") ||
        (short_write && !strstr(where, "(short write: ")))
        fail_msg("failed_where \"%s\"", where);
    check_failed_for_good(w, &f, want);
    wal_writer_close(w);
    assert_int_equal(syncs_after_fault, 0);              /* the batch's fdatasync never ran */
    assert_int_equal(calls_after_fault, FENCE_IO_CALLS); /* only the fence's */
    uint64_t fenced = check_fence(f.durable, f.appended);

    fault_zero_at = 0;
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.torn);
    assert_true(r.fenced);
    assert_int_equal(r.last_lsn, fenced);
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.n, r.last_lsn);
    /* A restarted writer continues after the last whole record. */
    w = open_writer(NULL, 6u << 20);
    append_batch(w, 20, 99999);
    uint64_t end = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, end);
    assert_int_equal(s.bad, 0);
}

static void test_zero_write_fails(void **state)
{
    (void)state;
    zero_fault_case(1, EIO, false);    /* the first write of zeros */
    zero_fault_case(2, ENOSPC, false); /* the second of the first chunk */
    zero_fault_case(5, EIO, false);    /* a later chunk */
    zero_fault_case(1, 0, true);       /* half the zeros written */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_frontier_advances, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_same_log_and_recovery, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_zero_write_fails, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
