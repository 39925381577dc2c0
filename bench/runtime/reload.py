#!/usr/bin/env python3
"""Hot reload latency: from a spec file's save to the new graph live.

Runs the real `flowrun run SPEC` on a 7-node spec (generate -> 5 passthroughs
-> print) and saves the spec SAVES times the way editors do: write a
temporary file next to it, then rename it over the spec. Each save changes
one node's config (the sink's `payload_bytes`), so every reload stops,
rebuilds and restarts a node and rewires its edge. The latency of a save is
the time from the rename until flowrun writes its `reloaded <file> in N ms`
line on stderr, read line by line as it comes. The engine's own "N ms"
(parse, validate, diff, drain the changed node, start the new one; it does not
include the watcher's debounce) is reported beside it.

    python3 bench/runtime/reload.py [--flowrun target/release/flowrun] [--saves 20]

Prints one line per save, a summary, and a `RESULT` line for scripts.
Standard library only.
"""

import argparse
import math
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RELOADED = re.compile(r"reloaded (\S+) in ([\d.]+) ms: (.*)$")
GOAL_MS = 100.0


def spec_text(payload_bytes):
    """A 7-node spec; only the sink's config depends on `payload_bytes`."""
    lines = [
        "version: 1",
        "name: reload-bench",
        "nodes:",
        "  ticks:",
        "    type: generate",
        "    text: reload bench",
        "    interval_ms: 10",
    ]
    previous = "ticks"
    for n in range(1, 6):
        lines += [f"  hop{n}:", "    type: passthrough", f"    inputs: [{previous}]"]
        previous = f"hop{n}"
    lines += [
        "  out:",
        "    type: print",
        f"    inputs: [{previous}]",
        f"    payload_bytes: {payload_bytes}",
    ]
    return "\n".join(lines) + "\n"


def save(path, text):
    """Saves like an editor: a temporary file in the same directory, renamed
    over the spec. Returns the monotonic time just before the rename."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    started = time.monotonic()
    os.rename(tmp, path)
    return started


def read_lines(stream, lines):
    """Queues (arrival time, line) for every stderr line, as it arrives."""
    for raw in iter(stream.readline, b""):
        lines.put((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))
    lines.put((time.monotonic(), None))


def wait_for(lines, pattern, timeout, log):
    """The first line matching `pattern` within `timeout` s: (time, match)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            at, line = lines.get(timeout=left)
        except queue.Empty:
            return None
        if line is None:
            sys.exit("flowrun exited early; its last lines:\n" + "\n".join(log[-20:]))
        log.append(line)
        match = pattern.search(line)
        if match:
            return at, match


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowrun", default="target/release/flowrun")
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument(
        "--pause", type=float, default=0.3, help="seconds between saves (default 0.3)"
    )
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="flowrun-reload-")
    spec = os.path.join(workdir, "reload.yaml")
    with open(spec, "w") as f:
        f.write(spec_text(0))
    env = dict(os.environ, FLOWRUN_LOG="info")
    process = subprocess.Popen(
        [args.flowrun, "run", spec, "--status-interval", "3600"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # print's JSON lines: not what is measured
        stderr=subprocess.PIPE,
        env=env,
    )
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stderr, lines), daemon=True).start()
    log = []
    try:
        if wait_for(lines, re.compile(r"running reload-bench"), 10, log) is None:
            sys.exit("flowrun did not start; its lines:\n" + "\n".join(log))
        # The watch is set up just after that line: let it settle.
        time.sleep(0.5)
        total, engine = [], []
        for i in range(1, args.saves + 1):
            started = save(spec, spec_text(i))
            found = wait_for(lines, RELOADED, 5, log)
            if found is None:
                sys.exit(f"save {i}: no `reloaded` line within 5 s; last lines:\n" + "\n".join(log[-10:]))
            at, match = found
            ms = (at - started) * 1000
            total.append(ms)
            engine.append(float(match.group(2)))
            print(f"save {i:>2}: live after {ms:6.1f} ms (engine: {match.group(2)} ms; {match.group(3)})")
            time.sleep(args.pause)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        for name in os.listdir(workdir):
            os.remove(os.path.join(workdir, name))
        os.rmdir(workdir)

    median, p95 = statistics.median(total), percentile(total, 95)
    e_median, e_p95 = statistics.median(engine), percentile(engine, 95)
    verdict = "meets" if p95 <= GOAL_MS else ("median meets" if median <= GOAL_MS else "misses")
    print(
        f"save → live over {len(total)} saves: median {median:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(total):.1f} ms; engine's own figure: median {e_median:.1f} ms, "
        f"p95 {e_p95:.1f} ms; goal ≤ {GOAL_MS:.0f} ms: {verdict}"
    )
    print(
        f"RESULT reload_median_ms={median:.1f} reload_p95_ms={p95:.1f} reload_max_ms={max(total):.1f} "
        f"engine_median_ms={e_median:.1f} engine_p95_ms={e_p95:.1f} saves={len(total)}"
    )


if __name__ == "__main__":
    main()
