/* tests/unit/test_wal_damage.c: damage that must refuse, named by
 * segment, offset and LSN: a flipped bit anywhere in any record before
 * the last, in any segment; bad segment headers (another hall, a wrong
 * first LSN, a bad CRC, a newer version, a broken carried hash, a missing
 * segment); the hash chain (an edited payload with its CRC fixed, a
 * deleted or swapped record renumbered); time going backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"

/* A log of two segments: the first full, the second with a few records. */
static uint64_t two_segments(uint64_t *second)
{
    wal_writer *w = open_writer(NULL, SEG);
    wal_scan_result r;
    do
        append_batch(w, 5, 1000 + wal_writer_last_lsn(w));
    while (scan_plain(&r) == 0 && r.segments < 2);
    append_batch(w, 3, 9000);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    assert_true(wal_segment_parse_name(r.last_segment, second));
    return last;
}

static void expect_bad(int code, uint64_t seg, long off, uint64_t lsn, const char *words)
{
    wal_scan_result r;
    int rc = recover_plain(&r);
    if (rc != code || (long)r.bad_at.offset != off || r.bad_at.lsn != lsn)
        fail_msg("want %s at %ld LSN %llu, got %s: %s", wal_strerror(code), off,
                 (unsigned long long)lsn, wal_strerror(rc), r.message);
    char name[64], want[160];
    wal_segment_name(name, seg);
    assert_string_equal(r.bad_at.segment, name);
    snprintf(want, sizeof want, "segment %s offset %ld (LSN %llu): ", name, off,
             (unsigned long long)lsn);
    if (strncmp(r.message, want, strlen(want)) != 0 || (words && !strstr(r.message, words)))
        fail_msg("message: %s", r.message);
    assert_false(r.torn);
    assert_int_equal(count_files(".broken"), 0);
    /* The plain scan says the same. */
    wal_scan_result r2;
    assert_int_equal(scan_plain(&r2), code);
    assert_string_equal(r2.message, r.message);
}

/* A flipped bit in any record but the log's last, wherever the bit is
 * (length, type, id length, LSN, time, actor, payload, hash, CRC), in
 * both segments, refuses at that record. */
static void test_flipped_bit_before_tail_refuses(void **state)
{
    (void)state;
    uint64_t second;
    uint64_t last = two_segments(&second);
    size_t n1, n2;
    uint8_t *keep1 = file_read(seg_path(1), &n1);
    uint8_t *keep2 = file_read(seg_path(second), &n2);
    int cases = 0;
    for (uint64_t lsn = 1; lsn < last; lsn++) {
        uint64_t seg = lsn < second ? 1 : second;
        long off = 0, size = 0;
        find_record(seg, lsn, &off, &size);
        long len = size - WAL_RECORD_OVERHEAD;
        long spots[] = {off,
                        off + 2,
                        off + 4,
                        off + 7,
                        off + 8,
                        off + 17,
                        off + 24,
                        off + 40,
                        off + 40 + len / 2,
                        off + 40 + len,
                        off + 40 + len + 31,
                        off + size - 4,
                        off + size - 1};
        for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++)
            for (uint8_t bit = 1; bit; bit = (uint8_t)(bit << 3)) {
                poke(seg_path(seg), spots[i], bit);
                expect_bad(WAL_E_CORRUPT, seg, off, lsn, "not a torn tail");
                poke(seg_path(seg), spots[i], bit);
                cases++;
            }
    }
    assert_true(cases > 500);
    /* Untouched, the log is good. */
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.last_lsn, last);
    free(keep1);
    free(keep2);
}

/* A length grown so that the record swallows every later one and ends
 * in the zeros: it would look like a torn tail but for its successor. */
static void test_swallowing_length_refuses(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 6, 1000);
    wal_writer_close(w);
    long off = 0, size = 0;
    find_record(1, 3, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    uint8_t *b = malloc(n);
    /* Into the zeros after the last record. */
    memcpy(b, keep, n);
    wal_put32(b + off, (uint32_t)(SEG - off - WAL_RECORD_OVERHEAD - 10));
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CORRUPT, 1, off, 3, "the next record (LSN 4) follows intact");
    /* Past the end of the segment. */
    wal_put32(b + off, wal_get32(keep + off) | 0x10000);
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CORRUPT, 1, off, 3, "not a torn tail");
    /* Past the end of a short file: a last segment shorter than its
     * header's size is itself damage (the writer makes them full-size). */
    wal_put32(b + off, (uint32_t)(SEG - off - WAL_RECORD_OVERHEAD - 10));
    file_write(seg_path(1), b, (size_t)(off + 4 * size));
    expect_bad(WAL_E_CORRUPT, 1, off + 4 * size, 1, "the segment was truncated");
    /* The last record's length past the end of the segment: no torn
     * write leaves such a length, so it is not cut as a torn tail. */
    long loff = 0, lsize = 0;
    file_write(seg_path(1), keep, n);
    find_record(1, 6, &loff, &lsize);
    memcpy(b, keep, n);
    wal_put32(b + loff, (uint32_t)(SEG - loff));
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CORRUPT, 1, loff, 6, "impossible record header");
    free(b);
    free(keep);
}

