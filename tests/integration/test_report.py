"""hallq report --day: a day's statistics from the WAL alone. After a scripted
day on the manual clock (several lines and windows, intakes of every
outcome, a no-show that returns, deliveries, ratings, deadline marks, the
day's close), the report's figures equal the daemon's own `stats` for that
day figure by figure (csv), the text shows them, and the HTML page renders
(in headless Chromium when it is installed)."""
import csv
import io
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

import pytest

from conftest import HALLQ, REPO, TUESDAY_10AM

MIN = 60 * 1000
HOUR = 60 * MIN
DAY = 24 * HOUR
PERSON = {"kind": "person", "id": "110101199003077777"}
ORG = {"kind": "org", "id": "91110000MA0000000X", "name": "Shop"}
CHROMIUM = "/usr/bin/chromium"
# A hall name that needs escaping in every format.
NAME = 'Demo "City", <Service> & Centre'
EXTRA = {"name: Demo City Service Centre": "name: 'Demo \"City\", <Service> & Centre'"}

STATS_SECTIONS = (("lines", "line"), ("windows", "window"), ("departments", "department"),
                  ("cases", None), ("ratings", None))


def hallq(*args, check=True):
    p = subprocess.run([str(HALLQ)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, "hallq %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


def scripted_days(d):
    """Tue 11-17: a case of res accepted (5 working days: due Tue 11-24
    17:00). Mon 11-23 after the close: a ticket for Tuesday. Tue 11-24: the
    day. Wed 11-25: a little more, which the report of 11-24 must not count.
    Returns the daemon's stats of 11-24 taken right after its close, and
    the stats of 11-25 at the end."""
    a, k = d.admin(), d.kiosk()
    w1, w3, w4, w5 = (d.tcp("window-W0%d" % i) for i in (1, 3, 4, 5))
    # Tue 11-17 10:00
    w1.ok("window.state", state="open")
    k.ok("ticket.take", line="A")
    w1.ok("window.call")
    w1.ok("window.intake", service="S05", applicant=PERSON, materials=["M02", "M08", "M09"],
          outcome="accept")
    w1.ok("window.done")
    # Mon 11-23 17:30: after the close, the ticket is Tuesday's.
    a.ok("clock.advance", ms=6 * DAY + 7 * HOUR + 30 * MIN)
    tk = {}
    t = k.ok("ticket.take", line="A")
    assert t["ticket_id"] == "20261124-A001", t
    tk[t["number"]] = t
    # Tue 11-24 09:10 (the due-soon mark of the res case was made at 09:00).
    # Tickets apart in time, so that which window calls which is plain.
    a.ok("clock.advance", ms=15 * HOUR + 40 * MIN)
    for w in (w1, w3, w4, w5):
        w.ok("window.state", state="open")

    def take(line, **kw):
        t = k.ok("ticket.take", line=line, **kw)
        tk[t["number"]] = t
        return t

    def call(w, number):
        assert w.ok("window.call")["ticket"]["number"] == number

    take("B"), take("C")
    a.ok("clock.advance", ms=2 * MIN)                         # 09:12
    take("A")
    a.ok("clock.advance", ms=2 * MIN)                         # 09:14
    take("B")
    a.ok("clock.advance", ms=1 * MIN)                         # 09:15
    call(w1, "A001")                                          # waited 15 h 45 min
    w1.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
          outcome="instant")
    inst = w1.ok("window.intake", service="S06", applicant=PERSON, materials=["M02", "M10"],
                 outcome="instant")
    call(w3, "B001")                                          # waited 5 min
    acc = w3.ok("window.intake", service="S01", applicant=ORG, materials=["M01", "M02", "M03"],
                outcome="accept")
    w3.ok("window.intake", service="S04", applicant=ORG, materials=["M01", "M02"],
          outcome="notify")
    call(w4, "C001")                                          # waited 5 min
    a.ok("clock.advance", ms=4 * MIN)                         # 09:19
    w1.ok("window.done")                                      # 4 min
    w4.ok("window.done")                                      # 4 min
    call(w1, "A002")                                          # waited 7 min
    w1.ok("window.no_show")
    a.ok("clock.advance", ms=3 * MIN)                         # 09:22
    w3.ok("window.intake", service="S03", applicant=PERSON, materials=["M02"],
          outcome="refuse", reason="not resident here")
    w3.ok("window.done")                                      # 7 min
    call(w3, "B002")                                          # waited 8 min
    a.ok("clock.advance", ms=18 * MIN)                        # 09:40
    # The no-show comes back in its grace: its next call is no new wait.
    k.ok("ticket.return", ticket_id=tk["A002"]["ticket_id"])
    a.ok("clock.advance", ms=22 * MIN)                        # 10:02
    w3.ok("window.done")                                      # 40 min
    take("A")
    a.ok("clock.advance", ms=1 * MIN)                         # 10:03
    take("B")
    a.ok("clock.advance", ms=1 * MIN)                         # 10:04
    take("A")
    a.ok("clock.advance", ms=28 * MIN)                        # 10:32
    call(w1, "A002")
    w1.ok("window.done")                                      # 0 min
    call(w1, "A003")                                          # waited 30 min
    w1.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
          outcome="instant")
    a.ok("clock.advance", ms=6 * MIN)                         # 10:38
    w1.ok("window.done")                                      # 6 min
    # The back office, deliveries, ratings.
    mkt = d.unix("dept-mkt")
    assert mkt.ok("review.claim")["case"]["case_no"] == acc["case_no"]
    mkt.ok("review.decide", case_no=acc["case_no"], decision="approve")
    w3.ok("case.deliver", case_no=acc["case_no"], method="mail", tracking="SF123")
    f = take("F", case_no=inst["case_no"])
    a.ok("clock.advance", ms=50 * MIN)                        # 11:28
    call(w5, f["number"])                                     # waited 50 min
    w5.ok("case.deliver", case_no=inst["case_no"], method="counter")
    a.ok("clock.advance", ms=2 * MIN)                         # 11:30
    w5.ok("window.done")                                      # 2 min
    k.ok("rate", ticket_id=tk["A001"]["ticket_id"], score=5)
    k.ok("rate", case_no=inst["case_no"], score=4)
    k.ok("rate", ticket_id=tk["B001"]["ticket_id"], score=2)
    # Afternoon: W03 calls B003; the close at 17:00 expires A004, and the
    # res case is overdue right after.
    a.ok("clock.advance", ms=3 * HOUR + 30 * MIN)             # 15:00
    call(w3, "B003")                                          # waited 4 h 57 min
    a.ok("clock.advance", ms=10 * MIN)
    w3.ok("window.done")                                      # 10 min
    a.ok("clock.advance", ms=2 * HOUR + 20 * MIN)             # 17:30
    day = a.ok("stats", day="2026-11-24")
    assert day["lines"]["A"]["expired"] == 1, day
    assert day["departments"]["res"]["overdue"] == 1, day
    # Wed 11-25 10:00: more of everything, none of it Tuesday's.
    a.ok("clock.advance", ms=16 * HOUR + 30 * MIN)
    for w in (w1, w3):
        w.ok("window.state", state="open")
    for line in "ABA":
        k.ok("ticket.take", line=line)
    a.ok("clock.advance", ms=7 * MIN)
    w1.ok("window.call")
    w1.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
          outcome="instant")
    w1.ok("window.done")
    k.ok("rate", ticket_id=tk["A003"]["ticket_id"], score=1)
    a.ok("clock.advance", ms=3 * MIN)
    wed = a.ok("stats")
    assert wed["day"] == "2026-11-25"
    return day, wed


