"""The daemon on a failing disk: a WAL write or sync that fails is never
acknowledged; the daemon refuses changes from then on (reads go on), logs
the cause once, and a restart recovers every acknowledged request."""
import pytest

from conftest import FAULTFS, TUESDAY_10AM


def preload(spec):
    # ASan wants its runtime first; the shim is built without it.
    return {"LD_PRELOAD": str(FAULTFS), "HALLQ_FAULT": spec,
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}


@pytest.mark.parametrize("spec", ["fdatasync:4:EIO", "pwrite:4:ENOSPC"])
def test_wal_failure_means_unavailable(make_daemon, spec):
    # fdatasync/pwrite number 1 is the config record at start; 2 and 3 are
    # the first two tickets; the 4th fails.
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
    log = d.log_text()
    assert log.count("refusing changes until restart") == 1, log
    assert ("fdatasync" if spec.startswith("fdatasync") else "write") in log
    # Restart without the fault: everything acknowledged is there, and the
    # retried request takes effect exactly once.
    d.stop()
    d.env = None
    d.start()
    k = d.kiosk()
    for t in acked:
        assert k.ok("ticket.get", ticket_id=t["ticket_id"])["number"] == t["number"]
    r = k.ok("ticket.take", line="A", idem="t2")
    assert k.ok("ticket.take", line="A", idem="t2") == r
    assert r["number"] in ("A003",)
