/* wal/io.c: the default file operations (POSIX), the error names, and the
 * free-space probe.
 *
 * Invariants: every write, sync, rename and preallocation of the log goes
 * through a wal_io_ops table, so tests can swap in one that fails; the
 * POSIX table adds no retries and no policy (a short write is reported as
 * it happened, posix_fallocate's error number becomes -1/errno).
 *
 * Never: retry a failed fsync or fdatasync here: after one fails the page
 * cache may have dropped the dirty pages, and a second call could return
 * 0 for data that never reached the disk. */
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int io_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int io_fallocate(int fd, off_t off, off_t len)
{
    int rc = posix_fallocate(fd, off, len);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

const wal_io_ops wal_io_posix = {
    .open = io_open,
    .pwrite = pwrite,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .rename = rename,
    .fallocate = io_fallocate,
    .ftruncate = ftruncate,
    .close = close,
};

/* One table names the codes (see the enum in wal.h). */
#define WAL_ERROR_MAP(X)                                                                           \
    X(WAL_E_CORRUPT, "corrupt record")                                                             \
    X(WAL_E_CHAIN, "hash chain broken")                                                            \
    X(WAL_E_GAP, "LSN out of sequence")                                                            \
    X(WAL_E_TIME, "record time goes backwards")                                                    \
    X(WAL_E_HALL, "segment of another hall")                                                       \
    X(WAL_E_HEADER, "bad segment header")                                                          \
    X(WAL_E_FAILED, "the WAL failed earlier and refuses appends")                                  \
    X(WAL_E_TOOBIG, "payload empty or too large")                                                  \
    X(WAL_E_BUSY, "a batch is already in flight")                                                  \
    X(WAL_E_VERSION, "segment written by a newer format version")

const char *wal_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define WAL_ERR_CASE(code, text)                                                                   \
    case code:                                                                                     \
        return text;
        WAL_ERROR_MAP(WAL_ERR_CASE)
#undef WAL_ERR_CASE
    default:
        /* strerror's buffer is static for known numbers on glibc. */
        return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
    }
}

int wal_disk_free(const char *dir, uint64_t *bytes)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return -errno;
    *bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}
