"""hallq wal dump and hallq wal history: the WAL read back as an audit trail.

A day of the demo hall runs against a real hallqd on the manual clock; the
test notes the record each request made (its LSN read back with `digest`)
and the time-driven records the clock's moves trigger. Then every filter of
`wal dump` is checked against the exact set of LSNs it must show, `--json`
against what the test sent and got, and `wal history` against the story of
a joint-review case and of a ticket, step by step with their actors."""
import hashlib
import json
import pathlib
import re
import shutil
import struct
import subprocess

import msgpack
import pytest

from conftest import HALLQ, TUESDAY

MIN = 60 * 1000
PERSON = {"kind": "person", "id": "110101199003077777", "name": "Li"}
SYSTEM = ("system", "hallqd")
CASE = TUESDAY + "-0001"
T = {n: "%s-%s" % (TUESDAY, n) for n in ("A001", "B001", "B002", "C001", "F001")}
LINE_RE = re.compile(r"^\s*(\d+)  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (\S+)\s+(\S+)(?:\s+(.*))?$")


def hallq(*args, check=True):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


class Trail:
    """Runs requests and notes the record each one made."""

    def __init__(self, d):
        self.admin = d.admin()
        assert self.lsn() == 1  # the config record
        self.recs = [dict(lsn=1, actor=SYSTEM, op="config", args=None, result=None)]

    def lsn(self):
        return self.admin.ok("digest")["lsn"]

    def do(self, conn, actor, op, **args):
        before = self.lsn()
        result = conn.ok(op, **args)
        assert self.lsn() == before + 1, op
        self.recs.append(dict(lsn=before + 1, actor=actor, op=op, args=args, result=result))
        return result

    def advance(self, ms, then=()):
        """clock.advance, then the time-driven records it triggers:
        then = [(op, args, result)] in the order they must come."""
        before = self.lsn()
        result = self.admin.ok("clock.advance", ms=ms)
        assert self.lsn() == before + 1 + len(then)
        self.recs.append(dict(lsn=before + 1, actor=("admin", "admin"), op="clock.advance",
                              args={"ms": ms}, result=result))
        for i, (op, args, res) in enumerate(then):
            self.recs.append(dict(lsn=before + 2 + i, actor=SYSTEM, op=op, args=args, result=res))

    def lsns(self, pred):
        return {r["lsn"] for r in self.recs if pred(r)}

    def of(self, op, **match):
        """The LSN of the one record of `op` whose args/result hold `match`."""
        found = [r["lsn"] for r in self.recs if r["op"] == op and all(
            (r["args"] or {}).get(k) == v or (r["result"] or {}).get(k) == v
            for k, v in match.items())]
        assert len(found) == 1, (op, match, found)
        return found[0]


def mentions(obj, key, val):
    if isinstance(obj, dict):
        return any((k == key and v == val) or mentions(v, key, val) for k, v in obj.items())
    if isinstance(obj, list):
        return any(mentions(v, key, val) for v in obj)
    return False


def without_ids(args):
    """Args with the applicant's identity and name left out: the log keeps
    them masked (personal data), which is the daemon's business, not the
    dump's."""
    if "applicant" not in args:
        return args
    a = dict(args, applicant=dict(args["applicant"]))
    for key in ("id", "id_hash", "id_masked", "name"):
        a["applicant"].pop(key, None)
    return a


