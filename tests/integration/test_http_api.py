"""The HTTP face (docs/PROTOCOL.md "The HTTP face"): POST /api/v1/OP and its
status codes, the same durable path and idem as TCP, Server-Sent Events
with resume across a restart, GET /metrics, the listener's limits, the
security headers, tokens never taken from a URL. Only the standard
library speaks HTTP here (http.client, socket)."""
import http.client
import json
import re
import socket
import threading
import time


from conftest import TUESDAY, TUESDAY_10AM, wait_until
from test_limits import limits

SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
            "content-security-policy": "default-src 'self'"}


def tid(number):
    return "%s-%s" % (TUESDAY, number)


def http_conn(d, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout)


def request(d, method, path, body=None, token=None, headers=None):
    """(status, headers as a dict with lower-case names, body bytes)."""
    c = http_conn(d)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    raw = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, raw


def api(d, op, args=None, token="kiosk-demo", body=None, headers=None):
    """POST /api/v1/OP: (status, the JSON answer). Every answer carries
    the security headers."""
    if body is None:
        body = json.dumps(args if args is not None else {}).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    status, hdrs, raw = request(d, "POST", "/api/v1/" + op, body, token, h)
    for k, v in SECURITY.items():
        assert hdrs.get(k) == v, (k, hdrs)
    assert hdrs["content-type"] == "application/json"
    return status, json.loads(raw)


def ok(d, op, token="kiosk-demo", **args):
    status, m = api(d, op, args, token)
    assert status == 200 and m["ok"] is True, (status, m)
    return m["result"]


def err(d, op, token="kiosk-demo", **args):
    """(status, code, message) of a refused request."""
    status, m = api(d, op, args, token)
    assert m["ok"] is False and set(m) == {"ok", "error"}, m
    return status, m["error"]["code"], m["error"]["message"]


# ---- POST /api/v1/OP ----

def test_ops_answer_json_with_the_status_of_their_code(daemon):
    t = ok(daemon, "ticket.take", line="A")
    assert t["number"] == "A001" and t["ticket_id"] == tid("A001")
    assert isinstance(t["taken_ms"], int) and t["taken_ms"] == TUESDAY_10AM
    # The same ticket seen over TCP: one state, two faces.
    assert daemon.kiosk().ok("ticket.get", ticket_id=tid("A001"))["number"] == "A001"

    assert err(daemon, "ticket.take")[:2] == (400, "bad_request")
    status, code, msg = err(daemon, "ticket.take", token="not-a-token", line="A")
    assert (status, code) == (401, "unauthenticated") and "not-a-token" not in msg
    # A token the HTTP listener does not take (a department's: the Unix
    # socket's; the demo hall's HTTP listener takes admin for /dashboard).
    assert err(daemon, "review.list", token="dept-mkt")[:2] == (401, "unauthenticated")
    status, m = api(daemon, "ticket.take", {"line": "A"}, token=None)
    assert status == 401 and m["error"]["code"] == "unauthenticated"
    assert "Authorization" in m["error"]["message"]
    assert err(daemon, "window.state", state="open")[:2] == (403, "forbidden")
    assert err(daemon, "no.such.op")[:2] == (404, "unknown_op")
    assert err(daemon, "hello", token="kiosk-demo")[:2] == (404, "unknown_op")
    assert err(daemon, "ticket.get", ticket_id=tid("Z999"))[:2] == (404, "not_found")
    w = "window-W01"
    assert err(daemon, "window.call", token=w)[:2] == (409, "conflict")  # closed
    ok(daemon, "window.state", token=w, state="open")
    assert ok(daemon, "window.call", token=w)["ticket"]["number"] == "A001"
    status, code, msg = err(daemon, "window.intake", token=w, service="S01",
                            applicant={"kind": "person", "id": "110101199003077777",
                                       "name": "Zhang San"},
                            materials=["M01", "M02"], outcome="accept")
    assert (status, code) == (409, "checklist") and "M03" in msg
    r = ok(daemon, "window.intake", token=w, service="S01",
           applicant={"kind": "person", "id": "110101199003077777", "name": "Zhang San"},
           materials=["M01", "M02", "M03"], outcome="accept")
    assert r["case_no"] == "20261124-0001"


