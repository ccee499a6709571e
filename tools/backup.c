/* tools/backup.c: `hallq backup DIR [DATA]`: a consistent copy of a hall's
 * data dir, beside a running hallqd or not, that hallqd starts from as it
 * is (DIR is a data dir: state.mdb, wal/, pii.key).
 *
 * Order (docs/DESIGN.md, "Backup"): the state first, then the WAL. The
 * state is copied in one LMDB read transaction (mdb_env_copyfd2: a
 * snapshot, whatever hallqd commits meanwhile), and hallqd commits a
 * batch to the state only after its records are written to the WAL. So
 * the WAL copied afterwards holds every record the snapshot holds: a
 * start from the copy replays the WAL's newer records onto it. The other
 * way round the state could hold records the copied WAL lacks, and the
 * hall's next records would reuse their LSNs.
 *
 * Segments before the last are closed: hallqd never writes them again.
 * The last may be written while it is copied, so the copy can end in a
 * half-written record; the copy is scanned, and damage past the records
 * the state needs (there can be none before them: those were written
 * before the snapshot was taken) is zeroed, which hallqd reads as the torn
 * tail a crash leaves. pii.key is copied with mode 0600. Every file and
 * directory is fsync'd before the command says done.
 *
 * Never: write into DATA, or leave a DIR that looks whole when it is not
 * (on any error the command fails, naming what). */
#include "tools/audit.h"
#include "daemon/hall/store.h"
#include "wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { B_OK = 0, B_FAIL = 1, B_USAGE = 2 };

