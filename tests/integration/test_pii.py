"""Applicants' identity numbers are personal data: the daemon keeps only a
keyed hash (for matching) and a masked form (for display); the raw number
never reaches the disk, not the WAL, not the state, not a replay."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import HALLQ, TUESDAY_10AM, wait_until

RAW = "110101199003077777"
ORG = "91110108MA01ABCD9X"


def all_bytes(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    yield p, fh.read()


def test_raw_id_never_reaches_disk(daemon, workdir):
    daemon.kiosk().ok("ticket.take", line="B")
    w = daemon.tcp("window-W03")
    w.ok("window.state", state="open")
    w.ok("window.call")
    person = {"kind": "person", "id": RAW, "name": "Zhang San",
              "id_hash": "forged", "extra_copy": RAW}
    r = w.ok("window.intake", service="S01", applicant=person,
             materials=["M01", "M02", "M03"], outcome="accept", idem="i1")
    # A retry with the same idem is recognised (the hash is deterministic).
    assert w.ok("window.intake", service="S01", applicant=person,
                materials=["M01", "M02", "M03"], outcome="accept", idem="i1") == r
    w.ok("window.intake", service="S04", applicant={"kind": "org", "id": ORG},
         materials=["M01"], outcome="notify")
    # Bad ids are still named.
    code, msg = w.err("window.intake", service="S01", applicant={"kind": "person", "id": ""},
                      materials=[], outcome="notify")
    assert code == "bad_request" and "args.applicant.id" in msg
    code, msg = w.err("window.intake", service="S01", applicant={"kind": "person", "id": 7},
                      materials=[], outcome="notify")
    assert code == "bad_request" and "args.applicant.id" in msg
    code, msg = w.err("window.intake", service="S01", applicant={"kind": "person"},
                      materials=[], outcome="notify")
    assert code == "bad_request" and "args.applicant.id" in msg
    digest = daemon.admin().ok("digest")
    daemon.stop()
    subprocess.run([str(HALLQ), "wal", "replay", daemon.data, "--into", workdir / "replayed"],
                   check=True, capture_output=True)
    found_masked = False
    for root in (daemon.data, workdir / "replayed"):
        for path, data in all_bytes(root):
            for raw in (RAW, ORG):
                assert raw.encode() not in data, "%s holds the raw id %s" % (path, raw)
            found_masked |= b"110***********7777" in data
    assert found_masked, "the masked form is kept for display"
    key = daemon.data / "pii.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32
    daemon.start()
    assert daemon.admin().ok("digest") == digest


def intake(d, outcome="accept"):
    d.kiosk().ok("ticket.take", line="B")
    w = d.tcp("window-W03")
    w.ok("window.state", state="open")
    w.ok("window.call")
    if outcome == "accept":
        return w.ok("window.intake", service="S01", applicant={"kind": "person", "id": RAW},
                    materials=["M01", "M02", "M03"], outcome="accept")
    return w.ok("window.intake", service="S01", applicant={"kind": "person", "id": RAW},
                materials=["M01"], outcome="notify")


@pytest.mark.parametrize("outcome", ["accept", "notify"])
def test_a_missing_key_is_refused_once_there_are_intakes(daemon, outcome):
    # accept opens a case (the state holds it); notify opens none, and the
    # WAL's window.intake record still counts.
    intake(daemon, outcome)
    daemon.stop()
    key = daemon.data / "pii.key"
    saved = key.read_bytes()
    key.unlink()
    rc, err = daemon.run_to_exit()
    assert rc == 1, err
    assert str(key) in err and "Restore pii.key from your backup" in err, err
    assert ("cases" if outcome == "accept" else "window.intake") in err, err
    assert not key.exists()  # no new key was made
    key.write_bytes(saved)
    key.chmod(0o600)
    daemon.start()
    daemon.admin().ok("ping")


def test_a_hall_without_intakes_gets_a_new_key(daemon):
    daemon.kiosk().ok("ticket.take", line="A")
    daemon.stop()
    key = daemon.data / "pii.key"
    old = key.read_bytes()
    key.unlink()
    (daemon.data / "pii.key.tmp").write_bytes(b"leftover")  # of a crash at a first start
    daemon.start()
    assert key.read_bytes() != old and len(key.read_bytes()) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (daemon.data / "pii.key.tmp").exists()


def strace_works():
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not strace_works(), reason="needs a working strace")
def test_a_new_key_is_made_durably(make_daemon, workdir):
    # strace -D: the tracer is a detached grandchild, so hallqd is the
    # process the fixture signals. The key's bytes are synced before the rename puts them in place, and
    # the directory after it: a power loss leaves no key or the whole key.
    # LeakSanitizer cannot run under ptrace (a sanitizer build).
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0") if x)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, start=False,
                    env={"ASAN_OPTIONS": asan})
    trace = workdir / "strace.txt"
    plain = d.command
    d.command = lambda: ["strace", "-D", "-f", "-o", str(trace), "-e",
                         "trace=openat,write,fsync,rename,renameat,renameat2,close"] + plain()
    d.start()
    d.stop()
    # strace -D runs detached: it ends after hallqd, its last line says so.
    wait_until(lambda: "+++ exited with 0 +++" in trace.read_text(), "the trace's end")
    lines = trace.read_text().splitlines()
    tmp = "%s/pii.key.tmp" % d.data

    def index(pred, after=-1):
        for i in range(after + 1, len(lines)):
            if pred(lines[i]):
                return i
        raise AssertionError("not in the trace after line %d:\n%s"
                             % (after, "\n".join(x for x in lines if "pii" in x)))

    def fd_of(line):
        return line.rsplit("= ", 1)[1].split()[0]

    o = index(lambda x: "openat(" in x and '"%s"' % tmp in x and "O_CREAT" in x)
    fd = fd_of(lines[o])
    w = index(lambda x: "write(%s," % fd in x, o)
    s = index(lambda x: "fsync(%s)" % fd in x and x.rstrip().endswith("= 0"), w)
    r = index(lambda x: "rename" in x and '"%s"' % tmp in x and '"%s/pii.key"' % d.data in x, s)
    od = index(lambda x: "openat(" in x and '"%s"' % d.data in x and "O_DIRECTORY" in x, r)
    index(lambda x: "fsync(%s)" % fd_of(lines[od]) in x and x.rstrip().endswith("= 0"), od)


NAMES = {"张三": "张*", "欧阳娜娜": "欧***", "Zhang San": "Z********", "Li": "L*"}


def intake_names(d):
    k, w = d.kiosk(), d.tcp("window-W03")
    w.ok("window.state", state="open")
    cases = []
    for name in NAMES:
        k.ok("ticket.take", line="B")
        w.ok("window.call")
        cases.append(w.ok("window.intake", service="S01",
                          applicant={"kind": "person", "id": RAW, "name": name},
                          materials=["M01", "M02", "M03"], outcome="accept")["case_no"])
        w.ok("window.done")
    return cases


def logged_names(data):
    p = subprocess.run([str(HALLQ), "wal", "dump", data, "--json", "--op", "window.intake"],
                       check=True, capture_output=True, text=True)
    return [json.loads(x)["args"]["applicant"].get("name") for x in p.stdout.splitlines()]


@pytest.mark.parametrize("mode", ["mask", "keep", None])
def test_applicants_names(make_daemon, workdir, mode):
    # The demo hall says mask; without the key, mask is the default.
    extra = {"names: mask": "names: keep"} if mode == "keep" else \
        {"pii:\n  names: mask": "pii: {}"} if mode is None else {}
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=extra)
    cases = intake_names(d)
    for c in cases:  # the cases are opened as with any name
        assert d.admin().ok("case.get", case_no=c)["state"] == "review"
    d.stop()
    got = logged_names(d.data)
    if mode == "keep":
        assert got == list(NAMES)
        return
    assert got == list(NAMES.values())
    subprocess.run([str(HALLQ), "wal", "replay", d.data, "--into", workdir / "replayed"],
                   check=True, capture_output=True)
    for root in (d.data, workdir / "replayed"):
        for path, data in all_bytes(root):
            for name in NAMES:  # (two bytes could match by chance in binary data)
                if len(name.encode()) > 4:
                    assert name.encode() not in data, "%s holds the name %s" % (path, name)


def test_pii_names_is_checked(make_daemon):
    d = make_daemon(start=False, extra={"names: mask": "names: hide"})
    rc, err = d.run_to_exit()
    assert rc == 1 and "pii.names: expected mask or keep" in err, err
