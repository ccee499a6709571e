/* daemon/conn.c: connections: reading frames into the FIFO of request
 * slots, running direct requests at its head, writing the answers out.
 *
 * Every request gets a slot in its connection's FIFO; answers leave in
 * FIFO order. A read (or hello, ping...) runs when it reaches the head of
 * the FIFO (direct.c), so it sees every earlier mutation of its
 * connection, and it reads durable state only: while the state txn holds
 * effects not yet durable it waits for the next quiet point. A mutation
 * joins the server's queue (batch.c), unless a direct op before it on its
 * connection has not run yet: then it is held until that op ran, so the op
 * answers the state after the requests before it and none after. A
 * mutation is answered only once its batch is durable.
 *
 * Memory: a connection's input is bounded by its framer (4 + max_frame),
 * its slots by max_inflight (reading stops at the limit), and its output by
 * output_cap (a connection whose output passes it is cut off). Once a
 * second (conn_sweep) a connection that has not said hello in time, or
 * whose frame stalled, is closed. The events feed (feed.c) appends to a
 * connection's output through conn_feed_ops.
 *
 * An HTTP request's conn (c->http, daemon/http_api.c) reads no socket: http_api.c
 * hands it its frames (conn_take_frame) and takes its output
 * (http_conn_flush) instead of a write; everything between is the same.
 *
 * Never: answer out of FIFO order, answer a mutation before its batch is
 * durable, or free a slot a batch still holds (in_batch: batch_release
 * hands it back). */
#include "daemon/server_internal.h"
#include "daemon/hall/events.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/pii.h"

#include <inttypes.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISK_CHECK_MS 1000

static void conn_read_frames(conn *c);

/* ---- requests ---- */

static req *req_new(server *s, conn *c)
{
    req *r = s->free_reqs;
    if (r) {
        s->free_reqs = r->next;
    } else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        proto_buf_init(&r->body);
        proto_buf_init(&r->out);
    }
    r->next = r->bnext = NULL;
    r->c = c;
    r->id = 0;
    r->def = NULL;
    r->state = REQ_NEW;
    r->in_batch = false;
    r->close_after = false;
    r->dropped = false;
    proto_buf_reset(&r->body);
    proto_buf_reset(&r->out);
    return r;
}

void req_free(server *s, req *r)
{
    /* Keep small buffers for reuse; give back big ones. */
    if (r->body.cap > 65536)
        proto_buf_free(&r->body);
    if (r->out.cap > 65536)
        proto_buf_free(&r->out);
    r->next = s->free_reqs;
    s->free_reqs = r;
}

void req_error(req *r, proto_err code, const char *msg)
{
    proto_buf_reset(&r->out);
    proto_write_error(&r->out, r->id, code, msg);
    r->code = code;
    r->state = REQ_DONE;
    if (proto_err_closes(code))
        r->close_after = true;
}

void req_ok(req *r, const proto_buf *result)
{
    msgpack_packer pk;
    proto_buf_reset(&r->out);
    size_t off = proto_begin_ok(&r->out, &pk, r->id);
    proto_buf_append(&r->out, result->p, result->len);
    proto_frame_end(&r->out, off);
    r->code = PROTO_OK;
    r->state = REQ_DONE;
    if (r->out.oom)
        req_error(r, PROTO_E_INTERNAL, "out of memory writing the response");
}

/* ---- connections ---- */

void conn_free(conn *c)
{
    server *s = c->srv;
    proto_framer_free(&c->in);
    proto_buf_free(&c->wbuf[0]);
    proto_buf_free(&c->wbuf[1]);
    free(c);
    (void)s;
}

static void on_conn_closed(uv_handle_t *hd)
{
    conn *c = hd->data;
    c->handle_gone = true;
    if (c->inflight == 0)
        conn_free(c);
}

