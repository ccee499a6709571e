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

#include "shim.h"

static void hold(const char *path, int flags)
{
    if ((flags & O_ACCMODE) == O_RDONLY && !(flags & O_CREAT) && is_segment_path(path))
        hold_while(getenv("HALLQ_READ_HOLD"));
}

static int open_with(const char *sym, const char *path, int flags, mode_t mode)
{
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, sym);
    hold(path, flags);
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    OPEN_MODE(mode, flags);
    return open_with("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(mode, flags);
    return open_with("open64", path, flags, mode);
}
