"""subscribe and pushed events: they go out once their record is durable,
carry its LSN as seq, a reconnecting client with `since` gets what it
missed in order and then live events with no gap and no repeat, departments
see only their own cases, and a subscriber that does not read is cut off at
the output cap."""
import socket

from conftest import TUESDAY_10AM, events, subscribe
from hallq_client import Client

PERSON = {"kind": "person", "id": "110101199003077777"}
MIN = 60 * 1000


def data(e):
    """An event's data without at_ms (every event has it: checked here)."""
    d = dict(e["data"])
    assert isinstance(d.pop("at_ms"), int), e
    return d


def brief(evs):
    return [(e["event"], data(e)) for e in evs]


def test_live_events_in_order_with_seq(daemon):
    board, seq0 = subscribe(daemon, "display-demo", ["call", "line", "window"])
    assert seq0 >= 1  # the config record at least
    w = daemon.tcp("window-W01")
    w.ok("window.state", state="open")
    k = daemon.kiosk()
    k.ok("ticket.take", line="A")
    k.ok("ticket.take", line="B")
    assert w.ok("window.call")["ticket"]["number"] == "A001"
    got = events(board, 5)
    assert brief(got) == [
        ("window", {"window": "W01", "state": "open"}),
        ("line", {"line": "A", "waiting": 1}),
        ("line", {"line": "B", "waiting": 1}),
        ("call", {"number": "A001", "window": "W01", "line": "A"}),
        ("line", {"line": "A", "waiting": 0}),
    ]
    seqs = [e["seq"] for e in got]
    assert seqs[0] == seq0 + 1 and seqs == [seq0 + 1, seq0 + 2, seq0 + 3, seq0 + 4, seq0 + 4]
    # window.recall is a record and an announcement of its own.
    w.ok("window.recall")
    (e,) = events(board, 1)
    assert (e["event"], e["data"]["number"], e["seq"]) == ("call", "A001", seq0 + 5)


def test_topics_filter_and_bad_topics(daemon):
    calls, _ = subscribe(daemon, "display-demo", ["call"])
    w = daemon.tcp("window-W01")
    w.ok("window.state", state="open")
    daemon.kiosk().ok("ticket.take", line="A")
    w.ok("window.call")
    (e,) = events(calls, 1)
    assert e["event"] == "call"
    c = daemon.tcp("display-demo")
    for bad in (["calls"], [], "call", [1]):
        code, msg = c.err("subscribe", topics=bad)
        assert code == "bad_request" and "args.topics" in msg, (bad, msg)
    code, msg = c.err("subscribe", topics=["call"], since="x")
    assert code == "bad_request" and "since" in msg
    code, msg = c.err("subscribe")
    assert code == "bad_request" and "args.topics" in msg


def test_since_replays_what_was_missed_then_live(daemon):
    board, seq0 = subscribe(daemon, "display-demo", ["line"])
    k = daemon.kiosk()
    k.ok("ticket.take", line="A")
    (first,) = events(board, 1)
    board.close()
    for line in "ABCA":  # missed while away
        k.ok("ticket.take", line=line)
    board, seq = subscribe(daemon, "display-demo", ["line"], since=first["seq"])
    assert seq == first["seq"] + 4
    missed = events(board, 4)
    assert brief(missed) == [("line", {"line": "A", "waiting": 2}),
                             ("line", {"line": "B", "waiting": 1}),
                             ("line", {"line": "C", "waiting": 1}),
                             ("line", {"line": "A", "waiting": 3})]
    assert [e["seq"] for e in missed] == list(range(first["seq"] + 1, first["seq"] + 5))
    k.ok("ticket.take", line="D")
    (live,) = events(board, 1)
    assert live["seq"] == seq + 1 and data(live) == {"line": "D", "waiting": 1}
    # since 0 after a restart: every event of the log, from the WAL.
    daemon.restart()
    board, _ = subscribe(daemon, "display-demo", ["line"], since=0)
    all_ = events(board, 6)
    assert [e["data"]["waiting"] for e in all_] == [1, 2, 1, 1, 3, 1]
    assert [e["seq"] for e in all_] == sorted(e["seq"] for e in all_)


def test_departments_see_only_their_cases(daemon):
    mkt, _ = subscribe(daemon, "dept-mkt", ["case", "deadline"], unix=True)
    pol, _ = subscribe(daemon, "dept-pol", ["case"], unix=True)
    admin, _ = subscribe(daemon, "admin-demo", ["case", "deadline"], unix=True)
    daemon.kiosk().ok("ticket.take", line="B")
    w = daemon.tcp("window-W03")
    w.ok("window.state", state="open")
    w.ok("window.call")
    r = w.ok("window.intake", service="S01", applicant=PERSON, materials=["M01", "M02", "M03"],
             outcome="accept")
    no = r["case_no"]

    def case(state, mkt_state, change):
        """A case event of rules 3: what changed, each department's state."""
        return {"case_no": no, "state": state, "change": change,
                "departments": [{"department": "mkt", "state": mkt_state}]}

    (e,) = events(mkt, 1)
    assert (e["event"], data(e)) == ("case", case("review", "pending", "accepted"))
    assert data(events(admin, 1)[0]) == case("review", "pending", "accepted")
    d = daemon.unix("dept-mkt")
    d.ok("review.claim")
    assert data(events(mkt, 1)[0]) == case("review", "claimed", "claimed")
    # Friday 09:00 (the deadline's day) makes it due_soon: an event to mkt.
    daemon.admin().ok("clock.advance", ms=(3 * 24 - 1) * 60 * MIN)
    got = brief(events(mkt, 2))
    assert ("deadline", {"case_no": no, "due_soon": True}) in got
    assert ("case", case("review", "pending", "lease_expired")) in got  # the lease ran out
    d.ok("review.claim")
    d.ok("review.decide", case_no=no, decision="approve")
    assert brief(events(mkt, 2))[1] == ("case", case("approved", "approved", "decided"))
    # pol saw nothing of it: its next frame is the answer to a ping.
    assert pol.request("ping", {})["ok"] is True


