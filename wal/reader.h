/* wal/reader.h: reading durable records again, from a known place.
 *
 * wal_scan (wal.h) verifies: it reads every segment it visits from its
 * header and checks the hash chain, which costs a BLAKE2b per record and
 * a read of the whole segment before the first record wanted. Once the
 * log has been verified (at start-up) and only durable records are read
 * (the writer never rewrites one), that is not needed to read a record
 * back: wal_read starts at a place the caller remembers (an LSN -> offset
 * index, or where its previous read stopped), checks each record's CRC
 * and that the LSNs follow on, and skips the chain.
 *
 * Thread model: wal_read does blocking I/O (open, pread) and touches no
 * shared state: call it off the event loop (e.g. in uv_queue_work), any
 * number at a time. */
#ifndef HALLQ_WAL_READER_H
#define HALLQ_WAL_READER_H

#include "wal/wal.h"

typedef struct wal_read_options {
    const char *dir;
    /* The first record visited: from_lsn, or the oldest one the log still
     * holds when from_lsn is older (archived segments). At least 1. */
    uint64_t from_lsn;
    /* The last LSN read. Every record up to it must be durable: the read
     * never looks past it, so a batch being written is never touched. */
    uint64_t upto_lsn;
    /* A place known to hold record hint.lsn (<= from_lsn) at byte
     * hint.offset of segment hint.segment, or the end of that segment's
     * records, as an earlier read returned it (res->next). The read starts
     * there when that segment is the one holding from_lsn, else at the
     * first record of the segment holding from_lsn. hint.lsn 0: no hint. */
    wal_pos hint;
    /* Stop after the first record visited once the bytes read pass this
     * (0: no bound), so one read holds a thread for a bounded time. */
    uint64_t max_bytes;
    /* Called for each record with from_lsn <= lsn <= upto_lsn, in order
     * (rec->payload valid during the call only; rec->hash is the stored
     * one, not checked). A non-zero return stops the read after this
     * record; wal_read returns 0 then. */
    wal_visit_fn visit;
    void *ctx;
} wal_read_options;

typedef struct wal_read_result {
    wal_pos start;  /* where the reading began (for the caller's log) */
    uint64_t first; /* the first LSN visited (0: none) */
    /* The first record not visited: next.lsn, at next.offset of
     * next.segment (possibly the end of that segment's records): a hint
     * for the read that goes on. */
    wal_pos next;
    uint64_t records; /* records visited */
    uint64_t bytes;   /* bytes read from the files */
    char message[256];
} wal_read_result;

/* Returns 0 (every record up to upto_lsn visited, or the visitor or
 * max_bytes stopped the read: next says where to go on), -EINVAL for bad
 * options, -ENOENT when the log holds no segment for from_lsn and no
 * later one, a negative errno for an I/O error, or WAL_E_HEADER,
 * WAL_E_CORRUPT or WAL_E_GAP (with res->message) when the bytes are not
 * what the verified log held: a bad CRC, an LSN out of order, a record
 * missing before upto_lsn. */
int wal_read(const wal_read_options *opt, wal_read_result *res);

#endif
