/* tests/unit/test_hall_idem.c: how long an idem entry answers repeats
 * (docs/PROTOCOL.md: 24 h), and that it then leaves the store, deleted by
 * later records at their times (daemon/hall/idem.c), so that a replay of
 * the log rebuilds the same state (fx_free checks the digest). The clock is
 * the test's. */
#include "hall_fixture.h"

#define DAY_MS (24 * HOUR_MS)
/* Tuesday 2026-11-24, a working day. */
#define TUE(hh, mm) fx_at(2026, 11, 24, hh, mm)

/* Entries in the idem database and in its time index. */
static void idem_counts(fixture *f, size_t *entries, size_t *indexed)
{
    MDB_txn *txn;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, f->st.idem, &st), 0);
    *entries = st.ms_entries;
    assert_int_equal(mdb_stat(txn, f->st.idem_at, &st), 0);
    *indexed = st.ms_entries;
    mdb_txn_abort(txn);
}

static bool idem_held(fixture *f, fx_actor who, const char *idem)
{
    uint8_t key[HALL_ID_MAX + 80];
    size_t n = strlen(who.id), m = strlen(idem);
    key[0] = (uint8_t)who.role;
    memcpy(key + 1, who.id, n + 1);
    memcpy(key + 2 + n, idem, m);
    MDB_val k = {2 + n + m, key}, v;
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    int rc = mdb_get(txn, f->st.idem, &k, &v);
    mdb_txn_abort(txn);
    assert_true(rc == 0 || rc == MDB_NOTFOUND);
    return rc == 0;
}

static void take_idem(fixture *f, int64_t now, const char *idem, char *id, int want_rc)
{
    char json[96];
    snprintf(json, sizeof json, "{line: A, idem: %s}", idem);
    int rc = fx_do(f, "ticket.take", KIOSK, now, json);
    if (rc != want_rc)
        fail_msg("ticket.take %s at %lld: %d (%s), want %d", json, (long long)now, rc, f->e.msg,
                 want_rc);
    snprintf(id, 40, "%s", fx_str(f, "ticket_id"));
}

/* A repeat within 24 h gets the first answer; from 24 h on the entry is
 * gone from the store, and the same idem is a new request. */
static void test_a_repeat_within_24h_then_gone(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    int64_t t0 = TUE(10, 0);
    char first[40], again[40], later[40];
    size_t entries, indexed;
    take_idem(f, t0, "k1", first, 0);
    assert_true(idem_held(f, KIOSK, "k1"));
    take_idem(f, t0 + HOUR_MS, "k1", again, HALL_EXEC_REPLAY);
    assert_string_equal(again, first);
    /* Records in between (another take, the day's close at its time) keep it. */
    fx_take(f, t0 + 2 * HOUR_MS, "B", NULL);
    take_idem(f, t0 + DAY_MS - 1, "k1", again, HALL_EXEC_REPLAY);
    assert_string_equal(again, first);
    assert_true(idem_held(f, KIOSK, "k1"));
    /* 24 h after it: the next record, whatever it is, deletes it. */
    fx_take(f, t0 + DAY_MS, "B", NULL);
    assert_false(idem_held(f, KIOSK, "k1"));
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 0);
    assert_int_equal(indexed, 0);
    take_idem(f, t0 + DAY_MS, "k1", later, 0);
    assert_string_not_equal(later, first);
    assert_true(idem_held(f, KIOSK, "k1"));
    fx_free(f); /* the replay deletes the same entries: same digest */
}

/* Many entries expire at once: each record deletes a bounded number, the
 * oldest first, until none is left; a key used again after it expired but
 * before its old entry was deleted keeps its new entry. */
