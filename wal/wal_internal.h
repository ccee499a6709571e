/* wal/wal_internal.h: what the WAL's files share: byte order helpers, the
 * segment header and record codecs, the segment directory helpers.
 *
 * Invariants: every multi-byte field on disk goes through wal_put* and
 * wal_get* (little-endian, whatever the host); no struct is ever written
 * or read raw. Nothing outside wal/ includes this header, except the WAL's
 * own unit tests, which use the codecs to forge damaged logs. */
#ifndef HALLQ_WAL_INTERNAL_H
#define HALLQ_WAL_INTERNAL_H

#include "wal/wal.h"

#define WAL_MAGIC "HALLQWAL"
#define WAL_SEG_SUFFIX ".wal"
#define WAL_SEG_NAME_LEN 24 /* 20 digits + ".wal" */
#define WAL_GENESIS_TAG "hallq-wal-v1"

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
    return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

/* True when all n bytes are zero (n may be 0). */
static inline bool wal_all_zero(const uint8_t *p, size_t n)
{
    /* memcmp of the buffer against itself shifted by one byte is the
     * library's vectorised loop; the first byte anchors it at zero. */
    return n == 0 || (p[0] == 0 && __builtin_memcmp(p, p + 1, n - 1) == 0);
}

/* ---- segment.c ---- */

/* Calls sodium_init() once per process; BLAKE2b then uses the fastest
 * implementation for this CPU. Safe from any thread. */
void wal_sodium_init(void);

typedef struct wal_seg_header {
    uint32_t version;
    uint64_t first_lsn;
    uint64_t segment_bytes;
    char hall_id[WAL_HALL_ID_MAX + 1];
    uint8_t prev_hash[WAL_HASH_LEN];
} wal_seg_header;

void wal_segment_name(char out[64], uint64_t first_lsn);
/* Parses "%020llu.wal" (a first LSN of at least 1); false for any other
 * name, including "*.wal.tmp" and "*.wal.broken". */
bool wal_segment_parse_name(const char *name, uint64_t *first_lsn);
void wal_header_encode(uint8_t out[WAL_SEGMENT_HEADER_LEN], const wal_seg_header *h);
/* 0, WAL_E_HEADER (magic, CRC, length, first LSN 0, size too small) or
 * WAL_E_VERSION (h->version then holds the version found). */
int wal_header_decode(const uint8_t in[WAL_SEGMENT_HEADER_LEN], wal_seg_header *h);
void wal_genesis_hash(const char *hall_id, uint8_t out[WAL_HASH_LEN]);

typedef struct wal_seg_ent {
    uint64_t first_lsn;
    char name[64];
} wal_seg_ent;

/* Lists the segment files of dir sorted by first LSN. *out is malloc'd
 * (NULL when there are none); the caller frees it. -errno on failure. */
int wal_segment_list(const char *dir, wal_seg_ent **out, size_t *count);

/* fsyncs the directory itself, so that a rename or unlink in it is
 * durable. On failure *call names the call that failed. */
int wal_dir_fsync(const wal_io_ops *io, const char *dir, const char **call);

/* Creates segment h->first_lsn in dir the crash-safe way: "<name>.tmp",
 * preallocated to h->segment_bytes, header written, fsync'd, renamed to
 * "<name>", then the directory fsync'd. Returns 0 and the open fd (read
 * and write) in *fd, or -errno with the failing call's name in *call (the
 * temporary file is then removed when it still exists). */
int wal_segment_create(const wal_io_ops *io, const char *dir, const wal_seg_header *h, int *fd,
                       const char **call);

/* ---- fence.c ---- */

/* Writes the fence (f->id 0: a fresh id is given) as FENCE.tmp, fsync,
 * rename, dir fsync, all through io. On failure *call names the call. */
int wal_fence_write(const wal_io_ops *io, const char *dir, wal_fence *f, const char **call);
/* 0, -ENOENT (no fence), another -errno, or WAL_E_CORRUPT (not a whole
 * fence). */
int wal_fence_read(const char *dir, wal_fence *f);
/* With a fence in dir: moves the fenced segment and every later one aside
 * ("*.fence-<id>.broken"), rebuilds the fenced one from the disk up to the
 * fence's offset (fence.c). 0 with *f zeroed when there is no fence; 0
 * with *f filled and a sentence in `what` when it rebuilt; else the error
 * with a sentence in msg. The fence itself stays: wal_fence_remove, once
 * the rebuilt log was checked. */
