/* tests/unit/test_wal_truncated.c: a segment that later segments follow,
 * cut short, is named itself: at a record boundary (the lost records would
 * otherwise show only as a gap at the next segment's header), inside its
 * zero padding (nothing lost, but a closed segment always has its full
 * size), or inside a record. The last segment cut at a record boundary is
 * still a clean end: the writer gives it its size back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

/* A log of three segments; returns the second's first LSN. */
static uint64_t three_segments(void)
{
    wal_writer *w = open_writer(NULL, SEG);
    wal_scan_result r;
    do
        append_batch(w, 5, 1000 + wal_writer_last_lsn(w));
    while (scan_plain(&r) == 0 && r.segments < 3);
    append_batch(w, 2, 9000);
    wal_writer_close(w);
    wal_seg_ent *segs;
    size_t n;
    assert_int_equal(wal_segment_list(dir, &segs, &n), 0);
    assert_int_equal(n, 3);
    uint64_t second = segs[1].first_lsn;
    free(segs);
    return second;
}

static void cut(uint64_t first, long size)
{
    assert_int_equal(truncate(seg_path(first), size), 0);
}

static void expect(int code, uint64_t seg, long off, uint64_t lsn, const char *words)
{
    wal_scan_result r;
    int rc = scan_plain(&r);
    char name[64];
    wal_segment_name(name, seg);
    if (rc != code || (long)r.bad_at.offset != off || r.bad_at.lsn != lsn ||
        strcmp(r.bad_at.segment, name) != 0 || !strstr(r.message, words))
        fail_msg("want %s in %s at %ld LSN %llu (%s), got %s: %s", wal_strerror(code), name, off,
                 (unsigned long long)lsn, words, wal_strerror(rc), r.message);
    /* Recovery refuses it the same way and repairs nothing. */
    assert_int_equal(recover_plain(&r), code);
    assert_false(r.torn);
    assert_int_equal(count_files(".broken"), 0);
}

static void test_middle_segment_cut_at_a_record_boundary(void **state)
{
    (void)state;
    uint64_t second = three_segments();
    long off, size;
    find_record(second, second + 2, &off, &size);
    cut(second, off);
    expect(WAL_E_CORRUPT, second, off, second + 2, "truncated");
}

static void test_middle_segment_cut_after_its_header(void **state)
{
    (void)state;
    uint64_t second = three_segments();
    cut(second, WAL_SEGMENT_HEADER_LEN);
    expect(WAL_E_CORRUPT, second, WAL_SEGMENT_HEADER_LEN, second, "truncated");
}

static void test_middle_segment_cut_in_its_zeros(void **state)
{
    (void)state;
    uint64_t second = three_segments();
    size_t n, offs[512], sizes[512];
    uint8_t *b = file_read(seg_path(second), &n);
    int k = record_offsets(b, n, offs, sizes, 512);
    free(b);
    size_t end = offs[k - 1] + sizes[k - 1];
    assert_true(end + 1 < SEG);
    cut(second, (long)end + 1);
    expect(WAL_E_CORRUPT, second, (long)end, second + (uint64_t)k, "truncated");
}

static void test_middle_segment_cut_inside_a_record(void **state)
{
    (void)state;
    uint64_t second = three_segments();
    long off, size;
    find_record(second, second + 1, &off, &size);
    cut(second, off + size / 2);
    expect(WAL_E_CORRUPT, second, off, second + 1, "later segments follow");
}

/* The last segment cut right after a record: the writer makes every
 * segment full-size before it writes to it, so a shorter last segment was
 * cut (and may have lost acknowledged records): damage, not a clean end
 * or a torn tail (issue 12, defect 11). */
static void test_last_segment_cut_at_a_record_boundary_refuses(void **state)
{
    (void)state;
    three_segments();
    wal_scan_result r;
    assert_int_equal(scan_plain(&r), 0);
    uint64_t last;
    assert_true(wal_segment_parse_name(r.last_segment, &last));
    long end = (long)r.end_offset;
    cut(last, end);
    expect(WAL_E_CORRUPT, last, end, last, "the segment was truncated");
    /* Cut inside a record, the same. */
    long off, size;
    find_record(last, last, &off, &size);
    cut(last, off + size / 2);
    expect(WAL_E_CORRUPT, last, off + size / 2, last, "the segment was truncated");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_middle_segment_cut_at_a_record_boundary, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_middle_segment_cut_after_its_header, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_middle_segment_cut_in_its_zeros, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_middle_segment_cut_inside_a_record, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_last_segment_cut_at_a_record_boundary_refuses,
                                        wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
