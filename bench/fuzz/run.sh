#!/usr/bin/env bash
# Fuzzes the spec loader — fuzz/fuzz_targets/spec_check.rs, what
# `flowrun check` does with a file — for a bounded time, then prints the
# executions, executions per second and crashes (the goal is 0).
#
#   bench/fuzz/run.sh [SECONDS]      # default 60
#
# Seeds: every spec in specs/ and tests/specs/{good,bad}, plus the saved
# regressions in fuzz/regressions/. The corpus grows in fuzz/corpus/
# (not committed); a crash is saved in fuzz/artifacts/spec_check/ — copy it
# into fuzz/regressions/ once fixed, so tests/fuzz_regressions.rs replays it.
#
# Toolchain: stable is enough. Without a sanitizer (`-s none`) cargo-fuzz
# passes only stable rustc flags (-Cpasses=sancov-module, -Cllvm-args=…),
# and libfuzzer-sys builds libFuzzer itself. AddressSanitizer (cargo-fuzz's
# default) would need `-Zsanitizer`, i.e. nightly or RUSTC_BOOTSTRAP=1; the
# loader is safe Rust, so what is looked for is panics, arithmetic
# overflows (debug assertions are on), and stack or memory exhaustion,
# which libFuzzer catches by itself. The first build takes about 15 min on
# 2 busy cores (OpenCV's bindings and the AWS SDK, instrumented).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
seeds=fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds" fuzz/corpus/spec_check
cp specs/*.yaml tests/specs/good/*.yaml tests/specs/bad/*.yaml fuzz/regressions/* "$seeds"/ 2>/dev/null || true
log=$(mktemp)
trap 'rm -f "$log"; rm -rf "$seeds"' EXIT
echo "machine: $(nproc) cores; load before: $(uptime | sed 's/.*load/load/')"
status=0
(cd fuzz && cargo fuzz run -s none spec_check corpus/spec_check seeds -- \
  -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1) >"$log" 2>&1 || status=$?
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
crashes=$(find fuzz/artifacts/spec_check -type f 2>/dev/null | wc -l)
echo "fuzzed spec_check for ${seconds} s: ${executions:-?} executions, ${rate:-?} exec/s, corpus $(ls fuzz/corpus/spec_check | wc -l) inputs, crashes saved: $crashes"
if [ "$status" -ne 0 ]; then
  echo "libFuzzer exited with $status; its last lines:" >&2
  tail -40 "$log" >&2
  exit 1
fi
