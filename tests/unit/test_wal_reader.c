/* tests/unit/test_wal_reader.c: wal_read, reading durable records again
 * from a known place: every record from from_lsn to upto_lsn exactly
 * once, in order, across segments; a hint (an index sample or where the
 * last read stopped) is used when it is in the segment holding from_lsn
 * and ignored otherwise; the visitor and max_bytes stop a read and its
 * `next` goes on exactly there; nothing past upto_lsn is read; a bad CRC
 * and a missing record are errors, never skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_wal_util.h"
#include "wal/reader.h"

/* A log of n records over several SEG-byte segments, durable. */
static void make_log(int n)
{
    wal_writer *w = open_writer(NULL, SEG);
    for (int i = 0; i < n; i += 50)
        append_batch(w, n - i < 50 ? n - i : 50, 1000 + (uint64_t)i);
    wal_writer_close(w);
}

typedef struct positions {
    seen s;
    wal_pos at[1200]; /* where each LSN was read */
    int stop_after;   /* the visitor stops after this many records (0: never) */
} positions;

static int visit_pos(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    positions *p = ctx;
    visit_check(&p->s, rec, pos);
    if (rec->lsn < 1200)
        p->at[rec->lsn] = *pos;
    return p->stop_after && p->s.n >= (uint64_t)p->stop_after;
}

static int read_range(positions *p, uint64_t from, uint64_t upto, const wal_pos *hint,
                      wal_read_result *res)
{
    memset(&p->s, 0, sizeof p->s);
    wal_read_options o = {
        .dir = dir, .from_lsn = from, .upto_lsn = upto, .visit = visit_pos, .ctx = p};
    if (hint)
        o.hint = *hint;
    return wal_read(&o, res);
}

static void test_reads_every_range_across_segments(void **state)
{
    (void)state;
    make_log(1000);
    positions p = {0};
    wal_read_result res;
    assert_int_equal(read_range(&p, 1, 1000, NULL, &res), 0);
    assert_int_equal(p.s.bad, 0);
    assert_int_equal(p.s.n, 1000);
    assert_int_equal(p.s.first, 1);
    assert_int_equal(p.s.last, 1000);
    assert_int_equal(res.next.lsn, 1001);
    assert_int_equal(res.start.offset, WAL_SEGMENT_HEADER_LEN);
    int segs = 0;
    for (uint64_t l = 2; l <= 1000; l++)
        segs += strcmp(p.at[l].segment, p.at[l - 1].segment) != 0;
    assert_true(segs >= 5); /* the log spans several segments */
    /* Every start, every end: exactly the range, read from the segment
     * that holds the start (never from the log's start). */
    for (uint64_t from = 1; from <= 1000; from += 37)
        for (uint64_t upto = from; upto <= 1000; upto += 211) {
            positions q = {0};
            assert_int_equal(read_range(&q, from, upto, NULL, &res), 0);
            assert_int_equal(q.s.bad, 0);
            assert_int_equal(q.s.n, upto - from + 1);
            assert_int_equal(q.s.first, from);
            assert_int_equal(q.s.last, upto);
            assert_string_equal(res.start.segment, p.at[from].segment);
            assert_int_equal(res.next.lsn, upto + 1);
        }
}

static void test_hint_is_used_in_its_segment_only(void **state)
{
    (void)state;
    make_log(1000);
    positions p = {0};
    wal_read_result res;
    assert_int_equal(read_range(&p, 1, 1000, NULL, &res), 0);
    /* A hint a few records before from_lsn, in its segment: reading
     * starts at the hint, not at the segment's first record. */
    uint64_t from = 0;
    for (uint64_t l = 900; l > 3 && !from; l--)
        if (strcmp(p.at[l - 3].segment, p.at[l].segment) == 0 &&
            p.at[l - 3].offset > WAL_SEGMENT_HEADER_LEN)
            from = l;
    assert_true(from > 0);
    positions q = {0};
    assert_int_equal(read_range(&q, from, 1000, &p.at[from - 3], &res), 0);
    assert_int_equal(q.s.bad, 0);
    assert_int_equal(q.s.first, from);
    assert_int_equal(q.s.n, 1000 - from + 1);
    assert_int_equal(res.start.offset, p.at[from - 3].offset);
    assert_int_equal(res.start.lsn, from - 3);
    /* A hint in an earlier segment is ignored: the read starts at the
     * first record of the segment holding from_lsn. */
    assert_int_equal(read_range(&q, from, 1000, &p.at[1], &res), 0);
    assert_int_equal(q.s.first, from);
    assert_int_equal(q.s.n, 1000 - from + 1);
    assert_string_equal(res.start.segment, p.at[from].segment);
    assert_int_equal(res.start.offset, WAL_SEGMENT_HEADER_LEN);
}

