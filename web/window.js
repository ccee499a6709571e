/* web/window.js: a clerk's console for one window
 * (/window#token=window-W01; the window is the fragment's `window=`, else
 * the catalogue window the token's name ends with). The buttons and keys
 * call the window ops; the intake form is built from `catalogue` and shows
 * the checklist error the server answers, with the missing materials
 * marked. The window's state, its current ticket and its lines' counts come
 * from `board`, then from the events. */
"use strict";

(function () {
  var cat = null;
  var me = null;
  var state = "closed";
  var cur = null; /* {number, line, state} */
  var waiting = {};
  var $ = function (id) {
    return document.getElementById(id);
  };
  var STATE_ZH = { open: "开放", paused: "暂停", closed: "关闭" };
  var TSTATE_ZH = { called: "已叫号", serving: "受理中" };

  function say(box, kind, s, code) {
    box.setAttribute("data-kind", kind);
    box.setAttribute("data-code", code || "");
    HQ.text(box, s);
  }
  function fail(box, e) {
    say(box, "error", "✗ " + (e.code || "error") + ": " + e.message, e.code);
  }

  function render() {
    HQ.text($("me"), me);
    var ws = $("wstate");
    ws.className = "state-" + state;
    HQ.text(ws, STATE_ZH[state] || state);
    document.body.setAttribute("data-state", state);
    document.querySelectorAll("[data-action=open],[data-action=pause],[data-action=close]").forEach(function (b) {
      var a = b.getAttribute("data-action");
      b.classList.toggle("on", (a === "open" && state === "open") || (a === "pause" && state === "paused") || (a === "close" && state === "closed"));
    });
    var c = $("current");
    c.setAttribute("data-number", cur ? cur.number : "");
    c.setAttribute("data-ticket-state", cur ? cur.state || "" : "");
    HQ.text(c, cur ? cur.number : "—");
    HQ.text($("current-sub"), cur ? [HQ.zh(cat.line[cur.line]), TSTATE_ZH[cur.state] || cur.state].filter(Boolean).join(" · ") : "无 none");
    cat.window[me].lines.forEach(function (l) {
      var e = document.querySelector('[data-line="' + l + '"]');
      e.setAttribute("data-waiting", String(waiting[l] || 0));
      HQ.text(e.lastChild, String(waiting[l] || 0));
    });
  }

  function build() {
    var wl = $("waiting");
    cat.window[me].lines.forEach(function (l) {
      wl.appendChild(
        HQ.el("div", { "class": "fig-inline", "data-line": l, "data-waiting": "0" }, [
          HQ.el("span", {}, l + " " + HQ.zh(cat.line[l]) + "："),
          HQ.el("b", {}, "0"),
        ])
      );
    });
    var tl = $("tline");
    cat.lines.forEach(function (l) {
      if (!l.pickup) tl.appendChild(HQ.el("option", { value: l.line }, l.line + " " + HQ.zh(l)));
    });
    var sv = $("service");
    cat.services.forEach(function (s) {
      sv.appendChild(HQ.el("option", { value: s.service }, s.service + " " + HQ.zh(s) + (s.kind === "instant" ? "（即办）" : "")));
    });
    sv.addEventListener("change", materials);
    materials();
  }

  /* The checklist of the chosen service, as checkboxes. */
  function materials() {
    var s = cat.service[$("service").value];
    var box = $("materials");
    box.textContent = "";
    s.materials.forEach(function (m) {
      box.appendChild(
        HQ.el("label", { "class": "check", "data-material": m.code }, [
          HQ.el("input", { type: "checkbox", value: m.code }),
          HQ.zh(m) + " " + m.code,
        ])
      );
    });
    $("outcome").value = s.kind === "instant" ? "instant" : "accept";
  }

  function readBoard() {
    return HQ.call("board").then(function (b) {
      var w = b.windows[me];
      state = w.state;
      if (!w.current) cur = null;
      else if (!cur || cur.number !== w.current.number) cur = { number: w.current.number, line: w.current.line, state: "" };
      Object.keys(b.lines).forEach(function (l) {
        waiting[l] = b.lines[l].waiting;
      });
      render();
      return b;
    });
  }

  var ACTIONS = {
    open: function () {
      return HQ.call("window.state", { state: "open" }).then(function () {
        state = "open";
        return "已开放 open";
      });
    },
    pause: function () {
      return HQ.call("window.state", { state: "paused" }).then(function () {
        state = "paused";
        return "已暂停 paused";
      });
    },
    close: function () {
      return HQ.call("window.state", { state: "closed" }).then(function () {
        state = "closed";
        return "已关闭 closed";
      });
    },
    call: function () {
      return HQ.call("window.call").then(function (r) {
        if (!r.ticket) return "无人等候 nobody waiting";
        cur = { number: r.ticket.number, line: r.ticket.line, state: r.ticket.state };
        clearIntake();
        return HQ.callout(r.ticket.number, me);
      });
    },
    recall: function () {
      return HQ.call("window.recall").then(function (r) {
        return "重呼 recalled " + r.ticket.number;
      });
    },
    no_show: function () {
      return HQ.call("window.no_show").then(function () {
        var n = cur ? cur.number : "";
        cur = null;
        return "未到 no-show " + n;
      });
    },
    done: function () {
      return HQ.call("window.done").then(function () {
        var n = cur ? cur.number : "";
        cur = null;
        return "办结 done " + n;
      });
    },
    transfer: function () {
      var line = $("tline").value;
      return HQ.call("window.transfer", { line: line }).then(function () {
        var n = cur ? cur.number : "";
        cur = null;
        return "已转至 transferred " + n + " → " + line;
      });
    },
  };

  function act(name) {
    var box = $("msg");
    return ACTIONS[name]().then(
      function (s) {
        say(box, "ok", "✓ " + s);
        render();
      },
      function (e) {
        fail(box, e);
      }
    );
  }

  function clearIntake() {
    $("aid").value = "";
    $("aname").value = "";
    $("reason").value = "";
    say($("imsg"), "", "");
    materials();
  }

  function ymd(ms) {
    var d = new Date(ms + 8 * 3600 * 1000);
    return d.toISOString().slice(0, 10) + " " + HQ.clock(ms);
  }

  function intake(ev) {
    ev.preventDefault();
    var s = cat.service[$("service").value];
    var have = [];
    document.querySelectorAll("#materials input:checked").forEach(function (c) {
      have.push(c.value);
    });
    document.querySelectorAll("#materials .check").forEach(function (c) {
      c.classList.remove("missing");
    });
    var args = {
      service: s.service,
      applicant: { kind: $("akind").value, id: $("aid").value.trim() },
      materials: have,
      outcome: $("outcome").value,
    };
    if ($("aname").value.trim()) args.applicant.name = $("aname").value.trim();
    if ($("reason").value.trim()) args.reason = $("reason").value.trim();
    var box = $("imsg");
    HQ.call("window.intake", args).then(
      function (r) {
        if (cur) cur.state = "serving";
        render();
        if (r.missing) {
          markMissing(s, r.missing);
          say(box, "ok", "✓ 一次性告知 notified: 缺 " + names(s, r.missing));
        } else {
          say(box, "ok", "✓ 案件号 case " + r.case_no + (r.deadline_ms ? "，期限 due " + ymd(r.deadline_ms) : "（即办 instant）"));
          box.setAttribute("data-case", r.case_no || "");
        }
      },
      function (e) {
        if (e.code === "checklist") {
          var codes = (e.message.match(/\b[A-Z]+[0-9]+\b/g) || []).filter(function (c) {
            return s.materials.some(function (m) {
              return m.code === c;
            });
          });
          markMissing(s, codes);
          say(box, "error", "✗ checklist: " + (codes.length ? "缺少材料 missing " + names(s, codes) + " — " : "") + e.message, e.code);
        } else {
          fail(box, e);
        }
      }
    );
  }
  function names(s, codes) {
    return codes
      .map(function (c) {
        var m = s.materials.filter(function (x) {
          return x.code === c;
        })[0];
        return (m ? HQ.zh(m) + " " : "") + c;
      })
      .join("、");
  }
  function markMissing(s, codes) {
    codes.forEach(function (c) {
      var e = document.querySelector('#materials [data-material="' + c + '"]');
      if (e) e.classList.add("missing");
    });
  }

  var KEYS = { c: "call", r: "recall", n: "no_show", d: "done", t: "transfer", o: "open", p: "pause" };
  function onKey(e) {
    var t = e.target && e.target.tagName;
    var typing = t === "INPUT" || t === "SELECT" || t === "TEXTAREA";
    if (e.ctrlKey || e.metaKey || (typing && !e.altKey)) return;
    var a = KEYS[(e.key || "").toLowerCase()];
    if (!a) return;
    e.preventDefault();
    act(a);
  }

  function onEvent(ev) {
    var d = ev.data;
    if (ev.event === "line") waiting[d.line] = d.waiting;
    else if (ev.event === "window" && d.window === me) state = d.state;
    else if (ev.event === "call" && d.window === me && (!cur || cur.number !== d.number)) cur = { number: d.number, line: d.line, state: "called" };
    if (d.at_ms) HQ.text($("clock"), HQ.clock(d.at_ms));
    render();
  }

  function start() {
    if (!HQ.hasToken()) {
      HQ.showConn("refused", { message: "open /window#token=YOUR-WINDOW-TOKEN" });
      return;
    }
    HQ.catalogue()
      .then(function (c) {
        cat = c;
        me = HQ.params.window;
        if (!me) {
          /* the demo's tokens end with their window: window-W01 */
          Object.keys(cat.window).forEach(function (w) {
            if (HQ.params.token.slice(-w.length - 1) === "-" + w) me = w;
          });
        }
        if (!me || !cat.window[me]) throw new HQ.ApiError(0, "bad_request", "which window? open /window#token=...&window=W01");
        build();
        return readBoard();
      })
      .then(function (b) {
        HQ.text($("clock"), HQ.clock(b.now_ms));
        document.querySelectorAll("[data-action]").forEach(function (btn) {
          btn.addEventListener("click", function () {
            act(btn.getAttribute("data-action"));
          });
        });
        $("intake").addEventListener("submit", intake);
        document.addEventListener("keydown", onKey);
        var first = true;
        HQ.follow({
          topics: ["call", "line", "window"],
          since: b.seq,
          onEvent: onEvent,
          onState: function (s, detail) {
            HQ.showConn(s, detail);
            if (s === "live" && !first) readBoard().catch(function () {});
            if (s === "live") first = false;
          },
        });
      })
      .catch(function (e) {
        if (e && e.code === "network") {
          HQ.showConn("reconnecting", e);
          $("waiting").textContent = "";
          $("tline").textContent = "";
          $("service").textContent = "";
          setTimeout(start, 1000);
        } else {
          HQ.showConn("refused", e);
        }
      });
  }
  start();
})();
