/* tests/unit/test_wal_writer.c: the writer's contract beyond plain
 * appends: rollback leaves no trace (the log is byte for byte the one
 * written without the dropped records), what the reader would refuse is
 * refused at append (too big, time going back, long actor ids), one batch
 * in flight at a time, and the flush on a worker thread while the owner
 * appends the next batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "test_wal_util.h"

static void flush_now(wal_writer *w)
{
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
}

/* Appends "junk" records that a rollback then drops. */
static void append_junk(wal_writer *w, int n, uint64_t at)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(wal_writer_append(w, 9, at, 3, "junk", "zzzzzzzzzz", 10, NULL), 0);
}

static void test_rollback(void **state)
{
    (void)state;
    /* Log A: with rollbacks. */
    wal_writer *w = open_writer(NULL, SEG);
    append_batch(w, 2, 1000);
    append_junk(w, 3, 7000); /* a later time, and rolled back */
    assert_int_equal(wal_writer_pending(w), 3);
    assert_int_equal(wal_writer_last_lsn(w), 5);
    wal_writer_rollback(w);
    assert_int_equal(wal_writer_pending(w), 0);
    assert_int_equal(wal_writer_last_lsn(w), 2);
    append_one(w, 2000); /* LSN 3, and a time before the dropped ones' */
    append_one(w, 2000);
    flush_now(w);
    wal_writer_rollback(w); /* nothing pending: nothing changes */
    append_junk(w, 1, 2500);
    wal_writer_rollback(w);
    append_batch(w, 2, 3000);
    assert_int_equal(wal_writer_last_lsn(w), 6);
    wal_writer_close(w);
    size_t na;
    uint8_t *a = file_read(seg_path(1), &na);

    /* Log B: the same records, never a rollback. */
    wal_reset_dir();
    w = open_writer(NULL, SEG);
    append_batch(w, 2, 1000);
    append_one(w, 2000);
    append_one(w, 2000);
    flush_now(w);
    append_batch(w, 2, 3000);
    wal_writer_close(w);
    size_t nb;
    uint8_t *b = file_read(seg_path(1), &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na); /* LSNs, chain, everything */
    free(a);
    free(b);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.bad, 0);
}

/* A rollback while a batch is in flight drops only the pending records. */
static void test_rollback_during_flight(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_one(w, 1000);
    append_one(w, 1000);
    assert_int_equal(wal_writer_seal(w), 0);
    append_junk(w, 4, 1500);
    wal_writer_rollback(w);
    assert_int_equal(wal_writer_last_lsn(w), 2);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), 2);
    append_batch(w, 1, 1000);
    assert_int_equal(wal_writer_last_lsn(w), 3);
    wal_writer_close(w);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.bad, 0);
}

/* A mark drops only what came after it: the pending batch keeps the groups
 * applied before (the daemon's group commit runs several into one batch
 * and redoes only the last). The log is byte for byte the one written
 * without the dropped records. */
