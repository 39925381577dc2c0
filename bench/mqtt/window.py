#!/usr/bin/env python3
"""Acknowledge-after-store: how the broker's in-flight window caps mqtt_sub.

For each window W (mosquitto `max_inflight_messages`), one mosquitto and the
spec mqtt_sub -> delay (a store that takes MS milliseconds, many requests at
once) -> print. Once the subscriber runs, COUNT QoS 1 messages are
published; the rate is taken from the first stored message to the last.
Expected by the rule of thumb: about min(W / MS, what the CPU allows).
(A backlog queued while the subscriber is away is not used: mosquitto
2.0.11 sends all of it at once on reconnect, whatever the window.)

    cargo build --release
    python3 bench/mqtt/window.py [--count 3000] [--ms 20] [--windows 20 100 1000]
"""
import argparse, os, signal, socket, subprocess, tempfile, threading, time

p = argparse.ArgumentParser()
p.add_argument("--count", type=int, default=3000)
p.add_argument("--ms", type=int, default=20)
p.add_argument("--size", type=int, default=9 * 1024)
p.add_argument("--windows", type=int, nargs="+", default=[20, 100, 1000])
p.add_argument("--flowrun", default="target/release/flowrun")
a = p.parse_args()
work = tempfile.mkdtemp()

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

def wait_port(port):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on port {port}")

def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

class Subscriber:
    """flowrun running the spec; counts the lines `print` writes (one per stored message)."""
    def __init__(self, spec):
        self.times = []
        self.probes = 0
        self.proc = subprocess.Popen([a.flowrun, "run", spec, "--no-watch"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=dict(os.environ, FLOWRUN_LOG="warn"))
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            if line.rstrip().endswith(b'"size":5}'):  # a probe
                self.probes += 1
            else:
                self.times.append(time.monotonic())

def publish(port, lines):
    proc = subprocess.Popen(["mosquitto_pub", "-p", str(port), "-t", "image", "-q", "1", "-l"],
                            stdin=subprocess.PIPE)
    proc.communicate(b"".join(lines))

def measure(window):
    port = free_port()
    conf = os.path.join(work, f"w{window}.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                f"max_inflight_messages {window}\nmessage_size_limit 16777216\n")
        if os.getuid() == 0:
            f.write("user root\n")
    broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spec = os.path.join(work, f"w{window}.yaml")
    with open(spec, "w") as f:
        f.write(f"""version: 1
name: window
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "mqtt://127.0.0.1:{port}", client_id: window-bench}}
    topics: [{{filter: image, qos: 1}}]
  store:
    type: delay
    inputs: [sub]
    ms: {a.ms}
    concurrency: 100000
  out:
    type: print
    inputs: [store]
""")
    try:
        wait_port(port)
        sub = Subscriber(spec)
        deadline = time.monotonic() + 30
        while not sub.probes:  # subscribed
            if time.monotonic() > deadline:
                raise SystemExit("the subscriber never received a probe")
            publish(port, [b"probe\n"])
            time.sleep(0.3)
        pad = b"x" * (a.size - 1)
        publish(port, [pad + b"\n"] * a.count)
        deadline = time.monotonic() + 120
        while len(sub.times) < a.count and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(sub.proc)
        got = len(sub.times)
        span = sub.times[-1] - sub.times[0] if got > 1 else float("nan")
        rate = (got - 1) / span if got > 1 else 0
        print(f"{window:>8} {a.ms:>6} {got:>7} {rate:>9.0f} {window * 1000 / a.ms:>10.0f}", flush=True)
    finally:
        stop(broker)

print(f"{a.count} QoS 1 messages of {a.size} bytes, mqtt_sub -> delay {a.ms} ms -> print")
print(f"{'window':>8} {'ms':>6} {'stored':>7} {'msg/s':>9} {'W/latency':>10}")
for w in a.windows:
    measure(w)
