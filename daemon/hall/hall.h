/* daemon/hall/hall.h: the hall's rules, as a state machine over LMDB.
 *
 * Every change of state is one record: hall_exec() runs one op for one
 * actor at one time inside the caller's LMDB write transaction and packs
 * its result. The daemon runs it for live requests (then writes the record
 * to the WAL); the replay runs the very same function on the records read
 * back, and checks that it packs the very same result. So a handler must:
 *   - take its time from `now_ms` only, never from a clock;
 *   - check everything before it writes anything (an error leaves the
 *     transaction untouched, so the batch goes on);
 *   - derive every server value (ids, numbers, ahead) from the state.
 * This module does no I/O other than LMDB, and never calls libuv. */
#ifndef HALLQ_HALL_H
#define HALLQ_HALL_H

#include "daemon/hall/config.h"
#include "daemon/hall/store.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stdint.h>

/* The rules' version: what this build's mutations decide. A release that
 * changes what any rule decides (an answer, an event, or the state a later
 * answer reads) adds one. The config record says which version decided the
 * records after it (args.rules; absent: 1, the rules of commit 5a6218c),
 * and replay and recovery apply that version: a rule that changed keeps its
 * old branch, chosen by hall_rules_version(h), in the handler that owns it,
 * with a comment saying what changed in which version.
 *   1  the first release (5a6218c)
 *   2  idem entries expire after 24 h (idem.c); a window's calling order
 *      `lines` (window.c)
 *   3  review.claim's case carries the application and its history
 *      (case.c hall_case_pack); `case` events say what changed (case.c
 *      case_events) */
#define HALL_RULES_VERSION 3

#define R_ANY 0x3e /* every connected role */
#define R_K HALL_ROLE_BIT(HALL_ROLE_KIOSK)
#define R_W HALL_ROLE_BIT(HALL_ROLE_WINDOW)
#define R_D HALL_ROLE_BIT(HALL_ROLE_DISPLAY)
#define R_DEP HALL_ROLE_BIT(HALL_ROLE_DEPARTMENT)
#define R_A HALL_ROLE_BIT(HALL_ROLE_ADMIN)
#define R_SYS HALL_ROLE_BIT(HALL_ROLE_SYSTEM)

/* Kinds of op: handled by the server itself (no state), a read, or a
 * mutation that becomes a WAL record. */
#define HALL_SERVER 0
#define HALL_READ 1
#define HALL_MUTATE 2

/* One table makes the op enum, the wire names, the WAL record types, the
 * roles allowed and the kind. Record types are part of the WAL format:
 * never renumber one; add new ones with new numbers. */
