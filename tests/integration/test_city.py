"""The city (docs/CITY.md): hallq-ship at three halls and hallq-centre
over a nats-server (JetStream) and a PostgreSQL cluster this test starts
in a temporary directory (loopback / a Unix socket, stopped at the end).

What it shows: every record of every hall's WAL arrives in
hallq.record exactly once (LSN 1..N, the chain hash of each row equal
to the WAL's), the halls' rows end at N with state ok, also when the
shippers and the centre are SIGKILLed at random moments; and a tampered
record (CRC fixed) makes its hall broken at that LSN while the others
load on."""
import fcntl
import os
import pathlib
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, DEMO, TUESDAY_10AM

SHIP = BUILD / "city" / "hallq-ship"
CENTRE = BUILD / "city" / "hallq-centre"
WALGEN = BUILD / "tools" / "hallq-walgen"
PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
RECORDS = 1500
HALLS = ["city-centre", "county-01", "town-007"]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(NATS), reason="nats-server is not installed"),
    pytest.mark.skipif(not (PGBIN / "initdb").exists(),
                       reason="PostgreSQL 15 (initdb) is not installed"),
    pytest.mark.skipif(not SHIP.exists() or not CENTRE.exists(),
                       reason="hallq-ship/hallq-centre not built (libnats-dev, libpq-dev)"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=60.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


def wal_records(wal):
    """(lsn, chain hash, offset, segment path) of every record, read from the segments."""
    out = []
    for seg in sorted(pathlib.Path(wal).glob("*.wal")):
        b = seg.read_bytes()
        off = 128
        while off + 76 <= len(b):
            n = struct.unpack_from("<I", b, off)[0]
            if n == 0:
                break
            lsn = struct.unpack_from("<Q", b, off + 8)[0]
            out.append((lsn, b[off + 40 + n:off + 72 + n], off, seg))
            off += 76 + n
    return out


class Nats:
    def __init__(self, tmp):
        self.port = free_port()
        self.store = tmp / "nats"
        self.log = open(tmp / "nats.log", "ab")
        self.url = "nats://127.0.0.1:%d" % self.port
        self.start()

    def start(self):
        self.proc = subprocess.Popen([NATS, "-js", "-sd", str(self.store), "-a", "127.0.0.1",
                                      "-p", str(self.port)], stdout=self.log, stderr=self.log)
        wait_for("nats-server", self.up, 20)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pg:
    """A throwaway cluster, run as the postgres user when this test is root."""

    def __init__(self):
        # its own temporary dir: pytest's are closed to other users
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hallq-city-pg-"))
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(self.as_user + [str(PGBIN / "initdb"), "-D", str(self.dir / "data"),
                                       "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True)
        self.start()
        self.conninfo = "host=%s port=%d user=postgres dbname=postgres" % (self.dir, self.port)

    def start(self):
        subprocess.run(self.as_user + [str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                       "-l", str(self.dir / "log"), "-w", "-o",
                                       "-p %d -k %s -c listen_addresses='' -c fsync=off"
                                       % (self.port, self.dir), "start"],
                       check=True, capture_output=True)

    def crash(self):
        """An immediate stop: no checkpoint, recovery at the next start."""
        subprocess.run(self.as_user + [str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                       "-m", "immediate", "stop"], check=True,
                       capture_output=True)

    def query(self, sql):
        """The rows of sql. A query made before the centre created its schema
        (a loaded machine can start it late) waits for the schema, up to 60 s."""
        end = time.monotonic() + 60
        while True:
            r = subprocess.run([str(PGBIN / "psql"), "-X", "-A", "-t", "-F", "|", "-d",
                                self.conninfo, "-c", sql], capture_output=True, text=True)
            if r.returncode == 0:
                return [line.split("|") for line in r.stdout.splitlines() if line]
            if 'relation "hallq.' not in r.stderr or time.monotonic() > end:
                raise AssertionError("psql %r: %s" % (sql, r.stderr))
            time.sleep(0.1)

    def stop(self):
        subprocess.run(self.as_user + [str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                       "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def services(tmp_path):
    nats = Nats(tmp_path)
    try:
        pg = Pg()
    except BaseException:
        nats.stop()
        raise
    procs = []
    try:
        yield nats, pg, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        nats.stop()
        pg.stop()


@pytest.fixture
def records():
    """Records per hall (a test parametrizes it to change it)."""
    return RECORDS


@pytest.fixture
def city(tmp_path, services, records):
    halls = {}
    for h in HALLS:
        cfg = tmp_path / ("%s.yaml" % h)
        cfg.write_text(DEMO.read_text().replace("id: demo-city", "id: " + h, 1))
        data = tmp_path / h
        subprocess.run([str(WALGEN), "--out", str(data), "--config", str(cfg), "--records",
                        str(records), "--seed", str(len(halls) + 1)], check=True,
                       capture_output=True)
        halls[h] = data
    nats, pg, procs = services
    return tmp_path, halls, nats, pg, procs


def start(procs, tmp, name, argv):
    log = open(tmp / (name + ".log"), "ab")
    p = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=log)
    procs.append(p)
    return p


def loaded(pg, halls):
    """True once every hall's row is at its WAL's last LSN."""
    rows = dict((r[0], int(r[1])) for r in pg.query(
        "SELECT hall_id, last_lsn FROM hallq.hall") if len(r) == 2)
    return all(rows.get(h) == len(wal_records(d / "wal")) for h, d in halls.items())


def check_exactly_once(pg, halls):
    for h, d in halls.items():
        recs = wal_records(d / "wal")
        rows = pg.query("SELECT lsn, encode(chain_hash, 'hex') FROM hallq.record "
                        "WHERE hall_id = '%s' ORDER BY lsn" % h)
        assert [int(r[0]) for r in rows] == list(range(1, len(recs) + 1)), h
        assert [r[1] for r in rows] == [x[1].hex() for x in recs], h
        state = pg.query("SELECT state, last_lsn FROM hallq.hall WHERE hall_id = '%s'" % h)
        assert state == [["ok", str(len(recs))]], (h, state)
    # the schema's version table
    assert pg.query("SELECT version FROM hallq.schema_version") == [["1"]]


def test_every_record_once(city):
    tmp, halls, nats, pg, procs = city
    centre = [CENTRE, "--nats", nats.url, "--pg", pg.conninfo]
    start(procs, tmp, "centre", centre)
    for h, d in halls.items():
        p = start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url, "--once"])
        assert p.wait(60) == 0, (tmp / ("ship-%s.log" % h)).read_text()
    wait_for("the centre to load every hall", lambda: loaded(pg, halls), 60, 0.3)
    check_exactly_once(pg, halls)
    # Shipping again sends nothing new and changes nothing.
    for h, d in halls.items():
        p = start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url, "--once"])
        assert p.wait(60) == 0
    time.sleep(0.5)
    check_exactly_once(pg, halls)


