#!/usr/bin/env bash
# The CUDA backend on a machine with an NVIDIA GPU, in one command (about 5-8 minutes):
# configures a build for the GPU that is present, builds the CUDA tests and the benchmark, runs
# the host-side math test, the GPU tests (tests/cuda/test_cuda.cu; every figure they print is
# kept in the output), then rwkv-bench-cuda: copy bandwidth, bf16 GEMM rate, decode tok/s at
# Eagle-0.4B / Finch-1.6B / Finch-3B as a fraction of the HBM floor, prefill 512 / 4096 tokens
# as a fraction of the GEMM rate, batched decode for B = 1, 8, 64, 256.
#
#   tools/gpu-check.sh [--quick]        # BUILD=dir (default build-gpu), NVCC=path, JOBS=n
#
# Needs the Debian packages of tools/setup-debian.sh and the CUDA toolkit (nvcc, cuBLAS).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
quick=${1:-}
status=0
start=$(date +%s)
stamp() { echo "[gpu-check +$(( $(date +%s) - start ))s] $*"; }

if ! command -v nvidia-smi > /dev/null; then
    echo "gpu-check: nvidia-smi not found: this script needs a machine with an NVIDIA GPU and its driver" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv || exit 2
# Only the present GPU's architecture: halves nvcc's time (CI builds 80 and 90).
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
[ -n "$cc" ] || { echo "gpu-check: could not read the GPU's compute capability" >&2; exit 2; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

stamp "configure ($BUILD, sm_$cc, $NVCC)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
    -DCMAKE_CUDA_ARCHITECTURES="$cc" -DRWKV_BUILD_TESTS=ON -DRWKV_BUILD_BENCHMARKS=ON \
    -DRWKV_BUILD_EXAMPLES=OFF -DRWKV_BUILD_SERVER=OFF -DRWKV_BUILD_C_API=OFF > "$BUILD.configure.log" 2>&1 || {
    tail -n 30 "$BUILD.configure.log"
    echo "gpu-check: configure failed (missing packages? run tools/setup-debian.sh)" >&2
    exit 1
}
stamp "build test_cuda_math test_cuda rwkv-bench-cuda (-j$JOBS)"
cmake --build "$BUILD" -j"$JOBS" --target test_cuda_math test_cuda rwkv-bench-cuda || { echo "gpu-check: build failed" >&2; exit 1; }

stamp "host math test (tests/test_cuda_math.cpp)"
"$BUILD/tests/test_cuda_math" || status=1

stamp "GPU tests (tests/cuda/test_cuda.cu)"
timeout 300 "$BUILD/tests/cuda/test_cuda" --durations yes || status=1

stamp "benchmark (rwkv-bench-cuda $quick)"
timeout 240 "$BUILD/benchmarks/cuda/rwkv-bench-cuda" $quick || status=1

stamp "done: $([ $status = 0 ] && echo 'all passed' || echo 'FAILURES above')"
exit $status
