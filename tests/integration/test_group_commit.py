"""Group commit (daemon/gcommit.c): a batch ready to be written waits for the
connections the last sync answered, so that one sync carries them all; a
lone client never waits; and no answer leaves before its own sync, however
the batches are formed. The daemon logs what its syncs carried when it stops
("group commit: N syncs carried M requests ..."), which these tests read."""
import re
import select

from conftest import FAULTFS, TUESDAY_10AM, wait_until


def carried(d):
    """(syncs, requests, holds) from the log line of a stopped daemon."""
    m = re.search(r"group commit: (\d+) syncs carried (\d+) requests .* (\d+) holds",
                  d.log_text())
    assert m, d.log_text()
    return tuple(int(x) for x in m.groups())


def no_answer_yet(c):
    """Nothing of an answer has reached c (checked, not waited for)."""
    readable, _, _ = select.select([c.sock], [], [], 0)
    return not c.buf and not readable


def test_a_lone_client_is_never_held(make_daemon):
    # Its request is the only one awaited: when it arrives nobody else is
    # expected, so the batch goes at once, one sync per request. With a
    # 5 s bound a hold would show in the count (and in the run time).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"fsync: always": "fsync: always\n  commit_hold_us: 5000000"})
    k = d.kiosk()
    for i in range(30):
        assert k.ok("ticket.take", line="A")["number"] == "A%03d" % (i + 1)
    assert d.stop() == 0
    assert carried(d) == (30, 30, 0)


def test_a_sync_waits_for_the_clients_it_answered_and_answers_none_early(make_daemon, workdir):
    # Sync 1 (A's first request) is held in its fdatasync while B and C
    # send: theirs are applied as the pending batch. Sync 1 ends: A is
    # answered and awaited, so the pending batch is held (the bound is 5 s)
    # until A sends again; then one sync carries B's, C's and A's second
    # request. That sync is held too, and none of the three is answered
    # before it ends. Without the hold, B and C would go in a sync of their
    # own the moment sync 1 ended, and A's second request in a third.
    hold = workdir / "hold"
    held = workdir / "hold.held"
    env = {"LD_PRELOAD": str(FAULTFS), "HALLQ_FAULT": "none:1:EIO",
           "HALLQ_FAULT_HOLD": str(hold),
           "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env,
                    extra={"fsync: always": "fsync: always\n  commit_hold_us: 5000000"})
    a, b, c, pinger = d.kiosk(), d.kiosk(), d.kiosk(), d.kiosk()
    hold.write_text("")
    a.send("ticket.take", {"line": "A"})
    wait_until(held.exists, "sync 1 held")
    b.send("ticket.take", {"line": "A"})
    c.send("ticket.take", {"line": "A"})
    assert "now_ms" in pinger.ok("ping")  # B's and C's are applied by now
    held.unlink()
    hold.unlink()
    assert a.read_response()["result"]["number"] == "A001"
    hold.write_text("")  # the next sync is held in its fdatasync
    a.send("ticket.take", {"line": "A"})
    wait_until(held.exists, "sync 2 held")
    for x in (a, b, c):
        assert no_answer_yet(x)
    hold.unlink()
    got = {x.read_response()["result"]["number"] for x in (a, b, c)}
    assert got == {"A002", "A003", "A004"}
    assert d.stop() == 0
    syncs, reqs, holds = carried(d)
    assert (syncs, reqs) == (2, 4), d.log_text()
    assert holds == 1
