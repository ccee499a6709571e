/* proto/msg.c: checking bodies, decoding envelopes, reading args.
 *
 * proto_body_check walks the MessagePack bytes without allocating, before
 * msgpack-c sees them: msgpack-c allocates count * sizeof(object) for a
 * container up front, so a 5-byte body claiming 2^32 entries must never
 * reach it. Every declared length and count is checked against the bytes
 * that are really there, nesting is bounded, map keys must be strings,
 * and nothing may follow the map. */
#include "proto/proto.h"

#include <inttypes.h>
#include <string.h>

enum { K_SCALAR, K_STR, K_ARRAY, K_MAP, K_BAD };

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

proto_err proto_body_check(const uint8_t *p, size_t n, proto_error *e)
{
    struct {
        uint64_t left;
        bool map;
    } st[PROTO_MAX_DEPTH];
    int d = 0;
    size_t pos = 0;
    bool top = true;

    if (n == 0)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: empty");
    for (;;) {
        bool want_key = d > 0 && st[d - 1].map && st[d - 1].left % 2 == 0;
        if (pos >= n)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: truncated at byte %zu", pos);
        uint8_t b = p[pos];
        size_t hdr = 1, lenbytes = 0;
        uint64_t body = 0, count = 0;
        int kind = K_SCALAR;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            kind = K_MAP;
            count = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            kind = K_ARRAY;
            count = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            kind = K_STR;
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
                lenbytes = 1;
                break; /* bin */
            case 0xc5:
                lenbytes = 2;
                break;
            case 0xc6:
                lenbytes = 4;
                break;
            case 0xc7:
                lenbytes = 1;
                hdr = 2;
                break; /* ext: + type byte */
            case 0xc8:
                lenbytes = 2;
                hdr = 2;
                break;
            case 0xc9:
                lenbytes = 4;
                hdr = 2;
                break;
            case 0xca:
                body = 4;
                break;
            case 0xcb:
                body = 8;
                break;
            case 0xcc:
            case 0xd0:
                body = 1;
                break;
            case 0xcd:
            case 0xd1:
                body = 2;
                break;
            case 0xce:
            case 0xd2:
                body = 4;
                break;
            case 0xcf:
            case 0xd3:
                body = 8;
                break;
            case 0xd4:
                hdr = 2;
                body = 1;
                break; /* fixext */
            case 0xd5:
                hdr = 2;
                body = 2;
                break;
            case 0xd6:
                hdr = 2;
                body = 4;
                break;
            case 0xd7:
                hdr = 2;
                body = 8;
                break;
            case 0xd8:
                hdr = 2;
                body = 16;
                break;
            case 0xd9:
                kind = K_STR;
                lenbytes = 1;
                break;
            case 0xda:
                kind = K_STR;
                lenbytes = 2;
                break;
            case 0xdb:
                kind = K_STR;
                lenbytes = 4;
                break;
            case 0xdc:
                kind = K_ARRAY;
                lenbytes = 2;
                break;
            case 0xdd:
                kind = K_ARRAY;
                lenbytes = 4;
                break;
            case 0xde:
                kind = K_MAP;
                lenbytes = 2;
                break;
            case 0xdf:
                kind = K_MAP;
                lenbytes = 4;
                break;
            default:
                kind = K_BAD;
                break; /* 0xc1 */
            }
        }
        if (kind == K_BAD)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: invalid byte 0x%02x at %zu", b, pos);
        if (top && kind != K_MAP)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: not a map");
        if (want_key && kind != K_STR)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: map key at byte %zu is not a string",
                              pos);
        hdr += lenbytes;
        if (hdr > n - pos)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: truncated at byte %zu", pos);
        if (lenbytes) {
            uint64_t v = rd(p + pos + 1, (int)lenbytes);
            if (kind == K_ARRAY || kind == K_MAP)
                count = v;
            else
                body = v;
        }
        pos += hdr;
        if (body > n - pos)
            return proto_fail(e, PROTO_E_BAD_FRAME,
                              "body: %s length %" PRIu64 " runs past the frame",
                              kind == K_STR ? "string" : "value", body);
        pos += (size_t)body;
        if (d > 0)
            st[d - 1].left--;
        if (kind == K_ARRAY || kind == K_MAP) {
            uint64_t items = kind == K_MAP ? count * 2 : count;
            if (d >= PROTO_MAX_DEPTH)
                return proto_fail(e, PROTO_E_BAD_FRAME, "body: nesting deeper than %d",
                                  PROTO_MAX_DEPTH);
            if (items > n - pos)
                return proto_fail(e, PROTO_E_BAD_FRAME,
                                  "body: %s of %" PRIu64 " entries runs past the frame",
                                  kind == K_MAP ? "map" : "array", count);
            if (items) {
                st[d].left = items;
                st[d].map = kind == K_MAP;
                d++;
            }
        }
        top = false;
        while (d > 0 && st[d - 1].left == 0)
            d--;
        if (d == 0)
            break;
    }
    if (pos != n)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: %zu trailing bytes after the map", n - pos);
    return PROTO_OK;
}

