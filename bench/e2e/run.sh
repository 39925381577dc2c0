#!/usr/bin/env bash
# End-to-end latency: from frame capture to object stored, through the
# shipped specs/edge-bridge.yaml and specs/cloud-cos.yaml on loopback (two
# mosquitto brokers with the shipped queue settings, s3s-fs as the bucket),
# with Megamind.avi as the camera at its own frame rate (~24 fps, as a real
# camera delivers). Splits each face's time into
#   detection: capture → on the edge broker (Haar detection, crop, PNG, publish)
#   link+store: edge broker → bridge → cloud broker → cos_put → stored
# and prints p50/p90/p99/max of each (bench/e2e/latency.py).
#
# Times: capture is the camera's timestamp (in the topic and the key); "on
# the edge broker" is when a mosquitto_sub on the edge broker received the
# face; "stored" is the modification time of the object's file in s3s-fs's
# folder (written before s3s-fs answers the PUT). One clock: one machine.
#
#   bench/e2e/run.sh [PASSES]    # passes over the 270-frame video (default 3)
#
# FLOWRUN=path/to/flowrun uses that binary instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
passes=${1:-3}
video=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
[ -f "$video" ] || { echo "bench: $video is missing: run scripts/setup.sh" >&2; exit 1; }
command -v s3s-fs >/dev/null || { echo "bench: s3s-fs is missing: run scripts/setup.sh" >&2; exit 1; }

if [ -z "${FLOWRUN:-}" ]; then
  cargo build --release -q --bin flowrun
  FLOWRUN=$PWD/target/release/flowrun
fi
flowrun=$FLOWRUN
PY=/usr/bin/python3

. bench/lib.sh

# wait_for FILE TEXT SECONDS: until FILE holds TEXT.
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench: no \`$2\` in $1 after $3 s" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
}

# count LINE NODE KEY: NODE's KEY=N in a status line, 0 when left out.
count() {
  printf '%s\n' "$1" | sed -e 's/.*\(status\|final counts\): //' | tr '|' '\n' \
    | sed -e 's/^ *//' | grep "^$2 " | grep -oE "(^|[ [])$3=[0-9]+" | head -n 1 \
    | cut -d= -f2 | grep . || echo 0
}

# The edge read the whole video, detected on every frame it did not drop,
# cut every face, and the edge broker acknowledged every one.
edge_finished() {
  printf '%s\n' "$1" | grep -q 'camera [^|]*\[end of file' || return 1
  [ $(($(count "$1" faces in) + $(count "$1" faces drop))) -eq "$(count "$1" camera out)" ] \
    && [ $(($(count "$1" faces out) + $(count "$1" faces ack))) -eq "$(count "$1" faces in)" ] \
    && [ "$(count "$1" crops in)" -eq "$(count "$1" faces out)" ] \
    && [ "$(count "$1" crops ack)" -eq "$(count "$1" crops in)" ] \
    && [ "$(count "$1" publish ack)" -eq "$(count "$1" crops out)" ]
}

broker() { # NAME PORT
  {
    echo "listener $2 127.0.0.1"
    echo "allow_anonymous true"
    [ "$(id -u)" -ne 0 ] || echo "user root"
    grep -E '^(max_queued_messages|max_inflight_messages|message_size_limit)' docker/mosquitto/mosquitto.conf
  } >"$work/$1.conf"
  mosquitto -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

edge_port=$(free_port); cloud_port=$(free_port); s3_port=$(free_port)
broker edge "$edge_port"
broker cloud "$cloud_port"
mkdir -p "$work/s3/faces"
s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key bench-key --secret-key bench-secret-key \
  "$work/s3" >"$work/s3s.log" 2>&1 &
pids+=($!)
wait_port "$s3_port"

# Arrival on the edge broker, with a nanosecond receive time.
mosquitto_sub -h 127.0.0.1 -p "$edge_port" -t 'faces/#' -q 1 -F '%U %t' >"$work/edge-arrivals.txt" &
pids+=($!)

CLOUD_BROKER=mqtt://127.0.0.1:$cloud_port S3_ENDPOINT=http://127.0.0.1:$s3_port BUCKET=faces \
AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret-key WORKER_ID=1 \
  "$flowrun" run --no-watch --status-interval 0.5 specs/cloud-cos.yaml 2>"$work/cloud.log" &
pids+=($!)
wait_for "$work/cloud.log" "subscribed" 30

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
frames=0; faces=0; dropped=0
for pass in $(seq 1 "$passes"); do
  # A device per pass keeps the keys of each pass apart.
  CAMERA=$video DEVICE_ID=bench-$pass EDGE_BROKER=mqtt://127.0.0.1:$edge_port \
  CLOUD_BROKER=mqtt://127.0.0.1:$cloud_port \
    "$flowrun" run --no-watch --status-interval 0.5 specs/edge-bridge.yaml 2>"$work/edge-$pass.log" &
  edge_pid=$!
  pids+=("$edge_pid")
  deadline=$((SECONDS + 120))
  until edge_finished "$(grep ' status: ' "$work/edge-$pass.log" 2>/dev/null | tail -n 1)"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench: edge pass $pass did not finish" >&2; exit 1; }
    sleep 0.2
  done
  kill -INT "$edge_pid"; wait "$edge_pid" || true
  final=$(grep ' final counts: ' "$work/edge-$pass.log" | tail -n 1)
  frames=$((frames + $(count "$final" camera out)))
  faces=$((faces + $(count "$final" crops out)))
  dropped=$((dropped + $(count "$final" faces drop)))
done

# Every face stored, or the figures would leave the slowest out.
deadline=$((SECONDS + 120))
until [ "$(find "$work/s3/faces" -type f -name '*.png' | wc -l)" -ge "$faces" ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "bench: not every face was stored" >&2; exit 1; }
  sleep 0.5
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
(cd "$work/s3/faces" && find . -type f -name '*.png' -printf '%T@ %P\n') >"$work/stored.txt"

echo "bench e2e: $passes passes, $frames frames read, $dropped dropped before detection, $faces faces, $(wc -l <"$work/stored.txt") objects"
echo "bench e2e: load average before $load_before, after $load_after; $(nproc) cores"
"$PY" bench/e2e/latency.py "$work/edge-arrivals.txt" "$work/stored.txt"
