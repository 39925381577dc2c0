#!/usr/bin/env python3
"""Measures one edge -> cloud MQTT link. Numbered QoS 1 messages of SIZE
bytes are published to the edge broker (mosquitto_pub, C) and counted on
the cloud broker (mosquitto_sub, C, persistent session). Prints one JSON
line: delivered, lost, duplicated, seconds, messages per second, peak RSS.

Two modes:
- live: the link already runs (started by the caller); COUNT messages are
  published as one burst and timed from the first publish to the last
  delivery. The publisher (~12k msg/s on one connection) bounds this rate.
- drain: measures the link alone. `--link CMD` is started once so that it
  subscribes (its persistent session), then stopped; COUNT messages are
  published and queued by the edge broker for the stopped link; the link is
  started again. With `--lazy` (mosquitto's own bridge, `start_type lazy`)
  there is no command: the edge broker starts the bridge itself once COUNT
  messages are queued. The rate is timed from the first message to reach
  the cloud broker to the last, the same clock for every link; the time the
  link took to start, connect and subscribe before its first delivery is
  reported apart (`startup_s`: process start for a command, end of the
  publish for mosquitto's bridge, negative when it started during it)."""
import argparse, json, signal, subprocess, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--edge", type=int, required=True)
p.add_argument("--cloud", type=int, required=True)
p.add_argument("--count", type=int, default=20000)
p.add_argument("--size", type=int, default=9 * 1024)
p.add_argument("--topic", default="image")
p.add_argument("--mode", choices=["live", "drain"], default="live")
p.add_argument("--link", help="drain: shell command that runs the link (exec'd)")
p.add_argument("--lazy", action="store_true", help="drain: the edge broker starts the link itself")
p.add_argument("--quiet", type=float, default=10.0, help="seconds without news that end the count")
a = p.parse_args()
if a.mode == "drain" and not (a.link or a.lazy):
    sys.exit("drain needs --link CMD or --lazy")

sub = subprocess.Popen(
    ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(a.cloud), "-t", a.topic, "-q", "1",
     "-i", f"bench-counter-{a.cloud}", "-c", "-F", "%p"],
    stdout=subprocess.PIPE, bufsize=1 << 20)
seen = {}
probe_seen = threading.Event()
first = [None]
last = [time.monotonic()]

def read():
    for line in sub.stdout:
        key = line[:8]
        if key.startswith(b"probe"):
            probe_seen.set()
            continue
        seen[key] = seen.get(key, 0) + 1
        last[0] = time.monotonic()
        if first[0] is None:
            first[0] = last[0]

threading.Thread(target=read, daemon=True).start()

def pub(lines):
    proc = subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(a.edge), "-t", a.topic, "-q", "1", "-l"],
        stdin=subprocess.PIPE)
    for l in lines:
        proc.stdin.write(l)
    proc.stdin.close()
    return proc

def cpu_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)

def start_link():
    return subprocess.Popen("exec " + a.link, shell=True)

def peak_rss_mb(proc):
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None

def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

def fail(why, link=None):
    if link:
        stop(link)
    sub.terminate()
    sys.exit(why)

link = start_link() if a.link else None
if not a.lazy:
    # The link carries a probe: it is connected and subscribed (its session exists).
    deadline = time.monotonic() + 30
    while not probe_seen.is_set():
        if time.monotonic() > deadline:
            fail("the link never carried a probe", link)
        pub([b"probe\n"]).wait()
        probe_seen.wait(0.5)
    time.sleep(1)
if a.mode == "drain" and link:
    stop(link)
    link = None

pad = b"x" * max(0, a.size - 9 - 1)
lines = (b"%08d:" % i + pad + b"\n" for i in range(a.count))
start = time.monotonic()
proc = pub(lines)
proc.wait()
published = time.monotonic()
busy_at_start = cpu_ticks()
if a.mode == "drain":
    if a.lazy:
        start = published
    else:
        if seen:
            fail(f"{len(seen)} messages crossed while the link was stopped")
        first[0] = None
        start = time.monotonic()
        link = start_link()
last[0] = time.monotonic()
while len(seen) < a.count and time.monotonic() - last[0] < a.quiet:
    time.sleep(0.02)
end = last[0]
busy, total = (now - then for now, then in zip(cpu_ticks(), busy_at_start))
rss = peak_rss_mb(link) if link else None
if link:
    stop(link)
sub.terminate()
sub.wait()
delivered = len(seen)
dups = sum(n - 1 for n in seen.values())
if a.mode == "drain" and first[0] is not None:
    seconds = max(end - first[0], 1e-9)
    rate = (delivered - 1) / seconds
else:
    seconds = max(end - start, 1e-9)
    rate = delivered / seconds
print(json.dumps({
    "count": a.count, "delivered": delivered, "lost": a.count - delivered, "duplicated": dups,
    "seconds": round(seconds, 2), "publish_seconds": round(published - start, 2),
    "msgs_per_s": round(rate),
    "startup_s": round(first[0] - start, 2) if a.mode == "drain" and first[0] else None,
    "pub_exit": proc.returncode, "rss_mb": rss,
    # Share of both cores busy (any process) from the drain's start to its end.
    "cpu_busy": round(busy / total, 2) if a.mode == "drain" and total else None,
}))
