/* tools/audit_archive.c: `hallq wal archive [WAL] --to DIR` moves the
 * closed segments of a hall's log (every one but the last, which hallqd
 * writes) into an archive directory, once the archive and the log verify
 * as one chain. hallqd itself never deletes a segment; this is how an
 * operator keeps the data dir small. `hallq wal verify/replay --archive
 * DIR` read both places as one log again.
 *
 * Invariants: a segment is always whole in at least one of the two
 * places. It is copied to DIR/NAME.tmp, fsync'd, compared with the
 * original, renamed to DIR/NAME and the archive directory fsync'd; only
 * then is it removed from the log, and the log directory fsync'd. A run
 * stopped anywhere leaves at most a *.tmp in the archive (the next run
 * removes it; no reader takes it for a segment) or a segment in both
 * places, byte-equal (the next run removes the log's copy). A second run
 * with nothing newly closed does nothing.
 *
 * What may move: a closed segment whose records all lie at or below the
 * safe LSN, up to which the state on disk (DATA/state.mdb) is durable, so
 * that recovery never needs them. With a hallqd running (it holds
 * DATA/LOCK) that is the LSN it publishes after its checkpoints
 * (daemon/safe_lsn.h); without, this run takes the lock itself (no hallqd
 * starts while it runs), fsyncs the state file and reads its applied LSN.
 * No state, or a daemon that has published nothing: nothing moves.
 *
 * Never: touch the last segment of the log (not even read past its
 * header: hallqd may be appending to it), write into a segment, remove
 * one that is not byte-equal in the archive, or one holding a record
 * after the safe LSN. */
#include "tools/audit.h"
#include "daemon/safe_lsn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { A_OK = 0, A_FAIL = 1, A_USAGE = 2 };

