/* tests/unit/test_wal_rollover.c: segment roll-over. Many records over
 * several segments: each preallocated, named by its first LSN, carrying
 * the chain; a batch spanning segments is written with one pwrite and one
 * fdatasync per segment; records that exactly fill a segment; the writer
 * reopened at the end of the last segment; the replay scan that skips
 * verified segments by name but still checks what it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

static int n_pwrite, n_fdatasync, n_rename;

static ssize_t c_pwrite(int fd, const void *b, size_t n, off_t off)
{
    n_pwrite++;
    return pwrite(fd, b, n, off);
}
static int c_fdatasync(int fd)
{
    n_fdatasync++;
    return fdatasync(fd);
}
static int c_rename(const char *a, const char *b)
{
    n_rename++;
    return rename(a, b);
}

static const wal_io_ops counting = {
    .open = io_open,
    .pwrite = c_pwrite,
    .fdatasync = c_fdatasync,
    .fsync = fsync,
    .rename = c_rename,
    .fallocate = io_fallocate,
    .ftruncate = ftruncate,
    .close = close,
};

/* Checks every segment: size, name = header, carried hash = the previous
 * segment's last record hash. Returns the number of segments. */
static int check_segments(void)
{
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    uint8_t prev[WAL_HASH_LEN];
    wal_genesis_hash(HALL, prev);
    uint64_t next = 1;
    for (size_t i = 0; i < n; i++) {
        size_t size;
        uint8_t *b = file_read(dir_path(segs[i].name), &size);
        assert_int_equal(size, SEG);
        wal_seg_header h;
        assert_int_equal(wal_header_decode(b, &h), 0);
        assert_int_equal(h.first_lsn, segs[i].first_lsn);
        assert_int_equal(h.first_lsn, next);
        assert_int_equal(h.segment_bytes, SEG);
        assert_string_equal(h.hall_id, HALL);
        assert_memory_equal(h.prev_hash, prev, WAL_HASH_LEN);
        size_t offs[512], sizes[512];
        int k = record_offsets(b, size, offs, sizes, 512);
        if (i + 1 < n)
            assert_true(k > 0); /* only the last segment may be empty */
        for (int j = 0; j < k; j++)
            assert_int_equal(wal_get64(b + offs[j] + 8), next + (uint64_t)j);
        if (k)
            memcpy(prev, b + offs[k - 1] + sizes[k - 1] - 4 - WAL_HASH_LEN, WAL_HASH_LEN);
        next += (uint64_t)k;
        free(b);
    }
    free(segs);
    assert_int_equal(count_files(".tmp"), 0);
    return (int)n;
}

static void test_rollover(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    for (int b = 0; b < 120; b++)
        append_batch(w, 1 + b % 9, 1000 + (uint64_t)b * 100);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    int segs = check_segments();
    assert_true(segs >= 6);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(r.segments, segs);
    assert_int_equal(s.n, last);
    assert_int_equal(s.bad, 0);
    assert_false(r.torn);
    /* Reopened at the end of the last segment, it goes on. */
    w = open_writer(NULL, SEG);
    assert_int_equal(wal_writer_last_lsn(w), last);
    for (int b = 0; b < 30; b++)
        append_batch(w, 5, 90000);
    wal_writer_close(w);
    assert_true(check_segments() > segs);
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, last + 150);
    assert_int_equal(s.bad, 0);
}

/* One batch over several segments: one pwrite and one fdatasync per
 * segment it touches; each new segment renamed into place once. */
static void test_batch_spanning_segments(void **state)
{
    (void)state;
    wal_writer *w = open_writer(&counting, SEG);
    append_batch(w, 3, 1000);
    for (int i = 0; i < 300; i++) /* ~ 33 KB: five segments */
        append_one(w, 2000);
    n_pwrite = n_fdatasync = n_rename = 0;
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), 303);
    wal_writer_close(w);
    int segs = check_segments();
    assert_true(segs >= 4);
    /* Per new segment: its header, and the rename; per segment touched:
     * one pwrite of records and one fdatasync. */
    assert_int_equal(n_rename, segs - 1);
    assert_int_equal(n_pwrite, segs + (segs - 1));
    assert_int_equal(n_fdatasync, segs);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, 303);
    assert_int_equal(s.bad, 0);
}

/* With sync off, batches are not synced, but a segment is before it is
 * left, so that only the last segment can end torn. */
static void test_sync_off_syncs_at_rollover(void **state)
{
    (void)state;
    wal_writer *w = open_writer_ex(&counting, SEG, false);
    n_fdatasync = n_rename = 0;
    append_batch(w, 3, 1000);
    assert_int_equal(n_fdatasync, 0);
    while (n_rename < 3)
        append_batch(w, 4, 1000);
    assert_int_equal(n_fdatasync, 3);
    wal_writer_close(w);
    check_segments();
}

