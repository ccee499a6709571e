"""hallq backup DIR DATA: a consistent copy beside a running hallqd (the
state, then the WAL, then pii.key with mode 0600), from which hallqd starts
as it is and answers as the original did."""
import os
import stat
import subprocess
import threading

import walfile
from conftest import HALLQ, TUESDAY_10AM, segment_bytes

PERSON = {"kind": "person", "id": "110101199003077777", "name": "张三"}


def hallq(*args):
    return subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120)


def test_backup_beside_a_running_daemon_restores(daemon, make_daemon, workdir):
    d = daemon
    k, w, a = d.kiosk(), d.tcp("window-W03"), d.admin()
    w.ok("window.state", state="open")
    k.ok("ticket.take", line="B")
    w.ok("window.call")
    case = w.ok("window.intake", service="S01", applicant=PERSON,
                materials=["M01", "M02", "M03"], outcome="accept")["case_no"]
    w.ok("window.done")
    # Tickets keep being taken while the backups run (the state, written
    # out by checkpoints, lags the WAL meanwhile).
    stop = threading.Event()
    taken = []

    def load():
        c = d.kiosk()
        while not stop.is_set():
            taken.append(c.ok("ticket.take", line="A")["ticket_id"])
        c.close()

    t = threading.Thread(target=load)
    t.start()
    try:
        backups = []
        for i in range(3):
            p = hallq("backup", workdir / ("b%d" % i), d.data)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "pii.key   copied" in p.stdout, p.stdout
            backups.append(workdir / ("b%d" % i))
    finally:
        stop.set()
        t.join()
    assert taken, "no ticket was taken during the backups"
    b = backups[-1]
    key = b / "pii.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == (d.data / "pii.key").read_bytes()
    assert sorted(p.name for p in b.iterdir()) == ["pii.key", "state.mdb", "wal"]
    # A second backup into a dir that is not empty is refused.
    p = hallq("backup", b, d.data)
    assert p.returncode == 1 and "not empty" in p.stderr, p.stderr

    # Restore: the backup as the data dir of a new daemon (the same
    # config). It answers as the original did for all it holds.
    live = {"case": a.ok("case.get", case_no=case)}
    d.stop()
    r = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, name="restored", start=False)
    r.data.rmdir()
    os.rename(b, r.data)
    r.start()
    ra = r.admin()
    assert ra.ok("case.get", case_no=case) == live["case"]
    got = [r.kiosk().request("ticket.get", {"ticket_id": tid}) for tid in taken]
    held = [m["result"] for m in got if m["ok"]]
    assert all(m["error"]["code"] == "not_found" for m in got if not m["ok"])
    # What the backup holds is a prefix of what was taken, each as it was.
    assert held and [h["ticket_id"] for h in held] == taken[:len(held)]
    # The original, started again, agrees on that prefix.
    d.start()
    for h in held:
        assert d.kiosk().ok("ticket.get", ticket_id=h["ticket_id"]) == h
    # The restored hall goes on: its next ticket follows the prefix.
    nxt = r.kiosk().ok("ticket.take", line="A")
    assert nxt["number"] == "A%03d" % (len(held) + 1), (nxt, len(held))
    # And its stats and digest equal a replay of its own WAL.
    stats = ra.ok("stats")
    digest = ra.ok("digest")
    r.stop()
    p = hallq("wal", "replay", r.data, "--into", workdir / "check")
    assert p.returncode == 0, p.stderr
    assert digest["digest"] in p.stdout
    r.start()
    assert r.admin().ok("stats") == stats


def test_backup_of_a_stopped_daemon_is_whole(daemon, workdir):
    daemon.kiosk().ok("ticket.take", line="A")
    live = daemon.admin().ok("digest")
    daemon.stop()
    p = hallq("backup", workdir / "b", daemon.data)
    assert p.returncode == 0, p.stderr
    q = hallq("state", "digest", workdir / "b")
    assert q.returncode == 0 and q.stdout.startswith(live["digest"]), (q.stdout, live)
    p = hallq("backup", workdir / "c", workdir / "absent")
    assert p.returncode == 1 and "not a usable backup" in p.stderr


def test_a_wal_short_of_the_state_is_no_backup(make_daemon, workdir):
    # The guard behind the ordering: a copy whose WAL does not reach the
    # state's LSN (as copying the WAL before the state could give) is
    # refused. Here the data dir itself lacks its last segment.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=segment_bytes(65536),
                    args=("--checkpoint-ms", "0"))
    k = d.kiosk()
    for _ in range(400):
        k.ok("ticket.take", line="A")
    lsn = d.admin().ok("digest")["lsn"]
    d.stop()
    segs = sorted((d.data / "wal").glob("*.wal"))
    assert len(segs) > 1
    segs[-1].unlink()
    p = hallq("backup", workdir / "b", d.data)
    assert p.returncode == 1, p.stdout
    assert "but the state holds up to %d" % lsn in p.stderr, p.stderr
    assert "not a usable backup" in p.stderr


def test_a_half_written_record_past_the_state_is_cut(daemon, workdir):
    # The last segment as a copy taken during a write could hold it: past
    # the last whole record, bytes that are no torn tail (a length beyond
    # the segment). They lie past what the state holds, so the backup
    # zeroes them: a torn tail, which hallqd starts from.
    daemon.kiosk().ok("ticket.take", line="A")
    live = daemon.admin().ok("digest")
    daemon.stop()
    seg = walfile.segment_paths(daemon.data / "wal")[-1]
    end = walfile.read_segment(seg).end
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(b"\xff" * 8 + b"\x01" * 64)
    assert hallq("wal", "verify", daemon.data).returncode == 1  # damage, as copied
    p = hallq("backup", workdir / "b", daemon.data)
    assert p.returncode == 0, p.stderr
    assert "LSN 1..%d" % live["lsn"] in p.stdout, p.stdout
    v = hallq("wal", "verify", workdir / "b")
    assert v.returncode == 0, v.stdout + v.stderr
    copied = walfile.read_segment(workdir / "b" / "wal" / seg.name)
    assert copied.end == end and copied.tail is None