void conn_close(conn *c)
{
    server *s = c->srv;
    if (c->closed)
        return;
    c->closed = true;
    c->closing = true;
    gc_conn_gone(s, c);
    feed_unsubscribe(&s->feed, &c->sub);
    if (c->http)
        http_conn_closed(c); /* ends its HTTP response if it is still owed */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    /* Drop every slot not held by a batch; those stay until their batch
     * ends (they hold c) and are dropped then. */
    req **pp = &c->head;
    while (*pp) {
        req *r = *pp;
        if (!r->in_batch) {
            *pp = r->next;
            c->inflight--;
            req_free(s, r);
        } else {
            pp = &r->next;
        }
    }
    c->tail = NULL;
    for (req *r = c->head; r; r = r->next)
        c->tail = r;
    uv_close(&c->h.handle, on_conn_closed);
    server_maybe_finish_stop(s);
}

static void on_write(uv_write_t *wr, int status)
{
    conn *c = wr->data;
    c->write_busy = false;
    proto_buf_reset(&c->wbuf[c->writing]);
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_pump(c);
    if (c->srv->stopping)
        server_maybe_finish_stop(c->srv); /* this may have been the last answer out */
}

/* Writes what the collecting buffer holds. The answers of a batch usually
 * fit in the socket buffer, so a direct write (uv_try_write) sends them
 * with no write request: uv_write would arm and disarm the POLLOUT watcher,
 * one epoll_ctl per connection per batch. Only what the socket does not
 * take goes through uv_write (and while stopping, everything does, so that
 * on_write sees the last answer out). */
static void conn_flush(conn *c)
{
    if (c->http && !c->closed) {
        http_conn_flush(c); /* no socket: the answers become its HTTP response */
        return;
    }
    if (c->write_busy || c->closed)
        return;
    int other = 1 - c->writing;
    proto_buf *ob = &c->wbuf[other];
    if (ob->len && !c->srv->stopping) {
        uv_buf_t tb = uv_buf_init((char *)ob->p, (unsigned)ob->len);
        int n = uv_try_write(&c->h.stream, &tb, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            memmove(ob->p, ob->p + n, ob->len - (size_t)n);
            ob->len -= (size_t)n;
        }
    }
    if (ob->len == 0) {
        if (c->closing && !c->head)
            conn_close(c);
        return;
    }
    c->writing = other;
    uv_buf_t b = uv_buf_init((char *)c->wbuf[other].p, (unsigned)c->wbuf[other].len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &b, 1, on_write) != 0) {
        conn_close(c);
        return;
    }
    c->write_busy = true;
}

void conn_stop_reading(conn *c)
{
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    conn *c = hd->data;
    size_t len = 0;
    uint8_t *p = proto_framer_space(&c->in, &len);
    (void)suggested;
    *buf = uv_buf_init((char *)p, (unsigned)len);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;
    (void)buf;
    if (n == UV_ENOBUFS) {
        /* The framer holds a whole frame: parse before reading more. */
        conn_stop_reading(c);
        conn_read_frames(c);
        return;
    }
    if (n < 0) {
        /* EOF or error: answers still owed are dropped with the socket. */
        conn_stop_reading(c);
        conn_close(c);
        return;
    }
    if (n == 0)
        return; /* EAGAIN */
    proto_framer_commit(&c->in, (size_t)n);
    conn_read_frames(c);
}

static void conn_start_reading(conn *c)
{
    /* While stopping, only frames already buffered are parsed (and
     * answered `unavailable` if they are mutations). */
    if (!c->reading && !c->closing && !c->closed && !c->srv->stopping) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

/* After a direct op of c ran: the mutations held behind it join the queue,
 * up to the next direct op still to run. */
static void conn_release_held(server *s, req *from)
{
    for (req *x = from; x && x->state != REQ_NEW; x = x->next)
        if (x->state == REQ_HELD)
            batch_enqueue(s, x);
}

/* Who is at the other end of c, for the log: "tcp 10.0.0.5:51234", "unix
 * pid 812 uid 998" (SO_PEERCRED), or "http". */
static void conn_peer(conn *c, char *buf, size_t len)
{
    if (c->http) {
        snprintf(buf, len, "http");
        return;
    }
    uv_os_fd_t fd;
    if (c->l->is_unix) {
        struct ucred cr;
        socklen_t sl = sizeof cr;
        if (uv_fileno(&c->h.handle, &fd) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) == 0)
            snprintf(buf, len, "unix pid %ld uid %ld", (long)cr.pid, (long)cr.uid);
        else
            snprintf(buf, len, "unix");
        return;
    }
    struct sockaddr_storage ss;
    int n = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &n) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(buf, len, "tcp %s:%d", ip, port);
}

