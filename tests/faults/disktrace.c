/* tests/faults/disktrace.c: an LD_PRELOAD shim that records every change
 * hallqd makes to its WAL files, so a test can rebuild the files as a disk
 * could hold them after a power loss at the moment the daemon died
 * (tests/integration/powerloss.py reads the trace).
 *
 *   HALLQ_DISKTRACE=PATH          append the trace to PATH (no variable:
 *                                 every call passes through untouched)
 *   HALLQ_DISKTRACE_SYNC_US=N     a WAL fdatasync/fsync first sleeps N us,
 *                                 as a real disk's flush takes time: more
 *                                 batches are in flight when a kill lands
 *   HALLQ_DISKTRACE_KILL_AT=N     right after the Nth WAL write returned
 *                                 (and was traced), before anything else,
 *                                 the process SIGKILLs itself: a kill with
 *                                 a write in flight, not yet synced
 *
 * What is traced: on a WAL file (*.wal, *.wal.tmp) open with O_CREAT or
 * O_TRUNC, pwrite/pwrite64/write (the bytes, or only the length when all
 * are zeros), fdatasync/fsync, ftruncate, fallocate/posix_fallocate,
 * rename (either name a WAL file) and unlink; and fsync of any directory.
 *
 * When: a write is traced BEFORE it runs (with its bytes) and again after
 * it returned (a "done" entry with the count); a sync, rename, truncate,
 * allocation, unlink or open only AFTER it succeeded. So a sync in the
 * trace has completed, and anything the daemon acknowledged after a sync
 * has that sync in the trace; a write whose done entry is missing was cut
 * by the kill and may or may not have reached the page cache (the reader
 * treats it as written but not synced: the disk may hold it or not, which
 * is true of any write after the last sync).
 *
 * Each entry is one write(2) on an O_APPEND descriptor, under a mutex, made
 * before the traced call returns: it is in the page cache when the daemon
 * goes on, so a SIGKILL loses nothing of it.
 *
 * Entry (little-endian): u32 magic "HQDT", u8 op, 3 zero bytes, u32 path
 * length, u32 data length, u64 seq (per process, from 1), u64 a, u64 b,
 * then the path (absolute, no NUL), then the data. A restarted daemon
 * appends to the same trace, after its own 'P' entry.
 *   'P' process   a = pid: the first entry of each process
 *   'O' open      a = flags
 *   'W' write     a = offset, b = length, data = the bytes
 *   'Z' write     a = offset, b = length (all zeros, no data)
 *   'w' done      a = seq of the 'W'/'Z' entry, b = bytes written (or -1)
 *   'S' sync      file (fdatasync or fsync)
 *   'D' dir sync  path = the directory
 *   'R' rename    path = from, data = to
 *   'T' truncate  a = length
 *   'F' allocate  a = offset, b = length
 *   'U' unlink
 *   'X' fallocate with a mode (punch, collapse...): the reader refuses it
 *
 * Not traced: writev/pwritev, mmap'd writes, copy_file_range (the WAL uses
 * none of them); LMDB's files (see powerloss.py for how those are taken).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

/* real_NAME: the next definition of NAME (libc's), looked up once. */
#define REAL(name)                                                                                 \
    static __typeof__(&name) real_##name;                                                          \
    if (!real_##name)                                                                              \
    real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -2; /* -2: not opened yet, -1: no tracing */
static uint64_t trace_seq;

static uint64_t emit_locked(char op, const char *path, uint64_t a, uint64_t b, const void *data,
                            size_t data_len);

static int tracing(void)
{
    if (trace_fd != -2)
        return trace_fd >= 0;
    pthread_mutex_lock(&trace_mu);
    if (trace_fd == -2) {
        const char *p = getenv("HALLQ_DISKTRACE");
        /* The raw syscall: open() here is our own wrapper. */
        trace_fd = p && *p ? (int)syscall(SYS_openat, AT_FDCWD, p,
                                          O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)
                           : -1;
        if (trace_fd >= 0)
            emit_locked('P', "", (uint64_t)getpid(), 0, NULL, 0);
    }
    pthread_mutex_unlock(&trace_mu);
    return trace_fd >= 0;
}

static int wal_fd(int fd, char out[PATH_MAX])
{
    return tracing() && fd_path(fd, out) && is_wal_path(out);
}

/* An absolute path for `path`: the directory resolved, the name kept (a
 * renamed-away or not yet created file has no path of its own). */
static void abs_path(const char *path, char out[PATH_MAX])
{
    char dir[PATH_MAX], res[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!realpath(dir, res))
        snprintf(res, sizeof res, "%s", dir);
    snprintf(out, PATH_MAX, "%s/%s", strcmp(res, "/") == 0 ? "" : res, name);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Appends one entry (the caller holds trace_mu); returns its seq. A
 * failed trace write aborts the daemon: a trace with a hole would make the
 * test's images wrong. */
static uint64_t emit_locked(char op, const char *path, uint64_t a, uint64_t b, const void *data,
                            size_t data_len)
{
    uint8_t h[40];
    size_t plen = strlen(path);
    memset(h, 0, sizeof h);
    memcpy(h, "HQDT", 4);
    h[4] = (uint8_t)op;
    put32(h + 8, (uint32_t)plen);
    put32(h + 12, (uint32_t)data_len);
    uint64_t seq = ++trace_seq;
    put64(h + 16, seq);
    put64(h + 24, a);
    put64(h + 32, b);
    struct iovec iov[3] = {{h, sizeof h}, {(void *)path, plen}, {(void *)data, data_len}};
    size_t want = sizeof h + plen + data_len;
    int saved = errno;
    ssize_t n = syscall(SYS_writev, trace_fd, iov, data_len ? 3 : 2);
    errno = saved;
    if (n != (ssize_t)want) {
        static const char msg[] = "disktrace: cannot write the trace\n";
        syscall(SYS_write, 2, msg, sizeof msg - 1);
        abort();
    }
    return seq;
}

static uint64_t emit(char op, const char *path, uint64_t a, uint64_t b, const void *data,
                     size_t data_len)
{
    pthread_mutex_lock(&trace_mu);
    uint64_t seq = emit_locked(op, path, a, b, data, data_len);
    pthread_mutex_unlock(&trace_mu);
    return seq;
}

static int all_zero(const void *buf, size_t n)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static uint64_t trace_write(const char *path, const void *buf, size_t n, off_t off)
{
    if (all_zero(buf, n))
        return emit('Z', path, (uint64_t)off, n, NULL, 0);
    return emit('W', path, (uint64_t)off, n, buf, n);
}

static void sync_delay(void)
{
    const char *us = getenv("HALLQ_DISKTRACE_SYNC_US");
    if (us && *us)
        usleep((useconds_t)strtoul(us, NULL, 10));
}

/* HALLQ_DISKTRACE_KILL_AT: called after each traced write. */
static void maybe_die(void)
{
    static unsigned long writes;
    const char *at = getenv("HALLQ_DISKTRACE_KILL_AT");
    if (at && *at && __atomic_add_fetch(&writes, 1, __ATOMIC_SEQ_CST) == strtoul(at, NULL, 10))
        kill(getpid(), SIGKILL);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite);
    char path[PATH_MAX];
    if (!wal_fd(fd, path))
        return real_pwrite(fd, buf, n, off);
    uint64_t seq = trace_write(path, buf, n, off);
    ssize_t r = real_pwrite(fd, buf, n, off);
    emit('w', path, seq, (uint64_t)r, NULL, 0);
    maybe_die();
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write);
    char path[PATH_MAX];
    if (fd <= 2 || !wal_fd(fd, path))
        return real_write(fd, buf, n);
    off_t off;
    if (fcntl(fd, F_GETFL) & O_APPEND) {
        struct stat st;
        off = fstat(fd, &st) == 0 ? st.st_size : 0;
    } else {
        off = lseek(fd, 0, SEEK_CUR);
    }
    uint64_t seq = trace_write(path, buf, n, off);
    ssize_t r = real_write(fd, buf, n);
    emit('w', path, seq, (uint64_t)r, NULL, 0);
    maybe_die();
    return r;
}

