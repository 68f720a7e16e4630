#!/bin/sh
# The flag matrix of issue 9: rwkv-roofline built with -O2 (CMake's RelWithDebInfo: -O2 -g) and
# -O3 (Release), each with and without -march=native (RWKV_NATIVE), then decode and 512-token
# prefill tok/s at the Finch-0.4B shape (bf16, 2 threads), the four builds interleaved round by
# round (the machine is shared and noisy), each as a ratio to the -O3 build measured in the same
# round (median over rounds; tok/s: best over rounds).
#
#   tools/flag-matrix.sh [--rounds N] [--1b6] [--threads N]
#
# --1b6 adds the Finch-1.6B shape. Builds go to build-flags/<config> (only the rwkv-roofline
# target), with warnings as errors: a flag combination that warns (GCC 12 with -march=native on
# an AVX-512 CPU did, inside Eigen: include/rwkv/backend/cpu/eigen.hpp) fails here, not at a user's.
# Needs what the main build needs (tools/setup-debian.sh).
set -eu
cd "$(dirname "$0")/.."
rounds=3
shapes=0b4
threads=2
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --1b6) shapes=all; shift ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "usage: tools/flag-matrix.sh [--rounds N] [--1b6] [--threads N]" >&2; exit 2 ;;
    esac
done

configs="O3 O2 O3-native O2-native"
for c in $configs; do
    case $c in
        O3*) type=Release ;;
        O2*) type=RelWithDebInfo ;;
    esac
    case $c in
        *-native) native=ON ;;
        *) native=OFF ;;
    esac
    cmake -S . -B "build-flags/$c" -DCMAKE_BUILD_TYPE=$type -DRWKV_NATIVE=$native -DRWKV_BUILD_BENCHMARKS=ON \
        -DRWKV_WARNINGS_AS_ERRORS=ON -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "build-flags/$c" -j2 --target rwkv-roofline >/dev/null
done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
    for c in $configs; do
        # Lines: "<shape> bf16 <decode> tok/s ... | prefill512 <prefill> tok/s"
        "build-flags/$c/benchmarks/rwkv-roofline" --shapes "$shapes" --threads "$threads" --no-limits --no-opt-in |
            awk -v c="$c" -v r="$r" '/ bf16 / && !/Eagle/ {
                for (i = 1; i <= NF; ++i) if ($i == "prefill512") p = $(i + 1);
                print r, c, $1, $3, p }' >>"$out"
    done
    r=$((r + 1))
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# Per shape and config: best tok/s over rounds, median over rounds of the ratio to -O3 of the same round.
awk -v configs="$configs" '
    { key = $1 SUBSEP $3; dec[$2, key] = $4; pre[$2, key] = $5; shape[$3] = 1; round[$1] = 1 }
    function median(a, n,    i, j, t) {
        for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        nc = split(configs, cs, " ")
        printf "%-11s %-10s %14s %9s %16s %9s\n", "shape", "build", "decode tok/s", "x -O3", "prefill512 tok/s", "x -O3"
        for (s in shape) for (k = 1; k <= nc; ++k) {
            c = cs[k]; bd = 0; bp = 0; n = 0
            for (r in round) {
                key = r SUBSEP s
                if (!((c, key) in dec) || !(("O3", key) in dec)) continue
                if (dec[c, key] > bd) bd = dec[c, key]
                if (pre[c, key] > bp) bp = pre[c, key]
                ++n; rd[n] = dec[c, key] / dec["O3", key]; rp[n] = pre[c, key] / pre["O3", key]
            }
            printf "%-11s %-10s %14.2f %9.3f %16.1f %9.3f\n", s, c, bd, median(rd, n), bp, median(rp, n)
        }
    }' "$out"
