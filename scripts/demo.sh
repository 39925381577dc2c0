#!/usr/bin/env bash
# The demo: installs what is missing, builds flowrun and runs specs/demo.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
exec target/release/flowrun run --no-watch specs/demo.yaml "$@"
