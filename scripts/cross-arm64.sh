#!/usr/bin/env bash
# Cross-builds flowrun for arm64 (aarch64-unknown-linux-gnu: a Jetson, a
# Raspberry Pi 4/5, a Graviton), then checks the edge build under qemu-user
# against this machine's own build, twice (see the end):
#   - on the same pixels (opencv-doc's Megamind.avi as PNG frames, read
#     losslessly on both): the very same faces, frame by frame;
#   - on the video itself, decoded by each side's own FFmpeg: within 1 %
#     (295 faces here at the shipped detector settings).
#
#   scripts/cross-arm64.sh              # debug builds + the check (what the test suite runs)
#   scripts/cross-arm64.sh --release    # release builds + the check (what to deploy)
#   scripts/cross-arm64.sh --no-check   # only build
#
# Writes target/cross-arm64/build/aarch64-unknown-linux-gnu/<profile>/flowrun-edge (with the
# vision nodes, linking OpenCV 4.6) and flowrun-cloud (without OpenCV).
#
# How: Rust's aarch64 target (rustup), Debian's gcc-aarch64-linux-gnu as
# linker and C++ compiler, and an arm64 sysroot unpacked from Debian's own
# arm64 packages (debootstrap --foreign: nothing arm64 is run or installed on
# this machine; Debian 12's arm64 OpenCV runtime libraries cannot be
# co-installed with the amd64 ones through multiarch: apt removes
# libopencv-dev to make room). The sysroot is made once, in
# target/cross-arm64/sysroot, and made again when this script's list of
# packages changes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PROFILE=dev
CHECK=1
for arg in "$@"; do
  case "$arg" in
    --release) PROFILE=release ;;
    --no-check) CHECK=0 ;;
    *) echo "usage: $0 [--release] [--no-check]" >&2; exit 2 ;;
  esac
done
WORK=target/cross-arm64
# A cargo target folder of its own: cargo locks a target folder while it
# builds, and scripts/test.sh runs this script beside `cargo test`, which
# would wait for the whole arm64 build in a shared one.
HOST_TARGET_DIR=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$WORK/build
OUT=$CARGO_TARGET_DIR/$TARGET/$([ "$PROFILE" = dev ] && echo debug || echo release)
SYSROOT=$WORK/sysroot
# The OpenCV modules the vision nodes use (nodes/Cargo.toml's opencv features).
MODULES=(core imgproc imgcodecs objdetect videoio)

say() { echo "cross-arm64: $*" >&2; }

for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64 debootstrap ffmpeg; do
  command -v "$tool" >/dev/null || { say "$tool not found (scripts/setup.sh installs it)"; exit 1; }
done
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"

# One build at a time: scripts/test.sh runs this script beside the deploy
# tests, whose arm64 images run it too (--no-check). Both would unpack the
# same sysroot and copy the same build outputs; the lock is released when
# the builds are done.
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9