static void usage(void)
{
    fputs("usage: hallq backup DIR [DATA]\n"
          "  a consistent copy of the data dir DATA (default ./hallq-data) into DIR\n"
          "  (new or empty), safe beside a running hallqd: the state (an LMDB\n"
          "  snapshot), then the WAL segments, then pii.key (mode 0600). Restore:\n"
          "  with hallqd stopped, use DIR (or a copy) as the data dir.\n",
          stderr);
}

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The state: one read transaction's snapshot. Its applied LSN in *lsn. */
static int copy_state(const char *data, const char *dir, uint64_t *lsn, char *err, size_t errlen)
{
    char to[PATH_MAX + 32];
    hall_store st;
    MDB_txn *txn = NULL;
    if (hall_store_open(&st, data, true, 0, err, errlen) != 0)
        return -1;
    snprintf(to, sizeof to, "%s/" HALL_STORE_FILE, dir);
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    int rc = fd < 0 ? errno : 0;
    const char *what = "creating";
    if (rc == 0) {
        what = "reading the applied LSN of";
        if ((rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn)) == 0)
            rc = hall_store_applied_lsn(&st, txn, lsn);
        if (txn)
            mdb_txn_abort(txn);
    }
    /* The copy is its own read transaction, begun after the one that read
     * the LSN: it holds at least that much. The LSN is read again from the
     * copy below. */
    if (rc == 0) {
        what = "copying the state into";
        rc = mdb_env_copyfd2(st.env, fd, 0);
    }
    if (rc == 0) {
        what = "syncing";
        rc = fsync(fd) == 0 ? 0 : errno;
    }
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = errno;
    hall_store_close(&st);
    if (rc != 0) {
        snprintf(err, errlen, "%s %s: %s", what, to, mdb_strerror(rc));
        return -1;
    }
    /* The LSN the copy holds. */
    if (hall_store_open(&st, dir, true, 0, err, errlen) != 0)
        return -1;
    if ((rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = hall_store_applied_lsn(&st, txn, lsn);
        mdb_txn_abort(txn);
    }
    hall_store_close(&st);
    char lock[PATH_MAX + 32];
    snprintf(lock, sizeof lock, "%s/" HALL_STORE_FILE "-lock", dir);
    unlink(lock); /* made by the open above; hallqd makes its own */
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", to, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Zeroes `path` from `off` to its end (a half-written record at the end of
 * the last segment, written after the state's snapshot). */
static int zero_tail(const char *path, uint64_t off, char *err, size_t errlen)
{
    static const char zeros[65536];
    struct stat sb;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0)
        goto fail;
    for (uint64_t at = off; at < (uint64_t)sb.st_size;) {
        size_t n = (uint64_t)sb.st_size - at < sizeof zeros ? (size_t)((uint64_t)sb.st_size - at)
                                                            : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, (off_t)at);
        if (w <= 0)
            goto fail;
        at += (uint64_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    close(fd);
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The WAL's segments, in order; then the copy must verify and reach `need`. */
static int copy_wal(const char *data, const char *dir, uint64_t need, wal_scan_result *res,
                    char *err, size_t errlen)
{
    char from[PATH_MAX], to[PATH_MAX], src[PATH_MAX];
    audit_wal_dir(data, src, sizeof src);
    snprintf(to, sizeof to, "%s/wal", dir);
    if (mkdir(to, 0750) != 0) {
        snprintf(err, errlen, "%s: %s", to, strerror(errno));
        return -1;
    }
    DIR *d = opendir(src);
    if (!d) {
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int ret = -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (!audit_segment_name(e->d_name))
            continue;
        if (n == cap) {
            char **nv = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            if (!nv)
                goto out;
            names = nv;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto out;
        n++;
    }
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        snprintf(from, sizeof from, "%s/%s", src, names[i]);
        snprintf(to, sizeof to, "%s/wal/%s", dir, names[i]);
        if (audit_copy_file(from, to, 0640, true, err, errlen) != 0)
            goto out;
    }
    snprintf(to, sizeof to, "%s/wal", dir);
    for (int attempt = 0;; attempt++) {
        wal_scan_options so = {.dir = to, .must_exist = true};
        int rc = wal_scan(&so, res);
        if (rc == 0)
            break;
        char last[PATH_MAX];
        snprintf(last, sizeof last, "%s/%s", to, n ? names[n - 1] : "");
        if (rc < 0 && attempt == 0 && n && !strcmp(res->bad_at.segment, names[n - 1]) &&
            res->bad_at.lsn > need) {
            if (zero_tail(last, res->bad_at.offset, err, errlen) != 0)
                goto out;
            continue;
        }
        snprintf(err, errlen, "the copied WAL does not verify: %s: %s", res->bad_at.segment,
                 res->message);
        goto out;
    }
    if (res->last_lsn < need) {
        snprintf(err, errlen,
                 "the copied WAL ends at LSN %" PRIu64 " but the state holds up to %" PRIu64,
                 res->last_lsn, need);
        goto out;
    }
    if (fsync_path(to, true) != 0) {
        snprintf(err, errlen, "fsync %s: %s", to, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (ret && !err[0])
        snprintf(err, errlen, "out of memory");
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

int audit_backup(int ac, char **av)
{
    const char *dir = NULL, *data = NULL;
    for (int i = 0; i < ac; i++) {
        if (av[i][0] == '-')
            return usage(), B_USAGE;
        if (!dir)
            dir = av[i];
        else if (!data)
            data = av[i];
        else
            return usage(), B_USAGE;
    }
    if (!dir)
        return usage(), B_USAGE;
    if (!data)
        data = "./hallq-data";
    char err[1024] = "", p[PATH_MAX], q[PATH_MAX];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "hallq backup: %s: %s\n", dir, strerror(errno));
        return B_FAIL;
    }
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    if (!d || entries) {
        fprintf(stderr, "hallq backup: %s: %s\n", dir,
                d ? "not empty (a backup goes into a new or empty directory)" : strerror(errno));
        return B_FAIL;
    }
    uint64_t lsn = 0;
    wal_scan_result res;
    if (copy_state(data, dir, &lsn, err, sizeof err) != 0 ||
        copy_wal(data, dir, lsn, &res, err, sizeof err) != 0)
        goto fail;
    snprintf(p, sizeof p, "%s/pii.key", data);
    snprintf(q, sizeof q, "%s/pii.key", dir);
    bool key = access(p, F_OK) == 0;
    if (key && audit_copy_file(p, q, 0600, true, err, sizeof err) != 0)
        goto fail;
    if (fsync_path(dir, true) != 0) {
        snprintf(err, sizeof err, "fsync %s: %s", dir, strerror(errno));
        goto fail;
    }
    printf("state     LSN %" PRIu64 "\n"
           "wal       %d segments, LSN %" PRIu64 "..%" PRIu64 "\n"
           "pii.key   %s\n"
           "restore   hallqd --data %s (with the hall's config; copy DIR first to keep it)\n",
           lsn, res.segments, res.first_lsn, res.last_lsn,
           key ? "copied (mode 0600): keep it apart from WAL archives" : "none (no intake yet)",
           dir);
    return B_OK;
fail:
    fprintf(stderr, "hallq backup: %s; %s is not a usable backup\n", err, dir);
    return B_FAIL;
}
