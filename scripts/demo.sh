#!/usr/bin/env bash
# The demo: installs what is missing, builds flowrun, and runs
# specs/demo.yaml — the sample video through face detection, an embedded
# MQTT broker and into a local bucket folder — until the video has been read
# and every face is stored; then stops it and prints a summary.
#
# Reads what specs/demo.yaml reads (CAMERA, CAMERA_OVERFLOW, DEVICE_ID, MQTT_PORT,
# BUCKET_DIR, PREVIEW_ADDRESS, TRACK) and DEMO_TIMEOUT (seconds, default 300).
# FLOWRUN=path/to/flowrun skips the set-up and the build (the tests run the
# demo that way).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${FLOWRUN:-}" ]; then
  scripts/setup.sh
  cargo build --release --quiet
  FLOWRUN=target/release/flowrun
fi
export BUCKET_DIR="${BUCKET_DIR:-$PWD/target/demo-bucket}"
export PREVIEW_ADDRESS="${PREVIEW_ADDRESS:-127.0.0.1:8090}"
mkdir -p "$BUCKET_DIR"

log="$(mktemp -t flowrun-demo.XXXXXX)"
"$FLOWRUN" run --no-watch --status-interval 0.5 specs/demo.yaml 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

echo "demo: live view at http://$PREVIEW_ADDRESS/"
echo "demo: faces are stored as PNG files under $BUCKET_DIR/faces/"

# The last status line flowrun printed (it prints one every 0.5 s).
last_status() { grep -E ' (status|final counts): ' "$log" | tail -n 1 || true; }

# count LINE NODE KEY: the number after KEY= in NODE's part of a status
# line (`… | crops in=223 out=295 ack=223 | store in=285 … [stored=285 …]`),
# 0 when absent (flowrun leaves out zero counters).
count() {
  printf '%s\n' "$1" | sed -e 's/.*\(status\|final counts\): //' | tr '|' '\n' \
    | sed -e 's/^ *//' | grep "^$2 " | grep -oE "(^|[ [])$3=[0-9]+" | head -n 1 \
    | cut -d= -f2 | grep . || echo 0
}

# Done when the camera has read the whole video, detection has taken every
# frame it did not drop, the tracker took every frame with faces and flushed
# its open tracks, every face it sent on was cut, and every face was stored. (flowrun itself keeps running: the subscriber and the broker are
# services with no end.)
finished() {
  local line="$1"
  printf '%s\n' "$line" | grep -q 'camera [^|]*\[end of file' || return 1
  local read dropped taken acked sent crops_in crops_acked faces stored
  read=$(count "$line" camera out)
  dropped=$(count "$line" faces drop)
  taken=$(count "$line" faces in)
  sent=$(count "$line" faces out)
  acked=$(count "$line" faces ack)
  crops_in=$(count "$line" crops in)
  crops_acked=$(count "$line" crops ack)
  faces=$(count "$line" crops out)
  stored=$(count "$line" store stored)
  # The tracker's status word is `done …` once its input ended and it
  # flushed every open track.
  printf '%s\n' "$line" | grep -qE '\| track [^|]*\[done' || return 1
  [ "$(count "$line" track in)" -eq "$sent" ] || return 1
  [ $((taken + dropped)) -eq "$read" ] && [ $((sent + acked)) -eq "$taken" ] \
    && [ "$crops_in" -eq "$(count "$line" track out)" ] && [ "$crops_acked" -eq "$crops_in" ] \
    && [ "$stored" -eq "$faces" ]
}

# say_trouble LINE: each node's failure the status line shows (`camera
# err=3 restart=2 [restarting: camera source … does not exist]`), said once
# when it first appears, so that a mistyped CAMERA or an unwritable
# BUCKET_DIR is named at once instead of after the timeout.
said=""
say_trouble() {
  local trouble
  while IFS= read -r trouble; do
    case "$said" in *"<$trouble>"*) continue ;; esac
    said="$said<$trouble>"
    echo "demo: ${trouble%%]}" | sed -e 's/ \[/: /' >&2
  done < <(printf '%s\n' "$1" | tr '|' '\n' | sed -e 's/.*\(status\|final counts\): //' -e 's/^ *//' \
    | grep -oE '^[A-Za-z][A-Za-z0-9_-]* .*\[(restarting|failed): [^]]*\]' \
    | sed -E 's/^([^ ]+) [^[]*\[/\1 [/' || true)
}
deadline=$((SECONDS + ${DEMO_TIMEOUT:-300}))
shown=$SECONDS
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: flowrun stopped early:" >&2
    cat "$log" >&2
    exit 1
  fi
  line="$(last_status)"
  if [ -n "$line" ] && finished "$line"; then
    break
  fi
  say_trouble "$line"
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "demo: not finished after ${DEMO_TIMEOUT:-300} s; the last status:" >&2
    echo "$line" >&2
    exit 1
  fi
  if [ -n "$line" ] && [ $((SECONDS - shown)) -ge 2 ]; then
    echo "demo: $(count "$line" camera out) frames read, $(count "$line" crops out) faces, $(count "$line" store stored) stored"
    shown=$SECONDS
  fi
  # A poll interval, bounded by the deadline above.
  sleep 0.2
done

kill -INT "$pid"
status=0
wait "$pid" || status=$?
trap 'rm -f "$log"' EXIT
final="$(grep -E ' final counts: ' "$log" | tail -n 1 || true)"
if [ "$status" -ne 0 ] || [ -z "$final" ]; then
  echo "demo: flowrun exited with status $status:" >&2
  cat "$log" >&2
  exit 1
fi
frames=$(count "$final" camera out)
found=$(count "$final" track faces)
tracks=$(count "$final" track tracks)
faces=$(count "$final" crops out)
stored=$(count "$final" store stored)
total=$(find "$BUCKET_DIR" -type f -name '*.png' | wc -l)
echo "demo: done: $frames frames, $found faces found in $tracks tracks, $faces sent (TRACK=${TRACK:-all}), $stored objects stored in $BUCKET_DIR ($total PNG files there in all)"
