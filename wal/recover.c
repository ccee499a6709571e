/* wal/recover.c: wal_recover: apply a fence (fence.c), verify the whole
 * log, then repair a torn tail so that the writer can continue right after
 * the last good record; wal_sync_log: the start-up sync.
 *
 * Invariants: nothing is written unless wal_scan found the log good up to
 * a torn tail; the damaged bytes are kept in "<segment>.broken" (complete
 * and synced, put in place by rename) before any of them is zeroed; the
 * zeroing covers exactly [torn offset, end of the damaged bytes), which
 * the scan proved is followed only by zeros, and is fdatasync'd. A crash
 * at any point leaves a log that recovers the same way again.
 *
 * Never: cut or zero anything before the torn record, touch a segment
 * other than the last, or repair when the scan reported damage. */
#include "wal/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)

/* Leftover "*.tmp" files are segments (or copies) that were never renamed
 * into place, so they never held an acknowledged record. Best effort: one
 * left behind is ignored by the scan and truncated by the next creation. */
static void remove_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static int write_all(const wal_io_ops *io, int fd, const uint8_t *p, size_t n, uint64_t off)
{
    errno = 0;
    ssize_t w = io->pwrite(fd, p, n, (off_t)off);
    if (w == (ssize_t)n)
        return 0;
    return w < 0 && errno ? -errno : -EIO; /* short: an error, not retried */
}

/* Copies [0, len) of `from` to `to` ("<to>.tmp" first), then extends the
 * copy to `size` (the rest is zeros: the scan proved it). */
static int keep_copy(const wal_io_ops *io, const char *dir, const char *from, const char *to,
                     uint64_t len, uint64_t size, const char **call)
{
    char src_path[4200], tmp[4300], dst[4300];
    snprintf(src_path, sizeof src_path, "%s/%s", dir, from);
    snprintf(dst, sizeof dst, "%s/%s", dir, to);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    int rc = 0, src = -1, out = -1;
    uint8_t *buf = malloc(COPY_CHUNK);
    if (!buf) {
        *call = "malloc";
        return -ENOMEM;
    }
    if ((src = open(src_path, O_RDONLY | O_CLOEXEC)) < 0) {
        *call = "open";
        rc = -errno;
        goto out;
    }
    if ((out = io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        *call = "open";
        rc = errno ? -errno : -EIO;
        goto out;
    }
    for (uint64_t off = 0; off < len;) {
        size_t k = len - off < COPY_CHUNK ? (size_t)(len - off) : COPY_CHUNK;
        ssize_t r = pread(src, buf, k, (off_t)off);
        if (r <= 0) {
            *call = "pread";
            rc = r < 0 ? -errno : -EIO;
            goto out;
        }
        if ((rc = write_all(io, out, buf, (size_t)r, off)) != 0) {
            *call = "pwrite";
            goto out;
        }
        off += (uint64_t)r;
    }
    errno = 0;
    if (io->ftruncate(out, (off_t)size) != 0) {
        *call = "ftruncate";
        rc = errno ? -errno : -EIO;
    } else if (io->fsync(out) != 0) {
        *call = "fsync";
        rc = errno ? -errno : -EIO;
    } else if (io->rename(tmp, dst) != 0) {
        *call = "rename";
        rc = errno ? -errno : -EIO;
    }
    if (rc == 0)
        rc = wal_dir_fsync(io, dir, call);
out:
    if (out >= 0)
        io->close(out);
    if (rc && out >= 0)
        unlink(tmp);
    if (src >= 0)
        close(src);
    free(buf);
    return rc;
}

/* Writes zeros over [from, to) of the segment and fdatasyncs it. */
static int zero_range(const wal_io_ops *io, const char *dir, const char *seg, uint64_t from,
                      uint64_t to, const char **call)
{
    static const uint8_t zeros[1u << 16];
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, seg);
    errno = 0;
    int fd = io->open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        *call = "open";
        return errno ? -errno : -EIO;
    }
    int rc = 0;
    for (uint64_t off = from; off < to && rc == 0;) {
        size_t k = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        if ((rc = write_all(io, fd, zeros, k, off)) != 0)
            *call = "pwrite";
        off += k;
    }
    errno = 0;
    if (rc == 0 && io->fdatasync(fd) != 0) {
        *call = "fdatasync";
        rc = errno ? -errno : -EIO;
    }
    io->close(fd);
    return rc;
}

