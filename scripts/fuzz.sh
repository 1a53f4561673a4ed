#!/usr/bin/env bash
# make fuzz: build the libFuzzer targets with clang (ASan + UBSan) and run each for FUZZ_SECONDS
# (default 60) from the seed corpus in tests/fuzz/corpus. New inputs go to a scratch corpus in
# the build directory (the seeds in the repo stay hand-made); crashes are written to
# $BUILD/crashes/ and make this script exit non-zero.
#
# For a campaign: FUZZ_RUNS=N stops each target's main run after N executions (whichever of N and
# FUZZ_SECONDS comes first), FUZZ_TARGETS="fuzz_bnb fuzz_config" runs only those, and the end
# prints one line per run (executions, exec/s, seconds, peak RSS) and appends it to
# $BUILD/fuzz-summary.txt, the figures docs/io.md quotes. Temporary files go to /dev/shm when it
# is writable (see fuzz_scratch_dir in tests/fuzz/fuzz_targets.c).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:--1}
ONLY=${FUZZ_TARGETS:-}
JOBS=${JOBS:-2}
CC=${FUZZ_CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMSBNB_FUZZ=ON \
    ${FUZZ_SANITIZERS:+-DMSBNB_FUZZ_SANITIZERS=$FUZZ_SANITIZERS} \
    -DMSBNB_BUILD_TESTS=OFF -DMSBNB_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_safetensors fuzz_config fuzz_bnb fuzz_llama2c fuzz_tokenizer \
    fuzz_tokenizer_json fuzz_tokenizer_model fuzz_optim_state fuzz_train_state fuzz_adapter_dir fuzz_large_seeds \
    fuzz_chat_template
# Large generated seeds (MB-sized headers, configs, patterns), so the fuzzers reach the sizes where a
# quadratic parser shows: after each target's main run (inputs up to 64 KB, for throughput), a
# second run of FUZZ_LARGE_SECONDS (default 20) starts from them with -max_len FUZZ_MAX_LEN
# (default 8 MiB); -timeout (30 s there) turns a quadratic path into a failure.
# per invocation, so two campaigns can share one build directory
LARGE="$BUILD/large-seeds.$$"
trap 'rm -rf "$LARGE"' EXIT
rm -rf "$LARGE"
"$BUILD/tests/fuzz/fuzz_large_seeds" "$LARGE"
MAX_LEN=${FUZZ_MAX_LEN:-8388608}
LARGE_SECONDS=${FUZZ_LARGE_SECONDS:-20}
mkdir -p "$BUILD/crashes"
status=0
fuzz_one() { # log-name seconds max-len timeout target corpus-dir...
    local log=$1 secs=$2 len=$3 tmo=$4 t=$5; shift 5
    local runs=-1
    case "$log" in *-large) ;; *) runs=$RUNS ;; esac
    local t0=$(date +%s)
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$BUILD/tests/fuzz/$t" \
        -max_total_time="$secs" -runs="$runs" -max_len="$len" -timeout="$tmo" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t-" "$@" 2>"$BUILD/$log.log"; then
        status=1
        echo "fuzz: $log FAILED (see $BUILD/$log.log and $BUILD/crashes/)"
    fi
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY" "$BUILD/$log.log" || true
    local execs rate rss
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/$log.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$BUILD/$log.log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$BUILD/$log.log")
    printf '%-26s %12s execs %8s exec/s %6s s %6s MB  max_len %s  %s\n' "$log" "${execs:-?}" "${rate:-?}" \
        "$(($(date +%s) - t0))" "${rss:-?}" "$len" "$(date -u +%FT%TZ)" | tee -a "$BUILD/fuzz-summary.txt"
}
run() { # target seed-dir... [large-seed-dir last, when the target has one]
    local t=$1; shift
    if [ -n "$ONLY" ] && ! [[ " $ONLY " == *" $t "* ]]; then return 0; fi
    local work="$BUILD/corpus-$t" large=""
    mkdir -p "$work"
    case "${@: -1}" in "$LARGE"/*) large=${@: -1}; set -- "${@:1:$(($# - 1))}" ;; esac
    echo "=== $t: ${SECONDS_PER_TARGET}s, inputs up to 64 KB"
    fuzz_one "$t" "$SECONDS_PER_TARGET" 65536 10 "$t" "$work" "$@"
    if [ -n "$large" ]; then
        echo "=== $t: ${LARGE_SECONDS}s from the large seeds, inputs up to $MAX_LEN bytes"
        mkdir -p "$work-large"
        # 30 s per input: MB-sized inputs under ASan on a busy host take seconds when linear; a
        # quadratic path takes hours
        fuzz_one "$t-large" "$LARGE_SECONDS" "$MAX_LEN" 30 "$t" "$work-large" "$large"
    fi
}
run fuzz_safetensors tests/fuzz/corpus/safetensors "$LARGE/safetensors"
run fuzz_config tests/fuzz/corpus/config tests/fuzz/corpus/adapter "$LARGE/config"
run fuzz_bnb tests/fuzz/corpus/bnb
run fuzz_llama2c tests/fuzz/corpus/llama2c
run fuzz_tokenizer tests/fuzz/corpus/tokenizer
run fuzz_tokenizer_json tests/fuzz/corpus/tokenizer_json
run fuzz_tokenizer_model tests/fuzz/corpus/tokenizer_model
run fuzz_optim_state tests/fuzz/corpus/optim
run fuzz_train_state tests/fuzz/corpus/state "$LARGE/state"
run fuzz_adapter_dir tests/fuzz/corpus/adapter_dir "$LARGE/adapter_dir"
run fuzz_chat_template tests/fuzz/corpus/chat_template
if [ "$status" -eq 0 ]; then echo "fuzz: no crashes"; fi
exit $status
