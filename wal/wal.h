/* wal/wal.h: the write-ahead log of a hall: segments, records, the writer
 * (group commit) and the reader (verification and recovery).
 *
 * The log is a directory of segment files named by their first LSN
 * ("%020llu.wal"). Each segment is preallocated to a fixed size and starts
 * with a header; records follow back to back; the unused rest is zeros.
 *
 * Segment header (WAL_SEGMENT_HEADER_LEN = 128 bytes, little-endian):
 *   0   u8[8]  magic "HALLQWAL"
 *   8   u32    format version (WAL_FORMAT_VERSION)
 *   12  u32    header length (128)
 *   16  u64    first LSN of this segment
 *   24  u64    segment size in bytes (the preallocated size)
 *   32  u8[32] hall id, zero padded (WAL_HALL_ID_MAX bytes at most)
 *   64  u8[32] chain hash carried over: the hash of the record before the
 *              first LSN (the genesis hash for the very first segment)
 *   96  u8[28] reserved, zero
 *   124 u32    CRC32C of bytes [0, 124)
 *
 * Record (little-endian, no padding, total = WAL_RECORD_OVERHEAD + payload):
 *   0   u32    payload length n (1 .. WAL_MAX_PAYLOAD)
 *   4   u16    record type (never 0)
 *   6   u8     actor role
 *   7   u8     actor id length (0 .. WAL_ACTOR_ID_MAX)
 *   8   u64    LSN
 *   16  u64    server time, ms since the Unix epoch
 *   24  u8[16] actor id, zero padded
 *   40  u8[n]  payload (MessagePack, opaque to this module)
 *   40+n u8[32] chain hash: BLAKE2b-256(previous record's chain hash ||
 *              bytes [0, 40+n) of this record)
 *   72+n u32   CRC32C of bytes [0, 72+n)
 *
 * The genesis hash is BLAKE2b-256("hallq-wal-v1" || hall id).
 *
 * How to change the format: bump WAL_FORMAT_VERSION, keep a reader for
 * every older version, and never reinterpret an existing field.
 *
 * Errors: functions return 0 on success, a negative errno for an OS
 * error, or one of the WAL_E* codes below (their own band). */
#ifndef HALLQ_WAL_H
#define HALLQ_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAL_FORMAT_VERSION 1
#define WAL_SEGMENT_HEADER_LEN 128
#define WAL_RECORD_HEADER_LEN 40
#define WAL_RECORD_OVERHEAD 76 /* header + hash + crc */
#define WAL_HASH_LEN 32
#define WAL_HALL_ID_MAX 32
#define WAL_ACTOR_ID_MAX 16
#define WAL_MAX_PAYLOAD (1u << 20)
#define WAL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define WAL_MIN_SEGMENT_BYTES 4096ull

enum {
    WAL_E_CORRUPT = -31001, /* bad CRC, bad length, garbage before the tail */
    WAL_E_CHAIN = -31002,   /* hash chain broken */
    WAL_E_GAP = -31003,     /* LSN not previous + 1 (gap or reordering) */
    WAL_E_TIME = -31004,    /* server time went backwards */
    WAL_E_HALL = -31005,    /* segment header names another hall */
    WAL_E_HEADER = -31006,  /* bad segment header (magic, version, CRC, first LSN) */
    WAL_E_FAILED = -31007,  /* the writer failed earlier and refuses appends */
    WAL_E_TOOBIG = -31008,  /* payload empty or larger than allowed */
    WAL_E_BUSY = -31009,    /* a batch is already in flight */
    WAL_E_VERSION = -31010, /* segment from a newer format version */
};

/* Returns a static string for any code this module returns (WAL_E* or
 * negative errno). */
const char *wal_strerror(int err);

/* CRC32C (Castagnoli), as used by the record and header checksums. */
uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len);

/* The file operations the log uses. Tests swap them to inject EIO, ENOSPC
 * and short writes. Each returns what the POSIX call returns (-1 and errno
 * on failure). */
typedef struct wal_io_ops {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*rename)(const char *from, const char *to);
    int (*fallocate)(int fd, off_t off, off_t len); /* posix_fallocate semantics, but -1/errno */
    int (*ftruncate)(int fd, off_t len);
    int (*close)(int fd);
} wal_io_ops;

extern const wal_io_ops wal_io_posix;

/* One record as read back (or as handed to the writer). For records read
 * back, payload points into memory owned by the reader and is valid only
 * during the visit callback. */
typedef struct wal_record {
    uint64_t lsn;
    uint64_t at_ms;
    uint16_t type;
    uint8_t actor_role;
    uint8_t actor_id_len;
    char actor_id[WAL_ACTOR_ID_MAX + 1]; /* NUL-terminated copy */
    const uint8_t *payload;
    uint32_t payload_len;
    uint8_t hash[WAL_HASH_LEN];
} wal_record;

/* Where a record lives. */
typedef struct wal_pos {
    char segment[64]; /* file name inside the log directory */
    uint64_t offset;  /* byte offset of the record inside the segment */
    uint64_t lsn;     /* LSN of the record (or the expected one) */
} wal_pos;

