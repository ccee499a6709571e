/* wal/record.c: the record codec (layout in wal/wal.h): encoding with the
 * chain hash and CRC, and the classification of the bytes at a place in a
 * segment (a good record, the zero end, a short, impossible or bad-CRC
 * record).
 *
 * Invariants: a record's CRC covers everything before it, the chain hash
 * included; the chain hash covers the previous hash and the record's
 * header and payload. Parsing never reads past `avail` and never
 * allocates: the scanner calls it once per record, millions of times.
 *
 * Never: decide here whether damage is a torn tail (only the scanner
 * knows where the record sits), or accept a zero type or length. */
#include "wal/wal_internal.h"

#include <sodium.h>
#include <string.h>

void wal_record_chain(const uint8_t *p, size_t total, const uint8_t prev[WAL_HASH_LEN],
                      uint8_t out[WAL_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, WAL_HASH_LEN);
    crypto_generichash_update(&st, prev, WAL_HASH_LEN);
    crypto_generichash_update(&st, p, total - WAL_HASH_LEN - 4);
    crypto_generichash_final(&st, out, WAL_HASH_LEN);
}

void wal_record_encode(uint8_t *out, const uint8_t prev[WAL_HASH_LEN], uint64_t lsn, uint64_t at_ms,
                       uint16_t type, uint8_t role, const char *actor_id, size_t actor_id_len,
                       const void *payload, uint32_t len, uint8_t hash_out[WAL_HASH_LEN])
{
    size_t total = WAL_RECORD_OVERHEAD + (size_t)len;
    wal_put32(out, len);
    wal_put16(out + 4, type);
    out[6] = role;
    out[7] = (uint8_t)actor_id_len;
    wal_put64(out + 8, lsn);
    wal_put64(out + 16, at_ms);
    memset(out + 24, 0, WAL_ACTOR_ID_MAX);
    if (actor_id_len)
        memcpy(out + 24, actor_id, actor_id_len);
    memcpy(out + WAL_RECORD_HEADER_LEN, payload, len);
    uint8_t h[WAL_HASH_LEN];
    wal_record_chain(out, total, prev, h);
    memcpy(out + WAL_RECORD_HEADER_LEN + len, h, WAL_HASH_LEN);
    memcpy(hash_out, h, WAL_HASH_LEN);
    wal_put32(out + total - 4, wal_crc32c(0, out, total - 4));
}

int wal_record_parse(const uint8_t *p, size_t avail, wal_record *rec, size_t *total)
{
    *total = 0;
    if (avail < WAL_RECORD_HEADER_LEN)
        return wal_all_zero(p, avail) ? WAL_REC_ZERO : WAL_REC_SHORT;
    uint32_t len = wal_get32(p);
    uint16_t type = wal_get16(p + 4);
    if (len == 0 && type == 0 && wal_all_zero(p, WAL_RECORD_HEADER_LEN))
        return WAL_REC_ZERO;
    if (len == 0 || len > WAL_MAX_PAYLOAD || type == 0 || p[7] > WAL_ACTOR_ID_MAX)
        return WAL_REC_BADHDR;
    *total = WAL_RECORD_OVERHEAD + (size_t)len;
    if (*total > avail)
        return WAL_REC_SHORT;
    if (wal_get32(p + *total - 4) != wal_crc32c(0, p, *total - 4))
        return WAL_REC_BADCRC;
    rec->payload_len = len;
    rec->type = type;
    rec->actor_role = p[6];
    rec->actor_id_len = p[7];
    memcpy(rec->actor_id, p + 24, WAL_ACTOR_ID_MAX);
    rec->actor_id[p[7]] = 0;
    rec->lsn = wal_get64(p + 8);
    rec->at_ms = wal_get64(p + 16);
    rec->payload = p + WAL_RECORD_HEADER_LEN;
    memcpy(rec->hash, p + WAL_RECORD_HEADER_LEN + len, WAL_HASH_LEN);
    return WAL_REC_OK;
}
