"""The daemon on a failing disk: a WAL write or sync that fails is never
acknowledged; the daemon refuses changes from then on (reads go on), logs
the cause once, and a restart recovers every acknowledged request."""
import subprocess
import time

import pytest

from conftest import FAULTFS, HALLQ, TUESDAY_10AM, segment_bytes, wait_until


def restart_without_fault(d, acked=()):
    """A clean stop, then a start with the disk healthy again; every
    acknowledged ticket must be there with its number. Returns a kiosk."""
    d.stop()
    d.env = None
    d.start()
    k = d.kiosk()
    for t in acked:
        assert k.ok("ticket.get", ticket_id=t["ticket_id"])["number"] == t["number"]
    return k


def preload(spec):
    # ASan wants its runtime first; the shim is built without it.
    return {"LD_PRELOAD": str(FAULTFS), "HALLQ_FAULT": spec,
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}


@pytest.mark.parametrize("spec", ["fdatasync:4:EIO", "pwrite:5:ENOSPC"])
def test_wal_failure_means_unavailable(make_daemon, spec):
    # fdatasync number 1 is the config record at start (pwrite 1 is the
    # first segment's header, 2 the config record); then the first two
    # tickets; the next call fails.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=preload(spec))
    k = d.kiosk()
    acked = [k.ok("ticket.take", line="A", idem="t%d" % i) for i in range(2)]
    code, msg = k.err("ticket.take", line="A", idem="t2")
    assert code == "unavailable"
    # Nothing unacknowledged is visible, and no later change is taken.
    assert k.err("ticket.get", ticket_id="20261124-A003")[0] == "not_found"
    code, _ = k.err("ticket.take", line="B")
    assert code == "unavailable"
    # Reads go on.
    assert k.ok("ticket.get", ticket_id=acked[1]["ticket_id"])["number"] == "A002"
    assert "now_ms" in k.ok("ping")
    log = d.wait_log("refusing changes until restart")
    assert log.count("refusing changes until restart") == 1, log
    assert ("fdatasync" if spec.startswith("fdatasync") else "write") in log
    # Restart without the fault: everything acknowledged is there, and the
    # retried request takes effect exactly once.
    k = restart_without_fault(d, acked)
    r = k.ok("ticket.take", line="A", idem="t2")
    assert k.ok("ticket.take", line="A", idem="t2") == r
    assert r["number"] in ("A003",)


@pytest.mark.parametrize("spec, call", [
    ("open:2:EIO", "open"),            # creating the second segment
    ("fallocate:2:ENOSPC", "fallocate"),
    ("rename:2:EIO", "rename"),
    ("pwrite:6:short", "write"),       # half a batch written, then a full disk
    ("fdatasync:6:ENOSPC", "fdatasync"),
])
def test_wal_faults_at_rollover_and_short_writes(make_daemon, spec, call):
    # Small segments, so the log rolls over within a few dozen tickets; call
    # number 1 of open/fallocate/rename made the first segment at start.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=preload(spec),
                    extra=segment_bytes(65536))
    k = d.kiosk()
    acked, failed = [], None
    for i in range(3000):
        ok, r = k.call("ticket.take", line="AB"[i % 2], idem="f%d" % i)
        if not ok:
            assert r["code"] == "unavailable", r
            failed = i
            break
        acked.append(r)
    assert failed is not None, "the fault never struck"
    assert acked, "the fault struck before anything was acknowledged"
    # From then on: no change taken, reads answered, the cause logged once.
    code, _ = k.err("ticket.take", line="C", idem="later")
    assert code == "unavailable"
    assert k.ok("ticket.get", ticket_id=acked[-1]["ticket_id"])["number"] == acked[-1]["number"]
    log = d.wait_log("refusing changes until restart")
    assert log.count("refusing changes until restart") == 1, log
    assert call in log.split("refusing changes")[0].splitlines()[-1], log
    # Restart with the fault gone: every acknowledged ticket is there with
    # its number, nothing unacknowledged is half there, and the retry of the
    # failed request takes effect once.
    k = restart_without_fault(d, acked)
    # The failed request was "not known to have taken effect": its record
    # may have reached the disk whole (a failed fdatasync), never in part.
    def taken():
        st = d.admin().ok("stats")
        assert st["lines"]["C"]["taken"] == 0  # refused while failed: never
        return st["lines"]["A"]["taken"] + st["lines"]["B"]["taken"]
    assert taken() in (len(acked), len(acked) + 1)
    r = k.ok("ticket.take", line="AB"[failed % 2], idem="f%d" % failed)
    assert k.ok("ticket.take", line="AB"[failed % 2], idem="f%d" % failed) == r
    assert taken() == len(acked) + 1  # the retry: once, whatever happened before
    p = subprocess.run([str(HALLQ), "wal", "verify", d.data], capture_output=True, text=True)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout + p.stderr


