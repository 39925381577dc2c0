#!/usr/bin/env bash
# Edge -> cloud link benchmark: two mosquitto brokers on loopback, COUNT
# (default 20,000) QoS 1 messages of 9 KB published to the edge broker and
# counted on the cloud broker, through four links measured in the same run:
# flowrun's mqtt_bridge, the forwarder spec (mqtt_sub -> mqtt_pub),
# mosquitto's own bridge and a paho-mqtt Python forwarder; each with the
# brokers at mosquitto's defaults and at the shipped no-drop config
# (docker/mosquitto/mosquitto.conf). Two modes (bench.py): `live`, a burst
# published while the link runs (bounded by the publisher), and `drain`, a
# backlog queued for the stopped link, then drained (the link's own rate,
# timed from the first message reaching the cloud to the last; the time
# before the first one is the `startup` column; `busy` is how much of the
# machine's CPU, any process, was in use meanwhile). Prints a table and the
# ratios.
#
#   bench/mqtt/run.sh [COUNT]
#   LINKS="flowrun-forwarder paho-forwarder" MODES=drain bench/mqtt/run.sh   # some rows only
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-20000}
SIZE=9216

need=()
for p in mosquitto mosquitto-clients python3-paho-mqtt; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -q
FLOWRUN=${FLOWRUN:-$PWD/target/release/flowrun}
# Debian's python, which has Debian's python3-paho-mqtt (not a pyenv or venv one).
PY=/usr/bin/python3

. bench/lib.sh

# broker NAME PORT PROFILE [EXTRA_LINES]: starts mosquitto, sets $broker_pid.
broker() {
  local conf=$work/$1.conf
  {
    echo "listener $2 127.0.0.1"
    echo "allow_anonymous true"
    # As root, mosquitto would switch to its own user, which cannot read $work.
    [ "$(id -u)" -ne 0 ] || echo "user root"
    [ "$3" = default ] || grep -E '^(max_queued_messages|max_inflight_messages|message_size_limit)' docker/mosquitto/mosquitto.conf
    echo "${4:-}"
  } >"$conf"
  mosquitto -c "$conf" >"$work/$1.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_port "$2"
}

peak_rss_mb() {
  awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

run_one() { # LINK PROFILE MODE; runs in the subshell of its pipeline, so it stops its own processes
  trap stop_all EXIT
  local link=$1 profile=$2 mode=$3 edge cloud link_pid="" extra="" cmd="" lazy=()
  edge=$(free_port); cloud=$(free_port)
  broker cloud "$cloud" "$profile"
  if [ "$link" = mosquitto-bridge ]; then
    extra=$(printf 'connection cloud\naddress 127.0.0.1:%s\nclientid mosquitto-bridge\ncleansession false\ntopic image out 1\n' "$cloud")
    # Drain: the edge broker queues the backlog for the bridge and starts it
    # once all of it is there.
    [ "$mode" = live ] || { extra=$(printf '%s\nstart_type lazy\nthreshold %s\n' "$extra" $((COUNT - 1))); lazy=(--lazy); }
  fi
  broker edge "$edge" "$profile" "$extra"
  local edge_pid=$broker_pid
  case $link in
    flowrun-bridge)
      cat >"$work/spec.yaml" <<YAML
version: 1
name: bench-bridge
nodes:
  link:
    type: mqtt_bridge
    local: {url: "mqtt://127.0.0.1:$edge", client_id: bench-bridge-local}
    remote: {url: "mqtt://127.0.0.1:$cloud", client_id: bench-bridge-remote}
    topics: [{pattern: image, direction: out, qos: 1}]
YAML
      cmd="env FLOWRUN_LOG=warn $FLOWRUN run $work/spec.yaml --no-watch 2>>$work/flowrun.log" ;;
    flowrun-forwarder)
      cat >"$work/spec.yaml" <<YAML
version: 1
name: bench-forwarder
nodes:
  edge:
    type: mqtt_sub
    broker: {url: "mqtt://127.0.0.1:$edge", client_id: bench-forwarder-sub}
    topics: [{filter: image, qos: 1}]
  cloud:
    type: mqtt_pub
    inputs: [edge]
    broker: {url: "mqtt://127.0.0.1:$cloud", client_id: bench-forwarder-pub}
    topic: "{topic}"
    qos: 1