/* Headers that cannot be, even with a matching CRC (a forger's, or a
 * bug's): refused, never read past their bounds. */
static void test_impossible_headers_refuse(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 5, 1000);
    wal_writer_close(w);
    long off = 0, size = 0;
    find_record(1, 2, &off, &size);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    uint8_t *b = malloc(n);
    struct {
        long at;
        int width;
        uint32_t value;
    } edits[] = {
        {7, 1, WAL_ACTOR_ID_MAX + 1}, /* actor id length */
        {7, 1, 255},
        {4, 2, 0}, /* type 0 */
        {0, 4, 0}, /* empty payload */
        {0, 4, WAL_MAX_PAYLOAD + 1},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, keep, n);
        uint8_t *p = b + off;
        if (edits[i].width == 1)
            p[edits[i].at] = (uint8_t)edits[i].value;
        else if (edits[i].width == 2)
            wal_put16(p + edits[i].at, (uint16_t)edits[i].value);
        else
            wal_put32(p + edits[i].at, edits[i].value);
        wal_put32(p + size - 4, wal_crc32c(0, p, (size_t)size - 4));
        file_write(seg_path(1), b, n);
        expect_bad(WAL_E_CORRUPT, 1, off, 2, "impossible record header");
    }
    free(b);
    free(keep);
}

static void set_version(uint8_t *h)
{
    wal_put32(h + 8, WAL_FORMAT_VERSION + 1);
}
static void set_other_hall(uint8_t *h)
{
    memcpy(h + 32, "other-hall", 11);
}
static void set_first_lsn_7(uint8_t *h)
{
    wal_put64(h + 16, 7);
}
static void flip_carried_hash(uint8_t *h)
{
    h[64 + 5] ^= 0x40;
}
static void set_tiny_size(uint8_t *h)
{
    wal_put64(h + 24, 100);
}

