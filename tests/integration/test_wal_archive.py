"""hallq wal archive: closed segments move to an archive dir once verified;
verify and replay read both with --archive; hallqd starts on a data dir
whose first segments were archived; a second run does nothing; a run
stopped half way is finished by the next; a damaged or differing archive
moves nothing."""
import re
import shutil
import subprocess

import walfile
from conftest import HALLQ, TUESDAY_10AM, segment_bytes, wait_until

MIN = 60 * 1000
HEAD_RE = re.compile(r"^head\s+([0-9a-f]{64})@(\d+)$", re.M)


def hallq(*args, rc=0):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert mark not in p.stderr, p.stderr
    if rc is not None:
        assert p.returncode == rc, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout,
                                                            p.stderr)
    return p


def work(d, rounds=4):
    k = d.kiosk()
    a = d.admin()
    for _ in range(rounds):
        k.pipeline([("ticket.take", {"line": "ABCD"[i % 4]}) for i in range(150)], chunk=50)
        a.ok("clock.advance", ms=MIN)
    return a.ok("digest")


def names(d):
    return [p.name for p in walfile.segment_paths(d)]


def head(p):
    m = HEAD_RE.search(p.stdout)
    assert m, p.stdout
    return m.group(1), int(m.group(2))


def make(make_daemon, args=()):
    return make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=segment_bytes(65536),
                       args=args)


# A checkpoint at every quiet point: the safe LSN follows the batches.
EVERY_BATCH = ("--checkpoint-ms", "0")


def safe_lsn(d):
    """The LSN the running daemon published as durable in its state (0:
    none yet, or not this process's)."""
    try:
        f = dict(l.split(" ", 1) for l in (d.data / "safe-lsn").read_text().splitlines())
    except FileNotFoundError:
        return 0
    return int(f["lsn"]) if int(f["pid"]) == d.proc.pid else 0


def wait_safe(d):
    """Waits until the daemon's safe LSN covers every closed segment."""
    need = int(names(d.data / "wal")[-1][:20]) - 1
    wait_until(lambda: safe_lsn(d) >= need, "safe LSN %d" % need)


def test_archive_verify_replay_restart_and_again(make_daemon, workdir):
    d = make(make_daemon)
    live = work(d)
    d.stop()
    wal = d.data / "wal"
    before = names(wal)
    assert len(before) >= 3, before
    orig_head = head(hallq("wal", "verify", d.data))
    bytes_before = {n: (wal / n).read_bytes() for n in before}

    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "safe      LSN %d: applied by the state" % live["lsn"] in p.stdout, p.stdout
    assert "archived  %d segments, LSN 1..%d" % (len(before) - 1,
                                                 int(before[-1][:20]) - 1) in p.stdout, p.stdout
    assert names(wal) == before[-1:]
    assert names(arch) == before[:-1]
    for n in before[:-1]:
        assert (arch / n).read_bytes() == bytes_before[n]
    assert not list(arch.glob("*.tmp"))

    # Both together: the whole log, as before.
    p = hallq("wal", "verify", d.data, "--archive", arch)
    assert "intact" in p.stdout and head(p) == orig_head, p.stdout
    assert re.search(r"^records\s+%d \(LSN 1\.\.%d\)" % (live["lsn"], live["lsn"]), p.stdout,
                     re.M), p.stdout
    hallq("wal", "verify", d.data, "--archive", arch, "--anchor", "%s@%d" % orig_head)
    p = hallq("wal", "replay", d.data, "--archive", arch, "--into", workdir / "r")
    assert "digest    %s" % live["digest"] in p.stdout, p.stdout
    # The live dir alone: intact from where it starts; a replay needs the archive.
    p = hallq("wal", "verify", d.data)
    assert "intact" in p.stdout and "starts at LSN %d" % int(before[-1][:20]) in p.stdout
    assert head(p) == orig_head
    p = hallq("wal", "verify", d.data, "--anchor", "%s@%d" % (orig_head[0], 3), rc=1)
    assert "before the log's first record" in p.stdout and "--archive" in p.stdout, p.stdout
    p = hallq("wal", "replay", d.data, "--into", workdir / "r2", rc=1)
    assert "pass --archive" in p.stderr, p.stderr

    # A second run moves nothing and changes nothing.
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "archived  nothing" in p.stdout, p.stdout
    assert names(wal) == before[-1:] and names(arch) == before[:-1]

    # hallqd starts on it (its state is up to date) and goes on writing.
    d.start()
    assert d.admin().ok("digest") == live
    more = work(d, rounds=3)
    d.stop()
    assert len(names(wal)) >= 2
    p = hallq("wal", "verify", d.data, "--archive", arch)
    assert "intact" in p.stdout and head(p)[1] == more["lsn"], p.stdout
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert names(wal) == names(wal)[-1:] and len(names(wal)) == 1
    p = hallq("wal", "replay", d.data, "--archive", arch, "--into", workdir / "r3")
    assert "digest    %s" % more["digest"] in p.stdout, p.stdout
    d.start()
    assert d.admin().ok("digest") == more