int wal_fence_apply(const wal_io_ops *io, const char *dir, wal_fence *f, char *msg, size_t msglen,
                    char *what, size_t whatlen);
int wal_fence_remove(const wal_io_ops *io, const char *dir, const char **call);

/* ---- writer.c ---- */

/* Zeroing ahead (writer.c explains why): once the records come within
 * WAL_ZERO_AHEAD bytes of the zeroed frontier, a flush with sync on also
 * writes WAL_ZERO_CHUNK bytes of zeros past it, in pwrites of at most
 * WAL_ZERO_WRITE bytes, before its fdatasync; not before the segment's
 * records reach WAL_ZERO_FROM. */
#define WAL_ZERO_AHEAD (1u << 20)
#define WAL_ZERO_CHUNK (2u << 20)
#define WAL_ZERO_WRITE (1u << 20)
#define WAL_ZERO_FROM (64u << 10)

/* The torn-batch bound. With sync on, a flush writes and fdatasyncs its
 * records in rounds of at most WAL_FLUSH_MAX_BYTES (a round holds at least
 * one record, so the bound must hold the largest one), so at most that
 * many record bytes are ever written and not yet synced, all of them right
 * after the last synced record of the last segment. The scanner accepts as
 * a torn batch only damage whose non-zero bytes end within WAL_TORN_MAX of
 * the last good record (one page of slack for the page the batch starts
 * in), and only where a page that reads as zeros explains it (WAL_PAGE: the
 * unit in which a disk persists or loses a write). */
#define WAL_FLUSH_MAX_BYTES (4u << 20)
#define WAL_PAGE 4096u
#define WAL_TORN_MAX (WAL_FLUSH_MAX_BYTES + WAL_PAGE)
_Static_assert(WAL_FLUSH_MAX_BYTES >= WAL_MAX_PAYLOAD + WAL_RECORD_OVERHEAD,
               "a flush round must hold the largest record");

/* For tests, with no batch in flight (it reads the flush side): the end
 * of what has been written to the current segment (header, records and
 * zeros ahead of them). */
uint64_t wal_writer_zeroed_to(const wal_writer *w);

/* ---- crc32c.c ---- */

/* The two ways wal_crc32c computes: tables, and the SSE4.2 instruction
 * (only where wal_crc32c_has_hw(); elsewhere it falls back to the tables). */
uint32_t wal_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t wal_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool wal_crc32c_has_hw(void);

/* ---- record.c ---- */

/* Encodes a record into out (WAL_RECORD_OVERHEAD + len bytes), chaining
 * from prev; writes the new chain hash into hash_out (which may alias
 * prev). actor_id must hold at most WAL_ACTOR_ID_MAX bytes. */
void wal_record_encode(uint8_t *out, const uint8_t prev[WAL_HASH_LEN], uint64_t lsn, uint64_t at_ms,
                       uint16_t type, uint8_t role, const char *actor_id, size_t actor_id_len,
                       const void *payload, uint32_t len, uint8_t hash_out[WAL_HASH_LEN]);

enum {
    WAL_REC_OK = 0,
    WAL_REC_ZERO,   /* an all-zero header (or all-zero bytes up to EOF) */
    WAL_REC_SHORT,  /* the record runs past the end of the file */
    WAL_REC_BADHDR, /* a non-zero header with an impossible length, type or id length */
    WAL_REC_BADCRC, /* a plausible header whose CRC does not match */
};

/* Classifies the bytes at p (avail of them to the end of the file) and,
 * for WAL_REC_OK, fills rec (payload points into p) and *total. Checks the
 * CRC but not the LSN or the chain. *total is also set for WAL_REC_BADCRC
 * and for WAL_REC_SHORT with a whole header (the length it claims), else 0. */
int wal_record_parse(const uint8_t *p, size_t avail, wal_record *rec, size_t *total);

/* The chain hash a record of `total` bytes at p must carry after prev. */
void wal_record_chain(const uint8_t *p, size_t total, const uint8_t prev[WAL_HASH_LEN],
                      uint8_t out[WAL_HASH_LEN]);

#endif
