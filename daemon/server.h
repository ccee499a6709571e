/* daemon/server.h: the event loop: listeners, connections, and the
 * durable request path (see docs/DESIGN.md). */
#ifndef HALLQ_SERVER_H
#define HALLQ_SERVER_H

#include "daemon/hall/hall.h"
#include "wal/wal.h"

#include <stdbool.h>

typedef struct server_options {
    const char *config_path; /* re-read on SIGHUP */
    const char *data_dir;
    const char *tcp_addr;  /* HOST:PORT */
    const char *unix_path; /* socket path */
    bool manual_clock;
    bool fsync;
} server_options;

/* Runs the daemon until SIGTERM/SIGINT. The hall, store and writer are
 * ready (recovered). Returns the process exit code. */
int server_run(const server_options *o, hall *h, hall_store *st, wal_writer *w);

#endif
