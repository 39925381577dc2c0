#!/usr/bin/env bash
# The runtime's cost per message per hop in instructions (callgrind), for the
# code here and for a baseline revision, measured in the same run: a check
# for regressions that a busy 2-core machine's wall clock cannot give (the
# chain bench's rounds swing from 0.46× to 0.84× under load; instruction
# counts move by about 2 % from run to run).
#
#   bench/runtime/instructions.sh [BASELINE_REV]    # default: the last commit
#
# Each chain of runtime/benches/chain.rs (the engine's and bare tokio's) runs
# alone under callgrind with SMALL and LARGE messages; the difference divided
# by (LARGE − SMALL) × 6 queues is the cost of one message on one hop, with
# start-up and shutdown taken out. REPEATS runs of each give the spread.
# Needs valgrind (Debian's package). Reads SMALL, LARGE, REPEATS.
set -euo pipefail
cd "$(dirname "$0")/../.."

BASELINE=${1:-HEAD}
SMALL=${SMALL:-10000}
LARGE=${LARGE:-30000}
REPEATS=${REPEATS:-3}
HOPS_QUEUES=6
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }

work=$(mktemp -d)
trap 'git worktree remove --force "$work/baseline" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

# The chain bench's executable, built (optimised) from the checkout in $1.
bench_binary() {
  (cd "$1" && cargo bench --quiet -p flowrun-runtime --bench chain --no-run --message-format=json 2>/dev/null) |
    grep -o '"executable":"[^"]*chain[^"]*"' | tail -1 | cut -d'"' -f4
}

git worktree add --quiet --detach "$work/baseline" "$BASELINE"
echo "building the chain bench: baseline $(git rev-parse --short "$BASELINE") and this working tree"
cp "$(bench_binary "$work/baseline")" "$work/chain-baseline"
cp "$(bench_binary "$PWD")" "$work/chain-here"

# Instructions of one run: chain $2 of binary $1 with $3 messages.
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --bench --only "$2" --messages "$3" --rounds 1 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# Instructions per message per hop, once per repeat, space-separated.
per_hop() {
  local binary=$1 chain=$2 out="" i small large
  for i in $(seq "$REPEATS"); do
    small=$(instructions "$binary" "$chain" "$SMALL")
    large=$(instructions "$binary" "$chain" "$LARGE")
    out+="$(( (large - small) / (LARGE - SMALL) / HOPS_QUEUES )) "
  done
  echo "$out"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

declare -A cost
for code in baseline here; do
  for chain in engine bare; do
    runs=$(per_hop "$work/chain-$code" "$chain")
    cost[$code-$chain]=$(echo "$runs" | median)
    echo "$code $chain: instructions per message per hop: $runs(median ${cost[$code-$chain]})"
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "RESULT engine_here=${cost[here-engine]} engine_baseline=${cost[baseline-engine]}" \
  "engine_here_vs_baseline=$(ratio "${cost[here-engine]}" "${cost[baseline-engine]}")" \
  "bare_here_vs_baseline=$(ratio "${cost[here-bare]}" "${cost[baseline-bare]}")" \
  "engine_vs_bare_here=$(ratio "${cost[here-engine]}" "${cost[here-bare]}")"
