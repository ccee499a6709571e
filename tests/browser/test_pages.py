"""The hall's screens in a real browser (docs/PROTOCOL.md "The hall's
screens"): headless Chromium, driven by Selenium, against the real hallqd.
Every wait is for a condition in the page (WebDriverWait), never a sleep.

- /board shows a call within a second of window.call, each call once, and
  keeps doing so across a SIGKILL and restart of hallqd, with no reload;
- a clerk runs a whole visit from /window;
- a kiosk takes a ticket at /kiosk and the board's waiting count moves;
- /dashboard's figures equal `stats`;
- every file of web/ is served at its path with its content type, and the
  pages run with no error under the Content-Security-Policy;
- each page fills 1920x1080 (screenshots: HALLQ_SCREENS=DIR writes them
  there; tools/screens.sh makes docs/screens/)."""
import http.client
import json
import os
import pathlib
import time

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from hallq_fixtures import TUESDAY_10AM

REPO = pathlib.Path(__file__).resolve().parents[2]
WEB = REPO / "web"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status, self.code, self.message = status, code, message


def api(d, op, token, **args):
    """POST /api/v1/OP on d's HTTP face: the result, or ApiError."""
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    c.request("POST", "/api/v1/" + op, body=json.dumps(args).encode(),
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    m = json.loads(r.read())
    c.close()
    if not m["ok"]:
        raise ApiError(r.status, m["error"]["code"], m["error"]["message"])
    return m["result"]


def open_page(browser, d, page, token, **more):
    frag = "token=" + token + "".join("&%s=%s" % kv for kv in more.items())
    browser.get("about:blank")
    browser.get_log("browser")  # what the page before left there
    browser.get("http://127.0.0.1:%d/%s#%s" % (d.http_port, page, frag))
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-conn")
         == "live", "the page's event stream", 15)


def wait(browser, cond, what, timeout=5.0):
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.02).until(cond)
    except TimeoutException:
        raise AssertionError("no %s within %.1f s; console: %s"
                             % (what, timeout, console(browser))) from None


def console(browser):
    return [e["message"] for e in browser.get_log("browser")]


def no_errors(browser):
    """No script error, no CSP violation in the console (a request that
    failed, a refused op's 4xx or hallqd down, is not one: the page shows
    those)."""
    bad = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
           and "Failed to load resource" not in e["message"]]
    assert not bad, bad


def attr(browser, css, name):
    els = browser.find_elements(By.CSS_SELECTOR, css)
    return els[0].get_attribute(name) if els else None


