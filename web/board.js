/* web/board.js: the hall's display (/board#token=display-demo). It reads
 * `board` (one read consistent with one seq), then follows the events from
 * that seq: a call lights its window's tile and the call-out, a line event
 * moves a waiting count, a window event changes a tile's state. Events say
 * nothing of a ticket done or sent away, so the board is read again a moment
 * after events and every 10 s (only a read at least as new as the last
 * event applied is taken). The markup carries the data attributes of
 * docs/PROTOCOL.md "The hall's screens". */
"use strict";

(function () {
  var SHOWN_CALLS = 10; /* of board's at most 20 */
  var FRESH_MS = 10000; /* a new call stays highlighted this long */
  var cat = null;
  var win = {}; /* W01 -> {state, number} */
  var waiting = {}; /* A -> n */
  var calls = []; /* newest first: {number, window, seq, at_ms} */
  var seqOf = {}; /* number -> seq of its latest call event */
  var fresh = {}; /* number -> until (performance.now()) */
  var lastEvent = 0; /* seq of the last event applied */
  var readSeq = 0; /* seq of the last board read applied */
  var nowMs = 0;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var STATE_ZH = { open: "办理中", paused: "暂停", closed: "关闭" };

  function build() {
    var tiles = $("tiles");
    cat.windows.forEach(function (w) {
      var names = w.lines
        .map(function (l) {
          return HQ.zh(cat.line[l]);
        })
        .join(" · ");
      tiles.appendChild(
        HQ.el("div", { "class": "tile", "data-window": w.window, "data-number": "", "data-state": "closed" }, [
          HQ.el("div", { "class": "tile-head" }, [
            HQ.el("span", { "class": "win" }, w.window + " 窗口"),
            HQ.el("span", { "class": "state" }, ""),
          ]),
          HQ.el("div", { "class": "number" }, ""),
          HQ.el("div", { "class": "lines" }, names),
        ])
      );
    });
    var foot = $("lines");
    cat.lines.forEach(function (l) {
      foot.appendChild(
        HQ.el("div", { "class": "line", "data-line": l.line, "data-waiting": "0" }, [
          HQ.el("span", { "class": "name" }, l.line + " " + HQ.zh(l)),
          HQ.el("span", { "class": "count" }, "0"),
          HQ.el("span", { "class": "unit" }, "人等候"),
        ])
      );
    });
  }

  function render() {
    var t = performance.now();
    cat.windows.forEach(function (w) {
      var s = win[w.window] || { state: "closed", number: "" };
      var tile = document.querySelector('.tile[data-window="' + w.window + '"]');
      tile.setAttribute("data-number", s.number);
      tile.setAttribute("data-state", s.state);
      HQ.text(tile.querySelector(".number"), s.number || "—");
      HQ.text(tile.querySelector(".state"), STATE_ZH[s.state] || s.state);
      tile.classList.toggle("fresh", !!(s.number && fresh[s.number] > t && lastWindowOf(s.number) === w.window));
    });
    cat.lines.forEach(function (l) {
      var e = document.querySelector('[data-line="' + l.line + '"]');
      var n = waiting[l.line] || 0;
      e.setAttribute("data-waiting", String(n));
      HQ.text(e.querySelector(".count"), n);
    });
    var ol = $("calls");
    var want = calls.slice(0, SHOWN_CALLS);
    var have = ol.children;
    for (var i = 0; i < want.length; i++) {
      var c = want[i];
      var li = have[i];
      if (!li) {
        li = HQ.el("li", { "data-call": "" }, [HQ.el("span", { "class": "n" }), HQ.el("span", { "class": "w" })]);
        ol.appendChild(li);
      }
      li.setAttribute("data-number", c.number);
      li.setAttribute("data-window", c.window);
      li.setAttribute("data-seq", c.seq === null ? "" : String(c.seq));
      HQ.text(li.firstChild, c.number);
      HQ.text(li.lastChild, "→ " + c.window + " 窗口");
      li.classList.toggle("fresh", fresh[c.number] > t);
    }
    while (ol.children.length > want.length) ol.removeChild(ol.lastChild);
    if (nowMs) HQ.text($("clock"), HQ.clock(nowMs));
  }

  function lastWindowOf(number) {
    for (var i = 0; i < calls.length; i++) if (calls[i].number === number) return calls[i].window;
    return null;
  }

  function applyRead(b) {
    if (b.seq < lastEvent || b.seq < readSeq) return false; /* older than what is shown */
    readSeq = b.seq;
    nowMs = b.now_ms;
    Object.keys(b.windows).forEach(function (w) {
      var x = b.windows[w];
      win[w] = { state: x.state, number: x.current ? x.current.number : "" };
    });
    Object.keys(b.lines).forEach(function (l) {
      waiting[l] = b.lines[l].waiting;
    });
    calls = b.recent.map(function (r) {
      var known = seqOf[r.number];
      return { number: r.number, window: r.window, at_ms: r.at_ms, seq: known && known.at_ms === r.at_ms ? known.seq : null };
    });
    return true;
  }

  function announce(c) {
    var text = HQ.callout(c.number, c.window);
    var box = $("callout");
    box.setAttribute("data-callout", text);
    HQ.text(box, text);
    box.classList.add("fresh");
    HQ.speak(text);
  }

  function onEvent(ev) {
    var d = ev.data;
    if (ev.seq !== null) lastEvent = Math.max(lastEvent, ev.seq);
    if (d.at_ms) nowMs = Math.max(nowMs, d.at_ms);
    if (ev.event === "call") {
      seqOf[d.number] = { seq: ev.seq, at_ms: d.at_ms };
      if (ev.seq !== null && ev.seq <= readSeq) return; /* the read already has it */
      win[d.window] = { state: (win[d.window] && win[d.window].state) || "open", number: d.number };
      /* A ticket is listed once, at its latest call (a recall moves it up). */
      calls = calls.filter(function (c) {
        return c.number !== d.number;
      });
      var c = { number: d.number, window: d.window, seq: ev.seq, at_ms: d.at_ms };
      calls.unshift(c);
      calls.length = Math.min(calls.length, 20);
      fresh[d.number] = performance.now() + FRESH_MS;
      announce(c);
    } else if (ev.seq !== null && ev.seq <= readSeq) {
      return;
    } else if (ev.event === "line") {
      waiting[d.line] = d.waiting;
    } else if (ev.event === "window") {
      var w = win[d.window] || { number: "" };
      win[d.window] = { state: d.state, number: d.state === "closed" ? "" : w.number };
    }
    render();
    reread();
  }

  var reading = false;
  function readBoard() {
    if (reading) return Promise.resolve();
    reading = true;
    return HQ.call("board")
      .then(function (b) {
        if (applyRead(b)) render();
      })
      .catch(function () {
        /* the stream's state says it */
      })
      .then(function () {
        reading = false;
      });
  }
  var reread = HQ.debounce(readBoard, 1500);

  function start() {
    if (!HQ.hasToken()) {
      HQ.showConn("refused", { message: "open /board#token=YOUR-DISPLAY-TOKEN" });
      return;
    }
    HQ.showConn("connecting");
    HQ.catalogue()
      .then(function (c) {
        cat = c;
        build();
        return HQ.call("board");
      })
      .then(function (b) {
        applyRead(b);
        render();
        var first = true;
        HQ.follow({
          topics: ["call", "line", "window"],
          since: b.seq,
          onEvent: onEvent,
          onState: function (s, detail) {
            HQ.showConn(s, detail);
            if (s === "live" && !first) readBoard(); /* what no event says (done, transfer) */
            if (s === "live") first = false;
          },
        });
        setInterval(function () {
          if (document.body.getAttribute("data-conn") === "live") readBoard();
          render(); /* highlights fade */
          var t = performance.now();
          Object.keys(fresh).forEach(function (n) {
            if (fresh[n] <= t) delete fresh[n];
          });
          if (!Object.keys(fresh).length) $("callout").classList.remove("fresh");
        }, 10000);
        setInterval(render, 1000);
      })
      .catch(function (e) {
        /* not reachable at start: try again, the page stays as it is */
        HQ.showConn(e && e.status === 401 ? "refused" : "reconnecting", e);
        if (!(e && e.status === 401)) {
          document.getElementById("tiles").textContent = "";
          document.getElementById("lines").textContent = "";
          setTimeout(start, 1000);
        }
      });
  }
  start();
})();