int wal_sync_log(const char *dir, const wal_io_ops *io, uint64_t from_lsn, char *msg, size_t msglen)
{
    if (!io)
        io = &wal_io_posix;
    msg[0] = 0;
    wal_seg_ent *segs;
    size_t n;
    int rc = wal_segment_list(dir, &segs, &n);
    if (rc == -ENOENT)
        return 0;
    if (rc) {
        snprintf(msg, msglen, "cannot list %s: %s", dir, wal_strerror(rc));
        return rc;
    }
    /* From the segment holding from_lsn + 1 on (the one before the first
     * segment starting after from_lsn + 1). */
    size_t first = 0;
    while (first + 1 < n && segs[first + 1].first_lsn <= from_lsn + 1)
        first++;
    const char *call = "";
    for (size_t i = first; i < n && rc == 0; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        errno = 0;
        int fd = io->open(path, O_RDWR | O_CLOEXEC, 0);
        if (fd < 0) {
            rc = errno ? -errno : -EIO;
            snprintf(msg, msglen, "open %s: %s", segs[i].name, wal_strerror(rc));
            break;
        }
        errno = 0;
        if (io->fdatasync(fd) != 0) {
            rc = errno ? -errno : -EIO;
            snprintf(msg, msglen, "fdatasync %s: %s", segs[i].name, wal_strerror(rc));
        }
        io->close(fd);
    }
    free(segs);
    if (rc == 0 && (rc = wal_dir_fsync(io, dir, &call)) != 0)
        snprintf(msg, msglen, "%s %s: %s", call, dir, wal_strerror(rc));
    return rc;
}

int wal_recover(const wal_scan_options *opt, const wal_io_ops *io, wal_scan_result *res)
{
    if (!io)
        io = &wal_io_posix;
    wal_fence f;
    char msg[256], what[320] = "";
    int rc = wal_fence_apply(io, opt->dir, &f, msg, sizeof msg, what, sizeof what);
    if (rc) {
        memset(res, 0, sizeof *res);
        snprintf(res->message, sizeof res->message, "%s", msg);
        return rc;
    }
    rc = wal_scan(opt, res);
    if (rc)
        return rc;
    if (what[0]) {
        /* The rebuilt log must end exactly where the fence says: less
         * means the disk lost synced records. */
        if (res->torn || res->last_lsn != f.lsn || strcmp(res->last_segment, f.segment) != 0 ||
            res->end_offset != f.offset) {
            snprintf(res->message, sizeof res->message,
                     "fence: the WAL was durable up to LSN %llu (%s offset %llu), but read from "
                     "the disk it ends at LSN %llu (%s offset %llu%s): synced records are lost",
                     (unsigned long long)f.lsn, f.segment, (unsigned long long)f.offset,
                     (unsigned long long)res->last_lsn, res->last_segment,
                     (unsigned long long)res->end_offset, res->torn ? ", torn" : "");
            return WAL_E_CORRUPT;
        }
        const char *call = "";
        if ((rc = wal_fence_remove(io, opt->dir, &call)) != 0) {
            snprintf(res->message, sizeof res->message, "fence: %s: %s", call, wal_strerror(rc));
            return rc;
        }
        res->fenced = true;
        memcpy(res->fenced_what, what, sizeof res->fenced_what);
    }
    remove_tmp(opt->dir);
    if (!res->torn)
        return 0;

    const char *seg = res->torn_at.segment, *call = "";
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", opt->dir, seg);
    if (stat(path, &st) != 0) {
        rc = -errno;
        call = "stat";
    }
    char broken[96];
    snprintf(broken, sizeof broken, "%s.broken", seg);
    if (rc == 0)
        rc = keep_copy(io, opt->dir, seg, broken, res->torn_end, (uint64_t)st.st_size, &call);
    if (rc) {
        snprintf(res->message, sizeof res->message,
                 "segment %s: cannot keep a copy of the torn tail in %s: %s: %s", seg, broken, call,
                 wal_strerror(rc));
        return rc;
    }
    memcpy(res->broken_copy, broken, sizeof res->broken_copy);
    if ((rc = zero_range(io, opt->dir, seg, res->torn_at.offset, res->torn_end, &call)) != 0) {
        snprintf(res->message, sizeof res->message,
                 "segment %s offset %llu (LSN %llu): cannot zero the torn tail: %s: %s", seg,
                 (unsigned long long)res->torn_at.offset, (unsigned long long)res->torn_at.lsn,
                 call, wal_strerror(rc));
        return rc;
    }
    return 0;
}