/* A connection refused or cut for what its client sent: logged with the
 * peer and the reason (never a token), at most HQ_LOG_BURST lines per
 * HQ_LOG_WINDOW_MS, so that a client hammering the port cannot flood the
 * journal. */
static void conn_log_refused(conn *c, const char *what, const char *reason)
{
    static hq_log_limit lim;
    char peer[128];
    if (!hq_log_enabled(HQ_LOG_WARN))
        return;
    conn_peer(c, peer, sizeof peer);
    hq_log_limited(&lim, uv_now(&c->srv->loop), HQ_LOG_WARN, "%s from %s: %s", what, peer, reason);
}

/* Moves answered slots from the head of the FIFO to the output, running
 * direct requests as they reach the head. */
void conn_pump(conn *c)
{
    server *s = c->srv;
    while (c->head && !c->closed) {
        req *r = c->head;
        if (r->state == REQ_HELD)
            conn_release_held(s, r); /* (its direct op is answered) */
        if (r->state == REQ_NEW) {
            if (s->state_stale && r->def->op != HALL_OP_SUBSCRIBE) {
                req_error(r, PROTO_E_UNAVAILABLE, s->failed_why);
            } else if (direct_waits(s, r->def->op)) {
                s->reads_waiting = true; /* at the next quiet point */
                break;
            } else if (r->def->op == HALL_OP_CONFIG_RELOAD) {
                reload_at_head(s, r);
            } else {
                direct_exec(s, c, r);
                if (r->def->op == HALL_OP_HELLO && r->code != PROTO_OK)
                    conn_log_refused(c, "hello refused",
                                     r->code == PROTO_E_UNAUTHENTICATED
                                         ? "token not accepted on this listener"
                                         : proto_err_name(r->code));
            }
            if (!r->close_after)
                conn_release_held(s, r->next);
        }
        if (r->state != REQ_DONE || r->in_batch)
            break; /* a mutation is answered only once its batch is durable */
        proto_buf *ob = &c->wbuf[1 - c->writing];
        if (!proto_buf_append(ob, r->out.p, r->out.len)) {
            conn_close(c);
            return;
        }
        metrics_answer(&s->metrics, r->def, r->code); /* its final answer */
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->inflight--;
        bool close_after = r->close_after;
        req_free(s, r);
        if (close_after) {
            /* Nothing after a closing error is answered. */
            c->closing = true;
            conn_stop_reading(c);
            while (c->head && !c->head->in_batch) {
                req *x = c->head;
                c->head = x->next;
                c->inflight--;
                req_free(s, x);
            }
            if (!c->head)
                c->tail = NULL;
            break;
        }
    }
    if (c->closed)
        return;
    uint64_t cap = hall_config_current(s->h)->limits.output_cap;
    if (c->wbuf[0].len + c->wbuf[1].len > cap) {
        hq_log(HQ_LOG_WARN, "connection %s:%s cut off: its output passed %" PRIu64 " bytes",
               hall_role_name(c->actor.role), c->actor.id, cap);
        conn_close(c);
        return;
    }
    conn_flush(c);
    /* A catch-up goes on as the output drains (daemon/feed.c): a chunk
     * from memory goes out at once, a read of the WAL comes back later. */
    while (!c->closed && feed_pump(&s->feed, &c->sub, (size_t)cap / 2))
        conn_flush(c);
    /* Reading was paused at max_inflight, or parsing until hello ran:
     * resume once below it, or once hello is answered. */
    if (!c->http && !c->parsing && (!c->reading || (c->parse_paused && !c->head)) && !c->closing &&
        !c->closed && c->inflight < hall_config_current(s->h)->limits.max_inflight)
        conn_read_frames(c);
}

