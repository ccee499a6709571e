/* wal/record.c: the record and segment header codecs (explicit
 * little-endian fields; see the layout in wal/wal.h). */
#include "wal/wal_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wal_segment_name(char out[64], uint64_t first_lsn)
{
    snprintf(out, 64, "%020llu" WAL_SEG_SUFFIX, (unsigned long long)first_lsn);
}

bool wal_segment_parse_name(const char *name, uint64_t *first_lsn)
{
    if (strlen(name) != 24 || strcmp(name + 20, WAL_SEG_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *first_lsn = v;
    return true;
}

void wal_header_encode(uint8_t out[WAL_SEGMENT_HEADER_LEN], const wal_seg_header *h)
{
    memset(out, 0, WAL_SEGMENT_HEADER_LEN);
    memcpy(out, WAL_MAGIC, 8);
    wal_put32(out + 8, WAL_FORMAT_VERSION);
    wal_put32(out + 12, WAL_SEGMENT_HEADER_LEN);
    wal_put64(out + 16, h->first_lsn);
    wal_put64(out + 24, h->segment_bytes);
    memcpy(out + 32, h->hall_id, strnlen(h->hall_id, WAL_HALL_ID_MAX));
    memcpy(out + 64, h->prev_hash, WAL_HASH_LEN);
    wal_put32(out + 124, wal_crc32c(0, out, 124));
}

int wal_header_decode(const uint8_t in[WAL_SEGMENT_HEADER_LEN], wal_seg_header *h)
{
    memset(h, 0, sizeof *h);
    if (memcmp(in, WAL_MAGIC, 8) != 0 || wal_get32(in + 124) != wal_crc32c(0, in, 124))
        return WAL_E_HEADER;
    h->version = wal_get32(in + 8);
    if (h->version > WAL_FORMAT_VERSION)
        return WAL_E_VERSION;
    if (h->version != WAL_FORMAT_VERSION || wal_get32(in + 12) != WAL_SEGMENT_HEADER_LEN)
        return WAL_E_HEADER;
    h->first_lsn = wal_get64(in + 16);
    h->segment_bytes = wal_get64(in + 24);
    memcpy(h->hall_id, in + 32, WAL_HALL_ID_MAX);
    h->hall_id[WAL_HALL_ID_MAX] = 0;
    memcpy(h->prev_hash, in + 64, WAL_HASH_LEN);
    return 0;
}

void wal_genesis_hash(const char *hall_id, uint8_t out[WAL_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, WAL_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)"hallq-wal-v1", 12);
    crypto_generichash_update(&st, (const uint8_t *)hall_id, strlen(hall_id));
    crypto_generichash_final(&st, out, WAL_HASH_LEN);
}

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
                       uint16_t type, uint8_t role, const char *actor_id, const void *payload,
                       uint32_t len, uint8_t hash_out[WAL_HASH_LEN])
{
    size_t idl = actor_id ? strnlen(actor_id, WAL_ACTOR_ID_MAX) : 0;
    size_t total = WAL_RECORD_OVERHEAD + (size_t)len;
    wal_put32(out, len);
    wal_put16(out + 4, type);
    out[6] = role;
    out[7] = (uint8_t)idl;
    wal_put64(out + 8, lsn);
    wal_put64(out + 16, at_ms);
    memset(out + 24, 0, WAL_ACTOR_ID_MAX);
    if (idl)
        memcpy(out + 24, actor_id, idl);
    memcpy(out + WAL_RECORD_HEADER_LEN, payload, len);
    wal_record_chain(out, total, prev, hash_out);
    memcpy(out + WAL_RECORD_HEADER_LEN + len, hash_out, WAL_HASH_LEN);
    wal_put32(out + total - 4, wal_crc32c(0, out, total - 4));
}

int wal_record_parse(const uint8_t *p, size_t avail, wal_record *rec, size_t *total)
{
    static const uint8_t zero[WAL_RECORD_HEADER_LEN];
    size_t hl = avail < WAL_RECORD_HEADER_LEN ? avail : WAL_RECORD_HEADER_LEN;
    if (memcmp(p, zero, hl) == 0)
        return WAL_REC_ZERO;
    if (avail < WAL_RECORD_HEADER_LEN)
        return WAL_REC_SHORT;
    uint32_t len = wal_get32(p);
    uint16_t type = wal_get16(p + 4);
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
    memcpy(rec->actor_id, p + 24, p[7]);
    rec->actor_id[p[7]] = 0;
    rec->lsn = wal_get64(p + 8);
    rec->at_ms = wal_get64(p + 16);
    rec->payload = p + WAL_RECORD_HEADER_LEN;
    memcpy(rec->hash, p + WAL_RECORD_HEADER_LEN + len, WAL_HASH_LEN);
    return WAL_REC_OK;
}