def a_day(d):
    """A joint-review case (S04: mkt, res, hsg) with a supplement, its
    pickup and a rating; a ticket with a no-show, a return, a transfer and
    a notice; a ticket that expires at the day's close."""
    t = Trail(d)
    k = d.kiosk()
    w1, w3, w5 = d.tcp("window-W01"), d.tcp("window-W03"), d.tcp("window-W05")
    mkt, res, hsg = d.unix("dept-mkt"), d.unix("dept-res"), d.unix("dept-hsg")
    K, W1, W3, W5 = ("kiosk", "K1"), ("window", "W01"), ("window", "W03"), ("window", "W05")
    MKT, RES, HSG = ("department", "mkt"), ("department", "res"), ("department", "hsg")

    t.do(w3, W3, "window.state", state="open")
    assert t.do(k, K, "ticket.take", line="B")["ticket_id"] == T["B001"]
    t.do(w3, W3, "window.call")
    r = t.do(w3, W3, "window.intake", service="S04", applicant=PERSON,
             materials=["M01", "M02", "M03", "M06", "M07"], outcome="accept")
    assert r["case_no"] == CASE
    t.do(w3, W3, "window.done")
    t.do(mkt, MKT, "review.claim")
    t.do(mkt, MKT, "review.decide", case_no=CASE, decision="supplement", missing=["M06"])

    assert t.do(k, K, "ticket.take", line="A")["ticket_id"] == T["A001"]
    t.do(w1, W1, "window.state", state="open")
    t.do(w1, W1, "window.call")
    t.do(w1, W1, "window.no_show")
    assert t.do(k, K, "ticket.take", line="B")["ticket_id"] == T["B002"]
    assert t.do(w3, W3, "window.call")["ticket"]["ticket_id"] == T["B002"]
    t.do(w3, W3, "case.supplement", case_no=CASE, materials=["M06"])
    t.do(w3, W3, "window.done")
    t.do(k, K, "ticket.return", ticket_id=T["A001"])
    assert t.do(w1, W1, "window.call")["ticket"]["ticket_id"] == T["A001"]
    t.do(w1, W1, "window.recall")
    t.do(w1, W1, "window.transfer", line="B")
    assert t.do(w3, W3, "window.call")["ticket"]["ticket_id"] == T["A001"]
    t.do(w3, W3, "window.intake", service="S01", applicant=PERSON, materials=["M01", "M02"],
         outcome="notify")
    t.do(w3, W3, "window.done")
    t.do(k, K, "rate", ticket_id=T["A001"], score=4)

    t.do(mkt, MKT, "review.claim")
    t.do(res, RES, "review.claim")
    t.do(mkt, MKT, "review.decide", case_no=CASE, decision="approve")
    t.do(res, RES, "review.decide", case_no=CASE, decision="approve")
    t.do(hsg, HSG, "review.claim")
    t.advance(6 * MIN, then=[("case.timer", {"case_no": CASE, "kind": "lease",
                                             "department": "hsg"}, {})])
    t.do(hsg, HSG, "review.claim")
    assert t.do(hsg, HSG, "review.decide", case_no=CASE, decision="approve")["state"] == "approved"
    assert t.do(k, K, "ticket.take", line="F", case_no=CASE)["ticket_id"] == T["F001"]
    t.do(w5, W5, "window.state", state="open")
    t.do(w5, W5, "window.call")
    t.do(w5, W5, "case.deliver", case_no=CASE, method="mail", tracking="SF1234567890")
    t.do(w5, W5, "window.done")
    t.do(k, K, "rate", case_no=CASE, score=5)
    t.do(k, K, "ticket.take", line="C")
    t.advance(7 * 60 * MIN, then=[("day.close", {}, {"expired": 1})])  # to 17:06
    return t


@pytest.fixture
def day(daemon):
    return daemon, a_day(daemon)


def dump_lsns(data, *args):
    p = hallq("wal", "dump", data, *args)
    out = set()
    for line in p.stdout.splitlines():
        m = LINE_RE.match(line)
        assert m, line
        out.add(int(m.group(1)))
    return out


def test_dump_text_every_record(day):
    d, t = day
    p = hallq("wal", "dump", d.data)
    assert p.stderr == ""  # no progress when piped
    lines = p.stdout.splitlines()
    assert len(lines) == len(t.recs)
    for line, r in zip(lines, t.recs):
        m = LINE_RE.match(line)
        assert m, line
        assert int(m.group(1)) == r["lsn"]
        assert m.group(3) == "%s:%s" % r["actor"], line
        assert m.group(4) == r["op"], line
    assert lines[0].split()[1:3] == ["2026-11-24", "10:00:00"]  # the hall's local time
    by_lsn = {int(LINE_RE.match(x).group(1)): x for x in lines}
    take = by_lsn[t.of("window.intake", outcome="accept")]
    assert "service=S04" in take and "case_no=%s" % CASE in take and \
        "deadline=2026-12-08T17:00:00" in take, take
    timer = by_lsn[t.of("case.timer", kind="lease")]
    assert "10:05:00  system:hallqd" in timer and "department=hsg" in timer, timer
    assert "expired=1" in by_lsn[t.of("day.close")]
    assert "text=<" in lines[0]  # the config's text shows as its size