#define HALL_OP_MAP(X)                                                                             \
    /*  enum            wire name        rec  roles      kind */                                   \
    X(HELLO, "hello", 0, R_ANY, HALL_SERVER)                                                       \
    X(PING, "ping", 0, R_ANY, HALL_SERVER)                                                         \
    X(DIGEST, "digest", 0, R_A, HALL_SERVER)                                                       \
    X(CONFIG, "config", 1, R_SYS, HALL_MUTATE)                                                     \
    X(CLOCK_ADVANCE, "clock.advance", 2, R_A, HALL_MUTATE)                                         \
    X(TICKET_TAKE, "ticket.take", 16, R_K | R_A, HALL_MUTATE)                                      \
    X(TICKET_GET, "ticket.get", 0, R_K | R_A, HALL_READ)                                           \
    X(TICKET_RETURN, "ticket.return", 17, R_K | R_A, HALL_MUTATE)                                  \
    X(WINDOW_STATE, "window.state", 18, R_W, HALL_MUTATE)                                          \
    X(WINDOW_CALL, "window.call", 19, R_W, HALL_MUTATE)                                            \
    X(WINDOW_RECALL, "window.recall", 20, R_W, HALL_MUTATE)                                        \
    X(WINDOW_NO_SHOW, "window.no_show", 21, R_W, HALL_MUTATE)                                      \
    X(WINDOW_TRANSFER, "window.transfer", 22, R_W, HALL_MUTATE)                                    \
    X(WINDOW_DONE, "window.done", 23, R_W, HALL_MUTATE)                                            \
    X(DAY_CLOSE, "day.close", 3, R_A | R_SYS, HALL_MUTATE)                                         \
    X(CASE_TIMER, "case.timer", 4, R_SYS, HALL_MUTATE)                                             \
    X(CONFIG_RELOAD, "config.reload", 5, R_A, HALL_MUTATE)                                         \
    X(SUBSCRIBE, "subscribe", 0, R_ANY, HALL_SERVER)                                               \
    X(WINDOW_INTAKE, "window.intake", 24, R_W, HALL_MUTATE)                                        \
    X(CASE_GET, "case.get", 0, R_K | R_A | R_W | R_DEP, HALL_READ)                                 \
    X(REVIEW_CLAIM, "review.claim", 25, R_DEP, HALL_MUTATE)                                        \
    X(REVIEW_DECIDE, "review.decide", 26, R_DEP, HALL_MUTATE)                                      \
    X(REVIEW_LIST, "review.list", 0, R_DEP, HALL_READ)                                             \
    X(CASE_SUPPLEMENT, "case.supplement", 27, R_W, HALL_MUTATE)                                    \
    X(CASE_DELIVER, "case.deliver", 28, R_W, HALL_MUTATE)                                          \
    X(RATE, "rate", 29, R_K | R_A, HALL_MUTATE)                                                    \
    X(STATS, "stats", 0, R_A, HALL_READ)                                                           \
    X(APPOINTMENT_BOOK, "appointment.book", 30, R_K | R_A, HALL_MUTATE)                            \
    X(APPOINTMENT_GET, "appointment.get", 0, R_K | R_A, HALL_READ)                                 \
    X(APPOINTMENT_TIMER, "appointment.timer", 31, R_SYS, HALL_MUTATE)                              \
    X(BOARD, "board", 0, R_D | R_W | R_A, HALL_READ)                                               \
    X(CATALOGUE, "catalogue", 0, R_ANY, HALL_READ)

typedef enum hall_op {
#define HALL_OP_ENUM(e, name, rec, roles, kind) HALL_OP_##e,
    HALL_OP_MAP(HALL_OP_ENUM)
#undef HALL_OP_ENUM
        HALL_OP__COUNT
} hall_op;

typedef struct hall_op_def {
    hall_op op;
    const char *name;
    uint16_t rec_type; /* 0: never a record */
    uint32_t roles;
    int kind;
} hall_op_def;

/* The op of a wire name, or NULL. */
const hall_op_def *hall_op_find(const char *name, size_t n);
/* The op of a WAL record type, or NULL (a newer version's record). */
const hall_op_def *hall_op_by_record(uint16_t type);
const hall_op_def *hall_op_get(hall_op op);
/* Whether a mutation from the wire reads an arg of this name (idem is one
 * of every mutation's). The daemon drops the others before the request
 * joins a batch, so that an arg PROTOCOL.md says is ignored is not kept in
 * the record either (a record replayed keeps every arg it holds). */
bool hall_op_knows_arg(const hall_op_def *def, const char *name, size_t n);

typedef struct hall_actor {
    hall_role role;
    char id[HALL_ID_MAX + 1];
} hall_actor;

typedef struct hall hall;

/* Creates the state machine over an open store; loads the config in force
 * from the store when there is one. */
int hall_open(hall **out, hall_store *st, char *err, size_t errlen);
void hall_close(hall *h);

/* The config in force (NULL before the first config record). */
const hall_config *hall_config_current(const hall *h);
/* The rules version the records are decided under (the last config
 * record's, 1 for one that names none; 0 before the first). */
int hall_rules_version(const hall *h);
/* The time of the latest record applied (or advanced to, under the manual
 * clock); 0 on a fresh state. */
