#!/usr/bin/env bash
# Storage benchmark, MQTT-fed: 2,000 messages of 9 KB at QoS 1 on a
# mosquitto topic, stored by flowrun (mqtt_sub → cos_put, s3 and fs
# backends) and by the original's Python (paho-mqtt + boto3 put_object per
# message in on_message; plain file writes), in one run. Needs mosquitto,
# s3s-fs, Debian's python3-paho-mqtt and python3-boto3 (scripts/setup.sh).
# COUNT, SIZE, ROUNDS, CONCURRENCY default to 2000, 9000, 3, 16.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The cloud side's build, as the cloud Docker image ships it: without the
# vision nodes, so without OpenCV's libraries in memory. (The next
# `cargo build --release` builds the full binary again.)
cargo build --release --quiet --bin flowrun --no-default-features
flowrun=$(mktemp -d)/flowrun
trap 'rm -rf "$(dirname "$flowrun")"' EXIT
cp target/release/flowrun "$flowrun"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(uptime)"
/usr/bin/python3 bench/storage/bench.py "$flowrun" "${COUNT:-2000}" "${SIZE:-9000}" "${ROUNDS:-3}" "${CONCURRENCY:-16}"
echo "load after: $(uptime)"
