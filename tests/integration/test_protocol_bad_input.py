"""Every framing and envelope rule of the protocol, one test per case.

Each test asserts the exact error code (and for bad_request, that the field's
name is in the message), that the connection is closed where the contract
says so (bad_frame, unauthenticated) and kept otherwise (the same connection
then answers ping), and that a bystander connection opened before the bad
input is still served afterwards."""
import re
import struct

import pytest

from conftest import TUESDAY
from hallq_client import Client, pack, request_frame

MAX_FRAME = 65536


@pytest.fixture
def bystander(daemon):
    """A kiosk connection opened before the test's bad input."""
    c = daemon.kiosk()
    assert "now_ms" in c.ok("ping")
    yield c
    c.close()


def bystander_served(c):
    assert "now_ms" in c.ok("ping")
    assert c.ok("ticket.take", line="D")["number"].startswith("D")


def closing_error(c, code, id=None):
    """The one error answer before the server closes the connection."""
    m = c.read()
    assert m.get("ok") is False and m["error"]["code"] == code, m
    assert isinstance(m["error"]["message"], str) and m["error"]["message"], m
    if id is not None:
        assert m["id"] == id, m
    assert c.is_closed(), "the connection should be closed after %s" % code
    return m


def kept_error(c, m, code, id=None, field=None):
    """An error answer on a connection that stays open."""
    assert m.get("ok") is False and m["error"]["code"] == code, m
    if id is not None:
        assert m["id"] == id, m
    if field is not None:
        assert field in m["error"]["message"], m
    assert "now_ms" in c.ok("ping"), "the connection should stay open after %s" % code
    return m


# ---- framing: bad_frame (id 0) and close ----

