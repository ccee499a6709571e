/* daemon/hall/ops.c: the op table (names, record types, roles, kinds)
 * and its look-ups. A leaf: the handlers and hall_due find ops here
 * without calling into the dispatch (hall.c). */
#include "daemon/hall/hall.h"

#include <string.h>

static const hall_op_def op_defs[HALL_OP__COUNT] = {
#define HALL_OP_DEF(e, nm, rec, roles, kind) {HALL_OP_##e, nm, rec, roles, kind},
    HALL_OP_MAP(HALL_OP_DEF)
#undef HALL_OP_DEF
};

const hall_op_def *hall_op_find(const char *name, size_t n)
{
    for (int i = 0; i < HALL_OP__COUNT; i++)
        if (strlen(op_defs[i].name) == n && memcmp(op_defs[i].name, name, n) == 0)
            return &op_defs[i];
    return NULL;
}

const hall_op_def *hall_op_by_record(uint16_t type)
{
    for (int i = 0; i < HALL_OP__COUNT; i++)
        if (type && op_defs[i].rec_type == type)
            return &op_defs[i];
    return NULL;
}

const hall_op_def *hall_op_get(hall_op op)
{
    return (unsigned)op < HALL_OP__COUNT ? &op_defs[op] : NULL;
}

bool hall_op_knows_arg(const hall_op_def *def, const char *name, size_t n)
{
#define ARGS(name, ...) static const char *const name[] = {__VA_ARGS__, NULL}
    ARGS(take, "line", "priority", "appointment", "case_no");
    ARGS(intake, "service", "applicant", "materials", "outcome", "reason");
    ARGS(decide, "case_no", "decision", "reason", "missing");
    ARGS(supplement, "case_no", "materials");
    ARGS(deliver, "case_no", "method", "tracking");
    ARGS(rate, "ticket_id", "case_no", "score", "comment");
    ARGS(book, "line", "slot_ms");
    ARGS(ms, "ms");
    ARGS(ticket_id, "ticket_id");
    ARGS(state, "state");
    ARGS(line, "line");
    ARGS(text, "text");
#undef ARGS
    static const char *const none[] = {NULL};
    const char *const *known;
    if (n == 4 && memcmp(name, "idem", 4) == 0)
        return true;
    switch (def->op) {
    case HALL_OP_CLOCK_ADVANCE:
        known = ms;
        break;
    case HALL_OP_TICKET_TAKE:
        known = take;
        break;
    case HALL_OP_TICKET_RETURN:
        known = ticket_id;
        break;
    case HALL_OP_WINDOW_STATE:
        known = state;
        break;
    case HALL_OP_WINDOW_TRANSFER:
        known = line;
        break;
    case HALL_OP_WINDOW_INTAKE:
        known = intake;
        break;
    case HALL_OP_REVIEW_DECIDE:
        known = decide;
        break;
    case HALL_OP_CASE_SUPPLEMENT:
        known = supplement;
        break;
    case HALL_OP_CASE_DELIVER:
        known = deliver;
        break;
    case HALL_OP_RATE:
        known = rate;
        break;
    case HALL_OP_APPOINTMENT_BOOK:
        known = book;
        break;
    case HALL_OP_CONFIG_RELOAD:
        known = text;
        break;
    case HALL_OP_WINDOW_CALL:
    case HALL_OP_WINDOW_RECALL:
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_DONE:
    case HALL_OP_REVIEW_CLAIM:
    case HALL_OP_DAY_CLOSE:
        known = none;
        break;
    default:
        return true; /* reads, and the system's records */
    }
    for (; *known; known++)
        if (strlen(*known) == n && memcmp(*known, name, n) == 0)
            return true;
    return false;
}
