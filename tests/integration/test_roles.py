"""The role matrix: every op x every role x each listener.

One table (OPS) holds the roles of every op as daemon/hall/hall.h's
HALL_OP_MAP has them, plus the contract's ops; test_table_mirrors_hall_op_map
keeps the two equal. From it come the cases:

- on a listener that takes the role, the op is allowed (any answer but
  `forbidden` or `unknown_op`) or `forbidden`, and the connection stays;
- on a listener that does not take the role, hello is `unauthenticated`
  and the connection is closed, with the op sent after it never answered;
- ops that only the daemon itself writes (system records) are `unknown_op`
  on the wire for everyone;
- an op before hello is `unauthenticated` and closes, on both listeners.

Ops of the contract that HALL_OP_MAP does not have yet are xfail (not
strict) with the reason; they pass by themselves once the daemon has them.
The daemon is one for the module (the demo hall on the manual clock):
answers other than `forbidden` depend on state, and these tests only tell
allowed from forbidden, so the order of the cases does not matter."""
import pathlib
import re
import shutil
import tempfile

import pytest

from conftest import REPO, TUESDAY_10AM, Daemon, write_config
from hallq_client import Closed

KIOSK, WINDOW, DISPLAY, DEPARTMENT, ADMIN = ROLES = (
    "kiosk", "window", "display", "department", "admin")
ANY = frozenset(ROLES)
K, W, D, DEP, A = ({r} for r in ROLES)

TOKENS = {KIOSK: "kiosk-demo", WINDOW: "window-W01", DISPLAY: "display-demo",
          DEPARTMENT: "dept-mkt", ADMIN: "admin-demo"}
# The demo hall's listeners (the contract's defaults).
LISTENERS = {"tcp": {KIOSK, WINDOW, DISPLAY}, "unix": {DEPARTMENT, ADMIN}}

NO_CASE = "20261124-9999"
NO_TICKET = "20261124-A999"

# op -> (roles allowed, args). Args are well-formed, so that an allowed op
# gets past its checks of types; whatever state answer follows is fine.
OPS = {
    "hello": (ANY, {"token": None}),  # None: the connection's own token
    "ping": (ANY, {}),
    "subscribe": (ANY, {"topics": ["call"]}),
    "digest": (A, {}),
    "clock.advance": (A, {"ms": 1}),
    "ticket.take": (K | A, {"line": "A"}),
    "ticket.get": (K | A, {"ticket_id": NO_TICKET}),
    "ticket.return": (K | A, {"ticket_id": NO_TICKET}),
    "appointment.book": (K | A, {"line": "A", "slot_ms": TUESDAY_10AM + 3600 * 1000}),
    "appointment.get": (K | A, {"code": "P20261124-9999"}),
    "window.state": (W, {"state": "paused"}),
    "window.call": (W, {}),
    "window.recall": (W, {}),
    "window.no_show": (W, {}),
    "window.transfer": (W, {"line": "B"}),
    "window.done": (W, {}),
    "window.intake": (W, {"service": "S01", "applicant": {"kind": "person", "id": "1"},
                          "materials": ["M01"], "outcome": "notify"}),
    "case.get": (K | A | W | DEP, {"case_no": NO_CASE}),
    "case.supplement": (W, {"case_no": NO_CASE, "materials": ["M03"]}),
    "case.deliver": (W, {"case_no": NO_CASE, "method": "counter"}),
    "review.claim": (DEP, {}),
    "review.decide": (DEP, {"case_no": NO_CASE, "decision": "approve"}),
    "review.list": (DEP, {}),
    "rate": (K | A, {"ticket_id": NO_TICKET, "score": 5}),
    "stats": (A, {}),
    "config.reload": (A, {}),
    "day.close": (A, {}),
    # Protocol 1.2: what displays and kiosks build their screens from.
    "board": (D | W | A, {}),
    "catalogue": (ANY, {}),
}
# Records only the daemon writes (role `system` in HALL_OP_MAP): no client
# can send them, and the wire does not know them.
SYSTEM_OPS = ("config", "case.timer", "appointment.timer")

ROLE_MACROS = {"R_K": KIOSK, "R_W": WINDOW, "R_D": DISPLAY, "R_DEP": DEPARTMENT, "R_A": ADMIN}


def hall_op_map():
    """{wire name: set of roles} from HALL_OP_MAP in daemon/hall/hall.h
    (R_SYS alone gives the empty set)."""
    text = (REPO / "daemon" / "hall" / "hall.h").read_text()
    out = {}
    for name, roles in re.findall(r'^\s*X\(\w+,\s*"([^"]+)",\s*\d+,\s*([^,]+),', text, re.M):
        got = set()
        for part in roles.split("|"):
            part = part.strip()
            if part == "R_ANY":
                got |= ANY
            elif part in ROLE_MACROS:
                got.add(ROLE_MACROS[part])
            else:
                assert part == "R_SYS", "unknown role macro %r for %s" % (part, name)
        out[name] = got
    assert out, "HALL_OP_MAP not found in hall.h"
    return out


HALL_OPS = hall_op_map()


def pending(op):
    """A mark for an op the daemon does not have yet, else ()."""
    if op in HALL_OPS:
        return ()
    return (pytest.mark.xfail(reason="%s is not in HALL_OP_MAP yet (being built)" % op,
                              strict=False),)