/* fdatasync and fsync: a WAL file's sync, or a directory's. */
static int traced_sync(int fd, int (*real)(int))
{
    char path[PATH_MAX];
    struct stat st;
    if (!tracing() || !fd_path(fd, path))
        return real(fd);
    if (is_wal_path(path)) {
        sync_delay();
        int rc = real(fd);
        if (rc == 0)
            emit('S', path, 0, 0, NULL, 0);
        return rc;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        int rc = real(fd);
        if (rc == 0)
            emit('D', path, 0, 0, NULL, 0);
        return rc;
    }
    return real(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    return traced_sync(fd, real_fdatasync);
}

int fsync(int fd)
{
    REAL(fsync);
    return traced_sync(fd, real_fsync);
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate);
    char path[PATH_MAX];
    int wal = wal_fd(fd, path);
    int rc = real_ftruncate(fd, len);
    if (rc == 0 && wal)
        emit('T', path, (uint64_t)len, 0, NULL, 0);
    return rc;
}

int ftruncate64(int fd, off_t len)
{
    return ftruncate(fd, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    REAL(posix_fallocate);
    char path[PATH_MAX];
    int wal = wal_fd(fd, path);
    int rc = real_posix_fallocate(fd, off, len);
    if (rc == 0 && wal)
        emit('F', path, (uint64_t)off, (uint64_t)len, NULL, 0);
    return rc;
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    return posix_fallocate(fd, off, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate);
    char path[PATH_MAX];
    int wal = wal_fd(fd, path);
    int rc = real_fallocate(fd, mode, off, len);
    /* Only a plain allocation (mode 0) is understood by the reader; any
     * other mode is traced as 'X', which the reader refuses. */
    if (rc == 0 && wal)
        emit(mode == 0 ? 'F' : 'X', path, (uint64_t)off, (uint64_t)len, NULL, 0);
    return rc;
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    return fallocate(fd, mode, off, len);
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    int wal = tracing() && (is_wal_path(from) || is_wal_path(to));
    char a[PATH_MAX], b[PATH_MAX];
    if (wal) {
        abs_path(from, a);
        abs_path(to, b);
    }
    int rc = real_rename(from, to);
    if (rc == 0 && wal)
        emit('R', a, 0, 0, b, strlen(b));
    return rc;
}

int unlink(const char *path)
{
    REAL(unlink);
    int wal = tracing() && is_wal_path(path);
    char a[PATH_MAX];
    if (wal)
        abs_path(path, a);
    int rc = real_unlink(path);
    if (rc == 0 && wal)
        emit('U', a, 0, 0, NULL, 0);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags)
{
    REAL(unlinkat);
    char a[PATH_MAX];
    int wal = tracing() && is_wal_path(path);
    if (wal) {
        if (path[0] == '/' || dirfd == AT_FDCWD || !fd_path(dirfd, a))
            abs_path(path, a);
        else
            snprintf(a + strlen(a), PATH_MAX - strlen(a), "/%s", path);
    }
    int rc = real_unlinkat(dirfd, path, flags);
    if (rc == 0 && wal)
        emit('U', a, 0, 0, NULL, 0);
    return rc;
}

static int traced_open(int fd, int flags)
{
    char path[PATH_MAX];
    if (fd >= 0 && (flags & (O_CREAT | O_TRUNC)) && wal_fd(fd, path))
        emit('O', path, (uint64_t)flags, 0, NULL, 0);
    return fd;
}

int open(const char *path, int flags, ...)
{
    REAL(open);
    OPEN_MODE(mode, flags);
    return traced_open(real_open(path, flags, mode), flags);
}

int open64(const char *path, int flags, ...)
{
    REAL(open64);
    OPEN_MODE(mode, flags);
    return traced_open(real_open64(path, flags, mode), flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(openat);
    OPEN_MODE(mode, flags);
    return traced_open(real_openat(dirfd, path, flags, mode), flags);
}