def test_disk_full_while_idle_then_freed(make_daemon, workdir):
    # The disk's free space comes from a file the test rewrites (the shim's
    # statvfs): full while the hall is idle, then freed. The daemon refuses
    # changes while it is below the reserve (reads go on), and takes them
    # again once space is back, with no restart and nothing lost.
    free = workdir / "free"
    free.write_text("%d\n" % (1 << 40))
    env = {"LD_PRELOAD": str(FAULTFS), "HALLQ_FREE_FILE": str(free),
           "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env)
    k = d.kiosk()
    first = k.ok("ticket.take", line="A", idem="d0")
    free.write_text("4096\n")  # the disk fills while nobody asks anything

    def until(pred, what):
        deadline = time.monotonic() + 10
        while True:
            ok, r = k.call("ticket.take", line="A", idem="d1")
            if pred(ok, r):
                return r
            assert time.monotonic() < deadline, "%s: still %r" % (what, r)
            time.sleep(0.05)  # the daemon looks at the disk once a second

    r = until(lambda ok, r: not ok, "refused when full")
    assert r["code"] == "unavailable" and "reserve" in r["message"]
    assert k.ok("ticket.get", ticket_id=first["ticket_id"])["number"] == "A001"
    d.wait_log("below the reserve")
    free.write_text("%d\n" % (1 << 40))
    r = until(lambda ok, r: ok, "taken again once freed")
    assert r["number"] == "A002"
    d.wait_log("space is back")
    assert k.ok("ticket.take", line="A", idem="d1") == r  # once
    d.restart()
    assert d.kiosk().ok("ticket.get", ticket_id=r["ticket_id"])["number"] == "A002"


def test_requests_queued_behind_a_failing_batch_are_answered(make_daemon):
    # A pipeline: while the failing batch is being written, more requests
    # queue for the next one. They are never written: each is answered
    # `unavailable` (none hangs), and SIGTERM then stops the daemon (exit 0).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=preload("fdatasync:3:EIO"))
    k = d.kiosk()
    got = k.pipeline([("ticket.take", {"line": "ABCD"[i % 4], "idem": "q%d" % i})
                      for i in range(600)])
    assert len(got) == 600
    codes = ["ok" if m["ok"] else m["error"]["code"] for m in got]
    first_bad = codes.index("unavailable")
    assert set(codes[first_bad:]) == {"unavailable"}, codes
    assert 0 < first_bad < 600
    d.stop()  # exit 0, not the drain timeout or a hang
    assert "did not read their answers" not in d.log_text()


@pytest.mark.parametrize("fails", [False, True])
def test_a_read_waits_for_the_batch_in_flight(make_daemon, workdir, fails):
    # The state a read sees holds only durable batches. A batch is held in
    # its WAL fdatasync while another connection reads what it changes: the
    # read is answered after the batch, with the ticket if the batch became
    # durable, without it if its sync failed (fdatasync 1 is the config
    # record, 2 the first ticket, 3 the held one).
    hold = workdir / "hold"
    env = preload("fdatasync:3:EIO" if fails else "none:1:EIO")
    env["HALLQ_FAULT_HOLD"] = str(hold)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env)
    k = d.kiosk()
    assert k.ok("ticket.take", line="A")["number"] == "A001"
    hold.write_text("")
    taker, reader, pinger = d.kiosk(), d.kiosk(), d.kiosk()
    taker.send("ticket.take", {"line": "A"})
    wait_until((workdir / "hold.held").exists, "held fdatasync")
    reader.send("ticket.get", {"ticket_id": "20261124-A002"})
    # The loop has read the reader's request once it answers a later one.
    assert "now_ms" in pinger.ok("ping")
    hold.unlink()
    took, read = taker.read_response(), reader.read_response()
    if fails:
        assert took["error"]["code"] == "unavailable", took
        assert read["error"]["code"] == "not_found", read
    else:
        assert took["ok"] and took["result"]["number"] == "A002", took
        assert read["ok"] and read["result"]["number"] == "A002", read


@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("fails", [False, True])
def test_a_batch_applied_while_one_is_written_shares_its_fate(make_daemon, workdir, fails, other):
    # While batch N is in its fdatasync, the next requests are applied as a
    # pending batch: a new ticket, and an idem repeat of N's request (which
    # writes no record but is answered from N's effect). They are answered
    # only after N: with N when it is durable, `unavailable` when its sync
    # failed, and then nothing of either is visible. Without the new ticket
    # the pending batch has no record of its own.
    hold = workdir / "hold"
    env = preload("fdatasync:3:EIO" if fails else "none:1:EIO")
    env["HALLQ_FAULT_HOLD"] = str(hold)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env)
    k = d.kiosk()
    assert k.ok("ticket.take", line="A")["number"] == "A001"
    hold.write_text("")
    first, again, other, pinger = d.kiosk(), d.kiosk(), d.kiosk(), d.kiosk()
    first.send("ticket.take", {"line": "A", "idem": "n1"})
    wait_until((workdir / "hold.held").exists, "held fdatasync")
    again.send("ticket.take", {"line": "A", "idem": "n1"})
    if other:
        other.send("ticket.take", {"line": "B"})
    assert "now_ms" in pinger.ok("ping")  # read (and applied) by now
    hold.unlink()
    a, b = first.read_response(), again.read_response()
    got = [a, b] + ([other.read_response()] if other else [])
    if fails:
        for m in got:
            assert m["error"]["code"] == "unavailable", m
        assert k.err("ticket.get", ticket_id="20261124-A002")[0] == "not_found"
        assert k.err("ticket.get", ticket_id="20261124-B001")[0] == "not_found"
        k = restart_without_fault(d)
        assert k.ok("ticket.take", line="A", idem="n1")["number"] == "A002"
    else:
        assert a["ok"] and a["result"]["number"] == "A002", a
        assert b == {**a, "id": b["id"]}, (a, b)
        if other:
            assert got[2]["ok"] and got[2]["result"]["number"] == "B001", got[2]
            assert k.ok("ticket.get", ticket_id="20261124-B001")["number"] == "B001"
