#!/usr/bin/env bash
# Builds flowrun's Docker images with no container registry: a Debian 12 base
# made with debootstrap and `docker import`, then from it
#
#   flowrun-edge:latest       flowrun with the vision nodes, OpenCV's libraries, the cascades
#   flowrun-cloud:latest      flowrun without OpenCV
#   flowrun-mosquitto:2       Debian's mosquitto, laid out like eclipse-mosquitto
#   flowrun-s3s-fs:latest     an S3 server (s3s-fs) for trying the cloud side out
#
#   scripts/images.sh                   # release binaries (what to deploy)
#   FLOWRUN_PROFILE=dev scripts/images.sh   # the test build's binaries (what the tests use)
#   scripts/images.sh --base            # only the Debian base (scripts/setup.sh)
#   scripts/images.sh --arm64           # flowrun-edge:arm64 and flowrun-cloud:arm64 (a Jetson)
#
# --arm64 needs the kernel to run arm64 programs (binfmt_misc with Debian's
# qemu-user-static, registered with the F flag so it works in containers:
# scripts/setup.sh --tests sets it up): debootstrap runs the base's package
# scripts and the build its `RUN apt-get` under emulation. Its binaries are
# cross-built by scripts/cross-arm64.sh.
#
# Idempotent and cached by content: the base is made again only when what
# goes into it changes (its key is a label on the image); the other images
# are BuildKit builds whose layers are reused while their inputs are the same.
# Packages inside the images come from `RUN apt-get` against Debian's mirror
# (containers reach it here); the binaries are built on this host (Debian 12,
# the same glibc and OpenCV 4.6 as the images) and copied in by
# docker/Dockerfile's `BINARIES=prebuilt` path.
#
# Reads: DEBIAN_MIRROR (default http://deb.debian.org/debian), FLOWRUN_PROFILE
# (release or dev, default release), FLOWRUN_EDGE_BINARY (an amd64 flowrun
# with the vision nodes to put in the edge image instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PROFILE=${FLOWRUN_PROFILE:-release}
SUITE=bookworm
ARCH=amd64
BASE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --arm64) ARCH=arm64 ;;
    --base) BASE_ONLY=1 ;;
    *) echo "usage: $0 [--base] [--arm64]" >&2; exit 2 ;;
  esac
done
BASE=flowrun-base:$SUITE
[ "$ARCH" = amd64 ] || BASE=$BASE-$ARCH

say() { echo "images: $*" >&2; }

command -v docker >/dev/null || { say "docker not found; install Debian's docker.io"; exit 1; }
docker info >/dev/null 2>&1 || { say "the Docker engine does not answer (is dockerd running, may this user use it?)"; exit 1; }

# A docker client that builds with BuildKit: `docker buildx`, or a client
# from before 23.0 (Debian 12's docker.io is 20.10) where BuildKit is built
# in. Newer clients without the buildx plugin only have the legacy builder,
# which cannot skip the Dockerfile's unused `source` stage.
buildkit_build() {
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --load "$@"
    return
  fi
  local client
  for client in $(type -ap docker) /usr/bin/docker; do
    local version
    version=$("$client" version --format '{{.Client.Version}}' 2>/dev/null || true)
    case "$version" in
      1[89].* | 2[0-2].*)
        DOCKER_BUILDKIT=1 "$client" build "$@"
        return
        ;;
    esac
  done
  say "no docker client here builds with BuildKit: install the buildx plugin, or Debian's docker.io (20.10)"
  exit 1
}

# --- the base: debootstrap minbase, imported -----------------------------
base_key() {
  printf '%s\n' "$SUITE" "$ARCH" minbase "$MIRROR" "$(sed -n '/^make_base()/,/^}/p' "$0")" | sha256sum | cut -c1-16
}

make_base() {
  local root=$1
  debootstrap --arch="$ARCH" --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    say "debootstrap failed (log above): can this host reach $MIRROR?"
    exit 1
  }
  # The point releases' and the security archive's fixes, for what the
  # images install on top.
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
  # Images stay small: no downloaded packages, lists, docs or man pages.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Binary::apt::APT::Keep-Downloaded-Packages "false";
CLEAN
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
SLIM
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
}

PATH_IN_IMAGE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# `docker import --platform` is ignored by a 20.10 engine (the image is
# recorded as amd64, and BuildKit then looks for an arm64 one in a
# registry), so a foreign base is loaded as an image archive written here:
# one layer (the root's tar), a config naming the architecture, a manifest.
load_foreign() {
  local work=$1 key=$2 image=$1/image
  mkdir -p "$image/layer"
  tar -C "$work/root" -cf "$image/layer/layer.tar" .
  local diff_id config config_id
  diff_id=$(sha256sum "$image/layer/layer.tar" | cut -d' ' -f1)
  config=$(printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=%s"],"Cmd":["bash"],"Labels":{"org.flowrun.base-key":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$ARCH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PATH_IN_IMAGE" "$key" "$diff_id")
  config_id=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$image/$config_id.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]' "$config_id" "$BASE" >"$image/manifest.json"
  tar -C "$image" -c manifest.json "$config_id.json" layer | docker load >/dev/null
}

