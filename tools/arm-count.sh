#!/bin/sh
# Decode's work on ARM, counted instead of timed (there is no ARM machine here; qemu's timings mean
# nothing): cross-compiles tools/peers/ours_decode.cpp for aarch64 with g++ -O2 (no -march: plain
# ARMv8-A + NEON, like a user's build), makes the small random Finch of tools/o2-o3-check.sh (8
# layers, C = 256) in block formats, and counts the guest instructions of a 50-token decode on one
# thread under qemu-user with tools/qemu-insn-count.c (60 minus 10 tokens, so loading drops out).
# With --base REV it does the same for commit REV (a git worktree) and prints the ratio; with --o3
# it also builds this tree at -O3 and prints -O2 ÷ -O3 (issue 9: speed must not depend on -O level).
# --int8 decodes with the opt-in int8 activations; --cpu NAME picks qemu's CPU model (default
# "max", which has every extension, e.g. dotprod; cortex-a53 has none past ARMv8.0).
# Formats rwkv-quantize writes are loaded as stored GGUF files; the others (q2_k q3_k iq4_nl) are
# quantized on load by a Model<format> driver (the same kernels).
#
#   tools/arm-count.sh [--base REV] [--o3] [--int8] [--cpu NAME] [--types q8_0,q4_0,...] [--build DIR]
#
# Needs tools/setup-debian.sh --aarch64 (cross g++, qemu-user, arm64 zlib), gcc, and
# rwkv-quantize in DIR (default: build).
set -eu
usage() { echo "usage: tools/arm-count.sh [--base REV] [--o3] [--int8] [--cpu NAME] [--types q8_0,q4_0,...] [--build DIR]" >&2; exit 2; }
# need OPTION ARGS...: OPTION has a value.
need() { [ $# -ge 2 ] || { echo "arm-count: $1 needs a value" >&2; usage; }; }
build=
base=
o3=0
int8=0
cpu=max
types=q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,q2_k,q3_k,q4_k,q5_k,q6_k
while [ $# -gt 0 ]; do
    case "$1" in
        --base) need "$@"; base=$2; shift 2 ;;
        --o3) o3=1; shift ;;
        --int8) int8=1; shift ;;
        --cpu) need "$@"; cpu=$2; shift 2 ;;
        --types) need "$@"; types=$2; shift 2 ;;
        --build) need "$@"; build=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "arm-count: unknown argument '$1'" >&2; usage ;;
    esac
done
# --build DIR is relative to where the script was run from; everything else (and the default
# build) to the repository root.
case "$build" in /* | '') ;; *) build="$PWD/$build" ;; esac
cd "$(dirname "$0")/.."
[ -n "$build" ] || build=build
command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null ||
    { echo "arm-count: needs qemu-user and g++-aarch64-linux-gnu (tools/setup-debian.sh --aarch64)" >&2; exit 1; }
[ -x "$build/examples/rwkv-quantize" ] || { echo "arm-count: no $build/examples/rwkv-quantize (build first)" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
    [ -n "$base" ] && git worktree remove --force "$work/base" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -shared -fPIC -o "$work/count.so" tools/qemu-insn-count.c
g++ -std=c++20 -O2 -DNDEBUG -I include -I /usr/include/eigen3 tools/peers/make_models.cpp -o "$work/make_models" -lz -pthread
"$work/make_models" 8 256 1024 256 "$work/small" >/dev/null

# file_of TYPE: the GGUF rwkv-quantize writes for TYPE, or nothing (then the typed driver runs).
file_of() {
    case "$1" in
        q8_0|q4_0|q4_1|q5_0|q5_1|q6_k) q=$1 ;;
        q4_k) q=q4_k_m ;;
        q5_k) q=q5_k_m ;;
        *) return 0 ;;
    esac
    [ -f "$work/small-$1.gguf" ] || "$build/examples/rwkv-quantize" --pure "$work/small.safetensors" "$work/small-$1.gguf" "$q" >/dev/null
    echo "$work/small-$1.gguf"
}

# A build is REV-OPT: base-O2 (with --base), head-O2, head-O3 (with --o3).
revs=head-O2
if [ -n "$base" ]; then
    git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
    revs="base-O2 $revs"
fi
[ "$o3" = 1 ] && revs="$revs head-O3"
edit='s/^//'
[ "$int8" = 1 ] && edit='s/m.set_threads(std::atoi(argv\[2\]));/&  m.set_int8_activations(true);/'
sed "$edit" tools/peers/ours_decode.cpp > "$work/decode.cpp"
grep -q set_int8_activations "$work/decode.cpp" || [ "$int8" = 0 ] || { echo "arm-count: could not add int8 mode" >&2; exit 1; }
sed 's/rwkv::Model<rwkv::stored>::load/rwkv::Model<rwkv::RWKV_COUNT_FORMAT>::load/' "$work/decode.cpp" > "$work/typed.cpp"
for rev in $revs; do
    inc=include
    [ "${rev%-*}" = base ] && inc="$work/base/include"
    flags="-std=c++20 -${rev#*-} -DNDEBUG -I /usr/include/eigen3"
    aarch64-linux-gnu-g++ $flags -I "$inc" "$work/decode.cpp" -o "$work/dec_$rev" -lz -pthread
    for t in $(echo "$types" | tr ',' ' '); do
        [ -n "$(file_of "$t")" ] && continue
        aarch64-linux-gnu-g++ $flags -DRWKV_COUNT_FORMAT="$t" -I "$inc" "$work/typed.cpp" -o "$work/dec_${rev}_$t" -lz -pthread
    done
done

# count BINARY MODEL N: guest instructions of BINARY MODEL 1 N (qemu's messages shown if it fails).
count() {
    if ! qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib \
        -plugin "$work/count.so,out=$work/n" "$1" "$2" 1 "$3" >/dev/null 2>"$work/err"; then
        echo >&2
        echo "arm-count: the decode failed under qemu ($1 $2 1 $3):" >&2
        cat "$work/err" >&2
        exit 1
    fi
    cat "$work/n"
}
mode=exact
[ "$int8" = 1 ] && mode="int8 activations"
echo "aarch64 decode, $mode, qemu CPU $cpu, one thread"
printf '%-8s' format
for rev in $revs; do printf ' %12s' "$rev"; done
[ -n "$base" ] && printf '  head÷base'
[ "$o3" = 1 ] && printf '   O2÷O3'
echo '   (instructions per token)'
for t in $(echo "$types" | tr ',' ' ') bf16; do
    f=$(file_of "$t")
    [ "$t" = bf16 ] && f="$work/small.safetensors"
    printf '%-8s' "$t"
    counts=
    for rev in $revs; do
        bin="$work/dec_$rev" model=$f
        [ -z "$f" ] && bin="$work/dec_${rev}_$t" model="$work/small.safetensors"
        hi=$(count "$bin" "$model" 60) || exit 1
        lo=$(count "$bin" "$model" 10) || exit 1
        n=$(( (hi - lo) / 50 ))
        printf ' %12d' "$n"
        counts="$counts $n"
    done
    # shellcheck disable=SC2086
    set -- $counts
    if [ -n "$base" ]; then
        awk -v a="$2" -v b="$1" 'BEGIN { printf "  %9.3f", a / b }'
        shift
    fi
    [ "$o3" = 1 ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "   %.3f", a / b }'
    echo
done