static bool disk_ok(server *s)
{
    uint64_t now = uv_now(&s->loop);
    if (now - s->disk_checked >= DISK_CHECK_MS || s->disk_checked == 0) {
        uint64_t free_b = 0;
        char wal_dir[4096];
        snprintf(wal_dir, sizeof wal_dir, "%s/wal", s->opt->data_dir);
        s->disk_checked = now ? now : 1;
        uint64_t reserve = hall_config_current(s->h)->wal.disk_reserve_bytes;
        bool low = wal_disk_free(wal_dir, &free_b) == 0 && free_b < reserve;
        if (low && !s->disk_low)
            hq_log(HQ_LOG_ERROR,
                   "disk: %" PRIu64 " MiB free under %s, below the reserve of %" PRIu64
                   " MiB: refusing changes until space is freed",
                   free_b >> 20, wal_dir, reserve >> 20);
        else if (!low && s->disk_low)
            hq_log(HQ_LOG_INFO, "disk: space is back above the reserve; taking changes again");
        s->disk_low = low;
    }
    return !s->disk_low;
}

/* A mutation parsed: it joins the queue, unless a direct op before it on
 * its connection has not run yet (a read answers the state after the
 * requests before it and none after): then it is held until that op ran
 * (conn_release_held). */
static void conn_enqueue(server *s, conn *c, req *r)
{
    for (req *x = c->head; x && x != r; x = x->next)
        if (x->state == REQ_NEW) {
            r->state = REQ_HELD;
            return;
        }
    batch_enqueue(s, r);
}

/* A kiosk's token bucket: kiosk_rate per second, up to kiosk_burst. */
static bool rate_ok(server *s, conn *c)
{
    const hall_limits *l = &hall_config_current(s->h)->limits;
    if (!l->kiosk_rate)
        return true;
    uint64_t now = uv_now(&s->loop);
    c->tokens += (double)(now - c->tokens_at) * l->kiosk_rate / 1000.0;
    if (c->tokens > l->kiosk_burst)
        c->tokens = l->kiosk_burst;
    c->tokens_at = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

/* A new slot at the tail of c's FIFO; on out of memory c is closed and
 * NULL returned. */
static req *conn_push(conn *c)
{
    req *r = req_new(c->srv, c);
    if (!r) {
        conn_close(c);
        return NULL;
    }
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    return r;
}

/* Ends a connection with one last error answer (after those it owes). */
static void conn_fail(conn *c, proto_err code, const char *msg)
{
    conn_stop_reading(c);
    req *r = conn_push(c);
    if (!r)
        return;
    req_error(r, code, msg);
    r->close_after = true;
    c->closing = true;
    conn_pump(c);
}

_Static_assert(HALL_OP__COUNT <= 64, "conn.warned_args has a bit per op");

/* A mutation's args without the ones its op does not read (PROTOCOL.md:
 * ignored), so that they cannot make its record larger: when it has some,
 * the request is packed again into s->strip and *rq, *body and *len point
 * there. The first unknown name is logged once per connection and op (an
 * adapter's typo shows in the log, not only in its results); on a strict
 * connection it is bad_request instead. 0, 1 refused (r answered), or -1
 * out of memory. */
static int strip_unknown_args(server *s, conn *c, req *r, proto_request *rq, const uint8_t **body,
                              uint32_t *len)
{
    const msgpack_object *a = rq->args;
    if (!a || a->type != MSGPACK_OBJECT_MAP)
        return 0;
    uint32_t known = 0;
    const msgpack_object *unknown = NULL;
    for (uint32_t i = 0; i < a->via.map.size; i++) {
        const msgpack_object *k = &a->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR &&
            hall_op_knows_arg(r->def, k->via.str.ptr, k->via.str.size))
            known++;
        else if (!unknown)
            unknown = k;
    }
    if (known == a->via.map.size)
        return 0;
    char name[40] = "(not a string)";
    if (unknown->type == MSGPACK_OBJECT_STR)
        snprintf(name, sizeof name, "%.*s",
                 (int)(unknown->via.str.size > 32 ? 32 : unknown->via.str.size),
                 unknown->via.str.ptr);
    if (c->strict) {
        char m[160];
        snprintf(m, sizeof m, "args.%s: %s has no such argument (strict connection)", name,
                 r->def->name);
        req_error(r, PROTO_E_BAD_REQUEST, m);
        return 1;
    }
    uint64_t bit = UINT64_C(1) << r->def->op;
    if (!(c->warned_args & bit)) {
        c->warned_args |= bit;
        hq_log(HQ_LOG_WARN,
               "connection %s:%s: %s: unknown argument '%s' ignored (said once per connection "
               "and op)",
               hall_role_name(c->actor.role), c->actor.id, r->def->name, name);
    }
    msgpack_packer pk;
    proto_buf_reset(&s->strip);
    proto_packer_init(&pk, &s->strip);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", r->id);
    proto_pack_kv_str(&pk, "op", r->def->name);
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, known);
    for (uint32_t i = 0; i < a->via.map.size; i++) {
        const msgpack_object_kv *kv = &a->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            hall_op_knows_arg(r->def, kv->key.via.str.ptr, kv->key.via.str.size)) {
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, kv->val);
        }
    }
    proto_error e = {0};
    msgpack_zone_clear(&s->zone);
    if (s->strip.oom ||
        proto_request_decode(&s->zone, s->strip.p, s->strip.len, rq, &e) != PROTO_OK)
        return -1;
    *body = s->strip.p;
    *len = (uint32_t)s->strip.len;
    return 0;
}