def calls(browser):
    """The board's latest calls: [(number, window, seq)], as shown."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-call]')).map(function (e) {"
        " return [e.dataset.number, e.dataset.window, e.dataset.seq]; });")


def board_shows_call(browser, number, window):
    def cond(b):
        tile = attr(b, '[data-window="%s"]:not([data-call])' % window, "data-number")
        cs = calls(b)
        return tile == number and cs and cs[0][0] == number and cs[0][1] == window
    return cond


# ---- /board ----

def test_board_shows_each_call_within_a_second_across_a_crash(browser, daemon):
    d = daemon
    for line in "AABB":
        api(d, "ticket.take", "kiosk-demo", line=line)
    api(d, "window.state", "window-W01", state="open")
    open_page(browser, d, "board", "display-demo")
    wait(browser, lambda b: attr(b, '[data-line="A"]', "data-waiting") == "2", "A's count")
    assert attr(browser, '[data-window="W01"]:not([data-call])', "data-state") == "open"
    assert attr(browser, '[data-window="W02"]:not([data-call])', "data-state") == "closed"
    assert attr(browser, '[data-window="W01"]:not([data-call])', "data-number") == ""
    browser.execute_script("window.hallqNoReload = 1;")
    shown = []

    def call_and_see():
        t0 = time.monotonic()
        t = api(d, "window.call", "window-W01")["ticket"]
        wait(browser, board_shows_call(browser, t["number"], "W01"), "call of " + t["number"], 1.0)
        assert time.monotonic() - t0 < 1.0
        shown.append(t["number"])
        # The call-out, highlighted; the count of its line moved.
        box = browser.find_element(By.ID, "callout")
        assert box.text == "请 %s 号到 W01 窗口办理" % t["number"]
        assert "fresh" in box.get_attribute("class")
        return t

    t1 = call_and_see()
    assert attr(browser, '[data-line="A"]', "data-waiting") == "1"
    api(d, "window.done", "window-W01")
    call_and_see()

    # A crash: the board says it is reconnecting, and comes back by itself
    # (same port) with nothing missed and nothing twice.
    port = d.http_port
    d.kill()
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-conn")
         == "reconnecting", "reconnecting", 5)
    assert "reconnecting" in browser.find_element(By.CSS_SELECTOR, "[data-conn-text]").text
    d.args += ["--http", "127.0.0.1:%d" % port]
    d.start()
    # A call at once, most likely before the board is back (it retries
    # every 0.25-2 s): it comes with the catch-up of Last-Event-ID, with
    # its seq (a board read again would show it without one).
    api(d, "window.done", "window-W01")
    t = api(d, "window.call", "window-W01")["ticket"]
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-conn")
         == "live", "the stream back after the restart", 15)
    wait(browser, board_shows_call(browser, t["number"], "W01"), "the call made while away")
    shown.append(t["number"])
    api(d, "window.done", "window-W01")
    t3 = call_and_see()
    api(d, "window.recall", "window-W01")  # a recall: shown again, at the top, once
    wait(browser, lambda b: calls(b)[0][2] != "" and int(calls(b)[0][2]) > 0
         and calls(b)[0][0] == t3["number"], "the recall")

    cs = calls(browser)
    numbers = [c[0] for c in cs]
    assert numbers == list(reversed(shown)), cs
    assert len(set(numbers)) == len(numbers)
    seqs = [int(c[2]) for c in cs if c[2]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(cs), cs
    # No reload happened: the page's own variable is still there.
    assert browser.execute_script("return window.hallqNoReload;") == 1
    assert t1["number"] in numbers
    no_errors(browser)


class Blackhole:
    """A TCP proxy in front of hallqd's HTTP face whose network can be cut
    the way a pulled cable cuts it: nothing arrives, nothing is refused,
    no connection ends (`cut`); `mend` closes what was cut (as the
    endpoints' timeouts would) and forwards again."""

    def __init__(self, port):
        import socket
        import threading
        self.port_up = port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.cut_now = False
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.socks.append(c)
                if self.cut_now:
                    continue  # held, never answered
            try:
                u = socket.create_connection(("127.0.0.1", self.port_up))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks.append(u)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if not self.cut_now:  # a cut network swallows what is sent
                try:
                    b.sendall(data)
                except OSError:
                    break
        import socket
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)  # (a close alone leaves the other
            except OSError:                    # pump's recv holding the socket)
                pass
            x.close()

    def cut(self):
        self.cut_now = True

    def mend(self):
        import socket
        with self.lock:
            socks, self.socks = self.socks, []
            for x in socks:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                x.close()
            self.cut_now = False

    def close(self):
        self.ls.close()
        self.mend()


def test_board_rides_out_a_silent_network_drop(browser, make_daemon):
    # The server's keep-alive comment every 0.3 s; the page gives up on a
    # stream silent for 1.5 s (its fragment's silent_ms).
    d = make_daemon(manual_clock=True, start_ms=TUESDAY_10AM,
                    env={"HALLQ_SSE_KEEPALIVE_MS": "300"})
    for line in "AA":
        api(d, "ticket.take", "kiosk-demo", line=line)
    api(d, "window.state", "window-W01", state="open")
    net = Blackhole(d.http_port)
    try:
        browser.get("about:blank")
        browser.get_log("browser")
        browser.get("http://127.0.0.1:%d/board#token=display-demo&silent_ms=1500" % net.port)
        body = browser.find_element(By.TAG_NAME, "body")
        wait(browser, lambda b: body.get_attribute("data-conn") == "live", "the stream", 15)
        browser.execute_script("window.hallqNoReload = 1;")
        net.cut()
        wait(browser, lambda b: body.get_attribute("data-conn") == "reconnecting",
             "reconnecting once the stream went silent", 10)
        t = api(d, "window.call", "window-W01")["ticket"]  # while the board is cut off
        net.mend()
        wait(browser, lambda b: body.get_attribute("data-conn") == "live", "the stream back", 15)
        wait(browser, board_shows_call(browser, t["number"], "W01"), "the call made meanwhile")
        assert calls(browser) == [[t["number"], "W01", calls(browser)[0][2]]]
        assert calls(browser)[0][2] != ""  # from the stream's catch-up, with its seq
        assert attr(browser, '[data-line="A"]', "data-waiting") == "1"
        assert browser.execute_script("return window.hallqNoReload;") == 1
        browser.get("about:blank")
    finally:
        net.close()


