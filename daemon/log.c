/* daemon/log.c: writes log lines to stderr, whole lines in one write so
 * they never interleave. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void hq_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info"};
    char line[1024];
    int n = snprintf(line, sizeof line, "hallqd: %s: ", names[level < 0 || level > 2 ? 0 : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