YAML
      cmd="env FLOWRUN_LOG=warn $FLOWRUN run $work/spec.yaml --no-watch 2>>$work/flowrun.log" ;;
    mosquitto-bridge) link_pid=$edge_pid ;;
    paho-forwarder) cmd="$PY bench/mqtt/paho_forwarder.py $edge $cloud" ;;
  esac
  local result rss
  if [ "$mode" = live ]; then
    if [ -n "$cmd" ]; then
      bash -c "exec $cmd" &
      link_pid=$!
      pids+=("$link_pid")
    fi
    result=$("$PY" bench/mqtt/bench.py --edge "$edge" --cloud "$cloud" --count "$COUNT" --size "$SIZE") || result=""
    rss=$(peak_rss_mb "$link_pid")
  else
    local how=("${lazy[@]}")
    [ -n "$cmd" ] && how=(--link "$cmd")
    result=$("$PY" bench/mqtt/bench.py --mode drain "${how[@]}" --edge "$edge" --cloud "$cloud" --count "$COUNT" --size "$SIZE") || result=""
    echo "$link $result" >>"${RAW:-/dev/null}"
    if [ -n "$link_pid" ]; then rss=$(peak_rss_mb "$link_pid")
    elif [ -n "$result" ]; then rss=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1]).get("rss_mb") or "?")' "$result")
    else rss="?"; fi
  fi
  [ -n "$result" ] || result='{"delivered": 0, "lost": '"$COUNT"', "duplicated": 0, "msgs_per_s": 0, "seconds": "failed"}'
  stop_all
  "$PY" - "$link" "$profile" "$mode" "$rss" "$result" <<'PY'
import json, sys
link, profile, mode, rss, r = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
startup = r.get("startup_s")
startup = "-" if startup is None else startup
busy = r.get("cpu_busy")
busy = "-" if busy is None else f"{busy:.0%}"
print(f"{link:18} {profile:8} {mode:6} {r['delivered']:>9} {r['lost']:>6} {r['duplicated']:>5} {r['msgs_per_s']:>8} {r['seconds']:>7} {startup:>7} {busy:>5} {rss:>8}")
PY
}

echo "mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'), $COUNT messages of $SIZE bytes at QoS 1"
printf '%-18s %-8s %-6s %9s %6s %5s %8s %7s %7s %5s %8s\n' link brokers mode delivered lost dup msg/s seconds startup busy "rss MiB"
results=$work/results.txt
links=${LINKS:-flowrun-bridge flowrun-forwarder mosquitto-bridge paho-forwarder}
modes=${MODES:-live drain}
if [[ " $modes " == *" live "* ]]; then
  for profile in default shipped; do
    for link in $links; do run_one "$link" "$profile" live | tee -a "$results"; done
  done
fi
# A backlog drains only without drops: at the shipped config.
if [[ " $modes " == *" drain "* ]]; then
  for link in $links; do run_one "$link" shipped drain | tee -a "$results"; done
fi
echo "(rss: the flowrun process; for mosquitto-bridge the edge broker that runs the bridge; for paho the python process)"
awk '
  $2 == "shipped" { rate[$3, $1] = $7 }
  END {
    split("live drain", modes, " ")
    for (i = 1; i <= 2; i++) {
      m = modes[i]
      if (rate[m, "mosquitto-bridge"] > 0) printf "%-5s flowrun bridge / mosquitto bridge: %.2fx   forwarder spec / mosquitto bridge: %.2fx\n", m, rate[m, "flowrun-bridge"] / rate[m, "mosquitto-bridge"], rate[m, "flowrun-forwarder"] / rate[m, "mosquitto-bridge"]
      if (rate[m, "paho-forwarder"] > 0) printf "%-5s flowrun bridge / paho forwarder:   %.2fx   forwarder spec / paho forwarder:   %.2fx\n", m, rate[m, "flowrun-bridge"] / rate[m, "paho-forwarder"], rate[m, "flowrun-forwarder"] / rate[m, "paho-forwarder"]
    }
  }' "$results"
