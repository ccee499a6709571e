/* wal/wal_internal.h: what the WAL's files share: byte order helpers, the
 * segment header and record codecs. Nothing outside wal/ includes it. */
#ifndef HALLQ_WAL_INTERNAL_H
#define HALLQ_WAL_INTERNAL_H

#include "wal/wal.h"

#define WAL_MAGIC "HALLQWAL"
#define WAL_SEG_SUFFIX ".wal"

static inline void wal_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void wal_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wal_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t wal_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t wal_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t wal_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

typedef struct wal_seg_header {
    uint32_t version;
    uint64_t first_lsn;
    uint64_t segment_bytes;
    char hall_id[WAL_HALL_ID_MAX + 1];
    uint8_t prev_hash[WAL_HASH_LEN];
} wal_seg_header;

void wal_segment_name(char out[64], uint64_t first_lsn);
/* Parses "%020llu.wal"; false for any other name. */
bool wal_segment_parse_name(const char *name, uint64_t *first_lsn);
void wal_header_encode(uint8_t out[WAL_SEGMENT_HEADER_LEN], const wal_seg_header *h);
/* 0, WAL_E_HEADER (magic, CRC, length) or WAL_E_VERSION. */
int wal_header_decode(const uint8_t in[WAL_SEGMENT_HEADER_LEN], wal_seg_header *h);
void wal_genesis_hash(const char *hall_id, uint8_t out[WAL_HASH_LEN]);

/* Encodes a record into out (WAL_RECORD_OVERHEAD + len bytes), chaining
 * from prev; writes the new chain hash into hash_out. */
void wal_record_encode(uint8_t *out, const uint8_t prev[WAL_HASH_LEN], uint64_t lsn, uint64_t at_ms,
                       uint16_t type, uint8_t role, const char *actor_id, const void *payload,
                       uint32_t len, uint8_t hash_out[WAL_HASH_LEN]);

enum {
    WAL_REC_OK = 0,
    WAL_REC_ZERO,   /* an all-zero header: the end of the segment's records */
    WAL_REC_SHORT,  /* the record runs past the end of the file */
    WAL_REC_BADHDR, /* impossible length or type */
    WAL_REC_BADCRC,
};

/* Parses the record at p (avail bytes to the end of the file) without
 * checking the chain. Fills rec (payload points into p) and *total. */
int wal_record_parse(const uint8_t *p, size_t avail, wal_record *rec, size_t *total);
/* The chain hash a record must carry after prev. */
void wal_record_chain(const uint8_t *p, size_t total, const uint8_t prev[WAL_HASH_LEN],
                      uint8_t out[WAL_HASH_LEN]);

#endif
