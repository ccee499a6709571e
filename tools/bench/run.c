/* tools/bench/run.c: the connections and the loop.
 *
 * One thread, one epoll set, non-blocking sockets. Each connection opens
 * (hallq: `hello`; beanstalk: `use` a tube; Redis: nothing), and once every
 * connection is open each keeps up to its depth of requests in flight. All
 * three protocols answer in request order on a connection, so a connection
 * keeps a ring of its outstanding requests and every reply must answer the
 * oldest. A reply out of order, a malformed reply, a missing result field
 * or a closed connection ends the run at once (exit 1). Error replies are
 * counted by code; any code not named by --allow fails the run at its end.
 *
 * Latency is send -> reply on CLOCK_MONOTONIC, in the histogram of hist.c.
 * A request is measured when it was sent after the warmup. At the end no
 * new request is sent and the run waits (at most DRAIN_NS) for every
 * answer: a request never answered is a failure, not a lost sample. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

extern volatile sig_atomic_t bench_stop_requested;

static const char *const cycle_lines[] = {"A", "B", "C", "D"};

/* ---- errors by code ---- */

static bool code_allowed(const bench *b, const char *code)
{
    for (int i = 0; i < b->opt.nallow; i++)
        if (!strcmp(b->opt.allow[i], code))
            return true;
    return false;
}

static void count_error(bench *b, const conn *c, const pending *p, const reply *r)
{
    int i = 0;
    while (i < MAX_CODES && b->codes[i][0] && strcmp(b->codes[i], r->code))
        i++;
    if (i == MAX_CODES)
        i = MAX_CODES - 1; /* the last slot also takes every further code */
    else if (!b->codes[i][0])
        snprintf(b->codes[i], sizeof b->codes[i], "%s", r->code);
    b->code_counts[i]++;
    b->errors++;
    bool allowed = code_allowed(b, r->code);
    if (!allowed)
        b->unexpected++;
    if (b->errors <= SHOW_ERRORS)
        fprintf(stderr, "hallq-bench: conn %d request %" PRIu64 " (%s): error %s: %s%s\n", c->idx,
                p->id, mix_op_name(p->op), r->code, r->text, allowed ? " (allowed)" : "");
}

/* ---- connections ---- */

static int conn_start(bench *b, conn *c)
{
    bool local = c->addr->sa_family == AF_UNIX;
    c->fd = socket(c->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | (local ? 0 : SOCK_NONBLOCK), 0);
    if (c->fd < 0)
        return bench_fail(b, "socket: %s", strerror(errno)), -1;
    if (local) {
        /* A non-blocking Unix connect fails with EAGAIN while the listen
         * backlog is full instead of completing later, so connect blocking,
         * bounded by the setup time (connect honours SO_SNDTIMEO there). */
        struct timeval tv = {.tv_sec = SETUP_NS / NS_PER_S};
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(c->fd, c->addr, c->addrlen) != 0)
            return bench_fail(b, "connect %s: %s", b->opt.unix_path, strerror(errno)), -1;
        tv.tv_sec = 0;
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
            return bench_fail(b, "conn %d: %s", c->idx, strerror(errno)), -1;
    } else {
        int one = 1;
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            return bench_fail(b, "TCP_NODELAY: %s", strerror(errno)), -1;
        if (connect(c->fd, c->addr, c->addrlen) != 0 && errno != EINPROGRESS)
            return bench_fail(b, "connect %s: %s", b->opt.tcp, strerror(errno)), -1;
    }
    /* Edge-triggered: every event is handled by reading and writing until
     * EAGAIN, so no readiness is ever left unconsumed. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return bench_fail(b, "epoll_ctl: %s", strerror(errno)), -1;
    c->state = CONN_CONNECTING;
    return 0;
}

/* Appends one request to the ring and the write buffer; false when the
 * connection has nothing to send now. */
static bool conn_queue(bench *b, conn *c, bool open, uint64_t t)
{
    if (c->wcap - c->wlen < REQ_OVERHEAD + b->opt.payload && c->woff) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    pending *p = &c->q[(c->qhead + c->qlen) % (unsigned)c->depth];
    p->id = c->next_id;
    p->sent_ns = t;
    p->open = open;
    p->measured = !open && b->phase == PHASE_RUN && t >= b->measure_ns;
    p->op = MIX_TAKE;
    p->arg[0] = 0;
    if (b->opt.cycle)
        p->line = open ? cycle_lines[c->idx % 4] : cycle_lines[p->id % 4];
    else
        p->line = b->opt.line;
    out o = {.p = c->wbuf + c->wlen, .cap = c->wcap - c->wlen};
    bool any = open ? b->proto->encode_open(b, c, p, &o) : b->proto->encode_next(b, c, p, &o);
    if (!any)
        return false;
    if (o.overflow) {
        bench_fail(b, "conn %d: request larger than its buffer (a bug)", c->idx);
        return false;
    }
    c->next_id++;
    c->wlen += o.len;
    c->qlen++;
    b->outstanding++;
    if (p->measured)
        b->sent_measured++;
    return true;
}

static void conn_flush(bench *b, conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            bench_fail(b, "conn %d: send: %s", c->idx, strerror(errno));
            return;
        }
    }
    c->woff = c->wlen = 0;
}

/* Keeps the pipeline full while the run sends. */
static void conn_fill(bench *b, conn *c)
{
    while (!b->failed && b->phase == PHASE_RUN && c->state == CONN_READY &&
           c->qlen < (unsigned)c->depth) {
        uint64_t t = now_ns();
        if (t >= b->end_ns ||
            (b->opt.count && t >= b->measure_ns && b->sent_measured >= b->opt.count))
            return;
        if (!conn_queue(b, c, false, t))
            return;
    }
}

