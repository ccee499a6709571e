/* tests/unit/test_safe_lsn.c: the safe LSN a daemon publishes for `hallq
 * wal archive` (daemon/safe_lsn.c): what a checkpoint publishes (the commit
 * before it, never its own), and that a reader refuses a file that is not
 * the lock holder's, or not whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/safe_lsn.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/hq-safe-XXXXXX");
    assert_non_null(mkdtemp(dir));
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    nftw(*state, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void put_file(const char *dir, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/" SAFE_LSN_FILE, dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip_for_this_process_only(void **state)
{
    const char *dir = *state;
    uint64_t lsn = 7;
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -ENOENT);
    assert_int_equal(safe_lsn_publish(dir, 552), 0);
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), 0);
    assert_int_equal(lsn, 552);
    /* Another pid holds the lock: a leftover, not trusted. */
    lsn = 7;
    assert_int_equal(safe_lsn_read(dir, getpid() + 1, &lsn), -ESTALE);
    assert_int_equal(lsn, 7);
    /* Published again: replaced whole, no temporary file left. */
    assert_int_equal(safe_lsn_publish(dir, 1000), 0);
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), 0);
    assert_int_equal(lsn, 1000);
    char p[128];
    snprintf(p, sizeof p, "%s/" SAFE_LSN_FILE ".tmp", dir);
    assert_int_equal(access(p, F_OK), -1);
}

static void test_another_boot_is_not_trusted(void **state)
{
    const char *dir = *state;
    char text[200];
    uint64_t lsn = 7;
    snprintf(text, sizeof text,
             "hallq-safe-lsn 1\nlsn 9\npid %ld\nboot 00000000-0000-0000-0000-000000000000\n",
             (long)getpid());
    put_file(dir, text);
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -ESTALE);
    assert_int_equal(lsn, 7);
}

static void test_a_malformed_file_is_refused(void **state)
{
    const char *dir = *state;
    char good[200], text[240];
    assert_int_equal(safe_lsn_publish(dir, 42), 0);
    char p[128];
    snprintf(p, sizeof p, "%s/" SAFE_LSN_FILE, dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(good, 1, sizeof good - 1, f);
    fclose(f);
    good[n] = 0;
    const char *bad[] = {"", "hallq-safe-lsn 2\nlsn 9\n", "lsn 9\n", "hallq-safe-lsn 1\nlsn x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t lsn = 7;
        put_file(dir, bad[i]);
        assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -EINVAL);
        assert_int_equal(lsn, 7);
    }
    /* Cut short (as a torn write would leave it), or with more after it. */
    for (size_t cut = 0; cut < n; cut++) {
        uint64_t lsn = 7;
        snprintf(text, sizeof text, "%.*s", (int)cut, good);
        put_file(dir, text);
        assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -EINVAL);
        assert_int_equal(lsn, 7);
    }
    snprintf(text, sizeof text, "%slsn 99\n", good);
    put_file(dir, text);
    uint64_t lsn = 7;
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -EINVAL);
}

static void commit_applied(hall_store *st, uint64_t v, bool publish, const char *dir)
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(st->env, NULL, 0, &txn), 0);
    assert_int_equal(hall_store_set_applied_lsn(st, txn, v), 0);
    safe_lsn_mark m;
    safe_lsn_before_commit(&m, st, txn);
    assert_int_equal(m.rc, 0);
    assert_int_equal(m.committing, v);
    assert_int_equal(mdb_txn_commit(txn), 0);
    if (publish)
        safe_lsn_after_commit(&m, dir);
}

/* A checkpoint publishes the commit before it (which its data sync made
 * durable), never its own; one that adds nothing publishes nothing. */
static void test_a_checkpoint_publishes_the_commit_before(void **state)
{
    const char *dir = *state;
    hall_store st;
    char err[256];
    uint64_t lsn = 0;
    assert_int_equal(hall_store_open(&st, dir, false, 0, err, sizeof err), 0);
    commit_applied(&st, 5, false, dir); /* e.g. recovery's commit at start */
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), -ENOENT);
    commit_applied(&st, 9, true, dir);
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), 0);
    assert_int_equal(lsn, 5);
    commit_applied(&st, 30, true, dir);
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), 0);
    assert_int_equal(lsn, 9);
    commit_applied(&st, 30, true, dir); /* the applied LSN stays: LMDB may skip the sync */
    assert_int_equal(safe_lsn_read(dir, getpid(), &lsn), 0);
    assert_int_equal(lsn, 9);
    hall_store_close(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_for_this_process_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_boot_is_not_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_malformed_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_checkpoint_publishes_the_commit_before, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
