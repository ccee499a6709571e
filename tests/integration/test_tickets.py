"""Taking and reading tickets through both listeners, idem, restarts, roles,
the manual clock, and the daemon's command-line contract."""
import re
import signal
import subprocess

import pytest

from conftest import HALLQ, READY_RE, TUESDAY, TUESDAY_10AM, segment_bytes

HALL_NAME = "Demo City Service Centre"
SERVICE_S = 300  # rules.default_service_s of the demo hall


def tid(number, day=TUESDAY):
    return "%s-%s" % (day, number)


# ---- start-up, hello, ping ----

def test_ready_line_format(daemon):
    lines = [l for l in daemon.log_text().splitlines() if l.startswith("hallqd ready")]
    assert lines == [daemon.ready_line], daemon.log_text()
    m = READY_RE.match(daemon.ready_line)
    assert m and m.group(3) == daemon.sock
    assert 0 < int(m.group(2)) < 65536
    assert "now_ms" in daemon.kiosk().ok("ping")
    assert "now_ms" in daemon.admin().ok("ping")


@pytest.mark.parametrize("listener,token,role,id", [
    ("tcp", "kiosk-demo", "kiosk", "K1"),
    ("tcp", "display-demo", "display", "D1"),
    ("tcp", "window-W03", "window", "W03"),
    ("unix", "admin-demo", "admin", "admin"),
    ("unix", "dept-mkt", "department", "mkt"),
])
def test_hello(daemon, listener, token, role, id):
    c = daemon.tcp() if listener == "tcp" else daemon.unix()
    h = c.hello(token)
    assert set(h) >= {"role", "id", "hall", "server", "protocol"}, h
    assert (h["role"], h["id"], h["hall"], h["protocol"]) == (role, id, HALL_NAME, 1)
    assert isinstance(h["server"], str) and h["server"]


def test_ping_on_the_manual_clock(daemon):
    assert daemon.kiosk().ok("ping") == {"now_ms": TUESDAY_10AM}
    assert daemon.admin().ok("ping") == {"now_ms": TUESDAY_10AM}


# ---- taking and reading ----

def test_take_over_tcp(daemon):
    k = daemon.kiosk()
    got = [k.ok("ticket.take", line="A") for _ in range(3)]
    for i, t in enumerate(got):
        assert t == {"ticket_id": tid("A%03d" % (i + 1)), "number": "A%03d" % (i + 1),
                     "line": "A", "ahead": i, "est_wait_s": i * SERVICE_S,
                     "taken_ms": TUESDAY_10AM}, t


def test_take_over_unix_as_admin(daemon):
    a = daemon.admin()
    t = a.ok("ticket.take", line="B")
    assert (t["number"], t["line"], t["ahead"]) == ("B001", "B", 0)
    # Kiosk and admin draw from the same line.
    assert daemon.kiosk().ok("ticket.take", line="B")["number"] == "B002"
    t = a.ok("ticket.take", line="B")
    assert (t["number"], t["ahead"]) == ("B003", 2)


def test_numbering_is_per_line(daemon):
    k = daemon.kiosk()
    seq = [k.ok("ticket.take", line=l)["number"] for l in "AABACBD"]
    assert seq == ["A001", "A002", "B001", "A003", "C001", "B002", "D001"]


def test_ahead_counts_only_the_own_line(daemon):
    k = daemon.kiosk()
    for _ in range(4):
        k.ok("ticket.take", line="A")
    t = k.ok("ticket.take", line="B")
    assert t["ahead"] == 0 and t["est_wait_s"] == 0
    assert k.ok("ticket.take", line="A")["ahead"] == 4


def test_priority_ticket_goes_ahead(daemon):
    k = daemon.kiosk()
    for _ in range(3):
        k.ok("ticket.take", line="C")
    p1 = k.ok("ticket.take", line="C", priority=True)
    assert (p1["number"], p1["ahead"]) == ("C004", 0)
    p2 = k.ok("ticket.take", line="C", priority=True)
    assert (p2["number"], p2["ahead"]) == ("C005", 1)
    plain = k.ok("ticket.take", line="C")
    assert (plain["number"], plain["ahead"]) == ("C006", 5)
    # The plain tickets taken earlier now wait behind both priority ones.
    assert k.ok("ticket.get", ticket_id=tid("C001"))["ahead"] == 2
    assert k.ok("ticket.get", ticket_id=tid("C003"))["ahead"] == 4
    assert k.ok("ticket.get", ticket_id=p2["ticket_id"])["ahead"] == 1
    assert k.ok("ticket.take", line="C", priority=False)["ahead"] == 6


