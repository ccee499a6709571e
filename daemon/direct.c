/* daemon/direct.c: the requests that write no WAL record, run when they
 * reach the head of their connection's FIFO (conn.c): hello, subscribe,
 * ping, digest and the hall's reads.
 *
 * Invariants: they answer from durable state only (conn_pump runs one that
 * reads the state, its config or its clock only at a quiet point,
 * direct_waits); hello checks the token against the durable config (it
 * waits only while a config change is not durable); subscribe's seq is the last
 * LSN whose events went out (feed.c). */
#include "daemon/server_internal.h"
#include "daemon/hall/events.h"

#include <stdio.h>
#include <string.h>

#define SERVER_NAME "hallqd/0.1.0"

/* Runs a request that needs no WAL record: hello, ping, digest, reads. */
void direct_exec(server *s, conn *c, req *r)
{
    proto_error e = {0};
    msgpack_packer pk;
    proto_buf_reset(&s->result);
    proto_packer_init(&pk, &s->result);
    const hall_config *cfg = hall_config_current(s->h);

    switch (r->def->op) {
    case HALL_OP_HELLO: {
        /* The body was kept for hello: it carries the token. */
        proto_request rq;
        msgpack_zone_clear(&s->zone);
        if (proto_request_decode(&s->zone, r->body.p, r->body.len, &rq, &e) != PROTO_OK)
            break;
        const char *tok;
        uint32_t tl;
        if (proto_arg_str(rq.args, "token", true, &tok, &tl, &e) != PROTO_OK) {
            /* bad_request naming args.token: a client's mistake, said as
             * such (the connection stays open and unauthenticated). */
            char m[sizeof e.msg];
            snprintf(m, sizeof m, "hello: %s", e.msg);
            proto_fail(&e, PROTO_E_BAD_REQUEST, "%s", m);
            break;
        }
        if (c->authed) {
            proto_fail(&e, PROTO_E_CONFLICT, "hello: this connection is already authenticated");
            break;
        }
        const hall_token *t = hall_config_token(cfg, tok, tl);
        if (!t || !(c->l->roles & HALL_ROLE_BIT(t->role))) {
            /* A listener never tells which tokens exist elsewhere. */
            proto_fail(&e, PROTO_E_UNAUTHENTICATED, "hello: token not accepted on this listener");
            break;
        }
        bool strict = false, has_strict;
        if (proto_arg_bool(rq.args, "strict", false, &strict, &has_strict, &e) != PROTO_OK) {
            char m[sizeof e.msg];
            snprintf(m, sizeof m, "hello: %s", e.msg);
            proto_fail(&e, PROTO_E_BAD_REQUEST, "%s", m);
            break;
        }
        c->strict = strict;
        c->authed = true;
        c->actor.role = t->role;
        c->tokens = cfg->limits.kiosk_burst;
        c->tokens_at = uv_now(&s->loop);
        snprintf(c->actor.id, sizeof c->actor.id, "%s", t->id);
        msgpack_pack_map(&pk, 5);
        proto_pack_kv_str(&pk, "role", hall_role_name(t->role));
        proto_pack_kv_str(&pk, "id", t->id);
        proto_pack_kv_str(&pk, "hall", cfg->name);
        proto_pack_kv_str(&pk, "server", SERVER_NAME);
        proto_pack_kv_uint(&pk, "protocol", PROTO_VERSION);
        break;
    }
    case HALL_OP_SUBSCRIBE: {
        proto_request rq;
        msgpack_zone_clear(&s->zone);
        if (proto_request_decode(&s->zone, r->body.p, r->body.len, &rq, &e) != PROTO_OK)
            break;
        const msgpack_object *topics = proto_map_get(rq.args, "topics");
        uint64_t since = 0;
        bool has_since = false;
        uint32_t mask = 0;
        if (!topics || topics->type != MSGPACK_OBJECT_ARRAY || topics->via.array.size == 0) {
            proto_fail(&e, PROTO_E_BAD_REQUEST, "args.topics: expected a non-empty list of topics");
            break;
        }
        for (uint32_t i = 0; i < topics->via.array.size && e.code == PROTO_OK; i++) {
            const msgpack_object *t = &topics->via.array.ptr[i];
            int topic = t->type == MSGPACK_OBJECT_STR
                            ? hall_topic_from_name(t->via.str.ptr, t->via.str.size)
                            : -1;
            if (topic < 0)
                proto_fail(&e, PROTO_E_BAD_REQUEST,
                           "args.topics: unknown topic (call, line, case, deadline, window)");
            else
                mask |= 1u << topic;
        }
        if (e.code != PROTO_OK ||
            proto_arg_uint(rq.args, "since", false, &since, &has_since, &e) != PROTO_OK)
            break;
        /* A `since` past the last durable record was never sent by this
         * log: the data dir was reset or replaced. Skipping to now would
         * lose the adapter's events without a word. */
        if (has_since && since > feed_seq(&s->feed)) {
            proto_fail(&e, PROTO_E_BAD_REQUEST,
                       "args.since: %llu is past the last record, %llu (was the data dir "
                       "reset?): subscribe without since",
                       (unsigned long long)since, (unsigned long long)feed_seq(&s->feed));
            break;
        }
        int lrc = feed_subscribe(&s->feed, &c->sub, &c->actor, mask, has_since && s->w, since,
                                 e.msg, sizeof e.msg);
        if (lrc != 0) {
            e.code = lrc;
            break;
        }
        msgpack_pack_map(&pk, 1);
        proto_pack_kv_uint(&pk, "seq", feed_seq(&s->feed));
        break;
    }
    case HALL_OP_PING:
        msgpack_pack_map(&pk, 1);
        proto_pack_kv_uint(&pk, "now_ms", (uint64_t)server_durable_now(s));
        break;
    case HALL_OP_DIGEST: {
        uint8_t d[32];
        uint64_t lsn = 0;
        int rc;
        MDB_txn *txn = state_read(s, &rc);
        if (txn)
            rc = hall_store_digest(s->st, txn, d);
        if (rc == 0)
            rc = hall_store_applied_lsn(s->st, txn, &lsn);
        state_read_end(s, txn);
        if (rc) {
            proto_fail(&e, PROTO_E_INTERNAL, "digest: %s", mdb_strerror(rc));
            break;
        }
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        msgpack_pack_map(&pk, 2);
        proto_pack_kv_str(&pk, "digest", hex);
        proto_pack_kv_uint(&pk, "lsn", lsn);
        break;
    }
    default: {
        proto_request rq;
        msgpack_zone_clear(&s->zone);
        if (proto_request_decode(&s->zone, r->body.p, r->body.len, &rq, &e) != PROTO_OK)
            break;
        /* Reads run at a quiet point: the state holds exactly the records
         * whose events went out (board checks its seq against this). */
        hall_request hr = {.def = r->def,
                           .args = rq.args,
                           .actor = c->actor,
                           .now_ms = server_now(s),
                           .lsn = s->w ? feed_seq(&s->feed) : 0};
        int rc;
        MDB_txn *txn = state_read(s, &rc);
        if (!txn) {
            proto_fail(&e, PROTO_E_INTERNAL, "read: %s", mdb_strerror(rc));
            break;
        }
        hall_read(s->h, txn, &hr, &s->result, &e);
        state_read_end(s, txn);
        break;
    }
    }
    if (e.code != PROTO_OK)
        req_error(r, e.code, e.msg);
    else
        req_ok(r, &s->result);
}

/* Whether op, at the head of its FIFO, waits for a quiet point (all
 * effects in the state txn durable). Ops that answer from the state, its
 * config or its clock wait while the state txn holds effects not yet
 * durable, so that none tells what a failed batch then takes back. Not
 * subscribe (its seq is the durable LSN) nor ping (its time is the durable
 * clock, server_durable_now). hello reads the config only: it waits only
 * while a config change is not yet checkpointed (cfg_dirty), so it never
 * admits a token that a failed batch takes back, and otherwise answers at
 * once (an HTTP request says hello each time: it must not wait for every
 * batch in flight). */
bool direct_waits(const server *s, hall_op op)
{
    if (!state_nondurable(s) || op == HALL_OP_SUBSCRIBE || op == HALL_OP_PING)
        return false;
    return op != HALL_OP_HELLO || s->cfg_dirty;
}
