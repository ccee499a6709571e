/* daemon/hall/hall.c: the handler table, dispatch, idem, and replay (the
 * op table is in ops.c; stored values are decoded in value.c).
 *
 * idem: a mutation with an `idem` key is remembered under (role, actor id,
 * idem) with a hash of its op and args and its packed result. A repeat
 * within 24 h with the same hash returns that result and changes nothing
 * (no record); with another hash it is `conflict`. The entry is written by
 * hall_exec itself, so the replay rebuilds it; every record deletes entries
 * past the window at its own time (idem.c). */
#include "daemon/hall/events.h"
#include "daemon/hall/hall_internal.h"
#include "daemon/hall/stats.h"
#include "daemon/hall/ticket.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_MAX HALL_IDEM_MAX
#define IDEM_TTL_MS HALL_IDEM_TTL_MS

static const hall_handler handlers[HALL_OP__COUNT] = {
    [HALL_OP_CONFIG] = hall_config_apply,
    [HALL_OP_CONFIG_RELOAD] = hall_config_apply,
    [HALL_OP_CLOCK_ADVANCE] = hall_clock_advance,
    [HALL_OP_TICKET_TAKE] = hall_ticket_take,
    [HALL_OP_TICKET_GET] = hall_ticket_get,
    [HALL_OP_TICKET_RETURN] = hall_ticket_return,
    [HALL_OP_WINDOW_STATE] = hall_window_state_op,
    [HALL_OP_WINDOW_CALL] = hall_window_call,
    [HALL_OP_WINDOW_RECALL] = hall_window_recall,
    [HALL_OP_WINDOW_NO_SHOW] = hall_window_no_show,
    [HALL_OP_WINDOW_TRANSFER] = hall_window_transfer,
    [HALL_OP_WINDOW_DONE] = hall_window_done,
    [HALL_OP_DAY_CLOSE] = hall_day_close,
    [HALL_OP_CASE_TIMER] = hall_case_timer,
    [HALL_OP_WINDOW_INTAKE] = hall_window_intake,
    [HALL_OP_CASE_GET] = hall_case_get,
    [HALL_OP_REVIEW_CLAIM] = hall_review_claim,
    [HALL_OP_REVIEW_DECIDE] = hall_review_decide,
    [HALL_OP_REVIEW_LIST] = hall_review_list,
    [HALL_OP_CASE_SUPPLEMENT] = hall_case_supplement,
    [HALL_OP_CASE_DELIVER] = hall_case_deliver,
    [HALL_OP_RATE] = hall_rate,
    [HALL_OP_STATS] = hall_stats_read,
    [HALL_OP_APPOINTMENT_BOOK] = hall_appointment_book,
    [HALL_OP_APPOINTMENT_GET] = hall_appointment_get,
    [HALL_OP_APPOINTMENT_TIMER] = hall_appointment_timer,
    [HALL_OP_BOARD] = hall_board_read,
    [HALL_OP_CATALOGUE] = hall_catalogue_read,
};

static int load_config(hall *h, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_val k = {6, "config"}, v;
    int rc = mdb_get(txn, h->st->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc) {
        snprintf(err, errlen, "reading the config in force: %s", mdb_strerror(rc));
        return -1;
    }
    return hall_config_parse(v.mv_data, v.mv_size, "the state's config", &h->cfg, err, errlen);
}

static const struct hall_take_hooks take_hooks = {
    .appointment_check = hall_appointment_check,
    .appointment_use = hall_appointment_use,
    .case_pickup = hall_case_check_pickup,
};

int hall_open(hall **out, hall_store *st, char *err, size_t errlen)
{
    hall *h = calloc(1, sizeof *h);
    bool z1 = h && msgpack_zone_init(&h->zone, 4096);
    if (!z1 || !msgpack_zone_init(&h->replay_zone, 4096)) {
        if (z1)
            msgpack_zone_destroy(&h->zone);
        free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->st = st;
    h->take = &take_hooks;
    proto_buf_init(&h->scratch);
    proto_buf_init(&h->due_buf);
    msgpack_zone_init(&h->due_zone, 512);
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        hall_close(h);
        return -1;
    }
    uint64_t clock, rules = 0;
    rc = hall_meta_get_u64(st, txn, "clock_ms", &clock);
    h->clock_ms = (int64_t)clock;
    if (rc == 0)
        rc = hall_meta_get_u64(st, txn, "rules", &rules);
    if (rc == 0 && load_config(h, txn, err, errlen) != 0) {
        rc = -1;
    } else if (rc) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
    } else if (rules > HALL_RULES_VERSION) {
        snprintf(err, errlen,
                 "the state was decided under rules %llu; this build knows rules 1 to %d: use "
                 "a newer hallq",
                 (unsigned long long)rules, HALL_RULES_VERSION);
        rc = -1;
    } else {
        /* A state written before rules had versions has a config and no
         * "rules": its records were decided under rules 1. */
        h->rules = rules ? (int)rules : h->cfg ? 1 : 0;
    }
    mdb_txn_abort(txn);
    if (rc) {
        hall_close(h);
        return -1;
    }
    *out = h;
    return 0;
}

