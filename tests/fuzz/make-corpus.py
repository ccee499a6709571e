#!/usr/bin/python3
"""tests/fuzz/make-corpus.py: writes the fuzzers' seed corpus.

    /usr/bin/python3 tests/fuzz/make-corpus.py

Rewrites tests/fuzz/corpus/{frame,request,config,exec}/ from scratch: a few
dozen small files per fuzzer, named by what they hold. Needs Debian's
python3-msgpack. The frame seeds follow the input format described atop
tests/fuzz/fuzz_frame.c; change both together.
"""
import os
import shutil
import struct

import msgpack

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def requests():
    """Bodies of real requests, one per op, and the envelope's edge cases."""
    app = {"kind": "person", "id": "110101199001011234", "name": "Zhang"}
    ops = [
        ("hello", {"token": "kiosk-demo", "client": "fuzz"}),
        ("ping", None),
        ("ticket.take", {"line": "A", "priority": True, "idem": "k1"}),
        ("ticket.take", {"line": "F", "case_no": "20261124-0001"}),
        ("ticket.take", {"line": "A", "appointment": "AP12345"}),
        ("ticket.get", {"ticket_id": 7}),
        ("ticket.return", {"ticket_id": 7, "idem": "r"}),
        ("appointment.book", {"line": "B", "slot_ms": 1795485600000}),
        ("appointment.get", {"code": "AP12345"}),
        ("case.get", {"case_no": "20261124-0001"}),
        ("rate", {"ticket_id": 3, "score": 5, "comment": "good"}),
        ("window.state", {"state": "open"}),
        ("window.call", {}),
        ("window.recall", None),
        ("window.no_show", None),
        ("window.transfer", {"line": "C"}),
        ("window.intake", {"service": "S01", "applicant": app,
                           "materials": ["M01", "M02", "M03"], "outcome": "accept"}),
        ("window.intake", {"service": "S02", "applicant": app, "materials": [],
                           "outcome": "refuse", "reason": "none"}),
        ("window.done", None),
        ("case.supplement", {"case_no": "20261124-0001", "materials": ["M03"]}),
        ("case.deliver", {"case_no": "20261124-0001", "method": "mail", "tracking": "SF1"}),
        ("review.claim", None),
        ("review.decide", {"case_no": "20261124-0001", "decision": "supplement",
                           "missing": ["M03"], "reason": None}),
        ("review.list", {"state": "pending", "limit": 10}),
        ("subscribe", {"topics": ["call", "line", "window"], "since": 0}),
        ("stats", {"day": "2026-11-24"}),
        ("day.close", {"idem": "x" * 64}),
        ("config.reload", None),
        ("clock.advance", {"ms": 60000}),
        ("digest", {}),
        ("no.such.op", {"line": 1}),
    ]
    out = {}
    for i, (op, args) in enumerate(ops):
        env = {"id": i + 1, "op": op}
        if args is not None:
            env["args"] = args
        out["op-%s-%d" % (op, i)] = pack(env)
    # Wrong types in every field the readers see.
    out["args-mistyped"] = pack({"id": 9, "op": "ticket.take", "args": {
        "line": 1, "priority": "yes", "ticket_id": -1, "materials": {"a": 1},
        "applicant": ["x"], "limit": 1.5, "since": True, "": None}})
    out["id-missing"] = pack({"op": "ping"})
    out["id-negative"] = pack({"id": -1, "op": "ping"})
    out["id-u64-max"] = pack({"id": 2**64 - 1, "op": "ping"})
    out["op-not-str"] = pack({"id": 1, "op": 5})
    out["op-empty"] = pack({"id": 1, "op": ""})
    out["args-array"] = pack({"id": 1, "op": "ping", "args": [1, 2]})
    out["args-nil"] = pack({"id": 1, "op": "ping", "args": None})
    out["empty-map"] = pack({})
    out["bin-ext-float"] = pack({"id": 1, "op": "ping", "args": {
        "b": b"\x00\x01", "e": msgpack.ExtType(5, b"abcd"), "f": 1.25,
        "n": -5, "big": 2**63}})
    out["dup-keys"] = b"\x83\xa2id\x01\xa2op\xa4ping\xa2id\x02"
    # Wide encodings of small things: str8/16/32, map16/32, array16.
    out["wide-encodings"] = (b"\xde\x00\x03" + b"\xd9\x02id" + b"\xce\x00\x00\x00\x01"
                             + b"\xda\x00\x02op" + b"\xdb\x00\x00\x00\x04ping"
                             + b"\xd9\x04args" + b"\xdf\x00\x00\x00\x01"
                             + b"\xa1k" + b"\xdc\x00\x01\xc0")
    deep = {"id": 1, "op": "ping", "args": {}}
    d = deep["args"]
    for _ in range(13):  # top, args and 14 more: 16 containers deep
        d["x"] = {}
        d = d["x"]
    d["l"] = []
    out["deep-16"] = pack(deep)
    d["l"] = [[]]
    out["deep-17"] = pack(deep)
    good = pack({"id": 1, "op": "ping"})
    out["trailing-byte"] = good + b"\xc0"
    out["truncated"] = good[:-1]
    out["not-a-map"] = pack([1, 2])
    out["int-key"] = b"\x81\x01\x02"
    out["huge-count"] = b"\xdf\x7f\xff\xff\xff\xa1a"
    out["huge-str"] = b"\x81\xa1a\xdb\xff\xff\xff\xf0ab"
    out["never-used-c1"] = b"\x81\xa1a\xc1"
    return out


