/* tests/faults/faultfs.c: an LD_PRELOAD shim that makes the WAL's I/O fail
 * on demand, for tests of the daemon's answer to a bad disk.
 *
 *   HALLQ_FAULT=fdatasync:N:EIO   the Nth fdatasync of a *.wal file fails
 *   HALLQ_FAULT=pwrite:N:ENOSPC   the Nth pwrite to a *.wal file fails
 *
 * Only files whose name ends in ".wal" are touched (LMDB's syncs pass
 * through). Every later call of that kind on a *.wal file fails too, as a
 * dead disk would. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_wal(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 4)
        return 0;
    path[n] = 0;
    return strcmp(path + n - 4, ".wal") == 0;
}

/* Whether this call of `kind` on fd fails; sets errno. */
static int should_fail(const char *kind, int fd)
{
    static int count;
    const char *spec = getenv("HALLQ_FAULT");
    char k[32], e[32];
    int at;
    if (!spec || sscanf(spec, "%31[^:]:%d:%31s", k, &at, e) != 3 || strcmp(k, kind) != 0 ||
        !is_wal(fd))
        return 0;
    if (__atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST) < at)
        return 0;
    errno = strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
    return 1;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (should_fail("fdatasync", fd))
        return -1;
    return real(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (should_fail("pwrite", fd))
        return -1;
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}