void hall_close(hall *h)
{
    if (!h)
        return;
    hall_batch_commit(h);
    hall_config_free(h->cfg);
    hall_events_free(h);
    msgpack_zone_destroy(&h->zone);
    msgpack_zone_destroy(&h->replay_zone);
    msgpack_zone_destroy(&h->due_zone);
    proto_buf_free(&h->scratch);
    proto_buf_free(&h->due_buf);
    free(h);
}

const hall_config *hall_config_current(const hall *h)
{
    return h->cfg;
}

int64_t hall_clock_ms(const hall *h)
{
    return h->clock_ms;
}

int hall_rules_version(const hall *h)
{
    return h->rules;
}

void hall_batch_begin(hall *h)
{
    h->saved_cfg = h->cfg;
    h->saved_clock = h->clock_ms;
    h->saved_rules = h->rules;
    h->n_retired = 0;
    h->in_batch = true;
    h->ev_txn = NULL;
}

void hall_batch_commit(hall *h)
{
    for (int i = 0; i < h->n_retired; i++)
        hall_config_free(h->retired[i]);
    h->n_retired = 0;
    h->saved_cfg = h->cfg;
    h->saved_clock = h->clock_ms;
    h->saved_rules = h->rules;
    h->in_batch = false;
    h->ev_txn = NULL;
}

void hall_batch_abort(hall *h)
{
    h->in_batch = false;
    h->ev_txn = NULL;
    /* Configs made in this batch are dropped; the one in force before it
     * is among the retired ones (or still in force). */
    for (int i = 0; i < h->n_retired; i++)
        if (h->retired[i] != h->saved_cfg)
            hall_config_free(h->retired[i]);
    if (h->cfg != h->saved_cfg)
        hall_config_free(h->cfg);
    h->cfg = h->saved_cfg;
    h->clock_ms = h->saved_clock;
    h->rules = h->saved_rules;
    h->n_retired = 0;
}

/* ---- idem ---- */

static size_t idem_key(const hall_request *r, const char *idem, uint32_t n, uint8_t *key)
{
    size_t idl = strlen(r->actor.id);
    key[0] = (uint8_t)r->actor.role;
    memcpy(key + 1, r->actor.id, idl);
    key[1 + idl] = 0;
    memcpy(key + 2 + idl, idem, n);
    return 2 + idl + n;
}

/* A hash of the op and its args without `idem`, in the order given. */
static void args_hash(hall *h, const hall_request *r, uint8_t out[16])
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    proto_pack_str(&pk, r->def->name);
    if (r->args && r->args->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_kv *kv = r->args->via.map.ptr;
        for (uint32_t i = 0; i < r->args->via.map.size; i++) {
            const msgpack_object *k = &kv[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 4 &&
                memcmp(k->via.str.ptr, "idem", 4) == 0)
                continue;
            msgpack_pack_object(&pk, *k);
            msgpack_pack_object(&pk, kv[i].val);
        }
    }
    crypto_generichash(out, 16, h->scratch.p, h->scratch.len, NULL, 0);
}

