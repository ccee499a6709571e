/* daemon/safe_lsn.h: the LSN up to which the state on disk is durable,
 * published by a running hallqd for `hallq wal archive`.
 *
 * LMDB is opened with MDB_NOMETASYNC (daemon/hall/store.h): a commit syncs
 * its data pages, then writes its meta page without a sync. That meta page
 * reaches the disk with the next commit's data sync. So once a checkpoint
 * has committed, the commit before it is durable, and with it that
 * commit's applied LSN: this is what the daemon publishes, after each
 * checkpoint, in DATA/safe-lsn (written to a temporary file and renamed
 * over the old one). A power loss can undo the last checkpoint, never the
 * one before it, so recovery never needs a record at or below the
 * published LSN.
 *
 * The file is only trusted by the process and boot that wrote it: it
 * carries the writer's pid and the kernel's boot id, and a reader takes it
 * only while that pid holds the data dir's lock (DATA/LOCK) and the boot
 * is the same. Within one boot the file reads back as written, so it needs
 * no fsync; after a crash, a restart or a reboot a stale, torn or missing
 * file is refused, and `hallq wal archive` then archives nothing beside
 * the new daemon until its next checkpoints publish again. */
#ifndef HALLQ_SAFE_LSN_H
#define HALLQ_SAFE_LSN_H

#include "daemon/hall/store.h"

#include <stdint.h>
#include <sys/types.h>

#define SAFE_LSN_FILE "safe-lsn"

/* What a checkpoint is about to commit, taken just before its commit. */
typedef struct safe_lsn_mark {
    uint64_t committed;  /* the applied LSN of the last commit (on the disk's page cache) */
    uint64_t committing; /* the applied LSN in the txn about to commit */
    int rc;              /* nonzero: could not be read, nothing is published */
} safe_lsn_mark;

/* Reads both LSNs (the committed one in a read txn of its own, so call it
 * with no read txn of this thread open: the env is MDB_NOTLS). */
void safe_lsn_before_commit(safe_lsn_mark *m, const hall_store *st, MDB_txn *txn);

/* After the commit returned 0: publishes m->committed, which that commit's
 * data sync made durable. Nothing when the commit wrote nothing (no new
 * applied LSN: LMDB then skips the sync). A failure is logged once per run
 * of failures; the old file (lower, or refused) stays. */
void safe_lsn_after_commit(const safe_lsn_mark *m, const char *data_dir);

/* Writes DATA/safe-lsn for this process (0 or a negative errno). */
int safe_lsn_publish(const char *data_dir, uint64_t lsn);

/* Reads DATA/safe-lsn as published by the process `pid` in this boot.
 * Returns 0 with *lsn, -ENOENT (none), -ESTALE (another process's or
 * boot's: a leftover), -EINVAL (malformed), or another negative errno. */
int safe_lsn_read(const char *data_dir, pid_t pid, uint64_t *lsn);

#endif
