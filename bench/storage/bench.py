"""Storage benchmark: flowrun's cos_put against what the original did, in
one run, on the same S3 server (s3s-fs on loopback) and the same disk.

Both sides are fed from memory (flowrun: a `generate` source; Python: a
loop), not from MQTT: the MQTT nodes live on another branch. Each side is a
separate process, timed from start to exit, its peak RSS from GNU time.
Rounds alternate flowrun and Python after one warm-up round of each (not
counted); medians are reported, as the machine's two cores are shared with
other work. Through s3fs every object costs several HTTP round trips, so
that target writes at most 200 objects a round.

Targets: the S3 API; a local directory; a bucket mounted with s3fs-fuse
(what the original's filesystem variant wrote into).

Usage: bench.py FLOWRUN [COUNT] [SIZE] [ROUNDS]
"""
import os
import shutil
import socket
import statistics
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
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
work = tempfile.mkdtemp(prefix="flowrun-bench-storage-")
key_id, secret = "BENCHKEY", "bench-secret-key"
env = dict(os.environ, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what, limit=15.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.02)
    sys.exit(f"{what} within {limit} s")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def timed(argv):
    """Runs argv; returns (seconds, peak RSS in MiB, stdout). The RSS comes
    from GNU time: wait4's ru_maxrss would count the forked copy of this
    Python before the exec."""
    rss_file = os.path.join(work, "rss")
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed with status {done.returncode}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return elapsed, rss_kib / 1024, done.stdout.strip()


def run_flowrun(name, backend, prefix="test", count=count):
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
    prefix: {prefix}
    backend:
{backend}""")
    return timed([flowrun, "run", "--no-watch", path])


def run_python(script, *args):
    return timed([sys.executable, os.path.join(HERE, script)] + [str(a) for a in args])


def report(label, results, stored, count=count):
    """results: [(flowrun (s, rss, out), python (s, rss, out))] per round."""
    f_rates = [count / f[0] for f, _ in results]
    p_rates = [count / p[0] for _, p in results]
    p_loops = [float(p[2]) for _, p in results]
    f_rate, p_rate, p_loop = (statistics.median(r) for r in (f_rates, p_rates, p_loops))
    f_rss = max(f[1] for f, _ in results)
    p_rss = max(p[1] for _, p in results)
    ratios = ", ".join(f"{f / p:.1f}" for f, p in zip(f_rates, p_rates))
    print(f"{label}: {count} objects of {size} bytes, median of {len(results)} rounds")
    print(f"  flowrun  {f_rate:9.0f} objects/s (whole process)   peak RSS {f_rss:6.1f} MiB")
    print(f"  python   {p_rate:9.0f} objects/s (whole process)   peak RSS {p_rss:6.1f} MiB"
          f"   ({p_loop:.0f}/s in its loop alone)")
    print(f"  ratio    {f_rate / p_rate:9.1f}x (whole process; rounds {ratios})"
          f"   {f_rate / p_loop:.1f}x against the Python loop alone")
    print(f"  stored   flowrun {stored[0]}/{count * len(results)}, python {stored[1]}/{count * len(results)}")
    sys.stdout.flush()


def mount(bucket, endpoint, passwd):
    point = os.path.join(work, f"mnt-{bucket}")
    os.mkdir(point)
    child = subprocess.Popen(
        ["s3fs", bucket, point, "-f", "-o",
         f"use_path_request_style,url={endpoint},passwd_file={passwd}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: os.path.ismount(point), f"s3fs did not mount {bucket}")
    return point, child


def main():
    port = free_port()
    root = os.path.join(work, "s3")
    os.mkdir(root)
    server = subprocess.Popen(
        ["s3s-fs", "--host", "127.0.0.1", "--port", str(port), "--access-key", key_id,
         "--secret-key", secret, root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    mounts = []
    try:
        wait_until(lambda: port_open(port), f"s3s-fs did not listen on {port}")
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                          config=Config(s3={"addressing_style": "path"}))

        def listed(bucket):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return sum(page.get("KeyCount", 0) for page in pages)

        results, stored = [], [0, 0]
        for r in range(rounds + 1):
            for side in ("flowrun", "python"):
                s3.create_bucket(Bucket=f"{side}-{r}")
            f = run_flowrun("s3", f"      s3:\n        endpoint: {endpoint}\n        bucket: flowrun-{r}\n")
            p = run_python("original_s3.py", endpoint, f"python-{r}", count, size)
            if r > 0:
                results.append((f, p))
                stored[0] += listed(f"flowrun-{r}")
                stored[1] += listed(f"python-{r}")
        report("s3 backend (s3s-fs on loopback)", results, stored)

        results, stored = [], [0, 0]
        dirs = [os.path.join(work, d) for d in ("fs-flowrun", "fs-python")]
        for r in range(rounds + 1):
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
                os.mkdir(d)
            f = run_flowrun("fs", f"      fs:\n        root: {dirs[0]}\n")
            p = run_python("original_fs.py", dirs[1], count, size)
            if r > 0:
                results.append((f, p))
                stored = [n + len(os.listdir(d)) for n, d in zip(stored, dirs)]
        report("fs backend (local directory)", results, stored)

        if not shutil.which("s3fs") or not os.path.exists("/dev/fuse"):
            print("fs backend (s3fs mount): skipped, no s3fs or no /dev/fuse")
            return
        passwd = os.path.join(work, "passwd")
        with open(passwd, "w") as f:
            f.write(f"{key_id}:{secret}\n")
        os.chmod(passwd, 0o600)
        for side in ("mount-flowrun", "mount-python"):
            s3.create_bucket(Bucket=side)
            mounts.append(mount(side, endpoint, passwd))
        small = min(count, 200)
        for atomic in ("true", "false"):
            results = []
            for r in range(rounds):
                tag = f"{atomic}-{r}-test"
                f = run_flowrun("mount", f"      fs:\n        root: {mounts[0][0]}\n        atomic: {atomic}\n",
                                prefix=tag, count=small)
                p = run_python("original_fs.py", mounts[1][0], small, size, tag)
                results.append((f, p))
            stored = [sum(1 for name in os.listdir(point) if name.startswith(atomic)) for point, _ in mounts]
            report(f"fs backend (s3fs-fuse mount of an s3s-fs bucket, atomic: {atomic})", results, stored, small)
    finally:
        for point, child in mounts:
            subprocess.run(["fusermount3", "-u", point], stderr=subprocess.DEVNULL)
            child.wait(timeout=10)
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
