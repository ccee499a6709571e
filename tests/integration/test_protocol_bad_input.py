"""Every framing and envelope rule of the protocol, each with its error
code, whether the connection closes, and a bystander connection that keeps
being served."""
import struct

import msgpack
import pytest


@pytest.fixture
def bystander(daemon):
    c = daemon.kiosk()
    yield c
    assert "now_ms" in c.ok("ping")
    assert c.ok("ticket.take", line="D")["number"].startswith("D")


def frame(body):
    return struct.pack(">I", len(body)) + body


def expect_closing_error(c, code):
    m = c.read()
    assert m["ok"] is False and m["error"]["code"] == code, m
    assert c.is_closed()
    return m


def test_zero_length_frame(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(struct.pack(">I", 0))
    m = expect_closing_error(c, "bad_frame")
    assert m["id"] == 0


def test_frame_over_max_frame(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(struct.pack(">I", 65537))  # only the header: rejected at once
    expect_closing_error(c, "bad_frame")


def test_max_frame_itself_is_accepted(daemon, bystander):
    c = daemon.kiosk()
    body = msgpack.packb({"id": 7, "op": "ping", "args": {"pad": ""}})
    pad = 65536 - len(body) - 2  # str16 header grows by 2 bytes
    body = msgpack.packb({"id": 7, "op": "ping", "args": {"pad": "x" * pad}})
    assert len(body) == 65536
    c.send_body(body)
    assert c.read()["ok"] is True


def test_truncated_frame_then_close(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(struct.pack(">I", 100) + b"\x83\xa2id")
    c.close()


@pytest.mark.parametrize("body", [
    msgpack.packb([1, 2, 3]),
    msgpack.packb(5),
    msgpack.packb("hello"),
    msgpack.packb({"id": 1, "op": "ping"}) + b"\x00",          # trailing bytes
    b"\x82\xa2id\x01\xa2op",                                     # truncated map
    b"\x81\x01\x02",                                             # non-string key
    b"\x81\xa1a\xdb\x00\x00\x0f\xa0abc",                         # str32 claims 4000 bytes
    b"\x81\xa1a\xdd\x7f\xff\xff\xff",                           # array claims 2^31 items
    b"\xc1",                                                     # never-used byte
], ids=["array", "int", "str", "trailing", "truncated", "intkey", "str32", "array32", "c1"])
def test_bad_bodies(daemon, bystander, body):
    c = daemon.kiosk()
    c.send_body(body)
    expect_closing_error(c, "bad_frame")


def test_deep_nesting(daemon, bystander):
    c = daemon.kiosk()
    v = 1
    for _ in range(40):
        v = {"a": v}
    c.send_body(msgpack.packb({"id": 1, "op": "ping", "args": v}))
    expect_closing_error(c, "bad_frame")
    # Within the limit (16 levels including the envelope) is fine.
    v = 1
    for _ in range(14):
        v = [v]
    ok = daemon.kiosk()
    ok.send_body(msgpack.packb({"id": 2, "op": "ping", "args": {"x": v}}))
    assert ok.read()["ok"] is True


def test_errors_in_order_before_bad_frame_is_answered(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(frame(msgpack.packb({"id": 1, "op": "ping"})) + struct.pack(">I", 0)
               + frame(msgpack.packb({"id": 3, "op": "ping"})))
    assert c.read()["id"] == 1
    expect_closing_error(c, "bad_frame")


def test_unknown_op(daemon, bystander):
    c = daemon.kiosk()
    code, msg = c.err("ticket.steal")
    assert code == "unknown_op" and "ticket.steal" in msg
    assert c.ok("ping")  # kept open


def test_missing_and_mistyped_args(daemon, bystander):
    c = daemon.kiosk()
    code, msg = c.err("ticket.take")
    assert code == "bad_request" and "line" in msg
    code, msg = c.err("ticket.take", line=5)
    assert code == "bad_request" and "line" in msg
    code, msg = c.err("ticket.get", ticket_id=["x"])
    assert code == "bad_request" and "ticket_id" in msg
    c.send_body(msgpack.packb({"id": 9, "op": "ping", "args": [1]}))
    m = c.read()
    assert m["error"]["code"] == "bad_request" and "args" in m["error"]["message"]
    assert c.ok("ping")


def test_id_missing_or_mistyped(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(msgpack.packb({"op": "ping"}))
    m = c.read()
    assert m["error"]["code"] == "bad_request" and "id" in m["error"]["message"]
    c.send_body(msgpack.packb({"id": "seven", "op": "ping"}))
    m = c.read()
    assert m["error"]["code"] == "bad_request" and "id" in m["error"]["message"]
    c.send_body(msgpack.packb({"id": 4, "op": 12}))
    m = c.read()
    assert m["id"] == 4 and "op" in m["error"]["message"]
    assert c.ok("ping")


def test_op_before_hello(daemon, bystander):
    from hallq_client import Client
    c = Client.tcp(daemon.port)
    c.send("ping")
    expect_closing_error(c, "unauthenticated")


def test_wrong_token(daemon, bystander):
    from hallq_client import Client
    c = Client.tcp(daemon.port)
    c.send("hello", {"token": "kiosk-demo!"})
    expect_closing_error(c, "unauthenticated")


@pytest.mark.parametrize("listener,token", [("unix", "kiosk-demo"), ("unix", "window-W01"),
                                            ("tcp", "admin-demo"), ("tcp", "dept-mkt")])
def test_role_on_wrong_listener(daemon, bystander, listener, token):
    from hallq_client import Client
    c = Client.unix(daemon.sock) if listener == "unix" else Client.tcp(daemon.port)
    c.send("hello", {"token": token})
    m = expect_closing_error(c, "unauthenticated")
    assert token not in m["error"]["message"]


def test_dribbled_one_byte_at_a_time(daemon, bystander):
    from hallq_client import Client
    c = Client.tcp(daemon.port)
    data = frame(msgpack.packb({"id": 1, "op": "hello", "args": {"token": "kiosk-demo"}}))
    data += frame(msgpack.packb({"id": 2, "op": "ticket.take", "args": {"line": "A"}}))
    for b in data:
        c.send_raw(bytes([b]))
    assert c.read()["ok"] is True
    r = c.read()
    assert r["id"] == 2 and r["result"]["number"] == "A001"


def test_many_frames_in_one_send(daemon, bystander):
    c = daemon.kiosk()
    data = b"".join(frame(msgpack.packb({"id": i, "op": "ticket.take" if i % 2 else "ping",
                                          "args": {"line": "B"}})) for i in range(1, 21))
    c.send_raw(data)
    got = [c.read() for _ in range(20)]
    assert [m["id"] for m in got] == list(range(1, 21))
    assert [m["result"]["number"] for m in got if "number" in m["result"]] == \
        ["B%03d" % i for i in range(1, 11)]


def test_pipelining_past_max_inflight(daemon, bystander):
    c = daemon.kiosk()
    data = b"".join(frame(msgpack.packb({"id": i, "op": "ticket.take", "args": {"line": "C"}}))
                    for i in range(1, 301))
    c.send_raw(data)
    got = [c.read() for _ in range(300)]
    assert [m["id"] for m in got] == list(range(1, 301))
    assert [m["result"]["number"] for m in got] == ["C%03d" % i for i in range(1, 301)]
    # A read after the pipeline sees every ticket of it.
    assert c.ok("ticket.get", ticket_id="20261124-C300")["ahead"] == 299


def test_client_gone_with_mutations_in_flight(daemon, bystander):
    # Hang up right after pipelining mutations: their batch still ends
    # cleanly (the sanitizer build catches any use of a freed slot).
    for round_no in range(20):
        c = daemon.kiosk()
        c.send_raw(b"".join(frame(msgpack.packb({"id": i, "op": "ticket.take",
                                                  "args": {"line": "A"}}))
                            for i in range(1, 41)))
        c.close()
    # Every request that was received was applied: numbers have no holes.
    t = daemon.kiosk().ok("ticket.take", line="A")
    n = int(t["number"][1:])
    for i in range(1, n + 1):
        assert daemon.kiosk().ok("ticket.get", ticket_id="20261124-A%03d" % i)["line"] == "A"
