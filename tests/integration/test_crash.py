"""Crash tests: SIGKILL hallqd under load at random moments and restart it on
the same data dir, round after round.

After every restart:
- every acknowledged ticket is there, with its number and line;
- an idem retry of an acknowledged request returns the same ticket;
- an unacknowledged request (connection dropped, or `unavailable`) retried
  with its idem gives one ticket, the same on a second retry;
- per line, the tickets of all requests ever sent are numbered exactly
  1..N, and the next ticket is N+1: no number was given twice and no
  request made two tickets.
At the end the daemon's digest equals that of a fresh daemon that replayed a
copy of the WAL alone into an empty LMDB.

The moments of the kills come from a seeded random.Random; what is checked
never depends on when they land. The clock is the manual one, so the
business day cannot change under the test."""
import random
import shutil
import threading
import time

from conftest import TUESDAY_10AM, LoadThreads, segment_bytes
from hallq_client import Client, Closed

LINES = "ABCD"  # F, the pickup line, takes only tickets for a ready case
THREADS = 6
# The checks pipeline their requests in chunks below max_inflight: this
# test is about crashes; test_protocol_bad_input covers deep pipelines.
CHUNK = 100


class Loader(LoadThreads):
    """THREADS connections taking tickets on random lines with unique idem
    keys (some one at a time, some pipelined four deep) until the daemon
    dies. Every key is recorded as unacknowledged before it is sent and
    moved to acknowledged when its ticket comes back."""

    def __init__(self, daemon, seed, round_no, min_acked=1):
        self.daemon = daemon
        self.min_acked = min_acked
        self.port = daemon.port
        self.acked = {}      # idem -> (line, result)
        self.unacked = {}    # idem -> line
        self.errors = []     # anything a thread saw that it should not have
        self.lock = threading.Lock()
        self.first_ack = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(seed, round_no, i), daemon=True)
                        for i in range(THREADS)]

    def run(self, seed, round_no, i):
        rng = random.Random("%s/%s/%s" % (seed, round_no, i))
        try:
            c = Client.tcp(self.port)
        except OSError:
            return  # killed before this thread got in
        try:
            c.hello("kiosk-demo")
        except (OSError, Closed):
            c.close()
            return
        try:
            n = 0
            while True:
                depth = rng.choice((1, 1, 4))
                batch = []
                for _ in range(depth):
                    n += 1
                    key = "r%d-t%d-%d" % (round_no, i, n)
                    line = rng.choice(LINES)
                    with self.lock:
                        self.unacked[key] = line
                    batch.append((key, line))
                ids = c.pipeline_send([("ticket.take", {"line": l, "idem": k})
                                       for k, l in batch])
                for (key, line), id in zip(batch, ids):
                    m = c.read()
                    if m.get("id") != id:
                        raise AssertionError("answer to %s expected, got %r" % (id, m))
                    if not m["ok"]:
                        # Only a daemon that cannot make the change durable
                        # may refuse; the key stays unacknowledged.
                        if m["error"]["code"] != "unavailable":
                            raise AssertionError("%s: %r" % (key, m))
                        continue
                    r = m["result"]
                    if r["line"] != line:
                        raise AssertionError("%s: asked line %s, got %r" % (key, line, r))
                    with self.lock:
                        del self.unacked[key]
                        self.acked[key] = (line, r)
                        if len(self.acked) >= self.min_acked:
                            self.first_ack.set()
        except (Closed, ConnectionError):
            return  # the kill
        except BaseException as e:  # reported by the test's own thread in join()
            with self.lock:
                self.errors.append("thread %d: %r" % (i, e))
        finally:
            c.close()


