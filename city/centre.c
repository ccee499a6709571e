/* city/centre.c: hallq-centre, every hall's log from JetStream into
 * PostgreSQL (docs/CITY.md; the contract is ../shared/CITY.md).
 *
 *   hallq-centre --nats URL[,URL...] --pg CONNINFO [--creds FILE]
 *                [--batch N] [--ack-wait S] [--durable NAME]
 *
 * --ack-wait: when the consumer is created, how long a message fetched by
 * a centre that then died waits before it is delivered again (30 s).
 *
 * A durable pull consumer on hallq.wal.>. Each fetched batch is one
 * PostgreSQL transaction; per message, with the hall's row locked:
 *   - LSN <= last_lsn: a repeat, nothing written;
 *   - hall broken: nothing written (that hall's loading has stopped);
 *   - LSN > last_lsn + 1: state gap, the message is nak'ed with a delay
 *     (it comes again once the missing one arrived);
 *   - LSN = last_lsn + 1: the CRC, the LSN in the bytes against the
 *     header, the hall in the subject against the header, and the chain
 *     from the hall's last hash (the genesis hash for LSN 1) are checked:
 *     good, the record row is inserted and the hall row moves on; bad, the
 *     hall becomes broken (logged with the LSN and why).
 * The batch commits, then every message is acked (or nak'ed). A crash
 * before the commit: nothing written, every message comes again. A crash
 * after the commit and before the ack: the messages come again and are
 * repeats (LSN <= last_lsn), so nothing is written twice; the primary key
 * (hall_id, lsn) holds it too.
 *
 * Schema: created and migrated here, in one transaction under an advisory
 * lock; hallq.schema_version holds the version reached. */
#include "city/city.h"
#include "daemon/hall/config.h"
#include "daemon/hall/hall.h"
#include "wal/wal_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHO "hallq-centre"
#define SCHEMA_VERSION 1

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(void)
{
    fputs("usage: hallq-centre --nats URL[,URL...] --pg CONNINFO [--creds FILE] [--batch N]\n"
          "                    [--ack-wait S] [--durable NAME]\n"
          "  loads every hall's records from the stream " CITY_STREAM
          " into PostgreSQL (schema hallq)\n",
          stderr);
}

static const char *const MIGRATIONS[SCHEMA_VERSION] = {
    /* 1 */
    "CREATE TABLE hallq.record (hall_id text NOT NULL, lsn bigint NOT NULL, at timestamptz NOT "
    "NULL, op text NOT NULL, actor_role text NOT NULL, actor_id text NOT NULL, payload jsonb, "
    "chain_hash bytea NOT NULL, PRIMARY KEY (hall_id, lsn));"
    "CREATE TABLE hallq.hall (hall_id text PRIMARY KEY, last_lsn bigint NOT NULL DEFAULT 0, "
    "last_hash bytea, state text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok','gap','broken')), "
    "why text);",
};

static bool exec_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, WHO ": postgresql: %s", PQerrorMessage(pg));
    PQclear(r);
    return ok;
}

static bool migrate(PGconn *pg)
{
    if (!exec_ok(pg, "BEGIN") || !exec_ok(pg, "SELECT pg_advisory_xact_lock(4711016)") ||
        !exec_ok(pg, "CREATE SCHEMA IF NOT EXISTS hallq") ||
        !exec_ok(pg, "CREATE TABLE IF NOT EXISTS hallq.schema_version (version int NOT NULL)"))
        goto fail;
    PGresult *r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM hallq.schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        goto fail;
    }
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (v > SCHEMA_VERSION) {
        fprintf(stderr, WHO ": the schema is at version %d, newer than this centre's %d\n", v,
                SCHEMA_VERSION);
        goto fail;
    }
    for (; v < SCHEMA_VERSION; v++) {
        char sql[96];
        snprintf(sql, sizeof sql,
                 "DELETE FROM hallq.schema_version; INSERT INTO "
                 "hallq.schema_version VALUES (%d)",
                 v + 1);
        if (!exec_ok(pg, MIGRATIONS[v]) || !exec_ok(pg, sql))
            goto fail;
    }
    return exec_ok(pg, "COMMIT");
fail:
    exec_ok(pg, "ROLLBACK");
    return false;
}

/* MessagePack to JSON (binary as lowercase hex, keys as strings). */
static json_t *mp_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        const char *p = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        uint32_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        char *hex = malloc(2 * (size_t)n + 1);
        for (uint32_t i = 0; hex && i < n; i++)
            sprintf(hex + 2 * i, "%02x", (unsigned char)p[i]);
        json_t *j = hex ? json_stringn(hex, 2 * (size_t)n) : json_null();
        free(hex);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, mp_to_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char key[256];
            if (k->type == MSGPACK_OBJECT_STR)
                snprintf(key, sizeof key, "%.*s", (int)k->via.str.size, k->via.str.ptr);
            else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                snprintf(key, sizeof key, "%" PRIu64, k->via.u64);
            else
                snprintf(key, sizeof key, "?%u", i);
            json_object_set_new(m, key, mp_to_json(&o->via.map.ptr[i].val));
        }
        return m;
    }
    }
    return json_null();
}