def test_bad_bodies_are_400_naming_the_problem(daemon):
    status, m = api(daemon, "ticket.take", body=b'{"line": "A"')
    assert status == 400 and m["error"]["code"] == "bad_request"
    assert "not JSON" in m["error"]["message"]
    for body in (b'["A"]', b'"A"', b'42', b'null'):
        status, m = api(daemon, "ticket.take", body=body)
        assert status == 400 and "expected a JSON object" in m["error"]["message"], body
    status, m = api(daemon, "ticket.take", body=b'{"line": "A", "line": "B"}')
    assert status == 400 and "duplicate" in m["error"]["message"]
    # Deeper than a frame may nest: refused by the same check as on TCP.
    deep = {"line": "A", "x": 1}
    for _ in range(40):
        deep = {"x": deep}
    status, m = api(daemon, "ticket.take", deep)
    assert status == 400 and m["error"]["code"] in ("bad_frame", "bad_request"), m
    # A float where an integer goes: integers stay integers, so it is refused.
    assert err(daemon, "ticket.take", line="A", priority=1.5)[:2] == (400, "bad_request")
    # Nothing of it was taken.
    assert err(daemon, "ticket.get", ticket_id=tid("A001"))[1] == "not_found"
    status, m = api(daemon, "ticket.take", {"line": "A"}, headers={}, token=None)
    assert status == 401


def test_a_token_in_the_url_is_refused_never_read(daemon):
    for path in ("/api/v1/ticket.take?token=kiosk-demo",
                 "/api/v1/ticket.take?x=1&access_token=kiosk-demo",
                 "/api/v1/events?topics=call&token=display-demo"):
        for token in (None, "kiosk-demo"):
            status, hdrs, raw = request(daemon, "POST" if "ticket" in path else "GET", path,
                                        b'{"line": "A"}', token)
            m = json.loads(raw)
            assert status == 400 and "never accepted in the URL" in m["error"]["message"], m
    assert err(daemon, "ticket.get", ticket_id=tid("A001"))[1] == "not_found"
    assert "kiosk-demo" not in daemon.log_text()


def test_wrong_method_and_unknown_path(daemon):
    status, hdrs, raw = request(daemon, "GET", "/api/v1/ticket.take", token="kiosk-demo")
    assert status == 400 and "POST" in json.loads(raw)["error"]["message"]
    status, hdrs, raw = request(daemon, "GET", "/no/such/page")
    assert status == 404 and json.loads(raw)["error"]["code"] == "not_found"
    for k, v in SECURITY.items():
        assert hdrs[k] == v
    status, hdrs, raw = request(daemon, "GET", "/")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert b"hallq" in raw
    for k, v in SECURITY.items():
        assert hdrs[k] == v


def test_idem_retry_over_http_gives_the_same_answer(daemon):
    t1 = ok(daemon, "ticket.take", line="A", idem="http-k1-0001")
    assert ok(daemon, "ticket.take", line="A", idem="http-k1-0001") == t1
    # ... and over TCP, the same key of the same kiosk is the same request.
    assert daemon.kiosk().ok("ticket.take", line="A", idem="http-k1-0001") == t1
    assert ok(daemon, "ticket.take", line="A")["number"] == "A002"