# ---- /window ----

def test_a_clerk_runs_a_whole_visit_from_the_console(browser, daemon):
    d = daemon
    t = api(d, "ticket.take", "kiosk-demo", line="A")
    open_page(browser, d, "window", "window-W01")
    body = browser.find_element(By.TAG_NAME, "body")
    wait(browser, lambda b: attr(b, '[data-line="A"]', "data-waiting") == "1", "A's count")
    # Keyboard shortcuts: O opens the window, C calls the next ticket.
    body.send_keys("o")
    wait(browser, lambda b: body.get_attribute("data-state") == "open", "the window open")
    assert api(d, "board", "display-demo")["windows"]["W01"]["state"] == "open"
    body.send_keys("c")
    wait(browser, lambda b: attr(b, "#current", "data-number") == t["number"], "the call")
    assert attr(browser, "#current", "data-ticket-state") == "called"
    assert "请 A001 号到 W01 窗口办理" in browser.find_element(By.ID, "msg").text

    # Intake of a residence permit (S03: M02 M04 M05) with M04 and M05 missing.
    from selenium.webdriver.support.select import Select
    Select(browser.find_element(By.ID, "service")).select_by_value("S03")
    boxes = {e.get_attribute("data-material"): e
             for e in browser.find_elements(By.CSS_SELECTOR, "#materials [data-material]")}
    assert sorted(boxes) == ["M02", "M04", "M05"]
    assert "身份证" in boxes["M02"].text
    boxes["M02"].find_element(By.TAG_NAME, "input").click()
    browser.find_element(By.ID, "aid").send_keys("110101199001011234")
    browser.find_element(By.ID, "aname").send_keys("张三")
    browser.find_element(By.ID, "submit").click()
    wait(browser, lambda b: attr(b, "#imsg", "data-code") == "checklist", "the checklist error")
    msg = browser.find_element(By.ID, "imsg").text
    assert "照片 M04" in msg and "租赁合同 M05" in msg, msg
    assert "missing" in boxes["M04"].get_attribute("class")
    assert "missing" in boxes["M05"].get_attribute("class")
    assert "missing" not in boxes["M02"].get_attribute("class")
    # Nothing was recorded: the ticket is still only called.
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=t["ticket_id"])["state"] == "called"

    boxes["M04"].find_element(By.TAG_NAME, "input").click()
    boxes["M05"].find_element(By.TAG_NAME, "input").click()
    browser.find_element(By.ID, "submit").click()
    wait(browser, lambda b: attr(b, "#imsg", "data-case"), "the case number")
    case_no = attr(browser, "#imsg", "data-case")
    assert attr(browser, "#imsg", "data-kind") == "ok"
    c = api(d, "case.get", "window-W01", case_no=case_no)
    assert c["service"] == "S03" and c["state"] == "review", c
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=t["ticket_id"])["state"] == "serving"
    assert attr(browser, "#current", "data-ticket-state") == "serving"

    # Done, by its button; the console and the hall agree.
    browser.find_element(By.CSS_SELECTOR, '[data-action="done"]').click()
    wait(browser, lambda b: attr(b, "#current", "data-number") == "", "the visit's end")
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=t["ticket_id"])["state"] == "done"
    assert api(d, "board", "display-demo")["windows"]["W01"]["current"] is None
    # A refused op shows its code: nobody is waiting, so D (done) is a conflict.
    body.send_keys("d")
    wait(browser, lambda b: attr(b, "#msg", "data-code") == "conflict", "the conflict shown")
    no_errors(browser)


