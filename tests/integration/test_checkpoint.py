"""LMDB checkpoints: the state txn holds the durable batches and LMDB writes
them out every --checkpoint-ms (daemon/checkpoint.c). The WAL makes a batch
durable; between checkpoints a crash loses nothing, as recovery replays the
WAL from the state's applied LSN."""
import subprocess

import pytest

from conftest import HALLQ, HALLQD, TUESDAY_10AM, wait_until


def on_disk(d):
    """(digest, applied LSN) of the LMDB file as another process reads it."""
    p = subprocess.run([str(HALLQ), "state", "digest", str(d.data)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    digest, lsn = p.stdout.split()
    return digest, int(lsn.split("=")[1])


def take(d, n):
    k = d.kiosk()
    got = k.pipeline([("ticket.take", {"line": "ABCD"[i % 4], "idem": "c%d" % i})
                      for i in range(n)])
    assert all(m["ok"] for m in got), got
    return got


def test_a_crash_between_checkpoints_replays_the_wal(make_daemon):
    # A checkpoint an hour away: LMDB's file stays at the start's state
    # while hundreds of batches are acknowledged; SIGKILL; the restart
    # replays them from the WAL to the digest the daemon had.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=["--checkpoint-ms", "3600000"])
    first = on_disk(d)
    take(d, 400)
    live = d.admin().ok("digest")
    assert on_disk(d) == first  # nothing written out yet
    assert live["lsn"] > first[1]
    d.kill()
    d.start()
    assert d.admin().ok("digest") == live
    assert "replayed WAL records %d..%d" % (first[1] + 1, live["lsn"]) in d.log_text()


def test_a_checkpoint_writes_the_state_out(make_daemon):
    # A short checkpoint: the file reaches the live state without a stop.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=["--checkpoint-ms", "50"])
    take(d, 40)
    live = d.admin().ok("digest")
    wait_until(lambda: on_disk(d) == (live["digest"], live["lsn"]), "checkpoint")
    # And a clean stop writes out what came after it.
    take(d, 10)
    live = d.admin().ok("digest")
    d.stop()
    assert on_disk(d) == (live["digest"], live["lsn"])


def test_checkpoint_zero_writes_every_batch(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=["--checkpoint-ms", "0"])
    take(d, 30)
    live = d.admin().ok("digest")
    assert on_disk(d) == (live["digest"], live["lsn"])


def test_a_config_change_is_checkpointed_at_once(make_daemon):
    # The hall a restore from the WAL reopens must have the config of the
    # records it replays: a batch that changes the config is written out.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=["--checkpoint-ms", "3600000"])
    take(d, 20)
    before = on_disk(d)
    a = d.admin()
    assert a.ok("config.reload") == {"version": 1, "changed": False}
    assert on_disk(d) == before  # an unchanged config writes nothing
    text = d.config.read_text()
    assert "claim_lease_s: 300" in text
    d.config.write_text(text.replace("claim_lease_s: 300", "claim_lease_s: 60", 1))
    assert a.ok("config.reload") == {"version": 2}
    live = a.ok("digest")
    assert on_disk(d) == (live["digest"], live["lsn"])


@pytest.mark.parametrize("bad", ["-1", "x", "", "3600001", "10ms"])
def test_bad_checkpoint_ms_is_refused(workdir, bad):
    p = subprocess.run([str(HALLQD), "--data", str(workdir / "d"), "--checkpoint-ms", bad],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "--checkpoint-ms" in p.stderr
    assert not (workdir / "d").exists()
