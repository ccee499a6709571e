/* daemon/server_internal.h: what the daemon's loop files share: the
 * server, its listeners, connections and request slots, and the functions
 * one file calls in another (server.c has the map of the files).
 *
 * Thread model: everything here runs on the loop thread, one callback at
 * a time, so nothing is locked. The one exception is on_flush
 * (batch.c): wal_writer_flush runs on the libuv thread pool while
 * s->flushing, and touches only the WAL writer, which the loop leaves
 * alone until after_flush (feed.c's WAL reads run there too, on buffers
 * of their own).
 *
 * Ownership: the server owns its connections (s->conns) and its free list
 * of request slots; a connection owns the slots of its FIFO. A slot of a
 * mutation is also linked (bnext) in the server's queue or in a batch, and
 * while in_batch it stays allocated even when its connection closes: the
 * batch hands it back (batch_release), and a closed connection is freed
 * once its last slot is gone and its handle closed. Nothing outside
 * daemon/ includes this header. */
#ifndef HALLQ_SERVER_INTERNAL_H
#define HALLQ_SERVER_INTERNAL_H

#include "daemon/feed.h"
#include "daemon/metrics.h"
#include "daemon/server.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct server server;
typedef struct conn conn;

/* REQ_NEW: parsed, not run (a direct op waits for the head of its FIFO,
 * config.reload too); REQ_HELD: a mutation parsed behind a direct op of its
 * connection that has not run yet (it joins the queue once that op ran, so
 * the op never sees it); REQ_QUEUED: in the queue or a batch; REQ_DONE:
 * answered. */
enum { REQ_NEW, REQ_HELD, REQ_QUEUED, REQ_DONE };

/* A request slot: one per request, in its connection's FIFO. */
typedef struct req {
    struct req *next;  /* in the connection's FIFO, or the free list */
    struct req *bnext; /* in the server's mutation queue or batch */
    conn *c;
    uint64_t id;
    const hall_op_def *def;
    int state;
    bool in_batch;    /* in the mutation queue or the batch in flight: the
                       * answer (even an error) waits for the batch's end */
    bool close_after; /* the response ends the connection */
    bool dropped;     /* failed on its own while its batch was applied: the
                       * batch is run again without it (batch_apply) */
    proto_err code;   /* how it was answered (for metrics, when it goes out) */
    proto_buf body;   /* the request's frame body (mutations) */
    proto_buf out;    /* the response frame */
} req;

/* A listener's or a connection's libuv handle: TCP or a Unix socket. An
 * HTTP request's conn (http_api.c) has no socket of its own: a timer stands in
 * for it, so that conn_close's uv_close defers the free as for the others. */
typedef union hq_stream {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_stream_t stream;
    uv_handle_t handle;
} hq_stream;

/* A listening socket; its tokens may take these roles. */
typedef struct listener {
    hq_stream h;
    server *srv;
    bool is_unix;
    uint32_t roles;
    bool open;
} listener;

/* A client connection (conn.c). */
struct conn {
    hq_stream h;
    server *srv;
    listener *l;
    conn *prev, *next;
    hall_actor actor;
    bool authed;
    bool strict;          /* hello {strict: true}: unknown args are bad_request */
    uint64_t warned_args; /* ops (bits) whose unknown args were logged once */
    bool reading;
    bool closing; /* no more requests are read; close once output is out */
    bool closed;  /* uv_close called */
    bool handle_gone;
    bool parsing;      /* inside conn_read_frames: pump must not re-enter it */
    bool parse_paused; /* frames wait in the framer until hello has run */
    proto_framer in;
    req *head, *tail;
    uint32_t inflight;
    /* Group commit (gcommit.c): when its last request was answered by a
     * sync (ns, 0: none outstanding), how long it took to send again
     * (a running mean, ns), and the hold it is awaited in (0: none). */
    uint64_t gc_answered_ns, gc_gap_ns, gc_epoch;
    feed_sub sub; /* events (daemon/feed.h) */
    /* Limits (loop ms): when it connected, since when a frame begun has
     * been waiting for its rest (0: none), a kiosk's request tokens. */
    uint64_t born_ms, partial_since;
    double tokens;
    uint64_t tokens_at;
    proto_buf wbuf[2]; /* [writing] is being written, the other collects */
    int writing;
    bool write_busy;
    uv_write_t wreq;
    /* An HTTP request's conn (daemon/http_api.c), else NULL: it reads no
     * socket (http_api.c hands it its frames, conn_take_frame), and its output
     * goes to http_conn_flush, which turns the answer frames into the HTTP
     * response. */
    struct http_call *http;
};

/* Group commit (gcommit.c, docs/PERFORMANCE.md): after a sync, the
 * connections it answered that usually send again at once are awaited, and
 * the next sync is held (the disk idle) until they have, or until the hold
 * ends, so that one sync carries every waiting request rather than the
 * half that happened to arrive while the last one was written. */
