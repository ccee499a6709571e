/* daemon/log.h: the daemon's log, one line per event on stderr.
 * Lines read "hallqd: LEVEL: message"; the ready line is printed apart.
 * Under systemd (JOURNAL_STREAM names stderr) each line begins with its
 * journald priority, "<3>" for an error ... "<7>" for debug, so that
 * `journalctl -p warning` filters them. Lines below the level set by
 * --log-level (default info) are not written. */
#ifndef HALLQ_LOG_H
#define HALLQ_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum { HQ_LOG_ERROR = 0, HQ_LOG_WARN = 1, HQ_LOG_INFO = 2, HQ_LOG_DEBUG = 3 };

void hq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The level of "error", "warn", "info" or "debug", or -1. */
int hq_log_level_of(const char *name);
/* Lines above `level` are not written from now on. */
void hq_log_set_level(int level);
/* The level from the config's log.level ("" or NULL: info), unless
 * --log-level set one (hq_log_pin_level): at start and on a reload. */
void hq_log_config_level(const char *name);
/* --log-level: from now on the config's log.level is ignored. */
void hq_log_pin_level(int level);
/* Whether a line of `level` would be written. */
bool hq_log_enabled(int level);
/* Looks at JOURNAL_STREAM: whether stderr is the journal (then lines get
 * the priority prefix). Called once at start; again after stderr changed. */
void hq_log_detect_journal(void);

/* A rate limit for lines a client can cause (refused hellos, bad frames):
 * at most HQ_LOG_BURST lines per HQ_LOG_WINDOW_MS; the lines dropped are
 * counted in one line when the next window begins. Zero-initialised. */
enum { HQ_LOG_BURST = 10, HQ_LOG_WINDOW_MS = 10000 };
typedef struct hq_log_limit {
    uint64_t window_start;
    uint32_t n, dropped;
} hq_log_limit;
/* Logs the line if `lim` allows it at now_ms (any monotonic ms); returns
 * whether it was written. */
bool hq_log_limited(hq_log_limit *lim, uint64_t now_ms, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
