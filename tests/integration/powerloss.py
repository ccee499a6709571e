"""The power-loss simulation: what a disk may hold after the power fails
while hallqd writes, and whether hallqd starts on it with every
acknowledged change and nothing it should not show: the rounds (load,
kill, images, checks). The images come from diskmodel.py.

One round:
1. A fresh hallqd runs under tests/faults/disktrace.c (LD_PRELOAD), which
   appends every change to a WAL file (*.wal, *.wal.tmp) and every
   directory fsync to a trace, each entry written before the call returns
   (a write's bytes before it runs, a sync after it succeeded), so a
   SIGKILL loses nothing of it. HALLQ_DISKTRACE_SYNC_US makes each WAL
   sync take a little time, as on a real disk, so batches are in flight
   when the kill lands.
2. Load (a busy day in small, `Load`): kiosks take tickets with unique
   idem keys, one at a time or pipelined up to 48 deep, so the batches are
   many records and several 4 KiB pages; windows call, finish or no-show
   tickets; citizens rate finished tickets with comments of any length.
   Every answer that comes back ok is acknowledged and kept with its
   result.
3. SIGKILL: in half the rounds by the test at a random moment (after a
   random number of acknowledgements), in the other half by the shim
   itself right after a random WAL write returned and before anything
   else (HALLQ_DISKTRACE_KILL_AT): a batch surely in flight. Then the
   trace is replayed into a model of the disk (`Disk`): per file, the bytes as of its last completed
   fdatasync/fsync are durable; every 4 KiB page written after it (the
   batch in flight, and zeros written ahead) is pending. Per directory,
   the names as of its last fsync are durable; the creates, renames and
   unlinks after it are pending, and a disk keeps some prefix of them (a
   journalling file system commits directory changes in order).
4. Several images are made from the model: each pending page kept with its
   new contents or left as it was at the last sync, each at random (a disk
   may persist the pages of one unsynced write in any order); a random
   prefix of the pending directory changes; a pending size change
   (fallocate, truncate) kept or not.
   The rest of the data dir (LMDB's state.mdb, pii.key, LOCK, and any
   other file) is copied as the page cache holds it after the kill. That is a valid disk image:
   LMDB writes a commit's pages and fdatasyncs them before it writes the
   meta page, and hallqd opens it with MDB_NOMETASYNC, so only the newest
   meta page may be missing on disk; an image may also roll that meta page
   back (`rollback_lmdb_meta`: the previous commit's meta wins), which is
   what the disk holds when the last meta write did not reach it. Pages an
   unfinished commit wrote are free in both snapshots, so whether they
   reached the disk does not matter. pii.key and the other small files
   are not simulated: they are taken as written (pii.key is written and
   fsync'd once, at the first start).
   A third of the rounds first SIGKILL the daemon (as above) and restart
   it on the same files, traced into the same trace (the model takes the
   WAL as the page cache held it at that kill for any write the kill cut);
   its clients retry what got no answer, with the same idem. The power
   then fails after a second run of load, or right after readers looked
   at the tickets past the last number given (what the start replayed of
   the batch in flight), or right after the restarted daemon's first WAL
   write.
5. On each image hallqd must start (no refusal), and then:
   - every acknowledged ticket is there (ticket.get) with the number and
     line it was given, and an idem retry returns exactly the first answer;
     a ticket whose call was acknowledged is no longer waiting, one whose
     done/no_show was acknowledged is done/no_show, one whose rating was
     acknowledged cannot be rated again, and a ticket a reader saw after a
     restart is there as it was seen;
   - nothing unacknowledged is visible unless it is whole and chained:
     `hallq wal verify` finds the recovered log intact, and every record in
     it is byte for byte the record the daemon wrote with that LSN (so the
     log is a prefix of what was written; a record of the batch in flight
     may be there only whole, in order, and chained); the state's digest
     equals that of a fresh hallqd that replays the recovered WAL alone;
   - it stops cleanly (SIGTERM, exit 0).

The model is checked against the real files too: after the kill the WAL
files as the page cache holds them must equal the model's "everything
written" view (a write cut by the kill, traced but without its done entry,
may be either way), so a gap in the trace cannot pass unnoticed.

Everything random comes from one seed (HALLQ_POWERLOSS_SEED; printed), per
round random.Random("seed/round"), so a failing round is rerun with the same
seed. The moment of the kill is wall-clock, so a rerun lands elsewhere; the
images of one trace are reproducible. Each failure message names the seed,
round and image."""
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import threading
import time

