#!/usr/bin/env bash
# Runtime benchmarks (issue 2, "Performance"), printed against their goals:
#   1. overhead: messages/s through source → 5 pass-throughs → sink in the
#      engine, against the same chain of bare tokio channels, same run
#      (runtime/benches/chain.rs); goal engine/bare ≥ 0.5;
#   2. hot reload: from a spec save (write + rename) to the `reloaded` line
#      of a running `flowrun run`, 7-node spec (bench/runtime/reload.py);
#      goal ≤ 100 ms.
# Usage: bench/runtime/run.sh   (MESSAGES, ROUNDS, SAVES override the sizes)
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES=${MESSAGES:-500000}
ROUNDS=${ROUNDS:-7}
SAVES=${SAVES:-20}

# Other builds on the machine slow both chains and the reload: say how busy it is.
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -h | awk '/^Mem:/ {print $2}') memory"
echo "load before: $(uptime | sed 's/.*load average: //')"

# Build first, so that compiling is not measured.
cargo build --release --quiet --bin flowrun
cargo bench --quiet -p flowrun-runtime --bench chain --no-run

# Each script's output is shown as it comes and kept for the summary.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== runtime overhead =="
cargo bench --quiet -p flowrun-runtime --bench chain -- --messages "$MESSAGES" --rounds "$ROUNDS" | tee "$out/chain"
echo "== hot reload =="
python3 bench/runtime/reload.py --flowrun target/release/flowrun --saves "$SAVES" | tee "$out/reload"
echo "load after: $(uptime | sed 's/.*load average: //')"

# `key=value` from a script's RESULT line.
field() { grep '^RESULT' "$out/$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
verdict() { awk -v v="$1" -v goal="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= goal : v <= goal; print ok ? "meets the goal" : "MISSES the goal" }'; }

ratio=$(field chain ratio)
median=$(field reload reload_median_ms)
p95=$(field reload reload_p95_ms)
echo "== summary =="
echo "overhead: engine $(field chain engine_msgs_per_s) msg/s vs bare $(field chain bare_msgs_per_s) msg/s = ${ratio}× (goal ≥ 0.5×): $(verdict "$ratio" 0.5 ">=")"
echo "reload:   save → live median ${median} ms, p95 ${p95} ms (goal ≤ 100 ms): p95 $(verdict "$p95" 100 "<="); engine's own figure median $(field reload engine_median_ms) ms, p95 $(field reload engine_p95_ms) ms"