# --- the sysroot -------------------------------------------------------------
packages=libstdc++6
for m in "${MODULES[@]}"; do packages+=",libopencv-$m"406; done
key=$(printf '%s\n' "$MIRROR" "$packages" | sha256sum | cut -c1-16)
if [ "$(cat "$SYSROOT/.key" 2>/dev/null)" != "$key" ]; then
  [ "$(id -u)" -eq 0 ] || { say "debootstrap needs root to unpack the arm64 sysroot"; exit 1; }
  say "unpacking an arm64 Debian 12 sysroot with OpenCV's runtime libraries (once)"
  rm -rf "$SYSROOT"
  mkdir -p "$WORK"
  debootstrap --foreign --arch=arm64 --variant=minbase --include="$packages" \
    bookworm "$SYSROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    say "debootstrap failed (log above)"
    exit 1
  }
  # --foreign unpacks only the essential packages; the rest it downloaded.
  for deb in "$SYSROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  # The link-time names (libopencv_core.so) and arm64's own cvconfig.h are
  # in the -dev packages, whose dependencies are not needed: fetched alone.
  version=$(basename "$SYSROOT"/var/cache/apt/archives/libopencv-core406_*_arm64.deb | cut -d_ -f2)
  for m in "${MODULES[@]}"; do
    deb="$WORK/libopencv-$m-dev.deb"
    curl -fsSL -o "$deb" "$MIRROR/pool/main/o/opencv/libopencv-$m-dev_${version}_arm64.deb"
    dpkg-deb -x "$deb" "$SYSROOT"
  done
  rm -rf "$SYSROOT"/var/cache/apt/archives/*.deb
  echo "$key" >"$SYSROOT/.key"
fi
SYSROOT=$(cd "$SYSROOT" && pwd)
LIB=$SYSROOT/usr/lib/aarch64-linux-gnu
# What dpkg's maintainer scripts would have done: BLAS and LAPACK (OpenCV's
# and GDAL's) are reached through update-alternatives' links, which
# unpacking alone does not make.
for alt in blas/libblas.so.3 lapack/liblapack.so.3; do
  ln -sfn "$alt" "$LIB/$(basename "$alt")"
done

# --- the builds ----------------------------------------------------------------
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
# The opencv crate's "environment" probe: no pkg-config for another arch.
export OPENCV_LINK_LIBS
OPENCV_LINK_LIBS=$(printf 'opencv_%s,' "${MODULES[@]}")
OPENCV_LINK_LIBS=${OPENCV_LINK_LIBS%,}
export OPENCV_LINK_PATHS=$LIB
export OPENCV_INCLUDE_PATHS=$SYSROOT/usr/include/opencv4,$SYSROOT/usr/include/aarch64-linux-gnu/opencv4
# OpenCV's own dependencies (ffmpeg, gdal…) are found in the sysroot at link time.
# (HDF4's libraries, which GDAL links, are in /usr/lib, not the multiarch folder.)
rpath_link=""
for dir in "$LIB" "$SYSROOT/lib/aarch64-linux-gnu" "$SYSROOT/usr/lib"; do
  rpath_link+=" -C link-arg=-Wl,-rpath-link,$dir"
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=${rpath_link# }

build() {
  cargo build --quiet --locked --profile "$PROFILE" --target "$TARGET" --bin flowrun "$@"
}
say "building flowrun for $TARGET (profile $PROFILE) without and with the vision nodes"
# Copied, then renamed into place: whoever reads the previous copy
# (scripts/images.sh --arm64) never sees half a file.
build --no-default-features
cp "$OUT/flowrun" "$OUT/flowrun-cloud.new" && mv "$OUT/flowrun-cloud.new" "$OUT/flowrun-cloud"
build
cp "$OUT/flowrun" "$OUT/flowrun-edge.new" && mv "$OUT/flowrun-edge.new" "$OUT/flowrun-edge"
file "$OUT/flowrun-edge" "$OUT/flowrun-cloud" | sed 's/, BuildID[^,]*//' >&2
flock -u 9

[ "$CHECK" -eq 1 ] || exit 0

# --- the check: the same faces as this machine's build ------------------------
VIDEO=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
[ -f "$VIDEO" ] || { say "$VIDEO not found (scripts/setup.sh installs opencv-doc)"; exit 1; }
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
# camera → haar_detect → gray_crop → files, at the edge specs' detector
# settings, every frame of the file (no real-time pacing to wait for): the
# spec the deploy tests run in the arm64 image too.
SPEC=tests/deploy/count-faces.yaml

# The frame-face names ("37-1") found in folder $1, one a line.
found() { (cd "$1" && find . -name '*.png' | sed 's|^\./||; s|\.png$||' | sort); }

# Runs the count spec with the flowrun command given after folder $1, the
# crops into $1 and their frame-face names into $1.txt.
count_faces() {
  local dir=$1
  shift
  mkdir -p "$dir"
  # Bounded: a camera that cannot read its source retries forever.
  CAMERA=${CAMERA:-$VIDEO} OUT_DIR=$dir FLOWRUN_LOG=warn timeout 900 "$@" run --no-watch "$SPEC" >"$dir.log" 2>&1 || {
    cat "$dir.log" >&2
    return 1
  }
  found "$dir" >"$dir.txt"
}

say "counting faces with this machine's build"
# Without the OpenCV variables above: the opencv crate's build script reads
# them for whatever target it builds, and this build is the host's.
native_bin=$(env -u OPENCV_LINK_LIBS -u OPENCV_LINK_PATHS -u OPENCV_INCLUDE_PATHS CARGO_TARGET_DIR="$HOST_TARGET_DIR" \
  cargo build --quiet --locked --profile "$PROFILE" --bin flowrun --message-format=json-render-diagnostics |
  grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)

