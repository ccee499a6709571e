/* wal/fence.c: the fence: where the log was last known durable when the
 * writer failed, and how start-up honours it.
 *
 * Why: after a failed write or fdatasync, Linux may mark the pages clean
 * and keep them cached although they never reached the disk. A restart in
 * the same boot would read them through the page cache, replay them and
 * checkpoint them. So on its first failure the writer persists the fence
 * (DIR/FENCE: the last durable LSN, its segment and the end offset of its
 * record), and wal_recover, finding one, trusts nothing the disk may not
 * hold: it rebuilds the fence's segment into a fresh file from bytes read
 * past the page cache (O_DIRECT; where that is refused, as on tmpfs,
 * posix_fadvise(DONTNEED) then read), up to the fence's offset, zeros
 * after; later segments and the original segment are kept as
 * "<name>.fence-<id>.broken". Only then is the fence removed.
 *
 * Invariants: the fence is written as FENCE.tmp, fsync'd, renamed, and the
 * directory fsync'd; a FENCE in place is whole (its CRC is checked). Every
 * step of the rebuild can be redone after a crash: the original segment is
 * moved aside by rename (once: the moved copy, named by the fence's id, is
 * the source from then on), the new one is made as "<name>.tmp" and
 * renamed over, and the fence goes last.
 *
 * Never: copy a byte past the fence's offset into the rebuilt segment,
 * remove the fence before the rebuilt log was scanned, or read the
 * source of the rebuild through the page cache when O_DIRECT works. */

#include "wal/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FENCE_CHUNK (1u << 20)

static int fence_text(const wal_fence *f, char *out, size_t len)
{
    int n = snprintf(out, len,
                     "hallq-wal-fence 1\nid %" PRIu64 "\nlsn %" PRIu64
                     "\nsegment %s\noffset %" PRIu64 "\n",
                     f->id, f->lsn, f->segment, f->offset);
    if (n < 0 || (size_t)n >= len)
        return -1;
    int m =
        snprintf(out + n, len - (size_t)n, "crc %08" PRIx32 "\n", wal_crc32c(0, out, (size_t)n));
    if (m < 0 || (size_t)m >= len - (size_t)n)
        return -1;
    return n + m;
}