def csv_tables(text):
    """{table name: [row dicts]} from the report's csv."""
    out = {}
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        rows = list(csv.DictReader(io.StringIO(block)))
        assert rows or block.count("\n") == 0, block
        if rows:
            name = rows[0]["table"]
            assert all(r["table"] == name for r in rows), block
            assert name not in out, name
            out[name] = rows
    return out


def same(csv_value, figure):
    if isinstance(figure, float):
        return float(csv_value) == figure  # the csv reads back exactly
    return int(csv_value) == figure


def check_csv_equals_stats(text, stats):
    t = csv_tables(text)
    assert t["report"][0]["day"] == stats["day"]
    assert t["report"][0]["hall"] == NAME
    for sec, label in STATS_SECTIONS:
        rows = t[sec]
        if label is None:
            assert len(rows) == 1
            got = {k: v for k, v in rows[0].items() if k != "table"}
            assert set(got) == set(stats[sec]), (sec, got)
            for k, v in stats[sec].items():
                assert same(got[k], v), (sec, k, got[k], v)
            continue
        assert [r[label] for r in rows] == list(stats[sec]), sec  # every id, in order
        for r in rows:
            fig = stats[sec][r[label]]
            assert set(r) - {"table", label} == set(fig), (sec, r)
            for k, v in fig.items():
                assert same(r[k], v), (sec, r[label], k, r[k], v)
    return t


def text_block(text, title):
    """The rows (lists of cells) of the text table under a title line."""
    lines = text.split("\n")
    i = lines.index(title)
    rows = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def pct(x):
    return "%.1f%%" % (x * 100)


