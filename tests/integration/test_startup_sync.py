"""Start-up syncs the WAL before it replays it (issue 12, defect 3): bytes
a killed process wrote but never synced sit in the page cache, and a replay
that served them could lose them to a power loss after a reader saw them.
So hallqd fdatasyncs every segment it may replay, and fsyncs wal/, before
the replay; if that fails it does not start."""
from conftest import TUESDAY_10AM
from test_faults import preload


def test_a_failing_startup_sync_refuses_to_start(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    t = d.kiosk().ok("ticket.take", line="A", idem="s0")
    d.stop()
    # The config is unchanged, so nothing else is written at start: the
    # first fdatasync on the log is the start-up sync's.
    d.env = preload("fdatasync:1:EIO")
    rc, text = d.run_to_exit(timeout=15)
    assert rc == 1, text
    assert "cannot make the WAL" in text and "durable before replaying it" in text, text
    assert "fdatasync 00000000000000000001.wal: Input/output error" in text, text
    assert "not starting" in text, text
    # On a healthy disk it starts, with everything there.
    d.env = None
    d.start()
    assert d.kiosk().ok("ticket.get", ticket_id=t["ticket_id"])["number"] == t["number"]
