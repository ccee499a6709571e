/* daemon/log.c: writes log lines to stderr, whole lines in one write so
 * they never interleave. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int max_level = HQ_LOG_INFO;
static bool journal;
static bool pinned; /* --log-level given: log.level is ignored */

static const char *const names[] = {"error", "warn", "info", "debug"};
/* journald priorities (syslog's): err, warning, info, debug. */
static const char prio[] = {'3', '4', '6', '7'};

int hq_log_level_of(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return HQ_LOG_WARN;
    return -1;
}

void hq_log_set_level(int level)
{
    max_level = level < HQ_LOG_ERROR ? HQ_LOG_ERROR : level > HQ_LOG_DEBUG ? HQ_LOG_DEBUG : level;
}

void hq_log_pin_level(int level)
{
    hq_log_set_level(level);
    pinned = true;
}

void hq_log_config_level(const char *name)
{
    if (pinned)
        return;
    int l = name && name[0] ? hq_log_level_of(name) : -1;
    hq_log_set_level(l < 0 ? HQ_LOG_INFO : l);
}

bool hq_log_enabled(int level)
{
    return level <= max_level;
}

void hq_log_detect_journal(void)
{
    /* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected
     * stderr to; a stderr redirected elsewhere since does not match. */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
              (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void vlog(int level, const char *fmt, va_list ap)
{
    if (level < 0 || level > HQ_LOG_DEBUG)
        level = HQ_LOG_ERROR;
    if (level > max_level)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s%s%shallqd: %s: ", journal ? "<" : "",
                     journal ? (char[]){prio[level], 0} : "", journal ? ">" : "", names[level]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void hq_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

bool hq_log_limited(hq_log_limit *lim, uint64_t now_ms, int level, const char *fmt, ...)
{
    if (level > max_level)
        return false;
    if (lim->n == 0 || now_ms - lim->window_start >= HQ_LOG_WINDOW_MS) {
        if (lim->dropped)
            hq_log(level, "(%u more such lines were not logged in %u s)", lim->dropped,
                   HQ_LOG_WINDOW_MS / 1000);
        lim->window_start = now_ms;
        lim->n = 0;
        lim->dropped = 0;
    }
    if (lim->n >= HQ_LOG_BURST) {
        lim->dropped++;
        return false;
    }
    lim->n++;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
    return true;
}