/* One frame from a connection. */
static void conn_frame(conn *c, const uint8_t *body, uint32_t len)
{
    server *s = c->srv;
    proto_error e = {0};
    proto_request rq;
    gc_arrival(s, c);
    req *r = conn_push(c);
    if (!r)
        return;

    msgpack_zone_clear(&s->zone);
    proto_err code = proto_request_decode(&s->zone, body, len, &rq, &e);
    r->id = code == PROTO_OK || code == PROTO_E_BAD_REQUEST ? rq.id : 0;
    if (code == PROTO_E_BAD_FRAME) {
        conn_log_refused(c, "bad frame", e.msg);
        req_error(r, code, e.msg);
        return;
    }
    if (code != PROTO_OK) {
        /* A hello whose args are not a map is told so (bad_request; the
         * connection stays unauthenticated), not "send hello first". */
        if (!c->authed && code == PROTO_E_BAD_REQUEST && proto_op_is(&rq, "hello")) {
            conn_log_refused(c, "connection refused", "hello: args not a map");
            req_error(r, code, "hello: args: expected a map {token, client?}");
        } else {
            if (!c->authed)
                conn_log_refused(c, "connection refused", "the first request is not a hello");
            req_error(r, c->authed ? code : PROTO_E_UNAUTHENTICATED,
                      c->authed ? e.msg : "the first request must be hello");
        }
        return;
    }
    r->def = hall_op_find(rq.op, rq.op_len);
    if (!c->authed && (!r->def || r->def->op != HALL_OP_HELLO)) {
        conn_log_refused(c, "connection refused", "the first request is not a hello");
        req_error(r, PROTO_E_UNAUTHENTICATED, "the first request must be hello");
        return;
    }
    if (!r->def || r->def->roles == R_SYS) {
        char msg[160];
        snprintf(msg, sizeof msg, "op: no such op '%.*s'", (int)(rq.op_len > 64 ? 64 : rq.op_len),
                 rq.op);
        req_error(r, PROTO_E_UNKNOWN_OP, msg);
        return;
    }
    if (r->def->op != HALL_OP_HELLO && !(r->def->roles & HALL_ROLE_BIT(c->actor.role))) {
        char msg[160];
        snprintf(msg, sizeof msg, "op %s is not allowed for role %s", r->def->name,
                 hall_role_name(c->actor.role));
        req_error(r, PROTO_E_FORBIDDEN, msg);
        return;
    }
    if (c->actor.role == HALL_ROLE_KIOSK && r->def->op != HALL_OP_HELLO && !rate_ok(s, c)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "rate: a kiosk may send %u requests per second (bursts of %u); slow down",
                 hall_config_current(s->h)->limits.kiosk_rate,
                 hall_config_current(s->h)->limits.kiosk_burst);
        req_error(r, PROTO_E_LIMIT, msg);
        return;
    }
    if (r->def->op == HALL_OP_CLOCK_ADVANCE && !s->opt->manual_clock) {
        req_error(r, PROTO_E_FORBIDDEN, "clock.advance needs hallqd --manual-clock");
        return;
    }
    if (r->def->kind == HALL_MUTATE) {
        if (s->opt->read_only) {
            req_error(r, PROTO_E_FORBIDDEN,
                      "this hallqd is read-only (it serves a replayed state): no changes");
            return;
        }
        if (s->wal_failed) {
            req_error(r, PROTO_E_UNAVAILABLE, s->failed_why);
            return;
        }
        if (s->stopping) {
            req_error(r, PROTO_E_UNAVAILABLE, "the server is shutting down");
            return;
        }
        if (!disk_ok(s)) {
            req_error(r, PROTO_E_UNAVAILABLE, "the disk is below its free-space reserve");
            return;
        }
    }
    if (r->def->kind == HALL_MUTATE) {
        int sr = strip_unknown_args(s, c, r, &rq, &body, &len);
        if (sr < 0)
            req_error(r, PROTO_E_INTERNAL, "out of memory keeping the request");
        if (sr)
            return;
    }
    if (r->def->op == HALL_OP_WINDOW_INTAKE) {
        int pr = pii_rewrite_intake(s->opt->pii_key, hall_config_current(s->h)->pii.keep_names, &rq,
                                    &r->body);
        if (pr < 0) {
            req_error(r, PROTO_E_INTERNAL, "out of memory keeping the request");
            return;
        }
        if (pr > 0) {
            conn_enqueue(s, c, r);
            return;
        }
    }
    if (r->def->op != HALL_OP_PING && r->def->op != HALL_OP_DIGEST &&
        !proto_buf_append(&r->body, body, len)) {
        req_error(r, PROTO_E_INTERNAL, "out of memory keeping the request");
        return;
    }
    /* config.reload is read and checked when it reaches the head of the
     * FIFO, against the durable config (reload_at_head). */
    if (r->def->kind == HALL_MUTATE && r->def->op != HALL_OP_CONFIG_RELOAD)
        conn_enqueue(s, c, r);
}

