/* daemon/hall/hall_internal.h: what the hall's files share and nothing
 * outside daemon/hall/ may use.
 *
 * Calls between the hall's files go down this list, never up:
 *   hall.c        dispatch (the handler table), idem, replay
 *   window.c      -> case.c, appointment.c, ticket.c, stats.c
 *   case_intake.c, case_review.c, case_issue.c -> case.c (case_internal.h);
 *                 case_issue.c also -> case_review.c
 *   case.c        -> ticket.c, stats.c, events.c
 *   stats_read.c  -> ticket.c, stats.c
 *   board.c       -> ticket.c (and reads the windows window.c stores)
 *   ticket.c      -> stats.c, events.c; cases and appointments only through
 *                    h->take (ticket.h), a table hall.c fills
 *   appointment.c, clock.c, config.c, idem.c
 *   events.c      lines' waiting counts only through the function hall_exec
 *                 passes it (events.h)
 *   stats.c, value.c, ops.c, store.c, calendar.c */
#ifndef HALLQ_HALL_INTERNAL_H
#define HALLQ_HALL_INTERNAL_H

#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"

#include <stdint.h>
#include <string.h>

#define HALL_MAX_PENDING_CONFIGS 8

struct hall_take_hooks; /* ticket.h */

struct hall {
    hall_store *st;
    const struct hall_take_hooks *take; /* ticket.take's calls upward */
    hall_config *cfg;                   /* in force */
    int64_t clock_ms;                   /* latest record time (or manual clock) */
    int rules;                          /* the rules version in force (hall.h) */
    msgpack_zone zone;                  /* scratch for decoding stored values, cleared per op */
    msgpack_zone replay_zone;           /* a replayed record's payload, cleared per record */
    proto_buf scratch;
    /* The args of the time-driven record hall_due hands out. */
    proto_buf due_buf;
    msgpack_zone due_zone;
    msgpack_object due_obj;

    /* The events of the mutation running now (events.c). */
    proto_buf ev;
    uint32_t n_ev;
    uint32_t *ev_lines; /* waiting per line before the op */
    /* Waiting per line as the op stored it, where ev_stored[i] (every
     * change of a line goes through hall_line_store, which notes it). */
    uint32_t *ev_lines_now;
    bool *ev_stored;
    int ev_lines_cap;
    bool ev_lines_valid;
    /* Within a batch, ev_lines after an op that touched lines are the
     * counts the next op starts from, in the txn ev_txn (NULL: unknown).
     * Only between hall_batch_begin and its commit or abort. */
    bool in_batch;
    MDB_txn *ev_txn;
    /* The counts were known when an op that does not touch lines began:
     * they still are after it unless it stored a line or changed the
     * config (ev_cfg: the one in force when it began). */
    bool ev_keep;
    const hall_config *ev_cfg;

    /* Batch bracketing: what to restore on abort, what to free on commit. */
    hall_config *saved_cfg;
    int64_t saved_clock;
    int saved_rules;
    hall_config *retired[HALL_MAX_PENDING_CONFIGS]; /* replaced within the batch */
    int n_retired;
};

/* A handler packs its result map with pk, or fails with e (and *mdb_rc for
 * LMDB errors, which abort the batch). */
typedef int (*hall_handler)(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                            proto_error *e, int *mdb_rc);

int hall_ticket_take(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc);
int hall_ticket_get(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                    proto_error *e, int *mdb_rc);
int hall_clock_advance(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc);
int hall_ticket_return(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc);
int hall_window_state_op(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc);
int hall_window_call(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc);
int hall_window_recall(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc);
int hall_window_no_show(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                        proto_error *e, int *mdb_rc);
int hall_window_transfer(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc);
int hall_window_done(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc);
int hall_day_close(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,
                   int *mdb_rc);
int64_t hall_next_close_ms(const hall_config *cfg, int64_t after);
#define HALL_CASE_HANDLER(fn)                                                                      \
    int fn(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,       \
           int *mdb_rc);