def check_text_shows_stats(text, stats):
    for sec, label in STATS_SECTIONS:
        rows = text_block(text, sec)
        header = rows[0]
        if label is None:
            want = stats[sec]
            assert header == list(want), (sec, header)
            cells = rows[1]
            for k, v in want.items():
                assert cells[header.index(k)] == (pct(v) if isinstance(v, float) else str(v))
            continue
        assert header[0] == label and header[1:] == list(next(iter(stats[sec].values())))
        body = {r[0]: r for r in rows[1:]}
        assert list(body) == list(stats[sec])
        for id_, fig in stats[sec].items():
            for k, v in fig.items():
                assert body[id_][header.index(k)] == str(v), (sec, id_, k)


def test_report_equals_stats(make_daemon, workdir):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM - 7 * DAY, extra=EXTRA)
    day, wed = scripted_days(d)

    # The scripted figures themselves, so a report that equals a wrong
    # stats cannot pass either.
    A, B = day["lines"]["A"], day["lines"]["B"]
    assert (A["taken"], A["served"], A["no_show"], A["expired"]) == (4, 3, 1, 1), A
    assert (B["taken"], B["served"], B["expired"]) == (3, 3, 0), B
    assert A["wait_avg_s"] == (945 + 7 + 30) * 60 // 3 and B["wait_avg_s"] == (5 + 8 + 297) * 20
    assert day["windows"]["W01"] == {"served": 3, "service_avg_s": 200}
    assert day["windows"]["W03"] == {"served": 3, "service_avg_s": 19 * 60}
    assert day["windows"]["W05"] == {"served": 1, "service_avg_s": 120}
    c = day["cases"]
    assert (c["accepted"], c["instant"], c["notified"], c["refused"], c["delivered"]) == \
        (1, 3, 1, 1, 2), c
    assert c["instant_rate"] == 0.5
    assert day["ratings"] == {"count": 3, "good_share": 2 / 3}
    assert day["departments"]["res"] == {"in_review": 1, "due_soon": 0, "overdue": 1}

    p = hallq("report", "--day", "2026-11-24", d.data, "--format", "csv")
    t = check_csv_equals_stats(p.stdout, day)
    # The series agree with the figures they refine.
    taken = {}
    for r in t["taken_by_hour"]:
        taken[r["line"]] = taken.get(r["line"], 0) + int(r["taken"])
    assert taken == {k: v["taken"] for k, v in day["lines"].items() if v["taken"]}
    assert {r["hour"] for r in t["taken_by_hour"] if r["line"] == "A"} >= {"before", "09:00"}
    calls = {}
    for r in t["wait_by_slot"]:
        n, s = calls.get(r["line"], (0, 0))
        calls[r["line"]] = (n + int(r["calls"]), s + int(r["wait_sum_s"]))
    # A001, A002, A003: the return of A002 is no new wait.
    assert calls["A"] == (3, (945 + 7 + 30) * 60)
    assert calls["B"] == (3, (5 + 8 + 297) * 60) and calls["F"] == (1, 50 * 60)
    slots_a = {r["slot"]: int(r["wait_avg_s"]) for r in t["wait_by_slot"] if r["line"] == "A"}
    assert slots_a == {"09:00": (945 + 7) * 30, "10:30": 30 * 60}
    slots_b = {r["slot"]: int(r["wait_avg_s"]) for r in t["wait_by_slot"] if r["line"] == "B"}
    assert slots_b == {"09:00": (5 + 8) * 30, "15:00": 297 * 60}
    ws = {r["window"]: r for r in t["window_service"]}
    for w, fig in day["windows"].items():
        assert int(ws[w]["served"]) == fig["served"] and \
            int(ws[w]["service_avg_s"]) == fig["service_avg_s"], w
    intake = {r["hour"]: r for r in t["intake_by_hour"]}
    assert set(intake) == {"09:00", "10:00"}
    assert (intake["09:00"]["instant"], intake["09:00"]["accept"]) == ("2", "1")
    assert sum(int(r["instant"]) for r in intake.values()) == c["instant"]
    marks = {r["department"]: r for r in t["deadline_marks"]}
    assert (marks["res"]["due_soon_marked"], marks["res"]["overdue_marked"]) == ("1", "1")
    assert marks["mkt"]["overdue_marked"] == "0"

    # The live day, with tickets waiting: equal too (the same clock).
    p = hallq("report", "--day", "2026-11-25", d.data, "--format", "csv")
    check_csv_equals_stats(p.stdout, wed)
    assert wed["lines"]["A"]["waiting"] == 1 and wed["lines"]["A"]["longest_wait_s"] > 0

    # Text: every figure, in its table.
    p = hallq("report", "--day", "2026-11-24", d.data)
    check_text_shows_stats(p.stdout, day)
    assert NAME in p.stdout and "2026-11-24" in p.stdout
    for title in ("waiting by half hour", "tickets taken by hour", "service by window",
                  "intake outcomes by hour", "deadlines by department"):
        assert title in p.stdout, title
    # --out writes the same.
    out = workdir / "r.txt"
    hallq("report", "--day", "2026-11-24", d.data, "--out", out)
    assert out.read_text() == p.stdout


