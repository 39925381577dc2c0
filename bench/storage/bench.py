"""Storage benchmark, fed by MQTT as issue 5 asks: COUNT messages of SIZE
bytes published at QoS 1 on a mosquitto topic, stored into s3s-fs (or a
directory) by flowrun (`mqtt_sub` → `cos_put`) and by a Python script doing
what the original did (paho-mqtt, one `put_object` / file write per message
in `on_message`), one after the other in the same run.

Each side is timed from the first publish to its last object stored: for
flowrun the moment its `flowrun_node_acked_total{node="store"}` counter
(polled every 5 ms at --metrics) reaches COUNT — a message is acknowledged
only once its object is stored —, for Python the clock it prints after its
last put. Both clocks are CLOCK_MONOTONIC. Every object is then counted
through the S3 API (LIST) or the directory. Peak RSS is each consumer's
VmHWM.

The broker is Debian's mosquitto with a no-drop config (unlimited queue,
`max_inflight_messages` 1000), as docker/mosquitto/mosquitto.conf. Each
consumer's persistent session is registered before it starts, so nothing
published before it connected is lost and both sides start equal.

Usage: bench.py FLOWRUN [COUNT] [SIZE] [ROUNDS] [CONCURRENCY]
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import paho.mqtt.client as mqtt
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
flowrun = os.path.abspath(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 16
work = tempfile.mkdtemp(prefix="flowrun-bench-storage-")
key_id, secret = "BENCHKEY", "bench-secret-key"
env = dict(os.environ, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what, limit=15.0, step=0.02):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(step)
    sys.exit(f"{what} within {limit} s")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_mosquitto():
    port = free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"
                "max_queued_messages 0\nmax_inflight_messages 1000\n"
                "message_size_limit 16777216\npersistence false\n")
    child = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open(port), f"mosquitto did not listen on {port}")
    return port, child


def register_session(port, client_id, topic):
    """Creates `client_id`'s persistent session subscribed to `topic` at QoS 1."""
    client = mqtt.Client(client_id=client_id, clean_session=False)
    client.connect("127.0.0.1", port)
    subscribed = []
    client.on_subscribe = lambda *a: subscribed.append(True)
    client.subscribe(topic, qos=1)
    wait_until(lambda: client.loop(0.05) == 0 and subscribed, "no SUBACK")
    client.disconnect()
    client.loop(0.05)


feed_rates = []


def publish(port, topic):
    """Runs the publisher; returns the monotonic time of its first publish,
    and notes its own rate (first publish to last PUBACK): the ceiling of
    what any consumer can be measured at."""
    out = subprocess.run([PYTHON, os.path.join(HERE, "publish.py"), str(port), topic,
                          str(count), str(size)], check=True, stdout=subprocess.PIPE, text=True)
    first, last = (float(t) for t in out.stdout.split())
    feed_rates.append(count / (last - first))
    return first


