"""The connection limits, each configurable: max_connections, a frame that
stalls half-way (slow loris), a connection that never says hello, the
kiosk request rate; and many thousands of idle connections at once."""
import resource
import socket
import struct
import time

import msgpack

from conftest import TUESDAY_10AM
from hallq_client import Client


def limits(**kv):
    """An `extra` for make_daemon that sets limits.KEY: VALUE."""
    defaults = {"max_connections": "10000", "hello_timeout_s": "10", "frame_timeout_s": "10",
                "kiosk_rate_per_s": "0", "kiosk_burst": "40"}
    end = {"max_connections": "\n"}  # the other lines carry a comment
    return {"  %s: %s%s" % (k, defaults[k], end.get(k, " ")): "  %s: %s%s" % (k, v, end.get(k, " "))
            for k, v in kv.items()}


def test_the_connection_over_the_limit_gets_limit_and_is_closed(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=limits(max_connections=5))
    held = [d.kiosk() for _ in range(4)] + [Client.tcp(d.port)]  # one not yet authenticated
    extra = Client.tcp(d.port)
    m = extra.read()
    assert m["ok"] is False and m["error"]["code"] == "limit", m
    assert extra.is_closed()
    for c in held[:4]:
        assert c.ok("ticket.take", line="A")["line"] == "A"
    held[4].hello("kiosk-demo")
    assert held[4].ok("ping")["now_ms"] == TUESDAY_10AM
    # Once one leaves there is room again.
    held[0].close()
    deadline = time.monotonic() + 10
    while True:
        c = Client.tcp(d.port)
        c.send("hello", {"token": "kiosk-demo"})
        m = c.read()
        if m["ok"]:
            break
        assert m["error"]["code"] == "limit" and time.monotonic() < deadline
    assert c.ok("ping")


def test_a_stalled_partial_frame_is_closed(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=limits(frame_timeout_s=1))
    bystander = d.kiosk()
    slow = d.kiosk()
    body = msgpack.packb({"id": 7, "op": "ping"})
    slow.send_raw(struct.pack(">I", len(body)) + body[:3])  # and then nothing
    t0 = time.monotonic()
    m = slow.read()
    assert m["ok"] is False and m["error"]["code"] == "bad_frame", m
    assert "frame_timeout_s" in m["error"]["message"]
    assert slow.is_closed()
    assert 0.9 < time.monotonic() - t0 < 5
    d.wait_log("a frame stalled")
    assert bystander.ok("ping")
    # A client that is slow but never stalls a frame for long is kept.
    steady = d.kiosk()
    for _ in range(3):
        assert steady.is_closed(timeout=0.6) is False
        assert steady.ok("ping")


def test_no_hello_in_time_is_closed(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=limits(hello_timeout_s=1))
    mute = Client.tcp(d.port)
    polite = d.kiosk()
    m = mute.read()
    assert m["ok"] is False and m["error"]["code"] == "unauthenticated", m
    assert "hello_timeout_s" in m["error"]["message"]
    assert mute.is_closed()
    # An authenticated connection has no such deadline.
    assert polite.is_closed(timeout=1.5) is False
    assert polite.ok("ping")


def test_kiosk_rate(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra=limits(kiosk_rate_per_s=5, kiosk_burst=5))
    k = d.kiosk()
    got = k.pipeline([("ticket.take", {"line": "A", "idem": "r%d" % i}) for i in range(20)])
    ok = [m for m in got if m["ok"]]
    limited = [m for m in got if not m["ok"]]
    assert len(ok) >= 5 and len(limited) >= 10, got
    assert all(m["error"]["code"] == "limit" and "rate" in m["error"]["message"]
               for m in limited)
    assert [m["result"]["number"] for m in ok] == ["A%03d" % (i + 1) for i in range(len(ok))]
    # The connection is kept; nothing limited was taken.
    st = d.admin().ok("stats")
    assert st["lines"]["A"]["taken"] == len(ok)
    # Other kiosks have their own bucket; windows and admins have none.
    assert d.kiosk().ok("ticket.get", ticket_id="20261124-A001")["number"] == "A001"
    a = d.admin()
    for i in range(30):
        a.ok("ticket.take", line="B")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ten_thousand_idle_connections(make_daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 10000
    if hard < n + 200:
        import pytest
        pytest.skip("the file limit (%d) is below %d" % (hard, n + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the daemon inherits it
    try:
        d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                        extra=limits(max_connections=n + 100))
        before = rss_kib(d.proc.pid)
        body = msgpack.packb({"id": 1, "op": "hello", "args": {"token": "display-demo"}})
        hello = struct.pack(">I", len(body)) + body
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(hello)
            socks.append(s)
        # Every one answered hello (so all are open and authenticated).
        for s in socks:
            c = Client(s)
            assert c.read()["ok"] is True
        k = d.kiosk()
        t0 = time.monotonic()
        assert k.ok("ticket.take", line="A")["number"] == "A001"
        assert time.monotonic() - t0 < 10
        after = rss_kib(d.proc.pid)
        per_conn = (after - before) * 1024 / n
        print("\nRSS with %d idle connections: %d KiB (%.0f bytes per connection)"
              % (n, after, per_conn))
        assert per_conn < 8192, per_conn
        for s in socks:
            s.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
