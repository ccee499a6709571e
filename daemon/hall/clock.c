/* daemon/hall/clock.c: the records that move the hall's time and change its
 * configuration.
 *
 * clock.advance (manual clock only: the server refuses it otherwise) moves
 * the hall's clock forward; it is a record, so a replay moves it the same.
 * A config record puts a new config in force and keeps its text in the
 * state, so a read-only copy of the state knows its hall. It also says
 * which rules version decides the records after it (args.rules, hall.h),
 * kept in the state (meta "rules") and in h->rules; config.reload keeps
 * the version in force. */
#include "daemon/hall/hall_internal.h"

#include <stdio.h>
#include <string.h>

int hall_clock_advance(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc)
{
    uint64_t ms;
    bool present;
    (void)txn;
    (void)mdb_rc;
    if (proto_arg_uint(r->args, "ms", true, &ms, &present, e))
        return -1;
    if (ms > 366ull * 24 * 3600 * 1000)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.ms: more than a year"), -1;
    int64_t now = r->now_ms + (int64_t)ms;
    if (now > h->clock_ms)
        h->clock_ms = now;
    msgpack_pack_map(pk, 1);
    proto_pack_kv_uint(pk, "now_ms", (uint64_t)now);
    return 0;
}

int hall_config_apply(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                      proto_error *e, int *mdb_rc)
{
    const char *text;
    uint32_t len;
    char err[512];
    hall_config *c;
    uint64_t rules = (uint64_t)h->rules;
    if (proto_arg_str(r->args, "text", true, &text, &len, e))
        return -1;
    if (r->def->op == HALL_OP_CONFIG && hall_config_rules_arg(r->args, &rules) != 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.rules: expected a positive integer"), -1;
    if (rules > HALL_RULES_VERSION)
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.rules: rules %llu are newer than this build's (1 to %d)",
                          (unsigned long long)rules, HALL_RULES_VERSION),
               -1;
    if (h->n_retired == HALL_MAX_PENDING_CONFIGS)
        return proto_fail(e, PROTO_E_LIMIT, "too many config changes in one batch"), -1;
    if (hall_config_parse(text, len, "config record", &c, err, sizeof err) != 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.text: %s", err), -1;
    if (!c->tokens_hashed && c->n_tokens > 0) {
        /* Raw tokens: a record from a build before 0.2. The state keeps
         * the stored form even then, salted as the config in force or,
         * for the first, by a salt derived from the hall id (replay must
         * give the same state). */
        uint8_t salt[HALL_TOKEN_SALT_LEN];
        hall_config *sc;
        hall_config_salt(h->cfg, c, NULL, 0, salt);
        int src = hall_config_stored(c, salt, &sc, err, sizeof err);
        hall_config_free(c);
        if (src != 0)
            return proto_fail(e, PROTO_E_INTERNAL, "args.text: %s", err), -1;
        c = sc;
    }
    if (h->cfg && strcmp(c->hall_id, h->cfg->hall_id) != 0) {
        proto_fail(e, PROTO_E_BAD_REQUEST,
                   "args.text: hall.id is '%s' but this state and its WAL belong to hall '%s'",
                   c->hall_id, h->cfg->hall_id);
        hall_config_free(c);
        return -1;
    }
    uint64_t version;
    int rc = hall_meta_get_u64(h->st, txn, "config_version", &version);
    MDB_val kt = {6, "config"}, vt = {c->text_len, c->text};
    MDB_val ks = {10, "config_sha"}, vs = {sizeof c->sha, c->sha};
    uint64_t through = 0;
    if (rc == 0)
        rc = hall_meta_get_u64(h->st, txn, "closed_through_ms", &through);
    /* A new hall's days start now: no close is owed for the past. */
    if (rc == 0 && !through)
        rc = hall_meta_put_u64(h->st, txn, "closed_through_ms", (uint64_t)r->now_ms);
    if (rc || (rc = hall_meta_put_u64(h->st, txn, "config_version", version + 1)) ||
        (rc = mdb_put(txn, h->st->meta, &kt, &vt, 0)) ||
        (rc = mdb_put(txn, h->st->meta, &ks, &vs, 0)) ||
        (rc = hall_meta_put_u64(h->st, txn, "rules", rules))) {
        hall_config_free(c);
        return hall_mdb_fail(e, mdb_rc, rc, "config");
    }
    if (h->cfg)
        h->retired[h->n_retired++] = h->cfg;
    h->cfg = c;
    h->rules = (int)rules;
    msgpack_pack_map(pk, 1);
    proto_pack_kv_uint(pk, "version", version + 1);
    return 0;
}

int hall_config_rules_arg(const msgpack_object *args, uint64_t *v)
{
    proto_error e;
    bool present;
    if (proto_arg_uint(args, "rules", false, v, &present, &e) != PROTO_OK || (present && *v == 0))
        return -1;
    if (!present)
        *v = 1;
    return 0;
}
