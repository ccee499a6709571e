/* tests/unit/test_wal_torn.c: the end of the log. A last record cut at
 * every byte, zero-filled to the preallocated size, is a torn tail:
 * recovered, reported, kept in a .broken copy, and the writer continues;
 * the same cut in a file shorter than the segment's size is damage (the
 * writer makes every segment full-size). A zero-filled tail is a clean
 * end. Zeros followed by data refuse, unless a lost page of the one
 * unsynced batch explains them (test_wal_torn_batch.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

/* Writes the first `cut` bytes of img as segment `first`, then zeros up to
 * SEG when zero_fill (a preallocated file), else nothing (a short file). */
static void write_cut(uint64_t first, const uint8_t *img, long cut, bool zero_fill)
{
    uint8_t *b = calloc(1, SEG);
    memcpy(b, img, (size_t)cut);
    file_write(seg_path(first), b, zero_fill ? SEG : (size_t)cut);
    free(b);
}

static void torn_every_offset(int segments)
{
    wal_writer *w = open_writer(NULL, SEG);
    wal_scan_result r;
    seen s;
    do
        append_batch(w, 6, 1000 + wal_writer_last_lsn(w));
    while (scan_plain(&r) == 0 && r.segments < segments);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_int_equal(r.segments, segments);
    uint64_t first;
    assert_true(wal_segment_parse_name(r.last_segment, &first));
    long off = 0, size = 0;
    find_record(first, last, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(first), &n);
    assert_int_equal(n, SEG);
    char broken[128];
    snprintf(broken, sizeof broken, "%s.broken", r.last_segment);

    for (int zero_fill = 0; zero_fill <= 1; zero_fill++) {
        for (long cut = off; cut < off + size; cut++) {
            write_cut(first, keep, cut, zero_fill);
            unlink(dir_path(broken));
            if (!zero_fill) {
                /* A short file: cut, not torn; refused, nothing repaired. */
                assert_int_equal(recover_plain(&r), WAL_E_CORRUPT);
                assert_int_equal(r.bad_at.offset, cut);
                assert_non_null(strstr(r.message, "the segment was truncated"));
                assert_false(r.torn);
                assert_int_equal(access(dir_path(broken), F_OK), -1);
                continue;
            }
            assert_int_equal(recover_plain(&r), 0);
            assert_int_equal(r.last_lsn, last - 1);
            assert_int_equal(r.end_offset, off);
            assert_string_equal(r.last_segment, seg_path(first) + strlen(dir) + 1);
            /* Cut exactly at the record's start: a clean end. */
            assert_int_equal(r.torn, cut > off);
            if (cut > off) {
                assert_string_equal(r.torn_at.segment, r.last_segment);
                assert_int_equal(r.torn_at.offset, off);
                assert_int_equal(r.torn_at.lsn, last);
                assert_true(r.torn_end > (uint64_t)off && r.torn_end <= (uint64_t)(off + size));
                assert_non_null(strstr(r.torn_what, "torn"));
                assert_string_equal(r.broken_copy, broken);
                /* The copy is the damaged segment, byte for byte. */
                size_t bn;
                uint8_t *bb = file_read(dir_path(broken), &bn);
                assert_int_equal(bn, zero_fill ? SEG : (size_t)cut);
                assert_memory_equal(bb, keep, (size_t)cut);
                assert_true(wal_all_zero(bb + cut, bn - (size_t)cut));
                free(bb);
            } else {
                assert_string_equal(r.broken_copy, "");
                assert_int_equal(access(dir_path(broken), F_OK), -1);
            }
            /* Repaired in place: the good part untouched, the rest zero. */
            size_t an;
            uint8_t *after = file_read(seg_path(first), &an);
            assert_memory_equal(after, keep, (size_t)off);
            assert_true(wal_all_zero(after + off, an - (size_t)off));
            free(after);
            /* A rescan is clean; earlier records are all there. */
            assert_int_equal(scan_check(&r, &s), 0);
            assert_false(r.torn);
            assert_int_equal(s.n, last - 1);
            assert_int_equal(s.bad, 0);
            /* The writer continues the LSNs; the log stays clean. */
            check_writer_continues(last - 1, SEG, false, 5000, &r);
            assert_int_equal(r.segments, segments);
        }
    }
    free(keep);
}

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    torn_every_offset(1);
}

/* The same in the last of several segments. */
static void test_torn_tail_every_offset_later_segment(void **state)
{
    (void)state;
    torn_every_offset(3);
}

/* A torn tail found twice (a crash during recovery) is cut again, and
 * the older copy is replaced. */