def test_the_console_recalls_transfers_and_marks_no_shows(browser, daemon):
    d = daemon
    a1 = api(d, "ticket.take", "kiosk-demo", line="A")
    a2 = api(d, "ticket.take", "kiosk-demo", line="A")
    api(d, "window.state", "window-W02", state="open")
    open_page(browser, d, "window", "window-W02")  # W02 from the token's name
    assert browser.find_element(By.ID, "me").text == "W02"
    body = browser.find_element(By.TAG_NAME, "body")
    wait(browser, lambda b: body.get_attribute("data-state") == "open", "W02 open")
    browser.find_element(By.CSS_SELECTOR, '[data-action="call"]').click()
    wait(browser, lambda b: attr(b, "#current", "data-number") == a1["number"], "the call")
    seq = api(d, "board", "display-demo")["seq"]
    body.send_keys("r")  # recall: a new call event, the same ticket
    wait(browser, lambda b: "重呼" in b.find_element(By.ID, "msg").text, "the recall")
    assert api(d, "board", "display-demo")["seq"] > seq
    # Transfer to B: the ticket leaves the window and waits on B.
    from selenium.webdriver.support.select import Select
    Select(browser.find_element(By.ID, "tline")).select_by_value("B")
    browser.find_element(By.CSS_SELECTOR, '[data-action="transfer"]').click()
    wait(browser, lambda b: attr(b, "#current", "data-number") == "", "the transfer")
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=a1["ticket_id"])["line"] == "B"
    wait(browser, lambda b: attr(b, '[data-line="B"]', "data-waiting") == "1", "B's count")
    # The next call (earliest: A001 kept its time on B), then a no-show.
    body.send_keys("c")
    wait(browser, lambda b: attr(b, "#current", "data-number") == a1["number"], "the next")
    body.send_keys("n")
    wait(browser, lambda b: attr(b, "#current", "data-number") == "", "the no-show")
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=a1["ticket_id"])["state"] == "no_show"
    # Pause: the hall sees it; a call is refused while paused.
    body.send_keys("p")
    wait(browser, lambda b: body.get_attribute("data-state") == "paused", "paused")
    body.send_keys("c")
    wait(browser, lambda b: attr(b, "#msg", "data-code") == "conflict", "the refusal")
    assert api(d, "ticket.get", "kiosk-demo", ticket_id=a2["ticket_id"])["state"] == "waiting"
    no_errors(browser)


# ---- /kiosk ----

def test_a_kiosk_takes_tickets_and_the_board_counts_them(browser, daemon):
    d = daemon
    api(d, "ticket.take", "kiosk-demo", line="A")
    open_page(browser, d, "board", "display-demo")
    board_tab = browser.current_window_handle
    wait(browser, lambda b: attr(b, '[data-line="A"]', "data-waiting") == "1", "A's count")
    browser.switch_to.new_window("tab")
    try:
        open_page(browser, d, "kiosk", "kiosk-demo")

        def ticket(number):
            wait(browser, lambda b: attr(b, "#ticket", "data-number") == number,
                 "ticket " + number)
            return browser.find_element(By.ID, "ticket")

        browser.find_element(By.CSS_SELECTOR, '[data-take-line="A"]').click()
        t = ticket("A002")
        assert t.get_attribute("data-ahead") == "1" and "前面还有 1 人" in t.text
        browser.find_element(By.ID, "back").click()
        # Priority: ahead of the others of its line.
        browser.find_element(By.ID, "priority").click()
        assert attr(browser, "#priority", "aria-pressed") == "true"
        browser.find_element(By.CSS_SELECTOR, '[data-take-line="A"]').click()
        t = ticket("A003")
        assert t.get_attribute("data-ahead") == "0"
        browser.find_element(By.ID, "back").click()
        assert attr(browser, "#priority", "aria-pressed") == "false"
        # The kiosk's buttons show the counts the live events told it.
        wait(browser, lambda b: attr(b, '[data-take-line="A"]', "data-waiting") == "3",
             "A's count on the kiosk")
        # An appointment code: its line comes from appointment.get.
        code = api(d, "appointment.book", "kiosk-demo", line="B",
                   slot_ms=TUESDAY_10AM + 600000)["code"]
        browser.find_element(By.ID, "code").send_keys(code + Keys.ENTER)
        t = ticket("B001")
        assert t.get_attribute("data-line") == "B"
        assert api(d, "appointment.get", "kiosk-demo", code=code)["state"] == "used"
        browser.find_element(By.ID, "back").click()
        # A wrong code is said so, and no ticket is taken.
        browser.find_element(By.ID, "code").send_keys("P20261124-9999" + Keys.ENTER)
        wait(browser, lambda b: attr(b, "#msg", "data-code") == "not_found", "the refusal")
        # A result's pickup by case number (an instant case is ready at once).
        api(d, "window.state", "window-W01", state="open")
        called = api(d, "window.call", "window-W01")["ticket"]
        assert called["number"] == "B001"  # the appointment in its slot first
        r = api(d, "window.intake", "window-W01", service="S02", materials=["M02", "M04"],
                applicant={"kind": "person", "id": "110101199001011234"}, outcome="instant")
        browser.find_element(By.ID, "caseno").send_keys(r["case_no"] + Keys.ENTER)
        t = ticket("F001")
        assert t.get_attribute("data-line") == "F"
        no_errors(browser)
    finally:
        browser.close()
        browser.switch_to.window(board_tab)
    # A: A001-A003 waiting; B: none (B001 was called); F: the pickup.
    wait(browser, lambda b: [attr(b, '[data-line="%s"]' % x, "data-waiting") for x in "ABF"]
         == ["3", "0", "1"], "the board's counts")
    assert {k: v["waiting"] for k, v in api(d, "board", "display-demo")["lines"].items()} \
        == {"A": 3, "B": 0, "C": 0, "D": 0, "F": 1}
    no_errors(browser)


