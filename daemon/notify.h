/* daemon/notify.h: tells systemd (Type=notify) how the daemon is doing:
 * STATUS= while a long recovery replays, READY=1 once it serves,
 * STOPPING=1 at SIGTERM, WATCHDOG=1 while the loop runs when the unit sets
 * WatchdogSec. Without NOTIFY_SOCKET (not under systemd) each is a no-op. */
#ifndef HALLQ_NOTIFY_H
#define HALLQ_NOTIFY_H

#include <stdint.h>

/* Sends `state` (e.g. "READY=1\nSTATUS=...") to systemd, if it listens. */
void hq_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* WATCHDOG=1 when the unit sets WatchdogSec (called every second from
 * the loop: WatchdogSec must be 2 s or more). */
void hq_notify_watchdog(void);
/* The watchdog interval the unit asks for (us), 0 without one. */
uint64_t hq_notify_watchdog_us(void);

#endif
