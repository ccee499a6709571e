"""Catching a subscriber up from the WAL (issue 12, defect 8): the reading
happens off the event loop (another connection is answered while it is
held), starts from the LSN -> offset index rather than a segment's start,
a connection may start only a few catch-ups from the WAL a minute (then
`limit`), and a catch-up across many segments, or while records are being
written, gives exactly the events that went out live: each once, in order."""
import os
import re
import threading

from conftest import BUILD, TUESDAY_10AM, events, segment_bytes, subscribe, wait_until

READHOLD = BUILD / "tests" / "faults" / "libreadhold.so"
INDEXED = "events: the WAL is indexed up to LSN"
LINES = "ABCD"


def takes(k, n, chunk=1000):
    for i in range(0, n, chunk):
        k.pipeline([("ticket.take", {"line": LINES[j % 4]}) for j in range(i, min(n, i + chunk))])


def wait_count(d, needle, n):
    """The log once `needle` occurs n times (each start logs it anew)."""
    wait_until(lambda: d.log_text().count(needle) >= n, "%d x %r in the log" % (n, needle))
    return d.log_text()


def catch_up_lines(text):
    """(from LSN, segment, offset, start LSN) of each WAL catch-up logged."""
    return [(int(a), s, int(o), int(b)) for a, s, o, b in re.findall(
        r"catches up from LSN (\d+): reading the WAL from (\S+) offset (\d+) \(LSN (\d+)\)", text)]


def test_catch_up_is_read_off_the_loop(make_daemon, workdir):
    gate = workdir / "hold"
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    env={"LD_PRELOAD": str(READHOLD), "HALLQ_READ_HOLD": str(gate),
                         "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"})
    k = d.kiosk()
    _, seq0 = subscribe(d)
    takes(k, 3000)
    d.restart()  # the ring is empty: every catch-up reads the WAL
    board = d.tcp("display-demo")
    other = d.tcp("kiosk-demo")
    gate.write_text("")
    try:
        # The catch-up's read of the WAL is held in its open(): the loop
        # must go on serving everyone, the subscriber's own answer first.
        sid = board.send("subscribe", {"topics": ["line"], "since": seq0})
        wait_until(lambda: os.path.exists(str(gate) + ".held"), "the catch-up's read")
        assert other.ok("ping")["now_ms"] >= TUESDAY_10AM
        t = other.ok("ticket.take", line="A")
        r = board.read()
        assert r.get("id") == sid and r["ok"] is True, r
        assert gate.exists()  # all of that while the read was still held
    finally:
        gate.unlink()
    got = events(board, 3001)
    assert [e["seq"] for e in got] == list(range(seq0 + 1, seq0 + 3002))
    assert {k: v for k, v in got[-1]["data"].items() if k != "at_ms"} == {"line": "A", "waiting": 751}
    assert t["number"] == "A751"


def test_catch_up_starts_at_the_index(daemon):
    k = daemon.kiosk()
    _, seq0 = subscribe(daemon)
    takes(k, 12000)
    daemon.restart()
    text = wait_count(daemon, INDEXED, 2)
    samples = int(re.findall(INDEXED + r" \d+ \((\d+) samples\)", text)[-1])
    assert samples >= 2
    for since in (seq0 + 11000, seq0 + 9000):
        c, seq = subscribe(daemon, since=since, topics=["line"])
        got = events(c, seq - since)
        assert [e["seq"] for e in got] == list(range(since + 1, seq + 1))
        frm, seg, off, at = catch_up_lines(daemon.wait_log("catches up from LSN %d:" % (since + 1)))[-1]
        # Read from an indexed place near `since`, not from the start of
        # its (64 MiB) segment.
        assert frm == since + 1
        assert int(seg[:20]) < at <= frm and off > 128, (seg, off, at, frm)
        assert frm - at < 12000 // samples


