"""Tampering with a real hallqd's WAL, and the bad inputs of `hallq wal
verify` and `hallq wal replay`.

One daemon (manual clock, 64 KiB segments) writes a log of three segments;
each test works on a copy of it, forged with walfile.py, and checks that
verify names the right place: segment, byte offset and LSN, and what is
wrong (broken chain, gap or reordering, bad CRC, torn tail). A log whose
whole chain was rewritten after an edit is intact by itself: only an anchor
(the head hash written down earlier) catches it. Exit status: 0 intact, 1
damage or failure, 2 usage."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

import walfile
from conftest import HALLQ, TUESDAY_10AM, Daemon, segment_bytes, write_config

MIN = 60 * 1000
DAMAGED_RE = re.compile(r"^DAMAGED\s+(\S+), offset (\d+), LSN (\d+): (.*)$", re.M)
HEAD_RE = re.compile(r"^head\s+([0-9a-f]{64})@(\d+)$", re.M)


def hallq(*args):
    return subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120)


def verify(path, *args):
    p = hallq("wal", "verify", path, *args)
    assert p.returncode in (0, 1), "hallq wal verify: %d\n%s%s" % (p.returncode, p.stdout,
                                                                   p.stderr)
    for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert mark not in p.stderr, p.stderr
    return p


def damaged(p):
    """(segment, offset, LSN, message) of verify's DAMAGED line."""
    assert p.returncode == 1, p.stdout + p.stderr
    assert "intact" not in p.stdout, p.stdout
    m = DAMAGED_RE.search(p.stdout)
    assert m, p.stdout
    return m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)


def work(d, rounds=4, per_round=150):
    """Tickets on every line, the clock moving, a window at work."""
    k = d.kiosk()
    a = d.admin()
    w = d.tcp("window-W01")
    w.ok("window.state", state="open")
    for r in range(rounds):
        k.pipeline([("ticket.take", {"line": "ABCD"[i % 4]}) for i in range(per_round)],
                   chunk=50)
        w.ok("window.call")
        w.ok("window.done")
        a.ok("clock.advance", ms=MIN)
    return a.ok("digest")


def run_hall(base, name, extra=None, rounds=4):
    """Runs a daemon on base/name for work() and stops it; returns (data dir,
    digest, config path)."""
    cfg = write_config(base, start_ms=TUESDAY_10AM, extra=dict(segment_bytes(65536),
                                                               **(extra or {})),
                       name=name + ".yaml")
    data = base / name
    data.mkdir()
    d = Daemon(data, cfg, str(base), manual_clock=True, logdir=base)
    d.start()
    try:
        digest = work(d, rounds=rounds)
    finally:
        d.stop()
    return data, digest, cfg


class Original:
    def __init__(self, base):
        self.base = base
        self.data, self.digest, self.config = run_hall(base, "orig")
        self.wal = self.data / "wal"
        self.segs = walfile.read_log(self.wal)
        p = verify(self.data)
        assert p.returncode == 0 and "intact" in p.stdout, p.stdout
        m = HEAD_RE.search(p.stdout)
        self.head, self.head_lsn = m.group(1), int(m.group(2))
        self.last_lsn = self.segs[-1].records[-1].lsn


