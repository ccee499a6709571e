/* daemon/log.h: the daemon's log, one line per event on stderr.
 * Lines read "hallqd: LEVEL: message"; the ready line is printed apart. */
#ifndef HALLQ_LOG_H
#define HALLQ_LOG_H

enum { HQ_LOG_ERROR = 0, HQ_LOG_WARN = 1, HQ_LOG_INFO = 2 };

void hq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
