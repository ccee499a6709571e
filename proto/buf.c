/* proto/buf.c: the growable output buffer, frame headers and the packing
 * helpers that build responses and requests.
 *
 * A failed allocation sets `oom` and every later write is dropped, so a
 * caller packs a whole message and checks once at the end instead of
 * after every pack call; proto_buf_reset clears it. A frame's length is
 * written last (proto_frame_end), over the 4 bytes proto_frame_begin
 * reserved, so a message is packed in one pass.
 *
 * Nothing here may write past len (reserve first) or leave a frame whose
 * length does not match the bytes after it. */
#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

void proto_buf_init(proto_buf *b)
{
    memset(b, 0, sizeof *b);
}

void proto_buf_free(proto_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void proto_buf_reset(proto_buf *b)
{
    b->len = 0;
    b->oom = false;
}

bool proto_buf_reserve(proto_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= extra)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

bool proto_buf_append(proto_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return !b->oom;
    if (!proto_buf_reserve(b, n))
        return false;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return true;
}

int proto_buf_write(void *data, const char *buf, size_t len)
{
    /* msgpack calls this for every token it packs (a few bytes each): the
     * common case, room enough, copies without the calls of append. */
    proto_buf *b = data;
    if (len && !b->oom && b->cap - b->len >= len) {
        memcpy(b->p + b->len, buf, len);
        b->len += len;
        return 0;
    }
    return proto_buf_append(b, buf, len) ? 0 : -1;
}

void proto_packer_init(msgpack_packer *pk, proto_buf *b)
{
    msgpack_packer_init(pk, b, proto_buf_write);
}

size_t proto_frame_begin(proto_buf *b)
{
    static const uint8_t zero[4] = {0};
    size_t off = b->len;
    proto_buf_append(b, zero, 4);
    return off;
}

void proto_frame_end(proto_buf *b, size_t off)
{
    if (b->oom || b->len < off + 4)
        return;
    size_t n = b->len - off - 4; /* the body, up to max_frame: fits 32 bits */
    b->p[off] = (uint8_t)(n >> 24);
    b->p[off + 1] = (uint8_t)(n >> 16);
    b->p[off + 2] = (uint8_t)(n >> 8);
    b->p[off + 3] = (uint8_t)n;
}

void proto_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void proto_pack_str(msgpack_packer *pk, const char *s)
{
    proto_pack_strn(pk, s, strlen(s));
}

void proto_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    proto_pack_str(pk, key);
    proto_pack_str(pk, val);
}

void proto_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
    proto_pack_str(pk, key);
    msgpack_pack_uint64(pk, val);
}

void proto_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
    proto_pack_str(pk, key);
    if (val)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void proto_write_error(proto_buf *b, uint64_t id, proto_err code, const char *msg)
{
    msgpack_packer pk;
    proto_packer_init(&pk, b);
    size_t off = proto_frame_begin(b);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", id);
    proto_pack_kv_bool(&pk, "ok", false);
    proto_pack_str(&pk, "error");
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "code", proto_err_name(code));
    proto_pack_kv_str(&pk, "message", msg ? msg : "");
    proto_frame_end(b, off);
}

size_t proto_begin_ok(proto_buf *b, msgpack_packer *pk, uint64_t id)
{
    proto_packer_init(pk, b);
    size_t off = proto_frame_begin(b);
    msgpack_pack_map(pk, 3);
    proto_pack_kv_uint(pk, "id", id);
    proto_pack_kv_bool(pk, "ok", true);
    proto_pack_str(pk, "result");
    return off;
}

void proto_write_request(proto_buf *b, uint64_t id, const char *op, const uint8_t *args_map,
                         size_t args_len)
{
    msgpack_packer pk;
    proto_packer_init(&pk, b);
    size_t off = proto_frame_begin(b);
    bool has_args = args_map && args_len > 0; /* no bytes: no args, not a key with no value */
    msgpack_pack_map(&pk, has_args ? 3 : 2);
    proto_pack_kv_uint(&pk, "id", id);
    proto_pack_kv_str(&pk, "op", op);
    if (has_args) {
        proto_pack_str(&pk, "args");
        proto_buf_append(b, args_map, args_len);
    }
    proto_frame_end(b, off);
}
