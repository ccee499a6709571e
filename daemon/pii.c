/* daemon/pii.c: the keyed hash and the masked form of identity numbers
 * (see pii.h). BLAKE2b with the hall's key, 16 bytes, as hex. */
#include "daemon/pii.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pii_key_load(const char *data_dir, uint8_t key[PII_KEY_LEN], char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pii.key", data_dir);
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, key, PII_KEY_LEN);
        close(fd);
        if (n != PII_KEY_LEN) {
            snprintf(err, errlen, "%s: expected %d bytes", path, PII_KEY_LEN);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(key, PII_KEY_LEN);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, key, PII_KEY_LEN) != PII_KEY_LEN || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void pii_mask(const char *id, size_t n, char *out, size_t cap)
{
    if (n <= 7)
        snprintf(out, cap, "%.*s%s", (int)(n > 1 ? 1 : n), id, n > 1 ? "***" : "");
    else
        snprintf(out, cap, "%.3s%.*s%.4s", id, (int)(n - 7 > 16 ? 16 : n - 7), "****************",
                 id + n - 4);
}

static bool key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, s, n);
}

int pii_rewrite_intake(const uint8_t key[PII_KEY_LEN], const proto_request *rq, proto_buf *out)
{
    const msgpack_object *args = rq->args, *app = args ? proto_map_get(args, "applicant") : NULL;
    const msgpack_object *id =
        app && app->type == MSGPACK_OBJECT_MAP ? proto_map_get(app, "id") : NULL;
    if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size == 0 || id->via.str.size > 64)
        return 0;
    uint8_t h[16];
    char hex[33], masked[32];
    crypto_generichash(h, sizeof h, (const uint8_t *)id->via.str.ptr, id->via.str.size, key,
                       PII_KEY_LEN);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    pii_mask(id->via.str.ptr, id->via.str.size, masked, sizeof masked);

    msgpack_packer pk;
    proto_buf_reset(out);
    proto_packer_init(&pk, out);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", rq->id);
    proto_pack_str(&pk, "op");
    proto_pack_strn(&pk, rq->op, rq->op_len);
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, args->via.map.size);
    for (uint32_t i = 0; i < args->via.map.size; i++) {
        const msgpack_object_kv *kv = &args->via.map.ptr[i];
        msgpack_pack_object(&pk, kv->key);
        if (!key_is(&kv->key, "applicant")) {
            msgpack_pack_object(&pk, kv->val);
            continue;
        }
        /* kind and name as sent; the id only as hash and mask; anything
         * else the client put there is dropped (it may be another copy of
         * the number). */
        const msgpack_object *kind = proto_map_get(app, "kind"), *name = proto_map_get(app, "name");
        msgpack_pack_map(&pk, 2 + (kind != NULL) + (name != NULL));
        if (kind) {
            proto_pack_str(&pk, "kind");
            msgpack_pack_object(&pk, *kind);
        }
        if (name) {
            proto_pack_str(&pk, "name");
            msgpack_pack_object(&pk, *name);
        }
        proto_pack_kv_str(&pk, "id_hash", hex);
        proto_pack_kv_str(&pk, "id_masked", masked);
    }
    sodium_memzero(h, sizeof h);
    return out->oom ? -1 : 1;
}