@pytest.fixture(scope="module")
def hall():
    work = pathlib.Path(tempfile.mkdtemp(prefix="hq-roles-"))
    sockdir = tempfile.mkdtemp(prefix="hqs-")
    data = work / "data"
    data.mkdir()
    d = Daemon(data, write_config(work, start_ms=TUESDAY_10AM), sockdir, manual_clock=True,
               logdir=work)
    d.start()
    try:
        yield d
    finally:
        try:
            d.stop()  # exit 0 and no sanitizer report, asserted
        finally:
            if d.proc is not None:
                d.proc.kill()
                d._reap()
            shutil.rmtree(sockdir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


def connect(hall, listener):
    return hall.tcp() if listener == "tcp" else hall.unix()


def args_for(op, role):
    args = dict(OPS[op][1])
    if op == "hello":
        args["token"] = TOKENS[role]
    return args


def matrix():
    for op, (roles, _) in OPS.items():
        for role in ROLES:
            for listener in LISTENERS:
                yield pytest.param(op, role, listener, role in roles and role in LISTENERS[listener],
                                   marks=pending(op) if role in LISTENERS[listener] else (),
                                   id="%s-%s-%s" % (op, role, listener))


def test_table_mirrors_hall_op_map():
    client_ops = {op: roles for op, roles in HALL_OPS.items() if roles}
    system_ops = {op for op, roles in HALL_OPS.items() if not roles}
    missing = sorted(set(client_ops) - set(OPS))
    assert not missing, "ops in HALL_OP_MAP missing from OPS here: %s" % missing
    assert system_ops == set(SYSTEM_OPS), system_ops
    for op, roles in client_ops.items():
        assert set(OPS[op][0]) == roles, "%s: table %s, HALL_OP_MAP %s" % (
            op, sorted(OPS[op][0]), sorted(roles))


@pytest.mark.parametrize("op,role,listener,allowed", list(matrix()))
def test_role_matrix(hall, op, role, listener, allowed):
    c = connect(hall, listener)
    try:
        if role not in LISTENERS[listener]:
            # The token is valid, the listener does not take its role: the
            # op pipelined after hello must never run.
            hello_id, op_id = c.pipeline_send([("hello", {"token": TOKENS[role]}),
                                               (op, args_for(op, role))])
            m = c.read()
            assert m.get("id") == hello_id and m["ok"] is False, m
            assert m["error"]["code"] == "unauthenticated", m
            try:
                extra = c.read()
            except Closed:
                extra = None
            assert extra is None, "answered after a refused hello: %r" % extra
            return
        c.hello(TOKENS[role])
        ok, res = c.call(op, **args_for(op, role))
        code = None if ok else res["code"]
        if allowed:
            assert code not in ("forbidden", "unknown_op"), (op, role, res)
        else:
            assert code == "forbidden", (op, role, res)
        # Neither answer closes the connection.
        assert "now_ms" in c.ok("ping")
    finally:
        c.close()


@pytest.mark.parametrize("op", SYSTEM_OPS + ("no.such.op",))
@pytest.mark.parametrize("role", ROLES)
def test_system_and_unknown_ops_are_unknown_on_the_wire(hall, op, role):
    listener = "tcp" if role in LISTENERS["tcp"] else "unix"
    c = connect(hall, listener)
    try:
        c.hello(TOKENS[role])
        assert c.err(op)[0] == "unknown_op"
        assert "now_ms" in c.ok("ping")
    finally:
        c.close()


@pytest.mark.parametrize("listener", sorted(LISTENERS))
@pytest.mark.parametrize("op", sorted(set(OPS) - {"hello"}))
def test_op_before_hello_is_unauthenticated(hall, op, listener):
    c = connect(hall, listener)
    try:
        code, _ = c.err(op, **args_for(op, KIOSK))
        assert code == "unauthenticated"
        assert c.is_closed()
    finally:
        c.close()


@pytest.mark.parametrize("listener", sorted(LISTENERS))
@pytest.mark.parametrize("token", ["nope", "", "kiosk-demo ", "window-W99", "dept-nope"])
def test_wrong_token_is_unauthenticated(hall, listener, token):
    c = connect(hall, listener)
    try:
        assert c.err("hello", token=token)[0] == "unauthenticated"
        assert c.is_closed()
    finally:
        c.close()


@pytest.mark.parametrize("role", ROLES)
def test_wrong_listener_does_not_reveal_the_token(hall, role):
    # A valid token on the other listener gets the very answer of a token
    # that exists nowhere.
    other = "unix" if role in LISTENERS["tcp"] else "tcp"
    answers = []
    for token in (TOKENS[role], "no-such-token"):
        c = connect(hall, other)
        try:
            answers.append(c.err("hello", token=token))
            assert c.is_closed()
        finally:
            c.close()
    assert answers[0] == answers[1]
    assert answers[0][0] == "unauthenticated"


@pytest.mark.parametrize("listener", sorted(LISTENERS))
@pytest.mark.parametrize("role", ROLES)
def test_hello_reports_role_and_identity(hall, role, listener):
    c = connect(hall, listener)
    try:
        if role not in LISTENERS[listener]:
            assert c.err("hello", token=TOKENS[role])[0] == "unauthenticated"
            assert c.is_closed()
            return
        r = c.hello(TOKENS[role])
        assert r["role"] == role
        assert r["hall"] == "Demo City Service Centre"
        assert r["protocol"] == 1
        want_id = {WINDOW: "W01", DEPARTMENT: "mkt", KIOSK: "K1", DISPLAY: "D1",
                   ADMIN: "admin"}[role]
        assert r["id"] == want_id
    finally:
        c.close()