def test_archive_beside_a_running_daemon(make_daemon, workdir):
    """Once the daemon has published a safe LSN past the closed segments,
    they move while it runs, and a crash then still recovers."""
    d = make(make_daemon, args=EVERY_BATCH)
    work(d)
    wait_safe(d)
    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "published by the running hallqd (pid %d)" % d.proc.pid in p.stdout, p.stdout
    assert len(names(d.data / "wal")) == 1
    last = work(d, rounds=2)
    wait_safe(d)
    hallq("wal", "archive", d.data, "--to", arch)
    assert len(names(d.data / "wal")) == 1
    d.crash_restart()
    assert d.admin().ok("digest") == last
    d.stop()
    p = hallq("wal", "replay", d.data, "--archive", arch, "--into", workdir / "r")
    assert "digest    %s" % last["digest"] in p.stdout, p.stdout


def test_only_the_open_segment(make_daemon, workdir):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    d.kiosk().ok("ticket.take", line="A")
    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "archived  nothing" in p.stdout, p.stdout
    assert len(names(d.data / "wal")) == 1 and names(arch) == []


def test_a_stopped_run_is_finished_by_the_next(make_daemon, workdir):
    """A run stopped after a copy (the segment in both places, byte-equal)
    or during one (a *.tmp in the archive) is finished by the next; the
    readers take a segment in both places once, and never a *.tmp."""
    d = make(make_daemon)
    live = work(d)
    d.stop()
    wal, arch = d.data / "wal", workdir / "archive"
    segs = names(wal)
    arch.mkdir()
    shutil.copy(wal / segs[0], arch / segs[0])          # copied, not yet removed
    (arch / (segs[1] + ".tmp")).write_bytes(b"half a copy")  # copy under way
    p = hallq("wal", "verify", d.data, "--archive", arch)
    assert "intact" in p.stdout and head(p)[1] == live["lsn"], p.stdout
    hallq("wal", "archive", d.data, "--to", arch)
    assert names(wal) == segs[-1:] and names(arch) == segs[:-1]
    assert not list(arch.glob("*.tmp"))
    p = hallq("wal", "replay", d.data, "--archive", arch, "--into", workdir / "r")
    assert "digest    %s" % live["digest"] in p.stdout, p.stdout


def test_a_differing_copy_moves_nothing(make_daemon, workdir):
    d = make(make_daemon)
    work(d)
    d.stop()
    wal, arch = d.data / "wal", workdir / "archive"
    segs = names(wal)
    arch.mkdir()
    data = bytearray((wal / segs[0]).read_bytes())
    data[-1] ^= 1  # in the zero padding
    (arch / segs[0]).write_bytes(bytes(data))
    p = hallq("wal", "verify", d.data, "--archive", arch, rc=1)
    assert "%s is both in" % segs[0] in p.stdout and "differ" in p.stdout, p.stdout
    p = hallq("wal", "archive", d.data, "--to", arch, rc=1)
    assert "differ" in p.stderr, p.stderr
    assert names(wal) == segs


