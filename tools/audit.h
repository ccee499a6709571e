/* tools/audit.h: the offline commands of hallq, which work on a hall's
 * files rather than talk to a daemon: `hallq wal ...`, `hallq state ...`,
 * `hallq report ...`. They read the WAL (never write it) and build states
 * in directories of their own, so they are safe beside a running daemon.
 *
 * audit.c has the commands and what they share (the hall of a log, times
 * in the hall's local time, progress on a terminal). */
#ifndef HALLQ_TOOLS_AUDIT_H
#define HALLQ_TOOLS_AUDIT_H

#include "daemon/hall/config.h"
#include "wal/wal.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Runs `hallq WORD ...` when WORD is an offline command (av[0] is WORD);
 * returns its exit status, or -1 when WORD is not one. */
int audit_main(int ac, char **av);

/* The hall config of a log: parsed from the log's first config record.
 * NULL with a message in err (no such dir, no config record, bad text). */
hall_config *audit_log_config(const char *wal_dir, char *err, size_t errlen);

/* "2026-11-24 10:32:05" in the hall's local time (out: 20 bytes). */
void audit_time_format(const hall_config *cfg, int64_t ms, char out[20]);
/* Parses a time given on the command line: ms since the epoch (digits),
 * or "YYYY-MM-DD[ T]HH:MM[:SS]" / "YYYY-MM-DD" in the hall's local time.
 * 0, or -1 if malformed. */
int audit_time_parse(const hall_config *cfg, const char *s, int64_t *ms);

/* Progress on stderr when it is a terminal, quiet when piped. */
typedef struct audit_progress {
    bool tty;
    const char *what;
    uint64_t total; /* 0: unknown */
} audit_progress;
void audit_progress_init(audit_progress *p, const char *what, uint64_t total);
void audit_progress_show(audit_progress *p, uint64_t done);
void audit_progress_end(audit_progress *p);

/* The commands of the other audit_*.c files; av[0] is the first word
 * after the command's name (e.g. after "wal dump"). Each returns the exit
 * status: 0 done, 1 failure (named on stderr), 2 usage. */
int audit_wal_dump(int ac, char **av);    /* audit_dump.c */
int audit_wal_history(int ac, char **av); /* audit_dump.c */
int audit_report(int ac, char **av);      /* audit_report.c */
int audit_wal_archive(int ac, char **av); /* audit_archive.c */
int audit_backup(int ac, char **av);      /* backup.c */

/* "DIR/wal" when DIR holds a wal/, else DIR itself (NULL: ./hallq-data). */
void audit_wal_dir(const char *arg, char *out, size_t cap);

/* True for a segment file's name: 20 digits, ".wal". */
bool audit_segment_name(const char *name);
/* 1 when the two files hold the same bytes, 0 when not, -errno. */
int audit_files_equal(const char *a, const char *b);
/* Copies a file durably (audit.c): see there. 0, or -1 with err set. */
int audit_copy_file(const char *from, const char *to, mode_t mode, bool excl, char *err,
                    size_t errlen);

/* One log made of a live log directory and its archive (`hallq wal
 * archive` moves closed segments there), for `--archive DIR`: a new
 * temporary directory of symlinks to the segments of both, which wal_scan
 * reads as one log. A segment in both places (an archive run stopped
 * between its copy and its removal) must hold the same bytes in both; the
 * view then shows it once. With archive NULL the view is wal_dir itself.
 * Returns 0, or -1 with a message in err (nothing is left behind then);
 * audit_view_close removes the temporary directory. */
typedef struct audit_view {
    char dir[PATH_MAX]; /* the log to scan */
    bool temp;          /* dir is a temporary view */
} audit_view;
int audit_view_open(audit_view *v, const char *wal_dir, const char *archive, char *err,
                    size_t errlen);
void audit_view_close(audit_view *v);

#endif