int hall_exec(hall *h, MDB_txn *txn, const hall_request *r, proto_buf *result, proto_error *e,
              int *mdb_rc)
{
    const char *idem = NULL;
    uint32_t idem_len = 0;
    uint8_t key[1 + HALL_ID_MAX + 1 + IDEM_MAX], hash[16];
    size_t klen = 0;
    int rc;

    *mdb_rc = 0;
    msgpack_zone_clear(&h->zone);
    proto_buf_reset(result);
    assert(r->def->kind == HALL_MUTATE && handlers[r->def->op]);
    if (!h->cfg && r->def->op != HALL_OP_CONFIG)
        return proto_fail(e, PROTO_E_INTERNAL, "no hall config in force"), -1;

    if (proto_arg_str(r->args, "idem", false, &idem, &idem_len, e) != PROTO_OK)
        return -1;
    if (idem && (idem_len == 0 || idem_len > IDEM_MAX))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.idem: must be 1 to %d bytes", IDEM_MAX), -1;
    if (idem) {
        klen = idem_key(r, idem, idem_len, key);
        args_hash(h, r, hash);
        MDB_val k = {klen, key}, v;
        rc = mdb_get(txn, h->st->idem, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            return hall_mdb_fail(e, mdb_rc, rc, "idem lookup");
        msgpack_object o;
        if (rc == 0 && hall_unpack(h, &v, &o) == 0 &&
            hall_field_i64(&o, 1) + IDEM_TTL_MS > r->now_ms) {
            const msgpack_object *hh = hall_field(&o, 0), *res = hall_field(&o, 2);
            if (!hh || hh->type != MSGPACK_OBJECT_BIN || hh->via.bin.size != 16 || !res ||
                res->type != MSGPACK_OBJECT_BIN)
                return proto_fail(e, PROTO_E_INTERNAL, "idem entry malformed"), -1;
            if (memcmp(hh->via.bin.ptr, hash, 16) != 0)
                return proto_fail(e, PROTO_E_CONFLICT, "args.idem: already used with other args"),
                       -1;
            proto_buf_append(result, res->via.bin.ptr, res->via.bin.size);
            return HALL_EXEC_REPLAY;
        }
    }

    msgpack_packer pk;
    proto_packer_init(&pk, result);
    if ((rc = hall_events_before(h, txn, r, hall_line_waiting)) == ENOMEM)
        return proto_fail(e, PROTO_E_INTERNAL, "out of memory noting the events"), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "events");
    if (handlers[r->def->op](h, txn, r, &pk, e, mdb_rc) != 0)
        return -1;
    /* From here the handler has written: a failure must undo the txn. */
    if (result->oom)
        return proto_fail(e, PROTO_E_INTERNAL, "out of memory packing the result"), HALL_EXEC_UNDO;
    if ((rc = hall_events_after(h, txn, r, result)) == ENOMEM)
        return proto_fail(e, PROTO_E_INTERNAL, "out of memory packing the events"), HALL_EXEC_UNDO;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "events");

    /* Rules 2: idem entries past their 24 h are deleted as records go by
     * (rules 1 kept them; a repeat past 24 h was a new request either way,
     * so only the state differs). */
    if (h->rules >= 2 && (rc = hall_idem_expire(h, txn, r->now_ms)) != 0)
        return hall_mdb_fail(e, mdb_rc, rc, "idem expiry");
    if (idem) {
        msgpack_packer ipk;
        proto_buf_reset(&h->scratch);
        proto_packer_init(&ipk, &h->scratch);
        msgpack_pack_array(&ipk, 3);
        msgpack_pack_bin(&ipk, 16);
        msgpack_pack_bin_body(&ipk, hash, 16);
        msgpack_pack_int64(&ipk, r->now_ms);
        msgpack_pack_bin(&ipk, result->len);
        msgpack_pack_bin_body(&ipk, result->p, result->len);
        if (h->scratch.oom)
            return proto_fail(e, PROTO_E_INTERNAL, "out of memory packing the idem entry"),
                   HALL_EXEC_UNDO;
        MDB_val k = {klen, key}, v = {h->scratch.len, h->scratch.p};
        if ((rc = mdb_put(txn, h->st->idem, &k, &v, 0)) != 0 ||
            (rc = hall_idem_index(h, txn, key, klen, r->now_ms)) != 0)
            return hall_mdb_fail(e, mdb_rc, rc, "idem store");
    }
    if (r->now_ms > h->clock_ms)
        h->clock_ms = r->now_ms;
    if ((rc = hall_meta_put_u64(h->st, txn, "clock_ms", (uint64_t)h->clock_ms)) != 0)
        return hall_mdb_fail(e, mdb_rc, rc, "clock");
    return HALL_EXEC_RECORD;
}

