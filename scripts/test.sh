#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints, tests,
# then a scan of every log the tests wrote for leaked secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The build without OpenCV (the cloud image's) must stay clean too.
cargo clippy -p flowrun --no-default-features -- -D warnings
scripts/scan-logs.sh --self-test
rm -rf target/test-logs
cargo test --workspace --no-fail-fast
scripts/scan-logs.sh
