/* daemon/hall/stats_read.c: the `stats` op: the counters stats.c keeps
 * (its layout is described there), the p90 from the wait histogram, and
 * what only the queue knows now (how many wait, the longest wait). Above
 * tickets: it reads lines and tickets; nothing of daemon/hall/ calls it
 * but the dispatch. */
#include "daemon/hall/stats.h"
#include "daemon/hall/ticket.h"

#include <string.h>

/* Reads an array value into vals (zeros when absent). */
static int read_vals(hall *h, MDB_txn *txn, const uint8_t *key, size_t kl, int n, int64_t *vals)
{
    MDB_val k = {kl, (void *)key}, v;
    memset(vals, 0, sizeof *vals * (size_t)n);
    int rc = mdb_get(txn, h->st->stats, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    msgpack_object o;
    if (rc || hall_unpack(h, &v, &o) != 0)
        return rc ? rc : MDB_CORRUPTED;
    for (int i = 0; i < n; i++)
        vals[i] = hall_field_i64(&o, (uint32_t)i);
    return 0;
}

/* Nearest-rank p90 of the day's first-call waits on a line, in seconds. */
static int p90(hall *h, MDB_txn *txn, int32_t day, const char *line, int64_t count, int64_t *out)
{
    uint8_t k[HALL_STATS_KEY_MAX];
    size_t n = hall_stats_key(k, 'H', day, line);
    k[n++] = 0;
    int64_t rank = (count * 9 + 9) / 10, seen = 0; /* ceil(0.9 * count) */
    *out = 0;
    if (count == 0)
        return 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->stats, &c);
    if (rc)
        return rc;
    MDB_val kk = {n, k}, v;
    for (rc = mdb_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &kk, &v, MDB_NEXT)) {
        if (kk.mv_size != n + 4 || memcmp(kk.mv_data, k, n) != 0)
            break;
        msgpack_object o;
        if (hall_unpack(h, &v, &o) != 0)
            break;
        seen += hall_field_i64(&o, 0);
        if (seen >= rank) {
            const uint8_t *p = (const uint8_t *)kk.mv_data + n;
            *out =
                (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
            break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? rc : 0);
}

/* The longest wait among tickets waiting now on a line, in seconds. */
static int longest_wait(hall *h, MDB_txn *txn, const char *line, int64_t now, int64_t *out,
                        int *mdb_rc)
{
    uint8_t prefix[4] = {0};
    memcpy(prefix, line, strnlen(line, 4));
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->queue, &c);
    *out = 0;
    if (rc)
        return rc;
    MDB_val k = {4, prefix}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0)
            break;
        hall_ticket t;
        if (hall_ticket_load(h, txn, v.mv_data, v.mv_size, &t, mdb_rc) == 0 &&
            (now - t.taken_ms) / 1000 > *out)
            *out = (now - t.taken_ms) / 1000;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int hall_stats_read(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                    proto_error *e, int *mdb_rc)
{
    const char *ds;
    uint32_t dn;
    int32_t live = hall_business_day(&h->cfg->cal, h->cfg->rules.day_close_min, r->now_ms), day;
    if (proto_arg_str(r->args, "day", false, &ds, &dn, e))
        return -1;
    if (ds && hall_day_parse(ds, dn, &day) != 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.day: expected YYYY-MM-DD"), -1;
    /* No day: the hall's local calendar date of now, also after the close
     * and on days off (PROTOCOL.md 1.2): at 17:05 the day just closed, not
     * the next business day that tickets taken now would belong to. */
    if (!ds)
        day = hall_local_day(&h->cfg->cal, r->now_ms);
    const hall_config *cfg = h->cfg;
    uint8_t k[HALL_STATS_KEY_MAX];
    int64_t v[8];
    int rc = 0;
    char dstr[11];
    hall_day_format(day, dstr);
    msgpack_pack_map(pk, 7);
    proto_pack_kv_str(pk, "day", dstr);
    proto_pack_kv_uint(pk, "now_ms", (uint64_t)r->now_ms);
    proto_pack_str(pk, "lines");
    msgpack_pack_map(pk, (size_t)cfg->n_lines);
    for (int i = 0; i < cfg->n_lines && !rc; i++) {
        const char *id = cfg->lines[i].id;
        int64_t p = 0, longest = 0;
        hall_line_state ls;
        if ((rc = read_vals(h, txn, k, hall_stats_key(k, 'L', day, id), 6, v)) ||
            (rc = p90(h, txn, day, id, v[5], &p)) ||
            (day == live && (rc = longest_wait(h, txn, id, r->now_ms, &longest, mdb_rc))) ||
            (rc = hall_line_load(h, txn, id, &ls, mdb_rc) ? *mdb_rc : 0))
            break;
        uint64_t waiting = day == live ? ls.waiting[0] + ls.waiting[1] + ls.waiting[2] : 0;
        proto_pack_str(pk, id);
        msgpack_pack_map(pk, 8);
        proto_pack_kv_uint(pk, "taken", (uint64_t)v[0]);
        proto_pack_kv_uint(pk, "served", (uint64_t)v[1]);
        proto_pack_kv_uint(pk, "no_show", (uint64_t)v[2]);
        proto_pack_kv_uint(pk, "expired", (uint64_t)v[3]);
        proto_pack_kv_uint(pk, "waiting", waiting);
        proto_pack_kv_uint(pk, "wait_avg_s", v[5] ? (uint64_t)(v[4] / v[5] / 1000) : 0);
        proto_pack_kv_uint(pk, "wait_p90_s", (uint64_t)p);
        proto_pack_kv_uint(pk, "longest_wait_s", (uint64_t)longest);
    }
    proto_pack_str(pk, "windows");
    msgpack_pack_map(pk, (size_t)cfg->n_windows);
    for (int i = 0; i < cfg->n_windows && !rc; i++) {
        if ((rc = read_vals(h, txn, k, hall_stats_key(k, 'W', day, cfg->windows[i].id), 2, v)))
            break;
        proto_pack_str(pk, cfg->windows[i].id);
        msgpack_pack_map(pk, 2);
        proto_pack_kv_uint(pk, "served", (uint64_t)v[0]);
        proto_pack_kv_uint(pk, "service_avg_s", v[0] ? (uint64_t)(v[1] / v[0] / 1000) : 0);
    }
    proto_pack_str(pk, "departments");
    msgpack_pack_map(pk, (size_t)cfg->n_departments);
    for (int i = 0; i < cfg->n_departments && !rc; i++) {
        if ((rc = read_vals(h, txn, k, hall_stats_key(k, 'D', 0, cfg->departments[i].id), 3, v)))
            break;
        proto_pack_str(pk, cfg->departments[i].id);
        msgpack_pack_map(pk, 3);
        proto_pack_kv_uint(pk, "in_review", (uint64_t)v[0]);
        proto_pack_kv_uint(pk, "due_soon", (uint64_t)v[1]);
        proto_pack_kv_uint(pk, "overdue", (uint64_t)v[2]);
    }
    if (!rc)
        rc = read_vals(h, txn, k, hall_stats_key(k, 'C', day, NULL), 5, v);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "stats");
    int64_t outcomes = v[0] + v[1] + v[2] + v[3];
    proto_pack_str(pk, "cases");
    msgpack_pack_map(pk, 6);
    proto_pack_kv_uint(pk, "accepted", (uint64_t)v[0]);
    proto_pack_kv_uint(pk, "instant", (uint64_t)v[1]);
    proto_pack_kv_uint(pk, "notified", (uint64_t)v[2]);
    proto_pack_kv_uint(pk, "refused", (uint64_t)v[3]);
    proto_pack_kv_uint(pk, "delivered", (uint64_t)v[4]);
    proto_pack_str(pk, "instant_rate");
    msgpack_pack_double(pk, outcomes ? (double)v[1] / (double)outcomes : 0.0);
    if ((rc = read_vals(h, txn, k, hall_stats_key(k, 'R', day, NULL), 2, v)))
        return hall_mdb_fail(e, mdb_rc, rc, "stats");
    proto_pack_str(pk, "ratings");
    msgpack_pack_map(pk, 2);
    proto_pack_kv_uint(pk, "count", (uint64_t)v[0]);
    proto_pack_str(pk, "good_share");
    msgpack_pack_double(pk, v[0] ? (double)v[1] / (double)v[0] : 0.0);
    return 0;
}