def test_catch_ups_from_the_wal_are_limited_per_connection(daemon):
    k = daemon.kiosk()
    _, seq0 = subscribe(daemon)
    takes(k, 20)
    daemon.restart()
    c = daemon.tcp("display-demo")
    for _ in range(4):
        assert c.ok("subscribe", topics=["line"], since=seq0)["seq"] == seq0 + 20
    code, msg = c.err("subscribe", topics=["line"], since=seq0)
    assert code == "limit" and "args.since" in msg and "at most 4" in msg, msg
    # Other connections, and subscribes that need no WAL, go on.
    c2, _ = subscribe(daemon, since=seq0 + 10, topics=["line"])
    assert [e["seq"] for e in events(c2, 10)] == list(range(seq0 + 11, seq0 + 21))
    assert c.ok("subscribe", topics=["line"])["seq"] == seq0 + 20
    daemon.kiosk().ok("ticket.take", line="A")  # in the ring now: caught up from memory
    assert c.ok("subscribe", topics=["line"], since=seq0 + 20)["seq"] == seq0 + 21
    m = c.read()
    while "event" in m and m["seq"] <= seq0 + 20:  # the earlier subscriptions' tail
        m = c.read()
    assert m["seq"] == seq0 + 21 and m["data"]["waiting"] == 6


def test_catch_up_across_segments_is_what_went_out_live(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=segment_bytes(65536))
    live, seq0 = subscribe(d)
    w = d.tcp("window-W01")
    w.ok("window.state", state="open")
    k = d.kiosk()
    for i in range(6):
        takes(k, 500)
        for r in w.pipeline([("window.call", {}), ("window.done", {})] * 50):
            assert r["ok"] is True, r
    k.ok("ticket.take", line="A")  # the last record: one event
    _, last = subscribe(d)
    got_live = []
    while not got_live or got_live[-1]["seq"] < last:
        got_live += events(live, 1)
    seqs = [e["seq"] for e in got_live]
    assert seqs == sorted(seqs) and len(got_live) > 3600  # takes, calls (two events each)
    segs = sorted(p.name for p in (d.data / "wal").iterdir() if p.name.endswith(".wal"))
    assert len(segs) >= 8
    d.restart()
    wait_count(d, INDEXED, 2)
    # From the start, from around each segment boundary, from the middle:
    # exactly the live events after `since`, each once, in order.
    starts = [seq0, seq0 + 1, last - 1]
    for s in segs[1:]:
        first = int(s[:20])
        starts += [first - 2, first - 1]
    for since in starts:
        c, seq = subscribe(d, since=since)
        want = [e for e in got_live if e["seq"] > since]
        assert events(c, len(want)) == want, since
        pid = c.send("ping")
        assert c.read()["id"] == pid  # and nothing more before it
    # (stderr reaches the log through a thread: wait for the last one's line)
    text = d.wait_log("catches up from LSN %d:" % (starts[-1] + 1))
    assert len(catch_up_lines(text)) >= len(starts)


def test_catch_up_while_records_are_written(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=segment_bytes(65536))
    live, seq0 = subscribe(d, topics=["line"])
    k = d.kiosk()
    takes(k, 3000)
    d.restart()
    live, _ = subscribe(d, since=seq0, topics=["line"])  # the same, from the WAL
    late, _ = subscribe(d, since=seq0, topics=["line"])
    done = []

    def writer():
        kk = d.kiosk()
        takes(kk, 4000, chunk=200)
        done.append(True)

    t = threading.Thread(target=writer)
    t.start()
    a = events(late, 7000)
    t.join()
    assert done
    b = events(live, 7000)
    assert a == b
    assert [e["seq"] for e in a] == list(range(seq0 + 1, seq0 + 7001))
    assert a[-1]["data"]["waiting"] == 1750


def test_a_long_catch_up_runs_to_its_end(daemon):
    # Many chunks of half the output cap: each one goes on when the last
    # one is sent, also when the socket took all of it at once (nothing
    # else wakes the connection then).
    k = daemon.kiosk()
    _, seq0 = subscribe(daemon)
    n = 60000
    takes(k, n, chunk=2000)
    daemon.restart()
    c, seq = subscribe(daemon, since=seq0, topics=["line"])
    assert seq == seq0 + n
    got = events(c, n)
    assert [e["seq"] for e in got] == list(range(seq0 + 1, seq0 + n + 1))
    assert {k: v for k, v in got[-1]["data"].items() if k != "at_ms"} == {"line": "D", "waiting": n // 4}
