"""Small guards of the hall's secrets: the config file holds tokens (a
world-readable one is warned about), the Unix socket is 0660, TCP binds to
loopback unless told otherwise, and a config with the demo's public tokens
only on loopback unless --demo; hallqd --check-config."""
import os
import re
import stat
import subprocess

from conftest import DEMO, HALLQ, HALLQD, STOP_TIMEOUT, config_text, write_config


def test_world_readable_config_is_warned_about(make_daemon):
    d = make_daemon(start=False)
    d.config.chmod(0o644)
    d.start()
    d.wait_log("readable by everyone")
    d.stop()
    d.config.chmod(0o600)
    d.start()
    assert "readable by everyone" not in d.logs[-1].read_text()  # this run's log


def test_unix_socket_mode(daemon):
    mode = stat.S_IMODE(os.stat(daemon.sock).st_mode)
    assert mode == 0o660, oct(mode)


def test_default_tcp_bind_is_loopback():
    text = DEMO.read_text()
    assert "addr: 127.0.0.1:7420" in text


def check_config(*args, cwd=None):
    p = subprocess.run([str(HALLQD.resolve()), "--check-config"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=30, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def test_check_config(workdir):
    good = write_config(workdir, name="good.yaml")
    assert check_config(good, cwd=workdir)[:2] == (0, "ok\n")
    bad = write_config(workdir, name="bad.yaml", extra={"return_behind: 3": "return_behind: x"})
    rc, out, err = check_config(bad, "--data", workdir / "nodata", cwd=workdir)
    line = 1 + bad.read_text()[:bad.read_text().index("return_behind: x")].count("\n")
    assert (rc, out) == (2, "")
    assert err.startswith("%s:%d: rules.return_behind:" % (bad, line)), err
    rc, out, err = check_config(workdir / "absent.yaml", cwd=workdir)
    assert rc == 2 and "absent.yaml" in err
    # No data dir touched: neither the one named nor the default.
    assert sorted(p.name for p in workdir.iterdir()) == ["bad.yaml", "good.yaml"]


def test_the_demo_tokens_stay_on_loopback(make_daemon, workdir):
    # Any of the demo's public tokens makes a config "the demo": a copy
    # with all but one token changed still is.
    text = config_text()
    toks = re.findall(r"\{token: ([^,}\s]+)", text)
    for t in toks[1:]:
        text = text.replace("{token: %s," % t, "{token: %s-%s," % (t, "s3cret" * 4))
    copy = workdir / "copy.yaml"
    copy.write_text(text)
    copy.chmod(0o600)
    own = workdir / "own.yaml"
    own.write_text(text.replace("{token: %s," % toks[0], "{token: k-%s," % ("s3cret" * 4)))
    own.chmod(0o600)
    for cfg in (DEMO, copy):
        rc, out, err = check_config(cfg, "--tcp", "0.0.0.0:7420")
        assert rc == 1 and "demo hall's tokens" in err and "--demo" in err, err
        assert check_config(cfg, "--tcp", "0.0.0.0:7420", "--demo")[:2] == (0, "ok\n")
        for lo in ("127.0.0.1:7420", "127.0.0.2:1", "[::1]:7420", "::ffff:127.0.0.1:7420"):
            assert check_config(cfg, "--tcp", lo)[:2] == (0, "ok\n"), lo
    for addr in ("0.0.0.0:7420", "[::]:7420", "192.168.1.10:7420"):
        assert check_config(own, "--tcp", addr)[:2] == (0, "ok\n")
        assert check_config(DEMO, "--tcp", addr)[0] == 1
    # The listener in the file counts as --tcp does.
    netfile = write_config(workdir, name="net.yaml",
                           extra={"addr: 127.0.0.1:7420": "addr: 0.0.0.0:7420"})
    assert check_config(netfile)[0] == 1

    # hallqd itself: refused before touching its data dir (exit 1)...
    d = make_daemon(start=False, args=("--tcp", "0.0.0.0:0"))
    rc, err = d.run_to_exit()
    assert rc == 1 and "demo hall's tokens" in err and "--demo" in err, err
    assert list(d.data.iterdir()) == []
    # ...and with --demo it serves.
    p = subprocess.Popen([str(HALLQD), "--config", d.config, "--data", d.data, "--tcp",
                          "0.0.0.0:0", "--unix", d.sock, "--demo"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            if line.startswith("hallqd ready"):
                assert "tcp=0.0.0.0:" in line
                break
        else:
            raise AssertionError("hallqd --demo exited %s" % p.wait())
        p.terminate()
        p.stderr.read()
        assert p.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_read_only_serving_of_the_demo_stays_on_loopback(daemon, workdir):
    # --read-only takes the config from the state (hashed tokens): the
    # demo's tokens are recognised there too.
    daemon.kiosk().ok("ticket.take", line="A")
    daemon.stop()
    r = subprocess.run([str(HALLQ), "wal", "replay", daemon.data, "--into", workdir / "ro"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    p = subprocess.run([str(HALLQD), "--data", workdir / "ro", "--read-only", "--tcp",
                        "0.0.0.0:0", "--unix", workdir / "ro" / "s.sock"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "demo hall's tokens" in p.stderr, p.stderr
