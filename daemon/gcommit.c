/* daemon/gcommit.c: group commit that fills every sync.
 *
 * With one batch written while the next is applied, closed-loop clients
 * (each sends its next request when its answer comes) split into two
 * cohorts that take turns: the sync of one carries only the requests that
 * arrived while the other was written, about half of those waiting. Here,
 * when a sync's answers go out, the connections they went to that usually
 * send again at once (their last gap between answer and next request was
 * short) are "awaited". A batch ready to be written while some are awaited
 * is held, the disk idle, until every awaited connection has sent (its
 * request then joins the held batch) or the hold ends (twice the
 * measured sync time, at most 2 ms; a timer ends it too). So the cohorts
 * merge, and a sync carries nearly everyone who is waiting.
 *
 * A lone client is never held: when its request arrives, it was the only
 * one awaited. A connection that does not come back soon (a kiosk between
 * citizens) stops being awaited after one long gap. Holding delays a
 * write, never an answer before its sync: answers still wait for their own
 * batch's sync (batch.c). docs/PERFORMANCE.md has the measurements. */
#include "daemon/server_internal.h"
#include "daemon/log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define WAL_SYNC_SLOW_MS 250 /* a WAL write and sync this slow is logged */

#define HOLD_MIN_NS 50000ULL   /* 50 us */
#define HOLD_MAX_NS 2000000ULL /* 2 ms */
#define GAP_MAX_NS 5000000ULL  /* 5 ms */

static void hold_timed_out(server *s)
{
    if (s->gc.holding) {
        s->gc.timed_out = true;
        s->gc.hold_timeouts++;
        batch_maybe_start(s);
    }
}

/* The hold's deadline: a timerfd (microseconds; libuv's timers count whole
 * milliseconds, longer than a hold should last), else a libuv timer. */
static void on_hold_fd(uv_poll_t *p, int status, int events)
{
    server *s = p->data;
    (void)status;
    (void)events;
    uint64_t n;
    if (read(s->gc.tfd, &n, sizeof n) < 0 && errno != EAGAIN)
        hq_log(HQ_LOG_WARN, "group commit: reading the hold's timerfd: %s", strerror(errno));
    uv_poll_stop(p);
    hold_timed_out(s);
}

static void on_hold_timer(uv_timer_t *t)
{
    hold_timed_out(t->data);
}

static void arm(server *s, uint64_t ns)
{
    if (s->gc.tfd >= 0) {
        struct itimerspec its = {
            .it_value = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)}};
        if (timerfd_settime(s->gc.tfd, 0, &its, NULL) == 0) {
            uv_poll_start(&s->gc.poll, UV_READABLE, on_hold_fd);
            return;
        }
    }
    uv_timer_start(&s->gc.timer, on_hold_timer, (ns + 999999) / 1000000, 0);
}

static void disarm(server *s)
{
    if (s->gc.tfd >= 0) {
        struct itimerspec off = {0};
        timerfd_settime(s->gc.tfd, 0, &off, NULL);
        uv_poll_stop(&s->gc.poll);
    }
    uv_timer_stop(&s->gc.timer);
}

void gc_init(server *s)
{
    uv_timer_init(&s->loop, &s->gc.timer);
    s->gc.timer.data = s;
    s->gc.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->gc.tfd >= 0 && uv_poll_init(&s->loop, &s->gc.poll, s->gc.tfd) != 0) {
        close(s->gc.tfd);
        s->gc.tfd = -1;
    }
    if (s->gc.tfd >= 0)
        s->gc.poll.data = s;
    else
        hq_log(HQ_LOG_WARN, "group commit: no timerfd (%s); holds end on a millisecond timer",
               strerror(errno));
    s->gc.hold_ns = HOLD_MAX_NS / 2;
    s->gc.epoch = 1;
}

void gc_free(server *s)
{
    if (s->gc.epoch && s->gc.tfd >= 0) /* (epoch: gc_init ran) */
        close(s->gc.tfd);              /* its poll handle is closed with the loop's */
    s->gc.tfd = -1;
}

static void end_awaiting(server *s)
{
    s->gc.epoch++; /* every connection's mark is stale at once */
    s->gc.awaited = 0;
}

void gc_arrival(server *s, conn *c)
{
    if (c->gc_answered_ns) {
        uint64_t gap = uv_hrtime() - c->gc_answered_ns;
        /* Half the old mean and half the new gap: one long pause is enough
         * to stop awaiting a connection, two quick returns to start again. */
        c->gc_gap_ns = c->gc_gap_ns / 2 + gap / 2;
        c->gc_answered_ns = 0;
    }
    if (c->gc_epoch == s->gc.epoch && s->gc.awaited) {
        c->gc_epoch = 0;
        /* The last one: the held batch goes at the end of this turn, with
         * this request (it is not queued yet) and the others read in it. */
        if (--s->gc.awaited == 0 && s->gc.holding)
            batch_kick(s);
    }
}

void gc_conn_gone(server *s, conn *c)
{
    c->gc_answered_ns = 0;
    if (c->gc_epoch == s->gc.epoch && s->gc.awaited) {
        c->gc_epoch = 0;
        if (--s->gc.awaited == 0 && s->gc.holding)
            batch_kick(s);
    }
}

void gc_flush_started(server *s, uint64_t reqs, uint64_t records, uint64_t left)
{
    s->gc.flush_ns = uv_hrtime();
    s->gc.syncs++;
    s->gc.reqs += reqs;
    s->gc.records += records;
    s->gc.left += left;
    int b = 0;
    while (b < 15 && (reqs >> (b + 1)))
        b++;
    s->gc.hist[b]++;
}

