/* tests/faults/shim.h: what the LD_PRELOAD shims share: which paths are
 * the WAL's, the path behind a descriptor, the mode argument of open(2),
 * and a gate a test holds a call at while a file exists.
 *
 * Header only; every helper is static and marked unused, so that each
 * shim takes what it needs. */
#ifndef HALLQ_FAULTS_SHIM_H
#define HALLQ_FAULTS_SHIM_H

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define SHIM_UNUSED __attribute__((unused)) static

/* Declares `mode_t mode`: open's third argument when flags call for one
 * (O_CREAT, O_TMPFILE), else 0. A macro: va_start must stand in the
 * variadic function itself, after its last named argument `flags`. */
#define OPEN_MODE(mode, flags)                                                                     \
    mode_t mode = 0;                                                                               \
    if (((flags)&O_CREAT) || ((flags)&O_TMPFILE) == O_TMPFILE) {                                   \
        va_list open_mode_ap;                                                                      \
        va_start(open_mode_ap, flags);                                                             \
        mode = (mode_t)va_arg(open_mode_ap, int);                                                  \
        va_end(open_mode_ap);                                                                      \
    }

SHIM_UNUSED int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A segment file (*.wal). */
SHIM_UNUSED int is_segment_path(const char *path)
{
    return ends_with(path, ".wal");
}

/* A segment, or a new one not yet renamed into place (*.wal.tmp). */
SHIM_UNUSED int is_wal_path(const char *path)
{
    return is_segment_path(path) || ends_with(path, ".wal.tmp");
}

/* The absolute path of fd into out; 0 when it has none. */
SHIM_UNUSED int fd_path(int fd, char out[PATH_MAX])
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0)
        return 0;
    out[n] = 0;
    return 1;
}

/* While the file `gate` exists, waits (at most 60 s), having created
 * `gate`.held first so that the test knows a call is held. No gate (NULL,
 * or no such file): returns at once. */
SHIM_UNUSED void hold_while(const char *gate)
{
    if (!gate || access(gate, F_OK) != 0)
        return;
    char held[PATH_MAX];
    snprintf(held, sizeof held, "%s.held", gate);
    FILE *f = fopen(held, "w");
    if (f)
        fclose(f);
    for (int i = 0; i < 60000 && access(gate, F_OK) == 0; i++)
        usleep(1000);
}

#endif