/* After a frame: a request whose answer closes the connection ends the
 * reading at once (nothing after it is parsed). */
static void conn_frame_done(conn *c)
{
    if (c->tail && c->tail->close_after) {
        c->closing = true;
        conn_stop_reading(c);
    }
}

void conn_take_frame(conn *c, const uint8_t *body, uint32_t len)
{
    if (c->closing || c->closed)
        return;
    conn_frame(c, body, len);
    conn_frame_done(c);
    conn_pump(c);
}

static void conn_read_frames(conn *c)
{
    server *s = c->srv;
    uint32_t max_inflight = hall_config_current(s->h)->limits.max_inflight;
    if (c->parsing)
        return;
    c->parsing = true;
    c->parse_paused = false;
    while (!c->closing && !c->closed) {
        if (!c->authed && c->head) {
            /* hello may wait (direct_waits): what follows it is parsed
             * once it is answered, as an authenticated request. */
            c->parse_paused = true;
            break;
        }
        if (c->inflight >= max_inflight) {
            conn_stop_reading(c); /* resumes when answers go out */
            c->parsing = false;
            return;
        }
        const uint8_t *body;
        uint32_t len;
        int rc = proto_framer_next(&c->in, &body, &len);
        if (rc == PROTO_FRAME_NEED)
            break;
        if (rc < 0) {
            req *r = conn_push(c);
            if (!r) {
                c->parsing = false;
                return;
            }
            char m[200];
            if (rc == PROTO_FRAME_EBIG) {
                /* The header is still buffered: say what it said. */
                const uint8_t *h = c->in.buf + c->in.start;
                uint32_t seen =
                    (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
                snprintf(m, sizeof m,
                         "frame: length %" PRIu32 " is over max_frame (%" PRIu32
                         "); the length is 4 bytes big-endian, then that many bytes of "
                         "MessagePack",
                         seen, c->in.max_frame);
            } else {
                snprintf(m, sizeof m, "%s",
                         rc == PROTO_FRAME_EZERO ? "frame: length 0" : "frame: out of memory");
            }
            conn_log_refused(c, "bad frame", m);
            req_error(r, PROTO_E_BAD_FRAME, m);
            c->closing = true;
            conn_stop_reading(c);
            break;
        }
        conn_frame(c, body, len);
        conn_frame_done(c);
        c->partial_since = 0; /* a whole frame: the client is not stalling */
        conn_pump(c);
    }
    if (proto_framer_buffered(&c->in) == 0)
        c->partial_since = 0;
    else if (!c->partial_since)
        c->partial_since = uv_now(&s->loop);
    if (!c->closing && !c->closed) {
        if (!c->head && proto_framer_buffered(&c->in) == 0)
            proto_framer_shrink(&c->in);
        conn_start_reading(c);
    }
    conn_pump(c);
    c->parsing = false;
}

void conn_accept(uv_stream_t *ls, int status)
{
    listener *l = ls->data;
    server *s = l->srv;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    c->l = l;
    int rc = l->is_unix ? uv_pipe_init(&s->loop, &c->h.pipe, 0) : uv_tcp_init(&s->loop, &c->h.tcp);
    if (rc) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    c->born_ms = uv_now(&s->loop);
    proto_framer_init(&c->in, hall_config_current(s->h)->limits.max_frame);
    proto_buf_init(&c->wbuf[0]);
    proto_buf_init(&c->wbuf[1]);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(ls, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }
    if (!l->is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (s->n_conns > hall_config_current(s->h)->limits.max_connections) {
        conn_log_refused(c, "connection refused", "too many connections (limits.max_connections)");
        conn_fail(c, PROTO_E_LIMIT, "too many connections");
        return;
    }
    conn_start_reading(c);
}

/* Once a second: a connection that has not said hello in time, or that
 * began a frame and stalled (a slow-loris client holding a buffer), is
 * closed. Paused reading (max_inflight) is the server's doing, not a
 * stall. */
void conn_sweep(uv_timer_t *t)
{
    server *s = t->data;
    hq_notify_watchdog();
    if (s->state_stale && !state_nondurable(s))
        state_restore(s, s->stale_rc, "lmdb: the catch-up tried again");
    const hall_limits *l = &hall_config_current(s->h)->limits;
    uint64_t now = uv_now(&s->loop);
    conn *next;
    for (conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (!c->authed && now - c->born_ms >= l->hello_timeout_ms) {
            char why[64];
            snprintf(why, sizeof why, "no hello within %u s", l->hello_timeout_ms / 1000);
            conn_log_refused(c, "connection closed", why);
            conn_fail(c, PROTO_E_UNAUTHENTICATED, "hello: not sent within hello_timeout_s");
        } else if (c->reading && c->partial_since &&
                   now - c->partial_since >= l->frame_timeout_ms) {
            hq_log(HQ_LOG_INFO, "connection %s:%s closed: a frame stalled for %u s",
                   c->authed ? hall_role_name(c->actor.role) : "-", c->authed ? c->actor.id : "-",
                   l->frame_timeout_ms / 1000);
            conn_fail(c, PROTO_E_BAD_FRAME, "frame: not complete within frame_timeout_s");
        }
    }
}

/* ---- events: daemon/feed.c sends them; a connection lends it its output ---- */

static conn *sub_conn(feed_sub *sub)
{
    return (conn *)((char *)sub - offsetof(conn, sub));
}

static proto_buf *sub_out(feed_sub *sub)
{
    conn *c = sub_conn(sub);
    return c->closing || c->closed ? NULL : &c->wbuf[1 - c->writing];
}

static size_t sub_out_len(feed_sub *sub)
{
    conn *c = sub_conn(sub);
    return c->wbuf[0].len + c->wbuf[1].len;
}

static void sub_wake(feed_sub *sub)
{
    conn_pump(sub_conn(sub));
}

const feed_ops conn_feed_ops = {.out = sub_out, .out_len = sub_out_len, .wake = sub_wake};
