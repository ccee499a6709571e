"""hallq wal verify / wal replay / state digest and hallqd --read-only: a
replay to a moment rebuilds exactly the state the daemon had then (equal
digests), and the read-only daemon serves it for reads while refusing every
change."""
import re
import subprocess

from conftest import HALLQ, TUESDAY_10AM, Daemon

MIN = 60 * 1000
PERSON = {"kind": "person", "id": "110101199003077777"}


def hallq(*args, check=True):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


def busy_morning(d):
    """Some of everything, with the clock moving; returns the digest and
    the time at a point in the middle."""
    k = d.kiosk()
    a = d.admin()
    w = d.tcp("window-W03")
    w.ok("window.state", state="open")
    for line in "ABBA":
        k.ok("ticket.take", line=line)
    w.ok("window.call")
    w.ok("window.intake", service="S01", applicant=PERSON, materials=["M01", "M02", "M03"],
         outcome="accept")
    w.ok("window.done")
    a.ok("clock.advance", ms=17 * MIN)
    middle = a.ok("digest")
    middle_ms = a.ok("ping")["now_ms"]
    a.ok("clock.advance", ms=3 * MIN)
    w.ok("window.call")
    w.ok("window.no_show")
    k.ok("ticket.take", line="C")
    d.unix("dept-mkt").ok("review.claim")
    a.ok("clock.advance", ms=30 * MIN)  # the lease runs out: a record of the daemon's
    return middle, middle_ms


def test_verify_replay_and_read_only(daemon, make_daemon, workdir):
    middle, middle_ms = busy_morning(daemon)
    live = daemon.admin().ok("digest")

    p = hallq("wal", "verify", daemon.data)
    assert "intact" in p.stdout
    head = re.search(r"^head\s+([0-9a-f]{64})@(\d+)$", p.stdout, re.M)
    assert head and int(head.group(2)) == live["lsn"], p.stdout
    assert re.search(r"^records\s+%d \(LSN 1\.\.%d\)" % (live["lsn"], live["lsn"]), p.stdout, re.M)
    assert "2026-11-24 10:00:00" in p.stdout  # times in the hall's zone
    hallq("wal", "verify", daemon.data, "--anchor", "%s@%s" % (head.group(1), head.group(2)))

    # The whole log: the live state, byte for byte.
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "all")
    assert "digest    %s" % live["digest"] in p.stdout, p.stdout
    assert hallq("state", "digest", workdir / "all").stdout.split()[0] == live["digest"]
    # To the middle, by time and by LSN: the state the daemon had then. (A
    # clock.advance record is stamped with the time it was sent at, so the
    # next one, sent at 10:17, is already "at 10:17": the moment the digest
    # was taken is the instant before.)
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "mid", "--until", middle_ms - 1)
    assert "digest    %s" % middle["digest"] in p.stdout, p.stdout
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "mid2", "--lsn", middle["lsn"])
    assert "digest    %s" % middle["digest"] in p.stdout, p.stdout
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "mid3", "--until",
              "2026-11-24 10:16:59")
    assert "digest    %s" % middle["digest"] in p.stdout, p.stdout

    # hallqd --read-only serves the middle: reads and stats as at 10:17.
    ro = Daemon(workdir / "mid", daemon.config, str(workdir), args=["--read-only"],
                logdir=workdir)
    ro.start()
    try:
        a = ro.admin()
        assert a.ok("digest") == middle
        st = a.ok("stats")
        assert st["now_ms"] == middle_ms  # the state's clock: 10:17
        # W03 (lines B A, order lines) took its first line's ticket, B001.
        assert st["lines"]["B"]["waiting"] == 1 and st["lines"]["A"]["waiting"] == 2
        assert st["lines"]["A"]["longest_wait_s"] == 17 * 60
        k = ro.kiosk()
        assert k.ok("ticket.get", ticket_id="20261124-B001")["state"] == "done"
        assert k.ok("case.get", case_no="20261124-0001")["state"] == "review"
        for c, op, args in [(k, "ticket.take", {"line": "A"}), (a, "day.close", {}),
                            (a, "config.reload", {}), (ro.tcp("window-W01"), "window.call", {})]:
            code, msg = c.err(op, **args)
            assert code == "forbidden" and "read-only" in msg, (op, code, msg)
        assert a.ok("digest") == middle
    finally:
        ro.stop()


def test_replay_bad_input(daemon, workdir):
    busy_morning(daemon)
    p = hallq("wal", "replay", workdir / "nothing-here", "--into", workdir / "x", check=False)
    assert p.returncode == 1 and "nothing-here" in p.stderr, p.stderr
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "y", "--until", "2026-11-24 09:59",
              check=False)
    assert p.returncode == 1 and "before the log's first record" in p.stderr, p.stderr
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "y", "--lsn", "999999",
              check=False)
    assert p.returncode == 1 and "past the log's end" in p.stderr, p.stderr
    for bad in ("yesterday", "2026-11-24 25:00", "2026-13-01 10:00", "2026-11-24 10:00:61"):
        p = hallq("wal", "replay", daemon.data, "--into", workdir / "y", "--until", bad,
                  check=False)
        assert p.returncode == 2 and "--until" in p.stderr, (bad, p.stderr)
    hallq("wal", "replay", daemon.data, "--into", workdir / "z")
    p = hallq("wal", "replay", daemon.data, "--into", workdir / "z", check=False)
    assert p.returncode == 1 and "holds a state already" in p.stderr, p.stderr
    p = hallq("wal", "verify", workdir / "nothing-here", check=False)
    assert p.returncode == 1 and "DAMAGED" in p.stdout or "No such file" in p.stdout + p.stderr
    p = hallq("state", "digest", workdir / "nothing-here", check=False)
    assert p.returncode == 1


def test_busy_day_replays_to_the_live_digests(make_daemon, workdir):
    # The seeded busy day (sim.py): `hallq wal replay` of the whole log gives
    # the live digest, and replays to the moments probed during the day give
    # the digests the daemon had then. (On the manual clock many records
    # share a time, so the moments are cut by LSN; --until is held to the
    # same standard in test_verify_replay_and_read_only.)
    import sim
    d = make_daemon(manual_clock=True, start_ms=sim.DAY_START)
    probes = [sim.DAY_START + h * sim.HOUR for h in (1, 3, 5, 7)]
    s, fig = sim.simulate(d, 20261201, citizens=800, probe_at=probes)
    live = d.admin().ok("digest")
    assert sorted(s.probes) == probes
    p = hallq("wal", "replay", d.data, "--into", workdir / "all")
    assert "digest    %s" % live["digest"] in p.stdout, p.stdout
    for t in probes:
        want = s.probes[t]
        p = hallq("wal", "replay", d.data, "--into", workdir / ("at%d" % t), "--lsn", want["lsn"])
        assert "digest    %s" % want["digest"] in p.stdout, (t, want, p.stdout)
    assert len({s.probes[t]["digest"] for t in probes}) == len(probes)  # the day moved on
