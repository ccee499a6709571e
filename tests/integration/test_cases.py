"""Stage 2 and 3: intake outcomes and checklist rules, case numbers and
deadlines in working days, review with leases, joint review, supplement,
due_soon/overdue marks, issuance, delivery and ratings."""
import datetime
import shutil

from conftest import TUESDAY_10AM

MIN = 60 * 1000
SH = datetime.timezone(datetime.timedelta(hours=8))
PERSON = {"kind": "person", "id": "110101199003077777", "name": "Zhang San"}


def at(y, m, d, hh=10, mm=0):
    return int(datetime.datetime(y, m, d, hh, mm, tzinfo=SH).timestamp() * 1000)


def window_with_ticket(daemon, wid="W03", line="B"):
    daemon.kiosk().ok("ticket.take", line=line)
    w = daemon.tcp("window-" + wid)
    w.ok("window.state", state="open")
    assert w.ok("window.call")["ticket"] is not None
    return w


def accept(w, service="S01", materials=("M01", "M02", "M03")):
    return w.ok("window.intake", service=service, applicant=PERSON, materials=list(materials),
                outcome="accept")


def test_intake_outcomes_and_checklist(daemon):
    w = window_with_ticket(daemon)
    r = accept(w)
    assert r["case_no"] == "20261124-0001"
    assert r["deadline_ms"] == at(2026, 11, 27, 17)  # Tue + 3 working days
    code, msg = w.err("window.intake", service="S01", applicant=PERSON,
                      materials=["M01", "M02"], outcome="accept")
    assert code == "checklist" and "M03" in msg
    r = w.ok("window.intake", service="S01", applicant=PERSON, materials=["M01"],
             outcome="notify")
    assert r == {"missing": ["M02", "M03"]}
    code, _ = w.err("window.intake", service="S01", applicant=PERSON,
                    materials=["M01", "M02", "M03"], outcome="notify")
    assert code == "checklist"
    code, msg = w.err("window.intake", service="S01", applicant=PERSON,
                      materials=["M01", "M02", "M03"], outcome="instant")
    assert code == "checklist" and "review" in msg
    code, msg = w.err("window.intake", service="S01", applicant=PERSON, materials=[],
                      outcome="refuse")
    assert code == "bad_request" and "args.reason" in msg
    assert w.ok("window.intake", service="S01", applicant=PERSON, materials=[],
                outcome="refuse", reason="not our scope") == {}
    r = w.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
             outcome="instant")
    assert r == {"case_no": "20261124-0002"}
    c = daemon.kiosk().ok("case.get", case_no=r["case_no"])
    assert (c["state"], c["ready"], c["delivered"]) == ("approved", True, False)
    code, msg = w.err("window.intake", service="S99", applicant=PERSON, materials=[],
                      outcome="accept")
    assert code == "not_found" and "service" in msg
    code, msg = w.err("window.intake", service="S01", applicant={"kind": "robot", "id": "x"},
                      materials=[], outcome="accept")
    assert code == "bad_request" and "applicant.kind" in msg
    code, msg = w.err("window.intake", service="S01", applicant={"kind": "person"},
                      materials=[], outcome="accept")
    assert code == "bad_request" and "applicant.id" in msg
    code, msg = w.err("window.intake", service="S01", applicant=PERSON, materials=[],
                      outcome="maybe")
    assert code == "bad_request" and "outcome" in msg
    # The ticket stays current and is being served; done ends it.
    t = w.ok("window.recall")["ticket"]
    assert t["state"] == "serving"
    w.ok("window.done")
    code, msg = w.err("window.intake", service="S01", applicant=PERSON,
                      materials=["M01", "M02", "M03"], outcome="accept")
    assert code == "conflict" and "current ticket" in msg


def test_review_claim_decide_joint_and_forbidden(daemon):
    w = window_with_ticket(daemon)
    joint = w.ok("window.intake", service="S04", applicant=PERSON,
                 materials=["M01", "M02", "M03", "M06", "M07"], outcome="accept")["case_no"]
    single = accept(w)["case_no"]
    mkt, res, hsg = (daemon.unix("dept-" + d) for d in ("mkt", "res", "hsg"))
    # Most urgent first: S01 (3 days) before S04 (10 days).
    claim = mkt.ok("review.claim")
    assert claim["case"]["case_no"] == single
    assert claim["lease_until_ms"] == TUESDAY_10AM + 300 * 1000
    code, msg = mkt.err("review.decide", case_no=joint, decision="approve")
    assert code == "conflict" and "claim" in msg
    assert mkt.ok("review.decide", case_no=single, decision="approve") == {"state": "approved"}
    # Another department's case: forbidden to read and to decide.
    pol = daemon.unix("dept-pol")
    assert pol.err("case.get", case_no=joint)[0] == "forbidden"
    assert pol.err("review.decide", case_no=joint, decision="approve")[0] == "forbidden"
    assert pol.ok("review.claim") == {"case": None}
    assert [c["case_no"] for c in mkt.ok("review.list")["cases"]] == [joint]
    assert pol.ok("review.list") == {"cases": []}
    # Joint review: every department approves; one denial denies.
    assert mkt.ok("review.claim")["case"]["case_no"] == joint
    assert mkt.ok("review.decide", case_no=joint, decision="approve") == {"state": "review"}
    assert hsg.ok("review.claim")["case"]["case_no"] == joint
    assert hsg.ok("review.decide", case_no=joint, decision="approve") == {"state": "review"}
    assert res.ok("review.claim")["case"]["case_no"] == joint
    code, msg = res.err("review.decide", case_no=joint, decision="deny")
    assert code == "bad_request" and "args.reason" in msg
    assert res.ok("review.decide", case_no=joint, decision="deny",
                  reason="zoning") == {"state": "denied"}
    c = daemon.kiosk().ok("case.get", case_no=joint)
    assert [d["state"] for d in c["departments"]] == ["approved", "denied", "approved"]
    assert c["ready"] is True
    assert daemon.kiosk().err("case.get", case_no="nope")[0] == "not_found"
    assert mkt.err("review.decide", case_no=single, decision="maybe")[0] == "bad_request"