def acked(metrics_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return -1
    for line in text.splitlines():
        if line.startswith('flowrun_node_acked_total{node="store"}'):
            return int(float(line.split()[-1]))
    return 0


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmHWM")))


def run_flowrun(name, mqtt_port, backend):
    """Returns (seconds from first publish to COUNT stored, peak RSS MiB)."""
    topic, client_id = f"bench/{name}", f"flowrun-{name}"
    register_session(mqtt_port, client_id, topic)
    spec = os.path.join(work, f"{name}.yaml")
    with open(spec, "w") as f:
        f.write(f"""version: 1
name: {name}
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "mqtt://127.0.0.1:{mqtt_port}", client_id: {client_id}}}
    topics: [{{filter: "{topic}", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    concurrency: {concurrency}
    backend:
{backend}""")
    metrics_port = free_port()
    child = subprocess.Popen([flowrun, "run", "--no-watch", "--metrics", f"127.0.0.1:{metrics_port}", spec],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: acked(metrics_port) == 0, "flowrun did not serve its metrics")
        first = publish(mqtt_port, topic)
        wait_until(lambda: acked(metrics_port) >= count, "flowrun did not store every message",
                   limit=300, step=0.005)
        last = time.monotonic()
        rss = vm_hwm_kib(child.pid) / 1024
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
    return last - first, rss


def run_python(name, mqtt_port, script, *args):
    topic, client_id = f"bench/{name}", f"python-{name}"
    register_session(mqtt_port, client_id, topic)
    child = subprocess.Popen([PYTHON, os.path.join(HERE, script), str(mqtt_port), topic, client_id]
                             + [str(a) for a in args] + [str(count)],
                             env=env, stdout=subprocess.PIPE, text=True)
    if child.stdout.readline().strip() != "connected":
        sys.exit(f"{script} did not connect")
    first = publish(mqtt_port, topic)
    out, _ = child.communicate(timeout=600)
    if child.returncode != 0:
        sys.exit(f"{script} failed with status {child.returncode}")
    last, rss = out.split()
    return float(last) - first, int(rss) / 1024


def report(label, results, stored):
    """results: [((flowrun s, rss), (python s, rss))] per round."""
    f_rates = [count / f[0] for f, _ in results]
    p_rates = [count / p[0] for _, p in results]
    f_rate, p_rate = statistics.median(f_rates), statistics.median(p_rates)
    f_rss = max(f[1] for f, _ in results)
    p_rss = max(p[1] for _, p in results)
    ratios = ", ".join(f"{f / p:.1f}" for f, p in zip(f_rates, p_rates))
    total = count * len(results)
    print(f"{label}: {count} messages of {size} bytes at QoS 1, median of {len(results)} rounds")
    print(f"  flowrun  {f_rate:7.0f} objects/s   peak RSS {f_rss:6.1f} MiB   (cos_put concurrency {concurrency})")
    print(f"  python   {p_rate:7.0f} objects/s   peak RSS {p_rss:6.1f} MiB")
    print(f"  ratio    {f_rate / p_rate:7.1f}x   (rounds {ratios})")
    print(f"  feed     {statistics.median(feed_rates):7.0f} messages/s published and acknowledged"
          " by the broker (median over both sides)")
    feed_rates.clear()
    print(f"  stored   flowrun {stored[0]}/{total} (lost {total - stored[0]}),"
          f" python {stored[1]}/{total} (lost {total - stored[1]})")
    sys.stdout.flush()


def main():
    mqtt_port, broker = start_mosquitto()
    s3_port = free_port()
    root = os.path.join(work, "s3")
    os.mkdir(root)
    server = subprocess.Popen(
        ["s3s-fs", "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", key_id,
         "--secret-key", secret, root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(s3_port), f"s3s-fs did not listen on {s3_port}")
        endpoint = f"http://127.0.0.1:{s3_port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                          config=Config(s3={"addressing_style": "path"}))

        def listed(bucket):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return sum(page.get("KeyCount", 0) for page in pages)

        # Round 0 warms both sides up and is not counted.
        results, stored = [], [0, 0]
        for r in range(rounds + 1):
            for side in ("flowrun", "python"):
                s3.create_bucket(Bucket=f"{side}-{r}")
            f = run_flowrun(f"s3-{r}", mqtt_port,
                            f"      s3:\n        endpoint: {endpoint}\n        bucket: flowrun-{r}\n")
            p = run_python(f"s3-{r}", mqtt_port, "original_s3.py", endpoint, f"python-{r}")
            if r > 0:
                results.append((f, p))
                stored[0] += listed(f"flowrun-{r}")
                stored[1] += listed(f"python-{r}")
        report("s3 backend (s3s-fs on loopback)", results, stored)

        results, stored = [], [0, 0]
        for r in range(rounds + 1):
            dirs = [os.path.join(work, f"fs-{side}-{r}") for side in ("flowrun", "python")]
            for d in dirs:
                os.mkdir(d)
            f = run_flowrun(f"fs-{r}", mqtt_port, f"      fs:\n        root: {dirs[0]}\n")
            p = run_python(f"fs-{r}", mqtt_port, "original_fs.py", dirs[1])
            if r > 0:
                results.append((f, p))
                stored = [n + len(os.listdir(d)) for n, d in zip(stored, dirs)]
        report("fs backend (local directory)", results, stored)
    finally:
        for child in (server, broker):
            child.kill()
            child.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
