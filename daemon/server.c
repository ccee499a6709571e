/* daemon/server.c: hallqd's event loop: start, listeners, signals, and a
 * stop that finishes what is in flight.
 *
 * The durable request path (docs/DESIGN.md) in short: a request takes a
 * slot in its connection's FIFO, and answers leave in FIFO order. A read
 * runs at the head of its FIFO on durable state. A mutation joins the
 * queue; a batch applies the queue in a txn nested in the state txn,
 * appends its records to the WAL, writes and syncs them on the thread
 * pool, and only then answers. LMDB holds the WAL applied, committed at
 * checkpoints. So nothing a client sees is ever ahead of the disk.
 *
 * The files (their types and shared functions in server_internal.h; each
 * file's header says more):
 *   server.c      this: server_run, the listeners, signals, the stop and
 *                 its drain, the loop's time (server_now)
 *   conn.c        connections: frames, the FIFO of request slots, output,
 *                 limits
 *   direct.c      the requests that write no record (hello, ping, reads,
 *                 subscribe), run at the head of their FIFO
 *   batch.c       the mutation queue and its batches: apply, log, flush,
 *                 answer; time-driven records; failed batches
 *   gcommit.c     group commit: when a batch ready to be written waits for
 *                 the clients the last sync answered
 *   checkpoint.c  the state txn, checkpoints, the quiet point, map growth,
 *                 the restore from the WAL after a failure
 *   reload.c      config.reload and SIGHUP: reading the config file
 *   feed.c        the events feed: subscribers, the ring, catch-ups
 *   http.c        the HTTP face (H2O): its listener, context, routing,
 *                 limits, headers, stop, GET /metrics; each request a conn
 *                 of its own that says hello and sends its op as a TCP
 *                 client would (http_api.c: POST /api/v1/OP and the call's
 *                 conn; http_sse.c: Server-Sent Events; http_json.c: JSON
 *                 <-> MessagePack; their shared types in http_internal.h);
 *                 the pages it serves are in http_pages.c
 *   metrics.c     the counters behind GET /metrics
 *
 * Stop (SIGTERM, SIGINT): the listeners close and reading stops; what is
 * in flight is finished and answered, then the last checkpoint is taken
 * and the loop ends. Clients that do not read their answers within
 * DRAIN_TIMEOUT_MS are closed (their answers stay unsent). */
#include "daemon/server_internal.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/notify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define DRAIN_TIMEOUT_MS 5000

/* ---- time ---- */

int64_t server_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The server's time: the manual clock, or the wall clock never going
 * behind the last record (record times only grow). */
int64_t server_now(server *s)
{
    int64_t last = hall_clock_ms(s->h);
    if (s->opt->read_only)
        return s->opt->fixed_now_ms > last ? s->opt->fixed_now_ms : last;
    if (s->opt->manual_clock)
        return last > s->manual_base ? last : s->manual_base;
    int64_t now = server_wall_ms();
    return now > last ? now : last;
}

/* server_now as of the last durable batch: the clock of a batch still in
 * flight (a clock.advance) is not shown before it is durable. */
int64_t server_durable_now(server *s)
{
    if (!s->flushing && !s->p_open)
        return server_now(s);
    int64_t last = s->durable_clock;
    if (s->opt->manual_clock)
        return last > s->manual_base ? last : s->manual_base;
    int64_t now = server_wall_ms();
    return now > last ? now : last;
}

/* The LSN of the last durable record (read-only: the state's). */
static uint64_t durable_lsn(server *s)
{
    return s->w ? wal_writer_durable_lsn(s->w) : s->ro_lsn;
}

/* ---- start, signals, stop ---- */

static void on_listener_closed(uv_handle_t *hd)
{
    (void)hd;
}

