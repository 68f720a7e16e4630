#!/usr/bin/env bash
# Builds rwkv for aarch64 (64-bit ARM, NEON) with Debian's cross compiler and runs the test suite
# under qemu-user. Needs `tools/setup-debian.sh --aarch64`. Usage: tools/test-aarch64.sh [ctest args]
#
# Not run under emulation (excluded by name):
#   python_ctypes           loads the aarch64 librwkv.so into the host's (x86-64) python3
#   downstream_find_package builds a downstream project with the host compiler against the install
#   headers_clang_warnings  host clang++ -fsyntax-only: compiles x86 code, already run natively
# Not built: rwkv-server (its HTTP library would need the arm64 OpenSSL/brotli stack; the server is
# portable C++ on top of the same AnyModel, and its scenarios run natively).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${RWKV_AARCH64_BUILD:-build-aarch64}
JOBS=${RWKV_JOBS:-2}

cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-aarch64-linux-gnu.cmake" \
    -DRWKV_WARNINGS_AS_ERRORS=ON -DRWKV_BUILD_BENCHMARKS=OFF -DRWKV_BUILD_EXAMPLES=ON -DRWKV_BUILD_C_API=ON \
    -DRWKV_BUILD_SERVER=OFF -DRWKV_CUDA=OFF
cmake --build "$BUILD" -j"$JOBS"

EXCLUDE='^(python_ctypes|downstream_find_package|headers_clang_warnings)$'
start=$(date +%s)
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" -E "$EXCLUDE" "$@"
echo "test-aarch64: emulated ctest took $(( $(date +%s) - start )) s"