def test_zero_length_frame(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(struct.pack(">I", 0))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_frame_over_max_frame(daemon, bystander):
    c = daemon.kiosk()
    # Only the header: the length alone must be refused, not waited on.
    c.send_raw(struct.pack(">I", MAX_FRAME + 1))
    m = closing_error(c, "bad_frame", id=0)
    # The message says what was seen and how a frame is made (issue 17).
    assert m["error"]["message"] == (
        "frame: length %d is over max_frame (%d); the length is 4 bytes big-endian, then "
        "that many bytes of MessagePack" % (MAX_FRAME + 1, MAX_FRAME)), m
    bystander_served(bystander)


def test_huge_length_header(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(b"\xff\xff\xff\xff")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_frame_of_exactly_max_frame_is_accepted(daemon, bystander):
    c = daemon.kiosk()
    body = next(b for b in (pack({"id": 7, "op": "ping", "args": {"pad": "x" * n}})
                            for n in range(MAX_FRAME - 64, MAX_FRAME))
                if len(b) == MAX_FRAME)
    c.send_body(body)
    m = c.read()
    assert m["id"] == 7 and m["ok"] is True, m
    bystander_served(bystander)


def test_truncated_frame_then_close(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(struct.pack(">I", 100) + b"\x83\xa2id\x01\xa2op")
    c.close()
    bystander_served(bystander)
    # And a fresh connection is served too.
    assert "now_ms" in daemon.kiosk().ok("ping")


def test_truncated_header_then_close(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(b"\x00\x00")
    c.close()
    bystander_served(bystander)


def test_body_is_array(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack([1, "ping", {}]))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_body_is_int(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack(5))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_body_is_string(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack("ping"))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_trailing_bytes_after_the_map(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": 1, "op": "ping"}) + b"\x00")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_two_maps_in_one_frame(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": 1, "op": "ping"}) + pack({"id": 2, "op": "ping"}))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_map_truncated_inside_the_frame(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(b"\x83\xa2id\x01\xa2op")  # a map of 3 pairs holding 1.5
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_deep_nesting_maps(daemon, bystander):
    c = daemon.kiosk()
    v = 1
    for _ in range(40):
        v = {"a": v}
    c.send_body(pack({"id": 1, "op": "ping", "args": v}))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_deep_nesting_arrays(daemon, bystander):
    c = daemon.kiosk()
    v = 1
    for _ in range(40):
        v = [v]
    c.send_body(pack({"id": 1, "op": "ping", "args": {"x": v}}))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_moderate_nesting_is_accepted(daemon, bystander):
    # The project documents a depth limit of 16 (envelope included); well
    # within it, nested args are simply ignored.
    c = daemon.kiosk()
    v = 1
    for _ in range(8):
        v = [v]
    c.send_body(pack({"id": 3, "op": "ping", "args": {"x": v}}))
    m = c.read()
    assert m["id"] == 3 and m["ok"] is True, m
    bystander_served(bystander)


def test_str32_longer_than_the_frame(daemon, bystander):
    c = daemon.kiosk()
    # {"a": str32 claiming 4000 bytes, holding 3}
    c.send_body(b"\x81\xa1a\xdb\x00\x00\x0f\xa0abc")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_array32_claiming_billions_of_items(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(b"\x81\xa1a\xdd\x7f\xff\xff\xff")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_non_string_map_key(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(b"\x83\x01\x01\xa2id\x02\xa2op\xa4ping")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_never_used_byte(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(b"\xc1")
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_bad_frame_before_hello(daemon, bystander):
    c = Client.tcp(daemon.port)
    c.send_body(pack([1]))
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


def test_answers_before_a_bad_frame_come_first(daemon, bystander):
    c = daemon.kiosk()
    c.send_raw(request_frame(1, "ping") + struct.pack(">I", 0) + request_frame(3, "ping"))
    m = c.read()
    assert m["id"] == 1 and m["ok"] is True, m
    closing_error(c, "bad_frame", id=0)
    bystander_served(bystander)


# ---- envelope: kept connections ----

def test_unknown_op(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.steal", {"line": "A"})
    kept_error(c, m, "unknown_op", id=m["id"])
    assert "ticket.steal" in m["error"]["message"]
    bystander_served(bystander)


def test_missing_required_arg(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.take", {})
    kept_error(c, m, "bad_request", id=m["id"], field="line")
    bystander_served(bystander)


def test_missing_args_field_altogether(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.take")  # no "args" key at all
    kept_error(c, m, "bad_request", id=m["id"], field="line")
    bystander_served(bystander)


def test_mistyped_arg(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.take", {"line": 5})
    kept_error(c, m, "bad_request", id=m["id"], field="line")
    bystander_served(bystander)


def test_mistyped_optional_arg(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.take", {"line": "A", "priority": "yes"})
    kept_error(c, m, "bad_request", id=m["id"], field="priority")
    bystander_served(bystander)


def test_mistyped_ticket_id(daemon, bystander):
    c = daemon.kiosk()
    m = c.request("ticket.get", {"ticket_id": ["x"]})
    kept_error(c, m, "bad_request", id=m["id"], field="ticket_id")
    bystander_served(bystander)


def test_unknown_args_are_ignored(daemon, bystander):
    c = daemon.kiosk()
    t = c.ok("ticket.take", line="A", colour="blue", extra={"x": [1, 2]})
    assert t["number"] == "A001"
    bystander_served(bystander)


def test_args_not_a_map(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": 9, "op": "ping", "args": [1]}))
    kept_error(c, c.read(), "bad_request", id=9, field="args")
    bystander_served(bystander)


def test_id_missing(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"op": "ping"}))
    kept_error(c, c.read(), "bad_request", field="id")
    bystander_served(bystander)


def test_id_a_string(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": "seven", "op": "ping"}))
    kept_error(c, c.read(), "bad_request", field="id")
    bystander_served(bystander)


def test_id_negative(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": -1, "op": "ping"}))
    kept_error(c, c.read(), "bad_request", field="id")
    bystander_served(bystander)


def test_op_missing(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": 4, "args": {}}))
    kept_error(c, c.read(), "bad_request", id=4, field="op")
    bystander_served(bystander)


def test_op_mistyped(daemon, bystander):
    c = daemon.kiosk()
    c.send_body(pack({"id": 4, "op": 12}))
    kept_error(c, c.read(), "bad_request", id=4, field="op")
    bystander_served(bystander)


# ---- hello and roles: unauthenticated and close ----

def test_op_before_hello(daemon, bystander):
    c = Client.tcp(daemon.port)
    id = c.send("ping")
    closing_error(c, "unauthenticated", id=id)
    bystander_served(bystander)


def test_mutation_before_hello_takes_nothing(daemon, bystander):
    c = Client.tcp(daemon.port)
    id = c.send("ticket.take", {"line": "A"})
    closing_error(c, "unauthenticated", id=id)
    assert bystander.ok("ticket.take", line="A")["number"] == "A001"


def test_wrong_token(daemon, bystander):
    c = Client.tcp(daemon.port)
    id = c.send("hello", {"token": "kiosk-demo!"})
    closing_error(c, "unauthenticated", id=id)
    bystander_served(bystander)


@pytest.mark.parametrize("args,field", [({}, "args.token: missing"),
                                        ({"token": 7}, "args.token: expected string"),
                                        ([1, 2], "args: expected a map"),
                                        ("kiosk-demo", "args: expected a map")])
def test_malformed_hello_is_bad_request(daemon, bystander, args, field):
    """A hello without a token, with a token that is not a string or with
    args that are not a map is bad_request naming what is wrong (issue 17;
    before, `unauthenticated` saying "the first request must be hello"); the
    connection stays open and unauthenticated, so a good hello then works."""
    c = Client.tcp(daemon.port)
    id = c.send("hello", args)
    m = c.read()
    assert m["id"] == id and m["ok"] is False, m
    assert m["error"]["code"] == "bad_request" and field in m["error"]["message"], m
    assert m["error"]["message"].startswith("hello: "), m
    assert c.ok("hello", token="kiosk-demo")["role"] == "kiosk"
    bystander_served(bystander)


@pytest.mark.parametrize("token", ["kiosk-demo", "window-W01", "display-demo"])
def test_tcp_role_on_the_unix_socket(daemon, bystander, token):
    c = Client.unix(daemon.sock)
    id = c.send("hello", {"token": token})
    m = closing_error(c, "unauthenticated", id=id)
    assert token not in m["error"]["message"]
    bystander_served(bystander)


@pytest.mark.parametrize("token", ["admin-demo", "dept-mkt"])
def test_unix_role_on_tcp(daemon, bystander, token):
    c = Client.tcp(daemon.port)
    id = c.send("hello", {"token": token})
    m = closing_error(c, "unauthenticated", id=id)
    assert token not in m["error"]["message"]
    bystander_served(bystander)


def test_wrong_listener_and_wrong_token_look_alike(daemon, bystander):
    # A listener never reveals which tokens exist elsewhere.
    a = Client.tcp(daemon.port)
    a.send("hello", {"token": "admin-demo"})
    b = Client.tcp(daemon.port)
    b.send("hello", {"token": "no-such-token"})
    ma, mb = closing_error(a, "unauthenticated"), closing_error(b, "unauthenticated")
    assert ma["error"]["message"] == mb["error"]["message"]
    bystander_served(bystander)


# ---- how bytes arrive ----

def test_request_dribbled_one_byte_at_a_time(daemon, bystander):
    c = Client.tcp(daemon.port)
    data = request_frame(1, "hello", {"token": "kiosk-demo"})
    data += request_frame(2, "ticket.take", {"line": "A"})
    for b in data:
        c.send_raw(bytes([b]))
    h = c.read()
    assert h["id"] == 1 and h["ok"] is True and h["result"]["role"] == "kiosk", h
    r = c.read()
    assert r["id"] == 2 and r["ok"] is True and r["result"]["number"] == "A001", r
    bystander_served(bystander)


def test_many_frames_in_one_send(daemon, bystander):
    c = daemon.kiosk()
    data = b"".join(request_frame(i, "ticket.take" if i % 2 else "ping", {"line": "B"})
                    for i in range(1, 41))
    c.send_raw(data)
    got = [c.read() for _ in range(40)]
    assert [m["id"] for m in got] == list(range(1, 41))
    assert all(m["ok"] for m in got), got
    assert [m["result"]["number"] for m in got[::2]] == ["B%03d" % i for i in range(1, 21)]
    assert all("now_ms" in m["result"] for m in got[1::2])
    bystander_served(bystander)


def test_errors_and_answers_keep_request_order(daemon, bystander):
    c = daemon.kiosk()
    reqs = [("ticket.take", {"line": "A"}), ("no.such", {}), ("ticket.take", {"line": 5}),
            ("ticket.take", {"line": "Z"}), ("ticket.take", {"line": "A"}), ("ping", None)]
    got = c.pipeline(reqs)
    assert [m["ok"] for m in got] == [True, False, False, False, True, True]
    assert [m["error"]["code"] for m in got if not m["ok"]] == \
        ["unknown_op", "bad_request", "not_found"]
    assert got[0]["result"]["number"] == "A001" and got[4]["result"]["number"] == "A002"
    bystander_served(bystander)


def test_pipelining_past_max_inflight(daemon, bystander):
    # 200 requests at once, past max_inflight (128): the server stops
    # reading until it has answered, and drops nothing.
    c = daemon.kiosk()
    n = 200
    ids = c.pipeline_send([("ticket.take", {"line": "C"})] * n)
    got = [c.read() for _ in range(n)]
    assert [m["id"] for m in got] == ids
    assert all(m["ok"] for m in got), [m for m in got if not m["ok"]][:3]
    assert [m["result"]["number"] for m in got] == ["C%03d" % i for i in range(1, n + 1)]
    assert [m["result"]["ahead"] for m in got] == list(range(n))
    last = c.ok("ticket.get", ticket_id=got[-1]["result"]["ticket_id"])
    assert last["ahead"] == n - 1
    bystander_served(bystander)


def test_pipelining_failing_requests_past_max_inflight(daemon, bystander):
    # 300 mutations that all fail (unknown line): batches that write no
    # record must still move on to the requests read after them.
    c = daemon.kiosk()
    n = 300
    ids = c.pipeline_send([("ticket.take", {"line": "Z"})] * n)
    c.sock.settimeout(3)
    got = []
    try:
        for _ in range(n):
            got.append(c.read())
    except (TimeoutError, OSError):
        pass
    assert len(got) == n, "only %d of %d pipelined requests answered" % (len(got), n)
    assert [m["id"] for m in got] == ids
    assert all(m["error"]["code"] == "not_found" for m in got), got[:3]
    bystander_served(bystander)


def test_pipelining_idem_repeats_past_max_inflight(daemon, bystander):
    # Retries answered from the idem table write no record either.
    c = daemon.kiosk()
    n = 300
    reqs = [("ticket.take", {"line": "B", "idem": "p%d" % i}) for i in range(n)]
    first = c.pipeline(reqs, chunk=100)
    ids = c.pipeline_send(reqs)
    c.sock.settimeout(3)
    again = []
    try:
        for _ in range(n):
            again.append(c.read())
    except (TimeoutError, OSError):
        pass
    assert len(again) == n, "only %d of %d pipelined retries answered" % (len(again), n)
    assert [m["id"] for m in again] == ids
    assert [m["result"] for m in again] == [m["result"] for m in first]
    bystander_served(bystander)


def test_pipelining_mixed_reads_and_writes(daemon, bystander):
    # Reads pipelined behind writes see them: answers keep request order
    # and each read reflects every write before it.
    c = daemon.kiosk()
    reqs = []
    for i in range(1, 151):
        reqs.append(("ticket.take", {"line": "A"}))
        reqs.append(("ticket.get", {"ticket_id": "%s-A%03d" % (TUESDAY, i)}))
    got = c.pipeline(reqs)
    for i in range(150):
        take, get = got[2 * i], got[2 * i + 1]
        assert take["ok"] and get["ok"], (take, get)
        assert get["result"]["ticket_id"] == take["result"]["ticket_id"]
        assert get["result"]["number"] == "A%03d" % (i + 1)
    bystander_served(bystander)


def test_client_gone_with_requests_in_flight(daemon, bystander):
    # Hanging up right after pipelining mutations must not hurt the daemon
    # (the sanitizer build catches use of a freed connection). Every request
    # that was read is applied once: the numbers have no holes.
    for _ in range(20):
        c = daemon.kiosk()
        c.pipeline_send([("ticket.take", {"line": "A"})] * 40)
        c.close()
    k = daemon.kiosk()
    n = int(k.ok("ticket.take", line="A")["number"][1:])
    got = k.pipeline([("ticket.get", {"ticket_id": "%s-A%03d" % (TUESDAY, i)})
                      for i in range(1, n + 1)])
    assert all(m["ok"] for m in got), [m for m in got if not m["ok"]][:3]
    bystander_served(bystander)


# ---- unknown argument fields (issue 17) ----

def test_unknown_args_are_logged_once_per_connection_and_op(daemon):
    """Ignored, as always, but the daemon logs the first unknown name of
    each op once per connection, so an adapter's typo shows."""
    c = daemon.tcp("kiosk-demo")
    assert c.ok("ticket.take", line="D", colour="red")["number"].startswith("D")
    assert c.ok("ticket.take", line="D", size="big")["number"].startswith("D")
    m = c.request("rate", {"ticket_id": "nope", "score": 3, "bogus": 1})
    assert m["error"]["code"] == "not_found", m  # still runs: only logged
    log = daemon.wait_log("rate: unknown argument 'bogus' ignored")
    assert log.count("ticket.take: unknown argument 'colour' ignored") == 1, log
    assert "'size'" not in log, log


def test_strict_hello_makes_unknown_args_bad_request(daemon):
    c = Client.tcp(daemon.port)
    assert c.ok("hello", token="kiosk-demo", strict=True)["role"] == "kiosk"
    id = c.send("ticket.take", {"line": "D", "colour": "red"})
    kept_error(c, c.read(), "bad_request", id=id, field="args.colour")
    assert c.ok("ticket.take", line="D")["number"] == "D001"  # nothing was taken before
    other = daemon.tcp("kiosk-demo")  # not strict: the same request is fine
    assert other.ok("ticket.take", line="D", colour="red")["number"] == "D002"
    m = Client.tcp(daemon.port).request("hello", {"token": "kiosk-demo", "strict": "yes"})
    assert m["error"]["code"] == "bad_request" and "args.strict" in m["error"]["message"], m


def test_refusals_are_logged_with_the_peer_never_the_token(daemon):
    """A refused hello and a framing error are logged with the listener and
    the peer's address (never the token), at most 10 in 10 s (issues 17, 18)."""
    c = Client.tcp(daemon.port)
    id = c.send("hello", {"token": "secret-guess-1"})
    closing_error(c, "unauthenticated", id=id)
    port = c.sock.getsockname()[1]
    log = daemon.wait_log("hello refused from tcp 127.0.0.1:%d: token not accepted on this "
                          "listener" % port)
    assert "secret-guess-1" not in log
    b = Client.tcp(daemon.port)
    b.send_raw(b"GET / HTTP/1.1\r\n\r\n")
    closing_error(b, "bad_frame", id=0)
    daemon.wait_log("bad frame from tcp 127.0.0.1:%d: frame: length 1195725856 is over "
                    "max_frame" % b.sock.getsockname()[1])
    for i in range(12):
        x = Client.tcp(daemon.port)
        x.send("hello", {"token": "flood-%d" % i})
        closing_error(x, "unauthenticated")
    # A marker after the flood, through the same log: every line before it
    # is there once it is.
    daemon.tcp("kiosk-demo").ok("ticket.take", line="D", marker=1)
    log = daemon.wait_log("ticket.take: unknown argument 'marker' ignored")
    # At most 10 such lines in a 10 s window (daemon/log.c, HQ_LOG_BURST).
    assert len(re.findall(r"(hello refused|bad frame) from tcp", log)) == 10, log
    assert "flood-" not in log
