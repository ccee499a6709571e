"""Pipelined requests on one connection, sent in one write so that they are
parsed in one loop turn and their mutations share a batch."""
from conftest import TUESDAY_10AM


def answers(c, requests):
    """Sends the requests in one write and reads their answers in order."""
    ids = c.pipeline_send(requests)
    out = []
    for id in ids:
        m = c.read_response()
        assert m["id"] == id, (id, m)
        out.append(m)
    return out


def test_a_read_sees_the_requests_before_it_and_none_after(make_daemon):
    # [take, stats, take]: stats answers the state after the first take
    # and before the second (issue 12, defect 7: it saw both).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    a = d.admin()
    t1, st, t2 = answers(a, [("ticket.take", {"line": "A"}), ("stats", None),
                              ("ticket.take", {"line": "A"})])
    assert t1["ok"] and t2["ok"], (t1, t2)
    assert st["ok"] and st["result"]["lines"]["A"]["taken"] == 1, st
    # The same with a read of the second ticket: not there yet.
    got = answers(a, [("ticket.take", {"line": "B"}),
                      ("ticket.get", {"ticket_id": "20261124-B002"}),
                      ("ticket.take", {"line": "B"})])
    assert got[0]["ok"] and got[0]["result"]["number"] == "B001", got[0]
    assert got[1]["error"]["code"] == "not_found", got[1]
    assert got[2]["ok"] and got[2]["result"]["number"] == "B002", got[2]
    assert a.ok("stats")["lines"]["A"]["taken"] == 2


def test_hello_pipelined_with_requests(make_daemon):
    # Frames after hello are parsed once hello is answered, as the
    # authenticated connection's.
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    c = d.tcp()
    h, t, p = answers(c, [("hello", {"token": "kiosk-demo"}), ("ticket.take", {"line": "A"}),
                          ("ping", None)])
    assert h["ok"] and t["ok"] and p["ok"], (h, t, p)
    assert t["result"]["number"] == "A001"


def test_clock_advance_then_a_mutation_in_one_batch(make_daemon):
    # [take, clock.advance, take] share a batch: the take after the advance
    # is stamped with the new time (issue 12, defect 9: the batch failed,
    # the record's time going back).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM)
    a = d.admin()
    t1, adv, t2 = answers(a, [("ticket.take", {"line": "A"}),
                              ("clock.advance", {"ms": 60000}),
                              ("ticket.take", {"line": "A"})])
    assert t1["ok"] and adv["ok"] and t2["ok"], (t1, adv, t2)
    assert t1["result"]["taken_ms"] == TUESDAY_10AM
    assert adv["result"]["now_ms"] == TUESDAY_10AM + 60000
    assert t2["result"]["taken_ms"] == TUESDAY_10AM + 60000
    # Durable and replayed alike.
    d.restart()
    a = d.admin()
    got = a.ok("ticket.get", ticket_id=t2["result"]["ticket_id"])
    assert got["number"] == t2["result"]["number"], got
    assert a.ok("ping")["now_ms"] == TUESDAY_10AM + 60000
