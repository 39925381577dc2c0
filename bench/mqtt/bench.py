#!/usr/bin/env python3
"""Measures one edge -> cloud MQTT link: publishes COUNT numbered QoS 1
messages of SIZE bytes to the edge broker (mosquitto_pub, C) and counts them
on the cloud broker (mosquitto_sub, C). Prints one JSON line: delivered,
lost, duplicated, seconds, messages per second.

The link under test must already run; probes are sent until one crosses."""
import argparse, json, subprocess, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--edge", type=int, required=True)
p.add_argument("--cloud", type=int, required=True)
p.add_argument("--count", type=int, default=20000)
p.add_argument("--size", type=int, default=9 * 1024)
p.add_argument("--topic", default="image")
p.add_argument("--quiet", type=float, default=10.0, help="seconds without news that end the count")
a = p.parse_args()

sub = subprocess.Popen(
    ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(a.cloud), "-t", a.topic, "-q", "1",
     "-i", f"bench-counter-{a.cloud}", "-c", "-F", "%p"],
    stdout=subprocess.PIPE, bufsize=1 << 20)
seen = {}
probe_seen = threading.Event()
last = [time.monotonic()]

def read():
    for line in sub.stdout:
        key = line[:8]
        if key.startswith(b"probe"):
            probe_seen.set()
            continue
        seen[key] = seen.get(key, 0) + 1
        last[0] = time.monotonic()

threading.Thread(target=read, daemon=True).start()

def pub(lines):
    proc = subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(a.edge), "-t", a.topic, "-q", "1", "-l"],
        stdin=subprocess.PIPE)
    for l in lines:
        proc.stdin.write(l)
    proc.stdin.close()
    return proc

deadline = time.monotonic() + 30
while not probe_seen.is_set():
    if time.monotonic() > deadline:
        sub.terminate()
        sys.exit("the link never carried a probe")
    pub([b"probe\n"]).wait()
    probe_seen.wait(0.5)
time.sleep(1)

pad = b"x" * max(0, a.size - 9 - 1)
lines = (b"%08d:" % i + pad + b"\n" for i in range(a.count))
start = time.monotonic()
proc = pub(lines)
proc.wait()
published = time.monotonic()
while len(seen) < a.count and time.monotonic() - last[0] < a.quiet:
    time.sleep(0.05)
end = last[0]
sub.terminate()
sub.wait()
delivered = len(seen)
dups = sum(n - 1 for n in seen.values())
seconds = max(end - start, 1e-9)
print(json.dumps({
    "count": a.count, "delivered": delivered, "lost": a.count - delivered, "duplicated": dups,
    "seconds": round(seconds, 2), "publish_seconds": round(published - start, 2),
    "msgs_per_s": round(delivered / seconds), "pub_exit": proc.returncode,
}))
