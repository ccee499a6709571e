#!/usr/bin/env python3
"""bench/sse.py: what Server-Sent Events subscribers cost hallqd.

Starts hallqd (the demo hall, a fresh data dir), opens S event streams
(GET /api/v1/events?topics=call,line, as a browser's EventSource would), then
takes K tickets over TCP one after another (each makes one `line` event) and
waits until every stream has every event. It reads hallqd's CPU time
(/proc/PID/stat) and resident memory around that, for S = 0 and S = the
given count, and prints the added CPU per event per subscriber and the
memory per subscriber.

  bench/sse.py [--build DIR] [--subs 200] [--events 1000]
"""
import argparse
import http.client
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from hallq_client import Client  # noqa: E402


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read())
    return int(m.group(1))


def run(build, subs, events, tcp_subs=False):
    tmp = tempfile.mkdtemp(prefix="hq-sse-")
    cfg = pathlib.Path(tmp) / "hall.yaml"
    shutil.copy(ROOT / "examples" / "demo-hall.yaml", cfg)
    cfg.chmod(0o600)
    p = subprocess.Popen([str(build / "daemon" / "hallqd"), "--config", str(cfg), "--data",
                          tmp + "/d", "--tcp", "127.0.0.1:0", "--unix", tmp + "/s",
                          "--http", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            if line.startswith("hallqd ready"):
                m = re.search(r"tcp=127\.0\.0\.1:(\d+) .* http=127\.0\.0\.1:(\d+)", line)
                tcp, web = int(m.group(1)), int(m.group(2))
                break
        threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
        got = [0] * subs
        done = threading.Event()

        def reader(i, r):
            n = 0
            while n < events:
                line = r.readline()
                if not line:
                    return
                if line.startswith(b"id: "):
                    n += 1
                    got[i] = n
            if all(g >= events for g in got):
                done.set()

        def tcp_reader(i, c):
            n = 0
            while n < events:
                m = c.read()
                if "event" in m:
                    n += 1
                    got[i] = n
            if all(g >= events for g in got):
                done.set()

        conns = []
        for i in range(subs if tcp_subs else 0):
            c = Client.tcp(tcp, timeout=120)
            c.hello("display-demo")
            c.ok("subscribe", topics=["call", "line"])
            conns.append(c)
            threading.Thread(target=tcp_reader, args=(i, c), daemon=True).start()
        for i in range(0 if tcp_subs else subs):
            c = http.client.HTTPConnection("127.0.0.1", web, timeout=120)
            c.request("GET", "/api/v1/events?topics=call,line",
                      headers={"Authorization": "Bearer display-demo"})
            r = c.getresponse()
            assert r.status == 200
            conns.append(c)
            threading.Thread(target=reader, args=(i, r), daemon=True).start()
        time.sleep(0.5)
        rss0, cpu0, t0 = rss_kib(p.pid), cpu_s(p.pid), time.monotonic()
        k = Client.tcp(tcp)
        k.hello("kiosk-demo")
        for i in range(events):
            k.ok("ticket.take", line="ABCD"[i % 4])
        if subs:
            assert done.wait(120), "the streams did not get every event"
        cpu1, t1 = cpu_s(p.pid), time.monotonic()
        return cpu1 - cpu0, t1 - t0, rss0
    finally:
        p.terminate()
        p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--subs", type=int, default=200)
    ap.add_argument("--events", type=int, default=1000)
    a = ap.parse_args()
    build = pathlib.Path(a.build)
    base_cpu, base_t, base_rss = run(build, 0, a.events)
    cpu, t, rss = run(build, a.subs, a.events)
    tcpu, tt, trss = run(build, a.subs, a.events, tcp_subs=True)
    print("events %d; hallqd CPU: %.3f s with no stream, %.3f s with %d streams"
          % (a.events, base_cpu, cpu, a.subs))
    print("for comparison, %d TCP subscribers: %.3f s, %.1f us per event per subscriber"
          % (a.subs, tcpu, (tcpu - base_cpu) / a.events / a.subs * 1e6))
    print("added CPU per event per subscriber: %.1f us"
          % ((cpu - base_cpu) / a.events / a.subs * 1e6))
    print("added CPU per event (all %d subscribers): %.1f us"
          % (a.subs, (cpu - base_cpu) / a.events * 1e6))
    print("resident memory: %d KiB with no stream, %d KiB with %d (%.1f KiB each)"
          % (base_rss, rss, a.subs, (rss - base_rss) / a.subs))
    print("wall: %.2f s and %.2f s" % (base_t, t))


if __name__ == "__main__":
    main()
