/* daemon/reload.c: putting a new config file in force: the config.reload
 * request and SIGHUP.
 *
 * The file is read and checked here, at the edge, never in a batch or in
 * replay: the request that joins the batch carries the file's text in its
 * stored form (tokens as salted hashes, cfgfile_stored), so
 * the record holds the very config put in force (replay needs no file).
 * config.reload runs at the head of its FIFO with nothing in flight, so
 * it compares the file with the durable config. SIGHUP hands the text to
 * the next batch (s->reload_text, run_reload in batch.c) and logs instead
 * of answering. A file that does not parse, or belongs to another hall,
 * keeps the config in force.
 *
 * Never: read the file inside a batch or in replay, or compare it with a
 * config that is not durable yet. */
#include "daemon/server_internal.h"
#include "daemon/cfgfile.h"
#include "daemon/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads and checks the config file for a reload. Returns the new config
 * (the caller frees it), or NULL with a message in err: a file that does
 * not parse, or one for another hall. *same: the file is the config in
 * force. */
static hall_config *reload_read(server *s, bool *same, char *err, size_t errlen)
{
    hall_config *c;
    const hall_config *cur = hall_config_current(s->h);
    *same = false;
    if (cfgfile_load(s->opt->config_path, &c, err, errlen) != 0)
        return NULL;
    if (cfgfile_stored(&c, cur, s->opt->pii_key, sizeof s->opt->pii_key, err, errlen) != 0) {
        hall_config_free(c);
        return NULL;
    }
    if (strcmp(c->hall_id, cur->hall_id) != 0) {
        snprintf(err, errlen, "%s: hall.id is '%s' but this data dir belongs to hall '%s'",
                 s->opt->config_path, c->hall_id, cur->hall_id);
        hall_config_free(c);
        return NULL;
    }
    if (strcmp(c->tcp.addr, cur->tcp.addr) != 0 || strcmp(c->unix_.addr, cur->unix_.addr) != 0 ||
        c->wal.segment_bytes != cur->wal.segment_bytes)
        hq_log(HQ_LOG_WARN, "config reload: listener addresses and wal.segment_bytes take effect "
                            "at the next start");
    *same = memcmp(c->sha, cur->sha, sizeof c->sha) == 0;
    return c;
}

/* config.reload, at the head of its FIFO with nothing in flight (so it
 * compares the file with the durable config): the file is read and checked
 * here, at the edge; the request that joins the batch carries its text, so
 * the record holds the very config put in force (and replay needs no
 * file). A file that does not parse keeps the old config and answers
 * bad_request naming file and line; an unchanged file answers the version
 * in force with no record; a file too large for a WAL record is `limit`. */
void reload_at_head(server *s, req *r)
{
    char err[600];
    bool same;
    proto_request rq;
    proto_error e = {0};
    msgpack_zone_clear(&s->zone);
    if (proto_request_decode(&s->zone, r->body.p, r->body.len, &rq, &e) != PROTO_OK) {
        req_error(r, e.code, e.msg);
        return;
    }
    hall_config *c = reload_read(s, &same, err, sizeof err);
    if (!c) {
        req_error(r, PROTO_E_BAD_REQUEST, err);
        return;
    }
    if (same) {
        uint64_t version = 0;
        int rc;
        hall_config_free(c);
        MDB_txn *txn = state_read(s, &rc);
        if (txn)
            rc = hall_meta_get_u64(s->st, txn, "config_version", &version);
        state_read_end(s, txn);
        if (rc) {
            req_error(r, PROTO_E_INTERNAL, "config.reload: reading the version in force failed");
            return;
        }
        msgpack_packer pk;
        proto_buf_reset(&s->result);
        proto_packer_init(&pk, &s->result);
        msgpack_pack_map(&pk, 2);
        proto_pack_kv_uint(&pk, "version", version);
        proto_pack_kv_bool(&pk, "changed", false);
        req_ok(r, &s->result);
        return;
    }
    if (WAL_RECORD_OVERHEAD + (size_t)c->text_len + 256 > s->rec_max) {
        req_error(r, PROTO_E_LIMIT, "config.reload: the file is too large for a WAL record");
        hall_config_free(c);
        return;
    }
    /* The request as it joins the batch: {id, op, args: {text, idem?}}.
     * Other args are ignored (PROTOCOL.md) and not kept. */
    const char *idem = NULL;
    uint32_t idem_len = 0;
    if (proto_arg_str(rq.args, "idem", false, &idem, &idem_len, &e) != PROTO_OK) {
        req_error(r, e.code, e.msg);
        hall_config_free(c);
        return;
    }
    proto_buf nb;
    proto_buf_init(&nb);
    msgpack_packer pk;
    proto_packer_init(&pk, &nb);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", r->id);
    proto_pack_kv_str(&pk, "op", r->def->name);
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, idem ? 2 : 1);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, c->text, c->text_len);
    if (idem) {
        proto_pack_str(&pk, "idem");
        proto_pack_strn(&pk, idem, idem_len);
    }
    hall_config_free(c);
    if (nb.oom) {
        proto_buf_free(&nb);
        req_error(r, PROTO_E_INTERNAL, "out of memory keeping the request");
        return;
    }
    proto_buf_free(&r->body);
    r->body = nb;
    batch_enqueue(s, r);
}

/* SIGHUP: like config.reload, logged instead of answered. */
void reload_on_signal(server *s)
{
    char err[600];
    bool same;
    if (s->stopping || s->wal_failed || s->opt->read_only) {
        hq_log(HQ_LOG_WARN, "SIGHUP: not reloading (%s)",
               s->opt->read_only ? "read-only"
               : s->stopping     ? "stopping"
                                 : "no changes can be made durable");
        return;
    }
    hall_config *c = reload_read(s, &same, err, sizeof err);
    if (!c) {
        hq_log(HQ_LOG_ERROR, "SIGHUP: config reload refused: %s; keeping the config in force", err);
        return;
    }
    if (same) {
        hq_log(HQ_LOG_INFO, "SIGHUP: %s is the config in force; nothing to do",
               s->opt->config_path);
        hall_config_free(c);
        return;
    }
    char *text = malloc(c->text_len ? c->text_len : 1);
    if (!text) {
        hq_log(HQ_LOG_ERROR, "SIGHUP: out of memory; keeping the config in force");
        hall_config_free(c);
        return;
    }
    memcpy(text, c->text, c->text_len);
    free(s->reload_text);
    s->reload_text = text;
    s->reload_len = c->text_len;
    hall_config_free(c);
    s->due_pending = true; /* the next batch carries it, even with no request */
    batch_maybe_start(s);
}