static void test_segment_headers(void **state)
{
    (void)state;
    uint64_t second;
    uint64_t last = two_segments(&second);
    size_t n1, n2;
    uint8_t *keep1 = file_read(seg_path(1), &n1);
    uint8_t *keep2 = file_read(seg_path(second), &n2);
    wal_scan_result r;
    char name2[64];
    wal_segment_name(name2, second);

    /* The log of another hall. */
    wal_scan_options o = {.dir = dir, .hall_id = "other-hall"};
    assert_int_equal(wal_scan(&o, &r), WAL_E_HALL);
    assert_non_null(strstr(r.message, "segment 00000000000000000001.wal offset 0"));
    assert_non_null(strstr(r.message, "other-hall"));
    assert_int_equal(wal_recover(&o, NULL, &r), WAL_E_HALL);
    /* One segment of another hall among ours, even with no hall given. */
    edit_header(second, set_other_hall);
    expect_bad(WAL_E_HALL, second, 0, second, "other-hall");
    o.hall_id = NULL;
    assert_int_equal(wal_scan(&o, &r), WAL_E_HALL);
    file_write(seg_path(second), keep2, n2);
    assert_int_equal(wal_scan(&o, &r), 0);
    assert_string_equal(r.hall_id, HALL);

    /* A header CRC that does not match: any bit of the header. */
    for (long at = 0; at < WAL_SEGMENT_HEADER_LEN; at += 5) {
        poke(seg_path(1), at, 0x08);
        expect_bad(WAL_E_HEADER, 1, 0, 1, NULL);
        poke(seg_path(1), at, 0x08);
        poke(seg_path(second), at, 0x80);
        expect_bad(WAL_E_HEADER, second, 0, second, NULL);
        poke(seg_path(second), at, 0x80);
    }
    poke(seg_path(second), 124, 1);
    expect_bad(WAL_E_HEADER, second, 0, second, "header CRC");
    poke(seg_path(second), 124, 1);
    poke(seg_path(1), 0, 1);
    expect_bad(WAL_E_HEADER, 1, 0, 1, "magic");
    poke(seg_path(1), 0, 1);

    /* A newer format version, with a good CRC. */
    edit_header(second, set_version);
    expect_bad(WAL_E_VERSION, second, 0, second, "version 2");
    file_write(seg_path(second), keep2, n2);

    /* Fields that cannot be (a segment smaller than the minimum). */
    edit_header(1, set_tiny_size);
    expect_bad(WAL_E_HEADER, 1, 0, 1, NULL);
    file_write(seg_path(1), keep1, n1);

    /* A first LSN that is not the name's. */
    edit_header(1, set_first_lsn_7);
    expect_bad(WAL_E_HEADER, 1, 0, 1, "first LSN 7");
    file_write(seg_path(1), keep1, n1);

    /* Renamed (name and header agree): the LSNs do not continue. */
    wal_seg_header h;
    assert_int_equal(wal_header_decode(keep2, &h), 0);
    uint8_t *moved = malloc(n2);
    memcpy(moved, keep2, n2);
    h.first_lsn = second + 1;
    wal_header_encode(moved, &h);
    unlink(seg_path(second));
    file_write(seg_path(second + 1), moved, n2);
    expect_bad(WAL_E_GAP, second + 1, 0, second, "records are missing");
    h.first_lsn = second - 1;
    wal_header_encode(moved, &h);
    unlink(seg_path(second + 1));
    file_write(seg_path(second - 1), moved, n2);
    expect_bad(WAL_E_GAP, second - 1, 0, second, "overlap");
    unlink(seg_path(second - 1));
    free(moved);

    /* A missing middle segment: a gap at the next header. */
    file_write(seg_path(second), keep2, n2);
    assert_int_equal(rename(seg_path(second), dir_path("keep2")), 0);
    uint8_t *third = malloc(n2);
    memcpy(third, keep2, n2);
    h.first_lsn = last + 1;
    wal_header_encode(third, &h);
    memset(third + WAL_SEGMENT_HEADER_LEN, 0, n2 - WAL_SEGMENT_HEADER_LEN);
    file_write(seg_path(last + 1), third, n2);
    expect_bad(WAL_E_GAP, last + 1, 0, second, "records are missing");
    unlink(seg_path(last + 1));
    free(third);
    assert_int_equal(rename(dir_path("keep2"), seg_path(second)), 0);

    /* The carried chain hash is not the previous segment's head. */
    edit_header(second, flip_carried_hash);
    expect_bad(WAL_E_CHAIN, second, 0, second, "carried");
    file_write(seg_path(second), keep2, n2);
    /* ... nor the genesis hash of the hall in the first one. */
    edit_header(1, flip_carried_hash);
    expect_bad(WAL_E_CHAIN, 1, 0, 1, "genesis");
    file_write(seg_path(1), keep1, n1);

    /* A file too short to hold a header. */
    file_write(seg_path(second), keep2, 100);
    expect_bad(WAL_E_HEADER, second, 0, second, "less than a segment header");
    file_write(seg_path(second), keep2, n2);

    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.last_lsn, last);
    free(keep1);
    free(keep2);
}

