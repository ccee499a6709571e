"""Reading and writing hallq WAL segments exactly as wal/wal.h lays them out,
so that tests can forge damaged or rewritten logs.

Segment header (128 bytes, little-endian): magic "HALLQWAL", u32 version,
u32 header length, u64 first LSN, u64 segment size, hall id (32 bytes, zero
padded), carried chain hash (32), 28 reserved zeros, u32 CRC32C of [0, 124).

Record: u32 payload length n, u16 type, u8 actor role, u8 actor id length,
u64 LSN, u64 time (ms), actor id (16, zero padded), payload (n), chain hash
BLAKE2b-256(previous hash || bytes [0, 40+n)), u32 CRC32C of [0, 72+n).

The genesis hash is BLAKE2b-256("hallq-wal-v1" || hall id).

Everything here is pure Python (a table CRC32C, hashlib's BLAKE2b), so a
bug in the C codecs cannot hide itself in the tests. Nothing here checks a
log: that is `hallq wal verify`'s job; this module only reads what is
there (stopping at the first record it cannot parse) and writes what it is
told."""
import hashlib
import os
import pathlib
import struct

MAGIC = b"HALLQWAL"
VERSION = 1
HEADER_LEN = 128
RECORD_HEADER_LEN = 40
RECORD_OVERHEAD = 76
HASH_LEN = 32
HALL_ID_MAX = 32
ACTOR_ID_MAX = 16
GENESIS_TAG = b"hallq-wal-v1"


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC32C (Castagnoli, reflected, inverted in and out), as wal_crc32c."""
    crc ^= 0xFFFFFFFF
    t = _TABLE
    for b in data:
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def blake(*parts):
    h = hashlib.blake2b(digest_size=HASH_LEN)
    for p in parts:
        h.update(p)
    return h.digest()


def genesis_hash(hall_id):
    return blake(GENESIS_TAG, hall_id.encode()[:HALL_ID_MAX])


def segment_name(first_lsn):
    return "%020d.wal" % first_lsn


class Record:
    """One record. `offset` is where it was read (None for a new one);
    `hash` and `crc` are as stored (encode() recomputes them)."""

    def __init__(self, lsn, at_ms, type, payload, role=0, actor=b"", hash=None, crc=None,
                 offset=None):
        self.lsn = lsn
        self.at_ms = at_ms
        self.type = type
        self.role = role
        self.actor = actor if isinstance(actor, bytes) else actor.encode()
        self.payload = bytes(payload)
        self.hash = hash
        self.crc = crc
        self.offset = offset

    def __repr__(self):
        return "Record(lsn=%d, type=%d, at=%d, %d bytes @%s)" % (
            self.lsn, self.type, self.at_ms, len(self.payload), self.offset)

    @property
    def size(self):
        return RECORD_OVERHEAD + len(self.payload)

    def head_bytes(self):
        """Bytes [0, 40+n): header and payload, what the chain hash covers."""
        actor = self.actor[:ACTOR_ID_MAX]
        return struct.pack("<IHBBQQ16s", len(self.payload), self.type, self.role, len(actor),
                           self.lsn, self.at_ms, actor) + self.payload

    def raw(self):
        """The record as stored, with its stored hash and CRC."""
        return self.head_bytes() + self.hash + struct.pack("<I", self.crc)

    def encode(self, prev_hash):
        """Chains after prev_hash and fixes the CRC: sets hash and crc,
        returns the bytes."""
        head = self.head_bytes()
        self.hash = blake(prev_hash, head)
        body = head + self.hash
        self.crc = crc32c(body)
        return body + struct.pack("<I", self.crc)

    def fix_crc(self):
        """Recomputes only the CRC (the chain hash stays as it is)."""
        self.crc = crc32c(self.head_bytes() + self.hash)


class Segment:
    """One segment file: its header fields, its records, and `end`, the
    offset just after the last record parsed. `tail` holds any bytes from
    `end` to the end of the file that are not zeros (None when only zeros
    follow), so a damaged file can be read too."""

    def __init__(self, first_lsn, hall_id, prev_hash, size, records=(), version=VERSION,
                 name=None):
        self.first_lsn = first_lsn
        self.hall_id = hall_id
        self.prev_hash = prev_hash
        self.size = size
        self.version = version
        self.records = list(records)
        self.name = name or segment_name(first_lsn)
        self.end = None
        self.tail = None

    def __repr__(self):
        return "Segment(%s, first %d, %d records)" % (self.name, self.first_lsn,
                                                      len(self.records))

    def header_bytes(self):
        h = struct.pack("<8sIIQQ32s32s28s", MAGIC, self.version, HEADER_LEN, self.first_lsn,
                        self.size, self.hall_id.encode().ljust(HALL_ID_MAX, b"\0"),
                        self.prev_hash, b"\0" * 28)
        return h + struct.pack("<I", crc32c(h))

    def offsets(self):
        """The offset each record takes when written back to back."""
        out, o = [], HEADER_LEN
        for r in self.records:
            out.append(o)
            o += r.size
        return out

    def to_bytes(self, pad=True):
        """Header and records as they stand (stored hashes and CRCs), zero
        padded to the segment's size when pad."""
        data = self.header_bytes() + b"".join(r.raw() for r in self.records)
        if pad and len(data) < self.size:
            data += b"\0" * (self.size - len(data))
        return data


