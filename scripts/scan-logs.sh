#!/usr/bin/env bash
# Fails if a test secret appears in any log line the test suite wrote.
#
#   scripts/scan-logs.sh [DIR]      # default target/test-logs
#   scripts/scan-logs.sh --self-test
#
# Every MQTT password and S3 secret key the tests use contains the mark
# `flowrun-secret` (support/src/logs.rs: `secret()`, and the keys
# of the s3s-fs servers the tests start). The in-process node tests log at
# DEBUG and every `flowrun` process an end-to-end test starts runs with
# FLOWRUN_LOG=debug; all of it lands in target/test-logs/. The scan also
# fails when that folder holds no log at all: no logs would prove nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MARK=flowrun-secret

scan() {
  local dir=$1
  local logs
  logs=$(find "$dir" -type f -name '*.log' 2>/dev/null | wc -l)
  if [ "$logs" -eq 0 ]; then
    echo "scan-logs: no logs in $dir; run the tests first" >&2
    return 1
  fi
  local leaks
  leaks=$(grep -rn --include='*.log' -F "$MARK" "$dir" || true)
  if [ -n "$leaks" ]; then
    echo "scan-logs: a secret appears in the logs:" >&2
    echo "$leaks" | cut -c1-300 >&2
    return 1
  fi
  echo "scan-logs: $logs logs, $(cat "$dir"/*.log | wc -l) lines, no secret"
}

if [ "${1:-}" = --self-test ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf 'INFO connected to mqtt://127.0.0.1:1883 as edge\n' >"$tmp/clean.log"
  scan "$tmp" >/dev/null || { echo "scan-logs self-test: a clean log failed" >&2; exit 1; }
  printf 'DEBUG options: password=Some("%s-planted")\n' "$MARK" >"$tmp/leaky.log"
  if scan "$tmp" 2>/dev/null; then
    echo "scan-logs self-test: a planted secret was not found" >&2
    exit 1
  fi
  echo "scan-logs self-test: a clean log passes, a planted secret fails"
  exit 0
fi
scan "${1:-target/test-logs}"
