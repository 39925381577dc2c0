#!/usr/bin/env bash
# Installs everything flowrun's build, demo and tests need, idempotently:
# Debian packages (OpenCV 4.6 and its sample data, mosquitto, RabbitMQ, s3fs,
# chromium, promtool, debootstrap, the arm64 cross toolchain and qemu-user),
# the S3 test server, Rust's aarch64 target and the Debian base image the
# Docker images are built on. Safe to run again: it only installs what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

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
  debootstrap                                      # the images' Debian base, made without a registry
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu      # scripts/cross-arm64.sh: the arm64 linker
  qemu-user                                        # ... and running its build on the sample video
  ffmpeg                                           # ... and on the video's frames as PNG (the same pixels on both)
  qemu-user-static binfmt-support                  # arm64 programs run by the kernel: the arm64 images
  binutils file curl ca-certificates
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
# What only the test suite needs (scripts/test.sh passes --tests): the demo
# runs without Docker or the arm64 toolchain.
if [ "${1:-}" != "--tests" ]; then
  echo "setup: ok"
  exit 0
fi

# The arm64 (Jetson) build's standard library.
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  echo "setup: adding Rust's aarch64-unknown-linux-gnu target"
  rustup target add aarch64-unknown-linux-gnu
fi

# The arm64 images are built by running arm64 programs (debootstrap's
# package scripts, the Dockerfile's apt-get) under qemu: the kernel hands
# them to qemu-aarch64-static through binfmt_misc, registered with the F
# flag (the interpreter is opened once, so it works inside containers).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    echo "setup: cannot mount binfmt_misc: the arm64 images cannot be built here" >&2
fi
if [ -e /proc/sys/fs/binfmt_misc/status ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 ||
    echo "setup: cannot register qemu-aarch64 with binfmt_misc" >&2
fi

# The deploy tests run flowrun in containers: the engine must answer, and
# the images' Debian base is made here (debootstrap, once; the other images
# are built by the tests from the binaries they build).
if ! docker info >/dev/null 2>&1; then
  echo "setup: the Docker engine does not answer: start dockerd (Debian's docker.io) so the deploy tests can run" >&2
  exit 1
fi
scripts/images.sh --base
echo "setup: ok"
