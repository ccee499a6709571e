"""Applicants' identity numbers are personal data: the daemon keeps only a
keyed hash (for matching) and a masked form (for display); the raw number
never reaches the disk, not the WAL, not the state, not a replay."""
import os
import stat
import subprocess

from conftest import HALLQ, TUESDAY_10AM

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