# ---- /dashboard ----

def leaves(x, path=""):
    """{path: value} of every number in a stats answer."""
    out = {}
    for k, v in x.items():
        p = path + k
        if isinstance(v, dict):
            out.update(leaves(v, p + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and p != "now_ms":
            out[p] = v
    return out


def shown_figures(browser):
    return {p: json.loads(v) for p, v in browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-stat]')).map(function (e) {"
        " return [e.dataset.stat, e.dataset.value]; });")}


def test_the_dashboard_shows_the_figures_of_stats_live(browser, daemon):
    d = daemon
    admin = "admin-demo"
    for line in "AABC":
        api(d, "ticket.take", "kiosk-demo", line=line)
    api(d, "clock.advance", admin, ms=300000)
    for w in ("W01", "W02"):
        api(d, "window.state", "window-" + w, state="open")
    t = api(d, "window.call", "window-W01")["ticket"]
    app = {"kind": "person", "id": "110101199001011234"}
    r = api(d, "window.intake", "window-W01", service="S02", materials=["M02", "M04"],
            applicant=app, outcome="instant")
    api(d, "clock.advance", admin, ms=240000)
    api(d, "window.done", "window-W01")
    api(d, "rate", "kiosk-demo", ticket_id=t["ticket_id"], score=5)
    api(d, "window.call", "window-W02")
    api(d, "window.intake", "window-W02", service="S03", materials=["M02", "M04", "M05"],
        applicant=app, outcome="accept")
    api(d, "window.call", "window-W01")
    api(d, "window.no_show", "window-W01")
    assert r["case_no"]

    def equal(b):
        want = leaves(api(d, "stats", admin))
        got = shown_figures(b)
        return got == want and want
    open_page(browser, d, "dashboard", admin)
    wait(browser, equal, "the figures of stats")
    s = api(d, "stats", admin)
    assert s["cases"]["instant"] == 1 and s["cases"]["accepted"] == 1
    assert s["windows"]["W01"]["served"] == 1 and s["ratings"]["count"] == 1
    assert s["lines"]["C"]["longest_wait_s"] > 0  # C001, waiting since 10:00
    # Rates as percentages, durations in words, the window's state.
    assert "50%" in browser.find_element(By.CSS_SELECTOR, '[data-stat="cases.instant_rate"]').text
    assert attr(browser, '[data-window-state="W02"]', "class") == "state-open"
    # Live: what happens next shows without a reload.
    browser.execute_script("window.hallqNoReload = 1;")
    api(d, "ticket.take", "kiosk-demo", line="D")
    api(d, "clock.advance", admin, ms=60000)
    api(d, "window.state", "window-W03", state="paused")
    wait(browser, lambda b: equal(b) and shown_figures(b)["lines.D.taken"] == 1,
         "the figures after a ticket")
    wait(browser, lambda b: attr(b, '[data-window-state="W03"]', "class") == "state-paused",
         "W03 paused")
    assert browser.execute_script("return window.hallqNoReload;") == 1
    no_errors(browser)


