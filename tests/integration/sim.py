"""A seeded simulation of one busy day of the demo hall, run against the real
hallqd on the manual clock.

Citizens arrive over the day on every line (A B C D, some with priority),
windows W01..W06 open, pause, close and call per their lines, clerks record
intakes with all four outcomes, departments claim and decide (approve, deny,
supplement), citizens bring supplements, miss their call and come back (or
come back too late), get transferred, pick results up at F or have them
mailed, and rate; at 17:00 the day closes by itself. Afterwards the clock
runs on to the first deadlines (due_soon, overdue marks).

The simulation keeps its own model of the hall and predicts the answer of
every request from it: every call's ticket (appointment class first, then
priority, then the rest; first come first served by the ticket's time
across the window's lines, ties to the window's first line, exactly as
daemon/hall/window.c reads it), every ticket number, `ahead`, case number,
deadline, claim, decision state and error code. `stats` is compared figure
by figure with the model's own counts, and at the end every ticket and
case is read back and compared. Every mutation carries an `idem`.

Crash mode: SIGKILL at seeded moments (with the request in flight or
between two requests), restart on the same data dir, re-send the
unacknowledged request with its idem, then check `stats` against the model:
acknowledged work is neither lost nor doubled.

Everything random comes from random.Random(seed) (the simulated day) and a
second generator for the kills, so a kill never changes what the day does.

As a script (a longer local run):
    python3 tests/integration/sim.py --seed 7 --citizens 3000 --build build \\
        [--crash-rounds 20] [--twin]

Appointments: appointment.book is not used yet. The model already has the
appointment class (0) in its queue keys; `Sim.appointment_arrivals` is the
hook where appointment holders will book and take tickets.
"""
import argparse
import bisect
import heapq
import datetime
from fractions import Fraction
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

import random

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hallq_client import Closed  # noqa: E402

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
TZ = 8 * HOUR                      # Asia/Shanghai, no DST
# Tuesday 2026-11-24 09:00 in Shanghai: the day simulated.
DAY_START = 1795485600000 - HOUR
DAY_STR = "2026-11-24"
DAY_COMPACT = "20261124"
STEP = 20 * SEC                    # the clock moves in steps of 20 s
LEASE = 300 * SEC
GRACE = 1800 * SEC
RETURN_BEHIND = 3
SERVICE_S = 300                    # default_service_s, for est_wait_s
OPEN_MIN, CLOSE_MIN = 9 * 60, 17 * 60

LINES = "ABCDF"
WINDOWS = {"W01": "AB", "W02": "AB", "W03": "BA", "W04": "CD", "W05": "F", "W06": "ABC"}
# The calling order within a class (protocol 1.2, rules 2): the domain
# windows take their first line's earliest ticket, the others the earliest.
BY_LINES = {"W03", "W04"}
DEPTS = ["mkt", "hrss", "pol", "res", "hsg"]
# code: (line, departments, kind, working days, checklist)
SERVICES = {
    "S01": ("B", ["mkt"], "review", 3, ["M01", "M02", "M03"]),
    "S02": ("A", ["hrss"], "instant", 0, ["M02", "M04"]),
    "S03": ("A", ["pol"], "review", 7, ["M02", "M04", "M05"]),
    "S04": ("B", ["mkt", "res", "hsg"], "review", 10, ["M01", "M02", "M03", "M06", "M07"]),
    "S05": ("A", ["res"], "review", 5, ["M02", "M08", "M09"]),
    "S06": ("A", ["hsg"], "instant", 0, ["M02", "M10"]),
}
LINE_SERVICES = {"A": ["S02", "S02", "S03", "S05", "S06", "S06"], "B": ["S01", "S01", "S04"]}
MATERIALS = ["M%02d" % i for i in range(1, 11)]
HOLIDAYS = {datetime.date(2026, 10, d) for d in range(1, 8)} | {datetime.date(2027, 1, 1)}
EXTRA_DAYS = {datetime.date(2026, 10, 10)}
EPOCH = datetime.date(1970, 1, 1)


# ---- the hall's calendar (as daemon/hall/calendar.c) ----

def local_day(ms):
    return (ms + TZ) // DAY


def local_ms(day, minute):
    return day * DAY + minute * MIN - TZ


def is_working(day):
    d = EPOCH + datetime.timedelta(days=day)
    if d in EXTRA_DAYS:
        return True
    return d.weekday() < 5 and d not in HOLIDAYS


def add_working_days(day, n):
    for _ in range(n):
        day += 1
        while not is_working(day):
            day += 1
    return day


def working_days_between(a, b):
    return sum(1 for d in range(a, b) if is_working(d))


def deadline_ms(now, days):
    return local_ms(add_working_days(local_day(now), days), CLOSE_MIN)


def business_day(ms):
    d = local_day(ms)
    if is_working(d) and (ms + TZ) % DAY < CLOSE_MIN * MIN:
        return d
    return add_working_days(d, 1)