int wal_fence_write(const wal_io_ops *io, const char *dir, wal_fence *f, const char **call)
{
    char path[4200], tmp[4300], text[512];
    if (!f->id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        f->id = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    int n = fence_text(f, text, sizeof text);
    if (n < 0) {
        *call = "format";
        return -EINVAL;
    }
    snprintf(path, sizeof path, "%s/" WAL_FENCE_NAME, dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    errno = 0;
    int fd = io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        *call = "open " WAL_FENCE_NAME ".tmp";
        return errno ? -errno : -EIO;
    }
    int rc = 0;
    errno = 0;
    ssize_t w = io->pwrite(fd, text, (size_t)n, 0);
    if (w != n) {
        *call = "pwrite " WAL_FENCE_NAME ".tmp";
        rc = w < 0 && errno ? -errno : -EIO;
    } else if (io->fsync(fd) != 0) {
        *call = "fsync " WAL_FENCE_NAME ".tmp";
        rc = errno ? -errno : -EIO;
    }
    io->close(fd);
    if (rc == 0 && io->rename(tmp, path) != 0) {
        *call = "rename " WAL_FENCE_NAME;
        rc = errno ? -errno : -EIO;
    }
    if (rc == 0)
        rc = wal_dir_fsync(io, dir, call);
    return rc;
}

int wal_fence_read(const char *dir, wal_fence *f)
{
    char path[4200], text[512];
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s/" WAL_FENCE_NAME, dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    text[n] = 0;
    char seg[64] = "";
    unsigned long long id, lsn, off;
    unsigned crc;
    int used = 0;
    if (sscanf(text, "hallq-wal-fence 1\nid %llu\nlsn %llu\nsegment %63s\noffset %llu\n%n", &id,
               &lsn, seg, &off, &used) != 4 ||
        used == 0 || sscanf(text + used, "crc %8x\n", &crc) != 1 ||
        crc != wal_crc32c(0, text, (size_t)used))
        return WAL_E_CORRUPT;
    uint64_t first;
    if (!wal_segment_parse_name(seg, &first) || off < WAL_SEGMENT_HEADER_LEN)
        return WAL_E_CORRUPT;
    f->id = id;
    f->lsn = lsn;
    f->offset = off;
    memcpy(f->segment, seg, sizeof f->segment);
    return 0;
}

/* Opens `path` for reading past the page cache: O_DIRECT, or else (the
 * filesystem refuses it) a plain open after dropping the cached pages.
 * *direct says which. */
static int open_uncached(const char *path, bool *direct)
{
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    *direct = fd >= 0;
    if (fd >= 0 || errno != EINVAL)
        return fd;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    return fd;
}

/* Reads [off, off + len) of fd (len a multiple of WAL_PAGE, buf aligned to
 * it for O_DIRECT); returns the bytes read (short only at the end of the
 * file) or -errno. Falls back to a cache-dropping read when a direct read
 * is refused (EINVAL). */
static ssize_t read_uncached(int *fd, bool *direct, const char *path, uint8_t *buf, size_t len,
                             uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(*fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINVAL && *direct) {
            close(*fd);
            *direct = false;
            if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return -errno;
            (void)posix_fadvise(*fd, 0, 0, POSIX_FADV_DONTNEED);
            continue;
        }
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Builds "<dir>/<seg>" anew from [0, f->offset) of `src` read past the page
 * cache, zeros to the segment's size: "<seg>.tmp", fsync, rename, dir
 * fsync. */
static int rebuild(const wal_io_ops *io, const char *dir, const wal_fence *f, const char *src,
                   char *msg, size_t msglen)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, f->segment);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t *buf = NULL;
    int rc = 0, in = -1, out = -1;
    bool direct = false;
    const char *call = "";
    if (posix_memalign((void **)&buf, WAL_PAGE, FENCE_CHUNK) != 0) {
        call = "malloc";
        rc = -ENOMEM;
        goto out;
    }
    if ((in = open_uncached(src, &direct)) < 0) {
        call = "open";
        rc = -errno;
        goto out;
    }
    ssize_t r = read_uncached(&in, &direct, src, buf, WAL_PAGE, 0);
    wal_seg_header h;
    uint64_t first;
    if (r < 0) {
        call = "read";
        rc = (int)r;
        goto out;
    }
    wal_segment_parse_name(f->segment, &first);
    if (r < WAL_SEGMENT_HEADER_LEN || wal_header_decode(buf, &h) != 0 || h.first_lsn != first ||
        f->offset > h.segment_bytes) {
        snprintf(msg, msglen,
                 "fence: the header of %s, read from the disk, is not a segment header for "
                 "offset %" PRIu64 " (first LSN %" PRIu64 ")",
                 f->segment, f->offset, first);
        rc = WAL_E_HEADER;
        goto out;
    }
    errno = 0;
    if ((out = io->open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        call = "open";
        rc = errno ? -errno : -EIO;
        goto out;
    }
    errno = 0;
    if (io->fallocate(out, 0, (off_t)h.segment_bytes) != 0) {
        call = "fallocate";
        rc = errno ? -errno : -EIO;
        goto out;
    }
    for (uint64_t off = 0; off < f->offset;) {
        uint64_t want = f->offset - off;
        size_t k = want < FENCE_CHUNK ? (size_t)want : FENCE_CHUNK;
        size_t ak = (k + WAL_PAGE - 1) / WAL_PAGE * WAL_PAGE;
        if ((r = read_uncached(&in, &direct, src, buf, ak, off)) < (ssize_t)k) {
            call = "read";
            rc = r < 0 ? (int)r : -EIO;
            goto out;
        }
        errno = 0;
        if (io->pwrite(out, buf, k, (off_t)off) != (ssize_t)k) {
            call = "pwrite";
            rc = errno ? -errno : -EIO;
            goto out;
        }
        off += k;
    }
    errno = 0;
    if (io->fsync(out) != 0) {
        call = "fsync";
        rc = errno ? -errno : -EIO;
    } else if (io->rename(tmp, path) != 0) {
        call = "rename";
        rc = errno ? -errno : -EIO;
    }
    if (rc == 0)
        rc = wal_dir_fsync(io, dir, &call);
out:
    if (rc && !msg[0])
        snprintf(msg, msglen, "fence: cannot rebuild %s from %s: %s: %s", f->segment, src, call,
                 wal_strerror(rc));
    if (out >= 0)
        io->close(out);
    if (in >= 0)
        close(in);
    free(buf);
    return rc;
}

int wal_fence_apply(const wal_io_ops *io, const char *dir, wal_fence *f, char *msg, size_t msglen,
                    char *what, size_t whatlen)
{
    msg[0] = 0;
    int rc = wal_fence_read(dir, f);
    if (rc == -ENOENT)
        return 0;
    if (rc) {
        snprintf(msg, msglen,
                 "%s/" WAL_FENCE_NAME " is unreadable (%s): the WAL failed earlier and where it "
                 "was durable is unknown",
                 dir, wal_strerror(rc));
        return rc;
    }
    char src[4300], seg[4200], name[4300];
    uint64_t first;
    wal_segment_parse_name(f->segment, &first);
    snprintf(seg, sizeof seg, "%s/%s", dir, f->segment);
    snprintf(src, sizeof src, "%s.fence-%" PRIu64 ".broken", seg, f->id);
    const char *call = "";
    /* Move the fenced segment aside once; from then on the moved copy is
     * the source (a redo after a crash finds it there). */
    if (access(src, F_OK) != 0) {
        if (access(seg, F_OK) != 0) {
            snprintf(msg, msglen, "fence: the segment it names, %s, is missing", f->segment);
            return WAL_E_CORRUPT;
        }
        errno = 0;
        if (io->rename(seg, src) != 0) {
            rc = errno ? -errno : -EIO;
            snprintf(msg, msglen, "fence: cannot move %s aside: %s", f->segment, wal_strerror(rc));
            return rc;
        }
    }
    wal_seg_ent *segs;
    size_t n;
    if ((rc = wal_segment_list(dir, &segs, &n)) != 0) {
        snprintf(msg, msglen, "fence: cannot list %s: %s", dir, wal_strerror(rc));
        return rc;
    }
    int moved = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (segs[i].first_lsn <= first)
            continue;
        char from[4200];
        snprintf(from, sizeof from, "%s/%s", dir, segs[i].name);
        snprintf(name, sizeof name, "%s.fence-%" PRIu64 ".broken", from, f->id);
        errno = 0;
        if (io->rename(from, name) != 0) {
            rc = errno ? -errno : -EIO;
            snprintf(msg, msglen, "fence: cannot move %s aside: %s", segs[i].name,
                     wal_strerror(rc));
        }
        moved++;
    }
    free(segs);
    if (rc == 0 && (rc = wal_dir_fsync(io, dir, &call)) != 0)
        snprintf(msg, msglen, "fence: %s %s: %s", call, dir, wal_strerror(rc));
    if (rc == 0)
        rc = rebuild(io, dir, f, src, msg, msglen);
    if (rc == 0)
        snprintf(what, whatlen,
                 "the WAL failed earlier: rebuilt %s from the disk up to offset %" PRIu64
                 " (LSN %" PRIu64 "); nothing past it is trusted: the old segment and %d "
                 "later one(s) are kept as *.fence-%" PRIu64 ".broken",
                 f->segment, f->offset, f->lsn, moved, f->id);
    return rc;
}

int wal_fence_remove(const wal_io_ops *io, const char *dir, const char **call)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" WAL_FENCE_NAME, dir);
    if (unlink(path) != 0 && errno != ENOENT) {
        *call = "unlink " WAL_FENCE_NAME;
        return -errno;
    }
    return wal_dir_fsync(io, dir, call);
}