int hall_read(hall *h, MDB_txn *txn, const hall_request *r, proto_buf *result, proto_error *e)
{
    int mdb_rc = 0;
    msgpack_zone_clear(&h->zone);
    proto_buf_reset(result);
    assert(r->def->kind == HALL_READ && handlers[r->def->op]);
    if (!h->cfg)
        return proto_fail(e, PROTO_E_INTERNAL, "no hall config in force"), -1;
    msgpack_packer pk;
    proto_packer_init(&pk, result);
    if (handlers[r->def->op](h, txn, r, &pk, e, &mdb_rc) != 0)
        return -1;
    if (result->oom)
        return proto_fail(e, PROTO_E_INTERNAL, "out of memory packing the result"), -1;
    return 0;
}

int hall_record_pack(const hall_request *r, const proto_buf *result, proto_buf *payload)
{
    return hall_record_pack_ev(NULL, r, result, payload);
}

int hall_record_pack_ev(const hall *h, const hall_request *r, const proto_buf *result,
                        proto_buf *payload)
{
    msgpack_packer pk;
    size_t ev_len = 0;
    uint32_t n_ev = 0;
    const uint8_t *ev = h ? hall_events(h, &ev_len, &n_ev) : NULL;
    proto_buf_reset(payload);
    proto_packer_init(&pk, payload);
    msgpack_pack_map(&pk, n_ev ? 4 : 3);
    if (n_ev) {
        /* First, so a reader of events finds them without the rest. */
        proto_pack_str(&pk, "ev");
        msgpack_pack_array(&pk, n_ev);
        proto_buf_append(payload, ev, ev_len);
    }
    proto_pack_kv_str(&pk, "op", r->def->name);
    proto_pack_str(&pk, "args");
    if (r->args)
        msgpack_pack_object(&pk, *r->args);
    else
        msgpack_pack_map(&pk, 0);
    proto_pack_str(&pk, "result");
    proto_buf_append(payload, result->p, result->len);
    return payload->oom ? -1 : 0;
}

/* The strings of an unpacked payload point into its bytes (msgpack-c does
 * not copy them), so a key's position tells where its value starts. */
static bool key_is(const msgpack_object *k, const char *s, size_t n)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, s, n);
}

/* Whether the payload's last entry is "result" and its value's bytes are
 * exactly ours. */
static bool raw_result_equal(const msgpack_object *o, const uint8_t *payload, size_t len,
                             const proto_buf *ours)
{
    uint32_t n = o->via.map.size;
    if (n == 0 || !key_is(&o->via.map.ptr[n - 1].key, "result", 6))
        return false;
    const uint8_t *val = (const uint8_t *)o->via.map.ptr[n - 1].key.via.str.ptr + 6;
    if (val < payload || val > payload + len)
        return false;
    size_t vlen = (size_t)(payload + len - val);
    return vlen == ours->len && memcmp(val, ours->p, vlen) == 0;
}

/* Whether the payload's first entry is "ev" and the bytes of its value,
 * up to the next key, are our events' array. */
static bool raw_events_equal(const hall *h, const msgpack_object *o, const uint8_t *payload)
{
    if (o->via.map.size < 2 || !key_is(&o->via.map.ptr[0].key, "ev", 2) ||
        o->via.map.ptr[1].key.type != MSGPACK_OBJECT_STR || o->via.map.ptr[1].key.via.str.size > 31)
        return false;
    const uint8_t *val = (const uint8_t *)o->via.map.ptr[0].key.via.str.ptr + 2;
    const uint8_t *next = (const uint8_t *)o->via.map.ptr[1].key.via.str.ptr - 1; /* fixstr */
    if (val < payload || next < val)
        return false;
    size_t ev_len;
    uint32_t n;
    const uint8_t *mine = hall_events(h, &ev_len, &n);
    uint8_t hd[5];
    size_t hl;
    if (n < 16) {
        hd[0] = (uint8_t)(0x90 | n);
        hl = 1;
    } else if (n < 65536) {
        hd[0] = 0xdc, hd[1] = (uint8_t)(n >> 8), hd[2] = (uint8_t)n;
        hl = 3;
    } else {
        hd[0] = 0xdd, hd[1] = (uint8_t)(n >> 24), hd[2] = (uint8_t)(n >> 16);
        hd[3] = (uint8_t)(n >> 8), hd[4] = (uint8_t)n;
        hl = 5;
    }
    return (size_t)(next - val) == hl + ev_len && memcmp(val, hd, hl) == 0 &&
           (ev_len == 0 || memcmp(val + hl, mine, ev_len) == 0);
}