static void test_expiry_is_bounded_per_record_and_drains(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    int64_t t0 = TUE(10, 0);
    enum { N = 40 };
    char id[40], ids[N][40], key[16];
    size_t entries, indexed;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        take_idem(f, t0 + i, key, ids[i], 0);
    }
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, N);
    assert_int_equal(indexed, N);
    /* Past 24 h the newest key is used again: a new ticket, a new entry;
     * the record deletes some old ones, not all. */
    int64_t t1 = t0 + DAY_MS + N;
    take_idem(f, t1, "k39", id, 0);
    assert_string_not_equal(id, ids[N - 1]);
    idem_counts(f, &entries, &indexed);
    assert_true(entries > 1 && entries < N);
    assert_true(idem_held(f, KIOSK, "k39"));
    assert_false(idem_held(f, KIOSK, "k00"));
    /* Records without idem go on deleting, until only the new one is left
     * (its old index entry removed without touching it). */
    int records = 0;
    while (indexed > 1) {
        size_t before = indexed;
        fx_take(f, t1 + 1 + records, "B", NULL);
        records++;
        idem_counts(f, &entries, &indexed);
        assert_true(indexed < before);
    }
    assert_true(records < N);
    assert_int_equal(entries, 1);
    assert_true(idem_held(f, KIOSK, "k39"));
    char again[40];
    take_idem(f, t1 + DAY_MS - 1, "k39", again, HALL_EXEC_REPLAY);
    assert_string_equal(again, id);
    fx_free(f);
}

/* Reopens the fixture's hall on its store, read-only or not. */
static void reopen(fixture *f, bool read_only)
{
    char err[256];
    hall_close(f->h);
    hall_store_close(&f->st);
    assert_int_equal(hall_store_open(&f->st, f->dir, read_only, 0, err, sizeof err), 0);
    assert_int_equal(hall_open(&f->h, &f->st, err, sizeof err), 0);
}

/* A state written before the idem index existed (forged here by dropping
 * it): a read-only open serves it as it is; a writable open builds the
 * index from the entries' own times, and they then expire like new ones. */
static void test_a_state_from_before_the_index(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    int64_t t0 = TUE(10, 0);
    char first[40], again[40];
    size_t entries, indexed;
    take_idem(f, t0, "k1", first, 0);
    take_idem(f, t0 + 1, "k2", again, 0);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_drop(txn, f->st.idem_at, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    reopen(f, true);
    assert_true(f->st.no_idem_at);
    assert_true(idem_held(f, KIOSK, "k1"));

    reopen(f, false);
    assert_false(f->st.no_idem_at);
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 2);
    assert_int_equal(indexed, 2);
    take_idem(f, t0 + HOUR_MS, "k1", again, HALL_EXEC_REPLAY);
    assert_string_equal(again, first);
    fx_take(f, t0 + DAY_MS + 1, "B", NULL);
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 0);
    assert_int_equal(indexed, 0);
    fx_free(f); /* the replay (with the index from the start): same digest */
}

/* Rules 1 (a log from the first release) kept every entry: a repeat past
 * 24 h was a new request all the same, but the entry stayed. A config
 * record naming rules 2 turns expiry on from there. */
static void test_rules_1_keeps_entries(void **state)
{
    (void)state;
    fixture *f = fx_new_rules(TUE(8, 0), 1);
    assert_int_equal(hall_rules_version(f->h), 1);
    int64_t t0 = TUE(10, 0);
    char first[40], later[40];
    size_t entries, indexed;
    take_idem(f, t0, "k1", first, 0);
    take_idem(f, t0 + 2 * DAY_MS, "k2", later, 0);
    fx_take(f, t0 + 2 * DAY_MS + 1, "B", NULL);
    assert_true(idem_held(f, KIOSK, "k1"));
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 2);
    /* ... and the same key past 24 h is a new request under both rules. */
    take_idem(f, t0 + 2 * DAY_MS + 2, "k1", later, 0);
    assert_string_not_equal(later, first);
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 2);
    /* The log goes on under rules 2 from a config record naming them: that
     * record already deletes the entries past 24 h (both, by then). */
    assert_int_equal(fx_config(f, t0 + 4 * DAY_MS, HALL_RULES_VERSION), 0);
    assert_int_equal(hall_rules_version(f->h), HALL_RULES_VERSION);
    idem_counts(f, &entries, &indexed);
    assert_int_equal(entries, 0);
    fx_free(f); /* replayed: the same rules at the same records, same digest */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_repeat_within_24h_then_gone),
        cmocka_unit_test(test_expiry_is_bounded_per_record_and_drains),
        cmocka_unit_test(test_a_state_from_before_the_index),
        cmocka_unit_test(test_rules_1_keeps_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
