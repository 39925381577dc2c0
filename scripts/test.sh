#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints, tests, the
# deploy tests (containers from scripts/images.sh) and the arm64 cross-build
# checked under qemu, then a scan of every log the tests wrote for leaked
# secrets. Ends with how long each part took.
#
# The deploy tests and the arm64 check run in the background, beside the
# lints and `cargo test`: all of them spend much of their time waiting (on
# real-time video, brokers, outages of fixed length, containers starting,
# emulated programs, Debian's mirror), so on 2 cores they finish sooner side
# by side than one after another. Their output goes to
# target/deploy-test.out and target/cross-arm64.out, shown when they end.
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
record() { timings+=("$(printf '%-34s %5d s' "$1" "$2")"); }
phase() {
  local name=$1 started=$SECONDS rc=0
  shift
  "$@" || rc=$?
  record "$name" $((SECONDS - started))
  return "$rc"
}

phase "set-up" scripts/setup.sh --tests
phase "fmt" cargo fmt --all -- --check
scripts/scan-logs.sh --self-test
rm -rf target/test-logs target/deploy-test.status target/cross-arm64.status

# A part run in the background: its output to target/$1.out, its exit code
# and seconds to target/$1.status when it ends. Each runs in a process
# group of its own (setsid), so that stopping it stops what it started.
beside() {
  local name=$1
  shift
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'name=$1; shift; started=$SECONDS; rc=0
    "$@" >"target/$name.out" 2>&1 || rc=$?
    echo "$rc $((SECONDS - started))" >"target/$name.status"' _ "$name" "$@" &
  background+=("$!")
}
# A part that fails ends the suite: what runs in the background goes too.
background=()
stop_background() {
  local pid
  for pid in "${background[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}
trap stop_background EXIT
# The deploy tests are the longest part (their images are built inside
# them, the arm64 ones under emulation): they start as soon as their binary
# is built, and the arm64 check with them (its builds have a target folder
# of their own); lints and the other tests are built meanwhile.
phase "build the deploy tests" cargo test --test deploy --no-run --quiet
# --nocapture: each scenario's DEPLOY line (faces, when the fault landed,
# how long the images took) is in the output whether it passes or not.
beside deploy-test cargo test --test deploy --no-fail-fast -- --nocapture
beside cross-arm64 scripts/cross-arm64.sh
phase "clippy (both builds)" bash -c '
  cargo clippy --workspace --all-targets -- -D warnings
  cargo clippy --test deploy -- -D warnings
  # The build without OpenCV (the cloud image'"'"'s) must stay clean too.
  cargo clippy -p flowrun --no-default-features -- -D warnings'
phase "build the tests" cargo test --workspace --no-run --quiet

# Every target runs even when one fails; cargo prints each one's time,
# summed up per target below.
status=0
phase "cargo test (all other targets)" bash -c 'set -o pipefail; cargo test --workspace --no-fail-fast 2>&1 | tee target/cargo-test.out' || status=$?
started=$SECONDS
wait
waited=$((SECONDS - started))
for part in deploy-test cross-arm64; do
  echo "== $part (run beside the tests) =="
  cat "target/$part.out"
  read -r rc seconds <"target/$part.status"
  record "$part (beside)" "$seconds"
  [ "$rc" -eq 0 ] || { echo "test: $part failed (exit code $rc)"; status=1; }
done
record "waiting for the parts beside" "$waited"
scripts/scan-logs.sh

echo "test: time per part"
printf '  %s\n' "${timings[@]}"
echo "test: the slowest test targets"
awk '/Running /{target=($2 == "unittests") ? $3 : $2} /Doc-tests /{target="doc " $2} /^test result:/{for(i=1;i<=NF;i++) if($i=="in") printf "  %10s  %s\n", $(i+1), target}' \
  target/cargo-test.out target/deploy-test.out | sort -rn | head -12
exit "$status"