def test_ticket_get(daemon):
    k = daemon.kiosk()
    t1 = k.ok("ticket.take", line="A")
    t2 = daemon.admin().ok("ticket.take", line="A")
    for c in (k, daemon.admin()):
        g = c.ok("ticket.get", ticket_id=t2["ticket_id"])
        assert g == {"ticket_id": t2["ticket_id"], "number": "A002", "line": "A",
                     "state": "waiting", "ahead": 1}, g
    assert k.ok("ticket.get", ticket_id=t1["ticket_id"])["ahead"] == 0


def test_unknown_line_is_not_found(daemon):
    k = daemon.kiosk()
    code, msg = k.err("ticket.take", line="Z")
    assert code == "not_found" and "line" in msg
    code, _ = daemon.admin().err("ticket.take", line="a")
    assert code == "not_found"
    # Failed requests take no number.
    assert k.ok("ticket.take", line="A")["number"] == "A001"


def test_unknown_ticket_is_not_found(daemon):
    k = daemon.kiosk()
    for bad in (tid("A001"), tid("A999"), "nonsense", ""):
        code, _ = k.err("ticket.get", ticket_id=bad)
        assert code in ("not_found", "bad_request"), bad
        if bad and bad != "nonsense":
            assert code == "not_found", bad


# ---- idem ----

def test_idem_retry_returns_the_same_ticket(daemon):
    k = daemon.kiosk()
    t1 = k.ok("ticket.take", line="A", idem="kiosk1-0001")
    assert k.ok("ticket.take", line="A", idem="kiosk1-0001") == t1
    # From another connection of the same identity too.
    assert daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0001") == t1
    # Nothing more was taken.
    assert k.ok("ticket.take", line="A")["number"] == "A002"


def test_idem_retry_across_a_restart(daemon):
    t1 = daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0001")
    daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0002")
    daemon.restart()
    k = daemon.kiosk()
    assert k.ok("ticket.take", line="A", idem="kiosk1-0001") == t1
    assert k.ok("ticket.take", line="A")["number"] == "A003"
    daemon.crash_restart()
    assert daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0001") == t1


def test_idem_with_other_args_is_conflict(daemon):
    k = daemon.kiosk()
    k.ok("ticket.take", line="A", idem="kiosk1-0001")
    code, msg = k.err("ticket.take", line="B", idem="kiosk1-0001")
    assert code == "conflict" and "idem" in msg
    code, _ = k.err("ticket.take", line="A", priority=True, idem="kiosk1-0001")
    assert code == "conflict"
    # The conflict took nothing.
    assert k.ok("ticket.take", line="B")["number"] == "B001"


def test_idem_belongs_to_the_identity(daemon):
    t1 = daemon.kiosk().ok("ticket.take", line="A", idem="shared-key")
    t2 = daemon.admin().ok("ticket.take", line="A", idem="shared-key")
    assert (t1["number"], t2["number"]) == ("A001", "A002")
    assert daemon.admin().ok("ticket.take", line="A", idem="shared-key") == t2


def test_idem_length(daemon):
    k = daemon.kiosk()
    t = k.ok("ticket.take", line="A", idem="x" * 64)
    assert k.ok("ticket.take", line="A", idem="x" * 64) == t
    code, msg = k.err("ticket.take", line="A", idem="y" * 65)
    assert code == "bad_request" and "idem" in msg
    code, msg = k.err("ticket.take", line="A", idem="")
    assert code == "bad_request" and "idem" in msg
    code, msg = k.err("ticket.take", line="A", idem=12)
    assert code == "bad_request" and "idem" in msg
    # 64 bytes of UTF-8 is the bound, not 64 characters.
    code, msg = k.err("ticket.take", line="A", idem="\u53f7" * 22)  # 66 bytes
    assert code == "bad_request" and "idem" in msg
    assert k.ok("ticket.take", line="A")["number"] == "A002"


def test_failed_request_with_idem_is_not_remembered(daemon):
    k = daemon.kiosk()
    code, _ = k.err("ticket.take", line="Z", idem="k-1")
    assert code == "not_found"
    # The key is still free: a good request with it takes a ticket.
    t = k.ok("ticket.take", line="A", idem="k-1")
    assert t["number"] == "A001"


# ---- restarts ----

def test_restart_keeps_everything(daemon):
    k = daemon.kiosk()
    taken = [k.ok("ticket.take", line=l) for l in "ABACD"]
    taken.append(k.ok("ticket.take", line="A", priority=True))
    before = [k.ok("ticket.get", ticket_id=t["ticket_id"]) for t in taken]
    digest = daemon.admin().ok("digest")
    assert re.fullmatch(r"[0-9a-f]{16,}", digest["digest"]), digest
    assert isinstance(digest["lsn"], int) and digest["lsn"] > 0
    daemon.restart()
    k = daemon.kiosk()
    assert [k.ok("ticket.get", ticket_id=t["ticket_id"]) for t in taken] == before
    assert daemon.admin().ok("digest") == digest
    assert k.ok("ticket.take", line="A")["number"] == "A004"
    assert k.ok("ticket.take", line="D")["number"] == "D002"