class Ledger:
    """Everything the test knows: each idem key ever sent and its ticket."""

    def __init__(self):
        self.tickets = {}   # idem -> (line, result), known to exist
        self.pending = {}   # idem -> line, sent but never acknowledged
        self.probe = 0

    def check(self, daemon):
        k = daemon.kiosk()
        # Every acknowledged ticket is there, and its idem retry returns it.
        # The reads go first, then the retries: on one connection a read
        # interleaved with mutations waits for each of them to be durable
        # (and holds back the next), a batch per pair.
        keys = list(self.tickets)
        gets = k.pipeline([("ticket.get", {"ticket_id": self.tickets[key][1]["ticket_id"]})
                           for key in keys], chunk=CHUNK)
        retries = k.pipeline([("ticket.take", {"line": self.tickets[key][0], "idem": key})
                              for key in keys], chunk=CHUNK)
        for key, g, again in zip(keys, gets, retries):
            line, r = self.tickets[key]
            assert g["ok"], "acknowledged %s (%s) lost: %r" % (key, r["number"], g)
            g = g["result"]
            assert (g["ticket_id"], g["number"], g["line"]) == \
                (r["ticket_id"], r["number"], line), (key, r, g)
            assert again["ok"] and again["result"] == r, \
                "idem retry of acknowledged %s: %r, first answer %r" % (key, again, r)
        # Unacknowledged requests: one ticket each, the same on a retry.
        keys = list(self.pending)
        first = k.pipeline([("ticket.take", {"line": self.pending[key], "idem": key})
                            for key in keys], chunk=CHUNK)
        second = k.pipeline([("ticket.take", {"line": self.pending[key], "idem": key})
                             for key in keys], chunk=CHUNK)
        for key, a, b in zip(keys, first, second):
            assert a["ok"], (key, a)
            assert b["ok"] and b["result"] == a["result"], (key, a, b)
            assert a["result"]["line"] == self.pending[key]
            self.tickets[key] = (self.pending[key], a["result"])
        self.pending.clear()
        # Per line: the numbers of all keys are exactly 1..N, and the next
        # ticket (a probe, kept in the ledger) is N+1.
        per_line = {}
        for key, (line, r) in self.tickets.items():
            per_line.setdefault(line, []).append(int(r["number"][1:]))
        for line in LINES:
            nums = sorted(per_line.get(line, []))
            dup = sorted({n for n in nums if nums.count(n) > 1})
            assert not dup, "line %s: numbers given twice: %s" % (line, dup)
            assert nums == list(range(1, len(nums) + 1)), \
                "line %s: numbers with holes (a request took two tickets?): %s" % (
                    line, sorted(set(range(1, max(nums, default=0) + 1)) - set(nums)))
            self.probe += 1
            key = "probe-%d" % self.probe
            p = k.ok("ticket.take", line=line, idem=key)
            assert p["number"] == "%s%03d" % (line, len(nums) + 1), (line, p)
            self.tickets[key] = (line, p)
        k.close()


def crash_rounds(make_daemon, rounds, seed, extra=None, budget_s=180.0, min_acked=1):
    # budget_s only guards against a run that got pathologically slow (a
    # recovery replaying far more than it should); it is generous enough
    # for the sanitizer build on a loaded machine.
    rng = random.Random(seed)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=extra)
    ledger = Ledger()
    started = time.monotonic()
    acked_under_load = 0
    for r in range(rounds):
        loader = Loader(d, seed, r, min_acked)
        loader.start()
        # Let the load reach the daemon (min_acked tickets acknowledged),
        # then kill it at a random moment.
        assert loader.first_ack.wait(60), "%d tickets not acknowledged in round %d" % (min_acked, r)
        threading.Event().wait(rng.uniform(0.02, 0.3))
        d.kill()
        loader.join()
        acked_under_load += len(loader.acked)
        ledger.tickets.update(loader.acked)
        ledger.pending.update(loader.unacked)
        d.start()
        ledger.check(d)
        assert time.monotonic() - started < budget_s, "crash rounds too slow (round %d)" % r
    assert acked_under_load >= rounds
    # The state equals a replay of the WAL alone into an empty LMDB.
    live = d.admin().ok("digest")
    d.stop()
    fresh = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=extra, name="replayed",
                        start=False)
    shutil.copytree(d.data / "wal", fresh.data / "wal")
    shutil.copy2(d.data / "pii.key", fresh.data / "pii.key")  # the hall may have intakes
    fresh.start()
    assert fresh.admin().ok("digest") == live
    # And the replayed state answers like the original.
    k = fresh.kiosk()
    for key in list(ledger.tickets)[:200]:
        line, res = ledger.tickets[key]
        assert k.ok("ticket.take", line=line, idem=key) == res
    fresh.stop()
    return d, ledger


def test_crash_rounds(make_daemon):
    d, ledger = crash_rounds(make_daemon, rounds=20, seed=20261124)
    # Every start after a kill recovered and served.
    assert d.log_text().count("hallqd ready") == 21
    assert len(ledger.tickets) > 100


def test_crash_rounds_across_wal_segments(make_daemon):
    # Segments of 64 KiB: the kills also land around segment roll-overs.
    # At least 100 tickets a round (about 30 KiB of records: 1,000 tickets fill 4 to 5 segments) before the
    # kill, so that the rounds cross several segments however slow the
    # build and the machine are.
    d, ledger = crash_rounds(make_daemon, rounds=10, seed=7, extra=segment_bytes(65536),
                             budget_s=120.0, min_acked=100)
    segs = sorted(p.name for p in (d.data / "wal").iterdir() if p.is_file())
    assert len(segs) > 3, segs
