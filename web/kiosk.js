/* web/kiosk.js: the ticket machine (/kiosk#token=kiosk-demo): a button per
 * line (from `catalogue`, the pickup line aside), a priority button, an
 * appointment code or a case number for a pickup; the ticket shown large
 * with the people ahead (`ticket.take`'s `ahead`). A kiosk may not read
 * `board`: a line's waiting count shows once a live `line` event has told
 * it (the stream starts now, it does not replay the day). */
"use strict";

(function () {
  var cat = null;
  var priority = false;
  var waiting = {};
  var backTimer = null;
  var BACK_MS = 20000; /* the ticket screen goes back to the start by itself */
  var $ = function (id) {
    return document.getElementById(id);
  };

  function say(kind, s, code) {
    var box = $("msg");
    box.setAttribute("data-kind", kind);
    box.setAttribute("data-code", code || "");
    HQ.text(box, s);
  }

  function build() {
    var box = $("lines");
    cat.lines.forEach(function (l) {
      if (l.pickup) return;
      var b = HQ.el("button", { "class": "btn primary linebtn", "data-take-line": l.line, "data-line": l.line }, [
        l.line + " " + HQ.zh(l),
        HQ.el("span", { "class": "en" }, (l.name || "") + " · "),
        HQ.el("span", { "class": "en count" }, ""),
      ]);
      b.addEventListener("click", function () {
        take({ line: l.line, priority: priority });
      });
      box.appendChild(b);
    });
  }

  function render() {
    document.querySelectorAll("[data-take-line]").forEach(function (b) {
      var n = waiting[b.getAttribute("data-line")];
      if (n === undefined) return;
      b.setAttribute("data-waiting", String(n));
      HQ.text(b.querySelector(".count"), "等候 " + n + " 人 waiting");
    });
    var p = $("priority");
    p.setAttribute("aria-pressed", String(priority));
    p.setAttribute("data-priority", String(priority));
    p.classList.toggle("on", priority);
  }

  function take(args) {
    if (!args.priority) delete args.priority;
    say("", "");
    return HQ.call("ticket.take", args).then(show, function (e) {
      say("error", "✗ " + e.code + ": " + e.message, e.code);
    });
  }

  function show(t) {
    var l = cat.line[t.line];
    var box = $("ticket");
    box.setAttribute("data-number", t.number);
    box.setAttribute("data-ahead", String(t.ahead));
    box.setAttribute("data-line", t.line);
    HQ.text($("tline"), t.line + " " + HQ.zh(l) + (priority ? " · 优先" : ""));
    HQ.text($("tnum"), t.number);
    HQ.text($("tahead"), "前面还有 " + t.ahead + " 人");
    HQ.text($("twait"), t.ahead ? "预计等候 about " + HQ.duration(t.est_wait_s) : "请留意叫号 you are next");
    HQ.text($("tid"), t.ticket_id);
    $("choose").classList.add("hidden");
    $("done").classList.remove("hidden");
    clearTimeout(backTimer);
    backTimer = setTimeout(back, BACK_MS);
  }

  function back() {
    clearTimeout(backTimer);
    priority = false;
    $("code").value = "";
    $("caseno").value = "";
    $("ticket").setAttribute("data-number", "");
    $("done").classList.add("hidden");
    $("choose").classList.remove("hidden");
    render();
  }

  function wire() {
    $("priority").addEventListener("click", function () {
      priority = !priority;
      render();
    });
    $("back").addEventListener("click", back);
    $("appt").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var code = $("code").value.trim();
      if (!code) return;
      HQ.call("appointment.get", { code: code }).then(
        function (a) {
          return take({ line: a.line, appointment: code, priority: priority });
        },
        function (e) {
          say("error", "✗ 预约号无效 " + e.code + ": " + e.message, e.code);
        }
      );
    });
    $("pickup").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var no = $("caseno").value.trim();
      var pick = cat.lines.filter(function (l) {
        return l.pickup;
      })[0];
      if (!no || !pick) return;
      take({ line: pick.line, case_no: no });
    });
  }

  function start() {
    if (!HQ.hasToken()) {
      HQ.showConn("refused", { message: "open /kiosk#token=YOUR-KIOSK-TOKEN" });
      return;
    }
    HQ.catalogue().then(
      function (c) {
        cat = c;
        build();
        wire();
        render();
        HQ.follow({
          topics: ["line"],
          onEvent: function (ev) {
            waiting[ev.data.line] = ev.data.waiting;
            if (ev.data.at_ms) HQ.text($("clock"), HQ.clock(ev.data.at_ms));
            render();
          },
          onState: HQ.showConn,
        });
      },
      function (e) {
        HQ.showConn(e.code === "network" ? "reconnecting" : "refused", e);
        if (e.code === "network") setTimeout(start, 1000);
      }
    );
  }
  start();
})();