/* The outcome of a scan: what the log holds, where it ends, and, on
 * damage, what and where. */
typedef struct wal_scan_result {
    uint64_t records;             /* good records visited or counted */
    uint64_t first_lsn, last_lsn; /* 0 when the log is empty */
    uint64_t first_at_ms, last_at_ms;
    uint8_t head_hash[WAL_HASH_LEN]; /* chain hash of the last good record */
    int segments;
    char hall_id[WAL_HALL_ID_MAX + 1];

    /* Where the writer continues: the last segment and the byte offset
     * just after its last good record. last_segment is empty when the log
     * has no segment at all. */
    char last_segment[64];
    uint64_t end_offset;
    uint64_t segment_bytes; /* size of the last segment */

    /* Torn tail: a short, zero-filled or bad-CRC last record of the last
     * segment, with nothing but zeros after it. Not torn (damage): a
     * length reaching past the segment's size (the writer never writes
     * one), or damaged bytes that hold the next record intact. */
    bool torn;
    wal_pos torn_at;
    char torn_what[96];
    uint64_t torn_end;    /* end of the damaged bytes: [torn_at.offset, torn_end) */
    char broken_copy[96]; /* set by wal_recover when it kept a copy */

    /* Set by wal_recover when it found a fence (the writer failed
     * earlier): fenced_what says what it rebuilt and put aside. */
    bool fenced;
    char fenced_what[320];

    /* Damage (the scan's return value is then negative): the first bad
     * place and a sentence saying what is wrong. */
    wal_pos bad_at;
    char message[256];
} wal_scan_result;

/* Called for every good record with lsn > from_lsn, in LSN order. A
 * non-zero return stops the scan and is returned by it. */
typedef int (*wal_visit_fn)(void *ctx, const wal_record *rec, const wal_pos *pos);

/* Reads the whole log in `dir` and checks each segment header (magic,
 * version, CRC, hall id when `hall_id` is not NULL, first LSN = previous
 * last + 1, carried hash = previous head), each record's CRC, LSN
 * continuity, time order and the hash chain. Visits the good records with
 * lsn > from_lsn (segments wholly before from_lsn are still verified unless
 * `skip_verified` is true, in which case they are skipped by name).
 * Ignores files not named like a segment (e.g. "*.broken", "*.tmp").
 * A torn tail is reported in res->torn and is not an error. Returns 0, the
 * visitor's non-zero value, or a WAL_E* code with res->bad_at and
 * res->message filled in. An empty or missing directory is an empty log
 * when `must_exist` is false, -ENOENT otherwise. */
typedef struct wal_scan_options {
    const char *dir;
    const char *hall_id; /* NULL: accept any, taken from the first segment */
    uint64_t from_lsn;
    bool skip_verified;
    bool must_exist;
    wal_visit_fn visit;
    void *ctx;
} wal_scan_options;

int wal_scan(const wal_scan_options *opt, wal_scan_result *res);

/* The fence (wal/fence.c): written by a failing writer, so that start-up
 * trusts nothing past the last durable record. */
#define WAL_FENCE_NAME "FENCE"
typedef struct wal_fence {
    uint64_t id;      /* tells this fence's ".broken" copies from older ones */
    uint64_t lsn;     /* the last durable LSN (0: none) */
    char segment[64]; /* the segment holding the durable end */
    uint64_t offset;  /* the end of LSN `lsn`'s record in it */
} wal_fence;

/* Makes every segment that may hold records after `from_lsn` durable
 * (fdatasync, in order) and fsyncs the directory: before a replay, so
 * that nothing replayed (and then served) lives only in the page cache,
 * e.g. a batch written by a process killed before its fdatasync. With
 * from_lsn 0 every segment. Returns 0, or the error with a sentence in
 * msg (the caller must not start). */
int wal_sync_log(const char *dir, const wal_io_ops *io, uint64_t from_lsn, char *msg,
                 size_t msglen);

/* First, when DIR/FENCE exists (the writer failed earlier), apply it: the
 * fence's segment is rebuilt from bytes read past the page cache up to
 * the fence, it and later segments are kept as "*.fence-<id>.broken", the
 * rebuilt log must end exactly at the fence, and only then is the fence
 * removed (res->fenced, res->fenced_what). Then wal_scan, and repair a
 * torn tail: copy the last segment to
 * "<segment>.broken" (res->broken_copy; an older copy is replaced), zero
 * the torn bytes in place and fdatasync, so the log ends cleanly at
 * res->end_offset. Deletes leftover "*.tmp" files. Damage anywhere
 * before the tail returns its WAL_E* code (nothing is repaired then). */
int wal_recover(const wal_scan_options *opt, const wal_io_ops *io, wal_scan_result *res);