static bool key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

proto_err proto_request_decode(msgpack_zone *z, const uint8_t *body, size_t n, proto_request *req,
                               proto_error *e)
{
    memset(req, 0, sizeof *req);
    proto_err rc = proto_body_check(body, n, e);
    if (rc != PROTO_OK)
        return rc;
    msgpack_object o;
    size_t off = 0;
    if (msgpack_unpack((const char *)body, n, &off, z, &o) != MSGPACK_UNPACK_SUCCESS || off != n ||
        o.type != MSGPACK_OBJECT_MAP)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: not one MessagePack map");
    const msgpack_object *id = proto_map_get(&o, "id");
    const msgpack_object *op = proto_map_get(&o, "op");
    const msgpack_object *args = proto_map_get(&o, "args");
    if (id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        req->id = id->via.u64;
    if (!id)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "id: missing");
    if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "id: expected unsigned integer");
    if (!op)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "op: missing");
    if (op->type != MSGPACK_OBJECT_STR)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "op: expected string");
    req->op = op->via.str.ptr;
    req->op_len = op->via.str.size;
    if (args && args->type != MSGPACK_OBJECT_NIL) {
        if (args->type != MSGPACK_OBJECT_MAP)
            return proto_fail(e, PROTO_E_BAD_REQUEST, "args: expected map");
        req->args = args;
    }
    return PROTO_OK;
}

bool proto_op_is(const proto_request *r, const char *s)
{
    size_t n = strlen(s);
    return r->op_len == n && memcmp(r->op, s, n) == 0;
}

/* Finds a field; NULL (and OK) when absent or nil and optional. */
static proto_err field(const msgpack_object *args, const char *key, bool required,
                       const msgpack_object **out, proto_error *e)
{
    const msgpack_object *v = proto_map_get(args, key);
    if (v && v->type == MSGPACK_OBJECT_NIL)
        v = NULL;
    *out = v;
    if (!v && required)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: missing", key);
    return PROTO_OK;
}

static proto_err mistyped(proto_error *e, const char *key, const char *want)
{
    return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: expected %s", key, want);
}

proto_err proto_arg_str(const msgpack_object *args, const char *key, bool required, const char **s,
                        uint32_t *len, proto_error *e)
{
    const msgpack_object *v;
    *s = NULL;
    *len = 0;
    if (field(args, key, required, &v, e) != PROTO_OK)
        return e->code;
    if (!v)
        return PROTO_OK;
    if (v->type != MSGPACK_OBJECT_STR)
        return mistyped(e, key, "string");
    *s = v->via.str.ptr ? v->via.str.ptr : "";
    *len = v->via.str.size;
    return PROTO_OK;
}

proto_err proto_arg_uint(const msgpack_object *args, const char *key, bool required, uint64_t *val,
                         bool *present, proto_error *e)
{
    const msgpack_object *v;
    *present = false;
    if (field(args, key, required, &v, e) != PROTO_OK)
        return e->code;
    if (!v)
        return PROTO_OK;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return mistyped(e, key, "unsigned integer");
    *val = v->via.u64;
    *present = true;
    return PROTO_OK;
}

proto_err proto_arg_bool(const msgpack_object *args, const char *key, bool required, bool *val,
                         bool *present, proto_error *e)
{
    const msgpack_object *v;
    *present = false;
    if (field(args, key, required, &v, e) != PROTO_OK)
        return e->code;
    if (!v)
        return PROTO_OK;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return mistyped(e, key, "bool");
    *val = v->via.boolean;
    *present = true;
    return PROTO_OK;
}

proto_err proto_arg_map(const msgpack_object *args, const char *key, bool required,
                        const msgpack_object **o, proto_error *e)
{
    if (field(args, key, required, o, e) != PROTO_OK)
        return e->code;
    if (*o && (*o)->type != MSGPACK_OBJECT_MAP)
        return mistyped(e, key, "map");
    return PROTO_OK;
}

proto_err proto_arg_array(const msgpack_object *args, const char *key, bool required,
                          const msgpack_object **o, proto_error *e)
{
    if (field(args, key, required, o, e) != PROTO_OK)
        return e->code;
    if (*o && (*o)->type != MSGPACK_OBJECT_ARRAY)
        return mistyped(e, key, "array");
    return PROTO_OK;
}
