"""clients/python (issue 17's adapter kit, its first part): the `hallq`
package against a real hallqd: hello, calls, errors as exceptions,
pipelining in order, events with `since` resume and seq de-duplication."""
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "clients" / "python"))
import hallq  # noqa: E402

PERSON = {"kind": "person", "id": "110101199003077777", "name": "Wang Wu"}


def accept(daemon, w):
    daemon.kiosk().ok("ticket.take", line="B")
    w.ok("window.call")
    return w.ok("window.intake", service="S01", applicant=PERSON,
                materials=["M01", "M02", "M03"], outcome="accept")["case_no"]


def test_calls_errors_and_pipelining(daemon):
    c = hallq.connect_tcp("127.0.0.1", daemon.port, "kiosk-demo")
    assert c.call("ticket.take", line="A")["number"] == "A001"
    with pytest.raises(hallq.HallqError) as e:
        c.call("ticket.take", line="Z")
    assert e.value.code == "not_found" and "args.line" in e.value.message
    r = c.pipeline([("ticket.take", {"line": "A"}), ("ping", None),
                    ("ticket.take", {"line": "Z"}), ("ticket.take", {"line": "A"})])
    assert r[0]["number"] == "A002" and "now_ms" in r[1]
    assert isinstance(r[2], hallq.HallqError) and r[2].code == "not_found"
    assert r[3]["number"] == "A003"
    with pytest.raises(hallq.HallqError) as e:
        hallq.connect_tcp("127.0.0.1", daemon.port, "no-such-token")
    assert e.value.code == "unauthenticated"


def test_events_resume_with_since_and_skip_repeats(daemon):
    d = hallq.connect_unix(daemon.sock, "dept-mkt")
    seq0 = d.subscribe(["case"])
    w = daemon.tcp("window-W03")
    w.ok("window.state", state="open")
    no1 = accept(daemon, w)
    e1 = d.next_event()
    assert e1["event"] == "case" and e1["data"]["case_no"] == no1
    assert e1["data"]["change"] == "accepted" and e1["seq"] > seq0
    # The reviewer's view, as the adapter decides from it.
    case = d.call("review.claim")["case"]
    assert case["case_no"] == no1 and case["applicant"]["name"] == "W******"
    assert [m["code"] for m in case["materials"]] == ["M01", "M02", "M03"]
    e2 = d.next_event()
    assert e2["data"]["change"] == "claimed"
    # An adapter back after a crash: a new connection resumes from its seq.
    d2 = hallq.connect_unix(daemon.sock, "dept-mkt")
    d2.subscribe(["case"], since=seq0)
    assert d2.next_event() == e1 and d2.next_event() == e2
    # Subscribing again from further back on the same connection: what was
    # handed out already is skipped, the next new event comes.
    d2.subscribe(["case"], since=seq0)
    w.ok("window.done")
    no2 = accept(daemon, w)
    e3 = d2.next_event()
    assert e3["data"]["case_no"] == no2 and e3["seq"] > e2["seq"]
