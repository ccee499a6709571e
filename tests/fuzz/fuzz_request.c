/* tests/fuzz/fuzz_request.c: bodies and envelopes (proto/msg.c) under
 * arbitrary bytes.
 *
 * The input is one frame body. proto_body_check and proto_request_decode
 * must agree: a body the check passes is one that msgpack-c unpacks to
 * one map, so decode never says BAD_FRAME for it; one it refuses, decode
 * refuses too. No declared count may reach msgpack-c's allocator
 * (tools/fuzz.sh runs with -malloc_limit_mb). On a decoded request the
 * args readers run on the keys the ops use, required and not; every
 * string they or the envelope return must lie inside the body, and every
 * error is BAD_REQUEST naming the field. Then the op goes through
 * hall_op_find, and every object under args is walked, reading every
 * byte it points at. */
#include "tests/fuzz/fuzz.h"

#include "daemon/hall/hall.h"
#include "proto/proto.h"

#include <string.h>

static const uint8_t *g_body;
static size_t g_len;

static void check_inside(const void *p, size_t n)
{
    const uint8_t *b = p;
    if (n == 0)
        return;
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(b >= g_body && b <= g_body + g_len && n <= (size_t)(g_body + g_len - b));
}

static void check_error(proto_err rc, const proto_error *e, const char *key)
{
    FUZZ_CHECK(rc == PROTO_E_BAD_REQUEST && e->code == rc);
    FUZZ_CHECK(memchr(e->msg, 0, sizeof e->msg) != NULL);
    FUZZ_CHECK(strstr(e->msg, key) != NULL);
}

/* Reads every byte under o; returns a sum so nothing is optimised away. */
static unsigned walk(const msgpack_object *o, int depth)
{
    FUZZ_CHECK(depth <= PROTO_MAX_DEPTH);
    unsigned sum = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        check_inside(o->via.str.ptr, o->via.str.size);
        for (uint32_t i = 0; i < o->via.str.size; i++)
            sum += (uint8_t)o->via.str.ptr[i];
        break;
    case MSGPACK_OBJECT_EXT:
        check_inside(o->via.ext.ptr, o->via.ext.size);
        for (uint32_t i = 0; i < o->via.ext.size; i++)
            sum += (uint8_t)o->via.ext.ptr[i];
        break;
    case MSGPACK_OBJECT_ARRAY:
        FUZZ_CHECK(o->via.array.size <= g_len);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            sum += walk(&o->via.array.ptr[i], depth + 1);
        break;
    case MSGPACK_OBJECT_MAP:
        FUZZ_CHECK(o->via.map.size <= g_len);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            /* proto_body_check let through string keys only. */
            FUZZ_CHECK(o->via.map.ptr[i].key.type == MSGPACK_OBJECT_STR);
            sum += walk(&o->via.map.ptr[i].key, depth + 1);
            sum += walk(&o->via.map.ptr[i].val, depth + 1);
        }
        break;
    default:
        break;
    }
    return sum;
}

/* Keys the ops read, and a few that no op has. */
static const char *const keys[] = {
    "token",     "client",    "line",    "priority", "appointment", "case_no",  "idem",
    "ticket_id", "slot_ms",   "code",    "score",    "comment",     "state",    "service",
    "applicant", "materials", "outcome", "reason",   "method",      "tracking", "decision",
    "missing",   "limit",     "topics",  "since",    "day",         "ms",       "kind",
    "id",        "name",      "",        "args",     "op",
};