def test_kiosk_rate_holds_across_http_requests(make_daemon):
    # Each HTTP request has a conn of its own: the kiosk's tokens must
    # still be counted across them (else the limit would never bite).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra=limits(kiosk_rate_per_s=1, kiosk_burst=3))
    codes = [api(d, "ticket.take", {"line": "A"})[0] for _ in range(6)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes
    status, code, msg = err(d, "ticket.take", line="A")
    assert (status, code) == (429, "limit") and "rate" in msg
    # A window is not a kiosk: no rate.
    assert api(d, "window.state", {"state": "open"}, token="window-W01")[0] == 200


def test_unavailable_is_503(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra={"disk_reserve_bytes: 268435456": "disk_reserve_bytes: 1099511627776"})
    status, code, msg = err(d, "ticket.take", line="A")
    assert (status, code) == (503, "unavailable") and "reserve" in msg


def test_an_error_message_that_is_not_utf8_is_still_json(daemon):
    # The unknown op's name (from the URL, %FF decoded to a byte) is quoted
    # in the message: its bad bytes are replaced, the answer stays JSON.
    # (No read answers a client's string as it is, so no end-to-end test
    # reaches the 500 a result that is not UTF-8 would get.)
    status, m = api(daemon, "no.such.%FF")
    assert status == 404 and m["error"]["code"] == "unknown_op"
    assert "no.such." in m["error"]["message"]


# ---- the same durable path ----

def test_http_and_tcp_mutations_share_batches_and_survive_sigkill(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    got, errors = {}, []
    n = 20

    def http_kiosk():
        for i in range(n):
            s, m = api(d, "ticket.take", {"line": "A", "idem": "h%d" % i})
            if s != 200:
                errors.append(m)
            got["h%d" % i] = m["result"]["ticket_id"]

    def tcp_kiosk():
        k = d.kiosk()
        for i in range(n):
            got["t%d" % i] = k.ok("ticket.take", line="B", idem="t%d" % i)["ticket_id"]

    ts = [threading.Thread(target=http_kiosk), threading.Thread(target=tcp_kiosk)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and len(got) == 2 * n
    # Answered means durable: a SIGKILL right after the last answer loses
    # nothing of either face.
    d.kill()
    d.start()
    k = d.kiosk()
    for key, ticket in got.items():
        assert k.ok("ticket.get", ticket_id=ticket)["ticket_id"] == ticket, key
    assert sorted(t for t in got.values() if "-A" in t) == [tid("A%03d" % i)
                                                         for i in range(1, n + 1)]


# ---- GET /api/v1/events ----

class Stream:
    """An event stream read with http.client: events as (id, name, data)."""

    def __init__(self, d, query="topics=call,line", token="display-demo", last_id=None,
                 timeout=10):
        self.c = http_conn(d, timeout)
        h = {"Authorization": "Bearer " + token} if token else {}
        if last_id is not None:
            h["Last-Event-ID"] = str(last_id)
        self.c.request("GET", "/api/v1/events?" + query, headers=h)
        self.r = self.c.getresponse()
        self.headers = {k.lower(): v for k, v in self.r.getheaders()}
        self.comments = []

    def next(self):
        """The next event; comments are kept in self.comments."""
        ev = {}
        while True:
            line = self.r.readline()
            assert line, "the stream ended"
            line = line.decode().rstrip("\n")
            if line == "":
                if "event" in ev:
                    return int(ev["id"]), ev["event"], json.loads(ev["data"])
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            k, _, v = line.partition(": ")
            ev[k] = v

    def events(self, n):
        return [self.next() for _ in range(n)]

    def close(self):
        self.c.close()


def test_events_stream_is_server_sent_events(daemon):
    s = Stream(daemon)
    assert s.r.status == 200
    assert s.headers["content-type"] == "text/event-stream"
    for k, v in SECURITY.items():
        assert s.headers[k] == v
    ok(daemon, "ticket.take", line="A")
    seq, name, data = s.next()
    assert name == "line" and data["line"] == "A" and data["waiting"] == 1
    assert seq > 0
    s.close()
    # Refusals before the stream begins are JSON with their status.
    status, hdrs, raw = request(daemon, "GET", "/api/v1/events?topics=call")
    assert status == 401
    status, hdrs, raw = request(daemon, "GET", "/api/v1/events?topics=nope",
                                token="display-demo")
    assert status == 400 and "topic" in json.loads(raw)["error"]["message"]
    status, hdrs, raw = request(daemon, "GET", "/api/v1/events?topics=call&since=x",
                                token="display-demo")
    assert status == 400


def test_events_resume_by_last_event_id_across_a_restart(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    s = Stream(d, "topics=call,line&since=0")
    k = d.kiosk()
    for _ in range(3):
        k.ok("ticket.take", line="A")
    seen = s.events(3)
    s.close()
    last = seen[-1][0]
    d.kill()          # the stream's server goes away mid-stream
    d.start()
    k = d.kiosk()
    for _ in range(2):
        k.ok("ticket.take", line="B")
    w = d.tcp("window-W01")
    w.ok("window.state", state="open")
    w.ok("window.call")
    # A browser reconnects to the same URL with the last id it saw.
    s = Stream(d, "topics=call,line&since=0", last_id=last)
    rest = s.events(4)   # two line events (B), and the call's call + line
    s.close()
    full = Stream(d, "topics=call,line&since=0")
    everything = full.events(len(seen) + len(rest))
    full.close()
    assert seen + rest == everything       # nothing missed, nothing twice
    assert all(e[0] > last for e in rest)
    assert [e[1] for e in rest].count("call") == 1


def test_events_keep_alive_comments(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    env={"HALLQ_SSE_KEEPALIVE_MS": "100"})
    s = Stream(d)
    deadline = time.monotonic() + 10
    while not any("keep-alive" in c for c in s.comments):
        assert time.monotonic() < deadline
        line = s.r.readline().decode()
        if line.startswith(":"):
            s.comments.append(line)
    s.close()


def test_a_stream_ends_cleanly_when_hallqd_stops(daemon):
    s = Stream(daemon)
    ok(daemon, "ticket.take", line="A")
    s.next()
    daemon.stop()           # exit 0 within the stop timeout
    # The stream was ended with its last chunk, not cut: http.client
    # raises IncompleteRead on a chunked body cut short.
    s.r.read()
    s.close()


# ---- GET /metrics ----

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def metrics(d):
    """The exposition text parsed: {(name, ((label, value)...)): float},
    with every line checked against the format and every sample's family
    declared by a TYPE line before it."""
    status, hdrs, raw = request(d, "GET", "/metrics")
    assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
    types, out = {}, {}
    for line in raw.decode().splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not exposition format: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "no TYPE for %r" % line
        labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(3) or ""))
        out[(name, labels)] = float(m.group(5))
    for name, kind in types.items():
        if kind == "counter":
            assert name.endswith("_total"), name
    return out


def test_metrics_parse_and_move_with_requests(daemon):
    m0 = metrics(daemon)
    key = ("hallq_requests_total", (("op", "ticket.take"), ("code", "ok")))
    bad = ("hallq_requests_total", (("op", "ticket.take"), ("code", "bad_request")))
    k = daemon.kiosk()
    k.ok("ticket.take", line="A")
    ok(daemon, "ticket.take", line="A")
    err(daemon, "ticket.take")
    s = Stream(daemon)
    m1 = metrics(daemon)
    assert m1[key] - m0.get(key, 0) == 2
    assert m1[bad] - m0.get(bad, 0) == 1
    syncs = m1[("hallq_wal_sync_seconds_count", ())] - m0[("hallq_wal_sync_seconds_count", ())]
    assert syncs >= 1
    assert m1[("hallq_batch_records_count", ())] >= 2
    buckets = [v for (n, l), v in sorted(m1.items(), key=lambda kv: kv[0])
               if n == "hallq_wal_sync_seconds_bucket" and l[0][1] != "+Inf"]
    assert buckets == sorted(buckets)  # cumulative
    assert m1[("hallq_wal_sync_seconds_bucket", (("le", "+Inf"),))] == \
        m1[("hallq_wal_sync_seconds_count", ())]
    assert m1[("hallq_wal_last_lsn", ())] > m0[("hallq_wal_last_lsn", ())]
    assert m1[("hallq_wal_bytes", ())] > 0
    assert m1[("hallq_disk_free_bytes", ())] > 0
    assert m1[("hallq_subscribers", ())] == 1
    assert m1[("hallq_connections", (("listener", "tcp"), ("role", "kiosk")))] == 1
    assert m1[("hallq_connections", (("listener", "http"), ("role", "display")))] == 1
    assert m1[("hallq_http_connections", ())] >= 1
    s.close()


# ---- limits ----

def test_a_body_over_max_frame_is_413(daemon):
    body = json.dumps({"line": "A", "pad": "x" * 70000}).encode()
    status, hdrs, raw = request(daemon, "POST", "/api/v1/ticket.take", body, "kiosk-demo",
                                {"Content-Type": "application/json"})
    assert status == 413
    # Just under max_frame as JSON, but with the frame's envelope over it.
    body = json.dumps({"line": "A", "pad": "x" * 65510}).encode()
    assert len(body) <= 65536
    status, hdrs, raw = request(daemon, "POST", "/api/v1/ticket.take", body, "kiosk-demo")
    assert status == 413 and json.loads(raw)["error"]["code"] == "limit"
    assert err(daemon, "ticket.get", ticket_id=tid("A001"))[1] == "not_found"


def test_max_connections_on_the_http_listener(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    extra=limits(max_connections=3))
    held = [socket.create_connection(("127.0.0.1", d.http_port)) for _ in range(3)]
    wait_until(lambda: metrics_or_none(held[0]) is not None, "a request on a held one")
    extra = socket.create_connection(("127.0.0.1", d.http_port))
    extra.settimeout(5)
    try:
        assert extra.recv(100) == b""       # closed at once
    except ConnectionResetError:
        pass
    for h in held:
        h.close()
    wait_until(lambda: request_ok(d), "room once they left", timeout=10)


def metrics_or_none(sock):
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    return sock.recv(10) or None


def request_ok(d):
    try:
        return request(d, "GET", "/")[0] == 200
    except (ConnectionError, http.client.HTTPException):
        return False


def test_a_slow_request_is_dropped_after_frame_timeout(make_daemon):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra=limits(frame_timeout_s=1))
    s = socket.create_connection(("127.0.0.1", d.http_port))
    s.sendall(b"POST /api/v1/ticket.take HTTP/1.1\r\nHost: x\r\n")   # the head never ends
    s.settimeout(10)
    t0 = time.monotonic()
    data = b""
    try:
        while True:
            b = s.recv(1000)
            if not b:
                break
            data += b
    except ConnectionResetError:
        pass
    assert time.monotonic() - t0 < 8
    assert b" 200 " not in data
    # An idle kept-alive connection goes the same way.
    s = socket.create_connection(("127.0.0.1", d.http_port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(10)
    t0 = time.monotonic()
    while s.recv(10000):
        pass
    assert time.monotonic() - t0 < 8


def test_a_huge_request_head_is_refused(daemon):
    s = socket.create_connection(("127.0.0.1", daemon.http_port))
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200)) + b"\r\n"
    s.settimeout(10)
    try:
        s.sendall(head)
        data = s.recv(1000)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    assert not data.startswith(b"HTTP/1.1 200"), data[:100]
    s.close()


def test_tokens_are_never_logged(daemon):
    ok(daemon, "ticket.take", line="A")
    err(daemon, "ticket.take", token="secret-token-xyz", line="A")
    s = Stream(daemon, "topics=call&since=0")
    s.close()
    daemon.stop()
    text = daemon.log_text()
    assert "kiosk-demo" not in text and "secret-token-xyz" not in text
    assert "display-demo" not in text


# ---- hello does not wait for every batch in flight ----

def hellos(d):
    m = metrics(d)
    return sum(v for (n, l), v in m.items()
               if n == "hallq_requests_total" and ("op", "hello") in l)


def request_finalizer(d, hold):
    """Lets a held sync go before the daemon is stopped (a test that fails
    while holding it would otherwise leave hallqd unable to stop)."""
    stop = d.stop

    def released_stop(*a, **kw):
        if hold.exists():
            hold.unlink()
        return stop(*a, **kw)
    d.stop = released_stop


def test_an_http_mutation_joins_the_pending_batch(make_daemon, workdir):
    # A batch is held in its fdatasync. An HTTP request says hello first:
    # hello reads only the config, none of which is in flight, so it is
    # answered at once and the op is applied as the pending batch, while the
    # held one is still being written (it does not wait for a quiet point).
    from test_faults import preload
    hold = workdir / "hold"
    env = preload("none:1:EIO")
    env["HALLQ_FAULT_HOLD"] = str(hold)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env)
    request_finalizer(d, hold)
    taker = d.kiosk()
    hold.write_text("")
    taker.send("ticket.take", {"line": "A"})
    wait_until((workdir / "hold.held").exists, "held fdatasync")
    before = hellos(d)
    got = {}
    t = threading.Thread(target=lambda: got.update(r=api(d, "ticket.take", {"line": "A"})))
    t.start()
    wait_until(lambda: hellos(d) == before + 1, "the HTTP request's hello answered")
    m = metrics(d)
    wait_until(lambda: metrics(d)[("hallq_wal_last_lsn", ())] ==
               m[("hallq_wal_durable_lsn", ())] + 2, "the HTTP take applied, pending")
    assert "r" not in got                    # ... and not answered before it is durable
    hold.unlink()
    t.join(30)
    assert taker.read_response()["result"]["number"] == "A001"
    assert got["r"][0] == 200 and got["r"][1]["result"]["number"] == "A002"


