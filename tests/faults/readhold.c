/* tests/faults/readhold.c: an LD_PRELOAD shim that holds the reading of
 * the WAL, so a test can see what the daemon does while a read is slow.
 *
 *   HALLQ_READ_HOLD=PATH   while PATH exists, an open of a segment file
 *                          (*.wal) for reading only waits (at most 60 s),
 *                          having created PATH.held first
 *
 * Opens for writing (the WAL writer) pass through at once. The daemon
 * reads segments for reading only at start (recovery) and for the events
 * feed's catch-ups and index; a test creates PATH after start-up. */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hold(const char *path, int flags)
{
    const char *gate = getenv("HALLQ_READ_HOLD");
    size_t n = strlen(path);
    if (!gate || (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT) || n < 4 ||
        strcmp(path + n - 4, ".wal") != 0 || access(gate, F_OK) != 0)
        return;
    char held[PATH_MAX];
    snprintf(held, sizeof held, "%s.held", gate);
    FILE *f = fopen(held, "w");
    if (f)
        fclose(f);
    for (int i = 0; i < 6000 && access(gate, F_OK) == 0; i++)
        usleep(10000);
}

static int open_with(const char *sym, const char *path, int flags, va_list ap)
{
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, sym);
    mode_t mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
    hold(path, flags);
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int fd = open_with("open", path, flags, ap);
    va_end(ap);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int fd = open_with("open64", path, flags, ap);
    va_end(ap);
    return fd;
}
