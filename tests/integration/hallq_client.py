"""A small client of the hallq protocol for tests: 4-byte big-endian
length frames holding one MessagePack map each."""
import socket
import struct

import msgpack


class Closed(Exception):
    """The server closed the connection."""


class Client:
    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.next_id = 1
        self.buf = b""

    @classmethod
    def tcp(cls, port, host="127.0.0.1", timeout=10.0):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout)

    @classmethod
    def unix(cls, path, timeout=10.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s, timeout)

    def close(self):
        self.sock.close()

    # ---- raw frames ----
    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_body(self, body: bytes):
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def send(self, op, args=None, id=None):
        if id is None:
            id = self.next_id
            self.next_id += 1
        msg = {"id": id, "op": op}
        if args is not None:
            msg["args"] = args
        self.send_body(msgpack.packb(msg, use_bin_type=True))
        return id

    def _fill(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise Closed()
            self.buf += d

    def read(self):
        """The next frame, decoded."""
        self._fill(4)
        (n,) = struct.unpack(">I", self.buf[:4])
        self._fill(4 + n)
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return msgpack.unpackb(body, raw=False)

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection (after any frames)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    # ---- requests ----
    def call(self, op, **args):
        """Sends one request, returns the response map."""
        id = self.send(op, args if args else None)
        while True:
            m = self.read()
            if "event" in m:
                continue
            assert m["id"] == id, m
            return m

    def ok(self, op, **args):
        m = self.call(op, **args)
        assert m["ok"] is True, m
        return m["result"]

    def err(self, op, **args):
        m = self.call(op, **args)
        assert m["ok"] is False, m
        return m["error"]["code"], m["error"]["message"]

    def hello(self, token):
        return self.ok("hello", token=token, client="pytest")
