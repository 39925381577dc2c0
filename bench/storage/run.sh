#!/usr/bin/env bash
# Storage benchmark: flowrun cos_put (s3 and fs backends) against the
# original's Python (boto3 put_object per message; plain file writes), in
# one run. Needs s3s-fs and Debian's python3-boto3 (scripts/setup.sh).
# COUNT, SIZE and ROUNDS default to 2000 messages of 9000 bytes, 3 rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin flowrun
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
/usr/bin/python3 bench/storage/bench.py target/release/flowrun "${COUNT:-2000}" "${SIZE:-9000}" "${ROUNDS:-3}"