static void test_torn_tail_recovered_twice(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 4, 1000);
    wal_writer_close(w);
    long off = 0, size = 0;
    find_record(1, 4, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    write_cut(1, keep, off + 10, true);
    file_write(dir_path("00000000000000000001.wal.broken"), (const uint8_t *)"old", 3);
    file_write(dir_path("00000000000000000001.wal.broken.tmp"), (const uint8_t *)"x", 1);
    file_write(dir_path("00000000000000000009.wal.tmp"), (const uint8_t *)"x", 1);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.torn);
    size_t bn;
    uint8_t *bb = file_read(dir_path("00000000000000000001.wal.broken"), &bn);
    assert_int_equal(bn, SEG);
    free(bb);
    assert_int_equal(count_files(".tmp"), 0); /* leftovers removed */
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.torn);
    assert_int_equal(r.last_lsn, 3);
    free(keep);
}

/* A preallocated segment after a crash: records, then zeros. */
static void test_zero_filled_tail_is_clean(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    struct stat st;
    assert_int_equal(stat(seg_path(1), &st), 0);
    assert_int_equal(st.st_size, SEG); /* preallocated */
    long off = 0, size = 0;
    find_record(1, 3, &off, &size);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_false(r.torn);
    assert_int_equal(r.last_lsn, 3);
    assert_int_equal(r.end_offset, off + size);
    assert_int_equal(count_files(".broken"), 0);
    /* Short files, even ending at a record boundary or with a few zeros
     * after it, are not: the writer never leaves a segment shorter than
     * its header's size, so the file was cut, perhaps records with it. */
    for (long extra = 0; extra < 60; extra += 7) {
        assert_int_equal(truncate(seg_path(1), off + size + extra), 0);
        assert_int_equal(recover_plain(&r), WAL_E_CORRUPT);
        assert_non_null(strstr(r.message, "the segment was truncated"));
        assert_false(r.torn);
    }
    assert_int_equal(truncate(seg_path(1), WAL_SEGMENT_HEADER_LEN), 0);
    assert_int_equal(recover_plain(&r), WAL_E_CORRUPT);
    assert_int_equal(count_files(".broken"), 0);
}

static void expect_refusal(long bad_off, uint64_t lsn, long data_off)
{
    wal_scan_result r;
    recover_refused(&r); /* nothing repaired */
    assert_int_equal(r.bad_at.offset, bad_off);
    assert_int_equal(r.bad_at.lsn, lsn);
    assert_string_equal(r.bad_at.segment, "00000000000000000001.wal");
    char want[160];
    snprintf(want, sizeof want, "segment 00000000000000000001.wal offset %ld (LSN %llu): ", bad_off,
             (unsigned long long)lsn);
    assert_non_null(strstr(r.message, want));
    snprintf(want, sizeof want, "data follows at offset %ld: not a torn tail", data_off);
    assert_non_null(strstr(r.message, want));
}

/* Zeros followed by a valid-looking record: not a torn tail. */
static void test_zeros_then_data_refuses(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 3, 1000);
    wal_writer_close(w);
    long off = 0, size = 0;
    find_record(1, 3, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    uint8_t *b = malloc(n);

    /* Record 3 copied after 512 zero bytes. */
    memcpy(b, keep, n);
    memcpy(b + off + size + 512, b + off, (size_t)size);
    file_write(seg_path(1), b, n);
    expect_refusal(off + size, 4, off + size + 512);

    /* Record 3 moved behind a hole of zeros as long as itself. */
    memcpy(b, keep, n);
    memset(b + off, 0, (size_t)size);
    memcpy(b + off + size, keep + off, (size_t)size);
    file_write(seg_path(1), b, n);
    expect_refusal(off, 3, off + size);

    /* A zero header, then the rest of a record (its first page lost). */
    memcpy(b, keep, n);
    memset(b + off, 0, WAL_RECORD_HEADER_LEN);
    file_write(seg_path(1), b, n);
    long nz = off + WAL_RECORD_HEADER_LEN;
    while (!b[nz])
        nz++;
    expect_refusal(off, 3, nz);

    /* One stray byte in the page where the records end: no lost page
     * explains it. */
    memcpy(b, keep, n);
    b[WAL_PAGE - 1] = 1;
    file_write(seg_path(1), b, n);
    expect_refusal(off + size, 4, (long)WAL_PAGE - 1);

    /* One stray byte at the very end of the segment, a page after the
     * records' page (once refused here): the rest of the records' page
     * reads as zeros, as if the disk had lost it and kept the next page of
     * a batch, so it is now a torn batch (test_wal_torn_batch.c), cut and
     * kept in a .broken copy. */
    memcpy(b, keep, n);
    b[n - 1] = 1;
    file_write(seg_path(1), b, n);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_true(r.torn);
    assert_int_equal(r.torn_end, n);
    assert_int_equal(r.last_lsn, 3);
    assert_int_equal(count_files(".broken"), 1);
    unlink(dir_path("00000000000000000001.wal.broken"));

    /* A bad CRC in the last record, with data after the zeros. */
    memcpy(b, keep, n);
    b[off + 45] ^= 1;
    b[n - 100] = 7;
    file_write(seg_path(1), b, n);
    expect_refusal(off, 3, (long)n - 100);

    free(b);
    free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset_later_segment, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_recovered_twice, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_zero_filled_tail_is_clean, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_zeros_then_data_refuses, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
