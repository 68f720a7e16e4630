#!/usr/bin/env bash
# Long fuzz campaign: builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each for SECONDS seconds (default 3600) at nice 19, JOBS targets at a time (default 1),
# growing a working corpus in build-fuzz/campaign/<name>/ (seeded from tests/fuzz/corpus/<name>
# and the fixture-derived seeds). Crashes land in build-fuzz/campaign/crashes/<name>/; copy a
# minimised one into tests/fuzz/regressions/<name>/ with a test for the fix. A summary line per
# target (executions, coverage, findings) is printed at the end and kept in campaign/summary.txt.
#
#   tools/fuzz-campaign.sh [-t SECONDS] [-j JOBS] [TARGET...]      (targets: zip pickle pth ...)
#   CI uses:  tools/fuzz-campaign.sh -t 30 -j 2
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=3600 jobs=1
while getopts "t:j:" opt; do
    case $opt in
        t) seconds=$OPTARG ;;
        j) jobs=$OPTARG ;;
        *) echo "usage: $0 [-t SECONDS] [-j JOBS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.cpp; do n=$(basename "$f" .cpp); targets+=("${n#fuzz_}"); done
fi

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRWKV_FUZZ=ON -DRWKV_CUDA=OFF \
    -DRWKV_WARNINGS_AS_ERRORS=ON -DRWKV_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j2 --target "${targets[@]/#/fuzz_}"

out=build-fuzz/campaign
mkdir -p "$out"
run_one() {
    local name=$1 work=$out/$1 crashes=$out/crashes/$1 dict=()
    mkdir -p "$work" "$crashes"
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    local seeds=(tests/fuzz/corpus/"$name" tests/fuzz/regressions/"$name" build-fuzz/tests/fuzz/seeds/"$name")
    local existing=()
    for s in "${seeds[@]}"; do [ -d "$s" ] && existing+=("$s"); done
    # -rss_limit_mb/-malloc_limit_mb: a single input asking for gigabytes is a finding too.
    local status=0
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        nice -n 19 "build-fuzz/tests/fuzz/fuzz_$name" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$work" "${existing[@]}" >"$out/$name.log" 2>&1 || status=$?
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$name.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$out/$name.log" | tail -1 | grep -o '[0-9]*' || echo "?")
    local findings
    findings=$(find "$crashes" -type f | wc -l)
    printf '%-12s executions %-10s cov %-6s findings %s%s\n' "$name" "$execs" "$cov" "$findings" \
        "$([ $status -ne 0 ] && echo " (exit $status, see $out/$name.log)")" | tee -a "$out/summary.txt"
    if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
        # CI keeps only what is printed: the sanitizer's report and each finding's bytes (base64,
        # to replay with `base64 -d > file && build-fuzz/tests/fuzz/fuzz_NAME file`).
        { echo "---- $name: end of $out/$name.log"; tail -n 60 "$out/$name.log"
          for f in "$crashes"/*; do
              [ -f "$f" ] || continue
              echo "---- $name finding $(basename "$f") ($(stat -c %s "$f") bytes), base64:"
              head -c 65536 "$f" | base64
          done; } >&2
    fi
    return $status
}

fail=0
pids=()
for name in "${targets[@]}"; do
    run_one "$name" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