def test_a_subscriber_that_does_not_read_is_cut_off(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"output_cap: 1048576": "output_cap: 16384"})
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", d.port))
    lazy = Client(s)
    lazy.hello("display-demo")
    lazy.ok("subscribe", topics=["line"])
    k = d.kiosk()
    other = d.tcp("display-demo")
    n = 0
    while "cut off" not in d.log_text():
        k.pipeline([("ticket.take", {"line": "ABCD"[i % 4]}) for i in range(500)])
        n += 500
        assert n < 200000, "never cut off:\n" + d.log_tail(5)
    assert lazy.is_closed()
    # Everyone else goes on, and every ticket is there.
    assert other.ok("ping")["now_ms"] >= TUESDAY_10AM
    st = d.admin().ok("stats")
    assert sum(st["lines"][x]["taken"] for x in "ABCD") == n


def test_catch_up_from_memory_and_from_the_wal_agree(daemon):
    # A short absence is caught up from the daemon's ring of recent events,
    # a long one (past the ring, or across a restart) from the WAL: the same
    # events either way, in order, each once.
    k = daemon.kiosk()
    _, seq0 = subscribe(daemon, "display-demo", ["line"])
    k.pipeline([("ticket.take", {"line": "ABCD"[i % 4]}) for i in range(40)])
    ring, _ = subscribe(daemon, "display-demo", ["line"], since=seq0)
    from_ring = events(ring, 40)
    daemon.restart()
    wal, _ = subscribe(daemon, "display-demo", ["line"], since=seq0)
    assert events(wal, 40) == from_ring
    assert [e["seq"] for e in from_ring] == list(range(seq0 + 1, seq0 + 41))


def test_catch_up_past_the_ring(daemon):
    # More records than the ring keeps (16,384): the catch-up reads the WAL,
    # in chunks as the client reads, and then goes live with no gap.
    k = daemon.kiosk()
    _, seq0 = subscribe(daemon, "display-demo", ["line"])
    n = 17000
    for i in range(0, n, 1000):
        k.pipeline([("ticket.take", {"line": "ABCD"[j % 4]}) for j in range(i, i + 1000)])
    c, seq = subscribe(daemon, "display-demo", ["line"], since=seq0)
    assert seq == seq0 + n
    got = events(c, n)
    assert [e["seq"] for e in got] == list(range(seq0 + 1, seq0 + n + 1))
    assert data(got[-1]) == {"line": "D", "waiting": n // 4}
    k.ok("ticket.take", line="A")
    (live,) = events(c, 1)
    assert live["seq"] == seq + 1 and data(live) == {"line": "A", "waiting": n // 4 + 1}


def test_events_carry_their_records_time(daemon):
    """Every event's data has at_ms, the time of the record that caused it
    (1.2): live, from the ring, and from the WAL after a restart (since 0),
    where it comes from the WAL record's own time."""
    board, seq0 = subscribe(daemon, "display-demo", ["call", "line", "window"])
    a, k, w = daemon.admin(), daemon.kiosk(), daemon.tcp("window-W01")
    w.ok("window.state", state="open")               # 10:00
    a.ok("clock.advance", ms=MIN)
    k.ok("ticket.take", line="A")                    # 10:01
    a.ok("clock.advance", ms=2 * MIN)
    w.ok("window.call")                              # 10:03
    a.ok("clock.advance", ms=MIN)
    w.ok("window.recall")                            # 10:04
    live = events(board, 5)
    assert [(e["event"], e["data"]["at_ms"]) for e in live] == [
        ("window", TUESDAY_10AM), ("line", TUESDAY_10AM + MIN),
        ("call", TUESDAY_10AM + 3 * MIN), ("line", TUESDAY_10AM + 3 * MIN),
        ("call", TUESDAY_10AM + 4 * MIN)]
    ring, _ = subscribe(daemon, "display-demo", ["call", "line", "window"], since=seq0)
    assert events(ring, 5) == live
    a.ok("clock.advance", ms=60 * MIN)  # the replay runs later than any of them
    daemon.restart()
    wal, seq = subscribe(daemon, "display-demo", ["call", "line", "window"], since=0)
    assert seq > seq0
    assert events(wal, 5) == live  # nothing before seq0 had events


def test_since_past_the_last_record_is_bad_request(daemon):
    """A `since` beyond the last durable record (an adapter's state file
    from a hall whose data dir was reset) is bad_request naming since, not a
    silent skip to now (issue 17); the last record itself is fine."""
    c = daemon.unix("dept-mkt")
    seq = c.ok("subscribe", topics=["case"])["seq"]
    c2 = daemon.unix("dept-mkt")
    m = c2.request("subscribe", {"topics": ["case"], "since": seq + 1})
    assert m["ok"] is False and m["error"]["code"] == "bad_request", m
    assert "args.since" in m["error"]["message"] and str(seq) in m["error"]["message"], m
    assert c2.ok("subscribe", topics=["case"], since=seq)["seq"] == seq
