"""Crash tests: SIGKILL hallqd under load at random moments, restart on the
same data dir, and check that every acknowledged ticket is there with its
number, that no number was given twice, that idem retries of acknowledged
and unacknowledged requests give exactly one ticket, and finally that the
state equals a fresh replay of the whole WAL."""
import random
import shutil
import threading

import pytest

from hallq_client import Client, Closed

LINES = "ABCDF"


class Loader:
    """Threads taking tickets with unique idem keys until the connection
    breaks; each records what was acknowledged and what was only sent."""

    def __init__(self, daemon, seed, round_no, threads=6):
        self.daemon = daemon
        self.acked = {}      # idem -> result
        self.unacked = {}    # idem -> line (sent, no answer seen)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(seed, round_no, i), daemon=True)
                        for i in range(threads)]

    def run(self, seed, round_no, i):
        rng = random.Random(seed * 1000 + round_no * 10 + i)
        try:
            c = self.daemon.kiosk()
        except OSError:
            return
        n = 0
        while True:
            n += 1
            idem = "r%d-t%d-%d" % (round_no, i, n)
            line = rng.choice(LINES)
            depth = rng.choice((1, 1, 4))
            sent = []
            try:
                for j in range(depth):
                    key = "%s-%d" % (idem, j)
                    with self.lock:
                        self.unacked[key] = line
                    sent.append((key, c.send("ticket.take", {"line": line, "idem": key})))
                for key, rid in sent:
                    m = c.read()
                    assert m["id"] == rid, m
                    if not m["ok"]:
                        # Only a shutdown may refuse a ticket here.
                        assert m["error"]["code"] == "unavailable", m
                        continue
                    with self.lock:
                        del self.unacked[key]
                        self.acked[key] = (line, m["result"])
            except (Closed, OSError):
                return

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(30)
            assert not t.is_alive()


def check_state(daemon, acked, unacked):
    k = daemon.kiosk()
    per_line = {}
    for key, (line, res) in acked.items():
        g = k.ok("ticket.get", ticket_id=res["ticket_id"])
        assert (g["number"], g["line"]) == (res["number"], line), (key, g, res)
        assert k.ok("ticket.take", line=line, idem=key) == res, key
        per_line.setdefault(line, []).append(res["number"])
    for line, nums in per_line.items():
        assert len(nums) == len(set(nums)), "a number was given twice on line %s" % line
    # Unacknowledged requests: a retry gives one ticket, and a second retry
    # the same one.
    for key, line in list(unacked.items()):
        r1 = k.ok("ticket.take", line=line, idem=key)
        r2 = k.ok("ticket.take", line=line, idem=key)
        assert r1 == r2
        acked[key] = (line, r1)
    unacked.clear()


def crash_rounds(make_daemon, rounds, seed, extra=None):
    rng = random.Random(seed)
    d = make_daemon(manual_clock=False, extra=extra)
    acked, unacked = {}, {}
    for r in range(rounds):
        loader = Loader(d, seed, r)
        loader.start()
        # Kill at a random moment; what is checked does not depend on when.
        threading.Event().wait(rng.uniform(0.02, 0.3))
        d.kill()
        loader.join()
        acked.update(loader.acked)
        unacked.update(loader.unacked)
        d.start()
        check_state(d, acked, unacked)
    assert len(acked) > rounds  # the load did reach the daemon
    live = d.admin().ok("digest")
    d.stop()
    # A fresh data dir with only the WAL: hallqd replays it all.
    fresh = make_daemon(manual_clock=False, extra=extra, name="replayed", start=False)
    shutil.copytree(d.data / "wal", fresh.data / "wal")
    fresh.start()
    replayed = fresh.admin().ok("digest")
    assert replayed == live
    fresh.stop()
    return d


def test_crash_rounds(make_daemon):
    d = crash_rounds(make_daemon, rounds=20, seed=20261124)
    # Each restart recovered: LMDB's lost last transaction (if any) was
    # replayed from the WAL; nothing refused to start.
    assert d.log_text().count("hallqd ready") == 21


def test_crash_rounds_across_segments(make_daemon):
    # Small segments: the kills also land around segment roll-over.
    d = crash_rounds(make_daemon, rounds=8, seed=7,
                     extra={"segment_bytes: 67108864": "segment_bytes: 65536"})
    segs = list((d.data / "wal").glob("*.wal"))
    assert len(segs) > 3, segs
