"""Stage 1: windows calling tickets: state, calling order across classes and
lines, recall, no-show and return, transfer, done, and the day's close."""
import shutil

from conftest import TUESDAY_10AM

MIN = 60 * 1000


def open_window(daemon, wid):
    w = daemon.tcp("window-" + wid)
    assert w.ok("window.state", state="open") == {}
    return w


def take(daemon, line, **kw):
    return daemon.kiosk().ok("ticket.take", line=line, **kw)


def test_window_state_and_empty_call(daemon):
    w = daemon.tcp("window-W01")
    code, msg = w.err("window.call")
    assert code == "conflict" and "closed" in msg  # windows start closed
    code, msg = w.err("window.state", state="asleep")
    assert code == "bad_request" and "args.state" in msg
    code, msg = w.err("window.state")
    assert code == "bad_request" and "args.state" in msg
    w.ok("window.state", state="open")
    assert w.ok("window.call") == {"ticket": None}
    w.ok("window.state", state="paused")
    code, msg = w.err("window.call")
    assert code == "conflict" and "paused" in msg


def test_calling_order_classes_and_lines(daemon):
    a = daemon.admin()
    t_a1 = take(daemon, "A")
    a.ok("clock.advance", ms=MIN)
    t_b1 = take(daemon, "B")
    a.ok("clock.advance", ms=MIN)
    t_a2 = take(daemon, "A")
    t_c1 = take(daemon, "C")
    t_bp = take(daemon, "B", priority=True)
    w1 = open_window(daemon, "W01")  # serves A B
    called = []
    for _ in range(4):
        called.append(w1.ok("window.call")["ticket"]["number"])
        w1.ok("window.done")
    # Priority first, then first come first served across A and B; W01
    # never calls line C.
    assert called == [t_bp["number"], t_a1["number"], t_b1["number"], t_a2["number"]]
    assert w1.ok("window.call") == {"ticket": None}
    w4 = open_window(daemon, "W04")  # serves C D
    assert w4.ok("window.call")["ticket"]["number"] == t_c1["number"]


def test_calling_order_by_lines(daemon):
    """Protocol 1.2: W03 (B A, order lines) calls its first line's ticket
    before an earlier one of its second line, W04 (C D) likewise; W01 (A B,
    earliest) the earliest of either. The best class still comes first in
    both orders: a priority A before every B at W03, a priority B before an
    earlier A at W01."""
    a = daemon.admin()
    t_a1 = take(daemon, "A")
    t_d1 = take(daemon, "D")
    a.ok("clock.advance", ms=MIN)
    t_b1 = take(daemon, "B")
    t_c1 = take(daemon, "C")
    a.ok("clock.advance", ms=MIN)
    t_a2 = take(daemon, "A")
    t_b2 = take(daemon, "B")
    w3, w1, w4 = open_window(daemon, "W03"), open_window(daemon, "W01"), open_window(daemon, "W04")

    def call(w):
        t = w.ok("window.call")["ticket"]
        w.ok("window.done")
        return t["number"]

    assert call(w3) == t_b1["number"]  # B after A001, yet first at W03
    assert call(w1) == t_a1["number"]  # the earliest of A and B
    assert call(w4) == t_c1["number"] and call(w4) == t_d1["number"]
    a.ok("clock.advance", ms=MIN)
    t_ap = take(daemon, "A", priority=True)
    assert call(w3) == t_ap["number"]  # the class first, across the lines
    assert call(w3) == t_b2["number"]
    t_bp = take(daemon, "B", priority=True)
    assert call(w1) == t_bp["number"]  # before the earlier A002
    assert call(w1) == t_a2["number"]
    assert w3.ok("window.call") == {"ticket": None}


def test_one_current_ticket_recall_done(daemon):
    t = take(daemon, "A")
    w = open_window(daemon, "W02")
    got = w.ok("window.call")["ticket"]
    assert got == {"ticket_id": t["ticket_id"], "number": "A001", "line": "A",
                   "state": "called", "window": "W02"}
    code, msg = w.err("window.call")
    assert code == "conflict" and "A001" in msg
    assert w.ok("window.recall")["ticket"]["number"] == "A001"
    code, _ = w.err("window.state", state="closed")
    assert code == "conflict"
    w.ok("window.done")
    assert daemon.kiosk().ok("ticket.get", ticket_id=t["ticket_id"])["state"] == "done"
    assert w.err("window.recall")[0] == "conflict"
    assert w.err("window.done")[0] == "conflict"
    assert w.err("window.no_show")[0] == "conflict"
    w.ok("window.state", state="closed")