static void test_rollback_to_mark(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_one(w, 1000);
    append_one(w, 1000);
    wal_mark m;
    wal_writer_mark(w, &m);
    append_junk(w, 3, 7000);
    wal_writer_rollback_to(w, &m);
    assert_int_equal(wal_writer_pending(w), 2);
    assert_int_equal(wal_writer_last_lsn(w), 2);
    append_one(w, 2000); /* a time before the dropped ones' */
    wal_writer_mark(w, &m);
    wal_writer_rollback_to(w, &m); /* nothing after it: nothing changes */
    flush_now(w);
    wal_writer_close(w);
    size_t na;
    uint8_t *a = file_read(seg_path(1), &na);

    wal_reset_dir();
    w = open_writer(NULL, SEG);
    append_one(w, 1000);
    append_one(w, 1000);
    append_one(w, 2000);
    flush_now(w);
    wal_writer_close(w);
    size_t nb;
    uint8_t *b = file_read(seg_path(1), &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
}

static void test_refusals(void **state)
{
    (void)state;
    /* Segments large enough that WAL_MAX_PAYLOAD is the limit. */
    uint64_t big_seg = 2 * WAL_MAX_PAYLOAD;
    wal_writer *w = open_writer(NULL, big_seg);
    uint8_t *p = calloc(1, WAL_MAX_PAYLOAD + 1);
    uint64_t lsn = 0;
    assert_int_equal(wal_writer_append(w, 1, 10, 0, "", p, 0, &lsn), WAL_E_TOOBIG);
    assert_int_equal(wal_writer_append(w, 1, 10, 0, "", p, WAL_MAX_PAYLOAD + 1, &lsn),
                     WAL_E_TOOBIG);
    assert_int_equal(wal_writer_append(w, 0, 10, 0, "", p, 1, &lsn), -EINVAL);
    assert_int_equal(wal_writer_append(w, 1, 10, 0, "seventeen-chars!!", p, 1, &lsn), -EINVAL);
    assert_int_equal(wal_writer_pending(w), 0);
    assert_int_equal(wal_writer_failed(w), 0);
    assert_int_equal(wal_writer_append(w, 1, 10, 0, NULL, p, WAL_MAX_PAYLOAD, &lsn), 0);
    assert_int_equal(lsn, 1);
    /* Time may stay, never go back (the reader would refuse the log). */
    assert_int_equal(wal_writer_append(w, 1, 10, 0, "", "a", 1, &lsn), 0);
    assert_int_equal(wal_writer_append(w, 1, 9, 0, "", "b", 1, &lsn), WAL_E_TIME);
    assert_int_equal(wal_writer_append(w, 1, 11, 0, "", "c", 1, &lsn), 0);
    assert_int_equal(lsn, 3);
    flush_now(w);
    wal_writer_close(w);
    /* The floor survives a restart: it is the last record's time. */
    w = open_writer(NULL, big_seg);
    assert_int_equal(wal_writer_append(w, 1, 10, 0, "", "d", 1, &lsn), WAL_E_TIME);
    assert_int_equal(wal_writer_append(w, 1, 11, 0, "", "d", 1, &lsn), 0);
    assert_int_equal(lsn, 4);
    flush_now(w);
    wal_writer_close(w);
    /* A record larger than an empty segment. */
    w = open_writer(NULL, SEG);
    uint32_t max = SEG - WAL_SEGMENT_HEADER_LEN - WAL_RECORD_OVERHEAD;
    assert_int_equal(wal_writer_append(w, 1, 20, 0, "", p, max + 1, &lsn), WAL_E_TOOBIG);
    wal_writer_close(w);
    free(p);
    wal_scan_result r;
    assert_int_equal(recover_plain(&r), 0);
    assert_int_equal(r.records, 4);
    assert_int_equal(r.last_at_ms, 11);
}

static void test_one_batch_in_flight(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    append_one(w, 1);
    assert_int_equal(wal_writer_seal(w), 0);
    append_one(w, 1);
    assert_int_equal(wal_writer_seal(w), WAL_E_BUSY);
    assert_int_equal(wal_writer_pending(w), 1); /* kept for the next seal */
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    assert_int_equal(wal_writer_durable_lsn(w), 1);
    flush_now(w);
    assert_int_equal(wal_writer_durable_lsn(w), 2);
    /* An empty batch is a no-op. */
    flush_now(w);
    assert_int_equal(wal_writer_durable_lsn(w), 2);
    wal_writer_close(w);
}

typedef struct worker {
    wal_writer *w;
    int rc;
} worker;

static void *flush_thread(void *arg)
{
    worker *k = arg;
    k->rc = wal_writer_flush(k->w);
    return NULL;
}

/* The daemon's pattern: the worker writes batch k while the owner
 * appends batch k+1; complete after the join. */
static void test_flush_on_worker_thread(void **state)
{
    (void)state;
    wal_writer *w = open_writer(NULL, SEG);
    uint64_t at = 1000;
    for (int i = 0; i < 8; i++)
        append_one(w, at);
    for (int round = 0; round < 60; round++) {
        assert_int_equal(wal_writer_seal(w), 0);
        uint64_t sealed = wal_writer_last_lsn(w);
        worker k = {.w = w};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, flush_thread, &k), 0);
        for (int i = 0; i < 1 + round % 11; i++)
            append_one(w, ++at);
        if (round % 7 == 3)
            wal_writer_rollback(w); /* the next batch redone, say */
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(wal_writer_complete(w, k.rc), 0);
        assert_int_equal(wal_writer_durable_lsn(w), sealed);
        if (wal_writer_pending(w) == 0)
            append_one(w, ++at);
    }
    flush_now(w);
    uint64_t last = wal_writer_last_lsn(w);
    wal_writer_close(w);
    wal_scan_result r;
    seen s;
    assert_int_equal(scan_check(&r, &s), 0);
    assert_int_equal(s.n, last);
    assert_int_equal(s.bad, 0);
    assert_true(r.segments > 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollback, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_during_flight, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_to_mark, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_one_batch_in_flight, wal_setup, wal_teardown),
        cmocka_unit_test_setup_teardown(test_flush_on_worker_thread, wal_setup, wal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
