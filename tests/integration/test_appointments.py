"""Appointments over the wire: appointment.book and its bad inputs, taking a
ticket with the code in and out of its slot, the code used once, for its own
line only, the no-show of an unused code (a record of the daemon's, so it
survives a restart), and appointment.get."""
import pytest

from conftest import TUESDAY, TUESDAY_10AM

MIN = 60 * 1000
HOUR = 60 * MIN
DAY = 24 * HOUR
WINDOW = 15 * MIN  # rules.appointment_window_s of the demo hall

# Tuesday 2026-11-24 in Shanghai; the clock starts at 10:00.
T11 = TUESDAY_10AM + HOUR
WED_9 = TUESDAY_10AM + DAY - HOUR


def book(c, line, slot_ms, **kw):
    return c.ok("appointment.book", line=line, slot_ms=slot_ms, **kw)


def test_book_codes_by_slot_day(daemon):
    k = daemon.kiosk()
    assert book(k, "A", T11) == {"code": "P%s-0001" % TUESDAY, "slot_ms": T11}
    assert book(k, "B", T11 + 30 * MIN) == {"code": "P%s-0002" % TUESDAY,
                                            "slot_ms": T11 + 30 * MIN}
    # Another day has its own sequence; admin may book too.
    assert daemon.admin().ok("appointment.book", line="A", slot_ms=WED_9) == {
        "code": "P20261125-0001", "slot_ms": WED_9}
    assert book(k, "A", TUESDAY_10AM)["code"] == "P%s-0003" % TUESDAY  # now is not past
    got = k.ok("appointment.get", code="P%s-0002" % TUESDAY)
    assert got == {"code": "P%s-0002" % TUESDAY, "line": "B", "slot_ms": T11 + 30 * MIN,
                   "state": "booked", "window_from_ms": T11 + 15 * MIN,
                   "window_until_ms": T11 + 45 * MIN}


def test_book_idem(daemon):
    k = daemon.kiosk()
    first = book(k, "A", T11, idem="book-1")
    assert book(k, "A", T11, idem="book-1") == first
    code, msg = k.err("appointment.book", line="A", slot_ms=T11 + MIN, idem="book-1")
    assert code == "conflict" and "idem" in msg
    assert book(k, "A", T11)["code"] == "P%s-0002" % TUESDAY


@pytest.mark.parametrize("args,code,field", [
    ({"slot_ms": T11}, "bad_request", "args.line"),
    ({"line": 7, "slot_ms": T11}, "bad_request", "args.line"),
    ({"line": "Z", "slot_ms": T11}, "not_found", "args.line"),
    ({"line": "A"}, "bad_request", "args.slot_ms"),
    ({"line": "A", "slot_ms": "11:00"}, "bad_request", "args.slot_ms"),
    ({"line": "A", "slot_ms": -5}, "bad_request", "args.slot_ms"),
    ({"line": "A", "slot_ms": TUESDAY_10AM - 1}, "bad_request", "args.slot_ms"),  # past
    ({"line": "A", "slot_ms": TUESDAY_10AM + 7 * HOUR}, "bad_request", "args.slot_ms"),  # 17:00
    ({"line": "A", "slot_ms": WED_9 - 1}, "bad_request", "args.slot_ms"),  # 08:59:59.999
    ({"line": "A", "slot_ms": TUESDAY_10AM + 4 * DAY}, "bad_request", "args.slot_ms"),  # Sat
    ({"line": "A", "slot_ms": 1798768800000}, "bad_request", "args.slot_ms"),  # 2027-01-01 10:00
    ({"line": "A", "slot_ms": TUESDAY_10AM + 400 * DAY}, "bad_request", "args.slot_ms"),
    ({"line": "A", "slot_ms": T11, "idem": ""}, "bad_request", "args.idem"),
])
def test_book_bad_input(daemon, args, code, field):
    k = daemon.kiosk()
    got, msg = k.err("appointment.book", **args)
    assert (got, field in msg) == (code, True), msg
    # Nothing was booked: the first code is still 0001.
    assert book(k, "A", T11)["code"] == "P%s-0001" % TUESDAY


def test_book_roles(daemon):
    for token in ("window-W01", "display-demo"):
        code, _ = daemon.tcp(token).err("appointment.book", line="A", slot_ms=T11)
        assert code == "forbidden"
    code, _ = daemon.unix("dept-mkt").err("appointment.get", code="P%s-0001" % TUESDAY)
    assert code == "forbidden"


