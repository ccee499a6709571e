"""The fence (issue 12, defect 2): after a failed fdatasync the kernel may
keep the failed batch's pages cached (marked clean) though they never reach
the disk; a restart in the same boot would read them, replay them and serve
them. So the failing writer persists wal/FENCE (the last durable LSN, its
segment and offset), and the restart rebuilds that segment from the disk up
to the fence and trusts nothing past it."""
import re

from conftest import TUESDAY_10AM
from test_faults import preload, restart_without_fault


def test_failed_sync_leaves_a_fence_and_the_restart_trusts_nothing_past_it(make_daemon):
    # fdatasync 1 is the config record at start, 2 and 3 the first two
    # takes; the third take's fails (its record stays in the page cache).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=preload("fdatasync:4:EIO"))
    k = d.kiosk()
    acked = [k.ok("ticket.take", line="A", idem="t%d" % i) for i in range(2)]
    code, _ = k.err("ticket.take", line="A", idem="t2")
    assert code == "unavailable"
    # The fence is on disk by the time the failure is answered.
    fence = d.data / "wal" / "FENCE"
    assert fence.exists(), d.log_tail()
    text = fence.read_text()
    assert re.search(r"^lsn 3$", text, re.M), text  # config + two takes
    assert re.search(r"^segment 00000000000000000001\.wal$", text, re.M), text
    # The failed take's record is whole in the page cache, past the fence.
    k = restart_without_fault(d, acked)
    log = d.log_text()
    assert "nothing past it is trusted" in log, log
    assert not fence.exists()
    assert list((d.data / "wal").glob("00000000000000000001.wal.fence-*.broken"))
    # Nothing past the fence is in the state: the failed take is absent,
    # and its retry takes effect once, with the number it would have had.
    assert k.err("ticket.get", ticket_id="20261124-A003")[0] == "not_found"
    st = d.admin().ok("stats")
    assert st["lines"]["A"]["taken"] == 2
    r = k.ok("ticket.take", line="A", idem="t2")
    assert r["number"] == "A003"
    assert k.ok("ticket.take", line="A", idem="t2") == r
    # And it stays so across a further restart.
    d.stop()
    d.start()
    assert d.kiosk().ok("ticket.get", ticket_id=r["ticket_id"])["number"] == "A003"
    assert d.admin().ok("stats")["lines"]["A"]["taken"] == 3
