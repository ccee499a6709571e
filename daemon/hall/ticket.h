/* daemon/hall/ticket.h: tickets, lines and the waiting queue.
 *
 * Stored layouts (MessagePack arrays; fields are only ever appended, a
 * missing trailing field reads as 0 / ""):
 *   ticket: [number, line, day, state, class, priority, taken_ms,
 *            order_ms, seq, window, called_ms, appointment, case_no,
 *            queue key (bin, while waiting), no_show_ms, done_ms,
 *            first_call_ms]
 *   line:   [day, last_no, waiting[class 0], waiting[1], waiting[2]]
 * Queue key: line id (4 bytes, zero padded), class (1), order_ms (8 BE),
 * seq (8 BE): LMDB's key order is the calling order within a line. A
 * ticket coming back from a no-show is put right behind the N-th waiting
 * ticket: its key is that ticket's key followed by (return time, seq), which
 * sorts after it and before the next one. */
#ifndef HALLQ_HALL_TICKET_H
#define HALLQ_HALL_TICKET_H

#include "daemon/hall/hall_internal.h"

typedef enum hall_ticket_state {
    HALL_T_WAITING = 0,
    HALL_T_CALLED,
    HALL_T_SERVING,
    HALL_T_DONE,
    HALL_T_NO_SHOW,
    HALL_T_EXPIRED,
    HALL_T__COUNT
} hall_ticket_state;

/* Calling classes, best first. */
enum { HALL_CLASS_APPOINTMENT = 0, HALL_CLASS_PRIORITY = 1, HALL_CLASS_REST = 2, HALL_CLASSES = 3 };

#define HALL_TICKET_ID_MAX 31
#define HALL_QUEUE_KEY_LEN 21
#define HALL_QUEUE_KEY_MAX (HALL_QUEUE_KEY_LEN * 2)

typedef struct hall_ticket {
    char id[HALL_TICKET_ID_MAX + 1];
    char number[16];
    char line[HALL_ID_MAX + 1];
    int32_t day;
    int state;
    int cls;
    bool priority;
    int64_t taken_ms;
    int64_t order_ms; /* position in its class: taken_ms, kept on transfer */
    uint64_t seq;
    char window[HALL_ID_MAX + 1];
    int64_t called_ms;
    char appointment[HALL_ID_MAX + 1];
    char case_no[HALL_ID_MAX + 1];
    uint8_t qkey[HALL_QUEUE_KEY_MAX]; /* while waiting */
    size_t qkey_len;
    int64_t no_show_ms;
    int64_t done_ms;
    int64_t first_call_ms; /* the wait counted in stats ends here */
} hall_ticket;

typedef struct hall_line_state {
    int32_t day;
    uint32_t last_no;
    uint32_t waiting[HALL_CLASSES];
} hall_line_state;

/* What ticket.take asks of the files above tickets (appointments, cases),
 * through a table hall.c fills at hall_open (h->take), so that ticket.c
 * calls neither of them and they may call it. */
struct hall_take_hooks {
    /* An appointment code for `line` at `now`: hall_appointment_check. */
    int (*appointment_check)(hall *h, MDB_txn *txn, const char *code, size_t n, const char *line,
                             int64_t now, bool *in_slot, proto_error *e, int *mdb_rc);
    /* ... then used by the ticket made: hall_appointment_use. */
    int (*appointment_use)(hall *h, MDB_txn *txn, const char *code, size_t n, const char *ticket_id,
                           int64_t now, bool in_slot);
    /* A case ready to collect on the pickup line: hall_case_check_pickup. */
    int (*case_pickup)(hall *h, MDB_txn *txn, const char *no, size_t n, proto_error *e,
                       int *mdb_rc);
};

const char *hall_ticket_state_name(int s);

int hall_ticket_load(hall *h, MDB_txn *txn, const char *id, size_t n, hall_ticket *t, int *mdb_rc);
int hall_ticket_store(hall *h, MDB_txn *txn, const hall_ticket *t);
int hall_line_load(hall *h, MDB_txn *txn, const char *line, hall_line_state *ls, int *mdb_rc);
int hall_line_store(hall *h, MDB_txn *txn, const char *line, const hall_line_state *ls);
/* Tickets waiting in a line, all classes (a hall_waiting_fn, events.h). */
int hall_line_waiting(hall *h, MDB_txn *txn, const char *line, uint32_t *waiting);
void hall_queue_key(const hall_ticket *t, uint8_t key[HALL_QUEUE_KEY_LEN]);
/* Puts t in its line's queue under t->qkey (set by the caller), counts it
 * waiting in its line, and stores t. */
int hall_queue_put(hall *h, MDB_txn *txn, hall_ticket *t);
/* Takes t out of its line's queue and the waiting count (t->qkey). */
int hall_queue_del(hall *h, MDB_txn *txn, hall_ticket *t);
/* Tickets waiting before t in its line's calling order. */
int hall_queue_ahead(hall *h, MDB_txn *txn, const hall_ticket *t, uint32_t *ahead, int *mdb_rc);
/* Packs a ticket as ticket.get shows it. */
int hall_ticket_pack(hall *h, MDB_txn *txn, const hall_ticket *t, msgpack_packer *pk, int *mdb_rc);

#endif