@pytest.mark.parametrize("records", [8000])  # so that the kills land while they ship
def test_sigkill_shipper_and_centre(city):
    tmp, halls, nats, pg, procs = city
    rng = random.Random(int(os.environ.get("HALLQ_CITY_SEED", "16")))
    centre_argv = [CENTRE, "--nats", nats.url, "--pg", pg.conninfo, "--batch", "16",
                   "--ack-wait", "2"]
    centre = start(procs, tmp, "centre", centre_argv)
    ships = {}
    for h, d in halls.items():
        ships[h] = start(procs, tmp, "ship-" + h,
                         [SHIP, "--data", d, "--nats", nats.url, "--window", "32"])
    for i in range(12):
        time.sleep(rng.uniform(0.01, 0.2))
        victim = "centre" if i % 2 else rng.choice(HALLS)
        if victim == "centre":
            centre.kill()
            centre.wait()
            centre = start(procs, tmp, "centre", centre_argv)
        else:
            ships[victim].kill()
            ships[victim].wait()
            ships[victim] = start(procs, tmp, "ship-" + victim,
                                  [SHIP, "--data", halls[victim], "--nats", nats.url,
                                   "--window", "32"])
    wait_for("the centre to load every hall", lambda: loaded(pg, halls), 90, 0.3)
    check_exactly_once(pg, halls)


def test_centre_killed_between_commit_and_ack_repeats_nothing(city):
    tmp, halls, nats, pg, procs = city
    centre = [CENTRE, "--nats", nats.url, "--pg", pg.conninfo, "--batch", "16",
              "--ack-wait", "2"]
    log = open(tmp / "centre-dies.log", "ab")
    p = subprocess.Popen([str(a) for a in centre], stdout=log, stderr=log,
                         env=dict(os.environ, HALLQ_CENTRE_KILL_AFTER_COMMIT="5"))
    procs.append(p)
    for h, d in halls.items():
        s = start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url, "--once"])
        assert s.wait(60) == 0
    assert p.wait(60) == -signal.SIGKILL
    assert "killed after commit 5" in (tmp / "centre-dies.log").read_text()
    loaded_then = int(pg.query("SELECT count(*) FROM hallq.record")[0][0])
    assert 0 < loaded_then <= 5 * 16
    start(procs, tmp, "centre", centre)
    wait_for("the centre to load every hall", lambda: loaded(pg, halls), 60, 0.3)
    check_exactly_once(pg, halls)
    # the fifth batch comes again once its ack wait (2 s) ran out, and is
    # found loaded, not loaded twice
    wait_for("the unacked batch to come again",
             lambda: "repeats ignored" in (tmp / "centre.log").read_text(), 30, 0.2)
    check_exactly_once(pg, halls)