def test_report_html(make_daemon, workdir):
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM - 7 * DAY, extra=EXTRA)
    day, _ = scripted_days(d)
    page = workdir / "day.html"
    hallq("report", "--day", "2026-11-24", d.data, "--format", "html", "--out", page)
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Self-contained: nothing to fetch, no script.
    for bad in ("<script", "<link", "src=", "href=", "@import", "url("):
        assert bad not in html.lower(), bad
    # The name escaped, never raw.
    assert "Demo &quot;City&quot;, &lt;Service&gt; &amp; Centre" in html
    assert "<Service>" not in html
    assert "2026-11-24" in html
    for chart in ("chart-wait", "chart-taken", "chart-windows", "chart-instant", "chart-depts"):
        assert 'id="%s"' % chart in html, chart
    assert html.count("<polyline") >= 2      # waits of A and B (C too)
    # A table of every figure.
    for sec, label in STATS_SECTIONS:
        assert 'id="t-%s"' % sec in html
    assert "<td>%d</td>" % day["lines"]["A"]["wait_avg_s"] in html
    assert "<td>%s</td>" % pct(day["cases"]["instant_rate"]) in html

    if not os.path.exists(CHROMIUM):
        pytest.skip("%s is missing: the page was checked, not rendered "
                    "(apt-get install chromium)" % CHROMIUM)
    png = workdir / "day.png"
    shot(page, png)
    w, h, colours = png_info(png.read_bytes())
    assert (w, h) == (1280, 2000)
    assert png.stat().st_size > 20000
    assert colours > 50, colours  # text, charts in several colours: not blank


def shot(page, png):
    prof = tempfile.mkdtemp(prefix="hq-chromium-")
    try:
        p = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + prof, "--screenshot=" + str(png),
             "--window-size=1280,2000", "file://" + str(page)],
            capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and png.exists(), p.stderr[-2000:]
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def png_info(data):
    """Width, height and the number of distinct pixel colours of a PNG
    (8-bit RGB or RGBA, not interlaced)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xff
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 0xff
        if y % 4 == 0:
            for x in range(0, stride, bpp * 2):
                colours.add(bytes(line[x:x + 3]))
        prev = line
    return w, h, len(colours)


def test_report_bad_input(daemon, workdir):
    k = daemon.kiosk()
    k.ok("ticket.take", line="A")
    for bad in ("yesterday", "2026-13-01", "2026-11-31", "2026-11-24x", ""):
        p = hallq("report", "--day", bad, daemon.data, check=False)
        assert p.returncode == 2 and "--day" in p.stderr, (bad, p.stderr)
    p = hallq("report", daemon.data, check=False)                 # no --day
    assert p.returncode == 2 and "usage" in p.stderr
    p = hallq("report", "--day", "2026-11-24", daemon.data, "--format", "pdf", check=False)
    assert p.returncode == 2 and "usage" in p.stderr
    p = hallq("report", "--day", "2026-11-23", daemon.data, check=False)
    assert p.returncode == 1 and "no records on 2026-11-23" in p.stderr, p.stderr
    p = hallq("report", "--day", "2026-11-30", daemon.data, check=False)
    assert p.returncode == 1 and "no records on 2026-11-30" in p.stderr, p.stderr
    p = hallq("report", "--day", "2026-11-24", workdir / "nothing-here", check=False)
    assert p.returncode == 1 and "nothing-here" in p.stderr, p.stderr
    p = hallq("report", "--day", "2026-11-24", daemon.data, "--out", workdir / "no" / "x.csv",
              check=False)
    assert p.returncode == 1 and "--out" in p.stderr
    # Piped: no progress on stderr, and no temporary state left behind.
    tmp = workdir / "tmp"
    tmp.mkdir()
    p = subprocess.run([str(HALLQ), "report", "--day", "2026-11-24", str(daemon.data)],
                       capture_output=True, text=True, env=dict(os.environ, TMPDIR=str(tmp)))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert list(tmp.iterdir()) == []


def test_report_shot_script(make_daemon, workdir):
    """tools/report-shot.sh renders a report to a PNG."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("%s is missing (apt-get install chromium)" % CHROMIUM)
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM - 7 * DAY, extra=EXTRA)
    scripted_days(d)
    png = workdir / "shot.png"
    p = subprocess.run([str(REPO / "tools" / "report-shot.sh"), "--day", "2026-11-24",
                        str(d.data), str(png)], capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, HALLQ=str(HALLQ)))
    assert p.returncode == 0, p.stderr
    w, h, colours = png_info(png.read_bytes())
    assert (w, h) == (1280, 2000) and colours > 50
