#!/usr/bin/env bash
# Tracking benchmark, on videos no one here made (opencv-doc's Megamind.avi
# and vtest.avi), in one run on this machine:
#
# 1. Crops and bytes sent per `face_track` policy, against `emit: all` (every
#    face, the original's behaviour) fed by the same detections in the same
#    process, and the tracks each policy found (at the defaults: `all` sends
#    tracks of any length, the others tracks of 3 frames or more).
# 2. CPU seconds per video at `haar_detect detect_every` 1, 2 and 3, and
#    how many tracks each setting still finds against `detect_every: 1`. The
#    detector's share is the whole process's CPU less a run that only reads
#    the video (decoding is the same whatever the detector does).
#
# Each CPU figure is the least of ROUNDS runs: on a shared machine, other
# work only ever adds to it.
#
#   bench/track/run.sh [ROUNDS]   # default 3
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-3}
videos=(/usr/share/doc/opencv-doc/examples/data/Megamind.avi /usr/share/doc/opencv-doc/examples/data/vtest.avi)
for video in "${videos[@]}"; do
  [ -f "$video" ] || { echo "bench: $video is missing: run scripts/setup.sh" >&2; exit 1; }
done

cargo build --release -q
flowrun=${CARGO_TARGET_DIR:-$PWD/target}/release/flowrun
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count FILE NODE KEY: the number after KEY= in NODE's part of the final
# counts line flowrun printed (`… | t_best in=223 out=5 ack=218 [done faces=295 tracks=6 …]`).
count() {
  grep -E ' final counts: ' "$1" | tail -n 1 | sed -e 's/.* final counts: //' | tr '|' '\n' \
    | sed -e 's/^ *//' | grep "^$2 " | grep -oE "(^|[ [])$3=[0-9]+" | head -n 1 | cut -d= -f2 | grep . || echo 0
}

# Every frame read and detected (no drops: `realtime: false`, blocking inputs).
head_spec() { # $1 video, $2 detect_every
  cat <<YAML
version: 1
name: bench-track
nodes:
  cam:
    type: camera
    source: $1
    realtime: false
  faces:
    type: haar_detect
    inputs: [{from: cam, overflow: block, capacity: 4}]
    scale_factor: 1.3
    min_neighbors: 5
    detect_every: $2
YAML
}

policy_spec() { # $1 video, $2 bucket folder
  head_spec "$1" 1
  for policy in all first best first_and_best; do
    cat <<YAML
  t_$policy:
    type: face_track
    inputs: [{from: faces, overflow: block}]
    emit: $policy
  c_$policy:
    type: gray_crop
    inputs: [{from: t_$policy, overflow: block}]
  s_$policy:
    type: cos_put
    inputs: [{from: c_$policy, overflow: block}]
    key: "$policy/{frame}-{face}.png"
    backend:
      fs:
        root: $2
YAML
  done
}

cpu_spec() { # $1 video, $2 detect_every
  head_spec "$1" "$2"
  cat <<YAML
  track:
    type: face_track
    inputs: [{from: faces, overflow: block}]
    emit: best
  out:
    type: print
    inputs: [track]
YAML
}

read_spec() { # $1 video: decoding alone
  cat <<YAML
version: 1
name: bench-read
nodes:
  cam:
    type: camera
    source: $1
    realtime: false
  out:
    type: print
    inputs: [{from: cam, overflow: block}]
YAML
}

# cpu SPEC LOG: user + system seconds of one run (the least of ROUNDS).
cpu() {
  local best="" secs
  for _ in $(seq "$rounds"); do
    /usr/bin/time -f "%U %S" -o "$work/time" "$flowrun" run --no-watch --status-interval 3600 "$1" >/dev/null 2>"$2"
    secs=$(awk '{printf "%.2f", $1 + $2}' "$work/time")
    if [ -z "$best" ] || [ "$(echo "$secs < $best" | bc -l)" -eq 1 ]; then best=$secs; fi
  done
  echo "$best"
}

ratio() { printf "%.3f" "$(echo "$1 / $2" | bc -l)"; }
# files DIR, bytes DIR: how many objects a policy stored, and their bytes
# (0 when it stored none: the folder is made by the first object).
files() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
bytes() { if [ -d "$1" ]; then find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; else echo 0; fi; }

for video in "${videos[@]}"; do
  name=$(basename "$video")
  echo "== $name"
  bucket="$work/bucket-$name"
  mkdir -p "$bucket"
  policy_spec "$video" "$bucket" >"$work/policies.yaml"
  "$flowrun" run --no-watch --status-interval 3600 "$work/policies.yaml" >/dev/null 2>"$work/policies.log"
  all_crops=$(files "$bucket/all")
  all_bytes=$(bytes "$bucket/all")
  printf "%-16s %6s %8s %12s %8s %8s\n" policy crops "vs all" bytes "vs all" tracks
  for policy in all first best first_and_best; do
    crops=$(files "$bucket/$policy")
    bytes=$(bytes "$bucket/$policy")
    tracks=$(count "$work/policies.log" "t_$policy" confirmed)
    if [ "$all_crops" -gt 0 ]; then
      printf "%-16s %6s %8s %12s %8s %8s\n" "$policy" "$crops" "$(ratio "$crops" "$all_crops")" "$bytes" "$(ratio "$bytes" "$all_bytes")" "$tracks"
    else
      printf "%-16s %6s %8s %12s %8s %8s\n" "$policy" "$crops" - "$bytes" - "$tracks"
    fi
  done
  echo "(faces detected: $(count "$work/policies.log" t_all faces); tracks of 3 frames or more: $(count "$work/policies.log" t_best confirmed))"

  read_spec "$video" >"$work/read.yaml"
  read_cpu=$(cpu "$work/read.yaml" "$work/read.log")
  printf "%-14s %8s %10s %10s %8s %8s %10s\n" detect_every "cpu s" "detector s" "vs every" detected tracks "vs every"
  base_detector="" base_tracks=""
  for every in 1 2 3; do
    cpu_spec "$video" "$every" >"$work/cpu.yaml"
    total=$(cpu "$work/cpu.yaml" "$work/cpu.log")
    detector=$(echo "$total - $read_cpu" | bc -l)
    frames=$(count "$work/cpu.log" faces in)
    tracks=$(count "$work/cpu.log" track confirmed)
    if [ -z "$base_detector" ]; then base_detector=$detector base_tracks=$tracks; fi
    track_ratio=-
    if [ "$base_tracks" -gt 0 ]; then track_ratio=$(ratio "$tracks" "$base_tracks"); fi
    printf "%-14s %8.2f %10.2f %10s %8s %8s %10s\n" "$every" "$total" "$detector" "$(ratio "$detector" "$base_detector")" \
      "$(((frames + every - 1) / every))" "$tracks" "$track_ratio"
  done
  echo "(reading and decoding alone: $read_cpu cpu s; detected = frames the detector ran on)"
  echo
done
