#!/usr/bin/env bash
# The fault scenarios of tests/faults (issue 7, 1–5) as a table for
# docs/RELIABILITY.md: runs them one at a time, the ignored ones too, if any (they
# show a known loss), and turns each `RELIABILITY …` result line into a row.
#
#   bench/reliability/run.sh [TEST FILTER]
#
# Debug build, as CI runs it. Exits with the tests' status, after the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

status=0
cargo test -q --test faults -- --include-ignored --nocapture --test-threads 1 "$@" \
  2>&1 | tee "$out" >&2 || status=$?

echo
echo "| scenario | link | sent | stored | lost | duplicate objects | PUTs (beyond the first) | first new object after the fault (ms) | all stored after the fault (ms) | all stored after the last sent (ms) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
# With -q, a result line may follow the progress dots on its line.
grep -o 'RELIABILITY scenario=.*' "$out" | awk '{
  delete f
  for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  printf "| %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n",
    f["scenario"], f["link"], f["sent"], f["stored"], f["lost"], f["duplicate_objects"],
    f["puts"], f["redelivered"], f["recover_first_ms"], f["recover_all_ms"], f["after_last_sent_ms"]
}'
exit "$status"