@pytest.fixture(scope="module")
def orig():
    base = pathlib.Path(tempfile.mkdtemp(prefix="hq-tamper-"))
    try:
        yield Original(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def log(orig, workdir):
    """A fresh copy of the original's segments (and a reader of it)."""
    return walfile.copy_log(orig.wal, workdir / "wal")


def middle_lsn(orig):
    """An LSN in the middle of the second segment (so segments follow it)."""
    s = orig.segs[1]
    return s.records[len(s.records) // 2].lsn


def test_the_original_is_intact_and_walfile_reads_it(orig):
    assert len(orig.segs) >= 3, orig.segs
    assert walfile.check(orig.segs)
    assert orig.head == walfile.head_hash(orig.segs).hex()
    assert orig.head_lsn == orig.last_lsn == orig.digest["lsn"]
    # walfile writes back exactly what hallqd wrote.
    for s, path in zip(orig.segs, walfile.segment_paths(orig.wal)):
        assert s.to_bytes() == path.read_bytes()
    # and rechaining an untouched log changes nothing.
    copy = walfile.rechain(walfile.read_log(orig.wal))
    assert [s.to_bytes() for s in copy] == [s.to_bytes() for s in orig.segs]


# ---- (a) an edited payload, its CRC fixed: the chain breaks there ----

def test_edited_payload_with_fixed_crc_breaks_the_chain(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    r = s.records[i]
    p = bytearray(r.payload)
    p[len(p) // 2] ^= 0x01
    r.payload = bytes(p)
    r.fix_crc()
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "hash chain breaks" in msg, msg
    assert "segment %s offset %d (LSN %d)" % (s.name, off, lsn) in msg


def test_edited_payload_without_crc_fix_is_a_bad_crc(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    r = s.records[i]
    r.payload = r.payload[:3] + bytes([r.payload[3] ^ 0x40]) + r.payload[4:]
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "bad CRC" in msg and "not a torn tail" in msg, msg


def test_bad_crc_in_the_last_segment_before_its_last_record(orig, log):
    segs = walfile.read_log(log)
    s = segs[-1]
    r = s.records[1]
    off = s.offsets()[1]
    r.crc ^= 0x100
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, r.lsn), msg
    assert "bad CRC, and data follows at offset %d: not a torn tail" % s.offsets()[2] in msg, msg


# ---- (b) a deleted record ----

def test_deleted_record_is_a_gap(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    del s.records[i]
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "LSN %d where LSN %d was expected" % (lsn + 1, lsn) in msg, msg
    assert "gap or reordering" in msg, msg


def test_deleted_record_renumbered_breaks_the_chain(orig, log):
    """The forger deletes a record and renumbers every later one (and the
    later segments' names and headers), fixing every CRC: the LSNs run on,
    but the record after the hole was chained to the deleted one."""
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    del s.records[i]
    for t in segs[segs.index(s):]:
        for r in t.records:
            if r.lsn > lsn:
                r.lsn -= 1
                r.fix_crc()
    for t in segs[segs.index(s) + 1:]:
        t.first_lsn -= 1
        t.name = walfile.segment_name(t.first_lsn)
    walfile.write_log(segs, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "hash chain breaks" in msg, msg


def test_deleted_first_record_of_a_segment(orig, log):
    """The first record of the last segment removed (the header still says
    it starts there): the gap is named at the segment's first record."""
    segs = walfile.read_log(log)
    s = segs[-1]
    lsn = s.records[0].lsn
    del s.records[0]
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, walfile.HEADER_LEN, lsn), msg
    assert "gap or reordering" in msg, msg


def test_deleted_segment_in_the_middle_is_a_gap(orig, log):
    segs = walfile.read_log(log)
    (log / segs[1].name).unlink()
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (segs[2].name, 0, segs[1].first_lsn), msg
    assert "records are missing" in msg, msg


# ---- (c) swapped records ----

def test_swapped_records_are_a_reordering(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    s.records[i], s.records[i + 1] = s.records[i + 1], s.records[i]
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "LSN %d where LSN %d was expected" % (lsn + 1, lsn) in msg, msg


def test_swapped_records_renumbered_break_the_chain(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    a, b = s.records[i], s.records[i + 1]
    s.records[i], s.records[i + 1] = b, a
    a.lsn, b.lsn = b.lsn, a.lsn
    a.fix_crc()
    b.fix_crc()
    walfile.write_segment(s, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, lsn), msg
    assert "hash chain breaks" in msg, msg


def test_swapped_segments_break_the_chain(orig, log):
    """Two segments' contents swapped under each other's names: the
    headers' first LSNs no longer match the names."""
    segs = walfile.read_log(log)
    p1, p2 = log / segs[1].name, log / segs[2].name
    b1, b2 = p1.read_bytes(), p2.read_bytes()
    p1.write_bytes(b2)
    p2.write_bytes(b1)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (segs[1].name, 0, segs[1].first_lsn), msg
    assert "file name says" in msg, msg


# ---- (d) a truncated tail ----

def test_truncated_last_segment_is_damage(orig, log):
    # The writer makes every segment full-size before it writes to it, so
    # a shorter last segment was cut (issue 12, defect 11): not a torn tail.
    segs = walfile.read_log(log)
    s = segs[-1]
    r = s.records[-1]
    off = s.offsets()[-1]
    path = log / s.name
    with open(path, "r+b") as f:
        f.truncate(off + r.size - 7)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o) == (s.name, off + r.size - 7), msg
    assert "the segment was truncated" in msg, msg


def test_zeroed_last_record_is_a_torn_tail(orig, log):
    segs = walfile.read_log(log)
    s = segs[-1]
    r = s.records[-1]
    off = s.offsets()[-1]
    data = bytearray((log / s.name).read_bytes())
    data[off + 50:off + r.size] = bytes(r.size - 50)
    (log / s.name).write_bytes(bytes(data))
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, r.lsn), msg
    assert "torn tail" in msg and "bad CRC" in msg, msg


def test_records_cut_off_cleanly_need_the_anchor(orig, log):
    """The last records removed whole (the rest zeroed): the log is intact
    by itself; the anchor says records were removed."""
    segs = walfile.read_log(log)
    s = segs[-1]
    del s.records[-3:]
    walfile.write_segment(s, log)
    p = verify(log)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout
    p = verify(log, "--anchor", "%s@%d" % (orig.head, orig.head_lsn))
    assert p.returncode == 1, p.stdout
    assert re.search(r"^ANCHOR\s+LSN %d is not in the log \(it ends at LSN %d\): records were "
                     r"removed$" % (orig.head_lsn, orig.head_lsn - 3), p.stdout, re.M), p.stdout


# ---- (e) the whole chain rewritten after an edit ----

def test_rewritten_chain_is_caught_only_by_the_anchor(orig, log):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    r = s.records[i]
    r.payload = r.payload[:-2] + bytes([r.payload[-2] ^ 0x01]) + r.payload[-1:]
    walfile.rechain(segs)
    walfile.write_log(segs, log)
    assert walfile.check(walfile.read_log(log))

    p = verify(log)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout
    m = HEAD_RE.search(p.stdout)
    assert int(m.group(2)) == orig.head_lsn and m.group(1) != orig.head

    anchor = "%s@%d" % (orig.head, orig.head_lsn)
    p = verify(log, "--anchor", anchor)
    assert p.returncode == 1 and "intact" not in p.stdout, p.stdout
    m = re.search(r"^ANCHOR\s+(\S+), offset (\d+), LSN (\d+): the chain hash differs",
                  p.stdout, re.M)
    assert m, p.stdout
    last = segs[-1]
    assert (m.group(1), int(m.group(2)), int(m.group(3))) == (
        last.name, last.offsets()[-1], orig.head_lsn), p.stdout
    # The original passes its own anchor; an anchor before the edit still
    # matches the rewritten log, one after it does not.
    p = verify(orig.wal, "--anchor", anchor)
    assert p.returncode == 0 and "anchor    matches at LSN %d" % orig.head_lsn in p.stdout
    before = walfile.locate(orig.segs, lsn - 1)
    h = before[0].records[before[1]].hash.hex()
    p = verify(log, "--anchor", "%s@%d" % (h, lsn - 1))
    assert p.returncode == 0 and "matches" in p.stdout, p.stdout
    at = walfile.locate(orig.segs, lsn)
    h = at[0].records[at[1]].hash.hex()
    p = verify(log, "--anchor", "%s@%d" % (h, lsn))
    assert p.returncode == 1 and "LSN %d: the chain hash differs" % lsn in p.stdout, p.stdout


def test_rewritten_chain_with_a_segment_header_left_alone(orig, log):
    """The forger rechains the records but forgets a header's carried hash."""
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    r = s.records[i]
    r.payload = r.payload[:-2] + bytes([r.payload[-2] ^ 0x01]) + r.payload[-1:]
    old = segs[2].prev_hash
    walfile.rechain(segs)
    segs[2].prev_hash = old
    walfile.write_log(segs, log)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (segs[2].name, 0, segs[2].first_lsn), msg
    assert "carried in the header" in msg, msg


def test_bad_anchor_is_usage(orig):
    for bad in ("nothex@5", orig.head, orig.head + "@", orig.head + "@0", orig.head + "@x",
                orig.head[:-1] + "@5", orig.head[:-2] + "zz@5"):
        p = hallq("wal", "verify", orig.wal, "--anchor", bad)
        assert p.returncode == 2 and "--anchor" in p.stderr, (bad, p.stderr)


def test_anchor_past_the_end(orig):
    p = verify(orig.wal, "--anchor", "%s@%d" % (orig.head, orig.head_lsn + 5))
    assert p.returncode == 1 and "is not in the log" in p.stdout, p.stdout


# ---- bad inputs ----

def test_missing_dir(workdir):
    p = verify(workdir / "nothing-here")
    assert p.returncode == 1 and "intact" not in p.stdout
    assert "nothing-here" in p.stdout and "No such file or directory" in p.stdout, p.stdout
    # Not a damage report with an empty place.
    assert not re.search(r"^DAMAGED\s+, offset", p.stdout, re.M), p.stdout


def test_empty_dir(workdir):
    (workdir / "empty").mkdir()
    p = verify(workdir / "empty")
    assert p.returncode == 1 and "holds no WAL segment" in p.stdout, p.stdout
    assert not re.search(r"^DAMAGED\s+, offset", p.stdout, re.M), p.stdout


def test_file_in_place_of_the_dir(workdir):
    (workdir / "data").mkdir()
    (workdir / "data" / "wal").write_bytes(b"not a directory")
    p = verify(workdir / "data" / "wal")
    assert p.returncode == 1 and "Not a directory" in p.stdout, p.stdout
    assert not re.search(r"^DAMAGED\s+, offset", p.stdout, re.M), p.stdout


def test_unreadable_dir(orig, log):
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads a mode 000 dir anyway "
                    "(test_file_in_place_of_the_dir covers a dir that cannot be listed)")
    os.chmod(log, 0)
    try:
        p = verify(log)
        assert p.returncode == 1 and "Permission denied" in p.stdout, p.stdout
    finally:
        os.chmod(log, 0o700)


def test_unreadable_segment(orig, log):
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads a mode 000 file anyway")
    segs = walfile.read_log(log)
    os.chmod(log / segs[1].name, 0)
    try:
        seg, o, l, msg = damaged(verify(log))
        assert (seg, o, l) == (segs[1].name, 0, segs[1].first_lsn), msg
        assert "Permission denied" in msg
    finally:
        os.chmod(log / segs[1].name, 0o600)


def test_segment_of_another_hall(orig, log, workdir):
    """A segment of a second daemon with another hall.id placed in the dir
    (one that continues the numbering, so only its hall tells it apart)."""
    other, _, _ = run_hall(workdir, "other", extra={"id: demo-city": "id: demo-town"},
                           rounds=6)
    theirs = walfile.read_log(other / "wal")
    assert theirs[0].hall_id == "demo-town"
    foreign = [s for s in theirs if s.first_lsn > orig.segs[-1].first_lsn][0]
    shutil.copy(other / "wal" / foreign.name, log / foreign.name)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (foreign.name, 0, foreign.first_lsn), msg
    assert "segment of hall 'demo-town', expected hall 'demo-city'" in msg, msg
    # In place of one of ours, too.
    (log / foreign.name).unlink()
    mine = orig.segs[1]
    same = [s for s in theirs if s.first_lsn < orig.segs[2].first_lsn][-1]
    (log / mine.name).unlink()
    shutil.copy(other / "wal" / same.name, log / same.name)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (same.name, 0, same.first_lsn), msg
    assert "segment of hall 'demo-town'" in msg, msg


def test_truncated_segment_in_the_middle_mid_record(orig, log):
    segs = walfile.read_log(log)
    s = segs[1]
    k = len(s.records) // 2
    off = s.offsets()[k]
    with open(log / s.name, "r+b") as f:
        f.truncate(off + 30)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, s.records[k].lsn), msg
    assert "cut short" in msg and "later segments follow" in msg, msg


def test_truncated_segment_in_the_middle_at_a_record_boundary(orig, log):
    """Cut just after a whole record: the segment itself is named, not the
    next one."""
    segs = walfile.read_log(log)
    s = segs[1]
    k = len(s.records) // 2
    off = s.offsets()[k]
    with open(log / s.name, "r+b") as f:
        f.truncate(off)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, off, s.records[k].lsn), msg
    assert "truncated" in msg, msg


def test_truncated_segment_in_the_middle_in_its_zeros(orig, log):
    """Only the zero padding cut: no record is lost, but a closed segment is
    never shorter than its size, so the file was tampered with."""
    segs = walfile.read_log(log)
    s = segs[1]
    with open(log / s.name, "r+b") as f:
        f.truncate(s.end + 10)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, s.end, s.records[-1].lsn + 1), msg
    assert "truncated" in msg, msg


def test_truncated_segment_header(orig, log):
    segs = walfile.read_log(log)
    s = segs[1]
    with open(log / s.name, "r+b") as f:
        f.truncate(100)
    seg, o, l, msg = damaged(verify(log))
    assert (seg, o, l) == (s.name, 0, s.first_lsn), msg
    assert "less than a segment header" in msg, msg


def append_unknown_record(wal_dir, type=999):
    """Appends a well-formed record of an unknown type at the log's end:
    right CRC, right chain, the next LSN. Returns its LSN."""
    segs = walfile.read_log(wal_dir)
    s = segs[-1]
    last = s.records[-1]
    r = walfile.Record(last.lsn + 1, last.at_ms, type, b"\x83\xa2op\xa8from.new\xa4args\x80"
                       b"\xa6result\x80", role=5, actor=b"admin")
    r.encode(last.hash)
    s.records.append(r)
    walfile.write_segment(s, wal_dir)
    return r.lsn


def test_unknown_record_type_verifies_but_does_not_replay(orig, log, workdir):
    lsn = append_unknown_record(log)
    p = verify(log)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout
    assert re.search(r"^records\s+%d \(LSN 1\.\.%d\)" % (lsn, lsn), p.stdout, re.M), p.stdout
    p = hallq("wal", "replay", log, "--into", workdir / "r")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "LSN %d: record type 999 is unknown" % lsn in p.stderr, p.stderr
    # Up to the record before it, the replay works and equals the daemon.
    p = hallq("wal", "replay", log, "--into", workdir / "r2", "--lsn", lsn - 1)
    assert p.returncode == 0 and "digest    %s" % orig.digest["digest"] in p.stdout, p.stdout


def test_unknown_record_type_refuses_start(orig, workdir):
    data = workdir / "data"
    shutil.copytree(orig.data, data, ignore=shutil.ignore_patterns("*.sock", "*.lock"))
    lsn = append_unknown_record(data / "wal")
    sockdir = tempfile.mkdtemp(prefix="hqs-")
    try:
        d = Daemon(data, orig.config, sockdir, manual_clock=True, logdir=workdir)
        rc, err = d.run_to_exit()
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
    assert rc == 1, (rc, err)
    assert "LSN %d: record type 999 is unknown" % lsn in err, err
    assert "hallqd ready" not in err


def test_replay_until_before_the_first_record(orig, workdir):
    p = hallq("wal", "replay", orig.data, "--into", workdir / "r", "--until", "2026-11-24 09:59")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "before the log's first record (2026-11-24 10:00:00)" in p.stderr, p.stderr
    assert not (workdir / "r").exists()
    p = hallq("wal", "replay", orig.data, "--into", workdir / "r", "--until", TUESDAY_10AM - 1)
    assert p.returncode == 1 and "before the log's first record" in p.stderr, p.stderr
    # At the first record's own time it is not before it.
    p = hallq("wal", "replay", orig.data, "--into", workdir / "r", "--until", TUESDAY_10AM)
    assert p.returncode == 0, p.stdout + p.stderr


def test_replay_refuses_a_damaged_log(orig, log, workdir):
    segs = walfile.read_log(log)
    lsn = middle_lsn(orig)
    s, i, off = walfile.locate(segs, lsn)
    s.records[i].crc ^= 1
    walfile.write_segment(s, log)
    p = hallq("wal", "replay", log, "--into", workdir / "r")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "%s offset %d (LSN %d)" % (s.name, off, lsn) in p.stderr, p.stderr
