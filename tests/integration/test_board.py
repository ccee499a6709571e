"""`board` and `catalogue` (protocol 1.2): what a display shows, read at one
LSN (`seq`), and the hall's names. A board reads `board`, then subscribes
with `since: seq`: every event after the read arrives, once, in order,
whatever happened between the two."""
import threading

from conftest import TUESDAY_10AM, subscribe

MIN = 60 * 1000
TOPICS = ["call", "line", "window"]


def sub_since(c, since):
    """Subscribes c from `since`; returns (seq, events that came before the
    answer)."""
    id = c.send("subscribe", {"topics": TOPICS, "since": since})
    early = []
    while True:
        m = c.read()
        if "event" in m:
            early.append(m)
            continue
        assert m["id"] == id and m["ok"], m
        return m["result"]["seq"], early


def read_until(c, seq, got=None):
    """Events of c up to the first of record `seq` (a record with one
    event: the tests end with one)."""
    got = list(got or [])
    while not got or got[-1]["seq"] < seq:
        m = c.read()
        assert "event" in m, m
        got.append(m)
    return got


def test_board_shape_and_recent_calls(daemon):
    d, k, a = daemon.tcp("display-demo"), daemon.kiosk(), daemon.admin()
    b = d.ok("board")
    assert set(b) == {"seq", "now_ms", "windows", "lines", "recent"}
    assert b["now_ms"] == TUESDAY_10AM and b["recent"] == []
    assert b["windows"] == {w: {"state": "closed", "current": None}
                            for w in ("W01", "W02", "W03", "W04", "W05", "W06")}
    assert b["lines"] == {l: {"waiting": 0} for l in "ABCDF"}

    w1, w2 = daemon.tcp("window-W01"), daemon.tcp("window-W02")
    w1.ok("window.state", state="open")
    w2.ok("window.state", state="paused")
    for _ in range(23):
        k.ok("ticket.take", line="A")
    k.ok("ticket.take", line="B")
    numbers = []
    for i in range(22):  # 22 calls, a minute apart, each done
        a.ok("clock.advance", ms=MIN)
        numbers.append(w1.ok("window.call")["ticket"]["number"])
        if i < 21:
            w1.ok("window.done")
    # A recall re-announces A022 but is not a new call; a no-show keeps its
    # call on the board.
    a.ok("clock.advance", ms=MIN)
    w1.ok("window.recall")
    b = d.ok("board")
    assert b["now_ms"] == TUESDAY_10AM + 23 * MIN
    assert b["windows"]["W01"] == {"state": "open", "current": {
        "ticket_id": "20261124-A022", "number": "A022", "line": "A"}}
    assert b["windows"]["W02"] == {"state": "paused", "current": None}
    assert b["lines"]["A"] == {"waiting": 1} and b["lines"]["B"] == {"waiting": 1}
    # The latest 20 calls, newest first, each at its call's time.
    assert b["recent"] == [{"number": numbers[i], "window": "W01",
                            "at_ms": TUESDAY_10AM + (i + 1) * MIN}
                           for i in range(21, 1, -1)]
    # Any read sees the state after every record up to seq.
    assert b["seq"] == d.ok("subscribe", topics=["call"])["seq"]


def test_board_roles(daemon):
    # display, window and admin read the board; kiosks and departments not.
    for c in (daemon.tcp("display-demo"), daemon.tcp("window-W03"), daemon.admin()):
        assert "recent" in c.ok("board")
    for c in (daemon.kiosk(), daemon.unix("dept-mkt")):
        assert c.err("board")[0] == "forbidden"


def test_board_then_subscribe_misses_nothing_and_repeats_nothing(daemon):
    """Calls happen between the board read and the subscribe: the events
    since seq are exactly those a subscriber live all along got after seq,
    and applied to the board they give the board read at the end."""
    ref, seq0 = subscribe(daemon, "display-demo", TOPICS)
    k, w1, w3 = daemon.kiosk(), daemon.tcp("window-W01"), daemon.tcp("window-W03")
    w1.ok("window.state", state="open")
    for line in "AABB":
        k.ok("ticket.take", line=line)
    w1.ok("window.call")
    d = daemon.tcp("display-demo")
    b = d.ok("board")
    # Between the read and the subscribe.
    w1.ok("window.done")
    w1.ok("window.call")
    w3.ok("window.state", state="open")
    w3.ok("window.call")
    k.ok("ticket.take", line="C")
    seq, early = sub_since(d, b["seq"])
    assert seq > b["seq"]
    got = read_until(d, seq, early)
    want = [e for e in read_until(ref, seq) if e["seq"] > b["seq"]]
    assert got == want and len(got) == 6
    # After the subscribe: live, once.
    w1.ok("window.done")
    w1.ok("window.call")
    w3.ok("window.state", state="paused")  # the last record: one event
    last = daemon.tcp("display-demo").ok("board")["seq"]
    after = [e for e in read_until(ref, last) if e["seq"] > seq]
    assert read_until(d, last, []) == after and len(after) == 3

    # The events applied to the first board give the board read now.
    view = {"lines": {l: v["waiting"] for l, v in b["lines"].items()},
            "windows": {w: v["state"] for w, v in b["windows"].items()},
            "recent": [(r["number"], r["window"]) for r in b["recent"]]}
    for e in got + after:
        data = e["data"]
        if e["event"] == "line":
            view["lines"][data["line"]] = data["waiting"]
        elif e["event"] == "window":
            view["windows"][data["window"]] = data["state"]
        else:
            view["recent"].insert(0, (data["number"], data["window"]))
    now = daemon.tcp("display-demo").ok("board")
    assert view == {"lines": {l: v["waiting"] for l, v in now["lines"].items()},
                    "windows": {w: v["state"] for w, v in now["windows"].items()},
                    "recent": [(r["number"], r["window"]) for r in now["recent"]]}