def frame_prog(max_frame, steps):
    """A fuzz_frame input: the max_frame selector, the bytes that go in,
    then the step bytes in reverse (the harness reads them from the end).
    Each step is (step bytes in reading order, the bytes it puts in)."""
    if max_frame <= 64:
        head = bytes([max_frame - 1])
    else:
        v = max_frame - 1
        head = bytes([0xc0, v >> 8, v & 0xff])
    ctrl = b"".join(c for c, _ in steps)
    data = b"".join(d for _, d in steps)
    return head + data + ctrl[::-1]


def chunk(data, mode, size=62):
    """Steps that put `data` in through feed (0) or space/commit (1)."""
    steps = []
    while data:
        n = min(len(data), size)
        steps.append((bytes([(n << 2) | mode]), data[:n]))
        data = data[n:]
    return steps


def big(data, mode):
    """One step of up to 255 * 64 bytes."""
    n = (len(data) + 63) // 64
    return (bytes([(63 << 2) | mode, n]), data)


DRAIN, SHRINK = (b"\x02", b""), (b"\x03", b"")


def frames(bodies):
    return b"".join(struct.pack(">I", len(b)) + b for b in bodies)


def drained(steps):
    """Each step followed by a drain, as a reader that takes every frame."""
    return sum(([st, DRAIN] for st in steps), [])


def per_frame(bodies, mode, size=62):
    """Each frame in pieces, then a drain. Exact: a piece is taken whole
    when no frame completes before its end (feed), or when it is small
    enough to fit the room offered (commit, size 1)."""
    steps = []
    for b in bodies:
        steps += chunk(frames([b]), mode, size) + [DRAIN]
    return steps


def frame_seeds(reqs):
    bodies = list(reqs.values())[:8]
    stream = frames(bodies)
    out = {}
    out["feed-per-frame"] = frame_prog(256, per_frame(bodies, 0))
    out["commit-bytewise"] = frame_prog(256, per_frame(bodies[:4], 1, 1))
    out["commit-4"] = frame_prog(256, per_frame(bodies[4:], 1, 4))
    # Bytes of several frames at once, drained now and then.
    out["feed-lazy"] = frame_prog(256, sum(([s] + ([DRAIN] if i % 4 == 3 else [])
                                            for i, s in enumerate(chunk(stream, 0, 17))), []))
    out["commit-lazy"] = frame_prog(256, drained(chunk(stream, 1)))
    out["shrink-idle"] = frame_prog(256, per_frame(bodies[:1], 0) + [SHRINK]
                                    + per_frame(bodies[1:2], 1, 1) + [SHRINK])
    out["len-zero"] = frame_prog(64, chunk(b"\x00\x00\x00\x00abc", 0) + [DRAIN])
    out["len-zero-after-frame"] = frame_prog(
        64, per_frame([b"\x80"], 1, 1) + chunk(b"\x00\x00\x00\x00zz", 0) + [DRAIN])
    out["len-max"] = frame_prog(16, per_frame([b"x" * 16], 1, 1))
    out["len-max-plus-1"] = frame_prog(16, chunk(struct.pack(">I", 17) + b"y" * 17, 0) + [DRAIN])
    out["len-big-after-frames"] = frame_prog(
        64, per_frame([b"a" * 10, b"b" * 64], 0) + chunk(struct.pack(">I", 65) + b"c", 0)
        + [DRAIN])
    out["len-huge"] = frame_prog(64, chunk(b"\xff\xff\xff\xff", 0) + [DRAIN])
    out["split-header"] = frame_prog(64, drained(chunk(frames([b"abc"]), 1, 1)))
    # Past the first allocation (4096): growth by doubling, and the move
    # of an unfinished frame to the front when the buffer is full.
    out["grow-commit"] = frame_prog(6000, chunk(frames([b"g" * 5000]), 1, 4) + [DRAIN, SHRINK])
    out["grow-feed"] = frame_prog(8000, per_frame([b"h" * 8000], 0))
    a, b2 = frames([b"a" * 3000]), frames([b"b" * 3000])
    out["compact"] = frame_prog(9000, chunk(a[:-20], 0) + chunk(a[-20:] + b2[:40], 0) + [DRAIN]
                                + chunk(b2[40:], 0) + [DRAIN])
    for mf in (1, 2, 3, 4, 5, 63, 64):
        out["small-max-%d" % mf] = frame_prog(mf, per_frame([b"z" * mf, b"q"], 1, 1))
    return out