def test_lease_expiry_returns_case(daemon):
    w = window_with_ticket(daemon)
    no = accept(w)["case_no"]
    mkt = daemon.unix("dept-mkt")
    mkt.ok("review.claim")
    daemon.admin().ok("clock.advance", ms=301 * 1000)
    c = mkt.ok("case.get", case_no=no)
    assert c["departments"][0]["state"] == "pending"
    code, _ = mkt.err("review.decide", case_no=no, decision="approve")
    assert code == "conflict"
    assert mkt.ok("review.claim")["case"]["case_no"] == no


def test_supplement_moves_deadline(make_daemon):
    # Tuesday 2026-09-29: the deadline crosses the National Day holiday.
    d = make_daemon(manual_clock=True, start_ms=at(2026, 9, 29))
    w = window_with_ticket(d)
    r = accept(w)
    assert r["deadline_ms"] == at(2026, 10, 9, 17)  # 9-30, 10-08, 10-09
    no = r["case_no"]
    mkt = d.unix("dept-mkt")
    mkt.ok("review.claim")
    code, _ = mkt.err("review.decide", case_no=no, decision="supplement", missing=[])
    assert code == "bad_request"
    code, msg = mkt.err("review.decide", case_no=no, decision="supplement", missing=["M09"])
    assert code == "checklist" and "M09" in msg
    assert mkt.ok("review.decide", case_no=no, decision="supplement",
                  missing=["M03"]) == {"state": "supplement"}
    # Brought on Thursday 10-08: the clock stood from Tuesday 9-29 to 10-08,
    # i.e. working days 9-29 and 9-30: the deadline moves by two working
    # days, over the extra working Saturday 10-10, to Monday 10-12.
    d.admin().ok("clock.advance", ms=at(2026, 10, 8) - at(2026, 9, 29))
    w2 = window_with_ticket(d, "W01", "A")
    code, msg = w2.err("case.supplement", case_no=no, materials=["M01"])
    assert code == "checklist" and "M03" in msg
    assert w2.ok("case.supplement", case_no=no, materials=["M03"]) == {
        "deadline_ms": at(2026, 10, 12, 17)}
    assert w2.err("case.supplement", case_no=no, materials=["M03"])[0] == "conflict"
    assert mkt.ok("review.claim")["case"]["state"] == "review"


def test_deadline_marks(daemon):
    w = window_with_ticket(daemon)
    no = accept(w)["case_no"]  # due Fri 11-27 17:00
    a, k = daemon.admin(), daemon.kiosk()
    a.ok("clock.advance", ms=at(2026, 11, 27, 8, 59) - TUESDAY_10AM)
    assert k.ok("case.get", case_no=no)["due_soon"] is False
    a.ok("clock.advance", ms=MIN)  # 09:00, the opening of the deadline's day
    c = k.ok("case.get", case_no=no)
    assert (c["due_soon"], c["overdue"]) == (True, False)
    a.ok("clock.advance", ms=8 * 60 * MIN + 1)
    assert k.ok("case.get", case_no=no)["overdue"] is True


