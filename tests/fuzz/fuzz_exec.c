/* tests/fuzz/fuzz_exec.c: the hall's handlers (hall_exec, hall_read)
 * under arbitrary requests from arbitrary actors.
 *
 * A demo hall is set up once in a temporary LMDB (the config, tickets on
 * every line, open windows with current tickets, cases in review, claimed
 * and ready, an appointment), so the handlers get past their lookups. Each
 * input is: one byte choosing the actor (role and id), one byte moving the
 * clock, then a request body. A mutation runs in a write transaction that
 * is then aborted (and the hall's batch with it), a read in a read
 * transaction: every input meets the same state. Invariants: an answer is
 * one MessagePack map and, for a mutation, packs into a record; an error
 * has a protocol code and a message; LMDB errors happen only as
 * `internal`. */
#include "tests/fuzz/fuzz.h"

#include "daemon/hall/hall.h"
#include "proto/proto.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

#ifndef HALLQ_SOURCE_DIR
#define HALLQ_SOURCE_DIR "."
#endif

#define T0 1795485600000LL /* 2026-11-24 10:00 in Shanghai, a Tuesday */

static struct {
    bool ready;
    char dir[64];
    hall_store st;
    hall *h;
    proto_buf result, args, payload;
    msgpack_zone zone;
    int64_t now;
} g;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    if (!g.ready)
        return;
    hall_close(g.h);
    hall_store_close(&g.st);
    nftw(g.dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* Runs one mutation for real (committed): the set-up. */
static void seed_exec(const char *op, hall_role role, const char *id)
{
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_clear(&g.zone);
    FUZZ_CHECK(msgpack_unpack((const char *)g.args.p, g.args.len, &off, &g.zone, &o) ==
               MSGPACK_UNPACK_SUCCESS);
    hall_request r = {.def = hall_op_find(op, strlen(op)), .args = &o, .now_ms = g.now};
    r.actor.role = role;
    snprintf(r.actor.id, sizeof r.actor.id, "%s", id);
    MDB_txn *txn;
    proto_error e = {0};
    int mdb_rc = 0;
    FUZZ_CHECK(r.def && mdb_txn_begin(g.st.env, NULL, 0, &txn) == 0);
    hall_batch_begin(g.h);
    int x = hall_exec(g.h, txn, &r, &g.result, &e, &mdb_rc);
    if (x < 0) {
        fprintf(stderr, "fuzz_exec set-up: %s: %s\n", op, e.msg);
        abort();
    }
    FUZZ_CHECK(mdb_txn_commit(txn) == 0);
    hall_batch_commit(g.h);
    g.now += 1000;
}

static msgpack_packer *args_begin(uint32_t n)
{
    static msgpack_packer pk;
    proto_buf_reset(&g.args);
    proto_packer_init(&pk, &g.args);
    msgpack_pack_map(&pk, n);
    return &pk;
}

static void pack_codes(msgpack_packer *pk, const char *key, const char *const *codes, int n)
{
    proto_pack_str(pk, key);
    msgpack_pack_array(pk, (size_t)n);
    for (int i = 0; i < n; i++)
        proto_pack_str(pk, codes[i]);
}

static void intake(const char *window, const char *svc, const char *const *mats, int n)
{
    msgpack_packer *pk = args_begin(4);
    proto_pack_kv_str(pk, "service", svc);
    proto_pack_str(pk, "applicant");
    msgpack_pack_map(pk, 2);
    proto_pack_kv_str(pk, "kind", "person");
    proto_pack_kv_str(pk, "id", "110101199003077777");
    pack_codes(pk, "materials", mats, n);
    proto_pack_kv_str(pk, "outcome", "accept");
    seed_exec("window.intake", HALL_ROLE_WINDOW, window);
}

static void setup(void)
{
    char err[512], path[512];
    snprintf(g.dir, sizeof g.dir, "/tmp/hallq-fuzz-exec-XXXXXX");
    FUZZ_CHECK(mkdtemp(g.dir) != NULL);
    FUZZ_CHECK(hall_store_open(&g.st, g.dir, false, 0, err, sizeof err) == 0);
    FUZZ_CHECK(hall_open(&g.h, &g.st, err, sizeof err) == 0);
    proto_buf_init(&g.result);
    proto_buf_init(&g.args);
    proto_buf_init(&g.payload);
    msgpack_zone_init(&g.zone, 4096);
    g.ready = true;
    atexit(cleanup);
    g.now = T0;

    snprintf(path, sizeof path, "%s/examples/demo-hall.yaml", HALLQ_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    msgpack_packer *pk = args_begin(2); /* as hall_config_record: this build's rules */
    proto_pack_str(pk, "text");
    proto_pack_strn(pk, text, len);
    proto_pack_kv_uint(pk, "rules", HALL_RULES_VERSION);
    seed_exec("config", HALL_ROLE_SYSTEM, "hallqd");

    static const char *const lines = "AABBCDAB";
    for (const char *l = lines; *l; l++) {
        char id[2] = {*l, 0};
        pk = args_begin(1);
        proto_pack_kv_str(pk, "line", id);
        seed_exec("ticket.take", HALL_ROLE_KIOSK, "K1");
    }
    static const char *const wins[] = {"W01", "W03", "W04", "W05"};
    for (int i = 0; i < 4; i++) {
        pk = args_begin(1);
        proto_pack_kv_str(pk, "state", "open");
        seed_exec("window.state", HALL_ROLE_WINDOW, wins[i]);
    }
    static const char *const s01[] = {"M01", "M02", "M03"};
    static const char *const s04[] = {"M01", "M02", "M03", "M06", "M07"};
    args_begin(0);
    seed_exec("window.call", HALL_ROLE_WINDOW, "W03");
    intake("W03", "S01", s01, 3);
    intake("W03", "S04", s04, 5);
    args_begin(0);
    seed_exec("window.call", HALL_ROLE_WINDOW, "W01");
    args_begin(0);
    seed_exec("review.claim", HALL_ROLE_DEPARTMENT, "mkt");
    pk = args_begin(2);
    proto_pack_kv_str(pk, "case_no", "20261124-0001");
    proto_pack_kv_str(pk, "decision", "approve");
    seed_exec("review.decide", HALL_ROLE_DEPARTMENT, "mkt");
    args_begin(0);
    seed_exec("review.claim", HALL_ROLE_DEPARTMENT, "res");
    pk = args_begin(2);
    proto_pack_kv_str(pk, "line", "A");
    proto_pack_kv_uint(pk, "slot_ms", (uint64_t)(T0 + 3600 * 1000));
    seed_exec("appointment.book", HALL_ROLE_KIOSK, "K1");
}

/* The actors an input may act as. */
static void actor_of(uint8_t b, hall_actor *a)
{
    static const struct {
        hall_role role;
        const char *id;
    } actors[] = {
        {HALL_ROLE_KIOSK, "K1"},       {HALL_ROLE_DISPLAY, "D1"},     {HALL_ROLE_ADMIN, "admin"},
        {HALL_ROLE_WINDOW, "W01"},     {HALL_ROLE_WINDOW, "W03"},     {HALL_ROLE_WINDOW, "W04"},
        {HALL_ROLE_WINDOW, "W05"},     {HALL_ROLE_WINDOW, "W02"},     {HALL_ROLE_DEPARTMENT, "mkt"},
        {HALL_ROLE_DEPARTMENT, "res"}, {HALL_ROLE_DEPARTMENT, "hsg"}, {HALL_ROLE_SYSTEM, "hallqd"},
    };
    size_t i = b % (sizeof actors / sizeof *actors);
    a->role = actors[i].role;
    snprintf(a->id, sizeof a->id, "%s", actors[i].id);
}

static void check_answer(int x, const proto_error *e, int mdb_rc)
{
    if (x < 0) {
        FUZZ_CHECK(e->code != PROTO_OK);
        FUZZ_CHECK(memchr(e->msg, 0, sizeof e->msg) != NULL && e->msg[0] != 0);
        FUZZ_CHECK(mdb_rc == 0 || e->code == PROTO_E_INTERNAL);
        return;
    }
    FUZZ_CHECK(mdb_rc == 0);
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_clear(&g.zone);
    FUZZ_CHECK(msgpack_unpack((const char *)g.result.p, g.result.len, &off, &g.zone, &o) ==
               MSGPACK_UNPACK_SUCCESS);
    FUZZ_CHECK(off == g.result.len && o.type == MSGPACK_OBJECT_MAP);
}

int fuzz_exec(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    if (size < 2)
        return 0;
    hall_request r = {.now_ms = g.now + (int64_t)data[1] * 37000};
    actor_of(data[0], &r.actor);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_request rq;
    proto_error e = {0};
    if (proto_request_decode(&z, data + 2, size - 2, &rq, &e) != PROTO_OK)
        goto out;
    r.def = hall_op_find(rq.op, rq.op_len);
    r.args = rq.args;
    if (!r.def || r.def->kind == HALL_SERVER)
        goto out;
    MDB_txn *txn;
    int mdb_rc = 0, x;
    if (r.def->kind == HALL_MUTATE) {
        FUZZ_CHECK(mdb_txn_begin(g.st.env, NULL, 0, &txn) == 0);
        hall_batch_begin(g.h);
        r.lsn = 1000;
        x = hall_exec(g.h, txn, &r, &g.result, &e, &mdb_rc);
        if (x >= 0)
            FUZZ_CHECK(hall_record_pack_ev(g.h, &r, &g.result, &g.payload) == 0);
        check_answer(x, &e, mdb_rc);
        mdb_txn_abort(txn);
        hall_batch_abort(g.h);
    } else {
        FUZZ_CHECK(mdb_txn_begin(g.st.env, NULL, MDB_RDONLY, &txn) == 0);
        x = hall_read(g.h, txn, &r, &g.result, &e);
        check_answer(x, &e, 0);
        mdb_txn_abort(txn);
    }
out:
    msgpack_zone_destroy(&z);
    return 0;
}

#ifdef HALLQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_exec(data, size);
}
#endif