def test_no_show_and_return(daemon):
    tickets = [take(daemon, "A") for _ in range(6)]
    w = open_window(daemon, "W01")
    assert w.ok("window.call")["ticket"]["number"] == "A001"
    w.ok("window.no_show")
    k = daemon.kiosk()
    assert k.ok("ticket.get", ticket_id=tickets[0]["ticket_id"])["state"] == "no_show"
    # Back within the grace period: behind 3 waiting tickets (A002..A004).
    daemon.admin().ok("clock.advance", ms=10 * MIN)
    assert k.ok("ticket.return", ticket_id=tickets[0]["ticket_id"]) == {"ahead": 3}
    order = []
    for _ in range(6):
        order.append(w.ok("window.call")["ticket"]["number"])
        w.ok("window.done")
    assert order == ["A002", "A003", "A004", "A001", "A005", "A006"]
    # Returning a ticket that is not a no-show is a conflict.
    assert k.err("ticket.return", ticket_id=tickets[1]["ticket_id"])[0] == "conflict"
    assert k.err("ticket.return", ticket_id="20261124-A999")[0] == "not_found"


def test_return_after_grace_and_to_short_line(daemon):
    t1, t2 = take(daemon, "D"), take(daemon, "D")
    w = open_window(daemon, "W04")
    w.ok("window.call")
    w.ok("window.no_show")
    a, k = daemon.admin(), daemon.kiosk()
    a.ok("clock.advance", ms=31 * MIN)  # grace is 30 min
    code, msg = k.err("ticket.return", ticket_id=t1["ticket_id"])
    assert code == "conflict" and "grace" in msg
    # A no-show returning to a line with fewer than 3 waiting goes last.
    w.ok("window.call")
    w.ok("window.no_show")
    t3 = take(daemon, "D")
    assert k.ok("ticket.return", ticket_id=t2["ticket_id"]) == {"ahead": 1}
    assert w.ok("window.call")["ticket"]["number"] == t3["number"]


def test_transfer_keeps_time(daemon):
    a = daemon.admin()
    t_c = take(daemon, "C")
    a.ok("clock.advance", ms=MIN)
    t_b = take(daemon, "B")
    w4 = open_window(daemon, "W04")
    assert w4.ok("window.call")["ticket"]["number"] == t_c["number"]
    code, msg = w4.err("window.transfer", line="Z")
    assert code == "not_found" and "line" in msg
    assert w4.err("window.transfer")[0] == "bad_request"
    w4.ok("window.transfer", line="B")
    g = daemon.kiosk().ok("ticket.get", ticket_id=t_c["ticket_id"])
    assert (g["state"], g["line"], g["ahead"], g["number"]) == ("waiting", "B", 0, "C001")
    # Taken earlier than B001, it is called first on line B.
    w3 = open_window(daemon, "W03")
    assert w3.ok("window.call")["ticket"]["number"] == "C001"
    w3.ok("window.done")
    assert w3.ok("window.call")["ticket"]["number"] == t_b["number"]


def test_roles_for_window_ops(daemon):
    k = daemon.kiosk()
    for op in ("window.state", "window.call", "window.recall", "window.no_show",
               "window.transfer", "window.done"):
        assert k.err(op)[0] == "forbidden", op
        assert daemon.admin().err(op)[0] == "forbidden", op
    assert daemon.tcp("display-demo").err("ticket.return", ticket_id="x")[0] == "forbidden"
    assert daemon.tcp("window-W01").err("day.close")[0] == "forbidden"


def test_day_close_by_clock_and_replay(daemon, make_daemon):
    waiting = [take(daemon, l) for l in "AABC"]
    w = open_window(daemon, "W01")
    served = w.ok("window.call")["ticket"]
    # 10:00 -> 17:30: the close at 17:00 runs by itself, as a record.
    r = daemon.admin().ok("clock.advance", ms=7 * 60 * MIN + 30 * MIN)
    assert r["now_ms"] == TUESDAY_10AM + 450 * MIN
    k = daemon.kiosk()
    states = [k.ok("ticket.get", ticket_id=t["ticket_id"])["state"] for t in waiting]
    assert states == ["called", "expired", "expired", "expired"]
    assert served["number"] == "A001"
    code, msg = w.err("window.call")
    assert code == "conflict" and "closed" in msg
    w.ok("window.done")  # the current ticket can still be finished
    # Numbering restarts on the next business day.
    assert k.ok("ticket.take", line="A")["ticket_id"] == "20261125-A001"
    # The next close (Wednesday 17:00) also runs by itself; the manual day.close
    # expires what waits now.
    assert daemon.admin().ok("day.close") == {"expired": 1}
    live = daemon.admin().ok("digest")
    daemon.stop()
    fresh = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, name="replay", start=False)
    shutil.copytree(daemon.data / "wal", fresh.data / "wal")
    fresh.start()
    assert fresh.admin().ok("digest") == live