# ---- the files, the screens ----

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def test_every_file_of_web_is_served_as_it_is(daemon):
    files = sorted(p for p in WEB.iterdir() if p.is_file())
    assert {"board.html", "window.html", "kiosk.html", "dashboard.html", "hallq.js",
            "hallq.css"} <= {p.name for p in files}
    for p in files:
        path = "/" if p.name == "index.html" else \
            "/" + p.stem if p.suffix == ".html" else "/" + p.name
        c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, path
        assert r.getheader("content-type") == CONTENT_TYPES[p.suffix], path
        assert r.getheader("content-security-policy") == "default-src 'self'"
        assert body == p.read_bytes(), path  # the build embedded this very file
        if p.suffix == ".html":
            # CSP allows no inline script or style: none is written.
            text = body.decode()
            assert "<script>" not in text and "style=" not in text and "<style" not in text
            assert "onclick" not in text.lower()


def populate(d):
    """A morning in the demo hall: tickets on every line, windows at work."""
    for line in "AAAAABBBCCD":
        api(d, "ticket.take", "kiosk-demo", line=line)
    api(d, "clock.advance", "admin-demo", ms=420000)
    for w in ("W01", "W02", "W03", "W04", "W06"):
        api(d, "window.state", "window-" + w, state="open")
    app = {"kind": "person", "id": "110101199001011234"}
    api(d, "window.call", "window-W01")
    api(d, "window.intake", "window-W01", service="S02", materials=["M02", "M04"],
        applicant=app, outcome="instant")
    api(d, "window.call", "window-W02")
    api(d, "window.intake", "window-W02", service="S03", materials=["M02", "M04", "M05"],
        applicant=app, outcome="accept")
    api(d, "clock.advance", "admin-demo", ms=300000)
    t = api(d, "window.call", "window-W03")["ticket"]
    api(d, "window.done", "window-W01")
    api(d, "rate", "kiosk-demo", ticket_id="20261124-A001", score=5)
    api(d, "window.call", "window-W01")
    api(d, "window.call", "window-W04")
    api(d, "window.state", "window-W06", state="paused")
    return t


def fits(browser, page):
    """The page fills 1920x1080 and is no larger; the CJK font is there."""
    w, h = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];")
    assert w <= 1920 and h <= 1080, (page, w, h)
    assert browser.execute_script("return document.fonts.check('48px \"Noto Sans CJK SC\"');"), \
        "fonts-noto-cjk is missing: Chinese would not render"


def test_each_screen_at_1920x1080(browser, daemon, workdir):
    d = daemon
    out = pathlib.Path(os.environ.get("HALLQ_SCREENS") or workdir)
    out.mkdir(parents=True, exist_ok=True)
    populate(d)
    open_page(browser, d, "board", "display-demo")
    api(d, "window.done", "window-W02")
    number = api(d, "window.call", "window-W02")["ticket"]["number"]  # a call to see lit
    wait(browser, board_shows_call(browser, number, "W02"), "the call")
    fits(browser, "board")
    browser.save_screenshot(str(out / "board.png"))

    open_page(browser, d, "window", "window-W01")
    wait(browser, lambda b: attr(b, "#current", "data-number"), "W01's ticket")
    from selenium.webdriver.support.select import Select
    Select(browser.find_element(By.ID, "service")).select_by_value("S04")
    browser.find_element(By.CSS_SELECTOR, '[data-material="M01"] input').click()
    browser.find_element(By.CSS_SELECTOR, '[data-material="M02"] input').click()
    browser.find_element(By.ID, "aid").send_keys("91310000MA1FL0000X")
    browser.find_element(By.ID, "aname").send_keys("示例餐饮有限公司")
    Select(browser.find_element(By.ID, "akind")).select_by_value("org")
    browser.find_element(By.ID, "submit").click()
    wait(browser, lambda b: attr(b, "#imsg", "data-code") == "checklist", "the checklist error")
    fits(browser, "window")
    browser.save_screenshot(str(out / "window.png"))

    open_page(browser, d, "kiosk", "kiosk-demo")
    browser.find_element(By.CSS_SELECTOR, '[data-take-line="B"]').click()
    wait(browser, lambda b: attr(b, "#ticket", "data-number"), "the ticket")
    fits(browser, "kiosk")
    browser.save_screenshot(str(out / "kiosk.png"))

    open_page(browser, d, "dashboard", "admin-demo")
    wait(browser, lambda b: shown_figures(b) == leaves(api(d, "stats", "admin-demo")),
         "the figures")
    fits(browser, "dashboard")
    browser.save_screenshot(str(out / "dashboard.png"))
    for name in ("board", "window", "kiosk", "dashboard"):
        assert (out / (name + ".png")).stat().st_size > 10000
    no_errors(browser)
