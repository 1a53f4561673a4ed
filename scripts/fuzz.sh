#!/usr/bin/env bash
# make fuzz: build the libFuzzer targets with clang (ASan + UBSan) and run each for FUZZ_SECONDS
# (default 60) from the seed corpus in tests/fuzz/corpus. New inputs go to a scratch corpus in
# the build directory (the seeds in the repo stay hand-made); crashes are written to
# $BUILD/crashes/ and make this script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-2}
CC=${FUZZ_CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMSBNB_FUZZ=ON \
    -DMSBNB_BUILD_TESTS=OFF -DMSBNB_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_safetensors fuzz_config fuzz_bnb fuzz_llama2c fuzz_tokenizer \
    fuzz_tokenizer_json fuzz_tokenizer_model fuzz_optim_state
mkdir -p "$BUILD/crashes"
status=0
run() { # target seed-dir...
    local t=$1; shift
    local work="$BUILD/corpus-$t"
    mkdir -p "$work"
    echo "=== $t: ${SECONDS_PER_TARGET}s"
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$BUILD/tests/fuzz/$t" \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t-" "$work" "$@" 2>"$BUILD/$t.log"; then
        status=1
        echo "fuzz: $t FAILED (see $BUILD/$t.log and $BUILD/crashes/)"
    fi
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY" "$BUILD/$t.log" || true
}
run fuzz_safetensors tests/fuzz/corpus/safetensors
run fuzz_config tests/fuzz/corpus/config tests/fuzz/corpus/adapter
run fuzz_bnb tests/fuzz/corpus/bnb
run fuzz_llama2c tests/fuzz/corpus/llama2c
run fuzz_tokenizer tests/fuzz/corpus/tokenizer
run fuzz_tokenizer_json tests/fuzz/corpus/tokenizer_json
run fuzz_tokenizer_model tests/fuzz/corpus/tokenizer_model
run fuzz_optim_state tests/fuzz/corpus/optim
if [ "$status" -eq 0 ]; then echo "fuzz: no crashes"; fi
exit $status
