/* daemon/hall/store.c: opens LMDB, grows its map, reads and writes meta
 * values, and digests the logical state.
 *
 * Invariant: the applied LSN stored in meta only grows, and it is written
 * in the same transaction as the effects of the records up to it. */
#include "daemon/hall/store.h"

#include <assert.h>
#include <errno.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define INITIAL_MAP (64ull << 20)

void hall_be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

uint64_t hall_be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* The idem entries' time index (since 2026-12). A state written before it
 * has none: read-only, the index is left out (nothing expires there);
 * otherwise it is created and filled from the entries' own times (field 1
 * of {h, at, r}), so that they expire like new ones. */
static int open_idem_at(hall_store *s, MDB_txn *txn, bool read_only)
{
    int rc = mdb_dbi_open(txn, "idem_at", 0, &s->idem_at);
    if (rc != MDB_NOTFOUND)
        return rc;
    if (read_only) {
        s->no_idem_at = true;
        return 0;
    }
    if ((rc = mdb_dbi_open(txn, "idem_at", MDB_CREATE, &s->idem_at)) != 0)
        return rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->idem, &c)) != 0)
        return rc;
    msgpack_zone z;
    if (!msgpack_zone_init(&z, 1024)) {
        mdb_cursor_close(c);
        return ENOMEM;
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        msgpack_object o;
        size_t off = 0;
        uint8_t ik[8 + 512];
        msgpack_zone_clear(&z);
        if (k.mv_size > sizeof ik - 8 ||
            msgpack_unpack(v.mv_data, v.mv_size, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
            o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 2 ||
            (o.via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
             o.via.array.ptr[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
            rc = MDB_CORRUPTED;
            break;
        }
        hall_be64_put(ik, (uint64_t)o.via.array.ptr[1].via.i64);
        memcpy(ik + 8, k.mv_data, k.mv_size);
        MDB_val ikv = {8 + k.mv_size, ik}, empty = {0, NULL};
        if ((rc = mdb_put(txn, s->idem_at, &ikv, &empty, 0)) != 0)
            break;
    }
    msgpack_zone_destroy(&z);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The schema the store was written with (meta "schema"): a store without
 * it but with content is schema 1 (written before schemas were recorded,
 * by the first release); an empty one is new, so the current schema.
 * *stamped: whether the key is there. */
static int read_schema(hall_store *s, MDB_txn *txn, bool *stamped)
{
    uint64_t v;
    int rc = hall_meta_get_u64(s, txn, "schema", &v);
    if (rc)
        return rc;
    *stamped = v != 0;
    if (!v) {
        MDB_stat st;
        if ((rc = mdb_stat(txn, s->meta, &st)) != 0)
            return rc;
        v = st.ms_entries ? 1 : HALL_SCHEMA_VERSION;
    }
    s->schema = v > INT32_MAX ? INT32_MAX : (int)v;
    return 0;
}

int hall_store_open(hall_store *s, const char *dir, bool read_only, size_t map_bytes, char *err,
                    size_t errlen)
{
    char path[4096];
    int rc;
    memset(s, 0, sizeof *s);
    s->read_only = read_only;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/%s", dir, HALL_STORE_FILE);
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(s->env, 32);
    mdb_env_set_maxreaders(s->env, 126);
    if ((rc = mdb_env_set_mapsize(s->env, map_bytes ? map_bytes : INITIAL_MAP)) != 0)
        goto fail;
    unsigned flags = MDB_NOSUBDIR | MDB_NOMETASYNC | MDB_NOTLS;
    if (read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_open(s->env, path, flags, 0640)) != 0)
        goto fail;
    /* Adopt the size of an existing, larger map. */
    if ((rc = mdb_env_set_mapsize(s->env, 0)) != 0)
        goto fail;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    int dead = 0;
    mdb_reader_check(s->env, &dead);

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, read_only ? MDB_RDONLY : 0, &txn)) != 0)
        goto fail;
    unsigned dflags = read_only ? 0 : MDB_CREATE;
    if ((rc = mdb_dbi_open(txn, "meta", dflags, &s->meta)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    bool stamped;
    if ((rc = read_schema(s, txn, &stamped)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if (s->schema > HALL_SCHEMA_VERSION) {
        mdb_txn_abort(txn);
        snprintf(err, errlen,
                 "%s was written with state schema %d; this build knows schemas 1 to %d: use a "
                 "newer hallq",
                 path, s->schema, HALL_SCHEMA_VERSION);
        mdb_env_close(s->env);
        s->env = NULL;
        return MDB_INCOMPATIBLE;
    }
    /* Migrations, oldest first, each in this transaction: schema 1 -> 2
     * builds the idem time index (open_idem_at); 2 -> 3 rewrites nothing
     * (the case fields it adds are appended, and read empty when absent). */
    if ((rc = mdb_dbi_open(txn, "lines", dflags, &s->lines)) ||
        (rc = mdb_dbi_open(txn, "tickets", dflags, &s->tickets)) ||
        (rc = mdb_dbi_open(txn, "queue", dflags, &s->queue)) ||
        (rc = mdb_dbi_open(txn, "idem", dflags, &s->idem)) ||
        (rc = open_idem_at(s, txn, read_only)) ||
        (rc = mdb_dbi_open(txn, "windows", dflags, &s->windows)) ||
        (rc = mdb_dbi_open(txn, "cases", dflags, &s->cases)) ||
        (rc = mdb_dbi_open(txn, "review", dflags, &s->review)) ||
        (rc = mdb_dbi_open(txn, "deptcases", dflags, &s->deptcases)) ||
        (rc = mdb_dbi_open(txn, "timers", dflags, &s->timers)) ||
        (rc = mdb_dbi_open(txn, "ratings", dflags, &s->ratings)) ||
        (rc = mdb_dbi_open(txn, "stats", dflags, &s->stats)) ||
        (rc = mdb_dbi_open(txn, "appointments", dflags, &s->appointments)) ||
        (rc = mdb_dbi_open(txn, "appt_due", dflags, &s->appt_due))) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if (!read_only && (!stamped || s->schema != HALL_SCHEMA_VERSION)) {
        if ((rc = hall_meta_put_u64(s, txn, "schema", HALL_SCHEMA_VERSION)) != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
        s->schema = HALL_SCHEMA_VERSION;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "lmdb %s: %s", path, mdb_strerror(rc));
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
    return rc;
}

void hall_store_close(hall_store *s)
{
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
}

bool hall_store_nearly_full(const hall_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return false;
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    return used > s->map_size / 4 * 3;
}

int hall_store_grow(hall_store *s)
{
    size_t want = s->map_size * 2;
    int rc = mdb_env_set_mapsize(s->env, want);
    if (rc == 0) {
        s->map_size = want;
        return 0;
    }
    /* LMDB unmapped the file before mapping it anew: the environment is
     * unusable now. Open it again at its old size (nothing was lost: no
     * txn was open). */
    char dir[sizeof s->dir], err[256];
    size_t old = s->map_size;
    bool ro = s->read_only;
    memcpy(dir, s->dir, sizeof dir);
    mdb_env_close(s->env);
    s->env = NULL;
    if (hall_store_open(s, dir, ro, old, err, sizeof err) != 0)
        return rc; /* s->env is NULL: the caller cannot go on */
    return rc;
}

int hall_meta_get_u64(const hall_store *s, MDB_txn *txn, const char *key, uint64_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, s->meta, &k, &d);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return 0;
    }
    if (rc)
        return rc;
    if (d.mv_size != 8)
        return MDB_CORRUPTED;
    *v = hall_be64_get(d.mv_data);
    return 0;
}

int hall_meta_put_u64(const hall_store *s, MDB_txn *txn, const char *key, uint64_t v)
{
    uint8_t b[8];
    hall_be64_put(b, v);
    MDB_val k = {strlen(key), (void *)key}, d = {8, b};
    return mdb_put(txn, s->meta, &k, &d, 0);
}

int hall_store_applied_lsn(const hall_store *s, MDB_txn *txn, uint64_t *lsn)
{
    return hall_meta_get_u64(s, txn, "applied_lsn", lsn);
}

int hall_store_set_applied_lsn(const hall_store *s, MDB_txn *txn, uint64_t lsn)
{
    uint64_t old;
    int rc = hall_store_applied_lsn(s, txn, &old);
    if (rc)
        return rc;
    assert(lsn >= old && "applied LSN must only grow");
    return hall_meta_put_u64(s, txn, "applied_lsn", lsn);
}

static void hash_len(crypto_generichash_state *st, size_t n)
{
    uint8_t b[8];
    hall_be64_put(b, n);
    crypto_generichash_update(st, b, 8);
}

int hall_store_digest(const hall_store *s, MDB_txn *txn, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    MDB_dbi main;
    MDB_cursor *names = NULL;
    int rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc == 0)
        rc = mdb_cursor_open(txn, main, &names);
    MDB_val name, unused;
    for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
        rc = mdb_cursor_get(names, &name, &unused, (MDB_cursor_op)op);
        if (rc)
            break;
        char nm[64];
        if (name.mv_size >= sizeof nm)
            continue;
        memcpy(nm, name.mv_data, name.mv_size);
        nm[name.mv_size] = 0;
        MDB_dbi dbi;
        if ((rc = mdb_dbi_open(txn, nm, 0, &dbi)) != 0)
            break;
        hash_len(&st, name.mv_size);
        crypto_generichash_update(&st, name.mv_data, name.mv_size);
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
            break;
        MDB_val k, v;
        for (int o2 = MDB_FIRST; (rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)o2)) == 0;
             o2 = MDB_NEXT) {
            hash_len(&st, k.mv_size);
            crypto_generichash_update(&st, k.mv_data, k.mv_size);
            hash_len(&st, v.mv_size);
            crypto_generichash_update(&st, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (names)
        mdb_cursor_close(names);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    crypto_generichash_final(&st, out, 32);
    (void)s;
    return rc;
}
