#!/bin/sh
# Decode's work at -O2 against -O3, counted instead of timed (issue 9: "every figure at -O2 within
# 5 % of -O3"; this VM's timings swing by more than that). Compiles tools/peers/ours_decode.cpp with
# the system g++ at -O2 and at -O3 (no -march, like a user's build), makes a small random Finch
# (8 layers, C = 256, vocabulary 256: its weights stay in cache, so decode is compute-bound) in bf16
# and in a few block formats, and counts the instructions of a 50-token decode on one thread under
# valgrind's callgrind (the counts of 60 minus 10 tokens, so loading drops out). Valgrind runs the
# AVX2 leaves (it has no AVX-512) and, with RWKV_ISA=generic, the generic leaves, the path ARM takes.
# Prints per model and path: instructions at -O2, at -O3, and their ratio; then the functions whose
# counts differ most. A ratio near 1.000 means the same work; the AVX-512 leaves are checked by
# timing instead (bench_matvec_quant BM_hot, bench_wkv, in cache).
#
#   tools/o2-o3-check.sh [--build DIR] [--types q8_0,q4_0,q6_k]
#
# Needs valgrind (apt-get install valgrind), zlib, and rwkv-quantize in DIR (default: build).
set -eu
cd "$(dirname "$0")/.."
build=build
types=q8_0,q4_0,q6_k
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --types) types=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: tools/o2-o3-check.sh [--build DIR] [--types q8_0,q4_0,q6_k]" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "o2-o3-check: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -x "$build/examples/rwkv-quantize" ] || { echo "o2-o3-check: no $build/examples/rwkv-quantize (build first)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags="-std=c++20 -DNDEBUG -I include -I /usr/include/eigen3"
g++ $flags tools/peers/make_models.cpp -O2 -o "$work/make_models" -lz -pthread
g++ $flags tools/peers/ours_decode.cpp -O2 -o "$work/dec_O2" -lz -pthread &
g++ $flags tools/peers/ours_decode.cpp -O3 -o "$work/dec_O3" -lz -pthread
wait
"$work/make_models" 8 256 1024 256 "$work/small" >/dev/null
models="$work/small.safetensors"
for t in $(echo "$types" | tr ',' ' '); do
    "$build/examples/rwkv-quantize" --pure "$work/small.safetensors" "$work/small-$t.gguf" "$t" >/dev/null
    models="$models $work/small-$t.gguf"
done

for m in $models; do
    for path in avx2 generic; do
        for c in O2 O3; do
            for n in 10 60; do
                RWKV_ISA=$path valgrind --tool=callgrind --callgrind-out-file="$work/$c.$n.out" \
                    "$work/dec_$c" "$m" 1 "$n" >/dev/null 2>&1
            done
        done
        python3 - "$work" "$(basename "$m")" "$path" <<'EOF'
import re, subprocess, sys
work, model, path = sys.argv[1:4]
def per_function(f):
    out = subprocess.run(['callgrind_annotate', '--threshold=100', f], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+\([^)]*\)\s+\S*?:(.*)', line)
        if m:
            name = re.sub(r'\(.*', '', re.sub(r' \[/.*\]$', '', m.group(2)))
            d[name] = d.get(name, 0) + int(m.group(1).replace(',', ''))
    return d
decode = {}
for c in ('O2', 'O3'):
    a, b = per_function(f'{work}/{c}.60.out'), per_function(f'{work}/{c}.10.out')
    decode[c] = {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}
t2, t3 = sum(decode['O2'].values()), sum(decode['O3'].values())
print(f'{model:24s} {path:8s} -O2 {t2:>14,}  -O3 {t3:>14,}  ratio {t2 / t3:.3f}')
rows = sorted(((decode['O2'].get(k, 0) - decode['O3'].get(k, 0), k) for k in set(decode['O2']) | set(decode['O3'])),
              key=lambda r: -abs(r[0]))
for d, k in rows[:3]:
    if abs(d) > 0.005 * t3:
        print(f'    {d:>+14,}  {k[-110:]}')
EOF
    done
done