def test_dump_filters_exact(day):
    d, t = day
    everything = t.lsns(lambda r: True)
    assert dump_lsns(d.data) == everything

    assert dump_lsns(d.data, "--op", "window.call") == t.lsns(lambda r: r["op"] == "window.call")
    both = t.lsns(lambda r: r["op"] in ("window.call", "window.recall", "rate", "case.timer"))
    assert dump_lsns(d.data, "--op", "window.call,window.recall", "--op", "rate",
                     "--op", "case.timer") == both

    for actor in [("window", "W03"), ("department", "mkt"), SYSTEM, ("kiosk", "K1")]:
        got = dump_lsns(d.data, "--actor", "%s:%s" % actor)
        assert got == t.lsns(lambda r: r["actor"] == actor), actor
    assert dump_lsns(d.data, "--actor", "window") == t.lsns(lambda r: r["actor"][0] == "window")
    assert t.lsns(lambda r: r["actor"] == SYSTEM) == \
        {1, t.of("case.timer", kind="lease"), t.of("day.close")}

    assert dump_lsns(d.data, "--lsn", "5..9") == set(range(5, 10))
    assert dump_lsns(d.data, "--lsn", "..3") == {1, 2, 3}
    last = max(everything)
    assert dump_lsns(d.data, "--lsn", "%d.." % (last - 1)) == {last - 1, last}
    assert dump_lsns(d.data, "--lsn", "7") == {7}

    # Time: everything before the clock moved is at 10:00; the lease ran
    # out at 10:05; the next requests at 10:06; the close at 17:00.
    timer = t.of("case.timer", kind="lease")
    advance2 = max(t.lsns(lambda r: r["op"] == "clock.advance"))
    assert dump_lsns(d.data, "--since", "2026-11-24 10:05", "--until", "2026-11-24 16:59") == \
        set(range(timer, advance2 + 1))
    assert dump_lsns(d.data, "--until", "2026-11-24 10:04:59") == set(range(1, timer))
    assert dump_lsns(d.data, "--since", "2026-11-24 17:00") == {t.of("day.close")}

    # --case: every record whose args or result name the case.
    want = t.lsns(lambda r: mentions(r["args"], "case_no", CASE) or
                  mentions(r["result"], "case_no", CASE))
    ops = [r["op"] for r in t.recs if r["lsn"] in want]
    assert ops == ["window.intake", "review.claim", "review.decide", "case.supplement",
                   "review.claim", "review.claim", "review.decide", "review.decide",
                   "review.claim", "case.timer", "review.claim", "review.decide",
                   "ticket.take", "case.deliver", "rate"], ops
    assert dump_lsns(d.data, "--case", CASE) == want

    # --ticket: what names it, what the window did with it as its current
    # ticket, and the day's close that expired it.
    a001 = [r["op"] for r in t.recs if r["lsn"] in dump_lsns(d.data, "--ticket", T["A001"])]
    assert a001 == ["ticket.take", "window.call", "window.no_show", "ticket.return",
                    "window.call", "window.recall", "window.transfer", "window.call",
                    "window.intake", "window.done", "rate"], a001
    assert dump_lsns(d.data, "--ticket", T["C001"]) == \
        {t.of("ticket.take", ticket_id=T["C001"]), t.of("day.close")}
    b002 = [r["op"] for r in t.recs if r["lsn"] in dump_lsns(d.data, "--ticket", T["B002"])]
    assert b002 == ["ticket.take", "window.call", "case.supplement", "window.done"], b002

    # Filters combine.
    assert dump_lsns(d.data, "--ticket", T["A001"], "--actor", "window:W01",
                     "--op", "window.call") == \
        t.lsns(lambda r: r["op"] == "window.call" and r["actor"] == ("window", "W01"))
    assert dump_lsns(d.data, "--case", CASE, "--actor", "department:hsg", "--lsn",
                     "%d.." % timer) == \
        t.lsns(lambda r: r["lsn"] > timer and r["actor"] == ("department", "hsg"))
    assert dump_lsns(d.data, "--op", "ticket.take", "--since", "2026-11-24 10:06") == \
        {t.of("ticket.take", ticket_id=T["F001"]), t.of("ticket.take", ticket_id=T["C001"])}
    assert dump_lsns(d.data, "--ticket", "%s-Z999" % TUESDAY) == set()


