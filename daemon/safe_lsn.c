/* daemon/safe_lsn.c: publishes and reads DATA/safe-lsn (see safe_lsn.h
 * for why the LSN it holds is durable in the state).
 *
 * Format (text, one field a line, all required, in this order):
 *   hallq-safe-lsn 1
 *   lsn <decimal>
 *   pid <decimal>
 *   boot <the kernel's boot id, or "-">
 * A new version changes the first line; a reader refuses what it does not
 * know, and refusing only makes `hallq wal archive` keep more.
 *
 * Never: publish an LSN whose commit was not followed by a synced commit. */
#include "daemon/safe_lsn.h"
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAFE_LSN_MAGIC "hallq-safe-lsn 1"

/* The kernel's boot id ("-" where there is none). */
static void boot_id(char *out, size_t cap)
{
    snprintf(out, cap, "-");
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char b[64];
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return;
    b[n] = 0;
    b[strcspn(b, "\n")] = 0;
    if (b[0] && strspn(b, "0123456789abcdef-") == strlen(b))
        snprintf(out, cap, "%s", b);
}

void safe_lsn_before_commit(safe_lsn_mark *m, const hall_store *st, MDB_txn *txn)
{
    MDB_txn *r;
    m->committed = m->committing = 0;
    m->rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r);
    if (m->rc == 0) {
        m->rc = hall_store_applied_lsn(st, r, &m->committed);
        mdb_txn_abort(r);
    }
    if (m->rc == 0)
        m->rc = hall_store_applied_lsn(st, txn, &m->committing);
}

void safe_lsn_after_commit(const safe_lsn_mark *m, const char *data_dir)
{
    static bool failing;
    if (m->rc != 0 || m->committing <= m->committed)
        return;
    int rc = safe_lsn_publish(data_dir, m->committed);
    if (rc != 0 && !failing)
        hq_log(HQ_LOG_WARN,
               "cannot publish the safe LSN in %s/" SAFE_LSN_FILE
               ": %s (hallq wal archive keeps more until it can)",
               data_dir, strerror(-rc));
    failing = rc != 0;
}

int safe_lsn_publish(const char *data_dir, uint64_t lsn)
{
    char path[PATH_MAX], tmp[PATH_MAX], boot[64], text[160];
    if (snprintf(path, sizeof path, "%s/" SAFE_LSN_FILE, data_dir) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    boot_id(boot, sizeof boot);
    int n = snprintf(text, sizeof text, SAFE_LSN_MAGIC "\nlsn %" PRIu64 "\npid %ld\nboot %s\n", lsn,
                     (long)getpid(), boot);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    /* No fsync: a reader trusts the file only in this boot (see the header). */
    ssize_t w = write(fd, text, (size_t)n);
    int rc = w == n ? 0 : w < 0 ? -errno : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int safe_lsn_read(const char *data_dir, pid_t pid, uint64_t *lsn)
{
    char path[PATH_MAX], text[256], boot[64], fboot[64];
    if (snprintf(path, sizeof path, "%s/" SAFE_LSN_FILE, data_dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, text, sizeof text - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    text[n] = 0;
    unsigned long long v;
    long fpid;
    int used = 0;
    if (n == 0 || text[n - 1] != '\n' || /* whole: the last line ends */
        strncmp(text, SAFE_LSN_MAGIC "\n", sizeof SAFE_LSN_MAGIC) != 0 ||
        sscanf(text + sizeof SAFE_LSN_MAGIC, "lsn %20llu\npid %19ld\nboot %63[0-9a-f-]\n%n", &v,
               &fpid, fboot, &used) != 3 ||
        used == 0 || text[sizeof SAFE_LSN_MAGIC + (size_t)used] != 0)
        return -EINVAL;
    boot_id(boot, sizeof boot);
    if (fpid != (long)pid || strcmp(fboot, boot) != 0)
        return -ESTALE;
    *lsn = v;
    return 0;
}
