"""Fixtures that run the real hallqd: a temp data dir, port 0, a Unix
socket in a short temp dir, the ready line read from stderr (no sleeps),
SIGTERM at the end with exit 0 asserted, sanitizer reports failing the
test."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from hallq_client import Client

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HALLQ_BUILD_DIR", REPO / "build"))
HALLQD = BUILD / "daemon" / "hallqd"
HALLQ = BUILD / "tools" / "hallq"
FAULTFS = BUILD / "tests" / "faults" / "libfaultfs.so"
DEMO = REPO / "examples" / "demo-hall.yaml"

# 2026-11-24 10:00 in Shanghai (a Tuesday), for tests on the manual clock.
TUESDAY_10AM = 1795485600000

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def write_config(dirpath, start_ms=None, extra=None):
    """The demo hall's config, with a manual-clock start and extra text."""
    text = DEMO.read_text()
    if start_ms is not None:
        text = text.replace("hall:\n", "hall:\n  start_ms: %d\n" % start_ms, 1)
    for old, new in (extra or {}).items():
        assert old in text, old
        text = text.replace(old, new, 1)
    p = pathlib.Path(dirpath) / "hall.yaml"
    p.write_text(text)
    p.chmod(0o600)
    return p


class Daemon:
    """One hallqd process on a data dir; restartable on the same dir."""

    def __init__(self, data, config, sockdir, manual_clock=False, args=(), env=None):
        self.data = pathlib.Path(data)
        self.config = config
        self.sock = os.path.join(sockdir, "h.sock")
        self.manual_clock = manual_clock
        self.args = list(args)
        self.env = env
        self.proc = None
        self.port = None
        self.logs = []

    def start(self, expect_ready=True, timeout=30.0):
        cmd = [str(HALLQD), "--config", str(self.config), "--data", str(self.data),
               "--tcp", "127.0.0.1:0", "--unix", self.sock] + self.args
        if self.manual_clock:
            cmd.append("--manual-clock")
        log = open(self.data.parent / ("hallqd-%d.log" % len(self.logs)), "w+")
        self.logs.append(log)
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        if not expect_ready:
            return self.proc
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self.proc.stderr.readline()
            if not line:
                self.proc.wait()
                raise AssertionError("hallqd exited (%s) before ready:\n%s"
                                     % (self.proc.returncode, "".join(lines)))
            lines.append(line)
            log.write(line)
            m = re.match(r"hallqd ready tcp=([\d.]+):(\d+) unix=(\S+)", line)
            if m:
                self.port = int(m.group(2))
                assert m.group(3) == self.sock
                break
            assert time.monotonic() < deadline, "no ready line in time"
        # Keep draining stderr into the log so the daemon never blocks.
        import threading

        def drain(p=self.proc, f=log):
            for ln in p.stderr:
                f.write(ln)
                f.flush()

        self.drainer = threading.Thread(target=drain, daemon=True)
        self.drainer.start()
        return self.proc

    def log_text(self):
        out = []
        for f in self.logs:
            f.flush()
            f.seek(0)
            out.append(f.read())
        return "".join(out)

    def stop(self, timeout=30.0):
        """SIGTERM and wait: hallqd must exit 0."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout)
            self.drainer.join(5)
            assert rc == 0, "hallqd exited %s:\n%s" % (rc, self.log_text())
        self.proc = None

    def kill(self):
        """SIGKILL, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def tcp(self, token=None):
        c = Client.tcp(self.port)
        if token:
            c.hello(token)
        return c

    def unix(self, token=None):
        c = Client.unix(self.sock)
        if token:
            c.hello(token)
        return c

    def kiosk(self):
        return self.tcp("kiosk-demo")

    def admin(self):
        return self.unix("admin-demo")

    def check_sanitizers(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="hq-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_daemon(workdir):
    """Factory: make_daemon(manual_clock=..., start_ms=..., extra=...)."""
    made = []

    def make(manual_clock=False, start_ms=None, extra=None, args=(), name="data", start=True,
             env=None):
        cfg = write_config(workdir, start_ms=start_ms, extra=extra)
        data = workdir / name
        data.mkdir(exist_ok=True)
        sockdir = tempfile.mkdtemp(prefix="hqs-")
        d = Daemon(data, cfg, sockdir, manual_clock=manual_clock, args=args, env=env)
        d.sockdir = sockdir
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in made:
        try:
            if d.proc and d.proc.poll() is None:
                d.stop()
            d.check_sanitizers()
        finally:
            d.kill()
            shutil.rmtree(d.sockdir, ignore_errors=True)


@pytest.fixture
def daemon(make_daemon):
    return make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