import walfile
from conftest import (HALLQ, TUESDAY_10AM, Daemon, LoadThreads, segment_bytes,
                      write_config)
from diskmodel import (Disk, copy_sparse, read_sparse, read_trace, records, rollback_lmdb_meta,
                       shim_env)
from hallq_client import Client, Closed

LINES = "ABCD"
TUESDAY_DAY = "20261124"  # the business day of TUESDAY_10AM, in ticket ids
# The windows at work in each run of the daemon (a window with a ticket
# called when the daemon died is not used again).
WINDOWS = [("W01", "W04"), ("W02", "W03")]


class Ledger:
    """What the clients were told, over every run of a round."""

    def __init__(self):
        self.tickets = {}      # idem -> (args, result): acknowledged takes
        self.called = set()    # ticket_id: acknowledged window.call of it
        self.ended = {}        # ticket_id -> "done" | "no_show": acknowledged
        self.rated = {}        # ticket_id -> args: acknowledged rate
        self.unacked = {}      # idem -> args: takes sent and never answered ok
        self.seen = {}         # ticket_id -> ticket.get result: read by a client
        self.sent = 0

    def acked(self):
        return len(self.tickets) + len(self.called) + len(self.ended) + len(self.rated)

    def merge(self, other):
        self.tickets.update(other.tickets)
        self.called |= other.called
        self.ended.update(other.ended)
        self.rated.update(other.rated)
        for k in other.tickets:
            self.unacked.pop(k, None)
        self.unacked.update(other.unacked)
        self.seen.update(other.seen)
        self.sent += other.sent