def test_a_damaged_archive_moves_nothing(make_daemon, workdir):
    d = make(make_daemon, args=EVERY_BATCH)
    work(d)
    wait_safe(d)
    arch = workdir / "archive"
    hallq("wal", "archive", d.data, "--to", arch)
    work(d, rounds=4)
    d.stop()
    # Someone edits a record in the archive (and fixes its CRC).
    s = walfile.read_segment(arch / names(arch)[0])
    r = s.records[5]
    r.payload = r.payload[:-2] + bytes([r.payload[-2] ^ 1]) + r.payload[-1:]
    r.fix_crc()
    walfile.write_segment(s, arch)
    segs = names(d.data / "wal")
    assert len(segs) >= 2
    p = hallq("wal", "archive", d.data, "--to", arch, rc=1)
    assert re.search(r"^DAMAGED\s+%s, offset %d, LSN %d: .*hash chain breaks"
                     % (s.name, r.offset, r.lsn), p.stdout, re.M), p.stdout
    assert "nothing archived" in p.stdout
    assert names(d.data / "wal") == segs
    p = hallq("wal", "verify", d.data, "--archive", arch, rc=1)
    assert "DAMAGED   %s, offset %d, LSN %d" % (s.name, r.offset, r.lsn) in p.stdout, p.stdout


def test_a_gap_between_archive_and_log_moves_nothing(make_daemon, workdir):
    d = make(make_daemon)
    work(d, rounds=6)
    d.stop()
    wal, arch = d.data / "wal", workdir / "archive"
    segs = names(wal)
    assert len(segs) >= 4
    arch.mkdir()
    shutil.move(str(wal / segs[0]), arch / segs[0])
    (wal / segs[1]).unlink()  # lost: neither here nor there
    p = hallq("wal", "archive", d.data, "--to", arch, rc=1)
    assert "DAMAGED   %s, offset 0" % segs[2] in p.stdout and "records are missing" in p.stdout
    assert names(wal) == segs[2:]


def test_daemon_without_state_refuses_an_archived_log(make_daemon, workdir):
    """The state is the only thing that holds the archived records: without
    it, hallqd says to restore the segments from the archive."""
    d = make(make_daemon)
    work(d)
    live = d.admin().ok("digest")
    d.stop()
    arch = workdir / "archive"
    hallq("wal", "archive", d.data, "--to", arch)
    (d.data / "state.mdb").unlink()
    rc, err = d.run_to_exit()
    assert rc == 1 and "segments are missing (restore them from the archive)" in err, err
    # Restored, it replays them all.
    for n in names(arch):
        shutil.copy(arch / n, d.data / "wal" / n)
    d.start()
    assert d.admin().ok("digest") == live


def test_usage(workdir):
    hallq("wal", "archive", workdir, rc=2)
    hallq("wal", "archive", "--to", rc=2)
    p = hallq("wal", "archive", workdir / "none", "--to", workdir / "a", rc=1)
    assert "none" in p.stderr, p.stderr
    (workdir / "w").mkdir()
    p = hallq("wal", "archive", workdir / "w", "--to", workdir / "w", rc=1)
    assert "the log itself" in p.stderr, p.stderr


def test_dump_history_and_report_read_the_archive(make_daemon, workdir):
    d = make(make_daemon)
    work(d)
    d.stop()
    full_dump = hallq("wal", "dump", d.data, "--json").stdout.splitlines()
    full_hist = hallq("wal", "history", "--ticket", "20261124-A001", d.data).stdout
    full_report = hallq("report", "--day", "2026-11-24", d.data, "--format", "csv").stdout
    arch = workdir / "archive"
    hallq("wal", "archive", d.data, "--to", arch)
    # Without the archive the log no longer starts with its config record.
    hallq("wal", "dump", d.data, rc=1)
    assert hallq("wal", "dump", d.data, "--json", "--archive", arch).stdout.splitlines() \
        == full_dump
    assert hallq("wal", "history", "--ticket", "20261124-A001", d.data, "--archive",
                 arch).stdout == full_hist
    assert hallq("report", "--day", "2026-11-24", d.data, "--format", "csv", "--archive",
                 arch).stdout == full_report
    p = hallq("wal", "dump", d.data, "--archive", workdir / "nowhere", rc=1)
    assert "nowhere" in p.stderr