def test_take_in_slot_goes_first(daemon):
    k, a = daemon.kiosk(), daemon.admin()
    c = book(k, "A", T11)["code"]
    plain = k.ok("ticket.take", line="A")
    prio = k.ok("ticket.take", line="A", priority=True)
    a.ok("clock.advance", ms=HOUR - WINDOW)  # 10:45: the window opens
    t = k.ok("ticket.take", line="A", appointment=c)
    assert (t["number"], t["ahead"]) == ("A003", 0)
    assert k.ok("appointment.get", code=c)["state"] == "used"
    got = k.ok("appointment.get", code=c)
    assert (got["ticket_id"], got["in_slot"]) == (t["ticket_id"], True)
    w = daemon.tcp("window-W01")
    w.ok("window.state", state="open")
    called = []
    for _ in range(3):
        called.append(w.ok("window.call")["ticket"]["number"])
        w.ok("window.done")
    assert called == ["A003", prio["number"], plain["number"]]


def test_take_out_of_slot_has_no_preference(daemon):
    k, a = daemon.kiosk(), daemon.admin()
    late_slot = book(k, "A", T11 + 2 * HOUR)["code"]  # 13:00
    k.ok("ticket.take", line="A")
    a.ok("clock.advance", ms=HOUR - WINDOW - 1)  # 10:44:59.999, 1 ms early for 11:00
    early = book(k, "A", T11)["code"]
    t = k.ok("ticket.take", line="A", appointment=early)
    assert (t["number"], t["ahead"]) == ("A002", 1)
    t = k.ok("ticket.take", line="A", appointment=late_slot)
    assert (t["number"], t["ahead"]) == ("A003", 2)
    got = k.ok("appointment.get", code=early)
    assert (got["state"], got["in_slot"]) == ("used", False)
    # Used is used, in slot or not.
    code, msg = k.err("ticket.take", line="A", appointment=early)
    assert code == "conflict" and early in msg


def test_take_with_bad_codes(daemon):
    k, a = daemon.kiosk(), daemon.admin()
    c = book(k, "B", T11)["code"]
    a.ok("clock.advance", ms=HOUR)
    code, msg = k.err("ticket.take", line="A", appointment=c)
    assert code == "conflict" and "line B" in msg
    for bad in ("P%s-0999" % TUESDAY, "nope", "P" * 60):
        code, msg = k.err("ticket.take", line="A", appointment=bad)
        assert code == "not_found" and "args.appointment" in msg, msg
    code, msg = k.err("ticket.take", line="A", appointment=12)
    assert code == "bad_request" and "args.appointment" in msg
    code, msg = k.err("appointment.get", code="P%s-0999" % TUESDAY)
    assert code == "not_found" and "args.code" in msg
    code, msg = k.err("appointment.get")
    assert code == "bad_request" and "args.code" in msg
    # None of it took a number or the code.
    t = k.ok("ticket.take", line="B", appointment=c)
    assert (t["number"], t["ahead"]) == ("B001", 0)
    code, _ = k.err("ticket.take", line="B", appointment=c)
    assert code == "conflict"


def test_no_show_is_a_record(daemon):
    k, a = daemon.kiosk(), daemon.admin()
    c = book(k, "A", TUESDAY_10AM + 30 * MIN)["code"]
    other = book(k, "A", T11)["code"]
    a.ok("clock.advance", ms=30 * MIN + WINDOW)  # 10:45, the window's last ms
    assert k.ok("appointment.get", code=c)["state"] == "booked"
    a.ok("clock.advance", ms=1)
    assert k.ok("appointment.get", code=c)["state"] == "no_show"
    assert k.ok("appointment.get", code=other)["state"] == "booked"
    daemon.crash_restart()
    k = daemon.kiosk()
    assert k.ok("appointment.get", code=c)["state"] == "no_show"
    # A no-show code still gets a ticket, with no preference.
    k.ok("ticket.take", line="A")
    t = k.ok("ticket.take", line="A", appointment=c)
    assert (t["number"], t["ahead"]) == ("A002", 1)
    got = k.ok("appointment.get", code=c)
    assert (got["state"], got["in_slot"], got["ticket_id"]) == ("used", False, t["ticket_id"])
    daemon.restart()
    k = daemon.kiosk()
    assert k.ok("appointment.get", code=c)["state"] == "used"
    assert k.ok("appointment.get", code=other)["state"] == "booked"
