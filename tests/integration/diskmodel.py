"""diskmodel.py: what a disk may hold after a power loss, rebuilt from the
trace the disktrace shim (tests/faults/disktrace.c) writes of the WAL's
writes, syncs, renames and directory syncs; used by powerloss.py.

Each file's bytes as of its last completed sync are kept; each 4 KiB page
written after it is kept or left as it was, as the image asks; directory
changes not yet made durable by a directory fsync are kept as a prefix.
LMDB's newest meta page may be rolled back (MDB_NOMETASYNC allows it)."""
import os
import pathlib
import shutil
import struct

from conftest import BUILD

import walfile

DISKTRACE = BUILD / "tests" / "faults" / "libdisktrace.so"
PAGE = 4096
O_CREAT = 0o100
O_TRUNC = 0o1000
ENTRY = struct.Struct("<4sB3xIIQQQ")  # magic, op, path len, data len, seq, a, b
MAGIC = b"HQDT"


def shim_env(trace):
    """The environment of a hallqd traced into `trace`. ASan wants its
    runtime first in a preload list; the shim is built without it."""
    return {"LD_PRELOAD": str(DISKTRACE), "HALLQ_DISKTRACE": str(trace),
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}


# ---- the trace ----

class Entry:
    __slots__ = ("op", "seq", "path", "a", "b", "data")

    def __init__(self, op, seq, path, a, b, data):
        self.op, self.seq, self.path, self.a, self.b, self.data = op, seq, path, a, b, data

    def __repr__(self):
        return "Entry(%s #%d %s a=%d b=%d %d bytes)" % (self.op, self.seq, self.path, self.a,
                                                      self.b, len(self.data))


def read_trace(path):
    """The entries of a trace file. An entry cut short at the end (the kill
    struck inside its write) is left out: that is as if the kill came just
    before it, which the reader's rules cover."""
    raw = pathlib.Path(path).read_bytes()
    out, pos = [], 0
    while pos + ENTRY.size <= len(raw):
        magic, op, plen, dlen, seq, a, b = ENTRY.unpack_from(raw, pos)
        assert magic == MAGIC, "trace %s: bad entry at byte %d" % (path, pos)
        end = pos + ENTRY.size + plen + dlen
        if end > len(raw):
            break
        p = raw[pos + ENTRY.size:pos + ENTRY.size + plen].decode()
        data = raw[pos + ENTRY.size + plen:end]
        out.append(Entry(chr(op), seq, p, a, b, data))
        pos = end
    return out


# ---- the disk ----

def data_ranges(f, pos=0):
    """(offset, length) of the parts of an open file from `pos` on that
    may hold data (the rest are holes or preallocated blocks never written:
    zeros)."""
    fd, size = f.fileno(), os.fstat(f.fileno()).st_size
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end - start
        pos = end


def read_sparse(path):
    """A file's bytes up to the end of its last data range, reading only
    its data ranges (a 64 MiB segment is mostly preallocated blocks)."""
    with open(path, "rb") as f:
        ranges = list(data_ranges(f))
        end = max((o + n for o, n in ranges), default=0)
        out = bytearray(end)
        for o, n in ranges:
            f.seek(o)
            out[o:o + n] = f.read(n)
    return bytes(out)


def copy_sparse(src, dst):
    """Copies a file's size and what it holds other than zeros."""
    with open(src, "rb") as f, open(dst, "wb") as g:
        g.truncate(os.fstat(f.fileno()).st_size)
        for o, n in data_ranges(f):
            f.seek(o)
            end = o + n
            while o < end:
                chunk = f.read(min(end - o, 1 << 16))
                if not chunk:
                    break
                if chunk.count(0) != len(chunk):
                    g.seek(o)
                    g.write(chunk)
                o += len(chunk)
    shutil.copymode(src, dst)


