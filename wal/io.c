/* wal/io.c: the default file operations (POSIX) and wal_strerror.
 * Tests swap wal_io_ops to inject failures; the WAL calls nothing else. */
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

const char *wal_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case WAL_E_CORRUPT:
        return "corrupt record";
    case WAL_E_CHAIN:
        return "hash chain broken";
    case WAL_E_GAP:
        return "LSN out of sequence";
    case WAL_E_TIME:
        return "record time goes backwards";
    case WAL_E_HALL:
        return "segment of another hall";
    case WAL_E_HEADER:
        return "bad segment header";
    case WAL_E_FAILED:
        return "the WAL failed earlier and refuses appends";
    case WAL_E_TOOBIG:
        return "payload empty or too large";
    case WAL_E_BUSY:
        return "a batch is already in flight";
    case WAL_E_VERSION:
        return "segment written by a newer format version";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
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
