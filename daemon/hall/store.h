/* daemon/hall/store.h: the LMDB adapter holding the hall's state.
 *
 * One environment in DATA/state.mdb (MDB_NOSUBDIR), opened with
 * MDB_NOMETASYNC: a crash may lose the last committed transaction, which
 * the WAL replays (the applied LSN is stored in the same transaction as the
 * state it describes). No MDB_NOSYNC, no MDB_WRITEMAP.
 *
 * Named databases (keys and values are explicit byte layouts or
 * MessagePack, never struct dumps):
 *   meta     "applied_lsn" u64 BE, "clock_ms" u64 BE, "config" (text),
 *            "config_sha" (32 bytes), "config_version" u64 BE,
 *            "ticket_seq" u64 BE
 *   lines    line id -> MessagePack line state (day, last number, waiting)
 *   tickets  ticket id -> MessagePack ticket
 *   queue    line(4) class(1) order_ms(8 BE) seq(8 BE) -> ticket id
 *   idem     role(1) actor id NUL idem -> MessagePack {h, at, r}
 *   idem_at  at(8 BE) idem's key -> empty: the idem entries by time, for
 *            their expiry (daemon/hall/idem.c)
 *   windows  window id -> MessagePack window state
 *   cases, review, deptcases, timers, ratings: see daemon/hall/case.c
 *   appointments, appt_due: see daemon/hall/appointment.c
 */
#ifndef HALLQ_HALL_STORE_H
#define HALLQ_HALL_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HALL_STORE_FILE "state.mdb"

/* The layout of the state (its databases and stored values), kept in meta
 * "schema". A build opens states of its schema and older ones, migrating
 * them when it opens them writable (store.c says how, per schema); a state
 * of a newer schema is refused, never misread. Add one with every change
 * of a database, an index or a stored value's format.
 *   1  the first release (5a6218c): no "schema" key
 *   2  idem_at, the idem entries' time index
 *   3  a case gains fields 17-20 (name, materials, window, history) and a
 *      department its reason (case.c); nothing to rewrite: a case stored
 *      before reads them empty, and case.get then finds the window from
 *      the ticket */
#define HALL_SCHEMA_VERSION 3

typedef struct hall_store {
    MDB_env *env;
    MDB_dbi meta, lines, tickets, queue, idem, idem_at, windows, cases, review, deptcases, timers,
        ratings, stats, appointments, appt_due;
    size_t map_size;
    bool read_only;
    bool no_idem_at; /* read-only, on a state from before the idem index */
    int schema;      /* as found (read-only) or as now stamped */
    char dir[4096];  /* the data dir, to open the environment again */
} hall_store;

/* Opens (creating) DATA/state.mdb with a map of at least map_bytes (0: 64
 * MiB; an existing larger map keeps its size), clears stale readers, opens
 * every database. Returns 0 or an LMDB/errno code with a message in err. */
int hall_store_open(hall_store *s, const char *dir, bool read_only, size_t map_bytes, char *err,
                    size_t errlen);
void hall_store_close(hall_store *s);

/* Whether the map is more than three quarters used: the daemon grows it
 * before a batch then, so that a commit (which needs free pages of its own
 * to save the freelist) rarely meets MDB_MAP_FULL. */
bool hall_store_nearly_full(const hall_store *s);

/* Doubles the map. Only with no transaction open (MDB_MAP_FULL recovery).
 * When LMDB cannot map the larger size (out of address space or memory),
 * the environment is opened again at its old size and the error returned;
 * s->env is NULL only if that fails too. */
int hall_store_grow(hall_store *s);

/* Big-endian u64 helpers for keys and meta values. */
void hall_be64_put(uint8_t out[8], uint64_t v);
uint64_t hall_be64_get(const uint8_t in[8]);

/* meta get/put of a u64 (0 when absent). */
int hall_meta_get_u64(const hall_store *s, MDB_txn *txn, const char *key, uint64_t *v);
int hall_meta_put_u64(const hall_store *s, MDB_txn *txn, const char *key, uint64_t v);

/* The LSN of the last record whose effects are in the state. */
int hall_store_applied_lsn(const hall_store *s, MDB_txn *txn, uint64_t *lsn);
/* Stores it; asserts that it only grows. */
int hall_store_set_applied_lsn(const hall_store *s, MDB_txn *txn, uint64_t lsn);

/* A BLAKE2b-256 digest of the logical content: every database by name,
 * every key and value in key order (not LMDB's pages). */
int hall_store_digest(const hall_store *s, MDB_txn *txn, uint8_t out[32]);

#endif
