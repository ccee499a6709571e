"""Running hallqd as an operator's service (issue 18): log levels and the
journald priority prefix, the start-up summary, refused connections logged
with peer and reason (never the token) and rate-limited, systemd's notify
protocol (READY=1, STOPPING=1), the default config of an installed hallqd
and no source path compiled in."""
import os
import pathlib
import re
import socket
import subprocess
import tempfile

from conftest import DEMO, HALLQD, REPO, write_config
from hallq_client import Client


def run(args, env=None, timeout=30, stderr_path=None):
    e = dict(os.environ)
    e.pop("JOURNAL_STREAM", None)
    e.pop("NOTIFY_SOCKET", None)
    e.update(env or {})
    return subprocess.run([str(HALLQD)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_every_line_has_a_level_and_the_summary(make_daemon):
    d = make_daemon()
    text = d.wait_log("hallqd: info: hallqd ")
    for line in text.splitlines():
        if line.startswith("hallqd ready "):
            continue
        assert re.match(r"^hallqd: (error|warn|info|debug): ", line), line
    m = re.search(r"^hallqd: info: hallqd (\S+) \(rules (\d+), wal format (\d+)\): hall (\S+); "
                  r"tcp=127\.0\.0\.1:(\d+) unix=(\S+) http=127\.0\.0\.1:\d+; data (\S+); "
                  r"at LSN (\d+); checkpoint every (\d+) ms; fsync always$", text, re.M)
    assert m, text
    assert m.group(4) == "demo-city" and int(m.group(5)) == d.port and m.group(6) == d.sock
    assert m.group(7) == str(d.data) and int(m.group(8)) >= 1
    v = run(["--version"]).stdout
    assert v.startswith("hallqd %s, rules %s, wal format %s" % m.group(1, 2, 3)), v


def test_log_level(make_daemon, workdir):
    d = make_daemon(args=["--log-level", "warn"])
    d.kiosk().ok("ticket.take", line="A")
    d.stop()
    text = d.log_text()
    assert "hallqd: info:" not in text, text
    assert "hallqd ready " in text  # the ready line is not a log line
    p = run(["--log-level", "loud", "--data", workdir / "x"])
    assert p.returncode == 2 and "--log-level" in p.stderr, p.stderr
    assert not (workdir / "x").exists()


def test_journald_priority_prefix(workdir):
    # JOURNAL_STREAM names stderr's device and inode when systemd connected
    # it to the journal: each line then starts with its priority.
    cfg = write_config(workdir, extra={"return_behind: 3": "return_behind: x"})
    err = workdir / "stderr"
    for journal in (False, True):
        with open(err, "w") as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if journal:
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            p = subprocess.run([str(HALLQD), "--config", str(cfg), "--data", str(workdir / "d")],
                               stderr=f, env=env, timeout=30)
        assert p.returncode == 1
        text = err.read_text()
        prefix = "<3>" if journal else ""
        assert text.startswith(prefix + "hallqd: error: config: "), text
    # Another stream's JOURNAL_STREAM (stderr redirected since) is ignored.
    p = run(["--config", cfg, "--data", workdir / "d"], env={"JOURNAL_STREAM": "1:2"})
    assert p.stderr.startswith("hallqd: error: "), p.stderr


def test_refused_hellos_and_bad_frames_are_logged(make_daemon):
    d = make_daemon()
    secret = "not-a-token-s3cret"
    c = Client.tcp(d.port)
    local = "127.0.0.1:%d" % c.sock.getsockname()[1]
    code, _ = c.err("hello", token=secret, client="pytest")
    assert code == "unauthenticated"
    text = d.wait_log("hello refused from tcp %s: token not accepted" % local)
    assert secret not in text
    # A kiosk token on the Unix socket: refused there, the peer's pid shown.
    u = Client.unix(d.sock)
    u.err("hello", token="kiosk-demo", client="pytest")
    text = d.wait_log("hello refused from unix pid %d uid %d:" % (os.getpid(), os.getuid()))
    assert "kiosk-demo" not in text
    # A zero-length frame, and a first request that is not hello.
    b = Client.tcp(d.port)
    b.send_raw(b"\0\0\0\0")
    d.wait_log("bad frame from tcp 127.0.0.1:%d: frame: length 0" % b.sock.getsockname()[1])
    n = Client.tcp(d.port)
    n.err("ping")
    d.wait_log("connection refused from tcp 127.0.0.1:%d: the first request is not a hello"
               % n.sock.getsockname()[1])


def test_refusals_are_rate_limited(make_daemon):
    d = make_daemon()
    for i in range(40):
        c = Client.tcp(d.port)
        c.err("hello", token="wrong-%d" % i, client="pytest")
        c.close()
    ok = d.kiosk()  # a marker after the 40: every refusal was logged by then
    ok.ok("ping")
    text = d.log_text()
    assert text.count("hello refused from tcp") == 10, text  # HQ_LOG_BURST in 10 s


def test_notify_ready_then_stopping(make_daemon, workdir):
    sockdir = tempfile.mkdtemp(prefix="hqn-")
    path = os.path.join(sockdir, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    try:
        d = make_daemon(env=dict(os.environ, NOTIFY_SOCKET=path), start=False)
        d.start()
        msgs = []
        while not any("READY=1" in m for m in msgs):
            msgs.append(s.recv(4096).decode())
        ready = msgs[-1]
        assert "STATUS=serving hall demo-city at LSN" in ready, msgs
        assert "MAINPID=%d" % d.proc.pid in ready
        d.stop()
        stopping = s.recv(4096).decode()
        assert stopping.startswith("STOPPING=1"), stopping
    finally:
        s.close()
        os.unlink(path)
        os.rmdir(sockdir)


def test_default_config_is_installed_path(workdir):
    # Without --config: the installed /etc path, never the source tree's
    # demo hall; --demo alone names the installed demo hall.
    p = run(["--data", workdir / "d"])
    assert p.returncode == 1 and re.search(r"config: /\S*etc/hallq/hall\.yaml: ", p.stderr), \
        p.stderr
    # ... and says what to do instead (a newcomer in a source tree).
    assert "give --config FILE" in p.stderr and "--demo" in p.stderr, p.stderr
    p = run(["--demo", "--data", workdir / "d"])
    assert p.returncode == 1 and re.search(r"config: /\S*share/hallq/examples/demo-hall\.yaml: ",
                                           p.stderr), p.stderr
    h = run(["--help"]).stdout
    assert "etc/hallq/hall.yaml" in h and "--log-level" in h
    blob = HALLQD.read_bytes()
    assert (str(REPO) + "/examples").encode() not in blob
    assert DEMO.exists()


def test_a_slow_sync_is_logged_with_its_duration(make_daemon, workdir):
    # The fault shim holds the WAL's fdatasync while a file exists: held
    # 0.4 s, the sync is logged as slow (at 250 ms and more).
    import time
    from conftest import FAULTFS, wait_until
    hold = workdir / "hold"
    env = dict(os.environ, LD_PRELOAD=str(FAULTFS), HALLQ_FAULT="none:1:EIO",
               HALLQ_FAULT_HOLD=str(hold),  # ASan wants its runtime first (test_faults.py):
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1")
    d = make_daemon(env=env)
    k = d.kiosk()
    k.ok("ticket.take", line="A")
    hold.write_text("")
    k.send("ticket.take", {"line": "A"})
    wait_until((workdir / "hold.held").exists, "held fdatasync")
    time.sleep(0.4)  # the disk is this slow: the duration is what is tested
    hold.unlink()
    assert k.read_response()["ok"]
    # (A loaded machine may log a slow sync of its own too: the held one is
    # the longest.)
    def longest():
        found = re.findall(r"hallqd: warn: wal: a write and sync took (\d+) ms", d.log_text())
        return max([int(x) for x in found] or [0])
    wait_until(lambda: longest() >= 400, "the held sync's line")
    assert longest() < 60000


def test_a_silent_connection_is_logged_with_its_peer(make_daemon):
    d = make_daemon(extra={"hello_timeout_s: 10": "hello_timeout_s: 1"})
    c = Client.tcp(d.port)
    assert c.is_closed(timeout=10)
    d.wait_log("connection closed from tcp 127.0.0.1:%d: no hello within 1 s"
               % c.sock.getsockname()[1])