def test_issuance_delivery_and_rating(daemon):
    w = window_with_ticket(daemon)
    no = accept(w)["case_no"]
    k = daemon.kiosk()
    code, _ = k.err("ticket.take", line="F", case_no=no)
    assert code == "conflict"  # not ready yet
    assert k.err("ticket.take", line="F", case_no="20261124-9999")[0] == "not_found"
    w5 = daemon.tcp("window-W05")
    assert w5.err("case.deliver", case_no=no, method="counter")[0] == "conflict"
    mkt = daemon.unix("dept-mkt")
    mkt.ok("review.claim")
    mkt.ok("review.decide", case_no=no, decision="approve")
    t = k.ok("ticket.take", line="F", case_no=no)
    assert t["number"] == "F001"
    w5.ok("window.state", state="open")
    assert w5.ok("window.call")["ticket"]["number"] == "F001"
    code, msg = w5.err("case.deliver", case_no=no, method="mail")
    assert code == "bad_request" and "tracking" in msg
    assert w5.err("case.deliver", case_no=no, method="drone")[0] == "bad_request"
    assert w5.ok("case.deliver", case_no=no, method="counter") == {}
    c = k.ok("case.get", case_no=no)
    assert (c["state"], c["delivered"]) == ("delivered", True)
    assert w5.err("case.deliver", case_no=no, method="counter")[0] == "conflict"
    assert k.ok("rate", case_no=no, score=5, comment="fast") == {}
    assert k.err("rate", case_no=no, score=4)[0] == "conflict"
    assert k.err("rate", ticket_id=t["ticket_id"], score=6)[0] == "bad_request"
    assert k.err("rate", ticket_id=t["ticket_id"], score=0)[0] == "bad_request"
    assert k.ok("rate", ticket_id=t["ticket_id"], score=4) == {}
    assert k.err("rate", ticket_id="nope", score=3)[0] == "not_found"
    assert k.err("rate", score=3)[0] == "bad_request"


def test_cases_replay_to_the_same_state(daemon, make_daemon):
    w = window_with_ticket(daemon)
    nos = [accept(w)["case_no"] for _ in range(3)]
    mkt = daemon.unix("dept-mkt")
    mkt.ok("review.claim")
    mkt.ok("review.decide", case_no=nos[0], decision="supplement", missing=["M01"])
    mkt.ok("review.claim")
    daemon.admin().ok("clock.advance", ms=3 * 24 * 60 * MIN)  # leases, marks, closes
    live = daemon.admin().ok("digest")
    daemon.stop()
    fresh = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM, name="replay", start=False)
    shutil.copytree(daemon.data / "wal", fresh.data / "wal")
    shutil.copy2(daemon.data / "pii.key", fresh.data / "pii.key")  # the hall has intakes
    fresh.start()
    assert fresh.admin().ok("digest") == live


def test_rating_needs_a_service_given(daemon):
    # A ticket is rated once served, a case once decided: a waiting ticket
    # or a case still in review cannot be rated (yet).
    k = daemon.kiosk()
    waiting = k.ok("ticket.take", line="C")  # W03 does not serve C
    code, msg = k.err("rate", ticket_id=waiting["ticket_id"], score=5)
    assert code == "conflict" and "waiting" in msg, msg
    w = window_with_ticket(daemon)  # B001 at W03
    no = accept(w)["case_no"]
    code, msg = k.err("rate", case_no=no, score=5)
    assert code == "conflict" and "review" in msg, msg
    # Served (an intake recorded): the ticket may be rated.
    assert k.ok("rate", ticket_id="20261124-B001", score=4) == {}
    d = daemon.unix("dept-mkt")
    d.ok("review.claim")
    d.ok("review.decide", case_no=no, decision="approve")
    assert k.ok("rate", case_no=no, score=5) == {}


def test_the_pickup_line_takes_only_case_tickets(daemon):
    k = daemon.kiosk()
    code, msg = k.err("ticket.take", line="F")
    assert code == "bad_request" and "args.case_no" in msg and "pickup" in msg, msg
    w = window_with_ticket(daemon, "W01", "A")
    r = w.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
             outcome="instant")
    code, msg = k.err("ticket.take", line="A", case_no=r["case_no"])
    assert code == "bad_request" and "args.case_no" in msg, msg
    assert k.ok("ticket.take", line="F", case_no=r["case_no"])["number"] == "F001"


def test_ready_in_every_state(daemon):
    """case.get's `ready` (1.2): true while a result waits for pickup
    (approved, denied or instant, not delivered), false before a decision
    and once delivered (`delivered` then true)."""
    w = window_with_ticket(daemon)
    k, mkt = daemon.kiosk(), daemon.unix("dept-mkt")

    def flags(no):
        c = k.ok("case.get", case_no=no)
        return c["state"], c["ready"], c["delivered"]

    approved, denied, paused = (accept(w)["case_no"] for _ in range(3))
    instant = w.ok("window.intake", service="S02", applicant=PERSON, materials=["M02", "M04"],
                   outcome="instant")["case_no"]
    assert flags(approved) == ("review", False, False)
    for no, decision, extra in ((approved, "approve", {}), (denied, "deny", {"reason": "no"}),
                                (paused, "supplement", {"missing": ["M03"]})):
        assert mkt.ok("review.claim")["case"]["case_no"] == no
        mkt.ok("review.decide", case_no=no, decision=decision, **extra)
    assert flags(approved) == ("approved", True, False)
    assert flags(denied) == ("denied", True, False)
    assert flags(paused) == ("supplement", False, False)
    assert flags(instant) == ("approved", True, False)
    w.ok("case.supplement", case_no=paused, materials=["M03"])
    assert flags(paused) == ("review", False, False)
    w5 = daemon.tcp("window-W05")
    for no in (approved, denied, instant):
        w5.ok("case.deliver", case_no=no, method="counter")
        assert flags(no) == ("delivered", False, True)
