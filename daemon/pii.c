/* daemon/pii.c: the keyed hash and the masked form of identity numbers
 * (see pii.h). BLAKE2b with the hall's key, 16 bytes, as hex. */
#include "daemon/pii.h"
#include "daemon/hall/hall.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int find_intake(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    (void)pos;
    return rec->type == *(const uint16_t *)ctx;
}

/* Whether the hall has recorded intakes: cases in the state (recovery has
 * replayed the WAL into it), or else a window.intake record in the WAL
 * (an intake that opened no case, notify or refuse, still hashed an id).
 * The WAL is read only when the key is missing and no case exists. */
static int has_intake(hall_store *st, const char *wal_dir, char *what, size_t wlen, char *err,
                      size_t errlen)
{
    MDB_txn *txn;
    MDB_stat ms;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = mdb_stat(txn, st->cases, &ms);
        mdb_txn_abort(txn);
    }
    if (rc) {
        snprintf(err, errlen, "lmdb: counting the cases: %s", mdb_strerror(rc));
        return -1;
    }
    if (ms.ms_entries) {
        snprintf(what, wlen, "the state holds %zu cases", (size_t)ms.ms_entries);
        return 1;
    }
    uint16_t type = hall_op_get(HALL_OP_WINDOW_INTAKE)->rec_type;
    wal_scan_options so = {.dir = wal_dir, .visit = find_intake, .ctx = &type};
    wal_scan_result res;
    rc = wal_scan(&so, &res);
    if (rc == 1) {
        snprintf(what, wlen, "the WAL holds window.intake records");
        return 1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "wal: %s", res.message[0] ? res.message : wal_strerror(rc));
        return -1;
    }
    return 0;
}

/* Makes a new key durably: a temporary file, written and synced, renamed
 * into place, then the directory synced, so a crash leaves either no key
 * (and no intake made with one) or the whole key. */
static int key_create(const char *dir, const char *path, uint8_t key[PII_KEY_LEN], char *err,
                      size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    randombytes_buf(key, PII_KEY_LEN);
    unlink(tmp); /* a leftover of a crash during an earlier first start */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const char *step = "creating";
    if (fd < 0)
        goto fail;
    step = "writing";
    if (write(fd, key, PII_KEY_LEN) != PII_KEY_LEN)
        goto fail;
    step = "syncing";
    if (fsync(fd) != 0)
        goto fail;
    close(fd);
    fd = -1;
    step = "renaming";
    if (rename(tmp, path) != 0)
        goto fail;
    step = "syncing the directory of";
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) != 0)
        goto fail;
    close(fd);
    return 0;
fail:
    snprintf(err, errlen, "%s %s: %s", step, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int pii_key_load(const char *data_dir, hall_store *st, const char *wal_dir,
                 uint8_t key[PII_KEY_LEN], char *err, size_t errlen)
{
    char path[4096], what[96];
    snprintf(path, sizeof path, "%s/pii.key", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
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
    int rc = has_intake(st, wal_dir, what, sizeof what, err, errlen);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        snprintf(err, errlen,
                 "%s is missing, but this hall has recorded intakes (%s): a new key would "
                 "unlink every earlier applicant's hash from new cases. Restore pii.key from "
                 "your backup into %s (32 bytes, mode 0600, owned by the hallqd user; README, "
                 "\"Backup and restore\"). Only if it is lost for good, make a new one by hand "
                 "(head -c 32 /dev/urandom > %s; chmod 600 %s): earlier applicants' cases will "
                 "then match no new one",
                 path, what, data_dir, path, path);
        return -1;
    }
    return key_create(data_dir, path, key, err, errlen);
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

/* Bytes of the UTF-8 character at s (1 for a byte that does not start a
 * well-formed one: such a name is masked byte by byte). */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80         ? 1
                 : (s[0] >> 5) == 6  ? 2
                 : (s[0] >> 4) == 14 ? 3
                 : (s[0] >> 3) == 30 ? 4
                                     : 1;
    if (len > n)
        return 1;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    return len;
}

size_t pii_mask_name(const char *name, size_t n, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t first = n ? utf8_char(s, n) : 0, chars = 0;
    for (size_t i = first; i < n; i += utf8_char(s + i, n - i))
        chars++;
    if (chars > PII_NAME_STARS_MAX)
        chars = PII_NAME_STARS_MAX;
    size_t len = first + chars;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, name, first < len ? first : len);
    if (len > first)
        memset(out + first, '*', len - first);
    out[len] = 0;
    return len;
}

int pii_rewrite_intake(const uint8_t key[PII_KEY_LEN], bool keep_names, const proto_request *rq,
                       proto_buf *out)
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
        /* kind as sent; the name as sent (pii.names: keep) or masked (a
         * name that is not a string is dropped then); the id only as hash
         * and mask; anything else the client put there is dropped (it may
         * be another copy of the number). */
        const msgpack_object *kind = proto_map_get(app, "kind"), *name = proto_map_get(app, "name");
        char mname[4 + PII_NAME_STARS_MAX + 1];
        size_t mlen = 0;
        if (name && !keep_names) {
            if (name->type == MSGPACK_OBJECT_STR)
                mlen = pii_mask_name(name->via.str.ptr, name->via.str.size, mname, sizeof mname);
            else
                name = NULL;
        }
        msgpack_pack_map(&pk, 2 + (kind != NULL) + (name != NULL));
        if (kind) {
            proto_pack_str(&pk, "kind");
            msgpack_pack_object(&pk, *kind);
        }
        if (name) {
            proto_pack_str(&pk, "name");
            if (keep_names)
                msgpack_pack_object(&pk, *name);
            else
                proto_pack_strn(&pk, mname, mlen);
        }
        proto_pack_kv_str(&pk, "id_hash", hex);
        proto_pack_kv_str(&pk, "id_masked", masked);
    }
    sodium_memzero(h, sizeof h);
    return out->oom ? -1 : 1;
}
