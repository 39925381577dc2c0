#!/usr/bin/env bash
# Issue 7's edge faults 6–8 (tests/faults_edge): runs them with real
# processes (flowrun, mosquitto, s3s-fs) and prints the table for
# docs/RELIABILITY.md (edge-side faults) from the `RELIABILITY …` line each scenario
# prints. Takes about 5 minutes; needs what scripts/setup.sh installs.
#
#   bench/reliability/edge.sh [TEST FILTER]
#
# The full output (log and failures) is kept in target/reliability-edge.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=target/reliability-edge.log
mkdir -p target
status=0
cargo test --test faults_edge -- --nocapture --test-threads 1 ${1:+"$1"} >"$log" 2>&1 || status=$?

# value LINE KEY: KEY=… of a RELIABILITY line, "–" when left out.
value() {
  printf '%s\n' "$1" | grep -oE "(^| )$2=[^ ]+" | head -n 1 | cut -d= -f2 | grep . || echo "–"
}

echo "| scenario | sent | stored | lost | duplicated | time to recover (ms) | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|"
grep -oE 'RELIABILITY scenario=.*' "$log" | sort -u | while read -r line; do
  echo "| $(value "$line" scenario) | $(value "$line" sent) | $(value "$line" stored) | $(value "$line" lost) | $(value "$line" duplicated) | $(value "$line" recover_ms) | $(value "$line" peak_rss_mib) |"
done
echo
echo "Further figures per scenario:"
grep -oE 'RELIABILITY scenario=.*' "$log" | sort -u | sed -e 's/^RELIABILITY /  /'
if [ "$status" -ne 0 ]; then
  echo "bench: the tests failed (exit $status): see $log" >&2
  exit "$status"
fi