def day_str(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


class Err:
    """An expected error answer."""

    def __init__(self, code, text=None):
        self.code, self.text = code, text

    def __repr__(self):
        return "Err(%s%s)" % (self.code, ", %r" % self.text if self.text else "")


class SimFailure(AssertionError):
    pass


# ---- the model ----

class MTicket:
    __slots__ = ("id", "number", "line", "day", "state", "cls", "priority", "taken_ms",
                 "order_ms", "seq", "window", "called_ms", "first_call_ms", "case_no", "key",
                 "no_show_ms", "done_count", "visit")

    def pack(self, model):
        d = {"ticket_id": self.id, "number": self.number, "line": self.line,
             "state": self.state}
        if self.state == "waiting":
            d["ahead"] = model.ahead(self)
        if self.window:
            d["window"] = self.window
        return d


def _contains(new, old):
    """`new` has every value of `old`; its maps may have more keys."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _contains(new[k], v)
                                             for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and \
            all(_contains(a, b) for a, b in zip(new, old))
    return new == old


class MCase:
    __slots__ = ("no", "service", "state", "deps", "lease", "accepted_ms", "deadline_ms",
                 "due_soon", "overdue", "missing", "supp_start", "instant", "citizen")

    def pack(self):
        return {"case_no": self.no, "service": self.service, "state": self.state,
                "departments": [{"department": d, "state": s} for d, s in self.deps.items()],
                "accepted_ms": self.accepted_ms, "deadline_ms": self.deadline_ms,
                "due_soon": self.due_soon, "overdue": self.overdue,
                "ready": self.state in ("approved", "denied"),
                "delivered": self.state == "delivered"}


class Model:
    """What the hall should be, kept by the simulation alone. Each op method
    applies the op to the model when it succeeds and returns the expected
    result map, or an Err."""

    def __init__(self, now):
        self.now = now
        self.closed_through = now          # the config record's time
        self.tickets = {}
        self.queues = {l: [] for l in LINES}     # sorted [(key, ticket id)]
        self.line_day = {l: None for l in LINES}
        self.line_no = {l: 0 for l in LINES}
        self.seq = 0
        self.windows = {w: {"state": "closed", "current": None} for w in WINDOWS}
        self.cases = {}
        self.case_day, self.case_seq = None, 0
        self.review = {d: set() for d in DEPTS}  # case numbers in the review index
        self.rated = set()
        self.timers = []    # heap of (at, n, kind, case_no, dept), checked when due
        self.n_timers = 0
        # stats
        self.lstat = {}     # (day, line) -> [taken, served, no_show, expired, waits(list ms)]
        self.wstat = {}     # (day, window) -> [served, service_ms]
        self.cstat = {}     # local day -> [accepted, instant, notified, refused, delivered]
        self.rstat = {}     # local day -> [count, good]

    # -- stats helpers --
    def _l(self, day, line):
        return self.lstat.setdefault((day, line), [0, 0, 0, 0, []])

    def _c(self, now):
        return self.cstat.setdefault(local_day(now), [0, 0, 0, 0, 0])

    # -- time-driven records: they run at the start of every mutation's
    #    batch, and after clock.advance, in time order --
    def run_due(self):
        while True:
            t_close = self.next_close()
            t_case, act = self.next_case_timer()
            due = min(t_close, t_case)
            if due > self.now:
                return
            if t_close <= t_case:
                self.day_close(t_close)
            else:
                act()

    def next_close(self):
        d = local_day(self.closed_through)
        for _ in range(3700):
            if is_working(d):
                t = local_ms(d, CLOSE_MIN)
                if t > self.closed_through:
                    return t
            d += 1
        return 1 << 62

    def add_timer(self, at, kind, no, dept=""):
        self.n_timers += 1
        heapq.heappush(self.timers, (at, self.n_timers, kind, no, dept))

    def deadline_timers(self, c):
        self.add_timer(local_ms(local_day(c.deadline_ms), OPEN_MIN), "due_soon", c.no)
        self.add_timer(c.deadline_ms + 1, "overdue", c.no)

    def _timer_live(self, e):
        at, _, kind, no, dept = e
        c = self.cases[no]
        if kind == "lease":
            return c.deps[dept] == "claimed" and c.lease.get(dept) == at
        if c.state != "review":
            return False
        if kind == "due_soon":
            return not c.due_soon and local_ms(local_day(c.deadline_ms), OPEN_MIN) == at
        return not c.overdue and c.deadline_ms + 1 == at

    def next_case_timer(self):
        # Timers live while their case is in review (deadline marks) or
        # its department holds the claim (lease); stale entries are dropped.
        while self.timers and not self._timer_live(self.timers[0]):
            heapq.heappop(self.timers)
        if not self.timers:
            return 1 << 62, None
        e = self.timers[0]

        def act():
            heapq.heappop(self.timers)
            c = self.cases[e[3]]
            if e[2] == "lease":
                self.lease_out(c, e[4])
            elif e[2] == "due_soon":
                c.due_soon = True
            else:
                c.overdue = True
        return e[0], act

    def lease_out(self, c, d):
        c.deps[d] = "pending"
        del c.lease[d]
        self.review[d].add(c.no)

    def day_close(self, at):
        n = 0
        for line, q in self.queues.items():
            for key, tid in q:
                t = self.tickets[tid]
                t.state, t.key = "expired", None
                self._l(t.day, t.line)[3] += 1
                n += 1
            q.clear()
        for w in self.windows.values():
            w["state"] = "closed"
        self.closed_through = at
        return n

    def advance(self, ms):
        self.run_due()
        self.now += ms
        self.run_due()
        return {"now_ms": self.now}

    # -- queue --
    def ahead(self, t):
        q = self.queues[t.line]
        return bisect.bisect_left(q, (t.key, ""))

    def _queue_put(self, t, key):
        t.key, t.cls, t.state = key, key[0], "waiting"
        bisect.insort(self.queues[t.line], (key, t.id))

    def _queue_del(self, t):
        q = self.queues[t.line]
        i = bisect.bisect_left(q, (t.key, t.id))
        assert q[i] == (t.key, t.id), "model queue broken"
        del q[i]
        t.key = None

    def predict_call(self, wid):
        best = None
        for cls in range(3):
            for line in WINDOWS[wid]:
                q = self.queues[line]
                i = bisect.bisect_left(q, ((cls,), ""))
                if i < len(q) and q[i][0][0] == cls:
                    if best is None or q[i][0][1:3] < best[0][1:3]:
                        best = q[i]
                    if wid in BY_LINES:
                        break
            if best:
                return self.tickets[best[1]]
        return None

    # -- kiosk --
    def take(self, line, priority=False, case_no=None, visit=None):
        if line not in self.queues:
            return Err("not_found")
        if case_no is not None:
            c = self.cases.get(case_no)
            if c is None:
                return Err("not_found")
            if c.state not in ("approved", "denied"):
                return Err("conflict")
        day = business_day(self.now)
        if self.line_day[line] != day:
            self.line_day[line], self.line_no[line] = day, 0
        self.line_no[line] += 1
        self.seq += 1
        t = MTicket()
        t.number = "%s%03d" % (line, self.line_no[line])
        t.id = "%s-%s" % (day_str(day).replace("-", ""), t.number)
        t.line, t.day, t.priority = line, day, priority
        t.taken_ms = t.order_ms = self.now
        t.seq, t.window, t.called_ms, t.first_call_ms = self.seq, "", 0, 0
        t.case_no, t.no_show_ms, t.done_count, t.visit = case_no, 0, 0, visit
        self.tickets[t.id] = t
        self._queue_put(t, (1 if priority else 2, t.order_ms, t.seq))
        ahead = self.ahead(t)
        self._l(day, line)[0] += 1
        return {"ticket_id": t.id, "number": t.number, "line": line, "ahead": ahead,
                "est_wait_s": ahead * SERVICE_S, "taken_ms": self.now}

    def ticket_return(self, tid):
        t = self.tickets.get(tid)
        if t is None:
            return Err("not_found")
        if t.state != "no_show":
            return Err("conflict", "not no_show")
        if self.now - t.no_show_ms > GRACE:
            return Err("conflict", "grace")
        q = self.queues[t.line]
        if q:
            # Right behind the return_behind-th waiting ticket of its line
            # (the last one when fewer wait), before the one after it: a key
            # strictly between the two. It takes the anchor's class and
            # time (its first three fields), as the daemon's queue keys do.
            p = min(RETURN_BEHIND, len(q))
            a = q[p - 1][0]
            base, lo = a[:3], (a[3] if len(a) > 3 else Fraction(0))
            hi = lo + 2 ** 64
            if p < len(q) and q[p][0][:3] == base:
                hi = q[p][0][3]
            key = base + ((lo + hi) / 2,)
        else:
            t.order_ms = self.now
            key = (2, self.now, t.seq)
        t.window = ""
        self._queue_put(t, key)
        return {"ahead": self.ahead(t)}

    def rate(self, score, ticket_id=None, case_no=None):
        if ticket_id is not None:
            if ticket_id not in self.tickets:
                return Err("not_found")
            k = "t" + ticket_id
        else:
            if case_no not in self.cases:
                return Err("not_found")
            k = "c" + case_no
        if k in self.rated:
            return Err("conflict")
        self.rated.add(k)
        r = self.rstat.setdefault(local_day(self.now), [0, 0])
        r[0] += 1
        r[1] += score >= 4
        return {}

    # -- windows --
    def window_state(self, wid, state):
        w = self.windows[wid]
        if state == "closed" and w["current"]:
            return Err("conflict")
        w["state"] = state
        return {}

    def call(self, wid):
        w = self.windows[wid]
        if w["state"] != "open":
            return Err("conflict", w["state"])
        if w["current"]:
            return Err("conflict", "already")
        t = self.predict_call(wid)
        if t is None:
            return {"ticket": None}
        self._queue_del(t)
        t.state, t.window, t.called_ms = "called", wid, self.now
        if not t.first_call_ms:
            t.first_call_ms = self.now
            self._l(t.day, t.line)[4].append(max(0, self.now - t.taken_ms))
        w["current"] = t.id
        return {"ticket": t.pack(self)}

    def current(self, wid):
        tid = self.windows[wid]["current"]
        return self.tickets[tid] if tid else None

    def recall(self, wid):
        t = self.current(wid)
        if t is None:
            return Err("conflict")
        return {"ticket": t.pack(self)}

    def end(self, wid, done):
        t = self.current(wid)
        if t is None:
            return Err("conflict")
        w = self.windows[wid]
        if done:
            t.state = "done"
            t.done_count += 1
            ws = self.wstat.setdefault((t.day, wid), [0, 0])
            ws[0] += 1
            ws[1] += self.now - t.called_ms
            self._l(t.day, t.line)[1] += 1
        else:
            t.state, t.no_show_ms = "no_show", self.now
            self._l(t.day, t.line)[2] += 1
        w["current"] = None
        return {}

    def transfer(self, wid, line):
        if line not in self.queues:
            return Err("not_found")
        t = self.current(wid)
        if t is None:
            return Err("conflict")
        t.line, t.window, t.called_ms = line, "", 0
        # Same class, same time, new line.
        self._queue_put(t, (t.cls, t.order_ms, t.seq))
        self.windows[wid]["current"] = None
        return {}

    def intake(self, wid, service, materials, outcome, reason=None):
        if outcome not in ("accept", "notify", "refuse", "instant"):
            return Err("bad_request")
        if service not in SERVICES:
            return Err("not_found")
        line, deps, kind, days, checklist = SERVICES[service]
        t = self.current(wid)
        if t is None:
            return Err("conflict")
        missing = [m for m in checklist if m not in materials]
        if outcome in ("accept", "instant") and missing:
            return Err("checklist")
        if outcome == "notify" and not missing:
            return Err("checklist")
        if outcome == "instant" and kind != "instant":
            return Err("checklist")
        if outcome == "refuse" and not reason:
            return Err("bad_request")
        cs = self._c(self.now)
        cs[{"accept": 0, "notify": 2, "refuse": 3, "instant": 1}[outcome]] += 1
        t.state = "serving"
        if outcome == "notify":
            return {"missing": missing}
        if outcome == "refuse":
            return {}
        today = local_day(self.now)
        if self.case_day != today:
            self.case_day, self.case_seq = today, 0
        self.case_seq += 1
        c = MCase()
        c.no = "%s-%04d" % (day_str(today).replace("-", ""), self.case_seq)
        c.service, c.accepted_ms = service, self.now
        c.deadline_ms = deadline_ms(self.now, days)
        c.due_soon = c.overdue = False
        c.missing, c.supp_start, c.lease, c.citizen = [], 0, {}, None
        c.instant = outcome == "instant"
        if c.instant:
            c.state = "approved"
            c.deps = {d: "approved" for d in deps}
        else:
            c.state = "review"
            c.deps = {d: "pending" for d in deps}
            for d in deps:
                self.review[d].add(c.no)
        self.cases[c.no] = c
        if not c.instant:
            self.deadline_timers(c)
        if c.instant:
            return {"case_no": c.no}
        return {"case_no": c.no, "deadline_ms": c.deadline_ms}

    def supplement(self, case_no, materials):
        c = self.cases.get(case_no)
        if c is None:
            return Err("not_found")
        if c.state != "supplement":
            return Err("conflict")
        if any(m not in materials for m in c.missing):
            return Err("checklist")
        moved = working_days_between(local_day(c.supp_start), local_day(self.now))
        c.deadline_ms = local_ms(add_working_days(local_day(c.deadline_ms), moved), CLOSE_MIN)
        c.state, c.supp_start, c.missing = "review", 0, []
        c.due_soon = c.overdue = False
        for d, s in c.deps.items():
            if s in ("approved", "denied"):
                continue
            c.deps[d] = "pending"
            c.lease.pop(d, None)
            self.review[d].add(c.no)
        self.deadline_timers(c)
        return {"deadline_ms": c.deadline_ms}

    def deliver(self, case_no, method, tracking=None):
        if method not in ("counter", "mail"):
            return Err("bad_request")
        if method == "mail" and not tracking:
            return Err("bad_request")
        c = self.cases.get(case_no)
        if c is None:
            return Err("not_found")
        if c.state not in ("approved", "denied"):
            return Err("conflict")
        c.state = "delivered"
        self._c(self.now)[4] += 1
        return {}

    # -- departments --
    def predict_claim(self, dept):
        if not self.review[dept]:
            return None
        return min(self.review[dept], key=lambda no: (self.cases[no].deadline_ms, no))

    def claim(self, dept):
        no = self.predict_claim(dept)
        if no is None:
            return {"case": None}
        c = self.cases[no]
        self.review[dept].discard(no)
        c.deps[dept] = "claimed"
        c.lease[dept] = self.now + LEASE
        self.add_timer(c.lease[dept], "lease", no, dept)
        return {"case": c.pack(), "lease_until_ms": c.lease[dept]}

    def decide(self, dept, case_no, decision, reason=None, missing=None):
        if decision not in ("approve", "deny", "supplement"):
            return Err("bad_request")
        if decision == "deny" and not reason:
            return Err("bad_request")
        if decision == "supplement" and not missing:
            return Err("bad_request")
        c = self.cases.get(case_no)
        if c is None:
            return Err("not_found")
        if dept not in c.deps:
            return Err("forbidden")
        if c.deps[dept] != "claimed" or c.lease[dept] < self.now:
            return Err("conflict")
        checklist = SERVICES[c.service][4]
        if decision == "supplement" and any(m not in checklist for m in missing):
            return Err("checklist")
        del c.lease[dept]
        if decision == "approve":
            c.deps[dept] = "approved"
            if all(s == "approved" for s in c.deps.values()):
                c.state = "approved"
        else:
            c.deps[dept] = "denied" if decision == "deny" else "supplement"
            c.state = "denied" if decision == "deny" else "supplement"
            if decision == "supplement":
                c.supp_start, c.missing = self.now, list(missing)
            for d, s in c.deps.items():
                if s == "claimed":
                    c.deps[d] = "pending"
                    del c.lease[d]
                elif s == "pending":
                    self.review[d].discard(c.no)
        return {"state": c.state}

    # -- stats --
    def stats(self, day=None):
        live = business_day(self.now)
        day = local_day(self.now) if day is None else day  # 1.2: the hall's date
        lines = {}
        for l in LINES:
            taken, served, no_show, expired, waits = self.lstat.get((day, l), [0, 0, 0, 0, []])
            n = len(waits)
            p90 = sorted(w // 1000 for w in waits)[(n * 9 + 9) // 10 - 1] if n else 0
            q = self.queues[l] if day == live else []
            longest = max(((self.now - self.tickets[tid].taken_ms) // 1000 for _, tid in q),
                          default=0)
            lines[l] = {"taken": taken, "served": served, "no_show": no_show,
                        "expired": expired, "waiting": len(q),
                        "wait_avg_s": sum(waits) // n // 1000 if n else 0,
                        "wait_p90_s": p90, "longest_wait_s": longest}
        windows = {}
        for w in WINDOWS:
            served, ms = self.wstat.get((day, w), [0, 0])
            windows[w] = {"served": served, "service_avg_s": ms // served // 1000 if served else 0}
        depts = {d: {"in_review": 0, "due_soon": 0, "overdue": 0} for d in DEPTS}
        for c in self.cases.values():
            if c.state != "review":
                continue
            for d, s in c.deps.items():
                if s in ("pending", "claimed"):
                    depts[d]["in_review"] += 1
                    depts[d]["due_soon"] += c.due_soon and not c.overdue
                    depts[d]["overdue"] += c.overdue
        acc, inst, noti, ref, dlv = self.cstat.get(day, [0, 0, 0, 0, 0])
        outcomes = acc + inst + noti + ref
        cnt, good = self.rstat.get(day, [0, 0])
        return {"day": day_str(day), "now_ms": self.now, "lines": lines, "windows": windows,
                "departments": depts,
                "cases": {"accepted": acc, "instant": inst, "notified": noti, "refused": ref,
                          "delivered": dlv,
                          "instant_rate": inst / outcomes if outcomes else 0.0},
                "ratings": {"count": cnt, "good_share": good / cnt if cnt else 0.0}}


# ---- the wire: connections, idem, kills and restarts ----

class Net:
    """The simulation's connections to one hallqd (one per kiosk, window,
    department, admin), made again after a restart. Every mutation gets a
    unique idem; a request whose connection dies because we killed the
    daemon is sent again, with the same idem, to the restarted daemon."""

    TOKENS = dict([("kiosk", ("tcp", "kiosk-demo")), ("admin", ("unix", "admin-demo"))] +
                  [(w, ("tcp", "window-" + w)) for w in WINDOWS] +
                  [(d, ("unix", "dept-" + d)) for d in DEPTS])

    def __init__(self, daemon, seed, kill_rng=None, kill_every=0, max_kills=0):
        self.d = daemon
        self.conns = {}
        self.tag = "s%s" % seed
        self.n_mut = 0
        self.n_ops = 0
        self.kill_rng = kill_rng
        self.kill_every = kill_every
        self.max_kills = max_kills
        self.countdown = self._next_kill() if kill_rng and kill_every else None
        self.kills = 0
        self.resent = 0
        self.outcomes = {}      # what the kills hit: see Sim.check_after_restart
        self.lsn_at_restart = None
        self.dead = False
        self.restarts = 0
        self.after_restart = None   # set when a retried request completes

    def client(self, name):
        c = self.conns.get(name)
        if c is None:
            kind, token = self.TOKENS[name]
            c = self.d.tcp(token) if kind == "tcp" else self.d.unix(token)
            self.conns[name] = c
        return c

    def close_all(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def restart(self):
        self.close_all()
        self.d.start()
        self.dead = False
        self.restarts += 1
        self.lsn_at_restart = self.lsn()

    def lsn(self):
        r = self.request("admin", "digest", {}, False)
        return r["result"]["lsn"]

    def kill(self):
        self.d.kill()
        self.dead = True
        self.kills += 1

    def _next_kill(self):
        return self.kill_rng.randint(self.kill_every // 2, self.kill_every * 3 // 2)

    def _kill_due(self):
        if self.countdown is None or self.kills >= self.max_kills:
            return None
        self.countdown -= 1
        if self.countdown > 0:
            return None
        self.countdown = self._next_kill()
        return self.kill_rng.choice(("before", "inflight", "inflight", "inflight"))

    def request(self, name, op, args, mutation):
        """The response map. A mutation gets its idem here."""
        args = dict(args)
        if mutation:
            self.n_mut += 1
            args["idem"] = "%s-%d" % (self.tag, self.n_mut)
        self.n_ops += 1
        kill = kill_mode = self._kill_due() if mutation else None
        resent = False
        restarts = self.restarts
        for attempt in range(6):
            if self.dead:
                self.restart()
            try:
                c = self.client(name)
                if kill == "before":
                    kill = None
                    self.kill()
                    continue
                id = c.send(op, args)
                if kill == "inflight":
                    kill = None
                    delay = self.kill_rng.choice((0, self.kill_rng.uniform(0, 0.002)))
                    if delay:
                        threading.Event().wait(delay)
                    self.kill()
                m = c.read_response()
            except (Closed, OSError) as e:
                if not self.dead:
                    raise SimFailure("connection %s lost during %s (the daemon was not killed): "
                                     "%r\n%s" % (name, op, e, self.d.log_tail(20)))
                resent = True
                self.resent += 1
                continue
            if m.get("id") != id:
                raise SimFailure("%s: answer to id %s expected, got %r" % (op, id, m))
            if resent or self.dead or self.restarts != restarts:
                self.after_restart = (op, resent, kill_mode)
            return m
        raise SimFailure("%s: no answer after %d restarts" % (op, attempt))


# ---- the simulated citizens and staff ----

class Visit:
    """One ticket's worth of a citizen's business."""
    __slots__ = ("kind", "line", "priority", "apps", "case_no", "absent", "ticket", "person",
                 "transfer_to", "rate", "calls")

    def __init__(self, kind, line, priority=False):
        self.kind, self.line, self.priority = kind, line, priority
        self.apps, self.case_no, self.absent, self.ticket = [], None, False, None
        self.person, self.transfer_to, self.rate, self.calls = None, None, None, 0


class Sim:
    def __init__(self, net, seed, citizens, log=None):
        self.net = net
        self.seed = seed
        self.rng = random.Random(seed)
        self.citizens = citizens
        self.m = Model(DAY_START)
        self.log = log or (lambda s: None)
        self.step_no = 0
        self.popped = False
        self.after_hours = False
        self.events = {}            # time ms -> [callables], run at that step
        self.desks = {w: None for w in WINDOWS}   # window -> {visit, phase, at}
        self.closing = {}           # window -> "closed" / "paused" wanted when free
        self.claims = {d: {} for d in DEPTS}      # dept -> {case_no: decide_at or None}
        self.counts = {k: 0 for k in (
            "citizens", "tickets", "calls", "empty_calls", "no_shows", "returns", "late_returns",
            "transfers", "intakes", "accept", "notify", "refuse", "instant", "cases",
            "claims", "empty_claims", "approve", "deny", "supplement", "lease_lost",
            "supplements_brought", "pickups", "mail", "counter", "ratings", "errors_expected",
            "stats_checks", "recalls")}
        # Service time per window visit, in steps, scaled to the day's load
        # so the windows keep up roughly (some tickets still expire).
        per_window = (8 * HOUR // STEP) * 4 / max(1.0, 0.85 * citizens)
        self.svc_max = max(2, int(round(2 * per_window * 0.9)))
        self.plan_arrivals()
        self.plan_windows()

    # -- helpers --
    def fail(self, msg):
        raise SimFailure("seed %s, step %d (%s): %s" % (
            self.seed, self.step_no, time_str(self.m.now), msg))

    def at(self, ms, fn, kind="citizen"):
        """Runs fn at the step of time ms (or the next step). After hours
        only "staff" events run: citizens have gone home."""
        ms = max(ms, self.m.now + (STEP if self.popped else 0))
        ms = DAY_START + -(-(ms - DAY_START) // STEP) * STEP   # onto a step
        self.events.setdefault(ms, []).append((kind, fn))

    def run_events(self, staff_only=False):
        evs = self.events.pop(self.m.now, [])
        self.popped = True
        for kind, fn in evs:
            if kind == "staff" or not staff_only:
                fn()

    def send(self, conn, op, expected, mutation=True, **args):
        """Sends op and checks its answer against `expected` (a result map
        or an Err); returns the result."""
        m = self.net.request(conn, op, args, mutation)
        try:
            return self._check(conn, op, args, expected, m)
        finally:
            how = self.net.after_restart
            if how:
                self.net.after_restart = None
                self.check_after_restart(how)

    def _check(self, conn, op, args, expected, m):
        if isinstance(expected, Err):
            if m["ok"]:
                self.fail("%s %s %r: expected %r, got ok %r" % (conn, op, args, expected,
                                                                m["result"]))
            if m["error"]["code"] != expected.code:
                self.fail("%s %s %r: expected %r, got %r" % (conn, op, args, expected,
                                                             m["error"]))
            self.counts["errors_expected"] += 1
            return None
        if not m["ok"]:
            self.fail("%s %s %r: expected %r, got error %r" % (conn, op, args, expected,
                                                               m["error"]))
        # review.claim's case is the reviewer's view (rules 3): the model
        # predicts its first ten keys, the rest (the application, the
        # history) is checked by test_hall_cases.c.
        same = _contains(m["result"], expected) if op == "review.claim" else \
            m["result"] == expected
        if not same:
            self.fail("%s %s %r:\n  expected %r\n  got      %r" % (conn, op, args, expected,
                                                                 m["result"]))
        return m["result"]

    def mut(self, conn, op, model_fn, **args):
        """A mutation: the model first runs what is due, then predicts."""
        self.m.run_due()
        return self.send(conn, op, model_fn(), **args)

    # -- the day's plan --
    def plan_arrivals(self):
        rng = self.rng
        span = (7 * 60 + 50) * MIN   # arrivals 09:00..16:50
        for i in range(self.citizens):
            # Two peaks (mid-morning, early afternoon) over a flat base.
            r = rng.random()
            if r < 0.35:
                t = rng.gauss(1.3 * HOUR, 0.7 * HOUR)
            elif r < 0.65:
                t = rng.gauss(5.3 * HOUR, 0.8 * HOUR)
            else:
                t = rng.uniform(0, span)
            t = int(min(max(t, 0), span))
            kind = rng.choices(["A", "B", "C", "D"], [46, 27, 18, 9])[0]
            v = self.new_visit(kind)
            self.at(DAY_START + t, lambda v=v: self.arrive(v))

    def new_visit(self, line):
        rng = self.rng
        if line in "AB":
            v = Visit("apply", line, rng.random() < 0.08)
            for _ in range(1 if rng.random() < 0.85 else 2):
                v.apps.append(rng.choice(LINE_SERVICES[line]))
            if rng.random() < 0.03:
                v.transfer_to = "C"      # came to the wrong line: a question
        elif line == "C":
            v = Visit("consult", "C", rng.random() < 0.08)
            if rng.random() < 0.10:
                v.transfer_to = rng.choice("AB")
        else:
            v = Visit("complaint", "D", rng.random() < 0.05)
        v.person = self.person(v.line)
        return v

    def person(self, line):
        if line == "B":
            return {"kind": "org", "id": "91110000%010d" % self.rng.randrange(10 ** 10),
                    "name": "Shop %d" % self.rng.randrange(10000)}
        return {"kind": "person", "id": "1101011990%08d" % self.rng.randrange(10 ** 8)}

    def plan_windows(self):
        # (time, window, state): lunch pauses, W06 part-time, W03 a break.
        t = lambda h, m=0: DAY_START + (h - 9) * HOUR + m * MIN
        plan = [(t(9), w, "open") for w in ("W01", "W02", "W03", "W04", "W05")]
        plan += [(t(10), "W06", "open"), (t(12), "W01", "paused"), (t(12, 40), "W01", "open"),
                 (t(12, 40), "W02", "paused"), (t(13, 20), "W02", "open"),
                 (t(15), "W03", "paused"), (t(15, 20), "W03", "open"),
                 (t(12, 20), "W04", "paused"), (t(13), "W04", "open"),
                 (t(15, 30), "W06", "closed"), (t(16), "W06", "open")]
        for ms, w, st in plan:
            self.at(ms, lambda w=w, st=st: self.window_plan(w, st), "staff")

    def appointment_arrivals(self):
        """Hook for appointment holders: when appointment.book lands, book
        slots here and take tickets with `appointment` (class 0 in the
        model's queue keys, already ordered first by predict_call)."""
        return []

    # -- kiosk side --
    def arrive(self, v):
        self.counts["citizens"] += 1
        self.take(v)

    def take(self, v):
        args = {"line": v.line}
        if v.priority:
            args["priority"] = True
        if v.kind == "pickup":
            args["case_no"] = v.case_no
        r = self.mut("kiosk", "ticket.take",
                     lambda: self.m.take(v.line, v.priority, v.case_no if v.kind == "pickup"
                                         else None, v), **args)
        v.ticket = r["ticket_id"]
        self.counts["tickets"] += 1

    def come_back(self, v):
        # A no-show citizen returns; after the grace the kiosk says no.
        self.counts["returns"] += 1
        r = self.mut("kiosk", "ticket.return", lambda: self.m.ticket_return(v.ticket),
                     ticket_id=v.ticket)
        if r is None:
            self.counts["late_returns"] += 1

    # -- windows --
    def window_plan(self, w, st):
        if st == "open":
            self.closing.pop(w, None)
            self.mut(w, "window.state", lambda: self.m.window_state(w, "open"), state="open")
        elif self.m.windows[w]["current"]:
            if st == "closed":   # not while a citizen is at the window
                self.mut(w, "window.state", lambda: self.m.window_state(w, "closed"),
                         state="closed")
            self.closing[w] = st
        else:
            self.mut(w, "window.state", lambda: self.m.window_state(w, st), state=st)
            if st == "paused" and self.rng.random() < 0.5:
                self.mut(w, "window.call", lambda: self.m.call(w))   # conflict: paused

    def run_window(self, w):
        desk = self.desks[w]
        if desk is not None and desk["at"] <= self.m.now:
            v = desk["visit"]
            if desk["phase"] == "absent":
                if desk.get("recall") and self.rng.random() < 0.5:
                    desk["recall"] = False
                    self.counts["recalls"] += 1
                    self.mut(w, "window.recall", lambda: self.m.recall(w))
                    desk["at"] = self.m.now + STEP
                    return
                self.mut(w, "window.no_show", lambda: self.m.end(w, False))
                self.counts["no_shows"] += 1
                self.desks[w] = None
                if self.rng.random() < 0.55:
                    later = self.m.now + self.rng.randint(1, 110) * STEP
                    v.absent = self.rng.random() < 0.1
                    if later < DAY_START + 8 * HOUR:
                        self.at(later, lambda v=v: self.come_back(v))
            else:
                self.serve(w, v)
        desk = self.desks[w]
        if desk is None and w in self.closing:
            st = self.closing.pop(w)
            if self.m.windows[w]["state"] != "closed":
                self.mut(w, "window.state", lambda: self.m.window_state(w, st), state=st)
            return
        if desk is None and self.m.windows[w]["state"] == "open":
            r = self.mut(w, "window.call", lambda: self.m.call(w))
            if r["ticket"] is None:
                self.counts["empty_calls"] += 1
                return
            self.counts["calls"] += 1
            t = self.m.tickets[r["ticket"]["ticket_id"]]
            v = t.visit
            v.calls += 1
            if r["ticket"]["line"] not in WINDOWS[w]:
                self.fail("%s called %r off its lines" % (w, r["ticket"]))
            if t.done_count:
                self.fail("ticket %s called after it was done" % t.id)
            if v.calls == 1 and self.rng.random() < 0.06:
                v.absent = True
            if v.absent:
                v.absent = False
                self.desks[w] = {"visit": v, "phase": "absent", "recall": True,
                                 "at": self.m.now + self.rng.randint(1, 3) * STEP}
            else:
                self.desks[w] = {"visit": v, "phase": "serving",
                                 "at": self.m.now + self.rng.randint(1, self.svc_max) * STEP}

    def serve(self, w, v):
        rng = self.rng
        self.desks[w] = None
        if rng.random() < 0.04:
            self.counts["recalls"] += 1
            self.mut(w, "window.recall", lambda: self.m.recall(w))
        # After hours nobody is sent to another line: it would wait in the
        # next business day's queue (the close has run).
        if v.transfer_to and v.kind in ("apply", "consult") and not self.after_hours:
            to = v.transfer_to
            v.transfer_to = None
            self.counts["transfers"] += 1
            self.mut(w, "window.transfer", lambda: self.m.transfer(w, to), line=to)
            if to == "C":
                v.kind, v.apps = "consult", []
            else:
                v.kind = "apply"
                v.apps = [rng.choice(LINE_SERVICES[to])]
                v.person = self.person(to)
            v.line = to
            return
        if v.kind == "apply":
            for svc in v.apps:
                self.application(w, v, svc)
        elif v.kind == "supplement":
            self.bring_supplement(w, v)
        elif v.kind == "pickup":
            c = self.m.cases[v.case_no]
            if rng.random() < 0.02:   # no such case: the clerk mistyped
                self.mut(w, "case.deliver", lambda: self.m.deliver("20261124-9999", "counter"),
                         case_no="20261124-9999", method="counter")
            self.mut(w, "case.deliver", lambda: self.m.deliver(c.no, "counter"),
                     case_no=c.no, method="counter")
            self.counts["counter"] += 1
            self.maybe_rate_case(c.no)
        self.mut(w, "window.done", lambda: self.m.end(w, True))
        if rng.random() < 0.35:
            self.rate_ticket(v.ticket)

    def application(self, w, v, svc):
        rng = self.rng
        line, deps, kind, days, checklist = SERVICES[svc]
        self.counts["intakes"] += 1
        if rng.random() < 0.05:
            outcome, reason, mats = "refuse", "not in this hall's scope", []
        else:
            complete = rng.random() < 0.8
            mats = list(checklist)
            if not complete:
                drop = rng.sample(mats, rng.randint(1, len(mats)))
                mats = [m for m in mats if m not in drop]
            if rng.random() < 0.2:
                mats.append(rng.choice(MATERIALS))       # an extra paper is fine
            rng.shuffle(mats)
            mats = sorted(set(mats), key=mats.index)
            missing = [m for m in checklist if m not in mats]
            if missing:
                outcome = "notify"
                if rng.random() < 0.05:   # the clerk tries to accept anyway
                    self.mut(w, "window.intake",
                             lambda: self.m.intake(w, svc, mats, "accept"),
                             service=svc, applicant=v.person, materials=mats, outcome="accept")
            elif kind == "instant":
                outcome = "accept" if rng.random() < 0.04 else "instant"
            else:
                outcome = "accept"
                if rng.random() < 0.04:   # instant is refused for a review service
                    self.mut(w, "window.intake",
                             lambda: self.m.intake(w, svc, mats, "instant"),
                             service=svc, applicant=v.person, materials=mats, outcome="instant")
            reason = None
        args = {"service": svc, "applicant": v.person, "materials": mats, "outcome": outcome}
        if reason:
            args["reason"] = reason
        r = self.mut(w, "window.intake", lambda: self.m.intake(w, svc, mats, outcome, reason),
                     **args)
        self.counts[outcome] += 1
        if outcome == "notify":
            # Some come back later the same day with everything.
            if rng.random() < 0.3:
                nv = Visit("apply", v.line, v.priority)
                nv.apps, nv.person = [svc], v.person
                self.at(self.m.now + rng.randint(15, 180) * STEP, lambda: self.arrive_again(nv))
        elif outcome in ("accept", "instant"):
            self.counts["cases"] += 1
            c = self.m.cases[r["case_no"]]
            c.citizen = v
            if outcome == "instant":
                if rng.random() < 0.85:
                    self.mut(w, "case.deliver", lambda: self.m.deliver(c.no, "counter"),
                             case_no=c.no, method="counter")
                    self.counts["counter"] += 1
                    self.maybe_rate_case(c.no)
                else:
                    self.result_ready(c)

    def arrive_again(self, v):
        self.take(v)

    def bring_supplement(self, w, v):
        c = self.m.cases[v.case_no]
        mats = list(c.missing)
        if self.rng.random() < 0.1 and len(mats) > 1:
            short = mats[1:]    # forgot one: checklist, then found it
            self.mut(w, "case.supplement", lambda: self.m.supplement(c.no, short),
                     case_no=c.no, materials=short)
        if self.rng.random() < 0.3:
            mats.append(self.rng.choice(MATERIALS))
        mats = sorted(set(mats))
        self.mut(w, "case.supplement", lambda: self.m.supplement(c.no, mats),
                 case_no=c.no, materials=mats)
        self.counts["supplements_brought"] += 1

    def rate_ticket(self, tid):
        score = self.rng.choices([5, 4, 3, 2, 1], [50, 25, 12, 8, 5])[0]
        args = {"ticket_id": tid, "score": score}
        if self.rng.random() < 0.2:
            args["comment"] = "comment %d" % self.rng.randrange(1000)
        self.mut("kiosk", "rate", lambda: self.m.rate(score, ticket_id=tid), **args)
        self.counts["ratings"] += 1
        if self.rng.random() < 0.03:    # twice: once only
            self.mut("kiosk", "rate", lambda: self.m.rate(3, ticket_id=tid), ticket_id=tid,
                     score=3)

    def maybe_rate_case(self, no):
        if self.rng.random() < 0.25:
            score = self.rng.choices([5, 4, 3, 2, 1], [45, 25, 15, 10, 5])[0]
            self.mut("kiosk", "rate", lambda: self.m.rate(score, case_no=no), case_no=no,
                     score=score)
            self.counts["ratings"] += 1

    # -- results --
    def result_ready(self, c):
        """A ready case: picked up at F later, or mailed by W05."""
        rng = self.rng
        if rng.random() < 0.65:
            later = self.m.now + rng.randint(10, 270) * STEP
            if later < DAY_START + 7 * HOUR + 50 * MIN:
                v = Visit("pickup", "F", rng.random() < 0.05)
                v.case_no = c.no
                self.at(later, lambda: self.arrive(v))
                self.counts["pickups"] += 1
            return
        tracking = "SF%010d" % rng.randrange(10 ** 10)
        self.at(self.m.now + rng.randint(1, 90) * STEP, lambda: self.mail(c.no, tracking),
                "staff")

    def mail(self, no, tracking):
        if self.rng.random() < 0.05:   # tracking forgotten
            self.mut("W05", "case.deliver", lambda: self.m.deliver(no, "mail"), case_no=no,
                     method="mail")
        self.mut("W05", "case.deliver", lambda: self.m.deliver(no, "mail", tracking),
                 case_no=no, method="mail", tracking=tracking)
        self.counts["mail"] += 1

    # -- departments --
    def run_dept(self, d):
        rng = self.rng
        held = self.claims[d]
        for no, when in sorted(held.items()):
            if when > self.m.now:
                continue        # still reviewing
            del held[no]
            c = self.m.cases[no]
            lost = c.deps.get(d) != "claimed" or c.lease.get(d, 0) < self.m.now
            if lost:
                self.counts["lease_lost"] += 1
            self.decide(d, c)
        if len(held) < 2 and rng.random() < (0.8 if self.m.review[d] else 0.15):
            r = self.mut(d, "review.claim", lambda: self.m.claim(d))
            if r["case"] is None:
                self.counts["empty_claims"] += 1
                return
            self.counts["claims"] += 1
            x = rng.random()
            if x < 0.8:
                when = self.m.now + rng.randint(1, 12) * STEP     # within the lease
            elif x < 0.93:
                when = self.m.now + rng.randint(15, 25) * STEP    # the lease ran out
            else:
                return    # the adapter crashed and forgot it: the lease runs out
            held[r["case"]["case_no"]] = when

    def decide(self, d, c):
        rng = self.rng
        checklist = SERVICES[c.service][4]
        x = rng.random()
        if x < 0.72:
            args = {"decision": "approve"}
        elif x < 0.84:
            args = {"decision": "deny", "reason": "does not qualify"}
        else:
            if rng.random() < 0.05:   # a code not on the checklist
                other = [m for m in MATERIALS if m not in checklist]
                self.mut(d, "review.decide",
                         lambda: self.m.decide(d, c.no, "supplement", missing=[other[0]]),
                         case_no=c.no, decision="supplement", missing=[other[0]])
            miss = sorted(rng.sample(checklist, rng.randint(1, min(2, len(checklist)))))
            args = {"decision": "supplement", "missing": miss}
        before = c.state
        r = self.mut(d, "review.decide",
                     lambda: self.m.decide(d, c.no, args["decision"], args.get("reason"),
                                           args.get("missing")), case_no=c.no, **args)
        if r is None:
            return
        self.counts[args["decision"]] += 1
        if before == "review" and r["state"] in ("approved", "denied"):
            self.result_ready(c)
        elif r["state"] == "supplement" and rng.random() < 0.75:
            later = self.m.now + rng.randint(10, 200) * STEP
            if later < DAY_START + 7 * HOUR + 45 * MIN:
                svc_line = SERVICES[c.service][0]
                v = Visit("supplement", svc_line, rng.random() < 0.08)
                v.case_no = c.no
                self.at(later, lambda: self.arrive(v))

    # -- checks --
    def check_stats(self, day=None):
        args = {} if day is None else {"day": day_str(day)}
        got = self.net.request("admin", "stats", args, False)
        if not got["ok"]:
            self.fail("stats: %r" % got)
        want = self.m.stats(day)
        if got["result"] != want:
            diff = diff_maps(want, got["result"])
            self.fail("stats differ from the model (want / got):\n  " + "\n  ".join(diff))
        self.counts["stats_checks"] += 1

    def check_after_restart(self, how):
        # The restarted daemon holds exactly the acknowledged work (the
        # re-sent request included): its clock and every figure.
        op, resent, mode = how
        if self.net.dead:
            outcome = "answered before the kill"
        elif not resent:
            outcome = "killed between requests"
        elif self.net.lsn() == self.net.lsn_at_restart:
            outcome = "in flight, durable: the resend got the first answer"
        else:
            outcome = "in flight, lost: the resend did it"
        self.net.outcomes[outcome] = self.net.outcomes.get(outcome, 0) + 1
        r = self.net.request("admin", "ping", {}, False)
        if r["result"]["now_ms"] != self.m.now:
            self.fail("clock after restart %r, model %d" % (r, self.m.now))
        self.check_stats()
        self.net.after_restart = None   # the checks' own reconnects

    def spot_checks(self):
        rng = self.rng
        if self.m.tickets:
            for tid in rng.sample(sorted(self.m.tickets), min(4, len(self.m.tickets))):
                self.send("kiosk", "ticket.get", self.m.tickets[tid].pack(self.m),
                          mutation=False, ticket_id=tid)
        if self.m.cases:
            for no in rng.sample(sorted(self.m.cases), min(3, len(self.m.cases))):
                self.send("kiosk", "case.get", self.m.cases[no].pack(), mutation=False,
                          case_no=no)

    def check_everything(self):
        """Every ticket and every case, read back and compared."""
        k = self.net.client("kiosk")
        for kind, items, key in (("ticket", sorted(self.m.tickets), "ticket_id"),
                                 ("case", sorted(self.m.cases), "case_no")):
            for i in range(0, len(items), 100):
                chunk = items[i:i + 100]
                got = k.pipeline([(kind + ".get", {key: x}) for x in chunk])
                for x, g in zip(chunk, got):
                    want = (self.m.tickets[x].pack(self.m) if kind == "ticket"
                            else self.m.cases[x].pack())
                    if not g["ok"] or g["result"] != want:
                        self.fail("%s %s: model %r, daemon %r" % (kind, x, want, g))

    # -- the day --
    def advance(self):
        self.mut("admin", "clock.advance", lambda: self.m.advance(STEP), ms=STEP)
        self.popped = False
        self.step_no += 1

    def step(self):
        self.run_events()
        for fn in self.appointment_arrivals():
            fn()
        for w in WINDOWS:
            self.run_window(w)
        for d in DEPTS:
            self.run_dept(d)
        if (self.m.now - DAY_START) % (30 * MIN) == 0:
            self.check_stats()
            self.spot_checks()
        if self.m.now in self.probe_at:
            # The live digest at this moment, for replays to be held to.
            self.probes[self.m.now] = self.net.request("admin", "digest", {}, False)["result"]
        self.advance()

    def run(self):
        t0 = time.monotonic()
        close = DAY_START + 8 * HOUR
        while self.m.now < close:
            self.step()
        # 17:00: the daemon closed the day by itself.
        if any(w["state"] != "closed" for w in self.m.windows.values()):
            self.fail("model: windows open after the close")
        self.check_stats(local_day(DAY_START))
        # After hours: the clerks finish the citizens at their windows, the
        # departments finish what they hold, W05 mails; nobody new comes.
        self.after_hours = True
        while self.m.now < close + 40 * MIN:
            self.run_events(staff_only=True)
            for w in WINDOWS:
                if self.desks[w] is not None:
                    self.run_window(w)
            for d in DEPTS:
                self.run_dept_after_hours(d)
            self.advance()
        if any(self.desks.values()):
            self.fail("citizens still at windows after hours: %r" % self.desks)
        self.invariants()
        self.check_stats(local_day(DAY_START))
        self.check_stats()
        self.check_everything()
        day_s = time.monotonic() - t0
        # On to the first deadlines: Friday 11-27 opens (S01 cases due),
        # closes, and later deadlines follow on the days after.
        for target in (local_ms(local_day(DAY_START) + 3, OPEN_MIN),
                       local_ms(local_day(DAY_START) + 3, CLOSE_MIN) + MIN,
                       local_ms(local_day(DAY_START) + 7, OPEN_MIN) + 30 * MIN):
            self.mut("admin", "clock.advance", lambda: self.m.advance(target - self.m.now),
                     ms=target - self.m.now)
            self.check_stats()
        self.check_stats(local_day(DAY_START))
        self.check_everything()
        return day_s

    def run_dept_after_hours(self, d):
        held = self.claims[d]
        for no in sorted(held):
            del held[no]
            self.decide(d, self.m.cases[no])

    def invariants(self):
        """Every ticket ended in exactly one final state, none was served
        twice, and the counts add up."""
        m = self.m
        final = {"done", "no_show", "expired"}
        states = {}
        for t in m.tickets.values():
            if t.state not in final:
                self.fail("ticket %s is %s after the day" % (t.id, t.state))
            if t.done_count > 1:
                self.fail("ticket %s served %d times" % (t.id, t.done_count))
            states[t.state] = states.get(t.state, 0) + 1
        day = local_day(DAY_START)
        tot = [0, 0, 0, 0]
        for l in LINES:
            s = m.lstat.get((day, l), [0, 0, 0, 0, []])
            for i in range(4):
                tot[i] += s[i]
        if tot[0] != len(m.tickets):
            self.fail("taken %d != tickets %d" % (tot[0], len(m.tickets)))
        if tot[1] != states.get("done", 0) or tot[3] != states.get("expired", 0):
            self.fail("served/expired counts %r vs final states %r" % (tot, states))
        if sum(m.wstat.get((day, w), [0])[0] for w in WINDOWS) != tot[1]:
            self.fail("windows' served != lines' served")
        self.final_states = states

    def summary(self):
        c = dict(self.counts)
        c.update(tickets_total=len(self.m.tickets), cases_total=len(self.m.cases),
                 mutations=self.net.n_mut, requests=self.net.n_ops, kills=self.net.kills,
                 resent=self.net.resent, kill_outcomes=self.net.outcomes,
                 final_states=getattr(self, "final_states", None))
        return c


def time_str(ms):
    return datetime.datetime.utcfromtimestamp((ms + TZ) / 1000).strftime("%m-%d %H:%M:%S")


def diff_maps(want, got, path=""):
    out = []
    for k in sorted(set(want) | set(got)):
        a, b = want.get(k, "<absent>"), got.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_maps(a, b, path + k + ".")
        elif a != b:
            out.append("%s%s: %r / %r" % (path, k, a, b))
    return out


# ---- one whole day against a daemon ----

def simulate(daemon, seed, citizens, crash_rounds=0, log=None, probe_at=()):
    """Runs the day on a started daemon (manual clock at DAY_START on a
    fresh data dir). Returns (sim, figures). probe_at: times (on the 20 s
    steps of the day) at which the live digest is taken, into sim.probes."""
    kill_rng = random.Random("kill/%s" % seed) if crash_rounds else None
    # Roughly citizens*6 + 1,600 mutations in a day: spread the kills over
    # most of it.
    every = max(5, (citizens * 5 + 1500) // (crash_rounds + 1)) if crash_rounds else 0
    net = Net(daemon, seed, kill_rng, every, crash_rounds)
    sim = Sim(net, seed, citizens, log)
    sim.probe_at, sim.probes = set(probe_at), {}
    t0 = time.monotonic()
    day_s = sim.run()
    figures = sim.summary()
    figures["day_wall_s"] = round(day_s, 1)
    figures["wall_s"] = round(time.monotonic() - t0, 1)
    net.close_all()
    return sim, figures


def replay_check(daemon, fresh):
    """Stops `daemon`, replays a copy of its WAL (and its pii.key) into `fresh` (not
    started, empty data dir) and compares digest and stats."""
    a = daemon.admin()
    live = a.ok("digest")
    stats_day = a.ok("stats", day=DAY_STR)
    stats_live = a.ok("stats")
    a.close()
    daemon.stop()
    shutil.copytree(daemon.data / "wal", fresh.data / "wal")
    share_secrets(daemon, fresh)  # a hall with intakes never starts without its key
    fresh.start()
    b = fresh.admin()
    assert b.ok("digest") == live, "replayed digest differs"
    got_day, got_live = b.ok("stats", day=DAY_STR), b.ok("stats")
    assert got_day == stats_day, diff_maps(stats_day, got_day)
    assert got_live == stats_live, diff_maps(stats_live, got_live)
    b.close()
    return live


def share_secrets(src, dst):
    """Copies the hall's own secrets (DATA/pii.key: applicants' ids are
    hashed with it at the edge) from src's data dir to dst's (not started),
    so that two independent runs of one day can have the same digest."""
    for name in ("pii.key",):
        f = src.data / name
        if f.exists():
            shutil.copy2(f, dst.data / name)


# ---- as a script ----

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--citizens", type=int, default=3000)
    ap.add_argument("--build", default=None, help="build dir (default $HALLQ_BUILD_DIR or build)")
    ap.add_argument("--crash-rounds", type=int, default=0)
    ap.add_argument("--twin", action="store_true",
                    help="with --crash-rounds: also run the day without kills and compare "
                         "the digests")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--segment-bytes", type=int, default=0,
                    help="WAL segment size (small ones roll over under the kills)")
    a = ap.parse_args(argv)
    if a.build:
        b = pathlib.Path(a.build)
        if not b.exists() and (HERE.parents[1] / b).exists():
            b = HERE.parents[1] / b
        os.environ["HALLQ_BUILD_DIR"] = str(b.resolve())
    import conftest
    work = pathlib.Path(tempfile.mkdtemp(prefix="hq-sim-"))
    made = []

    def make(name):
        extra = conftest.segment_bytes(a.segment_bytes) if a.segment_bytes else None
        cfg = conftest.write_config(work, start_ms=DAY_START, name=name + ".yaml", extra=extra)
        data = work / name
        data.mkdir()
        sockdir = tempfile.mkdtemp(prefix="hqs-")
        d = conftest.Daemon(data, cfg, sockdir, manual_clock=True, logdir=work)
        made.append(d)
        return d

    rc = 0
    try:
        d = make("data").start()
        print("seed %d, %d citizens, %d crash rounds, %s" % (a.seed, a.citizens,
                                                            a.crash_rounds, conftest.HALLQD))
        try:
            sim, fig = simulate(d, a.seed, a.citizens, a.crash_rounds)
        except SimFailure:
            print("---- hallqd log tail ----\n" + d.log_tail(30))
            raise
        for k in sorted(fig):
            print("  %-20s %s" % (k, fig[k]))
        digest = replay_check(d, make("replayed"))
        print("replay: digest and stats equal (%s)" % digest["digest"][:16])
        if a.twin and a.crash_rounds:
            t = make("twin")
            share_secrets(d, t)
            t.start()
            simulate(t, a.seed, a.citizens, 0)
            td = t.admin().ok("digest")
            assert td == digest, "crash run %r, crash-free twin %r" % (digest, td)
            print("twin: the crash-free run has the same digest")
        print("OK")
    except SimFailure as e:
        print("FAILED: %s" % e)
        rc = 1
    finally:
        for d in made:
            try:
                if d.running():
                    d.stop()
            except AssertionError as e:
                print(e)
                rc = 1
            finally:
                if d.proc is not None:
                    d.proc.kill()
                    d._reap()
                shutil.rmtree(d.sockdir, ignore_errors=True)
        if a.keep:
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
