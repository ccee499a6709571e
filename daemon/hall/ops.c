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