def test_board_then_subscribe_under_load(daemon):
    """The same while another client takes and calls tickets without pause:
    each board's seq is the state it shows (its lines' counts are the
    latest line events up to seq), and the events after it come once."""
    ref, _ = subscribe(daemon, "display-demo", TOPICS)
    w1 = daemon.tcp("window-W01")
    w1.ok("window.state", state="open")
    stop, errors = threading.Event(), []

    def load():
        try:
            k, w = daemon.kiosk(), daemon.tcp("window-W02")
            w.ok("window.state", state="open")
            while not stop.is_set():
                k.pipeline([("ticket.take", {"line": "AB"[i % 2]}) for i in range(4)])
                w.pipeline([("window.call", {}), ("window.done", {})] * 2)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    boards = []
    try:
        for _ in range(15):
            d = daemon.tcp("display-demo")
            b = d.ok("board")
            seq, early = sub_since(d, b["seq"])
            boards.append((d, b, early))
    finally:
        stop.set()
        t.join(30)
    assert not errors and not t.is_alive(), errors
    end = w1.ok("window.state", state="paused")  # one more record: the last event
    last = daemon.tcp("display-demo").ok("board")["seq"]
    all_ = read_until(ref, last)
    for d, b, early in boards:
        assert read_until(d, last, early) == [e for e in all_ if e["seq"] > b["seq"]]
        counts = {l: 0 for l in b["lines"]}
        for e in all_:
            if e["event"] == "line" and e["seq"] <= b["seq"]:
                counts[e["data"]["line"]] = e["data"]["waiting"]
        assert counts == {l: v["waiting"] for l, v in b["lines"].items()}, b["seq"]
    assert end == {}


def test_catalogue(daemon):
    cat = daemon.kiosk().ok("catalogue")
    assert set(cat) == {"lines", "services", "windows", "departments"}
    assert cat["lines"][0] == {"line": "A", "name": "natural persons", "name_zh": "自然人",
                               "pickup": False}
    assert [l["line"] for l in cat["lines"]] == list("ABCDF")
    s01 = cat["services"][0]
    assert s01 == {"service": "S01", "name": "sole-proprietor registration",
                   "name_zh": "个体工商户登记", "line": "B", "kind": "review", "days": 3,
                   "departments": ["mkt"],
                   "materials": [{"code": "M01", "name": "application form", "name_zh": "申请表"},
                                 {"code": "M02", "name": "identity card", "name_zh": "身份证"},
                                 {"code": "M03", "name": "proof of premises",
                                  "name_zh": "经营场所证明"}]}
    assert [(s["service"], s["kind"], s["days"]) for s in cat["services"]] == [
        ("S01", "review", 3), ("S02", "instant", 0), ("S03", "review", 7),
        ("S04", "review", 10), ("S05", "review", 5), ("S06", "instant", 0)]
    assert [(w["window"], w["lines"], w["order"]) for w in cat["windows"]] == [
        ("W01", ["A", "B"], "earliest"), ("W02", ["A", "B"], "earliest"),
        ("W03", ["B", "A"], "lines"), ("W04", ["C", "D"], "lines"),
        ("W05", ["F"], "earliest"), ("W06", ["A", "B", "C"], "earliest")]
    assert cat["departments"][0] == {"department": "mkt", "name": "Market Regulation",
                                     "name_zh": "市场监管局"}
    # Every role reads it.
    for c in (daemon.tcp("display-demo"), daemon.tcp("window-W01"), daemon.unix("dept-hsg"),
              daemon.admin()):
        assert c.ok("catalogue") == cat


def test_catalogue_without_names(make_daemon):
    # A name the config does not give is nil.
    d = make_daemon(extra={"{code: M10, name: bank card, name_zh: 银行卡}": "{code: M10}",
                           "{id: D, name: complaints, name_zh: 投诉}": "{id: D, name: complaints}"})
    cat = d.kiosk().ok("catalogue")
    assert cat["lines"][3] == {"line": "D", "name": "complaints", "name_zh": None,
                               "pickup": False}
    s06 = [s for s in cat["services"] if s["service"] == "S06"][0]
    assert s06["materials"][1] == {"code": "M10", "name": None, "name_zh": None}