# Runs the count on camera source $1 with both builds; sets native, arm64,
# native_s, arm64_s and the lists only_native and only_arm64.
compare() {
  local source=$1 name=$2 started
  started=$(date +%s)
  CAMERA=$source count_faces "$check/$name-native" "$native_bin"
  native_s=$(($(date +%s) - started))
  started=$(date +%s)
  CAMERA=$source count_faces "$check/$name-arm64" qemu-aarch64 -L "$SYSROOT" "$OUT/flowrun-edge"
  arm64_s=$(($(date +%s) - started))
  native=$(wc -l <"$check/$name-native.txt")
  arm64=$(wc -l <"$check/$name-arm64.txt")
  only_native=$(comm -23 "$check/$name-native.txt" "$check/$name-arm64.txt" | tr '\n' ' ')
  only_arm64=$(comm -13 "$check/$name-native.txt" "$check/$name-arm64.txt" | tr '\n' ' ')
}

# 1. The same pixels. FFmpeg's own decoder gives the same frames on both
# (YUV planes identical, every frame); it is the conversion to BGR that
# differs (libswscale's x86_64 and arm64 code paths round differently), so
# frames written once as PNG, which both read bit for bit, take the decoder
# out: the arm64 build must then find exactly the faces this one finds.
# (Absolute: the camera reads a relative source from the spec's folder.)
frames=$PWD/$WORK/megamind-frames
if [ "$(cat "$frames/.source" 2>/dev/null)" != "$(stat -c '%s %Y' "$VIDEO")" ]; then
  rm -rf "$frames"
  mkdir -p "$frames"
  ffmpeg -loglevel error -i "$VIDEO" "$frames/%04d.png"
  stat -c '%s %Y' "$VIDEO" >"$frames/.source"
fi
say "the same pixels: $(find "$frames" -name '*.png' | wc -l) frames of $(basename "$VIDEO") as PNG, with this machine's build and the arm64 build under qemu-aarch64"
compare "$frames" frames
echo "cross-arm64: same pixels: faces x86_64=$native (${native_s} s) arm64-under-qemu=$arm64 (${arm64_s} s)"
if [ "$native" -lt 250 ] || [ -n "$only_native$only_arm64" ]; then
  say "on the same pixels the builds disagree: only on x86_64: ${only_native:-none}; only on arm64: ${only_arm64:-none}"
  exit 1
fi
# The crops themselves, byte for byte (the same boxes, the same gray, the
# same PNG encoding).
digests() { (cd "$1" && find . -name '*.png' -exec md5sum {} + | sort -k2); }
if ! cmp -s <(digests "$check/frames-native") <(digests "$check/frames-arm64"); then
  say "on the same pixels the builds found the same faces but wrote different crops:"
  diff <(digests "$check/frames-native") <(digests "$check/frames-arm64") | head -10 >&2
  exit 1
fi
say "same pixels: the same $native faces, every crop byte-identical"

# 2. The video, each side decoding it with its own FFmpeg, as a camera
# would be read on a Jetson. The BGR conversion above puts a few candidates
# right at haar_detect's min_neighbors threshold on the other side: on
# Megamind.avi 295 faces here, 297 on arm64 (Debian 12's libraries). Such
# faces are listed; the counts must agree within 1 %.
say "the video: $(basename "$VIDEO") decoded by each build's FFmpeg (slower under qemu: every instruction is emulated)"
compare "$VIDEO" video
echo "cross-arm64: faces x86_64=$native (${native_s} s) arm64-under-qemu=$arm64 (${arm64_s} s)"
[ -z "$only_native$only_arm64" ] || say "frame-face found only on x86_64: ${only_native:-none}; only on arm64: ${only_arm64:-none}"
diff=$((native > arm64 ? native - arm64 : arm64 - native))
if [ "$native" -eq 0 ] || [ $((diff * 100)) -gt "$native" ]; then
  say "the arm64 build found $arm64 faces, this machine's $native: more than 1 % apart"
  exit 1
fi
say "ok: the same faces on the same pixels; on the video the counts agree within 1 % ($diff apart)"