def records(data):
    """(LSN, bytes) of each record of one segment's bytes, walked by their
    length fields from the header to the first all-zero record header or
    the first one that runs past the data. No check: `hallq wal verify`
    does those; this only cuts the log into records to compare them."""
    pos = walfile.HEADER_LEN
    while pos + walfile.RECORD_HEADER_LEN <= len(data):
        head = data[pos:pos + walfile.RECORD_HEADER_LEN]
        if not any(head):
            break
        n, = struct.unpack_from("<I", head)
        lsn, = struct.unpack_from("<Q", head, 8)
        total = walfile.RECORD_OVERHEAD + n
        if pos + total > len(data):
            break
        yield lsn, data[pos:pos + total]
        pos += total


class Inode:
    """One file's contents as 4 KiB pages (absent: zeros)."""

    def __init__(self):
        self.cur = {}        # page -> bytes: everything written
        self.old = {}        # page -> bytes or None: its contents at the last sync (pending pages)
        self.size = 0
        self.dur_size = 0    # the size at the last sync
        self.touched = set()  # every page ever written (zeros too)

    def _touch(self, p):
        if p not in self.old:
            self.old[p] = self.cur.get(p)

    def write(self, off, data=None, length=None):
        """Writes data at off (data None: `length` zeros)."""
        n = len(data) if data is not None else length
        end = off + n
        p = off // PAGE
        while p * PAGE < end:
            lo, hi = max(off, p * PAGE), min(end, (p + 1) * PAGE)
            self._touch(p)
            self.touched.add(p)
            page = bytearray(self.cur.get(p) or bytes(PAGE))
            page[lo - p * PAGE:hi - p * PAGE] = data[lo - off:hi - off] if data is not None \
                else bytes(hi - lo)
            if any(page):
                self.cur[p] = bytes(page)
            else:
                self.cur.pop(p, None)
            p += 1
        self.size = max(self.size, end)

    def truncate(self, size):
        for p in [p for p in self.cur if p * PAGE >= size]:
            self._touch(p)
            del self.cur[p]
        if size % PAGE and size // PAGE in self.cur:
            p = size // PAGE
            self._touch(p)
            page = bytearray(self.cur[p])
            page[size % PAGE:] = bytes(PAGE - size % PAGE)
            self.cur[p] = bytes(page)
        self.size = size

    def sync(self):
        self.old.clear()
        self.dur_size = self.size

    def contents(self, n):
        """The first n bytes, everything written."""
        out = bytearray(n)
        for p, v in self.cur.items():
            if p * PAGE < n:
                out[p * PAGE:min(n, (p + 1) * PAGE)] = v[:n - p * PAGE]
        return bytes(out)

    def image(self, rng, keep):
        """(size, pages) as a disk may hold them: each pending page the new
        contents with probability `keep`, else its contents at the last
        sync; a pending size change kept or not."""
        pages = {}
        for p in set(self.cur) | set(self.old):
            if p in self.old and rng.random() >= keep:
                v = self.old[p]
            else:
                v = self.cur.get(p)
            if v is not None:
                pages[p] = v
        size = self.size if self.size == self.dur_size or rng.random() < 0.5 else self.dur_size
        return size, {p: v for p, v in pages.items() if p * PAGE < size}


