"""Latency percentiles for bench/e2e/run.sh.

Arguments: the edge broker's arrivals (`<unix seconds.ns> <topic>` per line,
from mosquitto_sub -F '%U %t') and the stored objects (`<mtime seconds>
<key>` per line). The capture time in milliseconds is in both: topic
`faces/<device>/<camera>/<capture ms>-<frame>-<face>`, key the same plus
`.png`.
"""

import sys


def capture_ms(name):
    return int(name.rsplit("/", 1)[1].split("-")[0])


def read(path, strip=""):
    times = {}
    with open(path) as f:
        for line in f:
            when, name = line.split(maxsplit=1)
            name = name.strip()
            if strip and name.endswith(strip):
                name = name[: -len(strip)]
            times[name] = float(when) * 1000.0
    return times


def percentile(values, p):
    """Nearest-rank percentile of sorted values."""
    rank = max(1, round(p / 100.0 * len(values)))
    return values[min(rank, len(values)) - 1]


def main():
    arrived = read(sys.argv[1])
    stored = read(sys.argv[2], ".png")
    missing = [name for name in arrived if name not in stored]
    if missing:
        sys.exit(f"{len(missing)} faces reached the edge broker but were not stored, e.g. {missing[0]}")
    rows = {
        "detection (capture -> edge broker)": [],
        "link + store (edge broker -> stored)": [],
        "capture -> stored": [],
    }
    for name, at_edge in arrived.items():
        captured = capture_ms(name)
        rows["detection (capture -> edge broker)"].append(at_edge - captured)
        rows["link + store (edge broker -> stored)"].append(stored[name] - at_edge)
        rows["capture -> stored"].append(stored[name] - captured)
    print(f"{len(arrived)} faces; milliseconds")
    print("| segment | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for segment, values in rows.items():
        values.sort()
        cells = " | ".join(f"{percentile(values, p):.1f}" for p in (50, 90, 99, 100))
        print(f"| {segment} | {cells} |")


main()