int64_t hall_clock_ms(const hall *h);

/* Batch bracketing: in-memory state changed by hall_exec (the config in
 * force, the clock) follows the LMDB transaction. Call begin after
 * mdb_txn_begin, and commit or abort after the transaction's fate. */
void hall_batch_begin(hall *h);
void hall_batch_commit(hall *h);
void hall_batch_abort(hall *h);

typedef struct hall_request {
    const hall_op_def *def;
    const msgpack_object *args; /* map or NULL */
    hall_actor actor;
    int64_t now_ms;
    /* Mutations: the LSN the record gets. Reads: the LSN whose events went
     * out last (subscribe's seq; 0: none, read-only), which `board` checks
     * against the state it reads. */
    uint64_t lsn;
} hall_request;

/* Outcome of a mutation. */
enum {
    HALL_EXEC_RECORD = 0, /* applied: write the record */
    HALL_EXEC_REPLAY = 1, /* an idem retry: answered, nothing changed, no record */
    /* Failed (e set) after the handler wrote (out of memory packing the
     * result, its events or its idem entry): the txn holds a partial
     * change, which the caller must undo (abort the txn it ran in). */
    HALL_EXEC_UNDO = -2,
};

/* Runs a mutation (HALL_MUTATE) in the write transaction, packing the
 * result map into `result` (reset first). Returns HALL_EXEC_RECORD or
 * HALL_EXEC_REPLAY, HALL_EXEC_UNDO (see above), or -1 with e set (the
 * transaction is untouched unless
 * e->code is PROTO_E_INTERNAL with an LMDB error in *mdb_rc, which means the
 * whole batch must be aborted: MDB_MAP_FULL is one). */
int hall_exec(hall *h, MDB_txn *txn, const hall_request *r, proto_buf *result, proto_error *e,
              int *mdb_rc);

/* Runs a read (HALL_READ) in a read transaction. 0 or -1 with e set. */
int hall_read(hall *h, MDB_txn *txn, const hall_request *r, proto_buf *result, proto_error *e);

/* Packs a WAL record payload {op, args, result} for a request. */
int hall_record_pack(const hall_request *r, const proto_buf *result, proto_buf *payload);
/* The same with the events the request caused ({ev, op, args, result}; see
 * daemon/hall/events.h): what the daemon writes, right after hall_exec. */
int hall_record_pack_ev(const hall *h, const hall_request *r, const proto_buf *result,
                        proto_buf *payload);

/* Replays one WAL record: decodes its payload, runs hall_exec with the
 * record's actor and time, and checks the result equals the recorded one.
 * Returns 0, or -1 with a message in err (a divergence or an unknown record
 * type is fatal: the state would no longer be what the log says). */
int hall_replay(hall *h, MDB_txn *txn, uint64_t lsn, int64_t at_ms, uint16_t type, uint8_t role,
                const char *actor_id, const uint8_t *payload, size_t len, proto_buf *scratch,
                char *err, size_t errlen, int *mdb_rc);

/* Time-driven records (the day's close): whether one is due at or before
 * `now`; if so fills r (system actor, r->now_ms = its due time) for the
 * caller to run with hall_exec and log like any other record. */
bool hall_due(hall *h, MDB_txn *txn, int64_t now, hall_request *r);
/* When the next time-driven record falls due (INT64_MAX: none). */
int64_t hall_next_due_ms(hall *h, MDB_txn *txn);

/* The args of a config record for this config text, under this build's
 * rules: {text, rules: HALL_RULES_VERSION}. */
int hall_config_record(const hall_config *c, proto_buf *payload);
/* A config record's rules version (args.rules; 1 when absent): 0 with *v
 * set, or -1 when it is not a positive integer. A version above
 * HALL_RULES_VERSION is a log from a newer build: replay refuses it. */
int hall_config_rules_arg(const msgpack_object *args, uint64_t *v);

#endif
