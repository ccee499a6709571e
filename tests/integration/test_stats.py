"""stats after a scripted day, figure by figure, live and for a past day."""
import datetime

from conftest import TUESDAY_10AM

MIN = 60 * 1000
PERSON = {"kind": "person", "id": "110101199003077777"}


def test_stats_scripted_day(daemon):
    a, k = daemon.admin(), daemon.kiosk()
    tickets = [k.ok("ticket.take", line=l) for l in "AAAB"]
    a.ok("clock.advance", ms=5 * MIN)
    w = daemon.tcp("window-W01")
    w.ok("window.state", state="open")
    assert w.ok("window.call")["ticket"]["number"] == "A001"   # waited 300 s
    a.ok("clock.advance", ms=2 * MIN)
    w.ok("window.done")                                        # served in 120 s
    assert w.ok("window.call")["ticket"]["number"] == "A002"   # waited 420 s
    w.ok("window.no_show")
    assert w.ok("window.call")["ticket"]["number"] == "A003"   # waited 420 s
    w.ok("window.intake", service="S05", applicant=PERSON, materials=["M02", "M08", "M09"],
         outcome="accept")
    w.ok("window.intake", service="S03", applicant=PERSON, materials=["M02"], outcome="notify")
    w.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
         outcome="instant")
    a.ok("clock.advance", ms=3 * MIN)
    w.ok("window.done")                                        # served in 180 s
    k.ok("rate", ticket_id=tickets[0]["ticket_id"], score=5)
    k.ok("rate", ticket_id=tickets[2]["ticket_id"], score=3)

    s = a.ok("stats")
    assert s["day"] == "2026-11-24" and s["now_ms"] == TUESDAY_10AM + 10 * MIN
    assert s["lines"]["A"] == {"taken": 3, "served": 2, "no_show": 1, "expired": 0,
                               "waiting": 0, "wait_avg_s": 380, "wait_p90_s": 420,
                               "longest_wait_s": 0}
    assert s["lines"]["B"] == {"taken": 1, "served": 0, "no_show": 0, "expired": 0,
                               "waiting": 1, "wait_avg_s": 0, "wait_p90_s": 0,
                               "longest_wait_s": 600}
    assert set(s["lines"]) == {"A", "B", "C", "D", "F"}
    assert s["windows"]["W01"] == {"served": 2, "service_avg_s": 150}
    assert s["windows"]["W06"] == {"served": 0, "service_avg_s": 0}
    assert s["departments"]["res"] == {"in_review": 1, "due_soon": 0, "overdue": 0}
    assert s["departments"]["mkt"] == {"in_review": 0, "due_soon": 0, "overdue": 0}
    c = s["cases"]
    assert (c["accepted"], c["instant"], c["notified"], c["refused"], c["delivered"]) == \
        (1, 1, 1, 0, 0)
    assert abs(c["instant_rate"] - 1 / 3) < 1e-9
    assert s["ratings"] == {"count": 2, "good_share": 0.5}

    # After the close: B001 expired; the day is a past day now.
    a.ok("clock.advance", ms=7 * 60 * MIN)
    p = a.ok("stats", day="2026-11-24")
    assert p["lines"]["B"]["expired"] == 1 and p["lines"]["B"]["waiting"] == 0
    assert p["lines"]["A"]["served"] == 2
    # No day: still the hall's date (1.2), so the figures of the day just
    # closed, not those of the next business day.
    live = a.ok("stats")
    assert live["day"] == "2026-11-24" and live["lines"]["A"]["taken"] == 3
    assert live["lines"]["B"] == p["lines"]["B"]
    code, msg = a.err("stats", day="2026-13-01")
    assert code == "bad_request" and "day" in msg
    # Deadline marks count per department: S05 (5 days) is due Tue 12-01.
    a.ok("clock.advance", ms=(6 * 24 + 16) * 60 * MIN)  # Tue 12-01 09:10
    d = a.ok("stats")["departments"]["res"]
    assert d == {"in_review": 1, "due_soon": 1, "overdue": 0}
    a.ok("clock.advance", ms=8 * 60 * MIN)  # 17:10, past the deadline
    assert a.ok("stats")["departments"]["res"] == {"in_review": 1, "due_soon": 0, "overdue": 1}
    assert k.err("stats")[0] == "forbidden"


def _at(y, m, d, hh, mm=0):
    sh = datetime.timezone(datetime.timedelta(hours=8))
    return int(datetime.datetime(y, m, d, hh, mm, tzinfo=sh).timestamp() * 1000)


def test_stats_default_day_is_the_local_date(make_daemon):
    """stats with no day: the hall's calendar date of now_ms (1.2), after the
    close (the next business day after 2026-09-30 is 2026-10-08, a week of
    holidays later) and on a holiday."""
    d = make_daemon(manual_clock=True, start_ms=_at(2026, 9, 30, 16, 0))
    a, k = d.admin(), d.kiosk()
    k.ok("ticket.take", line="A")
    k.ok("ticket.take", line="A")
    s = a.ok("stats")
    assert s["day"] == "2026-09-30" and s["lines"]["A"]["waiting"] == 2
    a.ok("clock.advance", ms=65 * MIN)  # 17:05: the day closed at 17:00
    s = a.ok("stats")
    assert s["day"] == "2026-09-30", s["day"]
    assert s["now_ms"] == _at(2026, 9, 30, 17, 5)
    assert (s["lines"]["A"]["taken"], s["lines"]["A"]["expired"]) == (2, 2)
    # A ticket taken now belongs to the next business day...
    assert k.ok("ticket.take", line="A")["ticket_id"].startswith("20261008-")
    assert a.ok("stats", day="2026-10-08")["lines"]["A"]["taken"] == 1
    # ... and stats still says the date of today, until midnight.
    a.ok("clock.advance", ms=6 * 60 * MIN + 54 * MIN)  # 23:59
    assert a.ok("stats")["day"] == "2026-09-30"
    # A holiday: 2026-10-03, 10:00.
    a.ok("clock.advance", ms=_at(2026, 10, 3, 10) - _at(2026, 9, 30, 23, 59))
    s = a.ok("stats")
    assert s["day"] == "2026-10-03" and s["lines"]["A"]["taken"] == 0