class Load(Ledger, LoadThreads):
    """Kiosk and window clients until the daemon dies. Every request is
    recorded; its answer, when ok, is kept as acknowledged."""

    def __init__(self, daemon, rng, run=0, kiosks=6):
        Ledger.__init__(self)
        self.d = daemon
        self.run = run
        self.errors = []
        self.lock = threading.Lock()
        self.acks = threading.Semaphore(0)
        windows = WINDOWS[run]
        seeds = [rng.random() for _ in range(kiosks + len(windows))]
        self.threads = [threading.Thread(target=self._guard, args=(self.kiosk, i, seeds[i]),
                                         daemon=True) for i in range(kiosks)]
        self.threads += [threading.Thread(target=self._guard,
                                          args=(self.window, w, seeds[kiosks + j]), daemon=True)
                         for j, w in enumerate(windows)]
        self.rate_queue = []   # ticket ids done, to be rated

    def _guard(self, fn, who, seed):
        try:
            fn(who, random.Random(seed))
        except (Closed, OSError):
            pass  # the kill
        except BaseException as e:  # reported by join()
            with self.lock:
                self.errors.append("%s: %r" % (who, e))

    def _ok(self, m, what):
        if m.get("ok"):
            self.acks.release()
            return m["result"]
        # Only a daemon that cannot make the change durable may refuse;
        # a rating of a ticket done by another window's refusal is also fine.
        code = m["error"]["code"]
        if code != "unavailable":
            raise AssertionError("%s: %r" % (what[:200], m))
        return None

    def kiosk(self, i, rng):
        c = Client.tcp(self.d.port)
        try:
            c.hello("kiosk-demo")
            n = 0
            while True:
                depth = rng.choice((1, 1, 4, 16, 48))
                reqs = []
                for _ in range(depth):
                    n += 1
                    key = "r%d-k%d-%d" % (self.run, i, n)
                    args = {"line": rng.choice(LINES), "idem": key}
                    if rng.random() < 0.1:
                        args["priority"] = True
                    reqs.append(("ticket.take", args))
                    with self.lock:
                        self.unacked[key] = args
                with self.lock:
                    if self.rate_queue and rng.random() < 0.5:
                        tid = self.rate_queue.pop()
                        comment = "x" * rng.choice((0, 10, 200, 500))
                        args = {"ticket_id": tid, "score": rng.randint(1, 5),
                                "idem": "rate-%s" % tid}
                        if comment:
                            args["comment"] = comment
                        reqs.append(("rate", args))
                with self.lock:
                    self.sent += len(reqs)
                ids = c.pipeline_send(reqs)
                for (op, args), id in zip(reqs, ids):
                    m = c.read()
                    assert m.get("id") == id, (id, m)
                    r = self._ok(m, "%s %r" % (op, args))
                    if r is None:
                        continue
                    with self.lock:
                        if op == "ticket.take":
                            assert r["line"] == args["line"], (args, r)
                            self.tickets[args["idem"]] = (args, r)
                            del self.unacked[args["idem"]]
                        else:
                            self.rated[args["ticket_id"]] = args
        finally:
            c.close()

    def window(self, wid, rng):
        c = Client.tcp(self.d.port)
        try:
            c.hello("window-%s" % wid)
            c.ok("window.state", state="open")
            while True:
                with self.lock:
                    self.sent += 1
                r = self._ok(c.request("window.call"), "window.call")
                if r is None or r["ticket"] is None:
                    # Nobody waits: pace the empty calls (no timing rests
                    # on this).
                    threading.Event().wait(0.005)
                    continue
                tid = r["ticket"]["ticket_id"]
                with self.lock:
                    self.called.add(tid)
                end = "window.done" if rng.random() < 0.8 else "window.no_show"
                with self.lock:
                    self.sent += 1
                if self._ok(c.request(end), end) is not None:
                    with self.lock:
                        self.ended[tid] = "done" if end == "window.done" else "no_show"
                        if end == "window.done":
                            self.rate_queue.append(tid)
        finally:
            c.close()


# ---- one round ----

class RoundFailure(AssertionError):
    pass


def hallq(*args):
    return subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120)


CHUNK = 100


