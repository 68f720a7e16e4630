#!/bin/sh
# Installs what building, testing, benchmarking and fuzzing rwkv needs on Debian 12 (as root, or via
# sudo): zlib inflates compressed checkpoints; clang + libclang-rt (libFuzzer) build tests/fuzz.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    ca-certificates cmake make g++ libeigen3-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev \
    zlib1g-dev libedit-dev python3 clang libclang-rt-14-dev libcpp-httplib-dev pkg-config curl >/dev/null
echo "setup-debian: build dependencies installed"
