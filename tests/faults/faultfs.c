/* tests/faults/faultfs.c: an LD_PRELOAD shim that makes the WAL's I/O fail
 * on demand, for tests of the daemon's answer to a bad disk.
 *
 *   HALLQ_FAULT=KIND:N:ERR     the Nth call of KIND on the log fails with ERR
 *
 *   KIND   fdatasync, pwrite        on a segment (*.wal, *.wal.tmp)
 *          open                     an open with O_CREAT of a segment file
 *          fallocate                posix_fallocate of a segment
 *          rename                   renaming a new segment into place
 *   ERR    EIO, ENOSPC, or (pwrite only) short: half the bytes are written
 *          and the call returns that count, as a full disk may do
 *
 *   HALLQ_FAULT_HOLD=PATH      while PATH exists, a WAL fdatasync waits (at
 *                              most 60 s) before it runs, after creating
 *                              PATH.held: a test holds a batch in flight
 *
 *   HALLQ_FAULT_READ=PATH      while PATH exists, opening a segment read-only
 *                              fails with EIO (a catch-up cannot read the log)
 *
 *   HALLQ_MAP_MAX_FILE=PATH    LMDB cannot map state.mdb larger than the
 *                              number in PATH (mmap fails with ENOMEM, as
 *                              when address space runs out; no file: no cap)
 *
 *   HALLQ_FREE_FILE=PATH       statvfs reports the number in PATH as the
 *                              free bytes (a test "fills" and "frees" the
 *                              disk by rewriting it; no file: the truth)
 *
 * Only the log's files are touched (LMDB's syncs pass through). Every later
 * call of that kind fails too, as a dead disk would (a short write is
 * followed by ENOSPC). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

static int is_wal(int fd)
{
    char path[PATH_MAX];
    return fd_path(fd, path) && is_wal_path(path);
}

/* Whether this call of `kind` on the log fails: 0 no, else the error
 * number to fail with (-1: a short write). */
static int should_fail(const char *kind, int on_wal)
{
    static int count;
    const char *spec = getenv("HALLQ_FAULT");
    char k[32], e[32];
    int at;
    if (!spec || sscanf(spec, "%31[^:]:%d:%31s", k, &at, e) != 3 || strcmp(k, kind) != 0 || !on_wal)
        return 0;
    int nth = __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST);
    if (nth < at)
        return 0;
    if (strcmp(e, "short") == 0)
        return nth == at ? -1 : ENOSPC;
    return strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int wal = is_wal(fd);
    if (wal)
        hold_while(getenv("HALLQ_FAULT_HOLD"));
    int f = should_fail("fdatasync", wal);
    if (f)
        return errno = f > 0 ? f : EIO, -1;
    return real(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    int f = should_fail("pwrite", is_wal(fd));
    if (f > 0)
        return errno = f, -1;
    if (f < 0 && n > 1)
        return real(fd, buf, n / 2, off);
    return real(fd, buf, n, off);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    static int (*real)(int, off_t, off_t);
    if (!real)
        real = (int (*)(int, off_t, off_t))dlsym(RTLD_NEXT, "posix_fallocate");
    int f = should_fail("fallocate", is_wal(fd));
    if (f)
        return f > 0 ? f : EIO; /* posix_fallocate returns the error */
    return real(fd, off, len);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    return posix_fallocate(fd, off, len);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int f = should_fail("rename", is_wal_path(from) || is_wal_path(to));
    if (f)
        return errno = f > 0 ? f : EIO, -1;
    return real(from, to);
}

/* HALLQ_FAULT_READ=PATH: while PATH exists, opening a segment to read it
 * (no O_CREAT: the scan of a catch-up or of a recovery) fails with EIO. */
static int fault_read(const char *path, int flags)
{
    const char *gate = getenv("HALLQ_FAULT_READ");
    return gate && !(flags & O_CREAT) && is_wal_path(path) && access(gate, F_OK) == 0;
}

static int open_common(int (*real)(const char *, int, ...), const char *path, int flags,
                       mode_t mode)
{
    if (fault_read(path, flags))
        return errno = EIO, -1;
    int f = should_fail("open", (flags & O_CREAT) && is_wal_path(path));
    if (f)
        return errno = f > 0 ? f : EIO, -1;
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    OPEN_MODE(mode, flags);
    return open_common(real, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
    OPEN_MODE(mode, flags);
    return open_common(real, path, flags, mode);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

int statvfs(const char *path, struct statvfs *sv)
{
    static int (*real)(const char *, struct statvfs *);
    if (!real)
        real = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
    int rc = real(path, sv);
    const char *file = getenv("HALLQ_FREE_FILE");
    FILE *f = rc == 0 && file ? fopen(file, "r") : NULL;
    unsigned long long bytes;
    if (f) {
        if (fscanf(f, "%llu", &bytes) == 1 && sv->f_frsize)
            sv->f_bavail = (fsblkcnt_t)(bytes / sv->f_frsize);
        fclose(f);
    }
    return rc;
}

/* HALLQ_MAP_MAX_FILE: an mmap of the state file past the cap fails. */
static int map_refused(int fd, size_t len)
{
    const char *file = getenv("HALLQ_MAP_MAX_FILE");
    char path[PATH_MAX];
    if (!file || fd < 0 || !fd_path(fd, path) || !ends_with(path, "state.mdb"))
        return 0;
    FILE *f = fopen(file, "r");
    unsigned long long cap;
    int refused = f && fscanf(f, "%llu", &cap) == 1 && len > cap;
    if (f)
        fclose(f);
    return refused;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!real)
        real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    if (map_refused(fd, len))
        return errno = ENOMEM, MAP_FAILED;
    return real(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}
