#!/bin/sh
# Applies .clang-format to every C/C++ file in the repository (clang-format 14, Debian's
# clang-format package). `tools/format.sh --check` only reports files that would change.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.hpp' '*.cpp' '*.h' '*.c' '*.cuh' '*.cu' | grep -v '^tests/fuzz/corpus/')
if [ "${1:-}" = "--check" ]; then
    clang-format --dry-run --Werror $files
else
    clang-format -i $files
fi