def config_seeds():
    with open(os.path.join(REPO, "examples", "demo-hall.yaml"), "rb") as f:
        demo = f.read()
    out = {"demo-hall": demo}
    minimal = (b"hall: {id: h1, name: Hall One}\n"
               b"lines: [{id: A}]\n"
               b"tokens: [{token: kiosk-token-1, role: kiosk, id: K1}]\n")
    out["minimal"] = minimal
    out["minimal-flow"] = (b"{hall: {id: h, name: n}, lines: [{id: A}], "
                           b"tokens: [{token: abcdefgh, role: admin, id: a}]}")
    out["anchors"] = (b"hall: &h {id: h, name: n}\nlines: [{id: &l A}]\n"
                      b"departments: [{id: d}]\nmaterials: [{code: M}]\n"
                      b"services: [{code: S, line: A, departments: [d], kind: review, days: 1,"
                      b" checklist: [M]}]\n"
                      b"windows: [{id: W, lines: [*l]}]\n"
                      b"tokens: [{token: abcdefgh, role: window, id: W}]\n")
    out["self-alias"] = minimal + b"calendar: {holidays: &x [*x]}\n"
    out["calendar"] = minimal + (b"calendar:\n  open: '08:30'\n  close: '18:00'\n"
                                 b"  working_days: [sun, sat]\n"
                                 b"  holidays: [2024-02-29, 2026-01-01..2026-12-31]\n"
                                 b"  extra_working_days: [2026-10-10]\n")
    out["bad-dates"] = minimal + b"calendar: {holidays: [2026-02-30, 2026-13-01, 1..2]}\n"
    out["utc-offsets"] = minimal.replace(b"name: Hall One}", b"name: H, utc_offset: '-14:59'}")
    out["utc-offset-odd"] = minimal.replace(b"name: Hall One}", b"name: H, utc_offset: '+-1:-1'}")
    out["start-ms"] = minimal.replace(b"name: Hall One}", b"name: H, start_ms: 9223372036854775807}")
    out["rules-limits"] = minimal + (b"rules: {claim_lease_s: 1, no_show_grace_s: 0, "
                                     b"return_behind: 1000, day_close: '23:59'}\n"
                                     b"limits: {max_frame: 256, output_cap: 4294967296}\n"
                                     b"wal: {fsync: none, segment_bytes: 65536}\n"
                                     b"state: {map_bytes: 1048577}\n")
    out["listeners"] = minimal + (b"listeners:\n  tcp: {addr: '[::1]:0', roles: [kiosk]}\n"
                                  b"  unix: {path: /tmp/x.sock, roles: [admin, department]}\n")
    out["int-overflow"] = minimal + b"rules: {claim_lease_s: 99999999999999999999999}\n"
    out["dup-key"] = minimal + b"hall: {id: x, name: y}\n"
    out["unknown-key"] = minimal + b"colour: blue\n"
    out["not-a-map"] = b"- just\n- a list\n"
    out["empty"] = b""
    out["comment-only"] = b"# nothing\n"
    out["two-docs"] = minimal + b"---\n" + minimal
    out["bad-utf8"] = minimal.replace(b"Hall One", b"Hall \xff\xfe")
    out["tabs"] = b"hall:\n\tid: x\n"
    out["long-id"] = minimal.replace(b"id: h1", b"id: " + b"x" * 40)
    out["long-token"] = minimal.replace(b"kiosk-token-1", b"t" * 130)
    # Each top-level section of the demo hall removed in turn.
    sections = demo.split(b"\n\n")
    for i, sec in enumerate(sections):
        head = sec.lstrip().split(b":")[0].decode("ascii", "replace")
        if head.startswith("#"):
            continue
        out["demo-without-%s" % head] = b"\n\n".join(sections[:i] + sections[i + 1:])
    out["demo-truncated"] = demo[: len(demo) // 2]
    return out


def exec_seeds(reqs):
    """fuzz_exec's inputs: an actor byte (an index into its actors table:
    kiosk, display, admin, W01, W03, W04, W05, W02, mkt, res, hsg, system),
    a clock byte (x 37 s), then a request body. Every request seed as
    every actor that could send it, and some as the wrong one."""
    out = {}
    by_prefix = [("ticket", [0, 2]), ("appointment", [0]), ("case.get", [0, 3, 8]),
                 ("rate", [0]), ("window", [3, 4, 5, 6, 7]), ("case.", [4, 6]),
                 ("review", [8, 9, 10]), ("stats", [2]), ("day.close", [2, 11]),
                 ("clock", [2]), ("config", [2, 11])]
    for name, body in sorted(reqs.items()):
        actors = [1, 2]
        for prefix, who in by_prefix:
            if name.startswith(prefix):
                actors = who + [1]
        for a in actors:
            out["%s-as%d" % (name, a)] = bytes([a, 3]) + body
    return out


def write(name, seeds):
    d = os.path.join(ROOT, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for k, v in sorted(seeds.items()):
        with open(os.path.join(d, k.replace("/", "_")), "wb") as f:
            f.write(v)
    print("%s: %d files" % (d, len(seeds)))


def main():
    reqs = requests()
    write("request", reqs)
    write("frame", frame_seeds(reqs))
    write("config", config_seeds())
    write("exec", exec_seeds(reqs))


if __name__ == "__main__":
    main()