/* Whether the recorded events (an array) are the ones just collected. */
static bool events_equal(const hall *h, const msgpack_object *ev, proto_buf *scratch)
{
    size_t len;
    uint32_t n;
    const uint8_t *mine = hall_events(h, &len, &n);
    msgpack_packer pk;
    if (ev->type != MSGPACK_OBJECT_ARRAY || ev->via.array.size != n)
        return false;
    proto_buf_reset(scratch);
    proto_packer_init(&pk, scratch);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_object(&pk, ev->via.array.ptr[i]);
    return scratch->len == len && (len == 0 || memcmp(scratch->p, mine, len) == 0);
}

int hall_replay(hall *h, MDB_txn *txn, uint64_t lsn, int64_t at_ms, uint16_t type, uint8_t role,
                const char *actor_id, const uint8_t *payload, size_t len, proto_buf *scratch,
                char *err, size_t errlen, int *mdb_rc)
{
    const hall_op_def *def = hall_op_by_record(type);
    *mdb_rc = 0;
    if (!def || def->kind != HALL_MUTATE) {
        snprintf(err, errlen,
                 "LSN %llu: record type %u is unknown to this version of hallq (written by a "
                 "newer one?)",
                 (unsigned long long)lsn, type);
        return -1;
    }
    /* The payload is decoded into a zone of its own (hall_exec clears the
     * hall's scratch zone), kept from record to record. */
    msgpack_zone *z = &h->replay_zone;
    msgpack_object o;
    msgpack_zone_clear(z);
    int ret = -1;
    if (hall_unpack_in(z, payload, len, &o) != 0 || o.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "LSN %llu: payload is not a MessagePack map",
                 (unsigned long long)lsn);
        goto out;
    }
    const msgpack_object *args = proto_map_get(&o, "args");
    const msgpack_object *res = proto_map_get(&o, "result");
    uint64_t rules = 0;
    if (def->op == HALL_OP_CONFIG && hall_config_rules_arg(args, &rules) == 0 &&
        rules > HALL_RULES_VERSION) {
        snprintf(err, errlen,
                 "WAL record %llu puts rules %llu in force for the records after it; this build "
                 "knows rules 1 to %d: use a newer hallq",
                 (unsigned long long)lsn, (unsigned long long)rules, HALL_RULES_VERSION);
        goto out;
    }
    hall_request r = {.def = def, .args = args, .now_ms = at_ms, .lsn = lsn};
    r.actor.role = (hall_role)role;
    hall_copy(r.actor.id, sizeof r.actor.id, actor_id, SIZE_MAX);
    proto_error e = {0};
    int rc = hall_exec(h, txn, &r, scratch, &e, mdb_rc);
    if (rc != HALL_EXEC_RECORD) {
        snprintf(err, errlen, "LSN %llu (%s): replay failed: %s: %s", (unsigned long long)lsn,
                 def->name, proto_err_name(e.code), e.msg);
        goto out;
    }
    const msgpack_object *ev = proto_map_get(&o, "ev");
    /* Our result and events equal the recorded bytes (the common case, and
     * the whole check for a record packed by hall_record_pack_ev), or else
     * the recorded objects re-packed. */
    if (res && raw_result_equal(&o, payload, len, scratch) &&
        (!ev || raw_events_equal(h, &o, payload))) {
        ret = 0;
        goto out;
    }
    proto_buf want;
    proto_buf_init(&want);
    msgpack_packer pk;
    proto_packer_init(&pk, &want);
    if (res)
        msgpack_pack_object(&pk, *res);
    if (!res || want.len != scratch->len || memcmp(want.p, scratch->p, want.len) != 0) {
        snprintf(err, errlen,
                 "LSN %llu (%s): replay diverged: the result differs from the one "
                 "recorded",
                 (unsigned long long)lsn, def->name);
    } else if (ev && !events_equal(h, ev, &want)) {
        snprintf(err, errlen,
                 "LSN %llu (%s): replay diverged: the events differ from the ones recorded",
                 (unsigned long long)lsn, def->name);
    } else {
        ret = 0;
    }
    proto_buf_free(&want);
out:
    return ret;
}

int hall_config_record(const hall_config *c, proto_buf *payload)
{
    msgpack_packer pk;
    proto_buf_reset(payload);
    proto_packer_init(&pk, payload);
    msgpack_pack_map(&pk, 2);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, c->text, c->text_len);
    proto_pack_kv_uint(&pk, "rules", HALL_RULES_VERSION);
    return payload->oom ? -1 : 0;
}
