#!/usr/bin/env bash
# Side-by-side decode campaign against rwkv.cpp and llama.cpp (issue 9's "judge by interleaved
# rounds against a peer"): the same random Finch model in each engine's own file (bf16 safetensors
# for this library, rwkv.cpp's v101 .bin, a GGUF written by rwkv-quantize for llama.cpp; Q8_0 and
# Q4_0 through each engine's own quantizer where it has one), every run a fresh process, the
# engines interleaved within each round so that a shared machine's load hits them alike.
#
# The peers are built outside this repository from their own sources (not fetched by this script;
# the README's figures used rwkv.cpp 4358e70 with ggml c8bd0fe, and llama.cpp c392e50):
#   RWKVCPP=/path/to/rwkv.cpp    (with its ggml submodule; built here, -j2, with -DRWKV_NATIVE=ON
#                                 when RWKVCPP/build/librwkv.so is missing)
#   LLAMACPP=/path/to/llama.cpp  (built here, -j2, when build/bin/llama-bench is missing; -DGGML_NATIVE=ON)
# Usage:
#   RWKVCPP=... LLAMACPP=... tools/peer-campaign.sh [--work DIR] [--rounds R] [--tokens N]
#       [--threads T] [--shapes "1b6 0b4"] [--types "F16 Q8_0 Q4_0"]      (shapes: 0b4 1b6 3b)
# Needs this repository's build/ (rwkv-quantize), ../shared/fixtures/rwkv_vocab_v20230424.txt (the
# GGUFs embed the World vocabulary, which llama.cpp requires), g++/gcc, python3 (the summary), and
# disk in --work (default /tmp/rwkv-peers): per shape the bf16 safetensors, the rwkv.cpp FP16 .bin
# and one GGUF per type, plus rwkv.cpp's quantized .bin files — about 14 GB for 1b6 + 0b4.
# "ours" is the exact path (Model<rwkv::stored>, no opt-in mode); the peers use their defaults
# (8-bit activations for quantized weights). llama-bench's CSV is read by its avg_ts column, the
# second to last in the llama.cpp version above.
# Prints one CSV line per run, then per shape/type/engine the median tok/s and ours ÷ peer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=/tmp/rwkv-peers rounds=3 tokens=32 threads=2 shapes="1b6 0b4" types="F16 Q8_0 Q4_0"
while [ $# -gt 0 ]; do
    case $1 in
        --work) work=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --tokens) tokens=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --shapes) shapes=$2; shift 2 ;;
        --types) types=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
: "${RWKVCPP:?set RWKVCPP to an rwkv.cpp checkout}" "${LLAMACPP:?set LLAMACPP to a llama.cpp checkout}"
vocab=$root/../shared/fixtures/rwkv_vocab_v20230424.txt
quantize=$root/build/examples/rwkv-quantize
[ -x "$quantize" ] || { echo "build this repository first (build/examples/rwkv-quantize)" >&2; exit 1; }
[ -f "$vocab" ] || { echo "missing $vocab (the World vocabulary, from ../shared/fixtures)" >&2; exit 1; }
mkdir -p "$work"

# Peers and harnesses. rwkv.cpp's own tests/extras need its LFS model files, so only the library.
[ -f "$RWKVCPP/build/librwkv.so" ] || {
    cmake -S "$RWKVCPP" -B "$RWKVCPP/build" -DCMAKE_BUILD_TYPE=Release -DRWKV_NATIVE=ON -DRWKV_BUILD_SHARED_LIBRARY=ON
    cmake --build "$RWKVCPP/build" -j2 --target rwkv
}
[ -x "$LLAMACPP/build/bin/llama-bench" ] || {
    cmake -S "$LLAMACPP" -B "$LLAMACPP/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
    cmake --build "$LLAMACPP/build" -j2 --target llama-bench
}
# Ours at -O2 without -march=native: a distribution's flags (the kernels pick the ISA at run time).
inc="-I$root/include -I/usr/include/eigen3"
g++ -std=c++20 -O2 $inc tools/peers/ours_decode.cpp -o "$work/ours_decode" -lz -lpthread
g++ -std=c++20 -O2 $inc tools/peers/make_models.cpp -o "$work/make_models" -lz -lpthread
gcc -O2 -I"$RWKVCPP" tools/peers/rwkvcpp_decode.c -L"$RWKVCPP/build" -lrwkv -Wl,-rpath,"$RWKVCPP/build" \
    -o "$work/rwkvcpp_decode"

declare -A dims=([0b4]="24 1024 3584 65536" [1b6]="24 2048 7168 65536" [3b]="32 2560 8960 65536")
for s in $shapes; do
    m=$work/finch-$s
    # shellcheck disable=SC2086
    [ -f "$m.safetensors" ] || "$work/make_models" ${dims[$s]} "$m"
    for t in $types; do
        lower=$(echo "$t" | tr 'A-Z' 'a-z')
        [ -f "$m-$t.gguf" ] || "$quantize" --vocab "$vocab" "$m.safetensors" "$m-$t.gguf" "$lower"
        [ "$t" = F16 ] || [ -f "$m-rwkvcpp-$t.bin" ] ||
            "$work/rwkvcpp_decode" quantize "$m-rwkvcpp-FP16.bin" "$m-rwkvcpp-$t.bin" "$t" >/dev/null
    done
done

csv=$work/campaign-$(date +%Y%m%d-%H%M%S).csv
echo "round,shape,type,engine,tok_s" | tee "$csv"
run() {  # engine shape type -> tok/s (empty on failure; its stderr kept in $work/last-error.txt)
    local m=$work/finch-$2
    case $1 in
        ours) if [ "$3" = F16 ]; then "$work/ours_decode" "$m.safetensors" "$threads" "$tokens"
              else "$work/ours_decode" "$m-$3.gguf" "$threads" "$tokens"; fi ;;
        rwkvcpp) "$work/rwkvcpp_decode" "$m-rwkvcpp-${3/#F16/FP16}.bin" "$threads" "$tokens" ;;
        llamacpp) "$LLAMACPP/build/bin/llama-bench" -m "$m-$3.gguf" -p 0 -n "$tokens" -t "$threads" -r 1 -o csv |
                  tail -1 | tr -d '"' | awk -F, '{print $(NF-1)}' ;;
    esac 2>"$work/last-error.txt"
}
for r in $(seq 1 "$rounds"); do
    for s in $shapes; do
        for t in $types; do
            for e in ours rwkvcpp llamacpp; do echo "$r,$s,$t,$e,$(run $e $s $t || true)" | tee -a "$csv"; done
        done
    done
done
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for key in {(r["shape"], r["type"], r["engine"]) for r in rows}:
    v = [float(r["tok_s"]) for r in rows if (r["shape"], r["type"], r["engine"]) == key and r["tok_s"]]
    med[key] = statistics.median(v) if v else float("nan")
print("\nshape  type   ours   rwkv.cpp  llama.cpp  ours/rwkv.cpp  ours/llama.cpp   (median tok/s)")
for s, t in sorted({(k[0], k[1]) for k in med}):
    o, r, l = (med.get((s, t, e), float("nan")) for e in ("ours", "rwkvcpp", "llamacpp"))
    print(f"{s:5}  {t:5} {o:6.2f}  {r:8.2f}  {l:9.2f}  {o / r:13.2f}  {o / l:14.2f}")
PY
echo "runs: $csv"
