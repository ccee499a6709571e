/* daemon/notify.c: sd_notify (libsystemd), see notify.h. */
#include "daemon/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

void hq_notify(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET"))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sd_notify(0, msg);
}

uint64_t hq_notify_watchdog_us(void)
{
    uint64_t us = 0;
    return sd_watchdog_enabled(0, &us) > 0 ? us : 0;
}

void hq_notify_watchdog(void)
{
    static int enabled = -1;
    if (enabled < 0)
        enabled = hq_notify_watchdog_us() != 0;
    if (enabled)
        sd_notify(0, "WATCHDOG=1");
}
