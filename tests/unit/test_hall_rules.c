/* tests/unit/test_hall_rules.c: rules versions (hall.h) and the state's
 * schema version (store.h). A config record names the rules that decide
 * the records after it (absent: 1); the state keeps them, across a batch
 * abort and a reopen; config.reload keeps them; newer rules are refused
 * with a message naming both versions, by the handler and by the replay.
 * The state's schema is stamped, an unstamped state with content is
 * schema 1 and is migrated when opened writable, a newer one refused. */
#include "hall_fixture.h"

#define TUE(hh, mm) fx_at(2026, 11, 24, hh, mm)

static uint64_t meta_u64(fixture *f, const char *key)
{
    MDB_txn *txn;
    uint64_t v;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(hall_meta_get_u64(&f->st, txn, key, &v), 0);
    mdb_txn_abort(txn);
    return v;
}

static void meta_set(fixture *f, const char *key, uint64_t v)
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    if (v) {
        assert_int_equal(hall_meta_put_u64(&f->st, txn, key, v), 0);
    } else {
        MDB_val k = {strlen(key), (void *)key};
        assert_int_equal(mdb_del(txn, f->st.meta, &k, NULL), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static int reopen(fixture *f, bool read_only, char *err, size_t errlen)
{
    hall_close(f->h);
    f->h = NULL;
    hall_store_close(&f->st);
    int rc = hall_store_open(&f->st, f->dir, read_only, 0, err, errlen);
    if (rc)
        return rc;
    return hall_open(&f->h, &f->st, err, errlen) ? -1 : 0;
}

static void test_the_config_record_names_the_rules(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    assert_int_equal(hall_rules_version(f->h), HALL_RULES_VERSION);
    assert_int_equal(meta_u64(f, "rules"), HALL_RULES_VERSION);
    fx_free(f);

    f = fx_new_rules(TUE(8, 0), 0); /* a record from before rules had versions */
    assert_int_equal(hall_rules_version(f->h), 1);
    assert_int_equal(meta_u64(f, "rules"), 1);
    /* A later config record switches them, from itself on. */
    assert_int_equal(fx_config(f, TUE(9, 0), 2), 0);
    assert_int_equal(hall_rules_version(f->h), 2);
    char err[256];
    assert_int_equal(reopen(f, false, err, sizeof err), 0);
    assert_int_equal(hall_rules_version(f->h), 2);
    fx_free(f);
}

static void test_newer_or_bad_rules_are_refused(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    assert_int_equal(fx_config(f, TUE(9, 0), 99), -1);
    assert_int_equal(f->e.code, PROTO_E_BAD_REQUEST);
    assert_non_null(strstr(f->e.msg, "rules 99 are newer than this build's (1 to 3)"));
    assert_int_equal(hall_rules_version(f->h), HALL_RULES_VERSION);
    assert_int_equal(meta_u64(f, "rules"), HALL_RULES_VERSION);

    /* The replay names the record and both versions, before running it. */
    proto_buf p;
    proto_buf_init(&p);
    msgpack_packer pk;
    proto_packer_init(&pk, &p);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_str(&pk, "op", "config");
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "text", "not even a config");
    proto_pack_kv_uint(&pk, "rules", 99);
    proto_pack_str(&pk, "result");
    msgpack_pack_map(&pk, 0);
    MDB_txn *txn;
    char err[256];
    int mdb_rc = 0;
    proto_buf scratch;
    proto_buf_init(&scratch);
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    assert_int_equal(hall_replay(f->h, txn, 12, TUE(9, 0), 1, HALL_ROLE_SYSTEM, "hallqd", p.p,
                                 p.len, &scratch, err, sizeof err, &mdb_rc),
                     -1);
    mdb_txn_abort(txn);
    hall_batch_abort(f->h);
    assert_string_equal(err, "WAL record 12 puts rules 99 in force for the records after it; this "
                             "build knows rules 1 to 3: use a newer hallq");
    proto_buf_free(&scratch);
    proto_buf_free(&p);

    /* rules: 0 is no version. */
    assert_int_equal(fx_config(f, TUE(9, 0), 0), 0); /* absent: 1 */
    assert_int_equal(hall_rules_version(f->h), 1);
    fx_free(f);
}

/* The rules follow the batch like the config: an aborted batch leaves the
 * ones in force before it. config.reload keeps them. */
static void test_rules_follow_the_batch_and_reload_keeps_them(void **state)
{
    (void)state;
    fixture *f = fx_new_rules(TUE(8, 0), 1);
    size_t len;
    const char *text = fx_demo_text(&len);
    proto_buf args, result;
    proto_buf_init(&args);
    proto_buf_init(&result);
    msgpack_packer pk;
    proto_packer_init(&pk, &args);
    msgpack_pack_map(&pk, 2);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, text, len);
    proto_pack_kv_uint(&pk, "rules", 2);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)args.p, args.len, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    hall_request r = {.def = hall_op_find("config", 6), .args = &o, .now_ms = TUE(9, 0)};
    r.actor.role = HALL_ROLE_SYSTEM;
    strcpy(r.actor.id, "hallqd");
    MDB_txn *txn;
    proto_error e = {0};
    int mdb_rc = 0;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    assert_int_equal(hall_exec(f->h, txn, &r, &result, &e, &mdb_rc), HALL_EXEC_RECORD);
    assert_int_equal(hall_rules_version(f->h), 2);
    mdb_txn_abort(txn);
    hall_batch_abort(f->h);
    assert_int_equal(hall_rules_version(f->h), 1);

    /* config.reload (the same args; its record carries no rules). */
    r.def = hall_op_find("config.reload", 13);
    r.actor.role = HALL_ROLE_ADMIN;
    strcpy(r.actor.id, "admin");
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    assert_int_equal(hall_exec(f->h, txn, &r, &result, &e, &mdb_rc), HALL_EXEC_RECORD);
    assert_int_equal(mdb_txn_commit(txn), 0);
    hall_batch_commit(f->h);
    assert_int_equal(hall_rules_version(f->h), 1);
    assert_int_equal(meta_u64(f, "rules"), 1);
    msgpack_zone_destroy(&z);
    proto_buf_free(&args);
    proto_buf_free(&result);
    fx_close_store(f); /* (the reload is not in f's log: no replay check) */
    free(f);
}

