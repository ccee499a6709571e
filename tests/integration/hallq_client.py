"""A small client of the hallq wire protocol, for the integration tests.

A frame is a 4-byte big-endian length and that many bytes holding one
MessagePack map. Requests are {id, op, args}; answers come back in request
order as {id, ok: true, result} or {id, ok: false, error: {code, message}}.

The client never hides what the server did: `read()` returns the next frame
as it came, `is_closed()` tells whether the server hung up, and the raw
senders let a test put any bytes on the wire.
"""
import socket
import struct
import threading

import msgpack

DEFAULT_TIMEOUT = 10.0


class Closed(Exception):
    """The server closed the connection (EOF or reset) before a full frame."""


def frame(body: bytes) -> bytes:
    """One frame around an already encoded body."""
    return struct.pack(">I", len(body)) + body


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def request_frame(id, op, args=None) -> bytes:
    """The bytes of one request; args None leaves the field out."""
    msg = {"id": id, "op": op}
    if args is not None:
        msg["args"] = args
    return frame(pack(msg))


class Client:
    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self.next_id = 1
        self.buf = b""

    # ---- connecting ----
    @classmethod
    def tcp(cls, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout)

    @classmethod
    def unix(cls, path, timeout=DEFAULT_TIMEOUT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(str(path))
        except BaseException:
            s.close()
            raise
        return cls(s, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- raw bytes and frames ----
    def send_raw(self, data: bytes):
        """Puts bytes on the wire as they are."""
        self.sock.sendall(data)

    def send_body(self, body: bytes):
        """One frame around `body` (which need not be valid MessagePack)."""
        self.sock.sendall(frame(body))

    def take_id(self):
        id = self.next_id
        self.next_id += 1
        return id

    def send(self, op, args=None, id=None):
        """Sends one request without waiting; returns its id."""
        if id is None:
            id = self.take_id()
        self.sock.sendall(request_frame(id, op, args))
        return id

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e)) from e
            if not d:
                raise Closed("EOF after %d buffered bytes" % len(self.buf))
            self.buf += d

    def read_frame(self) -> bytes:
        """The body of the next frame, undecoded."""
        self._fill(4)
        (n,) = struct.unpack(">I", self.buf[:4])
        self._fill(4 + n)
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return body

    def read(self):
        """The next frame, decoded (a response or a pushed event)."""
        return msgpack.unpackb(self.read_frame(), raw=False)

    def read_response(self):
        """The next response, skipping pushed events."""
        while True:
            m = self.read()
            if "event" not in m:
                return m

    def is_closed(self, timeout=5.0):
        """True once the server has closed the connection (frames still
        buffered are dropped); False if it is still open after `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)

    # ---- requests ----
    def request(self, op, args=None):
        """Sends one request and returns the whole response map."""
        id = self.send(op, args)
        m = self.read_response()
        assert m.get("id") == id, "answer to id %s expected, got %r" % (id, m)
        return m

    def call(self, op, **args):
        """(ok, result) on success, (ok, error) on failure, where error is
        the {code, message} map."""
        m = self.request(op, args if args else None)
        if m["ok"] is True:
            return True, m["result"]
        assert m["ok"] is False, m
        return False, m["error"]

    def ok(self, op, **args):
        """The result of a request that must succeed."""
        m = self.request(op, args if args else None)
        assert m["ok"] is True, "%s %r: %r" % (op, args, m)
        return m["result"]

    def err(self, op, **args):
        """(code, message) of a request that must fail."""
        m = self.request(op, args if args else None)
        assert m["ok"] is False, "%s %r should fail: %r" % (op, args, m)
        return m["error"]["code"], m["error"]["message"]

    def hello(self, token, client="pytest"):
        """Authenticates; returns hello's result (must succeed)."""
        return self.ok("hello", token=token, client=client)

    # ---- pipelining ----
    def pipeline_send(self, requests):
        """Sends every (op, args) request in one write; returns their ids."""
        ids, data = [], []
        for op, args in requests:
            id = self.take_id()
            ids.append(id)
            data.append(request_frame(id, op, args))
        self.sock.sendall(b"".join(data))
        return ids

    def pipeline(self, requests, chunk=None):
        """Sends every (op, args) request at once and reads all answers,
        checking they come in request order. The bytes are written from a
        second thread while answers are read, so a server that stops reading
        at max_inflight cannot deadlock against our own send buffer.
        With `chunk`, sends at most that many before reading their answers.
        Returns the response maps."""
        requests = list(requests)
        if chunk:
            out = []
            for i in range(0, len(requests), chunk):
                out += self.pipeline(requests[i:i + chunk])
            return out
        ids, data = [], []
        for op, args in requests:
            id = self.take_id()
            ids.append(id)
            data.append(request_frame(id, op, args))
        blob = b"".join(data)
        failure = []

        def writer():
            try:
                self.sock.sendall(blob)
            except OSError as e:  # the reader sees the close too
                failure.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        out = []
        try:
            for id in ids:
                m = self.read_response()
                assert m.get("id") == id, "answer to id %s expected, got %r" % (id, m)
                out.append(m)
        finally:
            t.join(self.timeout)
        assert not failure, failure
        return out


def connect_tcp(port, token=None, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
    """A TCP connection, authenticated when a token is given."""
    c = Client.tcp(port, host, timeout)
    if token is not None:
        c.hello(token)
    return c


def connect_unix(path, token=None, timeout=DEFAULT_TIMEOUT):
    """A Unix-socket connection, authenticated when a token is given."""
    c = Client.unix(path, timeout)
    if token is not None:
        c.hello(token)
    return c
