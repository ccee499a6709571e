"""Taking and reading tickets through both listeners, idem, restarts, and
the daemon's command-line contract."""
import subprocess

from conftest import HALLQ, TUESDAY_10AM


def test_ready_line_and_hello(daemon):
    k = daemon.kiosk()
    r = k.ok("ping")
    assert r["now_ms"] == TUESDAY_10AM
    h = daemon.tcp().hello("window-W03")
    assert h == {"role": "window", "id": "W03", "hall": "Demo City Service Centre",
                 "server": h["server"], "protocol": 1}


def test_numbering_over_tcp_and_unix(daemon):
    k, a = daemon.kiosk(), daemon.admin()
    nums = [k.ok("ticket.take", line="A")["number"] for _ in range(3)]
    nums.append(a.ok("ticket.take", line="A")["number"])
    assert nums == ["A001", "A002", "A003", "A004"]
    assert k.ok("ticket.take", line="B")["number"] == "B001"
    t = a.ok("ticket.take", line="A")
    assert t["ticket_id"] == "20261124-A005" and t["line"] == "A"
    assert t["ahead"] == 4 and t["taken_ms"] == TUESDAY_10AM


def test_ahead_and_priority(daemon):
    k = daemon.kiosk()
    for _ in range(3):
        k.ok("ticket.take", line="C")
    p = k.ok("ticket.take", line="C", priority=True)
    assert p["ahead"] == 0
    p2 = k.ok("ticket.take", line="C", priority=True)
    assert p2["ahead"] == 1
    last = k.ok("ticket.take", line="C")
    assert last["ahead"] == 5
    g = k.ok("ticket.get", ticket_id=last["ticket_id"])
    assert g == {"ticket_id": last["ticket_id"], "number": "C006", "line": "C",
                 "state": "waiting", "ahead": 5}
    first = k.ok("ticket.get", ticket_id="20261124-C001")
    assert first["ahead"] == 2  # behind the two priority tickets


def test_idem_retry_same_ticket_and_conflict(daemon):
    k = daemon.kiosk()
    t1 = k.ok("ticket.take", line="A", idem="kiosk1-0001")
    t2 = daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0001")
    assert t1 == t2
    code, msg = k.err("ticket.take", line="B", idem="kiosk1-0001")
    assert code == "conflict" and "idem" in msg
    code, msg = k.err("ticket.take", line="A", idem="x" * 65)
    assert code == "bad_request" and "idem" in msg
    # Another identity may use the same key.
    t3 = daemon.admin().ok("ticket.take", line="A", idem="kiosk1-0001")
    assert t3["number"] == "A002"
    daemon.restart()
    assert daemon.kiosk().ok("ticket.take", line="A", idem="kiosk1-0001") == t1
    assert daemon.kiosk().ok("ticket.take", line="A")["number"] == "A003"


def test_restart_keeps_everything(daemon):
    k = daemon.kiosk()
    taken = [k.ok("ticket.take", line=l) for l in "ABACD"]
    digest = daemon.admin().ok("digest")
    daemon.restart()
    k = daemon.kiosk()
    for t in taken:
        g = k.ok("ticket.get", ticket_id=t["ticket_id"])
        assert (g["number"], g["line"], g["state"]) == (t["number"], t["line"], "waiting")
    assert daemon.admin().ok("digest") == digest
    assert k.ok("ticket.take", line="A")["number"] == "A003"


def test_not_found_and_bad_request(daemon):
    k = daemon.kiosk()
    code, msg = k.err("ticket.take", line="Z")
    assert code == "not_found" and "line" in msg
    code, msg = k.err("ticket.get", ticket_id="20261124-A999")
    assert code == "not_found" and "ticket_id" in msg
    code, msg = k.err("ticket.take", line="A", appointment="NOPE")
    assert code == "not_found" and "appointment" in msg
    code, msg = k.err("ticket.take", line="F", case_no="NOPE")
    assert code == "not_found" and "case_no" in msg
    code, msg = k.err("ticket.take", line="A", priority="yes")
    assert code == "bad_request" and "priority" in msg
    # Nothing was taken by the failures.
    assert k.ok("ticket.take", line="A")["number"] == "A001"


def test_roles(daemon):
    for token in ("window-W01", "display-demo"):
        c = daemon.tcp(token)
        code, _ = c.err("ticket.take", line="A")
        assert code == "forbidden"
        code, _ = c.err("ticket.get", ticket_id="x")
        assert code == "forbidden"
        assert "now_ms" in c.ok("ping")
    d = daemon.unix("dept-mkt")
    assert d.err("ticket.take", line="A")[0] == "forbidden"
    assert d.err("digest")[0] == "forbidden"
    assert daemon.kiosk().err("clock.advance", ms=1)[0] == "forbidden"
    assert daemon.kiosk().err("digest")[0] == "forbidden"


