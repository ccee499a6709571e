/* daemon/recovery.h: bringing the state up to the WAL at start-up.
 *
 * recovery_run checks the whole log (wal_recover: a fence left by a failed
 * writer, CRCs, LSNs, chain, torn tail), fdatasyncs every segment it may
 * replay and the directory (a failure refuses to start), then replays
 * every record after the state's applied LSN into LMDB, many records per
 * transaction, growing the map when it fills. */
#ifndef HALLQ_RECOVERY_H
#define HALLQ_RECOVERY_H

#include "daemon/hall/hall.h"
#include "wal/wal.h"

/* Returns 0 with *end describing where the log ends, or -1 with a message
 * in err (damage before the tail, a record this version cannot apply, a
 * replay that diverges). */
int recovery_run(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                 wal_scan_result *end, char *err, size_t errlen);

/* Replays every record after the state's applied LSN (the WAL already
 * checked, `end` from that check, or NULL to skip the end checks). The
 * daemon also calls it when an LMDB commit failed after its batch was
 * durable: the state is then behind the log, and catching up from the log
 * brings it back. Returns 0 or -1 with a message in err. */
int recovery_catch_up(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                      const wal_scan_result *end, char *err, size_t errlen);

/* Limits and reporting of a replay (all optional, zero: none). */
typedef struct recovery_bounds {
    uint64_t upto_lsn;  /* replay records up to this LSN */
    int64_t until_ms;   /* ... and stamped no later than this time */
    bool skip_verified; /* skip segments wholly before the state's LSN unread */
    bool quiet;         /* no log line at the end */
    uint64_t *applied;  /* out: the state's LSN at the end */
    void (*progress)(void *ctx, uint64_t lsn); /* every 65536 records */
    void *ctx;
} recovery_bounds;

/* recovery_catch_up within bounds: what `hallq wal replay` runs to rebuild
 * a data dir as it was at a moment (hall_id NULL: the log's own). */
int recovery_replay(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                    const wal_scan_result *end, const recovery_bounds *b, char *err, size_t errlen);

#endif