static char *payload_json(const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    char *s = NULL;
    if (msgpack_unpack_next(&u, (const char *)p, n, NULL) == MSGPACK_UNPACK_SUCCESS) {
        json_t *j = mp_to_json(&u.data);
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    msgpack_unpacked_destroy(&u);
    return s;
}

enum { M_ACK, M_NAK };

static long repeats; /* messages at or below their hall's last LSN */

/* Handles one message inside the open transaction; -1: PostgreSQL failed
 * (the transaction is rolled back and nothing acked). */
static int handle(PGconn *pg, natsMsg *m, int *verdict)
{
    const char *hid = NULL, *lsn_s = NULL;
    *verdict = M_ACK;
    const char *subj = natsMsg_GetSubject(m);
    if (natsMsgHeader_Get(m, "Hallq-Hall", &hid) != NATS_OK || !hid ||
        natsMsgHeader_Get(m, "Hallq-Lsn", &lsn_s) != NATS_OK || !lsn_s ||
        strncmp(subj, CITY_SUBJECT_PREFIX, strlen(CITY_SUBJECT_PREFIX)) != 0 ||
        strcmp(subj + strlen(CITY_SUBJECT_PREFIX), hid) != 0) {
        fprintf(stderr, WHO ": a message on %s without the hall's headers: dropped\n", subj);
        return 0;
    }
    uint64_t lsn = strtoull(lsn_s, NULL, 10);
    const char *pv[4] = {hid};
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO hallq.hall (hall_id) VALUES ($1) ON CONFLICT DO "
                               "NOTHING",
                               1, NULL, pv, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return -1;
    r = PQexecParams(pg,
                     "SELECT last_lsn, last_hash, state FROM hallq.hall WHERE hall_id = $1 "
                     "FOR UPDATE",
                     1, NULL, pv, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    uint64_t last = 0;
    const uint8_t *lb = (const uint8_t *)PQgetvalue(r, 0, 0);
    for (int i = 0; i < 8; i++)
        last = last << 8 | lb[i];
    uint8_t prev[WAL_HASH_LEN];
    bool have_hash = !PQgetisnull(r, 0, 1) && PQgetlength(r, 0, 1) == WAL_HASH_LEN;
    if (have_hash)
        memcpy(prev, PQgetvalue(r, 0, 1), WAL_HASH_LEN);
    char state[16];
    snprintf(state, sizeof state, "%.*s", PQgetlength(r, 0, 2), PQgetvalue(r, 0, 2));
    PQclear(r);
    if (lsn <= last) {
        repeats++;
        return 0;
    }
    if (!strcmp(state, "broken"))
        return 0;
    const char *sql_state = "UPDATE hallq.hall SET state = $2, why = $3 WHERE hall_id = $1";
    if (lsn > last + 1) {
        char why[96];
        snprintf(why, sizeof why, "waiting for LSN %" PRIu64 " (LSN %" PRIu64 " came)", last + 1,
                 lsn);
        pv[1] = "gap";
        pv[2] = why;
        r = PQexecParams(pg, sql_state, 3, NULL, pv, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        *verdict = M_NAK;
        return ok ? 0 : -1;
    }
    const uint8_t *p = (const uint8_t *)natsMsg_GetData(m);
    size_t n = (size_t)natsMsg_GetDataLength(m);
    wal_record rec;
    size_t total = 0;
    char why[160] = "";
    int pr = wal_record_parse(p, n, &rec, &total);
    if (!have_hash && last == 0)
        wal_genesis_hash(hid, prev);
    if (pr != WAL_REC_OK || total != n)
        snprintf(why, sizeof why, "LSN %" PRIu64 ": the record does not parse (%s)", lsn,
                 pr == WAL_REC_BADCRC ? "bad CRC" : "bad bytes");
    else if (rec.lsn != lsn)
        snprintf(why, sizeof why, "LSN %" PRIu64 ": the record holds LSN %" PRIu64, lsn, rec.lsn);
    else if (!have_hash && last != 0)
        snprintf(why, sizeof why, "LSN %" PRIu64 ": no hash of the hall's last record", lsn);
    else {
        uint8_t h[WAL_HASH_LEN];
        wal_record_chain(p, total, prev, h);
        if (memcmp(h, rec.hash, WAL_HASH_LEN) != 0)
            snprintf(why, sizeof why, "LSN %" PRIu64 ": the chain does not verify", lsn);
    }
    if (why[0]) {
        fprintf(stderr, WHO ": hall %s broken: %s\n", hid, why);
        pv[1] = "broken";
        pv[2] = why;
        r = PQexecParams(pg, sql_state, 3, NULL, pv, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        return ok ? 0 : -1;
    }
    const hall_op_def *op = hall_op_by_record(rec.type);
    char opname[32], at[32], role[32];
    if (op)
        snprintf(opname, sizeof opname, "%s", op->name);
    else
        snprintf(opname, sizeof opname, "type-%u", rec.type);
    snprintf(at, sizeof at, "%.3f", (double)rec.at_ms / 1000.0);
    const char *rn = hall_role_name((hall_role)rec.actor_role);
    snprintf(role, sizeof role, "%s", rn ? rn : "?");
    char *json = payload_json(rec.payload, rec.payload_len);
    const char *iv[8] = {hid, lsn_s, at, opname, role, rec.actor_id, json, (const char *)rec.hash};
    int il[8] = {0, 0, 0, 0, 0, 0, 0, WAL_HASH_LEN};
    int ifm[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    r = PQexecParams(pg,
                     "INSERT INTO hallq.record VALUES ($1, $2, to_timestamp($3::double precision), "
                     "$4, $5, $6, $7::jsonb, $8) ON CONFLICT DO NOTHING",
                     8, NULL, iv, il, ifm, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, WHO ": postgresql: %s", PQerrorMessage(pg));
    PQclear(r);
    free(json);
    if (!ok)
        return -1;
    const char *uv[3] = {hid, lsn_s, (const char *)rec.hash};
    int ul[3] = {0, 0, WAL_HASH_LEN}, uf[3] = {0, 0, 1};
    r = PQexecParams(pg,
                     "UPDATE hallq.hall SET last_lsn = $2, last_hash = $3, state = 'ok', why = "
                     "NULL WHERE hall_id = $1",
                     3, NULL, uv, ul, uf, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *urls = NULL, *conninfo = NULL, *creds = NULL, *durable = "hallq-centre";
    int batch = 256;
    long ack_wait = 30;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--nats") && v)
            urls = argv[++i];
        else if (!strcmp(argv[i], "--pg") && v)
            conninfo = argv[++i];
        else if (!strcmp(argv[i], "--creds") && v)
            creds = argv[++i];
        else if (!strcmp(argv[i], "--batch") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ack-wait") && v)
            ack_wait = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--durable") && v)
            durable = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (!urls || !conninfo || batch <= 0 || ack_wait <= 0) {
        usage();
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, WHO ": postgresql: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return 1;
    }
    if (!migrate(pg)) {
        PQfinish(pg);
        return 1;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (city_connect(WHO, urls, creds, NULL, &nc, &js) != NATS_OK)
        return 1;
    while (!stop && city_ensure_stream(WHO, js) != NATS_OK)
        sleep(1);
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = CITY_STREAM;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = ack_wait * 1000ll * 1000 * 1000; /* ns */
    so.Config.MaxAckPending = 4 * batch;
    jsErrCode jerr = 0;
    natsStatus st;
    while (!stop &&
           (st = js_PullSubscribe(&sub, js, CITY_SUBJECTS, durable, NULL, &so, &jerr)) != NATS_OK) {
        fprintf(stderr, WHO ": pull consumer %s: %s (%d)\n", durable, natsStatus_GetText(st),
                (int)jerr);
        sleep(1);
    }
    fprintf(stderr, WHO ": ready (consumer %s, schema version %d)\n", durable, SCHEMA_VERSION);
    int status = 0;
    int *verdicts = calloc((size_t)batch, sizeof *verdicts);
    /* For the tests: die by SIGKILL right after the Nth commit, before its
     * acks (the window the exactly-once argument must cover). */
    const char *die = getenv("HALLQ_CENTRE_KILL_AFTER_COMMIT");
    long commits = 0, die_at = die ? strtol(die, NULL, 10) : 0;
    while (!stop) {
        natsMsgList list = {0};
        st = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
        if (st == NATS_TIMEOUT || list.Count == 0) {
            natsMsgList_Destroy(&list);
            continue;
        }
        bool ok = exec_ok(pg, "BEGIN");
        for (int i = 0; ok && i < list.Count; i++)
            ok = handle(pg, list.Msgs[i], &verdicts[i]) == 0;
        ok = ok && exec_ok(pg, "COMMIT");
        if (!ok) {
            /* Nothing acked: every message comes again after AckWait. */
            exec_ok(pg, "ROLLBACK");
            if (PQstatus(pg) != CONNECTION_OK)
                PQreset(pg);
            for (int i = 0; i < list.Count; i++)
                natsMsg_Nak(list.Msgs[i], NULL);
            sleep(1);
        } else {
            if (++commits == die_at) {
                fprintf(stderr, WHO ": killed after commit %ld, before its acks\n", commits);
                raise(SIGKILL);
            }
            if (repeats) {
                fprintf(stderr, WHO ": %ld repeats ignored\n", repeats);
                repeats = 0;
            }
            for (int i = 0; i < list.Count; i++) {
                if (verdicts[i] == M_ACK)
                    natsMsg_Ack(list.Msgs[i], NULL);
                else
                    natsMsg_NakWithDelay(list.Msgs[i], 200, NULL);
            }
        }
        natsMsgList_Destroy(&list);
    }
    free(verdicts);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    PQfinish(pg);
    return status;
}