def test_clock_advance_with_manual_clock(daemon):
    a = daemon.admin()
    assert a.ok("clock.advance", ms=60000)["now_ms"] == TUESDAY_10AM + 60000
    assert a.ok("ping")["now_ms"] == TUESDAY_10AM + 60000
    t = daemon.kiosk().ok("ticket.take", line="A")
    assert t["taken_ms"] == TUESDAY_10AM + 60000
    # Past the day's close (17:00) tickets belong to Wednesday.
    a.ok("clock.advance", ms=7 * 3600 * 1000)
    t = daemon.kiosk().ok("ticket.take", line="A")
    assert t["ticket_id"] == "20261125-A001"
    daemon.restart()
    assert daemon.admin().ok("ping")["now_ms"] == TUESDAY_10AM + 60000 + 7 * 3600 * 1000


def test_clock_advance_forbidden_without_manual_clock(make_daemon):
    d = make_daemon(manual_clock=False)
    code, msg = d.admin().err("clock.advance", ms=1000)
    assert code == "forbidden" and "manual-clock" in msg


def test_data_dir_in_use(daemon, make_daemon):
    other = subprocess.run(
        [str(daemon.proc.args[0]), "--config", str(daemon.config), "--data", str(daemon.data),
         "--tcp", "127.0.0.1:0", "--unix", daemon.sock + "2"],
        stderr=subprocess.PIPE, text=True, timeout=30)
    assert other.returncode == 1
    assert "in use" in other.stderr
    assert "now_ms" in daemon.kiosk().ok("ping")


def test_cli(daemon):
    out = subprocess.run([str(HALLQ), "--tcp", "127.0.0.1:%d" % daemon.port, "ticket", "take",
                          "B"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '"number": "B001"' in out.stdout
    out = subprocess.run([str(HALLQ), "--unix", daemon.sock, "digest"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and '"lsn": 2' in out.stdout
    out = subprocess.run([str(HALLQ), "--tcp", "127.0.0.1:%d" % daemon.port, "ticket", "get",
                          "nope"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "not_found" in out.stderr


def test_disk_reserve_refuses_changes_keeps_reads(make_daemon):
    # A reserve larger than any disk: every change is refused up front.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"disk_reserve_bytes: 268435456": "disk_reserve_bytes: 1099511627776"})
    k = d.kiosk()
    code, msg = k.err("ticket.take", line="A")
    assert code == "unavailable" and "reserve" in msg
    assert "now_ms" in k.ok("ping")
    assert k.err("ticket.get", ticket_id="20261124-A001")[0] == "not_found"
    assert "below the reserve" in d.log_text()


def test_lmdb_map_grows_when_full(make_daemon):
    # A 1 MiB map fills after a few thousand tickets: the batch is rolled
    # back, the map doubled, the batch run again; nothing is lost or doubled.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"map_bytes: 67108864": "map_bytes: 1048576"})
    import struct
    import msgpack
    k = d.kiosk()
    n = 6000
    k.send_raw(b"".join(
        (lambda b: struct.pack(">I", len(b)) + b)(
            msgpack.packb({"id": i, "op": "ticket.take",
                           "args": {"line": "ABCD"[i % 4], "idem": "m%d" % i}}))
        for i in range(1, n + 1)))
    got = [k.read() for _ in range(n)]
    assert all(m["ok"] for m in got)
    assert "map grown" in d.log_text()
    nums = {}
    for m in got:
        nums.setdefault(m["result"]["line"], []).append(m["result"]["number"])
    for line, ns in nums.items():
        assert ns == ["%s%03d" % (line, i) for i in range(1, len(ns) + 1)]
    digest = d.admin().ok("digest")
    d.restart()
    assert d.admin().ok("digest") == digest
    assert d.kiosk().ok("ticket.get", ticket_id="20261124-D1500")["number"] == "D1500"


def test_refuses_wal_with_missing_first_segments(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"segment_bytes: 67108864": "segment_bytes: 65536"})
    k = d.kiosk()
    for i in range(1500):
        k.ok("ticket.take", line="ABCD"[i % 4])
    d.stop()
    segs = sorted((d.data / "wal").glob("*.wal"))
    assert len(segs) > 2
    segs[0].unlink()
    (d.data / "state.mdb").unlink()
    proc = d.start(expect_ready=False)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "segments are missing" in err
    d.proc = None