def test_dump_json_is_what_happened(day):
    d, t = day
    p = hallq("wal", "dump", d.data, "--json")
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [j["lsn"] for j in rows] == [r["lsn"] for r in t.recs]
    for j, r in zip(rows, t.recs):
        assert j["actor"] == {"role": r["actor"][0], "id": r["actor"][1]}, j
        assert j["op"] == r["op"]
        assert isinstance(j["at_ms"], int) and isinstance(j["type"], int)
        assert isinstance(j["events"], list)
        if r["args"] is not None:
            assert without_ids(j["args"]) == without_ids(r["args"]), (j, r)
        if r["result"] is not None:
            assert j["result"] == r["result"], (j, r)
    assert rows[0]["op"] == "config" and "text" in rows[0]["args"]
    assert rows[0]["time"] == "2026-11-24 10:00:00"
    close = rows[-1]
    assert close["op"] == "day.close" and close["time"] == "2026-11-24 17:00:00"
    call = next(j for j in rows if j["op"] == "window.call" and j["actor"]["id"] == "W05")
    assert ["call", [], {"number": "F001", "window": "W05", "line": "F"}] in call["events"]
    intake = next(j for j in rows if j["op"] == "window.intake")
    assert ["case", ["mkt", "res", "hsg"], {
        "case_no": CASE, "state": "review", "change": "accepted",
        "departments": [{"department": d, "state": "pending"} for d in ("mkt", "res", "hsg")]}] \
        in intake["events"]
    # Filters apply to JSON too.
    p = hallq("wal", "dump", d.data, "--json", "--op", "rate")
    assert [json.loads(x)["args"] for x in p.stdout.splitlines()] == \
        [{"ticket_id": T["A001"], "score": 4}, {"case_no": CASE, "score": 5}]


def history_lines(p):
    out = []
    for line in p.stdout.splitlines():
        m = LINE_RE.match(line)
        assert m, line
        out.append((int(m.group(1)), m.group(3), m.group(4), m.group(5)))
    return out


def test_history_of_a_joint_review_case(day):
    d, t = day
    p = hallq("wal", "history", CASE, d.data)
    assert p.stderr == ""
    steps = history_lines(p)
    want = [
        ("window:W03", "window.intake",
         "accepted, deadline 2026-12-08 17:00 (service S04, ticket B001)"),
        ("department:mkt", "review.claim", "claimed by mkt until 10:05"),
        ("department:mkt", "review.decide", "supplement asked by mkt: M06"),
        ("window:W03", "case.supplement", "supplement: M06 brought, deadline 2026-12-08 17:00"),
        ("department:mkt", "review.claim", "claimed by mkt until 10:05"),
        ("department:res", "review.claim", "claimed by res until 10:05"),
        ("department:mkt", "review.decide", "approved by mkt"),
        ("department:res", "review.decide", "approved by res"),
        ("department:hsg", "review.claim", "claimed by hsg until 10:05"),
        ("system:hallqd", "case.timer", "lease of hsg ran out"),
        ("department:hsg", "review.claim", "claimed by hsg until 10:11"),
        ("department:hsg", "review.decide", "approved by hsg; case approved"),
        ("kiosk:K1", "ticket.take", "pickup ticket F001 taken on line F, 0 ahead"),
        ("window:W05", "window.call", "pickup ticket F001: called at W05"),
        ("window:W05", "case.deliver", "delivered by mail (tracking SF1234567890)"),
        ("window:W05", "window.done", "pickup ticket F001: done at W05"),
        ("kiosk:K1", "rate", "rated 5"),
    ]
    assert [s[1:] for s in steps] == want, "\n".join(map(str, steps))
    lsns = [s[0] for s in steps]
    assert lsns == sorted(lsns)
    assert lsns[0] == t.of("window.intake", outcome="accept")
    assert lsns[9] == t.of("case.timer", kind="lease")
    assert lsns[-1] == t.of("rate", case_no=CASE)

    p = hallq("wal", "history", CASE, d.data, "--json")
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [j["lsn"] for j in rows] == lsns
    assert [("%s:%s" % (j["actor"]["role"], j["actor"]["id"]), j["op"], j["outcome"])
            for j in rows] == want
    assert rows[9]["time"] == "2026-11-24 10:05:00"


