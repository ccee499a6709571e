"""Fixtures that run the real hallqd.

Each daemon gets a temp data dir, TCP port 0 (the port is read back from the
ready line), and a Unix socket in a short temp dir. Start-up waits for the
ready line on stderr with a timeout (never a sleep); stderr is copied to a
log file by a thread for the daemon's whole life. At teardown the daemon is
stopped with SIGTERM and must exit 0, and any sanitizer report in its stderr
fails the test. Whatever happens, no daemon outlives its test: finalizers
SIGKILL what is left, and an atexit hook catches the rest.

HALLQ_BUILD_DIR picks the build (default: <repo>/build)."""
import atexit
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from hallq_client import Client

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HALLQ_BUILD_DIR") or (REPO / "build"))
HALLQD = BUILD / "daemon" / "hallqd"
HALLQ = BUILD / "tools" / "hallq"
FAULTFS = BUILD / "tests" / "faults" / "libfaultfs.so"
DEMO = REPO / "examples" / "demo-hall.yaml"

# 2026-11-24 10:00 in Shanghai (a Tuesday, a working day), for tests on the
# manual clock.
TUESDAY_10AM = 1795485600000
TUESDAY = "20261124"

READY_RE = re.compile(r"^hallqd ready tcp=(127\.0\.0\.1):(\d+) unix=(\S+)"
                      r"(?: http=(127\.0\.0\.1):(\d+))?$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

START_TIMEOUT = float(os.environ.get("HALLQ_START_TIMEOUT", "30"))
# hallqd gives clients 5 s to read their last answers.
STOP_TIMEOUT = float(os.environ.get("HALLQ_STOP_TIMEOUT", "15"))

# Every process started here, so none can outlive the test run.
_LIVE = set()


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait()


def pytest_collection_modifyitems(config, items):
    # Without a build the suite is skipped, unless a build was named (ctest
    # names one): then a missing binary fails every test.
    if not HALLQD.exists() and not os.environ.get("HALLQ_BUILD_DIR"):
        skip = pytest.mark.skip(reason="hallqd not built at %s" % HALLQD)
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test itself failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _die_with_parent():
    # The daemon gets SIGKILL if the test process dies (even by SIGKILL).
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def config_text(start_ms=None, extra=None):
    """The demo hall's config text, with a manual-clock start and textual
    replacements {old: new} (each old text must occur)."""
    text = DEMO.read_text()
    if start_ms is not None:
        line = "  start_ms: %d\n" % start_ms
        m = re.search(r"^  # start_ms:.*\n", text, re.M)
        if m:
            text = text[:m.start()] + line + text[m.end():]
        else:
            assert "\nhall:\n" in "\n" + text
            text = text.replace("hall:\n", "hall:\n" + line, 1)
    for old, new in (extra or {}).items():
        assert old in text, "not in the demo config: %r" % old
        text = text.replace(old, new, 1)
    return text


def write_config(dirpath, start_ms=None, extra=None, name="hall.yaml"):
    """Writes config_text() to DIR/name (mode 0600, it holds tokens)."""
    p = pathlib.Path(dirpath) / name
    p.write_text(config_text(start_ms, extra))
    p.chmod(0o600)
    return p


def wait_until(pred, what, timeout=20.0, every=0.02):
    """Polls pred() until it is true; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "no %s within %.0f s" % (what, timeout)
        time.sleep(every)


def segment_bytes(n):
    """An `extra` for write_config: WAL segments of n bytes (and a max_frame
    whose records fit them: a segment's header, a record's framing and 4 KiB
    for its result, see hall_config_check_records)."""
    return {"segment_bytes: 67108864": "segment_bytes: %d" % n,
            "max_frame: 65536": "max_frame: %d" % min(65536, n - 128 - 76 - 4096)}


class LoadThreads:
    """Load threads that run until the daemon is killed (test_crash.py,
    powerloss.py). A subclass sets self.threads, and self.errors: what a
    thread saw that it should not have."""

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        """Fails on a thread still running 30 s after the kill, or on any
        error a thread recorded."""
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a load thread hung"
        assert not self.errors, self.errors


def subscribe(d, token="display-demo", topics=("line", "call", "window"), since=None,
              unix=False):
    """A connection subscribed to `topics` (from `since` on, when given) and
    the seq subscribe answered."""
    c = d.unix(token) if unix else d.tcp(token)
    args = {"topics": list(topics)}
    if since is not None:
        args["since"] = since
    r = c.ok("subscribe", **args)
    return c, r["seq"]


def events(c, n):
    """The next n pushed events (no response may come in between)."""
    got = []
    while len(got) < n:
        m = c.read()
        assert "event" in m, "a response where an event was expected: %r" % m
        got.append(m)
    return got


class Daemon:
    """One hallqd on one data dir; it can be stopped, killed and started
    again on the same dir (each run gets its own port and log file)."""

    def __init__(self, data, config, sockdir, manual_clock=False, args=(), env=None,
                 logdir=None):
        self.data = pathlib.Path(data)
        self.config = pathlib.Path(config)
        self.sockdir = sockdir
        self.sock = os.path.join(sockdir, "h.sock")
        assert len(self.sock) < 100, self.sock
        self.manual_clock = manual_clock
        self.args = list(args)
        self.env = env
        self.logdir = pathlib.Path(logdir or self.data.parent)
        self.proc = None
        self.port = None
        self.http_port = None   # the HTTP face's (every test's daemon has one)
        self.ready_line = None
        self.logs = []          # one file per run
        self.exit_codes = []    # of runs that ended
        self._drainer = None

    # ---- processes ----
    def command(self):
        cmd = [str(HALLQD), "--config", str(self.config), "--data", str(self.data),
               "--tcp", "127.0.0.1:0", "--unix", self.sock, "--http", "127.0.0.1:0"] + self.args
        if self.manual_clock:
            cmd.append("--manual-clock")
        # HALLQ_WRAPPER runs the daemon under a tool (tools/valgrind.sh sets
        # it to valgrind with --error-exitcode, so a leak fails the stop's
        # exit-0 check).
        return os.environ.get("HALLQ_WRAPPER", "").split() + cmd

    def _spawn(self, cmd):
        path = self.logdir / ("hallqd-%s-%d.log" % (self.data.name, len(self.logs)))
        self.logs.append(path)
        env = dict(os.environ, **(self.env or {}))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env, preexec_fn=_die_with_parent)
        _LIVE.add(proc)
        lines = queue.Queue()

        def drain():
            # Copies stderr to the log for the process's whole life, and
            # hands each line to the starter until it has seen the ready one.
            with open(path, "wb") as f:
                for raw in proc.stderr:
                    f.write(raw)
                    f.flush()
                    lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        return proc, t, lines

    def start(self, timeout=START_TIMEOUT):
        """Starts hallqd and waits for its ready line."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc, self._drainer, lines = self._spawn(self.command())
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError("no ready line within %.0f s:\n%s"
                                     % (timeout, self.log_text()))
            if line is None:
                rc = self._reap()
                raise AssertionError("hallqd exited %s before it was ready:\n%s"
                                     % (rc, self.log_text()))
            if line.startswith("hallqd ready"):
                m = READY_RE.match(line.rstrip("\n"))
                assert m, "malformed ready line %r" % line
                assert m.group(3) == self.sock, line
                self.ready_line = line.rstrip("\n")
                self.port = int(m.group(2))
                assert self.port != 0
                self.http_port = int(m.group(5)) if m.group(5) else None
                return self

    def run_to_exit(self, timeout=START_TIMEOUT):
        """Runs hallqd (expected to refuse to start); returns (rc, stderr)."""
        proc, drainer, _ = self._spawn(self.command())
        try:
            rc = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _LIVE.discard(proc)
        drainer.join(10)
        text = self.logs[-1].read_text(errors="replace")
        self.check_sanitizers(text)
        return rc, text

    def _reap(self):
        rc = self.proc.wait()
        _LIVE.discard(self.proc)
        if self._drainer:
            self._drainer.join(10)
        self.exit_codes.append(rc)
        self.proc = None
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """SIGTERM (or `sig`) and wait: hallqd must exit 0 in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("hallqd did not exit within %.0f s of %s:\n%s"
                                     % (timeout, signal.Signals(sig).name, self.log_tail()))
        rc = self._reap()
        self.check_sanitizers()
        assert rc == 0, "hallqd exited %s after %s:\n%s" % (
            rc, signal.Signals(sig).name, self.log_tail())
        return rc

    def kill(self):
        """SIGKILL, as a crash (or as the last resort)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self._reap()
        self.check_sanitizers()

    def restart(self):
        """A clean stop (exit 0 asserted) and a start on the same dir."""
        self.stop()
        return self.start()

    def crash_restart(self):
        self.kill()
        return self.start()

    # ---- logs ----
    def log_text(self):
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def wait_log(self, needle, timeout=10.0):
        """The log text once it holds `needle` (stderr reaches the log file
        through a thread, a moment after the daemon wrote it)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if needle in text:
                return text
            assert time.monotonic() < deadline, "no %r in the log:\n%s" % (needle, text[-2000:])
            time.sleep(0.01)

    def log_tail(self, n=60):
        return "".join(self.log_text().splitlines(True)[-n:])

    def check_sanitizers(self, text=None):
        text = self.log_text() if text is None else text
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in hallqd's stderr:\n" + text

    # ---- connections ----
    def tcp(self, token=None):
        c = Client.tcp(self.port)
        if token is not None:
            c.hello(token)
        return c

    def unix(self, token=None):
        c = Client.unix(self.sock)
        if token is not None:
            c.hello(token)
        return c

    def kiosk(self):
        return self.tcp("kiosk-demo")

    def admin(self):
        return self.unix("admin-demo")


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="hq-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_daemon(workdir, request):
    """Factory: make_daemon(manual_clock=False, start_ms=None, extra=None,
    args=(), name="data", start=True, env=None) -> Daemon. Every daemon made
    is stopped at teardown (exit 0 asserted), checked for sanitizer reports,
    and killed if anything went wrong."""
    made = []

    def make(manual_clock=False, start_ms=None, extra=None, args=(), name="data", start=True,
             env=None):
        cfg = write_config(workdir, start_ms=start_ms, extra=extra, name=name + ".yaml")
        data = workdir / name
        data.mkdir(exist_ok=True)
        sockdir = tempfile.mkdtemp(prefix="hqs-")
        d = Daemon(data, cfg, sockdir, manual_clock=manual_clock, args=args, env=env,
                   logdir=workdir)
        made.append(d)
        if start:
            d.start()
        return d

    def finish():
        errors = []
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for d in made:
                print("---- hallqd on %s: the end of its stderr ----\n%s"
                      % (d.data.name, d.log_tail(40)))
        for d in made:
            try:
                if d.running():
                    d.stop()
                else:
                    d.check_sanitizers()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                if d.proc is not None:
                    d.proc.kill()
                    d._reap()
                shutil.rmtree(d.sockdir, ignore_errors=True)
        assert not errors, "\n\n".join(errors)

    request.addfinalizer(finish)
    return make


@pytest.fixture
def daemon(make_daemon):
    """hallqd of the demo hall on the manual clock, Tuesday 10:00."""
    return make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
