#!/usr/bin/env bash
# Installs everything flowrun's build, demo and tests need, idempotently:
# Debian packages (OpenCV 4.6 and its sample data, mosquitto, RabbitMQ, s3fs,
# chromium, promtool)
# and the S3 test server. Safe to run again: it only installs what is missing.
set -euo pipefail

packages=(
  build-essential pkg-config clang libclang-dev   # the opencv crate's bindings generator
  libopencv-dev opencv-data opencv-doc             # OpenCV 4.6, Haar cascades, sample video
  mosquitto mosquitto-clients                      # the real MQTT broker the tests run
  rabbitmq-server                                  # RabbitMQ 3.10: an MQTT 3.1.1-only broker (protocol: auto tests)
  openssl                                          # certificates for the MQTT TLS test
  python3 python3-paho-mqtt                        # bench/mqtt: the paho forwarder baseline
  s3fs fuse3                                       # mounted-bucket tests
  python3-boto3                                    # bench/storage: the original's S3 writer
  chromium                                         # the preview page test (headless)
  docker-compose                                   # validates docker/ compose files
  prometheus                                       # promtool: checks the /metrics format
  curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The brokers must not run as system services: tests start their own on free
# ports. Nor Prometheus: only its promtool is used.
for service in mosquitto rabbitmq-server prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
  # Without systemd (containers) the package's init script may have started it.
  if ! command -v systemctl >/dev/null 2>&1 || ! systemctl is-system-running >/dev/null 2>&1; then
    if [ -x "/etc/init.d/$service" ] && "/etc/init.d/$service" status >/dev/null 2>&1; then
      "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# S3-compatible server for the storage tests (crates.io).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "setup: installing s3s-fs"
  cargo install --quiet --locked s3s-fs --version 0.14.1 --features binary
fi
echo "setup: ok"