def test_history_of_a_ticket(day):
    d, t = day
    steps = history_lines(hallq("wal", "history", "--ticket", T["A001"], d.data))
    assert [s[1:] for s in steps] == [
        ("kiosk:K1", "ticket.take", "taken: A001 on line A, 0 ahead"),
        ("window:W01", "window.call", "called at W01"),
        ("window:W01", "window.no_show", "no_show at W01"),
        ("kiosk:K1", "ticket.return", "returned, 0 ahead"),
        ("window:W01", "window.call", "called at W01"),
        ("window:W01", "window.recall", "recalled at W01"),
        ("window:W01", "window.transfer", "transferred to line B"),
        ("window:W03", "window.call", "called at W03"),
        ("window:W03", "window.intake", "intake S01: notified, missing M03"),
        ("window:W03", "window.done", "done at W03"),
        ("kiosk:K1", "rate", "rated 4"),
    ], "\n".join(map(str, steps))
    steps = history_lines(hallq("wal", "history", "--ticket", T["C001"], d.data))
    assert [s[1:] for s in steps] == [
        ("kiosk:K1", "ticket.take", "taken: C001 on line C, 0 ahead"),
        ("system:hallqd", "day.close", "expired at day close"),
    ]
    assert steps[1][0] == t.of("day.close")
    p = hallq("wal", "history", "--ticket", T["B001"], d.data, "--json")
    outcomes = [json.loads(x)["outcome"] for x in p.stdout.splitlines()]
    assert outcomes == ["taken: B001 on line B, 0 ahead", "called at W03",
                        "intake S04: accepted, case %s, deadline 2026-12-08 17:00" % CASE,
                        "done at W03"]


def test_history_deadline_marks(make_daemon):
    """due_soon and overdue are time-driven steps of a case's history."""
    from conftest import TUESDAY_10AM
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    k, w, a = d.kiosk(), d.tcp("window-W03"), d.admin()
    w.ok("window.state", state="open")
    k.ok("ticket.take", line="B")
    w.ok("window.call")
    no = w.ok("window.intake", service="S01", applicant=PERSON, materials=["M01", "M02", "M03"],
              outcome="accept")["case_no"]
    w.ok("window.done")
    a.ok("clock.advance", ms=4 * 24 * 60 * MIN)  # Saturday 10:00: past the Friday deadline
    steps = history_lines(hallq("wal", "history", no, d.data))
    assert [s[1:] for s in steps] == [
        ("window:W03", "window.intake",
         "accepted, deadline 2026-11-27 17:00 (service S01, ticket B001)"),
        ("system:hallqd", "case.timer", "due_soon (deadline 2026-11-27 17:00)"),
        ("system:hallqd", "case.timer", "overdue (deadline 2026-11-27 17:00)"),
    ], steps
    rows = [json.loads(x) for x in hallq("wal", "history", no, d.data, "--json").stdout.split("\n")
            if x]
    assert rows[1]["time"] == "2026-11-27 09:00:00" and rows[2]["time"] == "2026-11-27 17:00:00"
    # --since / --until with the time-driven records of the system actor.
    p = hallq("wal", "dump", d.data, "--actor", "system:hallqd", "--op", "case.timer", "--json")
    assert [json.loads(x)["args"]["kind"] for x in p.stdout.splitlines()] == \
        ["due_soon", "overdue"]


# ---- the log as bytes: an unknown record type, damage ----

def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def segment_records(path):
    """(offset, lsn, at_ms, payload_len, hash) of each record, and the end."""
    data = path.read_bytes()
    off, out = 128, []
    while off + 4 <= len(data):
        n = struct.unpack_from("<I", data, off)[0]
        if n == 0:
            break
        lsn, at = struct.unpack_from("<QQ", data, off + 8)
        out.append((off, lsn, at, n, data[off + 40 + n:off + 72 + n]))
        off += 76 + n
    return out, off


def append_record(seg, rtype, role, actor, payload):
    recs, end = segment_records(seg)
    _, lsn, at, _, prev = recs[-1]
    head = struct.pack("<IHBBQQ", len(payload), rtype, role, len(actor), lsn + 1, at)
    body = head + actor.encode().ljust(16, b"\0") + payload
    h = hashlib.blake2b(prev + body, digest_size=32).digest()
    rec = body + h
    rec += struct.pack("<I", crc32c(rec))
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(rec)
    return lsn + 1


