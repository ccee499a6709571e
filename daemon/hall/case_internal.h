/* daemon/hall/case_internal.h: what case*.c share: the case, its states and helpers. */
#ifndef HALLQ_HALL_CASE_INTERNAL_H
#define HALLQ_HALL_CASE_INTERNAL_H

#include "daemon/hall/events.h"
#include "daemon/hall/ticket.h"
#include "daemon/hall/stats.h"

enum { CASE_REVIEW, CASE_SUPPLEMENT, CASE_APPROVED, CASE_DENIED, CASE_DELIVERED };
static const char *const case_states[] = {"review", "supplement", "approved", "denied",
                                          "delivered"};
enum { DEP_PENDING, DEP_CLAIMED, DEP_SUPPLEMENT, DEP_APPROVED, DEP_DENIED };
static const char *const dep_states[] = {"pending", "claimed", "supplement", "approved", "denied"};
enum { TIMER_LEASE = 1, TIMER_DUE_SOON = 2, TIMER_OVERDUE = 3 };
/* What a record did to a case (its history, and its `case` event from rules
 * 3). Stored as numbers: only ever appended. */
enum {
    CH_NONE,
    CH_ACCEPTED,
    CH_CLAIMED,
    CH_DECIDED,
    CH_SUPPLEMENT,
    CH_RESUMED,
    CH_LEASE_EXPIRED,
    CH_DELIVERED
};
#define CASE_HISTORY_MAX 32 /* the oldest steps beyond are dropped (the first kept) */
#define CASE_REASON_MAX 200
#define CASE_NAME_MAX 128

#define CASE_NO_MAX 24
#define DEPT_KEY 16

typedef struct case_dep {
    char id[HALL_ID_MAX + 1];
    int state;
    int64_t lease_until;
    char reason[CASE_REASON_MAX + 1]; /* of a denial */
} case_dep;

typedef struct case_step {
    int64_t at_ms;
    int change;
    int state;                  /* the case's, after it */
    char dept[HALL_ID_MAX + 1]; /* the department it was about, or "" */
    int dept_state;             /* that department's, after it */
    int role;                   /* who made it: the record's actor */
    char actor[HALL_ID_MAX + 1];
} case_step;

typedef struct hall_case {
    char no[CASE_NO_MAX + 1];
    char service[HALL_ID_MAX + 1];
    int state;
    int64_t accepted_ms, deadline_ms;
    char kind[8];
    char applicant[40];
    case_dep deps[HALL_MAX_LIST];
    int n_deps;
    bool due_soon, overdue;
    char ticket[HALL_TICKET_ID_MAX + 1];
    int64_t supplement_start;
    char missing[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_missing;
    bool instant;
    int64_t delivered_ms;
    char method[8];
    char tracking[64];
    char applicant_hash[33];      /* keyed hash of the id (daemon/pii.h); "" if not given */
    char name[CASE_NAME_MAX + 1]; /* the applicant's name as logged, or "" */
    char materials[HALL_MAX_LIST][HALL_ID_MAX + 1]; /* presented at intake */
    int n_materials;
    char window[HALL_ID_MAX + 1]; /* of the intake */
    case_step steps[CASE_HISTORY_MAX];
    int n_steps;
    int change; /* not stored: what the record storing this version did, for events */
} hall_case;

/* case.c */
void hall_case_copy_utf8(char *out, size_t cap, const char *s, size_t n);
void hall_case_note(hall_case *c, const hall_request *r, int change, const char *dept);
int hall_case_load(hall *h, MDB_txn *txn, const char *no, size_t n, hall_case *c, int *mdb_rc);
int hall_case_store(hall *h, MDB_txn *txn, const hall_case *c);
int hall_case_index_op(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t n, bool put);
int hall_case_review_index(hall *h, MDB_txn *txn, const hall_case *c, const char *dept, bool put);
int hall_case_timer_index(hall *h, MDB_txn *txn, int64_t at, int kind, const char *no,
                          const char *dept, bool put);
int hall_case_deadline_timers(hall *h, MDB_txn *txn, const hall_case *c, bool put);
int hall_case_dep_index(const hall_case *c, const char *dept);
bool hall_case_is_ready(const hall_case *c);
void hall_case_pack(hall *h, MDB_txn *txn, const hall_case *c, msgpack_packer *pk, bool full);
int hall_case_load_arg_case(hall *h, MDB_txn *txn, const hall_request *r, hall_case *c,
                            proto_error *e, int *mdb_rc);
int hall_case_check_dept_access(const hall_request *r, const hall_case *c, proto_error *e);
int hall_case_read_codes(const msgpack_object *args, const char *field, bool required,
                         char codes[][HALL_ID_MAX + 1], int *n, proto_error *e);
bool hall_case_has_code(char codes[][HALL_ID_MAX + 1], int n, const char *code);

/* case_review.c */
int hall_case_undecided_to(hall *h, MDB_txn *txn, hall_case *c, bool back);

#endif