def parse_segment(data, name="?"):
    """A Segment from a file's bytes. Stops at an all-zero record header, at
    the end, or at the first record whose header or CRC does not parse (the
    rest goes to .tail)."""
    if len(data) < HEADER_LEN or data[:8] != MAGIC:
        raise ValueError("%s: not a hallq WAL segment" % name)
    magic, version, hlen, first, size, hall, prev, _res = struct.unpack_from(
        "<8sIIQQ32s32s28s", data)
    seg = Segment(first, hall.rstrip(b"\0").decode(), prev, size, version=version, name=name)
    pos = HEADER_LEN
    while pos + RECORD_HEADER_LEN <= len(data):
        n, typ, role, alen, lsn, at, actor = struct.unpack_from("<IHBBQQ16s", data, pos)
        if n == 0 and typ == 0 and not any(data[pos:pos + RECORD_HEADER_LEN]):
            break
        total = RECORD_OVERHEAD + n
        if typ == 0 or alen > ACTOR_ID_MAX or pos + total > len(data):
            break
        crc, = struct.unpack_from("<I", data, pos + total - 4)
        if crc32c(data[pos:pos + total - 4]) != crc:
            break
        payload = data[pos + RECORD_HEADER_LEN:pos + RECORD_HEADER_LEN + n]
        h = data[pos + RECORD_HEADER_LEN + n:pos + total - 4]
        seg.records.append(Record(lsn, at, typ, payload, role=role, actor=actor[:alen], hash=h,
                                  crc=crc, offset=pos))
        pos += total
    seg.end = pos
    rest = data[pos:]
    seg.tail = rest if any(rest) else None
    return seg


def read_segment(path):
    path = pathlib.Path(path)
    return parse_segment(path.read_bytes(), path.name)


def segment_paths(wal_dir):
    return sorted(p for p in pathlib.Path(wal_dir).iterdir()
                  if p.name.endswith(".wal") and len(p.name) == 24 and p.name[:20].isdigit())


def read_log(wal_dir):
    """Every segment of a log directory, in LSN order."""
    return [read_segment(p) for p in segment_paths(wal_dir)]


def write_segment(seg, wal_dir, pad=True):
    """Writes seg as it stands to wal_dir/seg.name (stored hashes and CRCs)."""
    path = pathlib.Path(wal_dir) / seg.name
    path.write_bytes(seg.to_bytes(pad))
    return path


def write_log(segs, wal_dir):
    """Replaces every segment file of wal_dir by segs."""
    for p in segment_paths(wal_dir):
        p.unlink()
    for s in segs:
        write_segment(s, wal_dir)


def rechain(segs, renumber=False, rename=True):
    """Rewrites the whole chain as a forger would: when renumber, LSNs run
    on from the first segment's first LSN; every segment's first LSN and
    carried hash follow the records before it (the first segment keeps its
    own, or the genesis hash when it starts at LSN 1); every record's hash
    and CRC are recomputed. File names follow the first LSNs when rename."""
    chain = None
    lsn = segs[0].first_lsn
    for s in segs:
        if chain is None:
            chain = genesis_hash(s.hall_id) if s.first_lsn == 1 else s.prev_hash
        if renumber:
            s.first_lsn = lsn
            if rename:
                s.name = segment_name(lsn)
        elif s.records:
            s.first_lsn = s.records[0].lsn
            if rename:
                s.name = segment_name(s.first_lsn)
        s.prev_hash = chain
        for r in s.records:
            if renumber:
                r.lsn = lsn
            r.encode(chain)
            chain = r.hash
            lsn = r.lsn + 1
    return segs


def locate(segs, lsn):
    """(segment, index, offset) of the record with that LSN, as it is
    written back to back."""
    for s in segs:
        for i, r in enumerate(s.records):
            if r.lsn == lsn:
                return s, i, s.offsets()[i]
    raise KeyError(lsn)


def all_records(segs):
    return [r for s in segs for r in s.records]


def head_hash(segs):
    for s in reversed(segs):
        if s.records:
            return s.records[-1].hash
    return segs[0].prev_hash


def check(segs):
    """True when segs chain and carry CRCs correctly (a self-test of this
    module against a log hallqd wrote)."""
    chain = None
    nxt = None
    for s in segs:
        if chain is None:
            chain = genesis_hash(s.hall_id) if s.first_lsn == 1 else s.prev_hash
            nxt = s.first_lsn
        if s.prev_hash != chain or s.first_lsn != nxt:
            return False
        for r in s.records:
            if r.lsn != nxt or blake(chain, r.head_bytes()) != r.hash:
                return False
            if crc32c(r.head_bytes() + r.hash) != r.crc:
                return False
            chain, nxt = r.hash, r.lsn + 1
    return True


def copy_log(src, dst):
    """Copies a log directory's segment files (and only those) to dst."""
    dst = pathlib.Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for p in segment_paths(src):
        (dst / p.name).write_bytes(p.read_bytes())
    return dst

