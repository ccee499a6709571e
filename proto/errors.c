/* proto/errors.c: the error codes' wire names and rules.
 *
 * The names come from PROTO_ERR_MAP in proto.h, the one table that also
 * makes the enum, so a code and its wire string cannot drift apart. The
 * wire names are fixed by the protocol: add codes at the end of the map,
 * never rename one. Nothing here allocates. */
#include "proto/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[PROTO_E__COUNT] = {"ok",
#define PROTO_ERR_NAME(name, str) str,
                                                  PROTO_ERR_MAP(PROTO_ERR_NAME)
#undef PROTO_ERR_NAME
};

const char *proto_err_name(proto_err e)
{
    return (unsigned)e < PROTO_E__COUNT ? names[e] : "internal";
}

int proto_err_from_name(const char *s, size_t n)
{
    for (int i = 1; i < PROTO_E__COUNT; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return i;
    return -1;
}

bool proto_err_closes(proto_err e)
{
    return e == PROTO_E_BAD_FRAME || e == PROTO_E_UNAUTHENTICATED;
}

int proto_err_http_status(proto_err e)
{
    switch (e) {
    case PROTO_OK:
        return 200;
    case PROTO_E_BAD_FRAME:
    case PROTO_E_BAD_REQUEST:
        return 400;
    case PROTO_E_UNAUTHENTICATED:
        return 401;
    case PROTO_E_FORBIDDEN:
        return 403;
    case PROTO_E_NOT_FOUND:
    case PROTO_E_UNKNOWN_OP:
        return 404;
    case PROTO_E_CONFLICT:
    case PROTO_E_CHECKLIST:
        return 409;
    case PROTO_E_LIMIT:
        return 429;
    case PROTO_E_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

proto_err proto_fail(proto_error *e, proto_err code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}
