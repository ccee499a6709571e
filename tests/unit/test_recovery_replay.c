/* tests/unit/test_recovery_replay.c: recovery_replay (daemon/recovery.c)
 * on a damaged log (issue 12, defect 10). When the scan finds damage after
 * records were visited, the replay's write transaction was left open: a
 * later write transaction (the daemon's loop) would wait on LMDB's writer
 * lock for ever. It must be aborted on every exit path, with nothing of
 * the partial replay committed. */
#include "hall_fixture.h"

#include "daemon/recovery.h"
#include "wal/wal.h"
#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

static void write_log(const fixture *f, const char *wal_dir)
{
    wal_writer_options wo = {.dir = wal_dir, .hall_id = "demo", .segment_bytes = 1u << 20};
    wal_writer *w;
    assert_int_equal(wal_writer_open(&w, &wo, NULL), 0);
    for (int i = 0; i < f->n; i++) {
        const fx_rec *x = &f->recs[i];
        assert_int_equal(wal_writer_append(w, x->type, (uint64_t)x->at, x->role, x->actor,
                                           f->log.p + x->off, (uint32_t)x->len, NULL),
                         0);
    }
    assert_int_equal(wal_writer_seal(w), 0);
    assert_int_equal(wal_writer_complete(w, wal_writer_flush(w)), 0);
    wal_writer_close(w);
}

/* Flips a payload byte of record `lsn` of the first segment. */
static void flip_record(const char *wal_dir, uint64_t lsn)
{
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000000001.wal", wal_dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t h[WAL_RECORD_HEADER_LEN];
    off_t pos = WAL_SEGMENT_HEADER_LEN;
    for (uint64_t l = 1; l < lsn; l++) {
        assert_int_equal(pread(fd, h, sizeof h, pos), (ssize_t)sizeof h);
        pos += WAL_RECORD_OVERHEAD + wal_get32(h);
    }
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, pos + WAL_RECORD_HEADER_LEN + 1), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, pos + WAL_RECORD_HEADER_LEN + 1), 1);
    close(fd);
}

typedef struct begin_try {
    MDB_env *env;
    int rc;
    volatile int done;
} begin_try;

static void *try_begin(void *arg)
{
    begin_try *t = arg;
    MDB_txn *txn;
    t->rc = mdb_txn_begin(t->env, NULL, 0, &txn);
    if (t->rc == 0)
        mdb_txn_abort(txn);
    t->done = 1;
    return NULL;
}

static void test_damage_after_visited_records_leaves_no_txn_open(void **state)
{
    (void)state;
    fixture *f = fx_new(fx_at(2026, 11, 24, 9, 0));
    for (int i = 0; i < 6; i++)
        fx_take(f, fx_at(2026, 11, 24, 9, 1 + i), "A", NULL);
    char wal_dir[] = "/tmp/hallq-replay-XXXXXX";
    assert_non_null(mkdtemp(wal_dir));
    write_log(f, wal_dir);
    assert_true(f->n >= 5);
    /* Damage that is not a torn tail (records follow it, no page reads
     * as zeros), after records 1..3 were visited. */
    flip_record(wal_dir, 4);

    fixture *g = calloc(1, sizeof *g);
    fx_open_store(g);
    char err[512];
    assert_int_equal(recovery_replay(g->h, &g->st, wal_dir, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a torn tail"));

    /* A write txn can be begun: from another thread (it would wait for
     * the leaked one for ever: give it 10 s), then on this one. */
    begin_try t = {.env = g->st.env};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, try_begin, &t), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int jr = pthread_timedjoin_np(th, NULL, &until);
    if (jr == ETIMEDOUT)
        fail_msg("a write txn could not be begun: recovery_replay left one open");
    assert_int_equal(jr, 0);
    assert_int_equal(t.rc, 0);
    /* Nothing of the partial replay was committed. */
    MDB_txn *txn;
    uint64_t applied = 99;
    assert_int_equal(mdb_txn_begin(g->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(hall_store_applied_lsn(&g->st, txn, &applied), 0);
    mdb_txn_abort(txn);
    assert_int_equal(applied, 0);

    fx_close_store(g);
    free(g);
    nftw(wal_dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damage_after_visited_records_leaves_no_txn_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
