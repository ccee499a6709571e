"""Logs that replay forever: every WAL a released build wrote, kept in
tests/fixtures/rules-N/ (made by that release, see make_rules1.py), still
verifies, replays to the answers it gave, is served read-only as it was,
and is carried on by this build under its own rules. A log from newer rules
than the build's is refused, naming both versions.

Each fixture dir holds wal/*.wal.gz (the log), state.mdb.gz (that build's
LMDB state at the end), hall.yaml (its config in force at the end),
fixture.json (the rules version and the commit that made it), answers.json (every request
of the day with its answer; `recorded`: it made a WAL record) and
reads.json (reads taken at the end)."""
import gzip
import json
import pathlib
import shutil
import subprocess

import msgpack
import pytest

import walfile
from conftest import HALLQ, HALLQD, REPO, Daemon

FIXTURES = sorted((REPO / "tests" / "fixtures").glob("rules-*"))
RULES = 3  # this build's, hall.h HALL_RULES_VERSION
DAY = 24 * 3600 * 1000


def hallq(*args, check=True):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


def unpack(fx, data, state=False):
    """The fixture's log (and with state, its LMDB state) into data/."""
    (data / "wal").mkdir(parents=True)
    for gz in sorted((fx / "wal").glob("*.wal.gz")):
        with gzip.open(gz) as f, open(data / "wal" / gz.name[:-3], "wb") as out:
            shutil.copyfileobj(f, out)
    if state:
        with gzip.open(fx / "state.mdb.gz") as f, open(data / "state.mdb", "wb") as out:
            shutil.copyfileobj(f, out)
    # The hall's pii.key, as an operator restores it with the log (a build
    # that finds intakes and no key refuses to start). The fixture does not
    # keep the first release's key: the log holds only its hashes, which a
    # replay copies, so any key serves for carrying the log on.
    key = fx / "pii.key"
    (data / "pii.key").write_bytes(key.read_bytes() if key.exists() else bytes(range(32)))
    (data / "pii.key").chmod(0o600)
    return data


def load(fx, name):
    return json.loads((fx / name).read_text())


