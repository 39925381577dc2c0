#!/usr/bin/env bash
# Vision benchmark: flowrun's camera → haar_detect → gray_crop against the
# original Python face detector (Debian's python3-opencv, the same OpenCV
# 4.6), in one run on this machine. Prints frames/s, their ratios, face
# counts (equal when the boxes are) and peak RSS.
#
# Each variant runs ROUNDS times, interleaved with the others, and its best
# rate counts: on a shared machine, other work only ever slows a run down.
#
#   bench/vision/run.sh [PASSES] [ROUNDS]   # passes over Megamind.avi (default 2), rounds (default 2)
set -euo pipefail
cd "$(dirname "$0")/../.."

passes=${1:-2}
rounds=${2:-2}
video=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
frames_per_pass=270

if ! /usr/bin/python3 -c "import cv2" 2>/dev/null; then
  echo "bench: installing python3-opencv"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-opencv >/dev/null
fi
[ -f "$video" ] || { echo "bench: $video is missing: run scripts/setup.sh" >&2; exit 1; }

cargo build --release -q
flowrun=target/release/flowrun
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

spec() { # $1: detect_scale
  cat <<YAML
version: 1
name: bench-vision
nodes:
  cam:
    type: camera
    source: $video
    realtime: false
    loop: true
    max_frames: $((passes * frames_per_pass))
  detect:
    type: haar_detect
    inputs: [{from: cam, overflow: block, capacity: 4}]
    detect_scale: $1
  crop:
    type: gray_crop
    inputs: [{from: detect, capacity: 4}]
  out:
    type: print
    inputs: [crop]
YAML
}

# Runs a command under /usr/bin/time; sets secs, rss_kb.
measure() {
  local out=$1; shift
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" >"$out" 2>"$work/stderr"
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc -l)
  rss_kb=$(tail -1 "$work/rss")
}

row() { printf "%-34s %7s frames %6s faces %7.2f s %7.1f fps %7.0f MiB\n" "$@"; }

declare -A fps rss
keep() { # $1: variant, $2: frames/s, $3: RSS in KiB: the best rate, the largest RSS
  if [ -z "${fps[$1]:-}" ] || [ "$(echo "$2 > ${fps[$1]}" | bc -l)" -eq 1 ]; then fps[$1]=$2; fi
  if [ -z "${rss[$1]:-}" ] || [ "$3" -gt "${rss[$1]}" ]; then rss[$1]=$3; fi
}
for round in $(seq "$rounds"); do
  echo "round $round of $rounds"
  for scale in 1.0 0.5; do
    # haar_detect's default min_neighbors at this detect_scale: 5 × scale, rounded up.
    min_neighbors=$(/usr/bin/python3 -c "import math; print(math.ceil(5 * $scale))")
    measure "$work/py.out" /usr/bin/python3 bench/vision/seed.py "$video" --passes "$passes" --scale "$scale" --min-neighbors "$min_neighbors"
    read -r py_frames py_faces _ _ <"$work/py.out"
    keep "py$scale" "$(echo "$py_frames / $secs" | bc -l)" "$rss_kb"
    row "python seed, scale $scale" "$py_frames" "$py_faces" "$secs" "$(echo "$py_frames / $secs" | bc -l)" "$(echo "$rss_kb/1024" | bc -l)"

    spec "$scale" >"$work/spec-$scale.yaml"
    measure "$work/fr.out" "$flowrun" run --no-watch "$work/spec-$scale.yaml"
    fr_faces=$(wc -l <"$work/fr.out")
    fr_frames=$((passes * frames_per_pass))
    keep "fr$scale" "$(echo "$fr_frames / $secs" | bc -l)" "$rss_kb"
    row "flowrun, detect_scale $scale" "$fr_frames" "$fr_faces" "$secs" "$(echo "$fr_frames / $secs" | bc -l)" "$(echo "$rss_kb/1024" | bc -l)"
    [ "$fr_faces" -eq "$py_faces" ] || echo "  note: face counts differ ($fr_faces vs $py_faces)"
  done
done

echo
printf "best of %s: python %.1f / %.1f fps (scale 1.0 / 0.5), flowrun %.1f / %.1f fps\n" "$rounds" \
  "${fps[py1.0]}" "${fps[py0.5]}" "${fps[fr1.0]}" "${fps[fr0.5]}"
ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }
echo "flowrun / python seed, full resolution:        $(ratio "${fps[fr1.0]}" "${fps[py1.0]}")x   (target >= 1.10)"
echo "flowrun detect_scale 0.5 / python seed:         $(ratio "${fps[fr0.5]}" "${fps[py1.0]}")x   (target >= 2.8)"
echo "flowrun detect_scale 0.5 / python, same scale:  $(ratio "${fps[fr0.5]}" "${fps[py0.5]}")x   (target >= 1.05)"
echo "peak RSS flowrun / python, full resolution:     $(ratio "${rss[fr1.0]}" "${rss[py1.0]}")    (target <= 0.33)"