HALL_CASE_HANDLER(hall_window_intake)
HALL_CASE_HANDLER(hall_case_get)
HALL_CASE_HANDLER(hall_review_claim)
HALL_CASE_HANDLER(hall_review_decide)
HALL_CASE_HANDLER(hall_review_list)
HALL_CASE_HANDLER(hall_case_supplement)
HALL_CASE_HANDLER(hall_case_deliver)
HALL_CASE_HANDLER(hall_rate)
HALL_CASE_HANDLER(hall_case_timer)
HALL_CASE_HANDLER(hall_appointment_book)
HALL_CASE_HANDLER(hall_appointment_get)
HALL_CASE_HANDLER(hall_appointment_timer)
HALL_CASE_HANDLER(hall_board_read)
HALL_CASE_HANDLER(hall_catalogue_read)
#undef HALL_CASE_HANDLER
int hall_case_check_pickup(hall *h, MDB_txn *txn, const char *no, size_t n, proto_error *e,
                           int *mdb_rc);
int64_t hall_case_next_timer(hall *h, MDB_txn *txn, proto_buf *out);
/* ticket.take with an appointment code: checks the code for `line` at
 * `now` (not_found, conflict when used or for another line) and says
 * whether the ticket gets the appointment class; then, once the ticket is
 * made, marks the code used by it (an LMDB error code or 0). */
int hall_appointment_check(hall *h, MDB_txn *txn, const char *code, size_t n, const char *line,
                           int64_t now, bool *in_slot, proto_error *e, int *mdb_rc);
int hall_appointment_use(hall *h, MDB_txn *txn, const char *code, size_t n, const char *ticket_id,
                         int64_t now, bool in_slot);
/* The earliest appointment no-show due: its time, and (out not NULL) the
 * args {code} of its appointment.timer record. INT64_MAX when none. */
int64_t hall_appointment_next_due(hall *h, MDB_txn *txn, proto_buf *out);
int hall_config_apply(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                      proto_error *e, int *mdb_rc);

/* idem entries (idem.c): a repeat within HALL_IDEM_TTL_MS of the first
 * request's time gets its answer. hall_idem_index notes an entry stored at
 * `at` in the time index; hall_idem_expire, run by every record at its
 * time `now`, deletes a bounded number of entries past the window. Both
 * return 0 or an LMDB error. */
#define HALL_IDEM_MAX 64
#define HALL_IDEM_KEY_MAX (1 + HALL_ID_MAX + 1 + HALL_IDEM_MAX)
#define HALL_IDEM_TTL_MS (24LL * 3600 * 1000)
int hall_idem_index(hall *h, MDB_txn *txn, const uint8_t *key, size_t klen, int64_t at);
int hall_idem_expire(hall *h, MDB_txn *txn, int64_t now);

/* An LMDB failure inside a handler: sets e and *mdb_rc, returns -1. */
int hall_mdb_fail(proto_error *e, int *mdb_rc, int rc, const char *where);

/* Unpacks a stored MessagePack value into the hall's scratch zone. */
int hall_unpack(hall *h, const MDB_val *v, msgpack_object *o);
/* Unpacks data[0..len) into z exactly as msgpack_unpack does (strings
 * point into data), 0; or -1 unless it is one whole object. */
int hall_unpack_in(msgpack_zone *z, const void *data, size_t len, msgpack_object *o);

/* Positional field i of an array object, or NULL. */
const msgpack_object *hall_field(const msgpack_object *arr, uint32_t i);
int64_t hall_field_i64(const msgpack_object *arr, uint32_t i);
/* Copies a str field into out (NUL-terminated, truncated to cap). */
void hall_field_str(const msgpack_object *arr, uint32_t i, char *out, size_t cap);

/* snprintf(out, cap, "%.*s", (int)n, s) without the formatting (n =
 * SIZE_MAX: "%s"): at most n bytes of s, up to its first NUL, cut to
 * cap - 1 bytes, NUL-terminated. cap > 0. */
static inline void hall_copy(char *out, size_t cap, const char *s, size_t n)
{
    size_t l = strnlen(s, n < cap - 1 ? n : cap - 1);
    memcpy(out, s, l);
    out[l] = 0;
}

/* v in decimal, zero-padded to min_digits ("%0*llu"), into out without a
 * NUL (20 bytes at most for min_digits <= 20); returns the length. */
size_t hall_put_uint(char *out, uint64_t v, int min_digits);

#endif
