#!/bin/sh
# Installs what building, testing, benchmarking and fuzzing rwkv needs on Debian 12 (as root, or via
# sudo): zlib inflates compressed checkpoints; clang + libclang-rt (libFuzzer) build tests/fuzz.
# --aarch64: also what tools/test-aarch64.sh needs to cross-build for 64-bit ARM and run the tests
# under qemu-user (the cross compiler, the target's libc and libstdc++, qemu, and the arm64 zlib from
# Debian's multiarch archive, which needs the arm64 architecture added to dpkg).
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
EXTRA=""
case "${1:-}" in
    "") ;;
    --aarch64)
        EXTRA="g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user zlib1g-dev:arm64"
        $SUDO dpkg --add-architecture arm64
        ;;
    *) echo "usage: tools/setup-debian.sh [--aarch64]" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    ca-certificates cmake make g++ libeigen3-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev \
    zlib1g-dev libedit-dev python3 clang libclang-rt-14-dev libcpp-httplib-dev pkg-config curl $EXTRA >/dev/null
echo "setup-debian: build dependencies installed${EXTRA:+ (with the aarch64 cross tools)}"