void gc_flush_done(server *s, req *head)
{
    uint64_t now = uv_hrtime();
    uint64_t took = now - s->gc.flush_ns;
    if (took >= (uint64_t)WAL_SYNC_SLOW_MS * 1000000) {
        /* A slow disk: worth an operator's look, not a line per batch. */
        static hq_log_limit lim;
        hq_log_limited(&lim, now / 1000000, HQ_LOG_WARN,
                       "wal: a write and sync took %" PRIu64 " ms", took / 1000000);
    }
    s->gc.sync_ns = s->gc.sync_ns ? (s->gc.sync_ns * 7 + took) / 8 : took;
    /* Twice the sync time: on the demo machine the last of 50 clients is
     * back 200-300 us after its answer, a sync takes 150-200 us; one sync
     * time cut most holds short (33 requests a sync at 50 connections),
     * twice gave 45 at the same ops/s (docs/PERFORMANCE.md). */
    uint64_t hold = 2 * s->gc.sync_ns;
    int64_t set = hall_config_current(s->h)->wal.commit_hold_us;
    s->gc.auto_hold = set < 0;
    if (set >= 0)
        s->gc.hold_ns = (uint64_t)set * 1000;
    else
        s->gc.hold_ns = hold < HOLD_MIN_NS ? HOLD_MIN_NS : hold > HOLD_MAX_NS ? HOLD_MAX_NS : hold;
    end_awaiting(s);
    s->gc.answered_ns = now;
    /* Awaited: a connection that came back within a few holds last time
     * (one that sends now and then, a kiosk between citizens, does not). */
    uint64_t gap_max = 4 * s->gc.hold_ns > GAP_MAX_NS ? 4 * s->gc.hold_ns : GAP_MAX_NS;
    for (req *r = head; r; r = r->bnext) {
        conn *c = r->c;
        /* Awaited: its last request is answered now (nothing of it stays
         * in flight), and it came back quickly last time. */
        if (c->closed || c->tail != r || c->http)
            continue; /* (an HTTP request's conn is its own: it sends no other) */
        c->gc_answered_ns = now;
        if (c->gc_gap_ns <= gap_max && c->gc_epoch != s->gc.epoch) {
            c->gc_epoch = s->gc.epoch;
            s->gc.awaited++;
        }
    }
}

bool gc_should_hold(server *s)
{
    if (!s->gc.awaited || !s->gc.hold_ns || s->stopping || s->wal_failed || state_want_quiet(s))
        return false;
    /* When most holds end by the timer, the clients come back more slowly
     * than a sync takes (the loop is busy: the CPU, not the disk, is the
     * bottleneck): holding would idle the disk for nothing and lose the
     * overlap of applying with syncing. Then (auto only) one chance in 32
     * is held, to notice when that changes. */
    if (s->gc.auto_hold && s->gc.miss > 128 && (++s->gc.probe & 31) != 0)
        return false;
    uint64_t until = s->gc.answered_ns + s->gc.hold_ns;
    uint64_t now = uv_hrtime();
    if (now >= until)
        return false;
    s->gc.holding = true;
    s->gc.hold_began = now;
    s->gc.holds++;
    arm(s, until - now); /* gc_hold_over checks the bound at every turn too */
    return true;
}

bool gc_hold_over(server *s)
{
    if (!s->gc.holding)
        return false;
    if (s->gc.awaited && !s->gc.timed_out && !s->stopping && !s->wal_failed &&
        !state_want_quiet(s) && s->gc.p_reqs < BATCH_MAX_REQS &&
        uv_hrtime() < s->gc.answered_ns + s->gc.hold_ns)
        return false;
    gc_end_hold(s);
    return true;
}

void gc_end_hold(server *s)
{
    if (s->gc.holding) {
        s->gc.held_ns += uv_hrtime() - s->gc.hold_began;
        /* A running share of holds that the timer ended, in 1/256. */
        s->gc.miss = s->gc.miss - s->gc.miss / 8 + (s->gc.timed_out ? 32 : 0);
    }
    s->gc.holding = false;
    s->gc.timed_out = false;
    disarm(s);
    end_awaiting(s);
}

void gc_log(server *s)
{
    const gcommit *g = &s->gc;
    if (!g->syncs)
        return;
    char hist[256];
    size_t n = 0;
    hist[0] = 0;
    for (int i = 0; i < 16 && n < sizeof hist; i++)
        if (g->hist[i])
            n += (size_t)snprintf(hist + n, sizeof hist - n, "%s%llu:%" PRIu64, n ? " " : "",
                                  1ULL << i, g->hist[i]);
    hq_log(HQ_LOG_INFO,
           "group commit: %" PRIu64 " syncs carried %" PRIu64 " requests (%.2f per sync, %" PRIu64
           " records); %.2f left waiting per sync; %" PRIu64 " holds (%.0f us each), %" PRIu64
           " ended by the timer; a sync took %.0f us (mean of the last few); syncs by requests "
           "(from): %s",
           g->syncs, g->reqs, (double)g->reqs / (double)g->syncs, g->records,
           (double)g->left / (double)g->syncs, g->holds,
           g->holds ? (double)g->held_ns / (double)g->holds / 1000.0 : 0.0, g->hold_timeouts,
           (double)g->sync_ns / 1000.0, hist);
}
