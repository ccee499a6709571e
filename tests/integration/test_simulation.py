"""A whole busy day of the demo hall against the real hallqd (sim.py): every
answer predicted by the simulation's own model, `stats` equal to its counts
figure by figure, every ticket and case read back, and a replay of the WAL
alone giving the same digest and stats. Then the same day under SIGKILL at
seeded moments, which must end in the very state of the day without kills.

A failure names its seed; `python3 tests/integration/sim.py --seed N
--citizens C [--crash-rounds R]` runs that day again. HALLQ_SIM_SEED picks
another seed for the tests here (e.g. to explore in a loop)."""
import os

import pytest

import sim
from conftest import TUESDAY_10AM, segment_bytes

SEED = int(os.environ.get("HALLQ_SIM_SEED", "20261124"))
assert sim.DAY_START == TUESDAY_10AM - sim.HOUR


def start(make_daemon, name="data", extra=None):
    return make_daemon(manual_clock=True, start_ms=sim.DAY_START, name=name, extra=extra)


def fresh(make_daemon, name, extra=None):
    return make_daemon(manual_clock=True, start_ms=sim.DAY_START, name=name, start=False,
                       extra=extra)


def covered(fig, **at_least):
    """The day did exercise what the test is about."""
    low = {k: (fig[k], n) for k, n in at_least.items() if fig[k] < n}
    assert not low, "seed %s: too little of %r in %r" % (SEED, low, fig)


def test_busy_day(make_daemon):
    d = start(make_daemon)
    s, fig = sim.simulate(d, SEED, citizens=2500)
    print(fig)
    covered(fig, citizens=2500, tickets=2800, calls=1500, accept=300, notify=80, refuse=30,
            instant=200, approve=200, deny=20, supplement=30, supplements_brought=10,
            lease_lost=10, no_shows=40, returns=15, late_returns=1, transfers=20,
            pickups=80, mail=40, counter=200, ratings=300, errors_expected=50,
            stats_checks=18)
    # Every ticket ended once: done, no_show or expired; a day this busy
    # leaves some waiting at the close.
    st = fig["final_states"]
    assert set(st) == {"done", "no_show", "expired"} and st["expired"] > 0, st
    assert sum(st.values()) == fig["tickets_total"] == fig["tickets"]
    sim.replay_check(d, fresh(make_daemon, "replayed"))


@pytest.mark.parametrize("seed", [SEED + 1, SEED + 2])
def test_quieter_days(make_daemon, seed):
    # Other seeds, fewer citizens: queues often empty, windows idle.
    d = start(make_daemon)
    s, fig = sim.simulate(d, seed, citizens=500)
    print(fig)
    assert fig["empty_calls"] > 0 and fig["empty_claims"] > 0, fig
    sim.replay_check(d, fresh(make_daemon, "replayed"))


def test_busy_day_under_sigkill(make_daemon):
    # 20 kills; 64 KiB segments, so the log rolls over about every 250
    # records and some kills land in or next to a roll-over.
    rounds = 20
    small = segment_bytes(65536)
    d = start(make_daemon, extra=small)
    s, fig = sim.simulate(d, SEED, citizens=1000, crash_rounds=rounds)
    print(fig)
    assert fig["kills"] == rounds, fig
    # Every start after a kill recovered and served.
    assert d.log_text().count("hallqd ready") == rounds + 1
    # The day with kills ends in the state of the same day without them:
    # nothing acknowledged lost, nothing done twice.
    assert len(list((d.data / "wal").glob("*.wal"))) > rounds, "too few roll-overs"
    digest = sim.replay_check(d, fresh(make_daemon, "replayed", extra=small))
    twin = fresh(make_daemon, "twin", extra=small)
    sim.share_secrets(d, twin)
    twin.start()
    _, twin_fig = sim.simulate(twin, SEED, citizens=1000)
    assert twin.admin().ok("digest") == digest
    for k in ("tickets_total", "cases_total", "mutations", "final_states"):
        assert twin_fig[k] == fig[k], (k, twin_fig[k], fig[k])


def test_returns_behind_earlier_returners(daemon):
    # Found by the simulation: a no-show coming back goes behind
    # return_behind (3) waiting tickets, even when tickets that came back
    # before it are among them.
    k, w = daemon.kiosk(), daemon.tcp("window-W04")
    w.ok("window.state", state="open")
    t = [k.ok("ticket.take", line="D")["ticket_id"] for _ in range(9)]
    for _ in range(5):
        w.ok("window.call")
        w.ok("window.no_show")
    # Waiting: D006 D007 D008 D009. Each returner goes behind three of
    # them, ahead of the returners before it.
    for i in range(5):
        assert k.ok("ticket.return", ticket_id=t[i]) == {"ahead": 3}, i
    order = []
    while True:
        r = w.ok("window.call")["ticket"]
        if r is None:
            break
        order.append(r["number"])
        w.ok("window.done")
    assert order == ["D006", "D007", "D008", "D005", "D004", "D003", "D002", "D001", "D009"]