static void usage(void)
{
    fputs("usage: hallq wal archive [WAL] --to DIR\n"
          "  moves the closed segments of the log (all but the last, which hallqd\n"
          "  writes) whose records the state has made durable to DIR, after checking\n"
          "  the archive and the log as one chain. Safe beside a running hallqd, and\n"
          "  to run again (it then does nothing).\n"
          "WAL: a data dir holding wal/ (default ./hallq-data), or its wal/.\n",
          stderr);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    /* Zero-padded first LSNs: the name order is the LSN order. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segment names of dir, sorted (malloc'd; free with free_names). */
static int list_segments(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!audit_segment_name(de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(*out, cap * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            *out = v;
        }
        if (!((*out)[*n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        ++*n;
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, cmp_name);
    return rc;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Removes copies a stopped run left half done. */
static int remove_leftovers(const char *archive, char *err, size_t errlen)
{
    DIR *d = opendir(archive);
    if (!d) {
        snprintf(err, errlen, "%s: %s", archive, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        char name[64], p[PATH_MAX + 64];
        if (l != 28 || strcmp(de->d_name + 24, ".tmp") != 0)
            continue;
        memcpy(name, de->d_name, 24);
        name[24] = 0;
        if (!audit_segment_name(name))
            continue;
        snprintf(p, sizeof p, "%s/%s", archive, de->d_name);
        if (unlink(p) != 0) {
            snprintf(err, errlen, "removing %s: %s", p, strerror(errno));
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Moves one closed segment, in the order the file comment gives. */
static int move_segment(const char *dir, const char *archive, const char *name, char *err,
                        size_t errlen)
{
    char src[PATH_MAX + 32], dst[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(src, sizeof src, "%s/%s", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", archive, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    struct stat st;
    if (lstat(dst, &st) == 0) {
        /* A run stopped after its copy: the view checked they are equal,
         * but nothing is removed on an old check. */
        int eq = audit_files_equal(src, dst);
        if (eq != 1) {
            snprintf(err, errlen, "%s is in the archive already, %s", name,
                     eq == 0 ? "and differs from the log's" : strerror(-eq));
            return -1;
        }
    } else {
        int rc;
        if (audit_copy_file(src, tmp, 0640, false, err, errlen) != 0)
            return -1;
        if ((rc = audit_files_equal(src, tmp)) != 1) {
            snprintf(err, errlen, "the copy %s %s", tmp,
                     rc == 0 ? "differs from the segment" : strerror(-rc));
            unlink(tmp);
            return -1;
        }
        if (rename(tmp, dst) != 0) {
            snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
            unlink(tmp);
            return -1;
        }
        if ((rc = fsync_dir(archive)) != 0) {
            snprintf(err, errlen, "fsync %s: %s", archive, strerror(-rc));
            return -1;
        }
    }
    if (unlink(src) != 0) {
        snprintf(err, errlen, "removing %s: %s", src, strerror(errno));
        return -1;
    }
    int rc = fsync_dir(dir);
    if (rc != 0) {
        snprintf(err, errlen, "fsync %s: %s", dir, strerror(-rc));
        return -1;
    }
    return 0;
}

/* The LSN up to which the state is durable (see the top of the file). */
typedef struct safe_point {
    uint64_t lsn;  /* 0: nothing is safe to move */
    int lock_fd;   /* DATA/LOCK, held by this run (no hallqd runs); or -1 */
    char why[512]; /* where lsn comes from, or why nothing may move */
} safe_point;

/* The applied LSN of DATA/state.mdb, made durable first: a hallqd killed
 * after a commit may have left its meta page in the page cache only. */
static int durable_state_lsn(const char *data, uint64_t *lsn, char *err, size_t errlen)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/" HALL_STORE_FILE, data);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    int rc = fsync_dir(data);
    if (rc != 0) {
        snprintf(err, errlen, "fsync %s: %s", data, strerror(-rc));
        return -1;
    }
    hall_store st;
    if (hall_store_open(&st, data, true, 0, err, errlen) != 0)
        return -1;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = hall_store_applied_lsn(&st, txn, lsn);
        mdb_txn_abort(txn);
    }
    hall_store_close(&st);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", p, mdb_strerror(rc));
    return rc ? -1 : 0;
}

/* Finds the safe LSN of the data dir holding the log dir `dir`. */
static int find_safe_lsn(const char *dir, safe_point *sp, char *err, size_t errlen)
{
    char data[PATH_MAX], p[PATH_MAX + 32];
    struct stat st;
    sp->lsn = 0;
    sp->lock_fd = -1;
    const char *slash = strrchr(dir, '/');
    if (!slash || strcmp(slash, "/wal") != 0) {
        snprintf(sp->why, sizeof sp->why,
                 "%s is no data dir's wal/: no state is known to hold its records", dir);
        return 0;
    }
    snprintf(data, sizeof data, "%.*s", (int)(slash - dir), dir);
    snprintf(p, sizeof p, "%s/" HALL_STORE_FILE, data);
    bool have_state = stat(p, &st) == 0;
    snprintf(p, sizeof p, "%s/LOCK", data);
    if (!have_state && stat(p, &st) != 0) {
        snprintf(sp->why, sizeof sp->why,
                 "%s holds no state (" HALL_STORE_FILE "): no record is known to be applied", data);
        return 0;
    }
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640); /* as hallqd opens it */
    if (fd < 0 && errno == EACCES)
        fd = open(p, O_RDONLY | O_CLOEXEC); /* flock needs no write access */
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            snprintf(err, errlen, "lock %s: %s", p, strerror(errno));
            close(fd);
            return -1;
        }
        /* A hallqd runs: its pid is in the file (written once it locked). */
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        close(fd);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        long v = strtol(pid, NULL, 10);
        int rc = v > 0 ? safe_lsn_read(data, (pid_t)v, &sp->lsn) : -ESTALE;
        if (rc == 0)
            snprintf(sp->why, sizeof sp->why, "published by the running hallqd (pid %ld)", v);
        else
            snprintf(sp->why, sizeof sp->why,
                     "the running hallqd%s%.20s%s has published no safe LSN yet (%s: %s; it "
                     "does at each checkpoint after its first)",
                     v > 0 ? " (pid " : "", v > 0 ? pid : "", v > 0 ? ")" : "", SAFE_LSN_FILE,
                     rc == -ENOENT   ? "none"
                     : rc == -ESTALE ? "left by another process"
                                     : strerror(-rc));
        return 0;
    }
    /* No hallqd runs, and none starts while this run holds the lock. */
    sp->lock_fd = fd;
    if (!have_state) {
        snprintf(sp->why, sizeof sp->why,
                 "%s holds no state (" HALL_STORE_FILE "): no record is known to be applied", data);
        return 0;
    }
    if (durable_state_lsn(data, &sp->lsn, err, errlen) != 0)
        return -1;
    snprintf(sp->why, sizeof sp->why,
             "applied by the state (no hallqd running; " HALL_STORE_FILE " synced)");
    return 0;
}

/* The view of archive and log as one chain, cut to what this run may rely
 * on: the segments up to the log's last one as listed, and of that one
 * only its header (which carries the chain on from the closed ones). */
static int open_checked_view(audit_view *v, const char *dir, const char *archive, const char *last,
                             char *err, size_t errlen)
{
    if (audit_view_open(v, dir, archive, err, errlen) != 0)
        return -1;
    char **names;
    size_t n;
    int rc = list_segments(v->dir, &names, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", v->dir, names[i]);
        if (strcmp(names[i], last) > 0 && unlink(p) != 0)
            rc = -errno; /* rolled over since: not this run's */
    }
    free_names(names, n);
    char src[PATH_MAX + 32], stub[PATH_MAX + 32];
    uint8_t hdr[WAL_SEGMENT_HEADER_LEN];
    snprintf(src, sizeof src, "%s/%s", dir, last);
    snprintf(stub, sizeof stub, "%s/%s", v->dir, last);
    ssize_t got = -1;
    int fd = rc == 0 ? open(src, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        got = pread(fd, hdr, sizeof hdr, 0);
        close(fd);
    }
    if (rc == 0 && (got < 0 || unlink(stub) != 0))
        rc = -errno;
    if (rc == 0) {
        FILE *f = fopen(stub, "wb");
        if (!f || fwrite(hdr, 1, (size_t)got, f) != (size_t)got)
            rc = errno ? -errno : -EIO;
        if (f && fclose(f) != 0 && rc == 0)
            rc = -errno;
        /* Full size (sparse), as the writer makes every segment: the scan
         * refuses a last segment shorter than its header's size. */
        uint64_t size = 0;
        for (int i = 7; i >= 0 && got == (ssize_t)sizeof hdr; i--)
            size = size << 8 | hdr[24 + i];
        if (rc == 0 && size > (uint64_t)got && truncate(stub, (off_t)size) != 0)
            rc = -errno;
    }
    if (rc != 0) {
        snprintf(err, errlen, "preparing the check of %s: %s", dir, strerror(-rc));
        audit_view_close(v);
        return -1;
    }
    return 0;
}

int audit_wal_archive(int ac, char **av)
{
    const char *path = NULL, *to = NULL;
    for (int i = 0; i < ac; i++) {
        if (!strcmp(av[i], "--to") && i + 1 < ac)
            to = av[++i];
        else if (av[i][0] != '-' && !path)
            path = av[i];
        else
            return usage(), A_USAGE;
    }
    if (!to)
        return usage(), A_USAGE;
    char dir[PATH_MAX], err[1024], rd[PATH_MAX], ra[PATH_MAX];
    audit_wal_dir(path, dir, sizeof dir);
    if (!realpath(dir, rd)) {
        fprintf(stderr, "hallq: %s: %s\n", dir, strerror(errno));
        return A_FAIL;
    }
    if (mkdir(to, 0750) == 0) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s/..", to);
        fsync_dir(parent); /* best effort: the segments' own fsyncs follow */
    } else if (errno != EEXIST) {
        fprintf(stderr, "hallq: --to %s: %s\n", to, strerror(errno));
        return A_FAIL;
    }
    if (!realpath(to, ra)) {
        fprintf(stderr, "hallq: --to %s: %s\n", to, strerror(errno));
        return A_FAIL;
    }
    if (!strcmp(rd, ra)) {
        fprintf(stderr, "hallq: --to %s is the log itself\n", to);
        return A_FAIL;
    }
    if (remove_leftovers(to, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        return A_FAIL;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = list_segments(dir, &names, &n);
    if (rc != 0 || n == 0) {
        fprintf(stderr, "hallq: %s: %s\n", dir, rc ? strerror(-rc) : "holds no WAL segment");
        free_names(names, n);
        return A_FAIL;
    }
    const char *last = names[n - 1];
    safe_point sp;
    if (find_safe_lsn(rd, &sp, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        free_names(names, n);
        return A_FAIL;
    }
    audit_view v;
    if (open_checked_view(&v, dir, to, last, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: %s\n", err);
        free_names(names, n);
        if (sp.lock_fd >= 0)
            close(sp.lock_fd);
        return A_FAIL;
    }
    wal_scan_options o = {.dir = v.dir, .must_exist = true};
    wal_scan_result res;
    rc = wal_scan(&o, &res);
    audit_view_close(&v);
    printf("log       %s\narchive   %s\n", dir, to);
    if (rc < 0) {
        printf("DAMAGED   %s, offset %" PRIu64 ", LSN %" PRIu64 ": %s\nnothing archived\n",
               res.bad_at.segment[0] ? res.bad_at.segment : "-", res.bad_at.offset, res.bad_at.lsn,
               res.message[0] ? res.message : wal_strerror(rc));
        free_names(names, n);
        if (sp.lock_fd >= 0)
            close(sp.lock_fd);
        return A_FAIL;
    }
    printf("verified  LSN %" PRIu64 "..%" PRIu64 " (%d segments, hall %s), chained into %s\n",
           res.first_lsn, res.last_lsn, res.segments, res.hall_id, last);
    if (sp.lsn)
        printf("safe      LSN %" PRIu64 ": %s\n", sp.lsn, sp.why);
    else
        printf("safe      none: %s\n", sp.why);
    /* Segment i holds LSN names[i]..names[i + 1] - 1: it may move when
     * that is at or below the safe LSN. */
    size_t closed = n - 1, movable = 0;
    while (movable < closed && strtoull(names[movable + 1], NULL, 10) <= sp.lsn + 1)
        movable++;
    if (movable < closed)
        printf("kept      %zu closed segment%s from LSN %" PRIu64 " on (%s): the state may "
               "not hold %s durably yet\n",
               closed - movable, closed - movable == 1 ? "" : "s",
               (uint64_t)strtoull(names[movable], NULL, 10), names[movable],
               closed - movable == 1 ? "it" : "them");
    int code = A_OK;
    size_t moved = 0;
    for (size_t i = 0; i < movable; i++) {
        if (move_segment(dir, to, names[i], err, sizeof err) != 0) {
            printf("FAILED    %s\n", err);
            code = A_FAIL;
            break;
        }
        moved++;
    }
    if (moved)
        printf("archived  %zu segment%s, LSN %" PRIu64 "..%" PRIu64 " (%s .. %s)\n", moved,
               moved == 1 ? "" : "s", (uint64_t)strtoull(names[0], NULL, 10),
               (uint64_t)strtoull(names[moved], NULL, 10) - 1, names[0], names[moved - 1]);
    else if (code == A_OK && closed == 0)
        printf("archived  nothing: %s is the open segment, the only one left\n", last);
    else if (code == A_OK)
        printf("archived  nothing: no closed segment lies wholly at or below the safe LSN\n");
    free_names(names, n);
    if (sp.lock_fd >= 0)
        close(sp.lock_fd);
    return code;
}