def test_unknown_record_type_and_damage(day, workdir):
    d, t = day
    d.stop()
    seg = d.data / "wal" / "00000000000000000001.wal"
    # Bytes that are not UTF-8, a terminal escape and a bin value.
    payload = msgpack.packb({"op": "future.op", "args": {"case_no": CASE},
                             "result": {"note": "ZZZZZZ", "raw": b"\x01\xab"}},
                            use_bin_type=True).replace(b"ZZZZZZ", b"\xff\x1b[31m")
    lsn = append_record(seg, 999, 7, "X1", payload)
    p = hallq("wal", "verify", d.data)
    assert "intact" in p.stdout, p.stdout
    p = hallq("wal", "dump", d.data, "--lsn", "%d.." % lsn)
    assert "unknown record type 999" in p.stdout and "role7:X1" in p.stdout, p.stdout
    assert "case_no=%s" % CASE in p.stdout and "(future.op)" in p.stdout
    assert "\x1b" not in p.stdout and "raw=0x01ab" in p.stdout, p.stdout
    j = json.loads(hallq("wal", "dump", d.data, "--json", "--lsn", "%d.." % lsn).stdout)
    assert j["op"] is None and j["type"] == 999 and j["args"] == {"case_no": CASE}
    assert j["result"] == {"note": "\ufffd\x1b[31m", "raw": "01ab"}, j
    assert j["actor"] == {"role": "role7", "id": "X1"}
    steps = history_lines(hallq("wal", "history", CASE, d.data))
    assert steps[-1][0] == lsn and steps[-1][2] == "unknown"
    assert lsn in dump_lsns(d.data, "--case", CASE)

    # A damaged byte in the middle: what comes before is shown, then the
    # place is named and the exit status is 1.
    bad = workdir / "bad"
    shutil.copytree(d.data / "wal", bad)
    recs, _ = segment_records(bad / seg.name)
    off = recs[9][0] + 45
    data = bytearray((bad / seg.name).read_bytes())
    data[off] ^= 0xff
    (bad / seg.name).write_bytes(bytes(data))
    p = hallq("wal", "dump", bad, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert seg.name in p.stderr and "offset %d" % recs[9][0] in p.stderr and "LSN 10" in p.stderr, \
        p.stderr
    assert len(p.stdout.splitlines()) == 9
    p = hallq("wal", "history", CASE, bad, check=False)
    assert p.returncode == 1 and seg.name in p.stderr, p.stderr


def test_bad_input(day, workdir):
    d, t = day
    p = hallq("wal", "history", "%s-9999" % TUESDAY, d.data, check=False)
    assert p.returncode == 1 and "does not appear" in p.stderr, p.stderr
    p = hallq("wal", "history", "--ticket", "%s-A999" % TUESDAY, d.data, check=False)
    assert p.returncode == 1 and "does not appear" in p.stderr, p.stderr
    for cmd in (["wal", "dump"], ["wal", "history", CASE]):
        p = hallq(*cmd, workdir / "nothing-here", check=False)
        assert p.returncode == 1 and "nothing-here" in p.stderr, (cmd, p.stderr)
    for bad in ("5..3", "x..4", "1...5", "", "-1..2", "..", "1..2..3"):
        if bad == "..":
            continue  # both ends open: every record
        p = hallq("wal", "dump", d.data, "--lsn", bad, check=False)
        assert p.returncode == 2 and "--lsn" in p.stderr, (bad, p.returncode, p.stderr)
    for bad in ("robot:R1", "window:", "W03", ":W03", "window:" + "W" * 17):
        p = hallq("wal", "dump", d.data, "--actor", bad, check=False)
        assert p.returncode == 2 and "--actor" in p.stderr, (bad, p.returncode, p.stderr)
    for bad in ("ticket.get", "nope", "window.call,", ""):
        p = hallq("wal", "dump", d.data, "--op", bad, check=False)
        assert p.returncode == 2, (bad, p.stderr)
    for bad in ("yesterday", "2026-11-24 25:00"):
        p = hallq("wal", "dump", d.data, "--since", bad, check=False)
        assert p.returncode == 2 and "--since" in p.stderr, (bad, p.stderr)
    p = hallq("wal", "dump", d.data, "--since", "2026-11-24 12:00", "--until",
              "2026-11-24 11:00", check=False)
    assert p.returncode == 2
    for args in (["--json", "--frobnicate"], ["--lsn"], [d.data, d.data]):
        p = hallq("wal", "dump", *args, check=False)
        assert p.returncode == 2, (args, p.stderr)
    for args in ([], ["--ticket"], [CASE, d.data, "extra"], ["--ticket", "x", d.data, "y"]):
        p = hallq("wal", "history", *args, check=False)
        assert p.returncode == 2, (args, p.stderr)
    assert pathlib.Path(d.data).exists()
