/* daemon/hall/events.h: the events a record causes (see events.c). The
 * emit and collect functions are for daemon/hall/ only; the topic names and
 * hall_events() are what the daemon uses to fan events out. */
#ifndef HALLQ_HALL_EVENTS_H
#define HALLQ_HALL_EVENTS_H

#include "daemon/hall/hall_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Topics of PROTOCOL.md; the wire names come from hall_topic_name. */
enum {
    HALL_TOPIC_CALL,
    HALL_TOPIC_LINE,
    HALL_TOPIC_CASE,
    HALL_TOPIC_DEADLINE,
    HALL_TOPIC_WINDOW,
    HALL_TOPIC__COUNT
};

const char *hall_topic_name(int topic);
int hall_topic_from_name(const char *s, size_t n); /* -1 if unknown */

/* The events of the last mutation hall_exec ran: *n events packed back to
 * back, each [topic, [department...], data]. Valid until the next
 * hall_exec. */
const uint8_t *hall_events(const hall *h, size_t *len, uint32_t *n);

/* ---- inside daemon/hall/ ---- */

/* How many tickets wait in a line (all classes): 0 or an LMDB code. The
 * tickets' file provides it (hall_line_waiting); events.c only calls it. */
typedef int (*hall_waiting_fn)(hall *h, MDB_txn *txn, const char *line, uint32_t *waiting);

/* Called by hall_exec around a handler: before resets the collection and
 * notes the lines' waiting counts (read with line_waiting); after adds the
 * events the op's result and the changed counts make. Both return 0 or an
 * LMDB/errno code. */
int hall_events_before(hall *h, MDB_txn *txn, const hall_request *r, hall_waiting_fn line_waiting);
int hall_events_after(hall *h, MDB_txn *txn, const hall_request *r, const proto_buf *result);
void hall_events_free(hall *h);
/* From hall_line_store: a line's waiting count as stored by the op. */
void hall_events_line_stored(hall *h, const char *line, uint32_t waiting);

/* A case's events, from case.c when it stores a case. */
void hall_emit_case(hall *h, const char *case_no, const char *state, const char *const *deps,
                    int n_deps);
/* Rules 3's form: {case_no, state, departments: [{department, state}...],
 * change} (the feed adds at_ms, the record's time, to every event). */
void hall_emit_case_v3(hall *h, const char *case_no, const char *state, const char *const *deps,
                       const char *const *dep_states, int n_deps, const char *change);
void hall_emit_deadline(hall *h, const char *case_no, bool overdue, const char *const *deps,
                        int n_deps);

#endif