/* ---- The writer ----
 *
 * Thread model: wal_writer_append, _rollback, _seal and _complete run on
 * the owner thread (the event loop); wal_writer_flush runs on one worker
 * thread at a time and touches only the sealed batch and the files. So the
 * loop appends the next batch while the previous one is being written.
 *
 * A record is durable only once wal_writer_complete() returned 0 for its
 * batch. After any write, sync, open or rename error the writer is failed
 * for good: the failing batch and every later append get WAL_E_FAILED
 * (the original error stays in wal_writer_failed()). It never retries an
 * fsync. */
typedef struct wal_writer wal_writer;

typedef struct wal_writer_options {
    const char *dir;
    const char *hall_id;
    uint64_t segment_bytes; /* 0: WAL_DEFAULT_SEGMENT_BYTES */
    bool sync;              /* false: --fsync none (write, never fdatasync) */
    const wal_io_ops *io;   /* NULL: wal_io_posix */
} wal_writer_options;

/* Opens the log for appending where `end` (from wal_recover) says it ends;
 * creates the directory's first segment when the log is empty (end NULL
 * or without a segment; -EEXIST if the directory holds segments then).
 * -EINVAL for a hall id empty or longer than WAL_HALL_ID_MAX, or a
 * segment_bytes below WAL_MIN_SEGMENT_BYTES; WAL_E_HALL when `end` names
 * another hall; WAL_E_CORRUPT when `end` reports a torn tail that
 * wal_recover did not cut. */
int wal_writer_open(wal_writer **out, const wal_writer_options *opt, const wal_scan_result *end);
void wal_writer_close(wal_writer *w);

/* Appends one record to the pending batch, in memory. Assigns the next
 * LSN (returned in *lsn) and chains the hash. The payload is copied.
 * Refuses what the reader would refuse, writing nothing: WAL_E_TOOBIG
 * (payload empty, over WAL_MAX_PAYLOAD, or its record larger than an
 * empty segment), WAL_E_TIME (at_ms before the previous record's),
 * -EINVAL (type 0, or actor_id longer than WAL_ACTOR_ID_MAX bytes: it is
 * never cut short). WAL_E_FAILED once the writer failed. */
int wal_writer_append(wal_writer *w, uint16_t type, uint64_t at_ms, uint8_t actor_role,
                      const char *actor_id, const void *payload, uint32_t payload_len,
                      uint64_t *lsn);

/* Drops every record appended since the last seal (used to redo a batch
 * after LMDB's map grew). LSN, chain and time floor return to where they
 * were. */
void wal_writer_rollback(wal_writer *w);

/* A point in the pending batch, to drop what was appended after it: the
 * daemon applies several groups of requests into one pending batch (group
 * commit) and undoes only the last group when it must be run again. */
typedef struct wal_mark {
    size_t len, n;
    uint64_t next_lsn, last_at;
    uint8_t chain[WAL_HASH_LEN];
} wal_mark;
void wal_writer_mark(const wal_writer *w, wal_mark *m);
/* Drops every record appended since m was taken (no seal in between). */
void wal_writer_rollback_to(wal_writer *w, const wal_mark *m);

/* Number of records pending (appended, not sealed). */
size_t wal_writer_pending(const wal_writer *w);

/* Seals the pending batch for flushing. WAL_E_BUSY if one is in flight. */
int wal_writer_seal(wal_writer *w);

/* Worker thread: writes the sealed batch with as few writes as the segment
 * boundaries and the unsynced bound allow (one, unless it rolls over or,
 * with sync on, holds more than WAL_FLUSH_MAX_BYTES: then it is written
 * and fdatasync'd in rounds of at most that), then one fdatasync per
 * segment touched. With sync on, now and then one or two more writes put
 * zeros ahead of the records before that fdatasync (see writer.c: it makes
 * the later syncs cheaper on ext4); they fail the writer like any write.
 * Rolling over: the new segment is created as "<name>.tmp", preallocated,
 * its header written, fsync'd, renamed, and the directory fsync'd. A
 * segment is fdatasync'd before it is left even with sync off, so only
 * the last segment can end torn. Returns 0 or the error (after one, it
 * returns that error without touching any file). */
int wal_writer_flush(wal_writer *w);

/* Owner thread, after flush: records the outcome. Returns 0 when the batch
 * is durable, else WAL_E_FAILED (and the writer is failed). */
int wal_writer_complete(wal_writer *w, int flush_rc);

/* On its first failure (any failed write, sync or roll-over step in
 * wal_writer_flush, or a failed batch in wal_writer_complete) the writer
 * persists the fence (DIR/FENCE: the last durable LSN, its segment and
 * end offset; see wal_recover). If even that fails, failed_where says so. */

uint64_t wal_writer_last_lsn(const wal_writer *w);    /* last LSN appended */
uint64_t wal_writer_durable_lsn(const wal_writer *w); /* last LSN durable */
int wal_writer_failed(const wal_writer *w);           /* 0 or the first error */
/* "" or where the first error struck, e.g.
 * "fdatasync 00000000000000000001.wal: Input/output error". */
const char *wal_writer_failed_where(const wal_writer *w);

/* Free bytes on the filesystem holding `dir`. */
int wal_disk_free(const char *dir, uint64_t *bytes);

#endif