/* A state decided under newer rules (forged) is refused at open. */
static void test_a_state_of_newer_rules_is_refused(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    meta_set(f, "rules", 7);
    char err[256];
    assert_int_not_equal(reopen(f, false, err, sizeof err), 0);
    assert_string_equal(err, "the state was decided under rules 7; this build knows rules 1 to 3: "
                             "use a newer hallq");
    assert_null(f->h);
    hall_store_close(&f->st);
    nftw(f->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    proto_buf_free(&f->result);
    proto_buf_free(&f->payload);
    proto_buf_free(&f->log);
    msgpack_zone_destroy(&f->zone);
    free(f->recs);
    free(f);
}

static void test_schema_stamped_migrated_or_refused(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    assert_int_equal(meta_u64(f, "schema"), HALL_SCHEMA_VERSION);
    assert_int_equal(f->st.schema, HALL_SCHEMA_VERSION);
    fx_take(f, TUE(10, 0), "A", ", idem: k1");

    /* As the first release left it: no "schema", no idem index. */
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_drop(txn, f->st.idem_at, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    meta_set(f, "schema", 0);
    char err[256];
    assert_int_equal(reopen(f, true, err, sizeof err), 0); /* read as it is */
    assert_int_equal(f->st.schema, 1);
    assert_true(f->st.no_idem_at);
    assert_int_equal(meta_u64(f, "schema"), 0);
    assert_int_equal(reopen(f, false, err, sizeof err), 0); /* migrated and stamped */
    assert_int_equal(f->st.schema, HALL_SCHEMA_VERSION);
    assert_int_equal(meta_u64(f, "schema"), HALL_SCHEMA_VERSION);
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, f->st.idem_at, &st), 0);
    mdb_txn_abort(txn);
    assert_int_equal(st.ms_entries, 1);

    /* A newer schema: refused, writable or not, and left untouched. */
    meta_set(f, "schema", HALL_SCHEMA_VERSION + 1);
    for (int ro = 0; ro < 2; ro++) {
        hall_close(f->h);
        f->h = NULL;
        hall_store_close(&f->st);
        assert_int_equal(hall_store_open(&f->st, f->dir, ro, 0, err, sizeof err), MDB_INCOMPATIBLE);
        assert_non_null(strstr(err, "state.mdb was written with state schema 4; this build knows "
                                    "schemas 1 to 3: use a newer hallq"));
        assert_null(f->st.env);
    }
    assert_int_equal(hall_store_open(&f->st, f->dir, false, 0, err, sizeof err), MDB_INCOMPATIBLE);
    nftw(f->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    proto_buf_free(&f->result);
    proto_buf_free(&f->payload);
    proto_buf_free(&f->log);
    msgpack_zone_destroy(&f->zone);
    free(f->recs);
    free(f);
}

/* Schema 2 -> 3: a case stored before (17 fields, departments of 3) is
 * read with the fields schema 3 added empty, its intake window found from
 * its ticket; the open stamps schema 3 and rewrites nothing. */
static void test_a_schema_2_case_reads_with_the_new_fields_empty(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *tid = fx_take(f, TUE(10, 0), "B", NULL);
    fx_open_window(f, TUE(10, 0), "W03");
    fx_ok(f, "window.call", WIN("W03"), TUE(10, 0), NULL);
    fx_ok(f, "window.intake", WIN("W03"), TUE(10, 0),
          "{service: S01, applicant: {kind: person, id: '110101199001011234', name: 'Li Si'}, "
          "materials: [M01, M02, M03], outcome: accept}");
    char no[32];
    snprintf(no, sizeof no, "%s", fx_str(f, "case_no"));

    /* The case as schema 2 stored it: its first 17 fields, departments of 3. */
    MDB_txn *txn;
    MDB_val k = {strlen(no), no}, v;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_get(txn, f->st.cases, &k, &v), 0);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(v.mv_data, v.mv_size, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(o.via.array.size, 21);
    proto_buf b;
    proto_buf_init(&b);
    msgpack_packer pk;
    proto_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 17);
    for (int i = 0; i < 17; i++) {
        const msgpack_object *x = &o.via.array.ptr[i];
        if (i != 6) {
            msgpack_pack_object(&pk, *x);
            continue;
        }
        msgpack_pack_array(&pk, x->via.array.size);
        for (uint32_t j = 0; j < x->via.array.size; j++) {
            msgpack_pack_array(&pk, 3);
            for (int m = 0; m < 3; m++)
                msgpack_pack_object(&pk, x->via.array.ptr[j].via.array.ptr[m]);
        }
    }
    MDB_val nv = {b.len, b.p};
    assert_int_equal(mdb_put(txn, f->st.cases, &k, &nv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    proto_buf_free(&b);
    msgpack_zone_destroy(&z);
    meta_set(f, "schema", 2);

    char err[256];
    assert_int_equal(reopen(f, false, err, sizeof err), 0);
    assert_int_equal(meta_u64(f, "schema"), HALL_SCHEMA_VERSION);
    char json[64];
    snprintf(json, sizeof json, "{case_no: '%s'}", no);
    fx_ok(f, "case.get", DEPT("mkt"), TUE(10, 1), json);
    assert_string_equal(fx_str(f, "state"), "review");
    assert_string_equal(fx_str(f, "applicant.id_masked"), "110***********1234");
    assert_null(fx_get(f, "applicant.name"));
    assert_int_equal(fx_len(f, "materials"), 0);
    assert_int_equal(fx_len(f, "history"), 0);
    assert_string_equal(fx_str(f, "intake.window"), "W03"); /* from the ticket */
    assert_string_equal(fx_str(f, "intake.ticket_id"), tid);
    /* It goes on: claimed, its history starts there. */
    fx_ok(f, "review.claim", DEPT("mkt"), TUE(10, 2), NULL);
    assert_string_equal(fx_str(f, "case.case_no"), no);
    assert_int_equal(fx_len(f, "case.history"), 1);
    assert_string_equal(fx_str(f, "case.history.0.change"), "claimed");

    /* No replay check at the end: the case was rewritten by hand. */
    hall_close(f->h);
    hall_store_close(&f->st);
    nftw(f->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    proto_buf_free(&f->result);
    proto_buf_free(&f->payload);
    proto_buf_free(&f->log);
    msgpack_zone_destroy(&f->zone);
    free(f->recs);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_config_record_names_the_rules),
        cmocka_unit_test(test_newer_or_bad_rules_are_refused),
        cmocka_unit_test(test_rules_follow_the_batch_and_reload_keeps_them),
        cmocka_unit_test(test_a_state_of_newer_rules_is_refused),
        cmocka_unit_test(test_schema_stamped_migrated_or_refused),
        cmocka_unit_test(test_a_schema_2_case_reads_with_the_new_fields_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