/* Rewrites record `lsn`'s bytes through the image b and writes it back. */
static void test_chain(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 6, 1000);
    wal_writer_close(w);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    uint8_t *b = malloc(n);
    size_t offs[16], sizes[16];
    assert_int_equal(record_offsets(keep, n, offs, sizes, 16), 6);

    /* One payload byte edited, its CRC recomputed: only the chain knows. */
    memcpy(b, keep, n);
    b[offs[2] + WAL_RECORD_HEADER_LEN + 1] ^= 0x20;
    wal_put32(b + offs[2] + sizes[2] - 4, wal_crc32c(0, b + offs[2], sizes[2] - 4));
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CHAIN, 1, (long)offs[2], 3, "hash chain");
    /* The same with the edit in the time, the actor or the type. */
    long fields[] = {4, 6, 17, 25};
    for (size_t i = 0; i < 4; i++) {
        memcpy(b, keep, n);
        b[offs[4] + fields[i]] ^= 0x01;
        wal_put32(b + offs[4] + sizes[4] - 4, wal_crc32c(0, b + offs[4], sizes[4] - 4));
        file_write(seg_path(1), b, n);
        expect_bad(WAL_E_CHAIN, 1, (long)offs[4], 5, "hash chain");
    }

    /* Record 3 deleted, later ones moved down and renumbered, CRCs fixed. */
    memset(b, 0, n);
    memcpy(b, keep, offs[2]);
    size_t pos = offs[2];
    for (int i = 3; i < 6; i++) {
        memcpy(b + pos, keep + offs[i], sizes[i]);
        wal_put64(b + pos + 8, (uint64_t)i);
        wal_put32(b + pos + sizes[i] - 4, wal_crc32c(0, b + pos, sizes[i] - 4));
        pos += sizes[i];
    }
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CHAIN, 1, (long)offs[2], 3, "hash chain");

    /* Records 2 and 3 swapped, renumbered, CRCs fixed. */
    memcpy(b, keep, n);
    pos = offs[1];
    memcpy(b + pos, keep + offs[2], sizes[2]);
    wal_put64(b + pos + 8, 2);
    wal_put32(b + pos + sizes[2] - 4, wal_crc32c(0, b + pos, sizes[2] - 4));
    pos += sizes[2];
    memcpy(b + pos, keep + offs[1], sizes[1]);
    wal_put64(b + pos + 8, 3);
    wal_put32(b + pos + sizes[1] - 4, wal_crc32c(0, b + pos, sizes[1] - 4));
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_CHAIN, 1, (long)offs[1], 2, "hash chain");

    /* Swapped without renumbering: the LSN tells first. */
    memcpy(b, keep, n);
    memcpy(b + offs[1], keep + offs[2], sizes[2]);
    memcpy(b + offs[1] + sizes[2], keep + offs[1], sizes[1]);
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_GAP, 1, (long)offs[1], 2, "holds LSN 3");

    /* A record deleted without renumbering: a gap. */
    memset(b, 0, n);
    memcpy(b, keep, offs[3]);
    memcpy(b + offs[3], keep + offs[4], offs[5] + sizes[5] - offs[4]);
    file_write(seg_path(1), b, n);
    expect_bad(WAL_E_GAP, 1, (long)offs[3], 4, "holds LSN 5");

    /* Resealed by hand from the edit on (chain and CRCs recomputed), the
     * edit is invisible to the reader: the chain is a checksum, not a
     * signature. This pins the test helper, not the WAL. */
    memcpy(b, keep, n);
    b[offs[2] + WAL_RECORD_HEADER_LEN + 1] ^= 0x20;
    reseal(b, n, offs[2]);
    file_write(seg_path(1), b, n);
    wal_scan_result r;
    assert_int_equal(scan_plain(&r), 0);

    file_write(seg_path(1), keep, n);
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.last_lsn, 6);
    free(b);
    free(keep);
}

/* Time going backwards in a log that is otherwise perfect (chain and CRCs
 * recomputed): refused at the record, within and across segments. */
static void test_time_backwards_refuses(void **state)
{
    (void)state;
    uint64_t second;
    uint64_t last = two_segments(&second);
    size_t n;
    uint8_t *keep = file_read(seg_path(1), &n);
    uint8_t *b = malloc(n);
    size_t offs[512], sizes[512];
    int k = record_offsets(keep, n, offs, sizes, 512);
    assert_true(k > 4);
    memcpy(b, keep, n);
    uint64_t prev = wal_get64(b + offs[2] + 16);
    wal_put64(b + offs[3] + 16, prev - 1);
    reseal(b, n, offs[3]);
    file_write(seg_path(1), b, n);
    /* The segment's head changed too, so only the first segment. */
    assert_int_equal(rename(seg_path(second), dir_path("away")), 0);
    expect_bad(WAL_E_TIME, 1, (long)offs[3], 4, "before the previous record's");
    /* Equal times are fine. */
    wal_put64(b + offs[3] + 16, prev);
    reseal(b, n, offs[3]);
    file_write(seg_path(1), b, n);
    wal_scan_result r;
    assert_int_equal(scan_plain(&r), 0);
    file_write(seg_path(1), keep, n);
    assert_int_equal(rename(dir_path("away"), seg_path(second)), 0);

    /* Across segments: the second's first record before the first's last. */
    size_t n2;
    uint8_t *b2 = file_read(seg_path(second), &n2);
    uint64_t t_last = wal_get64(keep + offs[k - 1] + 16);
    wal_put64(b2 + WAL_SEGMENT_HEADER_LEN + 16, t_last - 1);
    reseal(b2, n2, 0);
    file_write(seg_path(second), b2, n2);
    expect_bad(WAL_E_TIME, second, WAL_SEGMENT_HEADER_LEN, second, "before");
    (void)last;
    free(b2);
    free(b);
    free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flipped_bit_before_tail_refuses, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_swallowing_length_refuses, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_impossible_headers_refuse, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_segment_headers, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_chain, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_time_backwards_refuses, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
