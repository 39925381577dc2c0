#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints, tests (the
# deploy tests among them: containers from scripts/images.sh), the arm64
# cross-build checked under qemu, then a scan of every log the tests wrote
# for leaked secrets. Ends with how long each part took.
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
phase() {
  local name=$1 started=$SECONDS rc=0
  shift
  "$@" || rc=$?
  timings+=("$(printf '%-34s %5d s' "$name" $((SECONDS - started)))")
  return "$rc"
}

phase "set-up" scripts/setup.sh --tests
phase "fmt, clippy (both builds)" bash -c '
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
  # The build without OpenCV (the cloud image'"'"'s) must stay clean too.
  cargo clippy -p flowrun --no-default-features -- -D warnings'
scripts/scan-logs.sh --self-test
rm -rf target/test-logs
phase "build the tests" cargo test --workspace --no-run --quiet
# Every target runs even when one fails; cargo prints each one's time,
# summed up per target below.
status=0
phase "cargo test (all targets)" bash -c 'set -o pipefail; cargo test --workspace --no-fail-fast 2>&1 | tee target/cargo-test.out' || status=$?
phase "arm64 cross-build + qemu check" scripts/cross-arm64.sh
scripts/scan-logs.sh

echo "test: time per part"
printf '  %s\n' "${timings[@]}"
echo "test: the slowest test targets"
awk '/Running /{target=($2 == "unittests") ? $3 : $2} /Doc-tests /{target="doc " $2} /^test result:/{for(i=1;i<=NF;i++) if($i=="in") printf "  %10s  %s\n", $(i+1), target}' \
  target/cargo-test.out | sort -rn | head -12
exit "$status"