def test_nats_server_killed_and_restarted_on_its_store(city):
    tmp, halls, nats, pg, procs = city
    rng = random.Random(int(os.environ.get("HALLQ_CITY_SEED", "16")))
    start(procs, tmp, "centre", [CENTRE, "--nats", nats.url, "--pg", pg.conninfo, "--batch", "16",
                                 "--ack-wait", "2"])
    for h, d in halls.items():
        start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url, "--window", "32"])
    for _ in range(3):
        time.sleep(rng.uniform(0.05, 0.5))
        nats.kill()
        time.sleep(rng.uniform(0.0, 0.3))
        nats.start()
    wait_for("the centre to load every hall", lambda: loaded(pg, halls), 90, 0.3)
    check_exactly_once(pg, halls)


def test_postgresql_restarted(city):
    tmp, halls, nats, pg, procs = city
    rng = random.Random(int(os.environ.get("HALLQ_CITY_SEED", "16")))
    start(procs, tmp, "centre", [CENTRE, "--nats", nats.url, "--pg", pg.conninfo, "--batch", "16",
                                 "--ack-wait", "2"])
    for h, d in halls.items():
        start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url])
    for _ in range(2):
        wait_for("the centre to load something", lambda: int(pg.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'hallq'")[0][0]) > 0, 30)
        time.sleep(rng.uniform(0.05, 0.4))
        pg.crash()
        time.sleep(rng.uniform(0.1, 0.5))
        pg.start()
    wait_for("the centre to load every hall", lambda: loaded(pg, halls), 90, 0.3)
    check_exactly_once(pg, halls)
    assert "postgresql" in (tmp / "centre.log").read_text()  # it did see the crashes


def test_tampered_record_breaks_its_hall_only(city):
    tmp, halls, nats, pg, procs = city
    bad_hall = HALLS[1]
    recs = wal_records(halls[bad_hall] / "wal")
    lsn, _, off, seg = recs[700]
    b = bytearray(seg.read_bytes())
    n = struct.unpack_from("<I", b, off)[0]
    b[off + 40] ^= 0x01  # the payload's first byte
    crc = crc32c(bytes(b[off:off + 72 + n]))
    struct.pack_into("<I", b, off + 72 + n, crc)
    seg.write_bytes(bytes(b))
    # As if a hallqd ran on the edited log: it holds DIR/LOCK and has published
    # its safe LSN (daemon/safe_lsn.c's format), so the shipper reads with CRCs
    # only, as beside a running daemon (without one it scans the chain itself
    # and refuses: test_shipper_refuses_a_broken_chain_offline).
    lock = open(halls[bad_hall] / "LOCK", "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.write("%d\n" % os.getpid())
    lock.flush()
    boot = pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    (halls[bad_hall] / "safe-lsn").write_text(
        "hallq-safe-lsn 1\nlsn %d\npid %d\nboot %s\n" % (len(recs), os.getpid(), boot))
    start(procs, tmp, "centre", [CENTRE, "--nats", nats.url, "--pg", pg.conninfo])
    for h, d in halls.items():
        p = start(procs, tmp, "ship-" + h, [SHIP, "--data", d, "--nats", nats.url, "--once"])
        assert p.wait(60) == 0, (tmp / ("ship-%s.log" % h)).read_text()
    good = {h: d for h, d in halls.items() if h != bad_hall}
    wait_for("the good halls to load", lambda: loaded(pg, good), 60, 0.3)
    wait_for("the bad hall to break", lambda: pg.query(
        "SELECT state, last_lsn FROM hallq.hall WHERE hall_id = '%s'" % bad_hall)
        == [["broken", str(lsn - 1)]], 30, 0.3)
    check_exactly_once(pg, good)
    assert int(pg.query("SELECT count(*) FROM hallq.record WHERE hall_id = '%s'"
                        % bad_hall)[0][0]) == lsn - 1
    lock.close()


def test_shipper_refuses_a_broken_chain_offline(city):
    """With no hallqd, the shipper verifies the log itself and ships nothing
    of a log whose chain breaks."""
    tmp, halls, nats, pg, procs = city
    h = HALLS[0]
    recs = wal_records(halls[h] / "wal")
    _, _, off, seg = recs[10]
    b = bytearray(seg.read_bytes())
    n = struct.unpack_from("<I", b, off)[0]
    b[off + 40] ^= 0x01
    struct.pack_into("<I", b, off + 72 + n, crc32c(bytes(b[off:off + 72 + n])))
    seg.write_bytes(bytes(b))
    p = start(procs, tmp, "ship", [SHIP, "--data", halls[h], "--nats", nats.url, "--once"])
    assert p.wait(60) == 1
    assert "hash chain" in (tmp / "ship.log").read_text()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def safe_lsn(d):
    """The LSN the running hallqd published as durable (0: none yet)."""
    try:
        f = dict(l.split(" ", 1) for l in (d.data / "safe-lsn").read_text().splitlines())
    except FileNotFoundError:
        return 0
    return int(f["lsn"]) if int(f["pid"]) == d.proc.pid else 0


def test_follows_a_running_hall_up_to_its_safe_lsn(make_daemon, services, tmp_path):
    """Beside a running hallqd the shipper follows the log, and never ships
    past the safe LSN the daemon publishes (daemon/safe_lsn.h)."""
    nats, pg, procs = services
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=("--checkpoint-ms", "0"))
    start(procs, tmp_path, "centre", [CENTRE, "--nats", nats.url, "--pg", pg.conninfo])
    start(procs, tmp_path, "ship", [SHIP, "--data", d.data, "--nats", nats.url,
                                    "--poll-ms", "20"])
    k = d.kiosk()

    def centre_lsn():
        r = pg.query("SELECT last_lsn FROM hallq.hall WHERE hall_id = 'demo-city'") \
            if pg.query("SELECT to_regclass('hallq.hall')") != [[""]] else []
        return int(r[0][0]) if r else 0

    for i in range(60):
        k.ok("ticket.take", line="A")
        shipped = centre_lsn()  # before reading the safe LSN, which only grows
        assert shipped <= safe_lsn(d), (shipped, safe_lsn(d))
    wait_for("the safe LSN to cover the tickets", lambda: safe_lsn(d) >= 60, 30)
    target = safe_lsn(d)
    wait_for("the centre to reach the safe LSN", lambda: centre_lsn() >= target, 30)
    rows = pg.query("SELECT lsn, op FROM hallq.record WHERE hall_id = 'demo-city' ORDER BY lsn")
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert sum(1 for r in rows if r[1] == "ticket.take") >= 55
    recs = wal_records(d.data / "wal")
    got = dict((int(r[0]), r[1]) for r in pg.query(
        "SELECT lsn, encode(chain_hash, 'hex') FROM hallq.record WHERE hall_id = 'demo-city'"))
    assert all(got[lsn] == h.hex() for lsn, h, _, _ in recs if lsn in got)


def test_a_hall_offline_for_a_day_catches_up(make_daemon, services, tmp_path):
    """The shipper stopped while the hall works a day (tickets, then the clock
    a day on), then back: the centre gets the whole day, oldest first, once."""
    nats, pg, procs = services
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, args=("--checkpoint-ms", "0"))
    start(procs, tmp_path, "centre", [CENTRE, "--nats", nats.url, "--pg", pg.conninfo])
    ship = [SHIP, "--data", d.data, "--nats", nats.url, "--poll-ms", "20"]
    s = start(procs, tmp_path, "ship", ship)
    k = d.kiosk()
    k.ok("ticket.take", line="A")
    wait_for("the first records at the centre", lambda: int((pg.query(
        "SELECT max(last_lsn) FROM hallq.hall") or [["0"]])[0][0] or 0) > 0
        if pg.query("SELECT to_regclass('hallq.hall')") != [[""]] else False, 30)
    s.send_signal(signal.SIGTERM)
    assert s.wait(10) == 0
    before = int(pg.query("SELECT count(*) FROM hallq.record")[0][0])
    a = d.admin()
    for i in range(40):
        k.ok("ticket.take", line="B")
    a.ok("clock.advance", ms=24 * 3600 * 1000)  # the day closes, a new one starts
    k.ok("ticket.take", line="A")
    wait_for("the safe LSN to cover the day", lambda: safe_lsn(d) >= before + 40, 30)
    assert int(pg.query("SELECT count(*) FROM hallq.record")[0][0]) == before
    target = safe_lsn(d)
    start(procs, tmp_path, "ship", ship)
    wait_for("the centre to catch up", lambda: int(pg.query(
        "SELECT last_lsn FROM hallq.hall WHERE hall_id = 'demo-city'")[0][0]) >= target, 30)
    rows = pg.query("SELECT lsn, op FROM hallq.record WHERE hall_id = 'demo-city' ORDER BY lsn")
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert sum(1 for r in rows if r[1] == "ticket.take") >= 41
    assert "clock.advance" in [r[1] for r in rows]
    assert pg.query("SELECT state FROM hallq.hall WHERE hall_id = 'demo-city'") == [["ok"]]