void server_maybe_finish_stop(server *s)
{
    if (!s->stopping || state_nondurable(s) || s->q_head)
        return;
    for (conn *c = s->conns; c; c = c->next)
        if (c->head || c->wbuf[0].len || c->wbuf[1].len)
            return;
    /* Everything answered and written: close what is left and stop. */
    state_checkpoint(s);
    conn *next;
    for (conn *c = s->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    /* HTTP connections end once their last response is out (H2O closes
     * them after it, the shutdown requested); http.c calls back then. */
    if (http_draining(s))
        return;
    if (!uv_is_closing((uv_handle_t *)&s->drain_timer))
        uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_stop(&s->loop);
}

static void on_drain_timeout(uv_timer_t *t)
{
    server *s = t->data;
    hq_log(HQ_LOG_WARN, "shutdown: clients did not read their answers in time; closing them");
    conn *next;
    for (conn *c = s->conns; c; c = next) {
        next = c->next;
        /* Answers still queued for them stay unsent, but they are durable. */
        proto_buf_reset(&c->wbuf[1 - c->writing]);
        conn_close(c);
    }
    http_abandon(s);
    server_maybe_finish_stop(s);
}

static void begin_stop(server *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    hq_notify("STOPPING=1\nSTATUS=stopping (%s)", why);
    feed_stop(&s->feed);
    hq_log(HQ_LOG_INFO, "%s: stopping (finishing what is in flight)", why);
    if (s->tcp.open)
        uv_close(&s->tcp.h.handle, on_listener_closed);
    if (s->unix_.open) {
        uv_close(&s->unix_.h.handle, on_listener_closed);
        unlink(s->opt->unix_path);
    }
    if (s->http.open)
        uv_close(&s->http.h.handle, on_listener_closed);
    http_stop(s);
    s->tcp.open = s->unix_.open = s->http.open = false;
    uv_timer_stop(&s->due_timer);
    uv_timer_stop(&s->sweep_timer);
    for (conn *c = s->conns; c; c = c->next)
        conn_stop_reading(c);
    if (s->gc.holding)
        batch_kick(s); /* a held batch goes out now (gc_hold_over) */
    uv_timer_init(&s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_timer_start(&s->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
    server_maybe_finish_stop(s);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    server *s = sig->data;
    if (signum == SIGHUP) {
        reload_on_signal(s);
        return;
    }
    begin_stop(s, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Opens TCP listener l on addr (HOST:PORT, port 0: any) for `roles`,
 * accepting with cb; the bound address goes to bound. */
static int listen_tcp(server *s, listener *l, const char *what, const char *addr, uint32_t roles,
                      uv_connection_cb cb, char *bound, size_t blen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        hq_log(HQ_LOG_ERROR, "--%s %s: expected HOST:PORT", what, addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    int port = atoi(colon + 1);
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    if (rc) {
        hq_log(HQ_LOG_ERROR, "--%s %s: not an IP address", what, addr);
        return -1;
    }
    uv_tcp_init(&s->loop, &l->h.tcp);
    l->h.handle.data = l;
    l->srv = s;
    l->roles = roles;
    l->open = true;
    if ((rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen(&l->h.stream, 511, cb)) != 0) {
        hq_log(HQ_LOG_ERROR, "listen %s %s: %s", what, addr, uv_strerror(rc));
        return -1;
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
    char ip[64];
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(bound, blen, "[%s]:%d", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(bound, blen, "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    return 0;
}

static int listen_unix(server *s, const char *path)
{
    int rc;
    /* We hold the data dir's lock, so a socket file left here is stale. */
    unlink(path);
    uv_pipe_init(&s->loop, &s->unix_.h.pipe, 0);
    s->unix_.h.handle.data = &s->unix_;
    s->unix_.srv = s;
    s->unix_.is_unix = true;
    s->unix_.roles = hall_config_current(s->h)->unix_.roles;
    s->unix_.open = true;
    mode_t old = umask(0117);
    rc = uv_pipe_bind(&s->unix_.h.pipe, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen(&s->unix_.h.stream, 511, conn_accept);
    if (rc) {
        hq_log(HQ_LOG_ERROR, "listen unix %s: %s", path, uv_strerror(rc));
        return -1;
    }
    chmod(path, 0660);
    return 0;
}

static void close_walk(uv_handle_t *hd, void *arg)
{
    (void)arg;
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

int server_run(const server_options *o, hall **hp, hall_store *st, wal_writer *w)
{
    server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    hall *h = *hp;
    s->opt = o;
    s->h = h;
    s->hp = hp;
    s->st = st;
    s->w = w;
    const hall_config *cfg = hall_config_current(h);
    s->manual_base = cfg->has_start_ms ? cfg->start_ms : server_wall_ms();
    /* The largest record the WAL takes (the segment size of this start). */
    s->rec_max = WAL_MAX_PAYLOAD + WAL_RECORD_OVERHEAD;
    if (cfg->wal.segment_bytes - WAL_SEGMENT_HEADER_LEN < s->rec_max)
        s->rec_max = (size_t)(cfg->wal.segment_bytes - WAL_SEGMENT_HEADER_LEN);
    s->failed_why = "the WAL cannot be written (see the daemon log); no changes until restart";
    s->last_rec_ms = hall_clock_ms(h);
    s->durable_clock = hall_clock_ms(h);
    int code = 1;
    proto_buf_init(&s->result);
    proto_buf_init(&s->payload);
    proto_buf_init(&s->strip);
    if (!msgpack_zone_init(&s->zone, 8192) || uv_loop_init(&s->loop) != 0) {
        free(s);
        return 1;
    }
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &s->rtxn) != 0)
        goto out;
    if (o->read_only && hall_store_applied_lsn(st, s->rtxn, &s->ro_lsn) != 0)
        goto out;
    char wal_dir[4096];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", o->data_dir);
    feed_init(&s->feed, &s->loop, &conn_feed_ops, w ? wal_dir : NULL, durable_lsn(s));
    mdb_txn_reset(s->rtxn);
    uv_check_init(&s->loop, &s->kick);
    s->kick.data = s;
    uv_idle_init(&s->loop, &s->kick_idle);
    s->kick_idle.data = s;
    uv_timer_init(&s->loop, &s->due_timer);
    s->due_timer.data = s;
    uv_timer_init(&s->loop, &s->ckpt_timer);
    s->ckpt_timer.data = s;
    uv_timer_init(&s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_start(&s->sweep_timer, conn_sweep, 1000, 1000);
    gc_init(s);
    batch_arm_due(s);
    char bound[300], hbound[300] = "";
    if (listen_tcp(s, &s->tcp, "tcp", o->tcp_addr, cfg->tcp.roles, conn_accept, bound,
                   sizeof bound) != 0 ||
        listen_unix(s, o->unix_path) != 0)
        goto out;
    if (o->http_addr && o->http_addr[0] &&
        (http_init(s) != 0 || listen_tcp(s, &s->http, "http", o->http_addr, cfg->http.roles,
                                         http_accept, hbound, sizeof hbound) != 0))
        goto out;
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sighup);
    s->sigterm.data = s->sigint.data = s->sighup.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sighup, on_signal, SIGHUP);
    /* A write to a socket its peer reset is an error (EPIPE) handled where
     * it happens, not a signal that kills the daemon: an HTTP client that
     * leaves mid-answer makes H2O write to it, as a TCP client could. */
    signal(SIGPIPE, SIG_IGN);

    /* The start-up summary: what an operator checks first in the journal. */
    hq_log(HQ_LOG_INFO,
           "hallqd %s (rules %d, wal format %d): hall %s; tcp=%s unix=%s http=%s; data %s; "
           "at LSN %llu; checkpoint every %u ms; fsync %s%s",
           HALLQ_VERSION, HALL_RULES_VERSION, WAL_FORMAT_VERSION, cfg->hall_id, bound, o->unix_path,
           hbound[0] ? hbound : "none", o->data_dir, (unsigned long long)durable_lsn(s),
           o->checkpoint_ms, o->fsync ? "always" : "none", o->read_only ? "; read-only" : "");
    char ready[1100];
    int n = snprintf(ready, sizeof ready, "hallqd ready tcp=%s unix=%s%s%s\n", bound, o->unix_path,
                     hbound[0] ? " http=" : "", hbound);
    if (write(STDERR_FILENO, ready, (size_t)n) < 0)
        goto out;
    hq_notify("READY=1\nSTATUS=serving hall %s at LSN %llu\nMAINPID=%ld", cfg->hall_id,
              (unsigned long long)durable_lsn(s), (long)getpid());

    uv_run(&s->loop, UV_RUN_DEFAULT);
    gc_log(s);
    code = 0;
out:
    http_dispose(s); /* (H2O closes its own handles) */
    /* Close every handle, then let the loop finish their callbacks.
     * Closing a signal handle restores the default action: a second
     * SIGTERM then (a supervisor repeating itself) must not kill a daemon
     * that is already finishing cleanly. So the signal handles close
     * first, each followed at once by SIG_IGN (a window of a few
     * instructions, not of the whole walk). */
    uv_signal_t *sigs[] = {&s->sigterm, &s->sigint, &s->sighup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++)
        if (uv_is_active((uv_handle_t *)sigs[i]) && !uv_is_closing((uv_handle_t *)sigs[i])) {
            uv_close((uv_handle_t *)sigs[i], NULL);
            signal(signums[i], SIG_IGN);
        }
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        hq_log(HQ_LOG_WARN, "event loop closed with handles open");
    gc_free(s);
    int ckrc = s->st_txn ? mdb_txn_commit(s->st_txn) : 0;
    if (ckrc) {
        hq_log(HQ_LOG_ERROR, "lmdb: the last checkpoint failed: %s (the WAL has it)",
               mdb_strerror(ckrc));
        code = 1;
    }
    if (s->rtxn)
        mdb_txn_abort(s->rtxn);
    while (s->free_reqs) {
        req *r = s->free_reqs;
        s->free_reqs = r->next;
        proto_buf_free(&r->body);
        proto_buf_free(&r->out);
        free(r);
    }
    proto_buf_free(&s->result);
    proto_buf_free(&s->payload);
    proto_buf_free(&s->strip);
    free(s->reload_text);
    proto_buf_free(&s->b_events);
    feed_free(&s->feed);
    http_free(s);
    msgpack_zone_destroy(&s->zone);
    free(s);
    if (code == 0)
        hq_log(HQ_LOG_INFO, "stopped");
    return code;
}