def test_archive_beside_a_daemon_then_sigkill(make_daemon, workdir):
    """Issue 12, defect 4: 600 takes, archive beside the running daemon,
    SIGKILL. The state on disk has applied only what its checkpoints made
    durable; the archive must leave every segment the restart replays."""
    d = make(make_daemon)
    live = work(d)
    segs = names(d.data / "wal")
    assert len(segs) >= 3, segs
    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    kept = names(d.data / "wal")
    d.kill()
    d.start()  # today: "the WAL starts at LSN 564 but the state has applied only up to LSN 1"
    assert d.admin().ok("digest") == live
    d.stop()
    # What moved lies at or below the safe LSN; what did not is kept.
    safe = re.search(r"^safe\s+(?:LSN (\d+)|none)", p.stdout, re.M)
    assert safe, p.stdout
    safe = int(safe.group(1) or 0)
    assert names(arch) + kept == segs and int(kept[0][:20]) <= safe + 1, p.stdout
    if len(kept) > 1:
        assert "kept      %d closed segment%s from LSN %d on (%s)" % (
            len(kept) - 1, "s" if len(kept) > 2 else "", int(kept[0][:20]), kept[0]) \
            in p.stdout, p.stdout
    p = hallq("wal", "replay", d.data, "--archive", arch, "--into", workdir / "r")
    assert "digest    %s" % live["digest"] in p.stdout, p.stdout


def test_a_leftover_safe_lsn_is_not_trusted(make_daemon, workdir):
    """The safe LSN a stopped daemon published says nothing of the state the
    next one starts from (here: none, it rebuilds it from the WAL)."""
    d = make(make_daemon, args=EVERY_BATCH)
    work(d)
    wait_safe(d)
    d.stop()
    old = (d.data / "safe-lsn").read_text()
    (d.data / "state.mdb").unlink()
    d.start()
    segs = names(d.data / "wal")
    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "safe      none: the running hallqd (pid %d) has published no safe LSN yet " \
        "(safe-lsn: left by another process" % d.proc.pid in p.stdout, p.stdout
    assert "archived  nothing: no closed segment" in p.stdout
    assert names(d.data / "wal") == segs and names(arch) == []
    assert (d.data / "safe-lsn").read_text() == old


def test_offline_archive_needs_a_state(make_daemon, workdir):
    """With no hallqd running the state's own applied LSN rules: none, no
    move; a state killed before its meta page reached the disk is synced
    first, and then everything it applied moves."""
    d = make(make_daemon)
    live = work(d)
    d.kill()
    segs = names(d.data / "wal")
    state = d.data / "state.mdb"
    state.rename(d.data / "state.away")
    arch = workdir / "archive"
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "safe      none: %s holds no state (state.mdb)" % d.data.resolve() in p.stdout, \
        p.stdout
    assert names(d.data / "wal") == segs
    (d.data / "state.away").rename(state)
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert re.search(r"^safe\s+LSN \d+: applied by the state \(no hallqd running", p.stdout,
                     re.M), p.stdout
    d.start()  # replays what the killed daemon had not checkpointed
    assert d.admin().ok("digest") == live
    d.stop()
    p = hallq("wal", "archive", d.data, "--to", arch)
    assert "safe      LSN %d: applied by the state" % live["lsn"] in p.stdout, p.stdout
    assert names(d.data / "wal") == segs[-1:] and names(arch) == segs[:-1]