def test_kill_and_restart_keeps_acknowledged(daemon):
    k = daemon.kiosk()
    got = k.pipeline([("ticket.take", {"line": "AB"[i % 2]}) for i in range(50)])
    digest = daemon.admin().ok("digest")
    daemon.crash_restart()
    k = daemon.kiosk()
    for m in got:
        t = m["result"]
        g = k.ok("ticket.get", ticket_id=t["ticket_id"])
        assert (g["number"], g["line"]) == (t["number"], t["line"])
    assert daemon.admin().ok("digest") == digest


def test_digest_tracks_state(daemon):
    a = daemon.admin()
    d0 = a.ok("digest")
    daemon.kiosk().ok("ticket.take", line="A")
    d1 = a.ok("digest")
    assert d1["digest"] != d0["digest"] and d1["lsn"] > d0["lsn"]
    assert a.ok("digest") == d1  # reading changes nothing


# ---- roles ----

@pytest.mark.parametrize("listener,token", [("tcp", "window-W01"), ("tcp", "display-demo"),
                                            ("unix", "dept-mkt")])
def test_roles_without_tickets_are_forbidden(daemon, listener, token):
    c = daemon.tcp(token) if listener == "tcp" else daemon.unix(token)
    code, _ = c.err("ticket.take", line="A")
    assert code == "forbidden"
    code, _ = c.err("ticket.get", ticket_id=tid("A001"))
    assert code == "forbidden"
    assert "now_ms" in c.ok("ping")  # kept open
    # Nothing was taken.
    assert daemon.kiosk().ok("ticket.take", line="A")["number"] == "A001"


@pytest.mark.parametrize("listener,token", [("tcp", "kiosk-demo"), ("tcp", "window-W01"),
                                            ("unix", "dept-hsg")])
def test_admin_ops_are_forbidden_to_others(daemon, listener, token):
    c = daemon.tcp(token) if listener == "tcp" else daemon.unix(token)
    assert c.err("clock.advance", ms=1000)[0] == "forbidden"
    assert c.err("digest")[0] == "forbidden"
    assert c.ok("ping") == {"now_ms": TUESDAY_10AM}


# ---- the manual clock ----

def test_clock_advance_forbidden_without_manual_clock(make_daemon):
    d = make_daemon(manual_clock=False)
    a = d.admin()
    now = a.ok("ping")["now_ms"]
    code, _ = a.err("clock.advance", ms=3600000)
    assert code == "forbidden"
    assert a.ok("ping")["now_ms"] < now + 3600000


def test_clock_advance_with_manual_clock(daemon):
    a = daemon.admin()
    assert a.ok("clock.advance", ms=60000) == {"now_ms": TUESDAY_10AM + 60000}
    assert a.ok("ping")["now_ms"] == TUESDAY_10AM + 60000
    assert daemon.kiosk().ok("ping")["now_ms"] == TUESDAY_10AM + 60000
    t = daemon.kiosk().ok("ticket.take", line="A")
    assert t["taken_ms"] == TUESDAY_10AM + 60000
    # The clock is a WAL record: it survives a restart.
    daemon.restart()
    assert daemon.admin().ok("ping")["now_ms"] == TUESDAY_10AM + 60000
    daemon.crash_restart()
    assert daemon.admin().ok("ping")["now_ms"] == TUESDAY_10AM + 60000


def test_clock_advance_bad_args(daemon):
    a = daemon.admin()
    code, msg = a.err("clock.advance")
    assert code == "bad_request" and "ms" in msg
    code, msg = a.err("clock.advance", ms="soon")
    assert code == "bad_request" and "ms" in msg
    assert a.ok("ping")["now_ms"] == TUESDAY_10AM


def test_tickets_after_the_close_belong_to_the_next_day(daemon):
    a, k = daemon.admin(), daemon.kiosk()
    assert k.ok("ticket.take", line="A")["ticket_id"] == tid("A001")
    a.ok("clock.advance", ms=7 * 3600 * 1000 + 1)  # past 17:00
    t = k.ok("ticket.take", line="A")
    assert (t["ticket_id"], t["number"]) == (tid("A001", "20261125"), "A001")


# ---- the command line ----

def test_data_dir_in_use(daemon):
    rc, err = daemon.run_to_exit()
    assert rc == 1, err
    assert "in use" in err, err
    assert "hallqd ready" not in err
    # The first daemon goes on serving.
    assert "now_ms" in daemon.kiosk().ok("ping")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_exit_0(daemon, sig):
    t = daemon.kiosk().ok("ticket.take", line="A")
    daemon.stop(sig)  # asserts exit 0
    assert daemon.exit_codes == [0]
    daemon.start()
    assert daemon.kiosk().ok("ticket.get", ticket_id=t["ticket_id"])["number"] == "A001"


