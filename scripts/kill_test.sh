#!/usr/bin/env bash
# kill_test.sh [N] [BUILD] — kill -9 `msbnb quantize`, `merge` and `finetune` at random moments, N
# trials each (default 3, as CI runs it; by hand: scripts/kill_test.sh 25), and check after each:
#   - no partial output stands under a final name: the output directory is either the previous
#     output, byte for byte, or the complete new one (a killed run may leave only a temporary
#     .msbnb-tmp-* entry, which the next run removes);
#   - finetune into a previous output: that output intact, or one whole save of the new run (adapter,
#     checkpoint/, metrics.jsonl, loss.svg of one step); `--resume` then either refuses (exit 1, one
#     line) or ends with the uninterrupted run's adapter, byte for byte.
# Prints the counts per command; exits non-zero on any violation.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
BUILD=${2:-build}
msbnb=$PWD/$BUILD/msbnb
shared=${MSBNB_SHARED:-$PWD/../shared}
m=$shared/models/stories260K/hf
[ -x "$msbnb" ] || { echo "kill_test: build first (no $msbnb)"; exit 2; }
export OMP_WAIT_POLICY=passive
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
violations=0
violation() { violations=$((violations + 1)); echo "VIOLATION: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# sleep a random fraction of $1 ms (0..110%), kill -9 the pid $2 if still running; 1 if it was killed
kill_at_random() {
    local ms=$(( ($1 * (RANDOM % 1100)) / 1000 ))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    if kill -9 "$2" 2>/dev/null; then wait "$2" 2>/dev/null; return 0; fi
    wait "$2" 2>/dev/null
    return 1
}
leftovers() { ls -a "$w" | grep -c 'msbnb-tmp' || true; }

head -c 100000 "$shared/data/austen.txt" >"$w/a.txt"
ft_opts=(--steps 16 --batch 2 --seq 32 --eval-every 2 --quiet)
"$msbnb" finetune "$m" "$w/a.txt" --out "$w/adapter" "${ft_opts[@]}" >/dev/null || exit 1

# ---------------------------------------------------------------- quantize and merge
# trial CMD-NAME PREV REF -- command...: the output $w/out starts as a copy of PREV; the command
# writes REF's content when complete.
dir_trials() {
    local name=$1 prev=$2 ref=$3; shift 4
    local t0 dur killed=0 intact=0 complete=0
    t0=$(now_ms); "$@" >/dev/null 2>&1; dur=$(( $(now_ms) - t0 + 20 ))
    for i in $(seq "$N"); do
        rm -rf "$w/out"; cp -r "$prev" "$w/out"
        "$@" >/dev/null 2>&1 &
        if kill_at_random "$dur" $!; then killed=$((killed + 1)); fi
        if diff -r "$w/out" "$prev" >/dev/null 2>&1; then intact=$((intact + 1))
        elif diff -r "$w/out" "$ref" >/dev/null 2>&1; then complete=$((complete + 1))
        else violation "$name trial $i: $w/out is neither the previous output nor the complete new one"; fi
        # the next run completes, replaces the output and removes stale temporaries
        "$@" >/dev/null 2>&1 || violation "$name trial $i: the next run failed"
        diff -r "$w/out" "$ref" >/dev/null 2>&1 || violation "$name trial $i: the next run's output differs"
        [ "$(leftovers)" = 0 ] || violation "$name trial $i: temporaries left after a complete run"
    done
    echo "$name: $N trials, $killed killed while running: previous output intact $intact, complete new output $complete"
}
"$msbnb" quantize "$m" "$w/q_prev" --type int8 --quiet
"$msbnb" quantize "$m" "$w/q_ref" --type nf4 --double-quant --quiet
dir_trials quantize "$w/q_prev" "$w/q_ref" -- "$msbnb" quantize "$m" "$w/out" --type nf4 --double-quant --quiet
"$msbnb" merge "$m" "$w/adapter" "$w/m_prev" >/dev/null
"$msbnb" merge "$m" "$w/adapter" "$w/m_ref" --quant nf4 --requantize >/dev/null
dir_trials merge "$w/m_prev" "$w/m_ref" -- "$msbnb" merge "$m" "$w/adapter" "$w/out" --quant nf4 --requantize

# ---------------------------------------------------------------- finetune + --resume
# ADAPTER_DIR is one unit (tools/msbnb/cli_train_out.h): each trial starts from a previous output
# of other options (r 4), so a kill leaves either that, byte for byte, or a whole save of the new
# run: top-level adapter = checkpoint's, the new run's config, metrics.jsonl ending at the
# checkpoint's step, loss.svg.
t0=$(now_ms); "$msbnb" finetune "$m" "$w/a.txt" --out "$w/ft_ref" "${ft_opts[@]}" >/dev/null; dur=$(( $(now_ms) - t0 ))
cmp -s "$w/ft_ref/adapter_model.safetensors" "$w/adapter/adapter_model.safetensors" ||
    violation "finetune is not deterministic: two uninterrupted runs differ"
"$msbnb" finetune "$m" "$w/a.txt" --out "$w/ft_prev" --r 4 --steps 4 --batch 2 --seq 32 --quiet >/dev/null
# whole_save DIR TRIAL: DIR is one complete save of the run ft_ref is the end of
whole_save() {
    local d=$1 i=$2 f step last
    for f in adapter_config.json adapter_model.safetensors metrics.jsonl loss.svg checkpoint/adapter_config.json \
             checkpoint/adapter_model.safetensors checkpoint/optimizer.bin checkpoint/state.json; do
        [ -s "$d/$f" ] || { violation "finetune trial $i: $f missing or empty"; return; }
    done
    cmp -s "$d/adapter_config.json" "$w/ft_ref/adapter_config.json" ||
        violation "finetune trial $i: adapter_config.json is not the new run's"
    for f in adapter_config.json adapter_model.safetensors; do
        cmp -s "$d/$f" "$d/checkpoint/$f" || violation "finetune trial $i: $f differs from checkpoint/$f"
    done
    step=$(sed 's/^{"step": \([0-9]*\),.*/\1/' "$d/checkpoint/state.json")
    last=$(tail -n 1 "$d/metrics.jsonl" | sed 's/^{"step": \([0-9]*\),.*/\1/')
    [ "$step" = "$last" ] || violation "finetune trial $i: metrics.jsonl ends at step $last, the checkpoint is at $step"
    [ -z "$(find "$d" -name '*msbnb-tmp*')" ] || violation "finetune trial $i: temporary files inside $d"
}
whole_save "$w/ft_ref" ref
killed=0 same=0 refused=0 intact=0
for i in $(seq "$N"); do
    rm -rf "$w/ft"; cp -r "$w/ft_prev" "$w/ft"
    "$msbnb" finetune "$m" "$w/a.txt" --out "$w/ft" "${ft_opts[@]}" >/dev/null 2>&1 &
    if kill_at_random "$dur" $!; then killed=$((killed + 1)); fi
    if diff -r "$w/ft" "$w/ft_prev" >/dev/null 2>&1; then
        # killed before its first save: the previous output stands; a fresh run replaces it
        intact=$((intact + 1))
        "$msbnb" finetune "$m" "$w/a.txt" --out "$w/ft" "${ft_opts[@]}" >/dev/null 2>&1 ||
            violation "finetune trial $i: the fresh run after the kill failed"
        cmp -s "$w/ft/adapter_model.safetensors" "$w/ft_ref/adapter_model.safetensors" ||
            violation "finetune trial $i: the fresh run after the kill differs from the uninterrupted one"
        whole_save "$w/ft" "$i"
    else
        whole_save "$w/ft" "$i"
        rc=0
        "$msbnb" finetune "$m" "$w/a.txt" --out "$w/ft" --resume "$w/ft" "${ft_opts[@]}" >/dev/null 2>"$w/err" || rc=$?
        if [ $rc = 0 ]; then
            if cmp -s "$w/ft/adapter_model.safetensors" "$w/ft_ref/adapter_model.safetensors"; then same=$((same + 1))
            else violation "finetune trial $i: --resume exited 0 with a different adapter"; fi
            whole_save "$w/ft" "$i"
        elif [ $rc = 1 ] && [ "$(wc -l <"$w/err")" = 1 ]; then
            refused=$((refused + 1))
        else
            violation "finetune trial $i: --resume exit $rc with $(wc -l <"$w/err") error lines"
        fi
    fi
    [ "$(leftovers)" = 0 ] || violation "finetune trial $i: temporaries left after a complete run"
done
echo "finetune: $N trials, $killed killed while running: previous output intact (then replaced by a fresh run)" \
     "$intact, resume identical to the uninterrupted run $same, resume refused $refused"
echo "kill_test: $violations violations"
[ $violations = 0 ]
