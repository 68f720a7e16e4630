#!/usr/bin/env bash
# Builds rwkv for aarch64 (64-bit ARM, NEON) with Debian's cross compiler and runs the tests under
# qemu-user. Needs `tools/setup-debian.sh --aarch64`.
#
# Usage: tools/test-aarch64.sh [--ci] [ctest args]
#   (default)  the whole suite (about 15 min of emulated tests on 2 cores, plus the build)
#   --ci       the subset CI runs within its time limit: every CPU kernel test (ISA probe,
#              elementwise, mat-vec incl. the block formats and the int8 / bf16 activation modes, GEMM, WKV,
#              backend ops, layers), the file readers and every formats/ fixture against its goldens, tokenizer, sampler,
#              state, threads, and test_model's golden and batched cases except the sweep over
#              every weight type and the opt-in bf16 mode (those and the error, allocation and
#              truncation cases take over 10 min under emulation; they run natively)
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
CI=0
if [ "${1:-}" = "--ci" ]; then
    CI=1
    shift
fi

cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-aarch64-linux-gnu.cmake" \
    -DRWKV_WARNINGS_AS_ERRORS=ON -DRWKV_BUILD_BENCHMARKS=OFF -DRWKV_BUILD_EXAMPLES=ON -DRWKV_BUILD_C_API=ON \
    -DRWKV_BUILD_SERVER=OFF -DRWKV_CUDA=OFF

start=$(date +%s)
if [ "$CI" = 1 ]; then
    TESTS="test_isa test_elementwise test_matvec test_block_decode test_matvec_quant test_matvec_q8act test_matvec_bf16 test_gemm test_wkv test_backend_ops test_layers
           test_formats test_gguf test_rwkvcpp test_safetensors test_pth test_tokenizer test_sampler test_state
           test_threads test_model"
    # shellcheck disable=SC2086
    cmake --build "$BUILD" -j"$JOBS" --target $TESTS
    echo "test-aarch64: cross build took $(( $(date +%s) - start )) s"
    start=$(date +%s)
    # test_model_golden_batch: test_model's golden and batched cases (registered for cross builds).
    REGEX="^($(echo $TESTS | tr ' ' '\n' | grep -v '^test_model$' | paste -sd'|')|test_model_golden_batch)\$"
    ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" -R "$REGEX" "$@"
else
    cmake --build "$BUILD" -j"$JOBS"
    echo "test-aarch64: cross build took $(( $(date +%s) - start )) s"
    start=$(date +%s)
    EXCLUDE='^(python_ctypes|downstream_find_package|headers_clang_warnings|test_model_golden_batch)$'
    ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" -E "$EXCLUDE" "$@"
fi
echo "test-aarch64: emulated tests took $(( $(date +%s) - start )) s"
