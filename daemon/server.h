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
    const char *http_addr; /* HOST:PORT of the HTTP face; NULL or "": none */
    bool manual_clock;
    bool fsync;
    uint32_t checkpoint_ms; /* LMDB writes out the durable batches this often (0: every batch) */
    bool read_only;         /* serve the state as it is: no WAL, mutations forbidden */
    int64_t fixed_now_ms;   /* read-only: the moment served (0: the state's clock) */
    uint8_t pii_key[32];    /* the hall's key for applicants' ids (daemon/pii.h) */
} server_options;

/* Runs the daemon until SIGTERM/SIGINT. The hall, store and writer are
 * ready (recovered); w is NULL with read_only. *h may be replaced by a new
 * hall (when the state is restored from the WAL). Returns the process exit
 * code. */
int server_run(const server_options *o, hall **h, hall_store *st, wal_writer *w);

#endif