typedef struct gcommit {
    uint64_t epoch;       /* of the current hold's awaited connections */
    uint32_t awaited;     /* connections awaited and not yet back */
    bool holding;         /* the pending batch is held for them */
    bool timed_out;       /* the hold's timer fired */
    uint64_t answered_ns; /* when the last sync's answers went out */
    uint64_t hold_ns;     /* how long a hold may last (from the sync time) */
    uint64_t sync_ns;     /* a running mean of a flush's duration */
    uint64_t flush_ns;    /* when the flush in flight started */
    uint32_t p_reqs;      /* requests in the pending batch */
    uv_timer_t timer;     /* ends a hold whose connections did not all come */
    int tfd;              /* ... a timerfd, for microseconds (-1: the timer) */
    uv_poll_t poll;       /* ... polled on the loop */
    /* What the syncs carried, for the log at exit and benchmarks. */
    uint64_t syncs, reqs, records, left, holds, hold_timeouts;
    uint64_t hold_began, held_ns; /* the hold in force began; all holds lasted */
    bool auto_hold;               /* wal.commit_hold_us is auto */
    uint32_t miss;                /* share of recent holds the timer ended (1/256) */
    uint32_t probe;               /* counts holds skipped while most miss */
    uint64_t hist[16];            /* syncs by requests carried: [i] holds 2^i .. 2^(i+1)-1 */
} gcommit;

/* The one server of a hallqd (server_run makes it). */
struct server {
    uv_loop_t loop;
    const server_options *opt;
    hall *h;
    hall **hp; /* the caller's: a restore from the WAL reopens the hall */
    hall_store *st;
    wal_writer *w;
    listener tcp, unix_, http;
    struct http_face *hf; /* the HTTP listener's H2O context (http.c), or NULL */
    conn *conns;
    uint32_t n_conns;

    msgpack_zone zone;
    req *free_reqs;
    proto_buf result, payload;
    proto_buf strip; /* a mutation without its unknown args */

    /* Mutations waiting for the next batch, and the batch in flight. */
    req *q_head, *q_tail;
    req *b_head;
    MDB_txn *st_txn;    /* the state txn: every batch since the checkpoint */
    MDB_txn *b_txn;     /* a batch's txn while it is applied, nested in st_txn */
    uint64_t b_records; /* records in the batch in flight */
    bool b_reload;      /* ... and it holds the SIGHUP config */
    /* The batch applied while the one in flight is written (pending): its
     * records wait in the WAL writer, its answers with its requests. */
    bool p_open, p_reload;
    req *p_head, *p_tail;
    uint64_t p_records;
    uint64_t ckpt_records; /* durable records in st_txn */
    uv_timer_t ckpt_timer; /* a checkpoint checkpoint_ms after the first of them */
    /* Reasons to stop applying until everything applied is durable. */
    bool ckpt_due;        /* the timer fired with batches in flight */
    bool cfg_dirty;       /* a config change not yet checkpointed */
    bool reads_waiting;   /* a read waits for the state to be durable */
    int need_room;        /* MDB_MAP_FULL or MDB_TXN_FULL met while a batch flew */
    proto_buf b_events;   /* events not yet sent: per record, lsn(8) len(4) n(4) bytes */
    size_t b_events_mark; /* where the batch being applied began in b_events */
    wal_mark b_mark;      /* ... and in the WAL writer's pending records */
    feed feed;            /* subscribers, the ring, catch-ups (daemon/feed.c) */
    uv_work_t work;
    int flush_rc;
    bool flushing;
    uv_check_t kick;
    uv_idle_t kick_idle;  /* keeps the loop's poll from blocking while a kick waits */
    uv_timer_t due_timer; /* fires when a time-driven record falls due */
    bool due_pending;
    int64_t last_rec_ms;   /* time of the newest record appended: a floor */
    int64_t b_clock;       /* the hall's clock after the batch in flight */
    int64_t durable_clock; /* ... after the last durable one */

    /* A config read on SIGHUP, to be put in force by the next batch. */
    char *reload_text;
    size_t reload_len;
    bool reload_in_batch;

    bool wal_failed;
    /* Why changes are refused until a restart (wal_failed), for answers. */
    const char *failed_why;
    /* The state lost effects that were acknowledged and could not catch up
     * from the WAL: nothing is read from it until a restart. */
    bool state_stale;
    int stale_rc;               /* the mdb_rc to try the catch-up again with */
    bool stale_stopped_changes; /* changes stopped by it, not by the WAL */
    size_t rec_max;             /* the largest record payload the WAL takes */
    /* The map is nearly full and could not grow: batches are refused (a
     * checkpoint that meets MDB_MAP_FULL would lose the state txn) until a
     * quiet point grows it. */
    bool map_stuck;
    uint64_t grow_tried; /* loop ms of the last grow tried while stuck */
    bool disk_low;
    uint64_t disk_checked;
    int64_t manual_base;
    uint64_t ro_lsn; /* read-only: the state's applied LSN */
    bool stopping;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain_timer;
    uv_timer_t sweep_timer; /* hello and partial-frame timeouts */
    MDB_txn *rtxn;          /* reused read transaction */
    gcommit gc;
    uint32_t q_len;  /* requests in the mutation queue */
    metrics metrics; /* GET /metrics (daemon/metrics.h) */
};