class Disk:
    """The WAL directory as the trace built it: files (inodes) and names,
    each with what is durable and what is pending."""

    def __init__(self, wal_dir):
        self.dir = os.path.realpath(str(wal_dir))
        self.names = {}      # name -> Inode: now
        self.dur_names = {}  # name -> Inode: as of the directory's last fsync
        self.dirops = []     # directory changes since then, in order
        self.by_seq = {}     # (process, seq) of a write -> (inode, off, len) until done
        self.writes = 0
        self.syncs = 0
        self.proc = 0        # processes seen ('P' entries) - 1
        self.written = {}    # see written_log

    def _name(self, path):
        d, n = os.path.split(path)
        assert d == self.dir, "a WAL file outside %s: %s" % (self.dir, path)
        return n

    def _dirop(self, op):
        self.dirops.append(op)
        self._apply(self.names, op)

    @staticmethod
    def _apply(names, op):
        kind = op[0]
        if kind == "create":
            names[op[1]] = op[2]
        elif kind == "rename":
            if op[1] in names:
                names[op[2]] = names.pop(op[1])
        elif kind == "unlink":
            names.pop(op[1], None)

    def replay(self, entries, snapshots=()):
        """Applies the trace. A trace of several processes (a restart
        after a SIGKILL) needs, per kill before the last, a copy of the WAL
        files as the page cache held them then (`snapshots`): the model is
        checked against it, and a write the kill cut (traced, no done
        entry) takes the bytes the next process found."""
        first = True
        for e in entries:
            op = e.op
            if op == "P":
                if not first:
                    self.check_against(snapshots[self.proc])
                    self.written_log()
                    self._resync(snapshots[self.proc])
                    self.written_log()
                    self.proc += 1
                first = False
                continue
            first = False
            if op == "D":
                if os.path.realpath(e.path) == self.dir:
                    self.dur_names = dict(self.names)
                    self.dirops = []
                continue
            name = self._name(e.path)
            if op == "O":
                if name not in self.names or e.a & O_TRUNC:
                    self._dirop(("create", name, Inode()))
            elif op in "WZ":
                ino = self.names[name]
                ino.write(e.a, e.data if op == "W" else None, e.b)
                self.by_seq[(self.proc, e.seq)] = (ino, e.a, e.b)
                self.writes += 1
            elif op == "w":
                w = self.by_seq.pop((self.proc, e.a), None)
                assert w is not None, "a done entry without its write: %r" % e
                assert e.b == w[2], "a WAL write wrote %d of %d bytes" % (e.b, w[2])
            elif op == "S":
                self.names[name].sync()
                self.syncs += 1
            elif op == "R":
                self._dirop(("rename", name, self._name(e.data.decode())))
            elif op == "U":
                self._dirop(("unlink", name))
            elif op == "T":
                self.names[name].truncate(e.a)
            elif op == "F":
                ino = self.names[name]
                if e.a + e.b > ino.size:
                    ino.size = e.a + e.b
            else:
                raise AssertionError("trace entry the model does not know: %r" % e)
        return self

    def _resync(self, snap):
        """Writes cut by a kill: their pages as the page cache held them."""
        snap = pathlib.Path(snap)
        where = {id(i): n for n, i in self.names.items()}
        for ino, off, n in self.by_seq.values():
            name = where.get(id(ino))
            data = read_sparse(snap / name) if name and (snap / name).exists() else b""
            for p in range(off // PAGE, (off + n - 1) // PAGE + 1):
                ino._touch(p)
                page = data[p * PAGE:(p + 1) * PAGE].ljust(PAGE, b"\0")
                if any(page):
                    ino.cur[p] = page
                else:
                    ino.cur.pop(p, None)
        self.by_seq.clear()

    def pending(self):
        """{name: count} of the pages written since the file's last sync
        whose contents changed (zeros over zeros do not count)."""
        out = {}
        for n, i in self.names.items():
            c = sum(1 for p, v in i.old.items() if i.cur.get(p) != v)
            if c:
                out[n] = c
        return out

    def check_against(self, real_dir):
        """The model's 'everything written' view equals the files as the
        page cache holds them: the trace missed nothing. What the kill may
        have cut between a call and its entry is allowed either way: a
        write without its done entry; a rename of a new segment into
        place; the creation of a *.tmp file and its preallocation."""
        real_dir = pathlib.Path(real_dir)
        cut = {}  # inode -> pages of writes without a done entry
        for ino, off, n in self.by_seq.values():
            cut.setdefault(id(ino), set()).update(range(off // PAGE, (off + n - 1) // PAGE + 1))
        real = sorted(p.name for p in real_dir.iterdir()
                      if p.name.endswith(".wal") or p.name.endswith(".wal.tmp"))
        names = dict(self.names)
        for n in real:
            if n not in names and n + ".tmp" in names and n + ".tmp" not in real:
                names[n] = names.pop(n + ".tmp")  # renamed, the kill before its entry
            elif n not in names and n.endswith(".tmp"):
                names[n] = Inode()                # created, the kill before its entry
        assert real == sorted(names), "WAL files %s, the trace says %s" % (
            real, sorted(self.names))
        for name, ino in names.items():
            path = real_dir / name
            size = path.stat().st_size
            assert size == ino.size or (name.endswith(".tmp") and ino.size == 0), \
                "%s: %d bytes, the trace says %d" % (name, size, ino.size)
            extent = min(ino.size, (max(ino.touched) + 1) * PAGE if ino.touched else 0)
            with open(path, "rb") as f:
                # Past the last page the trace wrote, the file holds only
                # zeros (on ext4 SEEK_DATA skips the preallocated, never
                # written blocks; elsewhere they are read).
                for o, n in data_ranges(f, extent):
                    f.seek(o)
                    for chunk in iter(lambda: f.read(min(n, 1 << 20)), b""):
                        assert chunk.count(0) == len(chunk), \
                            "%s: data near offset %d, past everything the trace wrote" % (
                                name, o)
                        n -= len(chunk)
                        if n <= 0:
                            break
                f.seek(0)
                data = f.read(extent)
            want = ino.contents(extent)
            if data == want:
                continue
            bad = [p for p in range((extent + PAGE - 1) // PAGE)
                   if data[p * PAGE:(p + 1) * PAGE] != want[p * PAGE:(p + 1) * PAGE]
                   and p not in cut.get(id(ino), ())]
            assert not bad, "%s: pages %s differ from the trace" % (name, bad[:10])

    def written_log(self):
        """{LSN: {record bytes}} of every record the daemon wrote (the
        segments as the trace built them, all writes applied; after a
        restart, the records the first process wrote and the second
        replaced are kept too: both were written whole)."""
        for name, ino in self.names.items():
            if name.endswith(".wal"):
                end = (max(ino.cur) + 1) * PAGE if ino.cur else 0
                for lsn, raw in records(ino.contents(min(end, ino.size))):
                    self.written.setdefault(lsn, set()).add(raw)
        return self.written

    def image(self, dst, rng, keep):
        """Writes one possible disk image of the WAL directory into dst;
        returns a short description and what it holds: (text, {"dirops":
        pending directory changes, "kept"/"dropped": changed pages})."""
        dst = pathlib.Path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        names = dict(self.dur_names)
        n_ops = rng.randint(0, len(self.dirops))
        for op in self.dirops[:n_ops]:
            self._apply(names, op)
        kept = dropped = 0
        for name, ino in names.items():
            size, pages = ino.image(rng, keep)
            for p, v in ino.old.items():
                if ino.cur.get(p) == v:
                    continue  # unchanged: kept or not, the same
                if pages.get(p) == ino.cur.get(p):
                    kept += 1
                else:
                    dropped += 1
            with open(dst / name, "wb") as f:
                f.truncate(size)
                for p in sorted(pages):
                    f.seek(p * PAGE)
                    f.write(pages[p])
        return "dir ops %d/%d, pending pages kept %d dropped %d" % (
            n_ops, len(self.dirops), kept, dropped), {"dirops": len(self.dirops), "kept": kept,
                                                      "dropped": dropped}


# ---- LMDB ----

LMDB_MAGIC = 0xBEEFC0DE
META_TXNID = 16 + 128  # page header, then MDB_meta's mm_txnid


def rollback_lmdb_meta(path):
    """Makes the older of LMDB's two meta pages win, as when the newest
    meta write (not synced under MDB_NOMETASYNC) did not reach the disk:
    the newer page gets the older one's contents with a txnid below it (a
    stand-in for the meta two commits back, which LMDB would never pick).
    Only when the older meta is the commit just before (its snapshot is
    then intact: LMDB reuses no page the last commit freed). Returns the
    txnid now in force, or None when nothing was rolled back."""
    with open(path, "r+b") as f:
        pages = [bytearray(f.read(PAGE)), bytearray(f.read(PAGE))]
        magic = [struct.unpack_from("<I", p, 16)[0] for p in pages]
        txn = [struct.unpack_from("<Q", p, META_TXNID)[0] for p in pages]
        if magic != [LMDB_MAGIC] * 2:
            return None
        new = 0 if txn[0] > txn[1] else 1
        old = 1 - new
        if txn[new] != txn[old] + 1 or txn[old] < 1:
            return None
        page = bytearray(pages[old])
        struct.pack_into("<Q", page, META_TXNID, txn[old] - 1)
        f.seek(new * PAGE)
        f.write(page)
    return txn[old]


# ---- the load ----