class Round:
    """One kill and its images (see the module's comment)."""

    def __init__(self, workdir, seed, no, images=3, log=print, keep_going=False):
        self.rng = random.Random("%s/%s" % (seed, no))
        self.seed, self.no = seed, no
        self.dir = pathlib.Path(workdir) / ("r%d" % no)
        self.dir.mkdir(parents=True)
        self.images = images
        self.log = log
        self.daemons = []
        rng = self.rng
        self.segment = rng.choice((65536, 1 << 20, 64 << 20))
        self.checkpoint_ms = rng.choice((0, 30, 300, 1000))
        self.sync_us = rng.choice((0, 500, 2000))
        self.extra = segment_bytes(self.segment)
        self.cfg = write_config(self.dir, start_ms=TUESDAY_10AM, extra=self.extra)
        # A third of the rounds: a SIGKILL and a restart on the same
        # files first (the daemon starts from what the page cache holds),
        # then the power loss.
        self.runs = rng.choice((1, 1, 2))
        self.kills = []
        self.stats = {}
        self.keep_going = keep_going
        self.failures = []     # with keep_going: every image's failure

    def where(self):
        kills = ", ".join("killed after reads" if k == "read" else
                          "killed at its first WAL write" if k == "start" else
                          "killed after WAL write %d" % k if k else "killed by the test"
                          for k in self.kills)
        return "HALLQ_POWERLOSS_SEED=%s round %d (segments %d, checkpoint %d ms, sync +%d us, " \
            "%d run(s): %s)" % (self.seed, self.no, self.segment, self.checkpoint_ms,
                                self.sync_us, self.runs, kills)

    def daemon(self, data, env=None):
        # (env is set per run for a traced daemon)
        sockdir = tempfile.mkdtemp(prefix="hqs-")
        d = Daemon(data, self.cfg, sockdir, manual_clock=True,
                   args=["--checkpoint-ms", str(self.checkpoint_ms)], env=env, logdir=self.dir)
        self.daemons.append(d)
        return d

    def close(self):
        for d in self.daemons:
            if d.proc is not None:
                d.kill()
            shutil.rmtree(d.sockdir, ignore_errors=True)

    def run(self):
        try:
            self._run()
        except AssertionError as e:
            if not self.keep_going:
                if isinstance(e, RoundFailure):
                    raise
                raise RoundFailure("%s: %s" % (self.where(), e)) from None
            self.failures.append(str(e) if isinstance(e, RoundFailure) else
                                 "%s: %s" % (self.where(), e))
            self.log("FAILED: %s" % self.failures[-1][:1500])
        finally:
            self.close()
        return self.stats

    def _run(self):
        rng = self.rng
        data = self.dir / "data"
        data.mkdir()
        trace = self.dir / "trace"
        d = self.daemon(data)
        ledger = Ledger()
        snapshots = []
        for run in range(self.runs):
            if run:
                # The restart after a SIGKILL, traced into the same file; the
                # WAL as the page cache held it at the kill, for the model.
                snap = self.dir / ("snap%d" % run)
                snap.mkdir()
                for p in (data / "wal").iterdir():
                    if p.name.endswith(".wal") or p.name.endswith(".wal.tmp"):
                        copy_sparse(p, snap / p.name)
                snapshots.append(snap)
            # The last run of a restarted round: load as in the first; or
            # only the start and readers, the power failing right after
            # them ("read"); or the power failing at its first write to the
            # log ("start": the replay has committed to LMDB by then).
            last = run == self.runs - 1 and run > 0
            quiet = rng.choice((False, "read", "start")) if last else False
            self._run_once(d, run, ledger, quiet)
        disk = Disk(data / "wal").replay(read_trace(trace), snapshots)
        load = ledger
        disk.check_against(data / "wal")
        full = disk.written_log()
        pending = disk.pending()
        self.stats = {"acked": load.acked(), "tickets": len(load.tickets), "sent": load.sent,
                      "seen_after_restart": len(load.seen),
                      "records": len(full), "segments": len(disk.names),
                      "pending_pages": sum(pending.values()), "images": 0, "meta_rollbacks": 0}
        self.log("round %d: %d acknowledged of %d sent, %d records in %d segment(s), "
                 "%d page(s) in flight %s; %s" % (
                     self.no, load.acked(), load.sent, len(full), len(disk.names),
                     sum(pending.values()), sorted(pending.items()), self.where()))
        for i in range(self.images):
            try:
                self._image(i, disk, data, load, full)
            except RoundFailure as e:
                if not self.keep_going:
                    raise
                self.failures.append(str(e))
                self.log("FAILED: %s" % str(e)[:1500])

    def _run_once(self, d, run, ledger, quiet=False):
        """One run of the daemon under the shim, until it is killed. Half
        the runs the test kills at a random moment (whatever the daemon is
        doing); half the shim kills right after a random WAL write
        returned, before its sync: a batch surely in flight. `quiet`:
        "read" (start, read, kill) or "start" (the shim kills at the first
        WAL write, whether the retries or the load make it)."""
        rng = self.rng
        kill_at = rng.randint(3, 60) if rng.random() < 0.5 and not quiet else None
        if quiet == "start":
            kill_at = 1
        self.kills.append(quiet or kill_at)
        d.env = dict(shim_env(self.dir / "trace"), HALLQ_DISKTRACE_SYNC_US=str(self.sync_us))
        if kill_at:
            d.env["HALLQ_DISKTRACE_KILL_AT"] = str(kill_at)
        try:
            d.start()
        except AssertionError as e:
            if quiet == "start" and d.exit_codes and d.exit_codes[-1] == -9:
                return  # the shim's kill came before the ready line
            raise RoundFailure("%s: hallqd did not start after a SIGKILL:\n%s" % (
                self.where(), str(e)[-3000:])) from None
        if quiet == "read":
            # Readers look at the tickets past the last number anyone was
            # given (what the start replayed of the batch in flight); then
            # the power fails. What they saw must survive.
            self._read_beyond(d, ledger)
            d.kill()
            return
        if ledger.unacked:
            # A client that got no answer retries with the same idem; what
            # it is told now is acknowledged.
            keys = sorted(ledger.unacked)
            try:
                k = d.kiosk()
                got = k.pipeline([("ticket.take", ledger.unacked[key]) for key in keys],
                                 chunk=CHUNK)
                k.close()
            except (Closed, OSError):
                got = []  # the shim's kill ("start")
            for key, m in zip(keys, got):
                assert m["ok"], "retry of %s after the restart: %r" % (key, m)
                ledger.tickets[key] = (ledger.unacked.pop(key), m["result"])
        load = Load(d, rng, run)
        load.start()
        if kill_at:
            try:
                d.proc.wait(60)
            except subprocess.TimeoutExpired:
                raise AssertionError("the shim did not kill hallqd within 60 s")
        else:
            # After a random number of acknowledgements (and a random
            # fraction of a moment more), so the log has something to lose.
            want = rng.choice((1, 20, 100, 300))
            deadline = time.monotonic() + 20
            for _ in range(want):
                if not load.acks.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    break
            threading.Event().wait(rng.uniform(0, 0.02))
        d.kill()
        load.join()
        ledger.merge(load)

    def _read_beyond(self, d, ledger):
        """ticket.get of each line's numbers past the highest one given,
        until one is not found; what is found goes to ledger.seen."""
        day = TUESDAY_DAY
        k = d.kiosk()
        for line in LINES:
            n = max([int(r["number"][1:]) for _, r in ledger.tickets.values()
                     if r["line"] == line] or [0])
            while True:
                n += 1
                tid = "%s-%s%03d" % (day, line, n)
                m = k.request("ticket.get", {"ticket_id": tid})
                if not m["ok"]:
                    assert m["error"]["code"] == "not_found", (tid, m)
                    break
                ledger.seen[tid] = m["result"]
        k.close()

    def _image(self, i, disk, data, load, full):
        rng = self.rng
        img = self.dir / ("img%d" % i)
        img.mkdir()
        for p in data.iterdir():
            if p.is_file():
                copy_sparse(p, img / p.name)
        keep = (0.0, 1.0, 0.5)[i] if i < 3 else rng.random()
        what, held = disk.image(img / "wal", rng, keep)
        for k, cond in (("images_dirops_pending", held["dirops"] > 0),
                        ("images_torn", held["kept"] and held["dropped"])):
            self.stats[k] = self.stats.get(k, 0) + bool(cond)
        rolled = rollback_lmdb_meta(img / "state.mdb") if rng.random() < 0.3 else None
        if rolled is not None:
            what += ", LMDB meta rolled back to txn %d" % rolled
            self.stats["meta_rollbacks"] += 1
        where = "%s image %d (%s)" % (self.where(), i, what)
        self.stats["images"] += 1
        d = self.daemon(img)
        try:
            d.start()
        except AssertionError as e:
            d.kill()
            raise RoundFailure("%s: hallqd did not start:\n%s" % (where, str(e)[-3000:])) \
                from None
        try:
            self._check(d, img, load, full, where, replay=(i == 0))
        except AssertionError as e:
            d.kill()
            raise RoundFailure("%s: %s\n---- hallqd ----\n%s" % (where, e, d.log_tail(30))) \
                from None
        d.stop()
        shutil.rmtree(img)
        self.stats["images_ok"] = self.stats.get("images_ok", 0) + 1

    def _check(self, d, img, load, full, where, replay):
        # Whole and chained: the recovered log verifies, and each record is
        # the one written with that LSN.
        p = hallq("wal", "verify", img / "wal")
        assert p.returncode == 0, "hallq wal verify: %d\n%s%s" % (p.returncode, p.stdout,
                                                                  p.stderr)
        for seg in walfile.segment_paths(img / "wal"):
            for lsn, raw in records(read_sparse(seg)):
                assert raw in full.get(lsn, ()), \
                    "LSN %d in the recovered log is not the record written with that LSN" % lsn
        a = d.admin()
        digest = a.ok("digest")
        a.close()
        if replay:
            # The state is the replay of the recovered log alone.
            fresh = self.dir / "replayed"
            (fresh / "wal").mkdir(parents=True)
            for seg in walfile.segment_paths(img / "wal"):
                copy_sparse(seg, fresh / "wal" / seg.name)
            if (img / "pii.key").exists():  # a hall with intakes needs its key
                copy_sparse(img / "pii.key", fresh / "pii.key")
            r = self.daemon(fresh)
            r.start()
            ra = r.admin()
            assert ra.ok("digest") == digest, "the state is not the replay of its WAL"
            ra.close()
            r.stop()
            shutil.rmtree(fresh)
        k = d.kiosk()
        keys = sorted(load.tickets)
        reqs = []
        for key in keys:
            args, res = load.tickets[key]
            reqs.append(("ticket.get", {"ticket_id": res["ticket_id"]}))
        checked = sorted(set(load.called) | set(load.ended) | set(load.rated))
        reqs += [("ticket.get", {"ticket_id": t}) for t in checked]
        got = k.pipeline(reqs, chunk=CHUNK)
        for key, g in zip(keys, got):
            args, res = load.tickets[key]
            assert g["ok"], "acknowledged ticket %s (%s, idem %s) lost: %r" % (
                res["ticket_id"], res["number"], key, g)
            g = g["result"]
            assert (g["ticket_id"], g["number"], g["line"]) == \
                (res["ticket_id"], res["number"], res["line"]), (key, res, g)
        for t, g in zip(checked, got[len(keys):]):
            assert g["ok"], "ticket %s (called/ended/rated, acknowledged) lost: %r" % (t, g)
            st = g["result"]["state"]
            if t in load.ended:
                assert st == load.ended[t], "ticket %s: acknowledged %s, now %s" % (
                    t, load.ended[t], st)
            elif t in load.called:
                assert st != "waiting", "ticket %s: its call was acknowledged, now %s" % (t, st)
        # What a reader saw after a restart is there as it was seen.
        seen = sorted(load.seen)
        got = k.pipeline([("ticket.get", {"ticket_id": t}) for t in seen], chunk=CHUNK)
        for t, g in zip(seen, got):
            assert g["ok"], "ticket %s, read after the restart, lost: %r" % (t, g)
            assert (g["result"]["number"], g["result"]["line"]) == \
                (load.seen[t]["number"], load.seen[t]["line"]), (t, load.seen[t], g)
        # The answer it was given: an idem retry returns it unchanged.
        again = k.pipeline([("ticket.take", load.tickets[key][0]) for key in keys], chunk=CHUNK)
        for key, m in zip(keys, again):
            assert m["ok"] and m["result"] == load.tickets[key][1], \
                "idem retry of acknowledged %s: %r, first answer %r" % (
                    key, m, load.tickets[key][1])
        # An acknowledged rating stands: rating the ticket again is refused.
        rated = sorted(load.rated)
        again = k.pipeline([("rate", {"ticket_id": t, "score": 3, "idem": "again-%s" % t})
                            for t in rated], chunk=CHUNK)
        for t, m in zip(rated, again):
            assert not m["ok"] and m["error"]["code"] == "conflict", \
                "ticket %s: acknowledged rating, a second one gives %r" % (t, m)
        k.close()