static void test_stops_and_goes_on_exactly(void **state)
{
    (void)state;
    make_log(1000);
    /* Stopped by the visitor every 33 records, or by max_bytes, each read
     * goes on from the last one's `next`: together, every record once. */
    for (int by_bytes = 0; by_bytes < 2; by_bytes++) {
        uint64_t from = 5, total = 0, reads = 0;
        wal_pos hint = {.lsn = 0};
        while (from <= 1000) {
            positions q = {.stop_after = by_bytes ? 0 : 33};
            wal_read_result res;
            memset(&q.s, 0, sizeof q.s);
            wal_read_options o = {.dir = dir,
                                  .from_lsn = from,
                                  .upto_lsn = 1000,
                                  .hint = hint,
                                  .max_bytes = by_bytes ? 1 : 0,
                                  .visit = visit_pos,
                                  .ctx = &q};
            assert_int_equal(wal_read(&o, &res), 0);
            assert_int_equal(q.s.bad, 0);
            assert_int_equal(q.s.first, from);
            assert_int_equal(res.next.lsn, from + q.s.n);
            if (reads && hint.offset > WAL_SEGMENT_HEADER_LEN &&
                strcmp(hint.segment, res.start.segment) == 0)
                assert_int_equal(res.start.offset, hint.offset);
            total += q.s.n;
            from = res.next.lsn;
            hint = res.next;
            reads++;
        }
        assert_int_equal(total, 996);
        assert_true(reads > 10);
    }
}

static void test_nothing_past_upto_is_read(void **state)
{
    (void)state;
    make_log(300);
    positions p = {0};
    wal_read_result res;
    assert_int_equal(read_range(&p, 1, 300, NULL, &res), 0);
    /* Garbage right after record 200 (as a batch being written might look):
     * a read up to 200 never sees it. */
    long off = 0, size = 0;
    const wal_pos *at = &p.at[200];
    uint64_t seg_first = strtoull(at->segment, NULL, 10);
    find_record(seg_first, 200, &off, &size);
    poke(seg_path(seg_first), off + size + 3, 0xff);
    positions q = {0};
    assert_int_equal(read_range(&q, 150, 200, NULL, &res), 0);
    assert_int_equal(q.s.n, 51);
    assert_int_equal(q.s.bad, 0);
    /* ... and reading on into it is an error, not a skip. */
    assert_int_equal(read_range(&q, 150, 300, NULL, &res), WAL_E_CORRUPT);
    assert_int_equal(q.s.last, 200);
    assert_non_null(strstr(res.message, "LSN 201"));
}

static void test_missing_records_are_an_error(void **state)
{
    (void)state;
    make_log(1000);
    positions p = {0};
    wal_read_result res;
    assert_int_equal(read_range(&p, 1, 1000, NULL, &res), 0);
    /* A segment gone from the middle: the read stops where it ends. */
    uint64_t mid = strtoull(p.at[500].segment, NULL, 10);
    assert_int_equal(unlink(seg_path(mid)), 0);
    positions q = {0};
    assert_int_equal(read_range(&q, 2, 1000, NULL, &res), WAL_E_GAP);
    assert_int_equal(q.s.last, mid - 1);
    /* Asking for more than the log holds is a gap too. */
    assert_int_equal(read_range(&q, 990, 1005, NULL, &res), WAL_E_GAP);
    assert_int_equal(q.s.last, 1000);
    /* An archived start: reading begins at the oldest segment left. */
    assert_int_equal(unlink(seg_path(1)), 0);
    assert_int_equal(read_range(&q, 1, mid - 1, NULL, &res), 0);
    assert_true(q.s.first > 1);
    assert_int_equal(q.s.last, mid - 1);
    assert_int_equal(q.s.bad, 0);
}

static void test_bad_options(void **state)
{
    (void)state;
    wal_read_result res;
    wal_read_options o = {.dir = dir, .from_lsn = 0, .upto_lsn = 5};
    assert_int_equal(wal_read(&o, &res), -EINVAL);
    o.from_lsn = 1;
    assert_int_equal(wal_read(&o, &res), -ENOENT); /* no segment at all */
    o.from_lsn = 6;
    assert_int_equal(wal_read(&o, &res), 0); /* nothing wanted */
    assert_int_equal(res.next.lsn, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_every_range_across_segments, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_hint_is_used_in_its_segment_only, wal_setup,
                                        wal_teardown),
        cmocka_unit_test_setup_teardown(test_stops_and_goes_on_exactly, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_nothing_past_upto_is_read, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_missing_records_are_an_error, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