/* Records that fill a segment to its last byte, and the largest record. */
static void test_exact_fit(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    static uint8_t p[SEG];
    memset(p, 0xA5, sizeof p);
    uint64_t lsn;
    /* Leave exactly room for one record with a 100-byte payload. */
    uint32_t fill = SEG - WAL_SEGMENT_HEADER_LEN - 2 * WAL_RECORD_OVERHEAD - 100;
    assert_int_equal(wal_writer_append(w, 1, 1, 0, "", p, fill, &lsn), 0);
    assert_int_equal(wal_writer_append(w, 1, 1, 0, "", p, 100, &lsn), 0);
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    /* The largest record fills an empty segment. */
    uint32_t max = SEG - WAL_SEGMENT_HEADER_LEN - WAL_RECORD_OVERHEAD;
    assert_int_equal(wal_writer_append(w, 1, 2, 0, "", p, max + 1, &lsn), WAL_E_TOOBIG);
    assert_int_equal(wal_writer_append(w, 1, 2, 0, "", p, max, &lsn), 0);
    assert_int_equal(wal_writer_append(w, 1, 3, 0, "", p, max, &lsn), 0);
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    wal_writer_close(w);
    assert_int_equal(check_segments(), 3);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.records, 4);
    assert_int_equal(r.end_offset, SEG); /* the last segment is full */
    assert_string_equal(r.last_segment, "00000000000000000004.wal");
    /* Reopened on a full segment: the next record starts a new one. */
    w = open_writer(NULL, SEG);
    append_batch(w, 1, 10);
    wal_writer_close(w);
    assert_int_equal(check_segments(), 4);
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.records, 5);
}

/* A new segment size applies to new segments; the current one keeps its. */
static void test_segment_size_change(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    w = open_writer(NULL, 3 * SEG);
    while (wal_writer_last_lsn(w) < 150)
        append_batch(w, 5, 2000);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    struct stat st;
    assert_int_equal(stat(seg_path(1), &st), 0);
    assert_int_equal(st.st_size, SEG);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_true(r.segments >= 2);
    assert_int_equal(r.segment_bytes, 3 * SEG);
    assert_int_equal(stat(dir_path(r.last_segment), &st), 0);
    assert_int_equal(st.st_size, 3 * SEG);
    assert_int_equal(s.n, last);
    assert_int_equal(s.bad, 0);
}

static void test_skip_verified(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    for (int b = 0; b < 60; b++)
        append_batch(w, 6, 1000 + (uint64_t)b);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    assert_true(n >= 4);
    uint64_t s2 = segs[1].first_lsn, s3 = segs[2].first_lsn;
    free(segs);

    /* Damage in segment 1: a full scan refuses... */
    long off = 0, size = 0;
    find_record(1, 5, &off, &size);
    poke(seg_path(1), off + 50, 0x04);
    wal_scan_result r;
    assert_int_equal(scan_plain(&r), WAL_E_CORRUPT);
    /* ... a replay from a later LSN skips it by name. */
    seen s = {0};
    wal_scan_options o = {.dir = dir,
                          .hall_id = HALL,
                          .from_lsn = s3 + 2,
                          .skip_verified = true,
                          .visit = visit_check,
                          .ctx = &s};
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(s.first, s3 + 3);
    assert_int_equal(s.last, last);
    assert_int_equal(s.bad, 0);
    assert_int_equal(r.last_lsn, last);
    assert_int_equal(r.first_lsn, s3); /* read from segment s3 on */
    /* from_lsn = s2 - 1: segment 1 holds only applied records: skipped. */
    o.from_lsn = s2 - 1;
    memset(&s, 0, sizeof s);
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_int_equal(s.first, s2);
    /* from_lsn = s2 - 2: the last record of segment 1 is still to visit. */
    o.from_lsn = s2 - 2;
    assert_int_equal(wal_scan(&o, &r), WAL_E_CORRUPT);
    o.skip_verified = false;
    o.from_lsn = s3 + 2;
    assert_int_equal(wal_scan(&o, &r), WAL_E_CORRUPT);
    poke(seg_path(1), off + 50, 0x04);

    /* What is read is still checked: the chain in the first segment read
     * is seeded from its header (a payload edit with its CRC fixed)... */
    o.skip_verified = true;
    size_t nb;
    uint8_t *b = file_read(seg_path(s3), &nb);
    uint8_t *keep = malloc(nb);
    memcpy(keep, b, nb);
    size_t offs[256], sizes[256];
    assert_true(record_offsets(b, nb, offs, sizes, 256) > 3);
    b[offs[1] + WAL_RECORD_HEADER_LEN] ^= 1;
    wal_put32(b + offs[1] + sizes[1] - 4, wal_crc32c(0, b + offs[1], sizes[1] - 4));
    file_write(seg_path(s3), b, nb);
    assert_int_equal(wal_scan(&o, &r), WAL_E_CHAIN);
    assert_int_equal(r.bad_at.lsn, s3 + 1);
    /* ... and the LSNs from its header's first LSN. */
    memcpy(b, keep, nb);
    wal_put64(b + offs[0] + 8, s3 + 1);
    wal_put32(b + offs[0] + sizes[0] - 4, wal_crc32c(0, b + offs[0], sizes[0] - 4));
    file_write(seg_path(s3), b, nb);
    assert_int_equal(wal_scan(&o, &r), WAL_E_GAP);
    assert_int_equal(r.bad_at.lsn, s3);
    /* ... and the next segment must continue its chain. */
    file_write(seg_path(s3), keep, nb);
    memcpy(b, keep, nb);
    b[offs[2] + WAL_RECORD_HEADER_LEN] ^= 1;
    reseal(b, nb, offs[2]);
    file_write(seg_path(s3), b, nb);
    assert_int_equal(wal_scan(&o, &r), WAL_E_CHAIN);
    assert_int_equal(r.bad_at.offset, 0); /* the header of the next segment */
    file_write(seg_path(s3), keep, nb);
    assert_int_equal(wal_scan(&o, &r), 0);
    free(b);
    free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollover, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_batch_spanning_segments, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_sync_off_syncs_at_rollover, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_exact_fit, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_segment_size_change, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_skip_verified, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
