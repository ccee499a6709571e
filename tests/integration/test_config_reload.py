"""config.reload and SIGHUP: the file is checked first and a bad one keeps
the config in force (the answer names the file and the line); a good one
becomes a WAL record, so a restart and a replay into a fresh data dir put
the same config in force."""
import shutil
import signal

from conftest import TUESDAY_10AM

PERSON = {"kind": "person", "id": "110101199003077777"}
LEASE_300 = "claim_lease_s: 300"


def lease_of_a_claim(d):
    """Accepts an S03 case (reviewed by pol) and returns the claim's lease
    length in seconds."""
    d.kiosk().ok("ticket.take", line="A")
    w = d.tcp("window-W01")
    w.ok("window.state", state="open")
    assert w.ok("window.call")["ticket"] is not None
    w.ok("window.intake", service="S03", applicant=PERSON, materials=["M02", "M04", "M05"],
         outcome="accept")
    w.ok("window.done")
    dep = d.unix("dept-pol")
    r = dep.ok("review.claim")
    now = d.admin().ok("ping")["now_ms"]
    return (r["lease_until_ms"] - now) // 1000


def rewrite(d, old, new):
    text = d.config.read_text()
    assert old in text, old
    d.config.write_text(text.replace(old, new, 1))


def test_reload_puts_the_new_config_in_force(make_daemon, workdir):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    a = d.admin()
    assert a.ok("config.reload") == {"version": 1, "changed": False}
    rewrite(d, LEASE_300, "claim_lease_s: 60")
    assert a.ok("config.reload") == {"version": 2}
    assert lease_of_a_claim(d) == 60
    digest = a.ok("digest")

    # A restart keeps it (the file says the same), and so does a replay of
    # the WAL alone into a fresh data dir with the original file.
    d.crash_restart()
    assert d.admin().ok("digest") == digest
    fresh = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, name="fresh", start=False)
    shutil.copytree(d.data / "wal", fresh.data / "wal")
    shutil.copy2(d.data / "pii.key", fresh.data / "pii.key")  # the hall has intakes
    rewrite(fresh, LEASE_300, "claim_lease_s: 60")
    fresh.start()
    assert fresh.admin().ok("digest") == digest


def test_reload_with_a_bad_file_keeps_the_config(daemon):
    a = daemon.admin()
    good = daemon.config.read_text()
    for bad, words in [
        (good.replace("    - 2027-01-01", "    - 2027-13-01"), ["2027-13-01"]),
        (good.replace("{id: W06,", "{id: W05,"), ["W05"]),
        (good.replace("{id: W06, lines: [A, B, C]", "{id: W06, lines: [A, B, Q]"), ["Q"]),
        (good.replace("hall:\n  id: demo-city", "hall:\n  id: other-hall"), ["other-hall"]),
        ("hall: [\n", []),
    ]:
        assert bad != good
        daemon.config.write_text(bad)
        code, msg = a.err("config.reload")
        assert code == "bad_request", msg
        assert str(daemon.config) in msg, msg
        for w in words:
            assert w in msg, (w, msg)
    daemon.config.write_text(good)
    assert a.ok("config.reload") == {"version": 1, "changed": False}
    assert lease_of_a_claim(daemon) == 300


def test_reload_is_for_admins_only(daemon):
    code, _ = daemon.kiosk().err("config.reload")
    assert code == "forbidden"
    code, _ = daemon.unix("dept-mkt").err("config.reload")
    assert code == "forbidden"


def test_sighup_reloads_and_refuses_a_bad_file(daemon):
    good = daemon.config.read_text()
    daemon.config.write_text(good.replace("{id: W06,", "{id: W05,"))
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_log("SIGHUP: config reload refused")
    assert "W05" in daemon.log_text()

    daemon.config.write_text(good.replace(LEASE_300, "claim_lease_s: 90"))
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_log("config reload (SIGHUP): the new config is in force")
    assert lease_of_a_claim(daemon) == 90
    assert daemon.admin().ok("config.reload") == {"version": 2, "changed": False}


def test_a_bad_config_does_not_start(make_daemon):
    d = make_daemon(start=False, extra={"{id: W04, lines: [C, D]": "{id: W04, lines: [C, Z]"})
    rc, err = d.run_to_exit()
    assert rc == 1, err
    line = d.config.read_text().split("{id: W04")[0].count("\n") + 1
    assert "%s:%d:" % (d.config, line) in err and "unknown line 'Z'" in err, err
    assert "ready" not in err