/* ---- server.c: the loop's time, the stop ---- */

int64_t server_wall_ms(void);
/* The time a new record is stamped with: the manual clock, or the wall
 * clock never behind the last record. */
int64_t server_now(server *s);
/* server_now as of the last durable batch (ping). */
int64_t server_durable_now(server *s);
/* Stopping, and everything answered and written out: stops the loop. */
void server_maybe_finish_stop(server *s);

/* ---- direct.c: requests that write no record ---- */

/* Runs r (hello, subscribe, ping, digest, a read) and answers it. */
void direct_exec(server *s, conn *c, req *r);
/* Whether op, at the head of its FIFO, must wait for a quiet point. */
bool direct_waits(const server *s, hall_op op);

/* ---- conn.c: requests and connections ---- */

void req_free(server *s, req *r); /* back to the free list (not while in_batch) */
/* Answer r (its frame goes to r->out; the slot leaves with its FIFO). */
void req_error(req *r, proto_err code, const char *msg);
void req_ok(req *r, const proto_buf *result);
void conn_free(conn *c); /* once closed, its handle gone, no slot left */
void conn_close(conn *c);
void conn_stop_reading(conn *c);
/* Runs what reached the head of c's FIFO and writes the answers out (it
 * may close c). */
void conn_pump(conn *c);
void conn_accept(uv_stream_t *ls, int status); /* a listener's callback */
/* One request frame's body for c, as if read from its socket (http_api.c):
 * parsed, checked and queued or run exactly as a TCP client's. */
void conn_take_frame(conn *c, const uint8_t *body, uint32_t len);
void conn_sweep(uv_timer_t *t);      /* once a second: timeouts, the catch-up retried */
extern const feed_ops conn_feed_ops; /* a connection's output, lent to feed.c */

/* ---- checkpoint.c: the state txn ---- */

/* The txn reads see (the state txn, or read-only the renewed read txn);
 * NULL and *rc when LMDB cannot begin one. End it with state_read_end. */
MDB_txn *state_read(server *s, int *rc);
void state_read_end(server *s, MDB_txn *txn);
/* Whether the state txn holds effects not yet durable. */
bool state_nondurable(const server *s);
/* Drops the state txn and catches up from the WAL; 0, or -1 (then nothing
 * is served from the state until a retry succeeds). */
int state_restore(server *s, int mdb_rc, const char *why);
/* Commits the state txn (only when state_nondurable is false); 0, or what
 * state_restore returned. */
int state_checkpoint(server *s);
bool state_want_quiet(const server *s);
/* Everything applied is durable: checkpoint when owed, grow the map. */
void state_quiet_point(server *s);
void state_ckpt_arm(server *s);

/* ---- batch.c: the mutation queue and batches ---- */

void batch_enqueue(server *s, req *r); /* a batch starts at the end of the loop turn */
void batch_maybe_start(server *s);
/* batch_maybe_start at the end of this loop turn (after its reads). */
void batch_kick(server *s);
#define BATCH_MAX_REQS 8192    /* requests in one batch at most */
void batch_arm_due(server *s); /* the timer of the next time-driven record */

/* ---- gcommit.c: how long the next sync waits for its requests ---- */

void gc_init(server *s);
void gc_free(server *s); /* after the loop closed */
/* A request from c arrived (any op). */
void gc_arrival(server *s, conn *c);
/* c is closing: no longer awaited. */
void gc_conn_gone(server *s, conn *c);
/* A flush starts with `reqs` requests and `records` records; another
 * `left` requests wait in the queue. */
void gc_flush_started(server *s, uint64_t reqs, uint64_t records, uint64_t left);
/* The flush in flight is durable and head is about to be answered: marks
 * the connections to await. */
void gc_flush_done(server *s, req *head);
/* Whether a batch ready to be written should wait for awaited requests. */
bool gc_should_hold(server *s);
/* Whether the hold in force should end now. */
bool gc_hold_over(server *s);
/* Ends the hold in force (the caller writes the pending batch). */
void gc_end_hold(server *s);
/* The figures of the syncs so far, into the log. */
void gc_log(server *s);

/* ---- reload.c: config.reload and SIGHUP ---- */

void reload_at_head(server *s, req *r); /* config.reload at the head of its FIFO */
void reload_on_signal(server *s);

#endif