static void read_args(const msgpack_object *args)
{
    proto_error e;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *k = keys[i];
        for (int req = 0; req < 2; req++) {
            bool required = req;
            const char *s;
            uint32_t len;
            proto_err rc = proto_arg_str(args, k, required, &s, &len, &e);
            if (rc == PROTO_OK) {
                FUZZ_CHECK(s != NULL || (len == 0 && !required));
                if (s)
                    check_inside(s, len);
            } else {
                check_error(rc, &e, k);
                FUZZ_CHECK(s == NULL && len == 0);
            }

            uint64_t u;
            bool present;
            rc = proto_arg_uint(args, k, required, &u, &present, &e);
            if (rc == PROTO_OK)
                FUZZ_CHECK(present || !required);
            else
                check_error(rc, &e, k);

            bool b;
            rc = proto_arg_bool(args, k, required, &b, &present, &e);
            if (rc == PROTO_OK)
                FUZZ_CHECK(present || !required);
            else
                check_error(rc, &e, k);

            const msgpack_object *o;
            rc = proto_arg_map(args, k, required, &o, &e);
            if (rc == PROTO_OK) {
                FUZZ_CHECK(o != NULL || !required);
                if (o) {
                    FUZZ_CHECK(o->type == MSGPACK_OBJECT_MAP);
                    /* Nested maps are read the same way (applicant). */
                    const char *kind;
                    if (proto_arg_str(o, "kind", false, &kind, &len, &e) == PROTO_OK && kind)
                        check_inside(kind, len);
                }
            } else {
                check_error(rc, &e, k);
                FUZZ_CHECK(o == NULL);
            }

            rc = proto_arg_array(args, k, required, &o, &e);
            if (rc == PROTO_OK) {
                FUZZ_CHECK(o != NULL || !required);
                if (o)
                    FUZZ_CHECK(o->type == MSGPACK_OBJECT_ARRAY);
            } else {
                check_error(rc, &e, k);
                FUZZ_CHECK(o == NULL);
            }
        }
    }
}

int fuzz_request(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so that any read past the body is
     * a heap overflow ASan reports. */
    uint8_t *body = malloc(size ? size : 1);
    FUZZ_CHECK(body != NULL);
    if (size)
        memcpy(body, data, size);
    g_body = body;
    g_len = size;

    proto_error e;
    memset(&e, 0, sizeof e);
    proto_err checked = proto_body_check(body, size, &e);
    FUZZ_CHECK(checked == PROTO_OK || checked == PROTO_E_BAD_FRAME);
    if (checked != PROTO_OK)
        FUZZ_CHECK(e.code == PROTO_E_BAD_FRAME && e.msg[0] != 0);

    msgpack_zone z;
    FUZZ_CHECK(msgpack_zone_init(&z, 1024));
    proto_request rq;
    proto_err rc = proto_request_decode(&z, body, size, &rq, &e);
    if (checked != PROTO_OK) {
        FUZZ_CHECK(rc == PROTO_E_BAD_FRAME);
    } else {
        /* The check and msgpack-c agree on every body the check passes. */
        FUZZ_CHECK(rc == PROTO_OK || rc == PROTO_E_BAD_REQUEST);
    }
    if (rc != PROTO_OK)
        FUZZ_CHECK(e.code == rc && e.msg[0] != 0);
    if (rc == PROTO_E_BAD_REQUEST)
        FUZZ_CHECK(strncmp(e.msg, "id:", 3) == 0 || strncmp(e.msg, "op:", 3) == 0 ||
                   strncmp(e.msg, "args:", 5) == 0);
    if (rc == PROTO_OK) {
        FUZZ_CHECK(rq.op != NULL);
        check_inside(rq.op, rq.op_len);
        FUZZ_CHECK(!rq.args || rq.args->type == MSGPACK_OBJECT_MAP);
        const hall_op_def *def = hall_op_find(rq.op, rq.op_len);
        if (def) {
            FUZZ_CHECK(strlen(def->name) == rq.op_len);
            FUZZ_CHECK(memcmp(def->name, rq.op, rq.op_len) == 0);
            FUZZ_CHECK(hall_op_get(def->op) == def);
            FUZZ_CHECK(proto_op_is(&rq, def->name));
        }
        read_args(rq.args);
        if (rq.args)
            (void)walk(rq.args, 1);
    }
    msgpack_zone_destroy(&z);
    free(body);
    g_body = NULL;
    g_len = 0;
    return 0;
}

#ifdef HALLQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_request(data, size);
}
#endif
