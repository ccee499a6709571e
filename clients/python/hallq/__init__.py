"""hallq: a client of the hallq wire protocol (docs/PROTOCOL.md).

A frame is a 4-byte big-endian length and that many bytes of one MessagePack
map. Requests are {id, op, args}; answers come back in request order as
{id, ok: true, result} or {id, ok: false, error: {code, message}}; after
`subscribe`, events {event, seq, data} are pushed between answers.

    c = hallq.connect_unix("/run/hallq/hall.sock", "dept-mkt-token")
    case = c.call("review.claim")["case"]
    for ev in c.events(["case"], since=state.seq): ...

Errors are exceptions (HallqError, with .code and .message); a connection
the server closed raises Closed. Depends on msgpack only.
"""
import socket
import struct
from collections import deque

import msgpack

__all__ = ["Client", "HallqError", "Closed", "connect_tcp", "connect_unix"]


class HallqError(Exception):
    """An error answer: code is one of PROTOCOL.md's error codes."""

    def __init__(self, op, code, message):
        super().__init__("%s: %s: %s" % (op, code, message))
        self.op, self.code, self.message = op, code, message


class Closed(Exception):
    """The server closed the connection."""


class Client:
    """One connection. Not thread-safe: one caller at a time."""

    def __init__(self, sock, timeout=30.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        self.pending = deque()  # events read while waiting for an answer
        self.last_seq = 0       # the highest event seq handed out
        self._seq_open = None   # the seq whose events are being handed out

    # ---- wire ----
    def _send(self, op, args):
        id = self.next_id
        self.next_id += 1
        msg = {"id": id, "op": op}
        if args:
            msg["args"] = args
        body = msgpack.packb(msg, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return id

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e)) from e
            if not d:
                raise Closed("the server closed the connection")
            self.buf += d

    def _read(self):
        self._fill(4)
        (n,) = struct.unpack(">I", self.buf[:4])
        self._fill(4 + n)
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return msgpack.unpackb(body, raw=False)

    def _answer(self, op, id):
        while True:
            m = self._read()
            if "event" in m:
                self.pending.append(m)
                continue
            if m.get("id") not in (id, 0):
                raise HallqError(op, "internal", "answer to id %r, expected %d" % (m.get("id"), id))
            if m.get("ok"):
                return m["result"]
            raise HallqError(op, m["error"]["code"], m["error"]["message"])

    # ---- requests ----
    def call(self, op, **args):
        """One request; its result, or HallqError."""
        return self._answer(op, self._send(op, args))

    def pipeline(self, requests):
        """Sends every (op, args) at once, then reads their answers in
        order: a list of results, an error answer in its place as a
        HallqError (not raised)."""
        ids = [(op, self._send(op, args or {})) for op, args in requests]
        out = []
        for op, id in ids:
            try:
                out.append(self._answer(op, id))
            except HallqError as e:
                out.append(e)
        return out

    def hello(self, token, client="hallq-python", strict=False):
        args = {"token": token, "client": client}
        if strict:
            args["strict"] = True
        return self.call("hello", **args)

    # ---- events ----
    def subscribe(self, topics, since=None):
        """Subscribes; returns the seq it answered. With since, the events
        after it come first (PROTOCOL.md)."""
        args = {"topics": list(topics)}
        self._seq_open = None  # a record seen before is skipped whole
        if since is not None:
            args["since"] = since
            self.last_seq = max(self.last_seq, since)
        return self.call("subscribe", **args)["seq"]

    def next_event(self):
        """The next event not handed out before (an event of a seq already
        seen, as after a resubscribe, is skipped)."""
        while True:
            m = self.pending.popleft() if self.pending else self._read()
            if "event" not in m:
                raise HallqError("event", "internal", "an answer nobody waited for: %r" % m)
            # Several events of one record share its seq: hand them all out
            # the first time, skip them on a repeat.
            if m["seq"] <= self.last_seq and m["seq"] != self._seq_open:
                continue
            self._seq_open = m["seq"]
            self.last_seq = max(self.last_seq, m["seq"])
            return m

    def events(self, topics, since=None):
        """Subscribes and yields events for ever ({event, seq, data})."""
        self.subscribe(topics, since)
        while True:
            yield self.next_event()

    def close(self):
        self.sock.close()


def connect_tcp(host, port, token, timeout=30.0, **hello):
    c = Client(socket.create_connection((host, port), timeout=timeout), timeout)
    c.hello(token, **hello)
    return c


def connect_unix(path, token, timeout=30.0, **hello):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    c = Client(s, timeout)
    c.hello(token, **hello)
    return c