def test_a_token_a_reload_in_flight_adds_waits_for_it(make_daemon, workdir):
    # The config record that adds a token is held in its fdatasync: a hello
    # with that token waits until it is durable (it is not admitted by a
    # config a failed sync could take back), then the request goes through.
    from test_faults import preload
    hold = workdir / "hold"
    env = preload("none:1:EIO")
    env["HALLQ_FAULT_HOLD"] = str(hold)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, env=env)
    request_finalizer(d, hold)
    text = d.config.read_text()
    line = "  - {token: kiosk-demo, role: kiosk, id: K1}\n"
    assert line in text
    d.config.write_text(text.replace(line, line + "  - {token: kiosk-new, role: kiosk, id: K9}\n"))
    a, pinger = d.admin(), d.kiosk()
    hold.write_text("")
    a.send("config.reload", {})
    wait_until((workdir / "hold.held").exists, "held fdatasync")
    before = hellos(d)
    got = {}
    t = threading.Thread(target=lambda: got.update(
        r=api(d, "ticket.take", {"line": "A"}, token="kiosk-new")))
    t.start()
    wait_until(lambda: metrics(d)[("hallq_connections", (("listener", "http"),
                                                         ("role", "none")))] == 1,
               "the HTTP request's hello waiting")
    assert "now_ms" in pinger.ok("ping")
    assert hellos(d) == before and "r" not in got
    hold.unlink()
    t.join(30)
    assert a.read_response()["ok"] is True
    assert got["r"][0] == 200, got


