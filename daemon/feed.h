/* daemon/feed.h: the events feed: subscribers, live events, and catching
 * up a `since` from memory or from the WAL (feed.c says how).
 *
 * The feed runs on the event loop; only its WAL reads run on the libuv
 * thread pool. A connection embeds a feed_sub and lends the feed its
 * output through feed_ops; it calls feed_unsubscribe before it goes. */
#ifndef HALLQ_FEED_H
#define HALLQ_FEED_H

#include "daemon/hall/hall.h"
#include "proto/proto.h"
#include "wal/wal.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define FEED_RING 16384       /* records' events kept in memory for subscribers back */
#define FEED_INDEX_EVERY 4096 /* one LSN -> offset sample per this many records */
#define FEED_READS_MAX 2      /* WAL reads on the thread pool at once (the WAL's sync needs one) */
#define FEED_READ_BYTES (8u << 20)   /* a catch-up read stops past this much of the WAL */
#define FEED_INDEX_BYTES (64u << 20) /* ... an indexing read past this much */
#define FEED_WAL_STARTS 4            /* catch-ups from the WAL one connection may start */
#define FEED_WAL_WINDOW_MS 60000     /* ... within this long */

typedef struct feed feed;
typedef struct feed_sub feed_sub;
typedef struct feed_read feed_read;

/* What a subscriber sees: its topics (bits of HALL_TOPIC_*; 0: not
 * subscribed) and, for a department, only its own cases' events. */
typedef struct feed_filter {
    uint32_t topics;
    bool dept;
    char dept_id[HALL_ID_MAX + 1];
} feed_filter;

/* What the feed needs from the connection holding a feed_sub. */
typedef struct feed_ops {
    /* The buffer its event frames are appended to; NULL when it takes no
     * more (it is closing). */
    proto_buf *(*out)(feed_sub *sub);
    size_t (*out_len)(feed_sub *sub); /* bytes it has not sent yet */
    /* Frames were added outside the connection's own pump: send them
     * (this may close the connection, and so unsubscribe it). */
    void (*wake)(feed_sub *sub);
} feed_ops;

/* One subscriber, embedded in its connection (zeroed with it). Its fields
 * belong to feed.c. */
struct feed_sub {
    feed_sub *prev, *next; /* the feed's subscribers */
    feed_sub *wnext;       /* waiting for a read slot */
    feed_filter flt;
    char who[48];      /* "role:id", for the log */
    uint64_t next_lsn; /* catching up: the next LSN to send; 0: live */
    wal_pos cursor;    /* where its last WAL read stopped (if cursor.lsn == next_lsn) */
    feed_read *rd;     /* its WAL read in flight (at most one) */
    bool waiting;      /* queued for a read slot */
    bool announce;     /* log where the first WAL read of this catch-up starts */
    uint32_t gen;      /* each subscribe bumps it: an older read's events are dropped */
    size_t budget;     /* the output a read may fill (half the output cap) */
    uint64_t starts[FEED_WAL_STARTS]; /* loop ms of its latest catch-ups from the WAL */
};

typedef struct feed_ring_slot {
    uint64_t lsn;
    uint64_t at_ms; /* the record's time: every event's data carries it */
    uint32_t n;
    proto_buf ev;
} feed_ring_slot;

struct feed {
    uv_loop_t *loop;
    const feed_ops *ops;
    char wal_dir[4096]; /* "": no catch-up from the WAL (read-only) */
    uint64_t durable;   /* the last LSN whose events went out (feed_dispatch) */
    bool stopping;
    feed_sub *subs;
    uint32_t n_subs;
    feed_sub *wait_head, *wait_tail;
    uint32_t reads; /* WAL reads in flight, the index's included */
    /* The events of the latest FEED_RING records that had any. Every
     * record with events up to ring_evicted is no longer (or never was)
     * in the ring. */
    feed_ring_slot *ring;
    uint32_t ring_head, ring_len;
    uint64_t ring_evicted;
    /* The LSN -> offset index: the place of every FEED_INDEX_EVERY-th
     * record, in LSN order, and where indexing goes on (idx_next). */
    wal_pos *idx;
    size_t idx_len, idx_cap;
    wal_pos idx_next;
    uint64_t idx_goal; /* the durable LSN at start: the first pass ends there */
    bool idx_busy, idx_ready, idx_failed;
    uint64_t idx_t0;
};

/* Sets f up on loop; wal_dir NULL: no catch-up from the WAL. Every record
 * up to `durable` is in the WAL only; indexing it starts on the thread
 * pool. Returns 0 or -ENOMEM. */
int feed_init(feed *f, uv_loop_t *loop, const feed_ops *ops, const char *wal_dir, uint64_t durable);
/* Stopping: no new WAL read starts (those in flight end on their own). */
void feed_stop(feed *f);
/* After the loop ran out (no read in flight): frees what f holds. */
void feed_free(feed *f);

/* The LSN of the last record whose events went out (subscribe's seq). */
uint64_t feed_seq(const feed *f);

/* Subscribes sub (again) to `topics` as `who`; with a since (since <
 * feed_seq), it is caught up from LSN since + 1 before it goes live.
 * Returns 0, or PROTO_E_LIMIT with a message in err when this connection
 * already started FEED_WAL_STARTS catch-ups from the WAL within
 * FEED_WAL_WINDOW_MS (nothing changed then). */
int feed_subscribe(feed *f, feed_sub *sub, const hall_actor *who, uint32_t topics, bool has_since,
                   uint64_t since, char *err, size_t errlen);
/* The connection goes: sub leaves the feed (a read in flight is dropped
 * when it ends). */
void feed_unsubscribe(feed *f, feed_sub *sub);
/* From the connection's pump: catches sub up by one chunk while its
 * output is below `budget`, from memory at once or from the WAL off the
 * loop (ops->wake then says when its events are in the output). True when
 * it added events now: the connection sends them and pumps again. */
bool feed_pump(feed *f, feed_sub *sub, size_t budget);

/* Sends the events of the records up to `upto` (now durable) from
 * `events` (per record: a header of FEED_EV_HEADER bytes, lsn(8 BE)
 * at_ms(8 BE) len(4 BE) n(4 BE), then n events, each [topic,
 * [department...], data]) and keeps them in the ring; what is left in
 * `events` belongs to later records. */
#define FEED_EV_HEADER 24
void feed_dispatch(feed *f, proto_buf *events, uint64_t upto);
/* The events of record `lsn` could not be kept (out of memory): a
 * catch-up through it reads the WAL. */
void feed_forget(feed *f, uint64_t lsn);

#endif
