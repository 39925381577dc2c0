"""Storage benchmark: flowrun's cos_put against what the original did, in
one run, on the same S3 server (s3s-fs on loopback) and the same disk.

Both sides are fed from memory (flowrun: a `generate` source; Python: a
loop), not from MQTT: the MQTT nodes live on another branch. Each side is a
separate process, timed from start to exit, with its peak RSS from wait4.

Usage: bench.py FLOWRUN [COUNT] [SIZE]
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
flowrun = os.path.abspath(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
work = tempfile.mkdtemp(prefix="flowrun-bench-storage-")
key_id, secret = "BENCHKEY", "bench-secret-key"
env = dict(os.environ, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, limit=15.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"s3s-fs did not listen on {port} within {limit} s")


def timed(argv):
    """Runs argv; returns (seconds, peak RSS in MiB, stdout)."""
    started = time.monotonic()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - started
    if status != 0:
        sys.exit(f"{argv[0]} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024, out.strip()


def flowrun_spec(name, backend):
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"""version: 1
name: {name}
nodes:
  source:
    type: generate
    count: {count}
    size: {size}
    require_ack: true
  store:
    type: cos_put
    inputs: [source]
    backend:
{backend}""")
    return path


def report(label, flowrun_result, python_result, stored):
    f_time, f_rss, _ = flowrun_result
    p_time, p_rss, p_loop = python_result
    f_rate, p_rate, p_loop = count / f_time, count / p_time, float(p_loop)
    print(f"{label}: {count} objects of {size} bytes")
    print(f"  flowrun  {f_rate:9.0f} objects/s (whole process)   peak RSS {f_rss:6.1f} MiB")
    print(f"  python   {p_rate:9.0f} objects/s (whole process)   peak RSS {p_rss:6.1f} MiB   ({p_loop:.0f}/s in its loop alone)")
    print(f"  ratio    {f_rate / p_rate:9.1f}x (whole process)   {f_rate / p_loop:.1f}x against the Python loop alone")
    print(f"  stored   flowrun {stored[0]}/{count}, python {stored[1]}/{count}")


def main():
    port = free_port()
    root = os.path.join(work, "s3")
    os.mkdir(root)
    server = subprocess.Popen(
        ["s3s-fs", "--host", "127.0.0.1", "--port", str(port), "--access-key", key_id, "--secret-key", secret, root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                          config=Config(s3={"addressing_style": "path"}))
        for bucket in ("flowrun", "python"):
            s3.create_bucket(Bucket=bucket)
        spec = flowrun_spec("s3", f"      s3:\n        endpoint: {endpoint}\n        bucket: flowrun\n")
        f = timed([flowrun, "run", "--no-watch", spec])
        p = timed([sys.executable, os.path.join(HERE, "original_s3.py"), endpoint, "python", str(count), str(size)])

        def listed(bucket):
            return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))

        report("s3 backend (s3s-fs on loopback)", f, p, (listed("flowrun"), listed("python")))
    finally:
        server.kill()
        server.wait()

    dirs = [os.path.join(work, d) for d in ("fs-flowrun", "fs-python")]
    for d in dirs:
        os.mkdir(d)
    spec = flowrun_spec("fs", f"      fs:\n        root: {dirs[0]}\n")
    f = timed([flowrun, "run", "--no-watch", spec])
    p = timed([sys.executable, os.path.join(HERE, "original_fs.py"), dirs[1], str(count), str(size)])
    report("fs backend (local directory)", f, p, tuple(len(os.listdir(d)) for d in dirs))
    shutil.rmtree(work)


main()