def test_clients_that_leave_mid_answer_do_not_kill_hallqd(daemon):
    # Clients that leave while their answers are being written (a browser
    # tab closed): pipelined requests, then the socket closed unread; the
    # first answer written draws a reset, the next write fails with EPIPE,
    # which must not be a SIGPIPE that ends the daemon. Then streams reset
    # while events are written to them.
    body = b'{"line": "A"}'
    one = (b"POST /api/v1/ticket.take HTTP/1.1\r\nHost: x\r\n"
           b"Authorization: Bearer kiosk-demo\r\nContent-Length: %d\r\n\r\n%s"
           % (len(body), body))
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", daemon.http_port))
        s.sendall(one * 8)
        s.close()                              # unread: its answers meet a reset
    wait_until(lambda: metrics(daemon)[("hallq_http_connections", ())] == 1,
               "the leavers' connections gone")
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", daemon.http_port))
        s.sendall(b"GET /api/v1/events?topics=line HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer display-demo\r\n\r\n")
        s.settimeout(10)
        assert s.recv(1000).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                              # RST
    k = daemon.kiosk()
    for _ in range(5):
        k.ok("ticket.take", line="B")         # events written to the reset sockets
    assert daemon.running()
    assert "now_ms" in daemon.kiosk().ok("ping")
    wait_until(lambda: metrics(daemon)[("hallq_subscribers", ())] == 0, "the streams gone")


def test_the_listeners_roles_come_from_listeners_http(make_daemon):
    # (The demo hall's listeners.http takes kiosk, window, display and, for
    # /dashboard, admin.)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, extra={
        "    roles: [kiosk, window, display, admin]": "    roles: [display]"})
    status, code, msg = err(d, "ticket.take", line="A")
    assert (status, code) == (401, "unauthenticated") and "listener" in msg
    assert d.kiosk().ok("ticket.take", line="A")["number"] == "A001"   # TCP takes it
    s = Stream(d)
    assert s.r.status == 200
    s.close()