/* Takes one reply off the ring. */
static void conn_complete(bench *b, conn *c, const reply *r, uint64_t t)
{
    pending *p = &c->q[c->qhead];
    c->qhead = (c->qhead + 1) % (unsigned)c->depth;
    c->qlen--;
    c->replies++;
    b->outstanding--;
    if (!r->ok) {
        if (p->open) {
            bench_fail(b, "conn %d: opening request refused: %s: %s", c->idx, r->code, r->text);
            return;
        }
        count_error(b, c, p, r);
        return;
    }
    if (p->open) {
        c->state = CONN_READY;
        b->nready++;
        return;
    }
    if (p->measured) {
        hist_add(&b->lat, t - p->sent_ns);
        if (b->mix)
            hist_add(&b->op_lat[p->op], t - p->sent_ns);
        b->last_ns = t;
    }
}

static void conn_read(bench *b, conn *c)
{
    while (!b->failed) {
        if (c->rlen == c->rcap) {
            bench_fail(b, "conn %d: reply larger than %zu bytes", c->idx, c->rcap);
            return;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            bench_fail(b, "conn %d: recv: %s", c->idx, strerror(errno));
            return;
        }
        if (n == 0) {
            bench_fail(b, "conn %d: the server closed the connection after %" PRIu64 " replies",
                       c->idx, c->replies);
            return;
        }
        c->rlen += (size_t)n;
        uint64_t t = now_ns();
        size_t off = 0;
        while (off < c->rlen && !b->failed) {
            if (!c->qlen) {
                bench_fail(b, "conn %d: %zu bytes arrived with no request in flight", c->idx,
                           c->rlen - off);
                return;
            }
            reply r;
            r.ok = false;
            r.code[0] = r.text[0] = 0;
            ssize_t used = b->proto->parse(b, c, &c->q[c->qhead], c->rbuf + off, c->rlen - off, &r);
            if (used == 0)
                break;
            if (used < 0) {
                bench_fail(b, "conn %d: %s", c->idx, r.text);
                return;
            }
            off += (size_t)used;
            conn_complete(b, c, &r, t);
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void conn_event(bench *b, conn *c, uint32_t events)
{
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            bench_fail(b, "conn %d: connect: %s", c->idx, strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN | EPOLLERR | EPOLLHUP)))
            return;
        c->state = CONN_OPENING;
        if (b->proto->encode_open) {
            conn_queue(b, c, true, now_ns());
        } else {
            c->state = CONN_READY;
            b->nready++;
        }
    }
    conn_read(b, c);
    conn_fill(b, c);
    if (!b->failed)
        conn_flush(b, c);
}

/* ---- the run ---- */

static void bench_start_run(bench *b)
{
    b->phase = PHASE_RUN;
    b->start_ns = now_ns();
    b->measure_ns = b->start_ns + (uint64_t)(b->opt.warmup * 1e9);
    b->end_ns = b->opt.count ? UINT64_MAX : b->measure_ns + (uint64_t)(b->opt.duration * 1e9);
    b->last_ns = b->measure_ns;
    for (int i = 0; i < b->nconns && !b->failed; i++) {
        conn_fill(b, &b->conns[i]);
        if (!b->failed)
            conn_flush(b, &b->conns[i]);
    }
}

/* The mix's connections that had nothing to send (a window with no ticket
 * waiting, a kiosk held back) get another chance every loop turn. */
static void wake_idle(bench *b)
{
    for (int i = 0; i < b->nconns && !b->failed; i++) {
        conn *c = &b->conns[i];
        if (c->state == CONN_READY && c->qlen == 0) {
            conn_fill(b, c);
            if (!b->failed)
                conn_flush(b, c);
        }
    }
}

int bench_loop(bench *b)
{
    struct epoll_event evs[512];
    b->deadline_ns = now_ns() + SETUP_NS;
    for (int i = 0; i < b->nconns && !b->failed; i++)
        conn_start(b, &b->conns[i]);
    while (!b->failed) {
        uint64_t t = now_ns();
        if (b->phase == PHASE_SETUP && b->nready == b->nconns)
            bench_start_run(b);
        if (b->phase == PHASE_SETUP && (t >= b->deadline_ns || bench_stop_requested)) {
            bench_fail(b, "%d of %d connections ready after %s", b->nready, b->nconns,
                       bench_stop_requested ? "a signal" : "10 s");
            break;
        }
        if (b->phase == PHASE_RUN && (bench_stop_requested || t >= b->end_ns ||
                                      (b->opt.count && b->sent_measured >= b->opt.count))) {
            b->phase = PHASE_DRAIN;
            b->deadline_ns = t + DRAIN_NS;
        }
        if (b->phase == PHASE_DRAIN && !b->outstanding) {
            b->phase = PHASE_DONE;
            break;
        }
        if (b->phase == PHASE_DRAIN && t >= b->deadline_ns) {
            bench_fail(b, "%" PRIu64 " requests unanswered 30 s after the end", b->outstanding);
            break;
        }
        if (b->mix && b->phase == PHASE_RUN)
            wake_idle(b);
        uint64_t next = b->phase == PHASE_RUN ? b->end_ns : b->deadline_ns;
        uint64_t wait_ms = next > t ? (next - t + 999999) / 1000000 : 0;
        int cap = b->mix ? 1 : 100;
        int n = epoll_wait(b->ep, evs, 512, wait_ms > (uint64_t)cap ? cap : (int)wait_ms);
        if (n < 0 && errno != EINTR) {
            bench_fail(b, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !b->failed; i++)
            conn_event(b, evs[i].data.ptr, evs[i].events);
    }
    return b->failed ? -1 : 0;
}