ensure_base() {
  local key have
  key=$(base_key)
  have=$(docker image inspect --format '{{index .Config.Labels "org.flowrun.base-key"}} {{.Architecture}}' "$BASE" 2>/dev/null || true)
  if [ "$have" = "$key $ARCH" ]; then
    say "$BASE is current (key $key)"
    return
  fi
  command -v debootstrap >/dev/null || { say "debootstrap not found (scripts/setup.sh installs it)"; exit 1; }
  [ "$(id -u)" -eq 0 ] || { say "debootstrap needs root to make $BASE"; exit 1; }
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  say "making $BASE with debootstrap from $MIRROR"
  make_base "$work/root"
  if [ "$ARCH" = amd64 ]; then
    tar -C "$work/root" -c . | docker import \
      --change "LABEL org.flowrun.base-key=$key" \
      --change "ENV PATH=$PATH_IN_IMAGE" \
      --change 'CMD ["bash"]' \
      - "$BASE" >/dev/null
  else
    load_foreign "$work" "$key"
  fi
  say "$BASE made ($(docker image inspect --format '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- the binaries, built here ----------------------------------------------
# The path of the `flowrun` executable cargo built, from its JSON messages
# (the profile decides the folder; the last artifact is the binary).
build_flowrun() {
  cargo build --quiet --locked --profile "$PROFILE" --bin flowrun --message-format=json-render-diagnostics "$@" |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}

# The build without OpenCV goes to a target folder of its own: built in the
# shared one, it would replace target/<profile>/flowrun, the binary that the
# tests running beside the deploy tests start, by one without the vision
# nodes until the next build (scripts/test.sh runs them side by side).
build_cloud_flowrun() {
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/cloud" build_flowrun --no-default-features
}

build_binaries() {
  local dist=docker/dist/$ARCH
  mkdir -p "$dist"
  if [ "$ARCH" = arm64 ]; then
    say "cross-building flowrun for arm64 (scripts/cross-arm64.sh, profile $PROFILE)"
    local flags=(--no-check)
    [ "$PROFILE" = release ] && flags+=(--release)
    scripts/cross-arm64.sh "${flags[@]}"
    local out
    out=target/cross-arm64/build/aarch64-unknown-linux-gnu/$([ "$PROFILE" = release ] && echo release || echo debug)
    aarch64-linux-gnu-strip -o "$dist/flowrun-cloud.new" "$out/flowrun-cloud"
    aarch64-linux-gnu-strip -o "$dist/flowrun-edge.new" "$out/flowrun-edge"
  else
    say "building flowrun (profile $PROFILE) without and with the vision nodes"
    strip -o "$dist/flowrun-cloud.new" "$(build_cloud_flowrun)"
    # The deploy tests hand in the binary they test (built already, and
    # without asking cargo, which may be busy with the suite's other builds).
    strip -o "$dist/flowrun-edge.new" "${FLOWRUN_EDGE_BINARY:-$(build_flowrun)}"
  fi
  # Replaced only when the bytes differ, so the image layer stays cached.
  local name
  for name in flowrun-cloud flowrun-edge; do
    if cmp -s "$dist/$name.new" "$dist/$name"; then
      rm "$dist/$name.new"
    else
      mv "$dist/$name.new" "$dist/$name"
    fi
  done
}

# --- the images ------------------------------------------------------------
build_image() {
  local tag=$1
  shift
  say "building $tag"
  buildkit_build --quiet --build-arg "BASE_IMAGE=$BASE" --tag "$tag" "$@" >/dev/null
}

if [ "$ARCH" != amd64 ]; then
  # Without a registered interpreter debootstrap's second stage fails in a
  # way that does not say why.
  if [ "$(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | head -1)" != enabled ]; then
    say "this kernel cannot run arm64 programs: no qemu-aarch64 in /proc/sys/fs/binfmt_misc (scripts/setup.sh --tests registers Debian's qemu-user-static)"
    exit 1
  fi
fi
ensure_base
[ "$BASE_ONLY" -eq 1 ] && exit 0
build_binaries
if [ "$ARCH" != amd64 ]; then
  for target in edge cloud; do
    build_image "flowrun-$target:$ARCH" --platform "linux/$ARCH" -f docker/Dockerfile --target "$target" --build-arg BINARIES=prebuilt .
  done
  docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep "^flowrun-.*$ARCH" | sort >&2
  exit 0
fi
build_image flowrun-edge:latest -f docker/Dockerfile --target edge --build-arg BINARIES=prebuilt .
build_image flowrun-cloud:latest -f docker/Dockerfile --target cloud --build-arg BINARIES=prebuilt .
build_image flowrun-mosquitto:2 docker/mosquitto

s3s=$(command -v s3s-fs || true)
if [ -z "$s3s" ]; then
  say "s3s-fs not found (scripts/setup.sh installs it)"
  exit 1
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp docker/s3s-fs/Dockerfile "$context/"
cp "$s3s" "$context/s3s-fs"
build_image flowrun-s3s-fs:latest "$context"

docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^flowrun-' | sort >&2