def test_sigterm_answers_what_is_in_flight(daemon):
    # SIGTERM with a pipeline in flight: answers keep coming in order, each
    # is a ticket or unavailable, and every ticket given is there after the
    # restart (numbers with no holes).
    k = daemon.kiosk()
    n = 300
    ids = k.pipeline_send([("ticket.take", {"line": "A", "idem": "s%d" % i})
                           for i in range(n)])
    first = k.read()
    assert first["id"] == ids[0] and first["ok"], first
    daemon.send_signal(signal.SIGTERM)
    got = [first]
    try:
        while len(got) < n:
            got.append(k.read())
    except Exception:
        pass  # the daemon may close the connection once drained
    daemon.stop()  # exit 0
    assert "did not read their answers" not in daemon.log_text(), \
        "every answer was read, yet the daemon waited for its drain timeout:\n" + \
        daemon.log_tail(5)
    assert [m["id"] for m in got] == ids[:len(got)]
    oks = [m for m in got if m["ok"]]
    assert all(m["error"]["code"] == "unavailable" for m in got if not m["ok"]), got
    assert [m["result"]["number"] for m in oks] == ["A%03d" % i for i in range(1, len(oks) + 1)]
    daemon.start()
    k = daemon.kiosk()
    for i, m in enumerate(got):
        if m["ok"]:
            assert k.ok("ticket.take", line="A", idem="s%d" % i) == m["result"]


def test_cli(daemon):
    def hallq(*args):
        return subprocess.run([str(HALLQ)] + list(args), capture_output=True, text=True,
                              timeout=30)

    # Text is hallq's default output; --json prints the result map.
    out = hallq("--json", "--tcp", "127.0.0.1:%d" % daemon.port, "ticket", "take", "B")
    assert out.returncode == 0, out.stderr
    assert '"number": "B001"' in out.stdout
    out = hallq("--json", "--unix", daemon.sock, "digest")
    assert out.returncode == 0 and '"lsn"' in out.stdout, out
    out = hallq("--tcp", "127.0.0.1:%d" % daemon.port, "ticket", "get", "nope")
    assert out.returncode == 1 and "not_found" in out.stderr, out


# ---- limits of the store ----

def test_disk_reserve_refuses_changes_keeps_reads(make_daemon):
    # A reserve larger than any disk: every change is refused up front.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"disk_reserve_bytes: 268435456": "disk_reserve_bytes: 1099511627776"})
    k = d.kiosk()
    code, msg = k.err("ticket.take", line="A")
    assert code == "unavailable" and "reserve" in msg
    assert "now_ms" in k.ok("ping")
    assert k.err("ticket.get", ticket_id=tid("A001"))[0] == "not_found"
    d.wait_log("below the reserve")


def test_lmdb_map_grows_when_full(make_daemon):
    # A 1 MiB map fills after a few thousand tickets: the batch is rolled
    # back, the map doubled, the batch run again; nothing is lost or doubled.
    # 20000 tickets grow it several times (1 -> 16 MiB), so some growth falls
    # on a commit too, not only on a put.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"map_bytes: 67108864": "map_bytes: 1048576"})
    k = d.kiosk()
    n = 20000
    try:
        got = k.pipeline([("ticket.take", {"line": "ABCD"[i % 4], "idem": "m%d" % i})
                          for i in range(n)])
    except Exception as e:
        raise AssertionError("pipeline of %d tickets broke (%r); the daemon said:\n%s"
                             % (n, e, "".join(l for l in d.log_text().splitlines(True)
                                               if "lmdb" in l or "error" in l))) from None
    bad = [m for m in got if not m["ok"]]
    assert not bad, "%d of %d refused, first %r; log:\n%s" % (len(bad), n, bad[0], d.log_tail(8))
    d.wait_log("map grown")
    nums = {}
    for m in got:
        nums.setdefault(m["result"]["line"], []).append(m["result"]["number"])
    for line, ns in nums.items():
        assert ns == ["%s%03d" % (line, i) for i in range(1, len(ns) + 1)]
    digest = d.admin().ok("digest")
    d.restart()
    assert d.admin().ok("digest") == digest
    assert d.kiosk().ok("ticket.get", ticket_id=tid("D5000"))["number"] == "D5000"


def test_refuses_wal_with_missing_first_segments(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=segment_bytes(65536))
    k = d.kiosk()
    k.pipeline([("ticket.take", {"line": "ABCD"[i % 4]}) for i in range(1500)], chunk=100)
    d.stop()
    segs = sorted((d.data / "wal").glob("*.wal"))
    assert len(segs) > 2, segs
    segs[0].unlink()
    (d.data / "state.mdb").unlink()
    rc, err = d.run_to_exit()
    assert rc == 1, err
    assert "segments are missing" in err, err
    assert "hallqd ready" not in err
