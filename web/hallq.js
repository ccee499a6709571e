/* web/hallq.js: what every page of the hall shares (docs/PROTOCOL.md "The
 * HTTP face"): the token from the URL fragment, the API client (POST
 * /api/v1/OP), the event stream (GET /api/v1/events, Server-Sent Events read
 * with fetch: the token goes in the Authorization header, which EventSource
 * cannot send, and a token in a URL is refused by design), names from
 * `catalogue`, and small DOM helpers. No framework, no build step. */
"use strict";

var HQ = (function () {
  /* The fragment's parameters (#token=...&window=W01). The fragment never
   * reaches a server or a log; the token stays in this closure only (no
   * storage, no cookie, no URL query). */
  function fragment() {
    var out = {};
    var h = location.hash.replace(/^#/, "");
    h.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      var k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      out[k] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }
  var params = fragment();
  var token = params.token || "";

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype.toString = function () {
    return this.code + ": " + this.message;
  };

  /* POST /api/v1/OP with args: the result, or an ApiError (code
   * "network" when the server could not be reached or did not answer
   * within CALL_MS: a dropped network shows no error by itself). */
  var CALL_MS = 10000;
  function call(op, args) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () {
      ctrl.abort();
    }, CALL_MS);
    return fetch("/api/v1/" + op, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify(args || {}),
      cache: "no-store",
      signal: ctrl.signal,
    }).then(
      function (r) {
        clearTimeout(timer);
        return r.json().then(
          function (m) {
            if (m && m.ok) return m.result;
            var e = (m && m.error) || {};
            throw new ApiError(r.status, e.code || "internal", e.message || "HTTP " + r.status);
          },
          function () {
            throw new ApiError(r.status, "internal", "HTTP " + r.status + ": not JSON");
          }
        );
      },
      function (err) {
        clearTimeout(timer);
        throw new ApiError(0, "network", String(err));
      }
    );
  }

  function sleep(ms) {
    return new Promise(function (res) {
      setTimeout(res, ms);
    });
  }

  /* Follows GET /api/v1/events from `since` (a board's or a read's seq):
   * opts.topics, opts.since, opts.onEvent({event, seq, data}), and
   * opts.onState("live" | "reconnecting" | "refused", detail). It
   * reconnects by itself (Last-Event-ID: the last seq seen, so nothing is
   * missed and nothing comes twice, across a restart of hallqd), and ends a
   * stream that has been silent for longer than the server's keep-alive
   * comments allow (a dropped network shows no error). Returns {close()}. */
  /* hallqd sends a comment every 15 s; the fragment's silent_ms= sets
   * this (tests, with HALLQ_SSE_KEEPALIVE_MS shorter on the server). */
  var SILENT_MS = Number(params.silent_ms) > 0 ? Number(params.silent_ms) : 40000;
  function follow(opts) {
    var last = opts.since;
    var closed = false;
    var ctrl = null;
    var backoff = 250;
    function state(s, detail) {
      if (opts.onState) opts.onState(s, detail);
    }
    function dispatch(block) {
      var id = null,
        ev = "message",
        data = [];
      block.split(/\r\n|\r|\n/).forEach(function (line) {
        if (!line || line[0] === ":") return;
        var i = line.indexOf(":");
        var f = i < 0 ? line : line.slice(0, i);
        var v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (f === "id") id = v;
        else if (f === "event") ev = v;
        else if (f === "data") data.push(v);
      });
      if (id !== null && /^[0-9]+$/.test(id)) last = Number(id);
      if (!data.length) return;
      var d;
      try {
        d = JSON.parse(data.join("\n"));
      } catch (e) {
        return;
      }
      opts.onEvent({ event: ev, seq: id === null ? null : Number(id), data: d });
    }
    function once() {
      ctrl = new AbortController();
      var c = ctrl;
      var timer = null;
      function arm() {
        clearTimeout(timer);
        timer = setTimeout(function () {
          c.abort();
        }, SILENT_MS);
      }
      var h = { "Authorization": "Bearer " + token, "Accept": "text/event-stream" };
      if (last !== null && last !== undefined) h["Last-Event-ID"] = String(last);
      var url = "/api/v1/events?topics=" + encodeURIComponent(opts.topics.join(",")).replace(/%2C/g, ",");
      arm();
      return fetch(url, { headers: h, signal: c.signal, cache: "no-store" })
        .then(function (r) {
          if (!r.ok) {
            return r.json().then(
              function (m) {
                var e = (m && m.error) || {};
                throw new ApiError(r.status, e.code, e.message);
              },
              function () {
                throw new ApiError(r.status, "internal", "HTTP " + r.status);
              }
            );
          }
          backoff = 250;
          state("live");
          if (opts.onOpen) opts.onOpen();
          var reader = r.body.getReader();
          var dec = new TextDecoder();
          var buf = "";
          function pump() {
            return reader.read().then(function (x) {
              if (x.done) return;
              arm();
              buf += dec.decode(x.value, { stream: true });
              var m;
              while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
                var block = buf.slice(0, m.index);
                buf = buf.slice(m.index + m[0].length);
                dispatch(block);
              }
              return pump();
            });
          }
          return pump();
        })
        .then(
          function () {
            clearTimeout(timer);
          },
          function (e) {
            clearTimeout(timer);
            throw e;
          }
        );
    }
    function loop() {
      if (closed) return;
      once()
        .catch(function (e) {
          return e;
        })
        .then(function (e) {
          if (closed) return;
          if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
            state("refused", e); /* a wrong token does not get better by retrying */
            return;
          }
          state("reconnecting", e);
          /* 429: the server's bound on catch-ups read from the WAL (4 a
           * minute per connection's token): no point knocking sooner. */
          var wait = e instanceof ApiError && e.status === 429 ? 15000 : backoff;
          return sleep(wait).then(function () {
            backoff = Math.min(backoff * 2, 2000);
            loop();
          });
        });
    }
    loop();
    return {
      close: function () {
        closed = true;
        if (ctrl) ctrl.abort();
      },
      last: function () {
        return last;
      },
    };
  }

  /* `catalogue`, with lookups by id. */
  function catalogue() {
    return call("catalogue").then(function (c) {
      c.line = {};
      c.lines.forEach(function (l) {
        c.line[l.line] = l;
      });
      c.service = {};
      c.services.forEach(function (s) {
        c.service[s.service] = s;
      });
      c.window = {};
      c.windows.forEach(function (w) {
        c.window[w.window] = w;
      });
      c.department = {};
      (c.departments || []).forEach(function (d) {
        c.department[d.department] = d;
      });
      return c;
    });
  }

  /* Chinese first: the Chinese name, else the other. */
  function zh(x) {
    return (x && (x.name_zh || x.name)) || "";
  }

  /* el("div", {class: "x", "data-window": "W01"}, [children or text]) */
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    });
    (kids === undefined ? [] : [].concat(kids)).forEach(function (k) {
      e.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
    });
    return e;
  }

  function text(node, s) {
    if (node.textContent !== String(s)) node.textContent = String(s);
  }

  /* The call-out of a call, as the hall says it. */
  function callout(number, win) {
    return "请 " + number + " 号到 " + win + " 窗口办理";
  }

  /* Speaks a text where the browser can (speechSynthesis), in Chinese. */
  function speak(s) {
    try {
      if (!("speechSynthesis" in window)) return;
      /* After a reconnect many calls may come at once: the newest is said,
       * not a queue of old ones. */
      if (window.speechSynthesis.pending) window.speechSynthesis.cancel();
      var u = new SpeechSynthesisUtterance(s);
      u.lang = "zh-CN";
      u.rate = 0.9;
      window.speechSynthesis.speak(u);
    } catch (e) {
      /* no voice: the text on screen is the call-out */
    }
  }

  /* "reconnecting" while the server cannot be reached: body[data-conn]
   * and the page's [data-conn-text] element. */
  function showConn(s, detail) {
    document.body.setAttribute("data-conn", s);
    var t = document.querySelector("[data-conn-text]");
    if (!t) return;
    if (s === "live") text(t, "");
    else if (s === "refused") text(t, "令牌无效 token refused: " + (detail && detail.message ? detail.message : ""));
    else text(t, "正在重新连接… reconnecting");
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }
  /* A time of day in the hall's zone (Asia/Shanghai, the demo hall). */
  function clock(ms) {
    var d = new Date(ms + 8 * 3600 * 1000);
    return pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  }
  function duration(s) {
    s = Math.round(s || 0);
    if (s < 60) return s + " 秒";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " 分 " + pad2(s % 60) + " 秒";
    return Math.floor(m / 60) + " 时 " + pad2(m % 60) + " 分";
  }

  /* A duration as a table shows it: 9:30, 1:02:03. */
  function mmss(s) {
    s = Math.round(s || 0);
    var m = Math.floor(s / 60);
    if (m < 60) return m + ":" + pad2(s % 60);
    return Math.floor(m / 60) + ":" + pad2(m % 60) + ":" + pad2(s % 60);
  }

  /* Runs f at most once per `ms` after the last poke. */
  function debounce(f, ms) {
    var t = null;
    return function () {
      clearTimeout(t);
      t = setTimeout(f, ms);
    };
  }

  return {
    params: params,
    hasToken: function () {
      return token !== "";
    },
    call: call,
    follow: follow,
    catalogue: catalogue,
    ApiError: ApiError,
    zh: zh,
    el: el,
    text: text,
    callout: callout,
    speak: speak,
    showConn: showConn,
    clock: clock,
    duration: duration,
    mmss: mmss,
    debounce: debounce,
    sleep: sleep,
  };
})();