def failure_kind(msg):
    """A short name for a failure, to count them by kind."""
    for needle, kind in (("data follows", "refused: damage before data (a torn batch)"),
                         ("the state has applied", "refused: the state is ahead of the WAL "
                          "(a start replayed WAL bytes never synced)"),
                         ("read after the restart, lost", "a ticket read after a restart lost "
                          "(a start replayed WAL bytes never synced)"),
                         ("did not start", "refused to start"),
                         ("lost", "acknowledged change lost"),
                         ("hallq wal verify", "recovered log does not verify"),
                         ("not the record written", "record not as written"),
                         ("not the replay", "state is not the replay of its WAL")):
        if needle in msg:
            return kind
    return "other"


def run_rounds(workdir, seed, rounds, images=3, log=print, budget_s=None, keep_going=False):
    """Runs `rounds` rounds; returns (summed stats, failures). Without
    keep_going, the first failure raises RoundFailure (it names seed,
    round and image); with it, every image is tried and the failures are
    returned, each message once per kind counted in the stats."""
    log("power-loss simulation: HALLQ_POWERLOSS_SEED=%s, %d rounds, %d images each"
        % (seed, rounds, images))
    total = {"rounds": 0, "rounds_in_flight": 0, "rounds_multipage": 0}
    failures = []
    started = time.monotonic()
    for no in range(rounds):
        r = Round(workdir, seed, no, images=images, log=log, keep_going=keep_going)
        st = r.run()
        if not r.failures:
            shutil.rmtree(r.dir, ignore_errors=True)
        failures += r.failures
        for k, v in st.items():
            total[k] = total.get(k, 0) + v
        total["rounds"] += 1
        total["rounds_in_flight"] += st.get("pending_pages", 0) > 0
        total["rounds_multipage"] += st.get("pending_pages", 0) > 1
        total["rounds_restarted"] = total.get("rounds_restarted", 0) + (r.runs > 1)
        if budget_s is not None:
            assert time.monotonic() - started < budget_s, \
                "power-loss rounds too slow: %d rounds in %.0f s" % (no + 1, budget_s)
    kinds = {}
    for f in failures:
        kinds[failure_kind(f)] = kinds.get(failure_kind(f), 0) + 1
    log("power-loss simulation: %d rounds in %.1f s: %r" % (
        total["rounds"], time.monotonic() - started, total))
    log("failed images by kind: %r" % (kinds or "none"))
    return total, failures


def main():
    import argparse
    ap = argparse.ArgumentParser(description="The power-loss simulation, many rounds "
                                 "(tools/powerloss.sh runs it).")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--seed", default=os.environ.get("HALLQ_POWERLOSS_SEED") or
                    str(random.SystemRandom().randrange(1 << 32)))
    ap.add_argument("--workdir", help="where rounds run; failed rounds stay there "
                    "(default: a new temp dir)")
    ap.add_argument("--stop", action="store_true", help="stop at the first failure")
    a = ap.parse_args()
    work = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="hq-powerloss-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _, failures = run_rounds(work, a.seed, a.rounds, images=a.images,
                                 keep_going=not a.stop)
    except AssertionError as e:  # RoundFailure, or a check of the trace itself
        failures = [str(e)]
    for f in failures:
        print("\n==== FAILED ====\n%s" % f)
    if failures:
        print("\n%d failed image(s); their rounds are kept in %s; rerun with "
              "HALLQ_POWERLOSS_SEED=%s" % (len(failures), work, a.seed))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("every image started with every acknowledged change (seed %s)" % a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