def dump(data):
    p = hallq("wal", "dump", data, "--json")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def contains(new, old, where="result"):
    """`new` answers at least what `old` did: the same values, and maps may
    have gained keys (protocol 1.2 only adds)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), (where, new, old)
        for k, v in old.items():
            assert k in new, "%s.%s: gone (%r)" % (where, k, new)
            contains(new[k], v, "%s.%s" % (where, k))
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), (where, new, old)
        for i, (a, b) in enumerate(zip(new, old)):
            contains(a, b, "%s[%d]" % (where, i))
    else:
        assert new == old, "%s: %r, was %r" % (where, new, old)


def start(workdir, fx, name, args=(), manual_clock=False, config=None):
    data = workdir / name
    sock = workdir / ("s-" + name)
    sock.mkdir()
    d = Daemon(data, config or fx / "hall.yaml", str(sock), manual_clock=manual_clock,
               args=args, logdir=workdir)
    return d


@pytest.fixture(params=FIXTURES, ids=[f.name for f in FIXTURES])
def fx(request):
    return request.param


def test_there_is_a_fixture_for_every_older_rules_version():
    have = {int(f.name.split("-")[1]) for f in FIXTURES}
    assert have >= set(range(1, RULES)), "add tests/fixtures/rules-N for every released N"
    p = subprocess.run([str(HALLQD), "--version"], capture_output=True, text=True, timeout=10)
    assert ", rules %d," % RULES in p.stdout, p.stdout


def test_verify_and_replay_to_the_recorded_answers(fx, workdir):
    data = unpack(fx, workdir / "data")
    p = hallq("wal", "verify", data)
    assert "intact" in p.stdout and "rules     %s" % load(fx, "fixture.json")["rules"] in p.stdout
    # The replay re-decides every record and compares its result and events
    # with the recorded ones; it fails on the first that differs.
    p = hallq("wal", "replay", data, "--into", workdir / "replay")
    assert "replayed  LSN 1.." in p.stdout
    # The log holds the answers the clients were given, in their order.
    recorded = [(r["op"], r["result"]) for r in dump(data) if r["actor"]["role"] != "system"]
    answers = [(a["op"], a["result"]) for a in load(fx, "answers.json") if a["recorded"]]
    assert len(recorded) == len(answers)
    for i, (r, a) in enumerate(zip(recorded, answers)):
        assert r == a, (i, r, a)


@pytest.mark.parametrize("what", ["replay", "its-state"])
def test_read_only_serves_the_old_day_as_it_was(fx, workdir, what):
    """From this build's replay of the log, or from the old build's own
    state (an older schema, read as it is, never migrated read-only)."""
    data = unpack(fx, workdir / "data", state=what == "its-state")
    if what == "replay":
        hallq("wal", "replay", data, "--into", workdir / "replay")
    else:
        before = (data / "state.mdb").read_bytes()
    d = start(workdir, fx, what == "replay" and "replay" or "data", args=["--read-only"])
    d.start()
    try:
        conns = {}
        for r in load(fx, "reads.json"):
            who = r["who"]
            if who not in conns:
                conns[who] = d.unix(who) if who == "admin-demo" or who.startswith("dept-") \
                    else d.tcp(who)
            m = conns[who].request(r["op"], r["args"])
            assert m["ok"] == r["ok"], (r, m)
            if r["ok"]:
                contains(m["result"], r["result"], "%s %s" % (r["op"], r["args"]))
            else:
                assert m["error"]["code"] == r["error"]["code"], (r, m)
    finally:
        d.stop()
    if what == "its-state":
        assert (data / "state.mdb").read_bytes() == before


@pytest.mark.parametrize("with_state", [False, True], ids=["from-the-log", "from-its-state"])
def test_this_build_carries_on_under_its_rules(fx, workdir, with_state, make_daemon):
    """A normal start on the old data dir (the log alone: recovery replays it
    under its own rules; or with that build's LMDB state, migrated) appends
    a config record with this build's rules, and calls then go by them."""
    old_records = len(dump(unpack(fx, workdir / "data", state=with_state)))
    d = make_daemon(manual_clock=True, start_ms=1795485600000, name="data")
    assert "under rules %d" % RULES in d.wait_log("config of hall")
    recs = dump(d.data)
    new = recs[old_records:]
    assert [r["op"] for r in new] == ["config"] and new[0]["args"]["rules"] == RULES, new
    k, a, w03 = d.kiosk(), d.admin(), d.tcp("window-W03")
    now = a.ok("ping")["now_ms"]
    assert now >= max(r["at_ms"] for r in recs[:old_records])
    # W03 serves B before A (order: lines): a later B goes first.
    w03.ok("window.state", state="open")
    ta = k.ok("ticket.take", line="A")
    a.ok("clock.advance", ms=60000)
    tb = k.ok("ticket.take", line="B")
    assert w03.ok("window.call")["ticket"]["ticket_id"] == tb["ticket_id"]
    w03.ok("window.done")
    assert w03.ok("window.call")["ticket"]["ticket_id"] == ta["ticket_id"]
    # A restart writes no further config record: the rules are in force.
    d.restart()
    later = dump(d.data)[len(recs):]
    assert later and all(r["op"] != "config" for r in later), later


def test_the_same_config_under_new_rules_is_recorded_again(fx, workdir):
    """Started with the config the log already holds, this build still
    writes a config record: the records after it are decided under its
    rules, and the log must say so."""
    data = unpack(fx, workdir / "data")
    old = dump(data)
    d = start(workdir, fx, "data", manual_clock=True)
    d.start()
    try:
        new = dump(data)[len(old):]
        assert [r["op"] for r in new] == ["config"], new
        last = [r for r in old if r["op"] in ("config", "config.reload")][-1]
        args = new[0]["args"]
        assert set(args) == {"text", "rules"} and args["rules"] == RULES, args
        # The same config in its stored form: tokens as salted hashes (a
        # rules-1 record held them in clear), everything else as it was.
        assert "token_hash" in args["text"] and "admin-demo" not in args["text"]
        for key in ("id: demo-city", "W03", "S04"):
            assert key in args["text"] and key in last["args"]["text"]
    finally:
        d.stop()


def newer_rules_log(fx, data, rules=99):
    """The fixture's log with its config record naming `rules`, rechained
    (as a newer build would have written it)."""
    unpack(fx, data)
    segs = walfile.read_log(data / "wal")
    first = segs[0].records[0]
    p = msgpack.unpackb(first.payload, raw=False)
    assert p["op"] == "config"
    p["args"]["rules"] = rules
    first.payload = msgpack.packb(p, use_bin_type=True)
    walfile.rechain(segs)
    walfile.write_log(segs, data / "wal")
    return data


def test_a_log_from_newer_rules_is_refused(fx, workdir):
    data = newer_rules_log(fx, workdir / "data")
    want = "WAL record 1 puts rules 99 in force for the records after it; this build knows " \
           "rules 1 to %d: use a newer hallq" % RULES
    p = hallq("wal", "verify", data, check=False)
    assert p.returncode == 1 and want in p.stdout, p.stdout
    p = hallq("wal", "replay", data, "--into", workdir / "replay", check=False)
    assert p.returncode == 1 and want in p.stderr, p.stderr
    d = start(workdir, fx, "data", manual_clock=True)
    rc, log = d.run_to_exit()
    assert rc == 1 and want in log, log
