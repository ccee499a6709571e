"""The power-loss simulation in the crash suite (powerloss.py says how it
works): hallqd under load, traced by tests/faults/disktrace.c, SIGKILLed
at a random moment (in some rounds first SIGKILLed and restarted on the
same files); from the trace, several images of the WAL as a disk could
hold them after a power loss at that moment (synced bytes kept; each page
of the batch in flight kept or dropped at random); hallqd must start on
each with every acknowledged request there as it was answered, every
ticket a reader saw after a restart still there, and nothing
unacknowledged visible unless it is whole and chained.

20 rounds here (HALLQ_POWERLOSS_ROUNDS for more); tools/powerloss.sh runs
200 and more and counts the failures by kind. The seed is printed and
taken from HALLQ_POWERLOSS_SEED, so a failing round's images come back."""
import os
import random

import pytest

import diskmodel
import powerloss

# valgrind's own preload conflicts with the shim (tools/valgrind.sh).
pytestmark = pytest.mark.skipif(bool(os.environ.get("HALLQ_WRAPPER")),
                                reason="the disktrace shim does not run under a wrapper")

SEED = os.environ.get("HALLQ_POWERLOSS_SEED", "20261124")
ROUNDS = int(os.environ.get("HALLQ_POWERLOSS_ROUNDS", "20"))


@pytest.fixture
def shim():
    assert diskmodel.DISKTRACE.exists(), "not built: %s" % diskmodel.DISKTRACE
    return diskmodel.DISKTRACE


def test_power_loss_rounds(shim, workdir):
    print("HALLQ_POWERLOSS_SEED=%s" % SEED)
    # budget_s only catches a run gone pathologically slow.
    failed = None
    try:
        total, failures = powerloss.run_rounds(workdir, SEED, ROUNDS, images=3,
                                               budget_s=max(240.0, 12.0 * ROUNDS))
    except powerloss.RoundFailure as e:
        failed = str(e)
    if failed:
        pytest.fail(failed, pytrace=False)
    assert not failures
    assert total["rounds"] == ROUNDS and total["images_ok"] == 3 * ROUNDS, total
    # Some kills did land with a batch in flight over several pages (about
    # half of them do).
    assert total["rounds_multipage"] >= max(1, ROUNDS // 10), total
    assert total["acked"] >= 10 * ROUNDS, total
    # A third of the rounds restart after a SIGKILL before the power fails.
    assert total["rounds_restarted"] >= 1, total


def test_trace_and_images_of_a_roll_over(shim, workdir):
    # The model's rules on a trace with a segment roll-over: the trace
    # equals the files; an image with every pending page dropped holds
    # exactly the synced records, one with every page kept holds all.
    r = powerloss.Round(workdir, SEED, 0)
    r.segment = 65536
    r.extra = powerloss.segment_bytes(65536)
    r.cfg = powerloss.write_config(r.dir, start_ms=powerloss.TUESDAY_10AM, extra=r.extra)
    data = r.dir / "data"
    data.mkdir()
    trace = r.dir / "trace"
    d = r.daemon(data, diskmodel.shim_env(trace))
    try:
        d.start()
        k = d.kiosk()
        for i in range(6):
            k.pipeline([("ticket.take", {"line": "ABCD"[j % 4], "idem": "t%d-%d" % (i, j)})
                        for j in range(100)])
        k.close()
        d.kill()
        entries = diskmodel.read_trace(trace)
        ops = "".join(e.op for e in entries)
        assert {"O", "F", "W", "w", "S", "R", "D"} <= set(ops), sorted(set(ops))
        disk = diskmodel.Disk(data / "wal").replay(entries)
        disk.check_against(data / "wal")
        assert disk.pending() == {}, "every batch was acknowledged, so synced"
        segs = sorted(n for n in disk.names if n.endswith(".wal"))
        assert len(segs) >= 3, segs
        full = disk.written_log()
        assert sorted(full) == list(range(1, len(full) + 1)) and len(full) >= 600
        assert all(len(v) == 1 for v in full.values())
        # A write after the last sync is pending: dropped in one image,
        # kept in the other.
        last = disk.names[segs[-1]]
        recs = list(diskmodel.records(last.contents(last.size)))
        end = powerloss.walfile.HEADER_LEN + sum(len(raw) for _, raw in recs)
        last.write(end, b"\x01" * 5000)
        # 2 or 3 pages, as the records before it fall (the config's size).
        pages = (end + 5000 - 1) // diskmodel.PAGE - end // diskmodel.PAGE + 1
        assert disk.pending() == {segs[-1]: pages}
        for keep, want in ((0.0, b"\0" * 5000), (1.0, b"\x01" * 5000)):
            img = r.dir / ("img%s" % keep)
            _, held = disk.image(img, random.Random(1), keep)
            assert (held["kept"], held["dropped"]) == ((pages, 0) if keep else (0, pages)), held
            got = diskmodel.read_sparse(img / segs[-1]).ljust(end + 5000, b"\0")
            assert got[end:end + 5000] == want, keep
            assert sorted(p.name for p in img.iterdir()) == sorted(disk.names)
    finally:
        r.close()
