/* web/dashboard.js: the manager's live figures (/dashboard#token=...: an
 * admin token, since `stats` is admin's; the demo hall's HTTP listener
 * takes admin on loopback for it). `stats` (the hall's day), `board` for the
 * windows' states and current tickets, then the events: any event reads
 * `stats` again (a moment later, once for a burst), and so does a timer
 * (waits grow with no event). Each figure from `stats` carries its path and
 * raw value: data-stat="lines.A.waiting" data-value="3". */
"use strict";

(function () {
  var cat = null;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var STATE_ZH = { open: "开放", paused: "暂停", closed: "关闭" };
  var winState = {};
  var winCurrent = {};

  function pct(x) {
    return Math.round((x || 0) * 1000) / 10 + "%";
  }
  function fig(path, v, fmt) {
    return HQ.el("span", { "data-stat": path, "data-value": JSON.stringify(v) }, fmt ? fmt(v) : String(v));
  }
  function table(id, head, rows) {
    var t = $(id);
    t.textContent = "";
    t.appendChild(
      HQ.el(
        "tr",
        {},
        head.map(function (h) {
          return HQ.el("th", {}, h);
        })
      )
    );
    rows.forEach(function (r) {
      t.appendChild(
        HQ.el(
          "tr",
          {},
          r.map(function (c) {
            return HQ.el("td", {}, c);
          })
        )
      );
    });
  }
  function bigFig(path, v, label, fmt) {
    return HQ.el("div", { "class": "fig" }, [HQ.el("div", { "class": "v" }, fig(path, v, fmt)), HQ.el("div", { "class": "k" }, label)]);
  }

  function render(s) {
    HQ.text($("day"), s.day);
    HQ.text($("clock"), HQ.clock(s.now_ms));
    var waitingAll = 0;
    Object.keys(s.lines).forEach(function (l) {
      waitingAll += s.lines[l].waiting;
    });
    var big = $("big");
    big.textContent = "";
    big.appendChild(HQ.el("div", { "class": "fig" }, [HQ.el("div", { "class": "v", "data-derived": "waiting" }, String(waitingAll)), HQ.el("div", { "class": "k" }, "等候 waiting")]));
    big.appendChild(bigFig("cases.instant_rate", s.cases.instant_rate, "即办率 instant rate", pct));
    big.appendChild(bigFig("ratings.good_share", s.ratings.good_share, "好评率 good ratings", pct));
    big.appendChild(bigFig("ratings.count", s.ratings.count, "评价 ratings"));
    big.appendChild(bigFig("cases.accepted", s.cases.accepted, "受理 accepted"));

    table(
      "lines",
      ["队列 line", "等候", "最长等候", "平均等候", "P90", "取号", "办结", "未到", "过期"],
      cat.lines
        .filter(function (l) {
          return s.lines[l.line];
        })
        .map(function (l) {
          var x = s.lines[l.line];
          var p = "lines." + l.line + ".";
          return [
            l.line + " " + HQ.zh(l),
            fig(p + "waiting", x.waiting),
            fig(p + "longest_wait_s", x.longest_wait_s, HQ.mmss),
            fig(p + "wait_avg_s", x.wait_avg_s, HQ.mmss),
            fig(p + "wait_p90_s", x.wait_p90_s, HQ.mmss),
            fig(p + "taken", x.taken),
            fig(p + "served", x.served),
            fig(p + "no_show", x.no_show),
            fig(p + "expired", x.expired),
          ];
        })
    );
    table(
      "windows",
      ["窗口 window", "状态", "当前", "办结", "平均办理 (分:秒)"],
      cat.windows
        .filter(function (w) {
          return s.windows[w.window];
        })
        .map(function (w) {
          var x = s.windows[w.window];
          var p = "windows." + w.window + ".";
          var st = winState[w.window] || "closed";
          return [
            w.window,
            HQ.el("span", { "class": "state-" + st, "data-window-state": w.window }, STATE_ZH[st] || st),
            winCurrent[w.window] || "—",
            fig(p + "served", x.served),
            fig(p + "service_avg_s", x.service_avg_s, HQ.mmss),
          ];
        })
    );
    table(
      "departments",
      ["部门 department", "审查中", "即将到期", "已超期"],
      Object.keys(s.departments).map(function (d) {
        var x = s.departments[d];
        var p = "departments." + d + ".";
        return [
          HQ.zh(cat.department[d]) || d,
          fig(p + "in_review", x.in_review),
          fig(p + "due_soon", x.due_soon),
          HQ.el("span", { "class": x.overdue ? "bad" : "" }, fig(p + "overdue", x.overdue)),
        ];
      })
    );
    var c = s.cases;
    table("cases", ["", ""], [
      ["受理 accepted", fig("cases.accepted", c.accepted)],
      ["即办 instant", fig("cases.instant", c.instant)],
      ["一次性告知 notified", fig("cases.notified", c.notified)],
      ["不予受理 refused", fig("cases.refused", c.refused)],
      ["已领取 delivered", fig("cases.delivered", c.delivered)],
      ["即办率 instant rate", fig("cases.instant_rate", c.instant_rate, pct)],
    ]);
    document.body.setAttribute("data-now", String(s.now_ms));
  }

  var last = null;
  var reading = false,
    again = false;
  function refresh() {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    Promise.all([HQ.call("stats"), HQ.call("board")])
      .then(function (r) {
        var b = r[1];
        Object.keys(b.windows).forEach(function (w) {
          winState[w] = b.windows[w].state;
          winCurrent[w] = b.windows[w].current ? b.windows[w].current.number : "";
        });
        last = r[0];
        render(last);
      })
      .catch(function () {})
      .then(function () {
        reading = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }
  var soon = HQ.debounce(refresh, 300);

  function start() {
    if (!HQ.hasToken()) {
      HQ.showConn("refused", { message: "open /dashboard#token=YOUR-ADMIN-TOKEN" });
      return;
    }
    HQ.catalogue()
      .then(function (c) {
        cat = c;
        return Promise.all([HQ.call("stats"), HQ.call("board")]);
      })
      .then(function (r) {
        var b = r[1];
        Object.keys(b.windows).forEach(function (w) {
          winState[w] = b.windows[w].state;
          winCurrent[w] = b.windows[w].current ? b.windows[w].current.number : "";
        });
        render(r[0]);
        HQ.follow({
          topics: ["call", "line", "window", "case", "deadline"],
          since: b.seq,
          onEvent: soon,
          onState: function (s, d) {
            HQ.showConn(s, d);
            if (s === "live") soon();
          },
        });
        setInterval(refresh, 15000);
      })
      .catch(function (e) {
        HQ.showConn(e.code === "network" ? "reconnecting" : "refused", e);
        if (e.code === "network") setTimeout(start, 1000);
      });
  }
  start();
})();
