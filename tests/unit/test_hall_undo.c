/* tests/unit/test_hall_undo.c: a mutation that fails after its handler
 * wrote (out of memory packing its result) is reported as HALL_EXEC_UNDO,
 * so that the caller undoes its txn: before, it was an ordinary error (-1,
 * "the txn is untouched"), and the daemon kept the change with no record.
 * The result buffer's growth fails through a wrapped realloc (linked with
 * -Wl,--wrap=realloc: only the hall's and proto's own calls pass here). */
#include "hall_fixture.h"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static void *fail_on; /* a realloc of this block fails */

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_on && p == fail_on)
        return NULL;
    return __real_realloc(p, n);
}

static void test_oom_packing_the_result_undoes(void **state)
{
    (void)state;
    int64_t t0 = fx_at(2026, 11, 24, 10, 0);
    fixture *f = fx_new(t0);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_buf args, res = {0};
    msgpack_object o;
    hall_request r = {.def = hall_op_find("ticket.take", 11), .now_ms = t0, .lsn = f->lsn + 1};
    r.args = fx_args(&z, &args, "{line: A}", &o);
    r.actor.role = HALL_ROLE_KIOSK;
    strcpy(r.actor.id, "K1");
    res.p = malloc(1);
    res.cap = 1;
    fail_on = res.p; /* the result cannot grow past 1 byte */
    MDB_txn *txn;
    int mdb_rc = 0;
    proto_error e = {0};
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    int rc = hall_exec(f->h, txn, &r, &res, &e, &mdb_rc);
    fail_on = NULL;
    assert_int_equal(mdb_rc, 0);
    assert_int_equal(e.code, PROTO_E_INTERNAL);
    /* The handler did write: the ticket is in the txn. So the caller must
     * be told to undo it. */
    hall_request g = {.def = hall_op_find("ticket.get", 10), .now_ms = t0};
    msgpack_object go;
    proto_buf gargs, gres;
    proto_buf_init(&gres);
    g.args = fx_args(&z, &gargs, "{ticket_id: '20261124-A001'}", &go);
    g.actor = r.actor;
    proto_error ge = {0};
    assert_int_equal(hall_read(f->h, txn, &g, &gres, &ge), 0);
    assert_int_equal(rc, HALL_EXEC_UNDO);
    mdb_txn_abort(txn);
    hall_batch_abort(f->h);
    /* Undone: the next take is A001, and the log replays to the state. */
    assert_string_equal(fx_take(f, t0, "A", NULL), "20261124-A001");
    proto_buf_free(&res);
    proto_buf_free(&args);
    proto_buf_free(&gargs);
    proto_buf_free(&gres);
    msgpack_zone_destroy(&z);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_packing_the_result_undoes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
