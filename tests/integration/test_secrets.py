"""No secrets on disk: the hall's tokens reach the WAL and the state only as
salted hashes (a busy day, a reload, a restart and a replay leave no token
in any file), an unchanged file is recognised as unchanged across a
restart, and a log with raw tokens (as builds before 0.2 wrote it, and as
hallq-walgen still writes it) replays into a state that holds none."""
import json
import re
import subprocess

from conftest import DEMO, HALLQ, TUESDAY_10AM, BUILD

MIN = 60 * 1000
PERSON = {"kind": "person", "id": "110101199003077777", "name": "张三"}
EXTRA = "  - {token: extra-secret-kiosk-token, role: kiosk, id: K9}\n"


def hallq(*args):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


def demo_tokens():
    toks = re.findall(r"\{token: ([^,}\s]+)", DEMO.read_text())
    assert "admin-demo" in toks and len(toks) == 14, toks
    return toks + ["extra-secret-kiosk-token"]


def files_holding(dirs, needles):
    """{(file, needle)} for every file under dirs holding a needle."""
    found = set()
    for d in dirs:
        for f in ([d] if d.is_file() else d.rglob("*")):
            if f.is_file():
                data = f.read_bytes()
                found |= {(str(f), n) for n in needles if n.encode() in data}
    return found


def config_records(data):
    rows = [json.loads(x) for x in hallq("wal", "dump", data, "--json").stdout.splitlines()]
    return [r for r in rows if r["op"] in ("config", "config.reload")]


def test_no_token_reaches_the_disk(daemon, workdir):
    d = daemon
    k, a, w = d.kiosk(), d.admin(), d.tcp("window-W03")
    w.ok("window.state", state="open")
    for line in "ABBA":
        k.ok("ticket.take", line=line)
    w.ok("window.call")
    w.ok("window.intake", service="S01", applicant=PERSON, materials=["M01", "M02", "M03"],
         outcome="accept")
    w.ok("window.done")
    # A reload with one more token: it works at once, and reaches the disk
    # hashed like the others.
    d.config.write_text(d.config.read_text() + EXTRA)
    v = a.ok("config.reload")["version"]
    d.tcp("extra-secret-kiosk-token").ok("ticket.take", line="C")
    assert a.ok("config.reload") == {"version": v, "changed": False}
    a.ok("clock.advance", ms=20 * MIN)
    w.ok("window.call")
    d.stop()
    # An unchanged file after a restart: no new config record.
    before = config_records(d.data)
    d.start()
    assert len(config_records(d.data)) == len(before) == 2
    d.admin().ok("ping")
    d.tcp("extra-secret-kiosk-token").ok("ticket.take", line="C")
    d.stop()

    replay = hallq("wal", "replay", d.data, "--into", workdir / "replay")
    toks = demo_tokens()
    assert files_holding([d.data, workdir / "replay"], toks) == set()
    for t in toks:
        assert t not in replay.stdout + replay.stderr

    # The dump shows hashes, all with one salt (the hall's).
    dump = hallq("wal", "dump", d.data, "--json").stdout
    assert not [t for t in toks if t in dump]
    salts = set()
    for r in before:
        text = r["args"]["text"]
        hashes = re.findall(r'token_hash: "b2:([0-9a-f]{32}):[0-9a-f]{64}"', text)
        assert len(hashes) == text.count("role:") and hashes, text
        salts |= set(hashes)
    assert len(salts) == 1


def test_a_log_with_raw_tokens_replays_to_hashes(workdir, make_daemon):
    # hallq-walgen writes its config record with the file's raw text, as
    # builds before 0.2 did.
    gen = workdir / "gen"
    subprocess.run([str(BUILD / "tools" / "hallq-walgen"), "--out", gen, "--records", "300",
                    "--config", DEMO], check=True, capture_output=True, timeout=120)
    toks = demo_tokens()[:-1]
    assert files_holding([gen / "wal"], ["admin-demo"])  # the old form, as written
    hallq("wal", "replay", gen, "--into", workdir / "replay")
    assert files_holding([workdir / "replay"], toks) == set()
    # hallqd recovers the same log: the state holds hashes, the tokens
    # authenticate, and the file (the same config) is recognised as the
    # one in force (the salt derived from the hall id): no new record.
    d = make_daemon(start=False)
    d.data.rmdir()
    gen.rename(d.data)
    d.config.write_text(DEMO.read_text())
    d.start()
    d.admin().ok("ping")
    d.stop()
    assert len(config_records(d.data)) == 1
    assert files_holding([p for p in d.data.iterdir() if p.name != "wal"], toks) == set()
