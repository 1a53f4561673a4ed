#!/usr/bin/env bash
# ppl_table.sh — regenerate the quantized-perplexity table of docs/model.md (and the README).
#
#   scripts/ppl_table.sh [BUILD_DIR]          (default BUILD_DIR=build; needs BUILD_DIR/msbnb)
#
# Model: ../shared/models/stories260K/stories260K.bin (fp32), each of the 7 projections of every
# layer quantized at load with `msbnb perplexity --quant ...`; embedding, norms and the (tied)
# output layer stay fp32. Two texts:
#   valid  ../shared/data/tinystories_valid_head.txt as ONE token stream (no separator), scored in
#          windows of 512 tokens with stride 256 (every token after the first window sees >= 256
#          tokens of context), first PPL_TOKENS tokens (default 40000; 0 = the whole file).
#   sample ../shared/data/tinystories_sample.txt with golden.json's protocol (5 stories split on
#          <|endoftext|>, BOS + dummy prefix, tokens 1..n-1 scored; 1804 tokens).
# INT4 groups run along in_features and must divide it: a group longer than a row becomes the row
# (stories260K's 64-wide layers: g128 -> 64), and down_proj's 172, which neither 64 nor 128
# divides, uses the next even divisor up (g64 -> 86, g128 -> 172, one group per row).
# Results do not depend on the thread count; one thread is used to behave on shared machines.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MSBNB="$BUILD/msbnb"
SHARED="${MSBNB_SHARED_DIR:-$ROOT/../shared}"
MODEL="$SHARED/models/stories260K/stories260K.bin"
VALID="$SHARED/data/tinystories_valid_head.txt"
SAMPLE="$SHARED/data/tinystories_sample.txt"
TOKENS="${PPL_TOKENS:-40000}"

[ -x "$MSBNB" ] || { echo "ppl_table.sh: $MSBNB not found (build first: make build)" >&2; exit 1; }
for f in "$MODEL" "$VALID" "$SAMPLE"; do [ -f "$f" ] || { echo "ppl_table.sh: missing $f" >&2; exit 1; }; done

# run NAME ARGS... -> prints "ppl_valid ppl_sample bytes"
run() {
  local max=()
  [ "$TOKENS" != "0" ] && max=(--max-tokens "$TOKENS")
  local v s
  v=$("$MSBNB" perplexity "$MODEL" "$VALID" --separator '' --window 512 --stride 256 "${max[@]}" --threads 1 "$@" 2>/dev/null)
  s=$("$MSBNB" perplexity "$MODEL" "$SAMPLE" --threads 1 "$@" 2>/dev/null)
  local pv ps bytes
  pv=$(sed -n 's/.*perplexity \([0-9.]*\).*/\1/p' <<<"$v")
  ps=$(sed -n 's/.*perplexity \([0-9.]*\).*/\1/p' <<<"$s")
  bytes=$(sed -n 's/.* weights \([0-9]*\) bytes.*/\1/p' <<<"$s")
  echo "$pv $ps $bytes"
}

configs=(
  "fp32|fp32 (as stored)|"
  "int8|INT8 absmax per row, pure int8 products|--quant int8"
  "int8 t6|INT8 + LLM.int8() threshold 6.0|--quant int8 --threshold 6"
  "nf4|NF4 blocksize 64|--quant nf4"
  "nf4+dq|NF4 blocksize 64 + double quant|--quant nf4 --double-quant"
  "fp4|FP4 blocksize 64|--quant fp4"
  "int4 g128|INT4 group 128 → one group per row here (64; down_proj 172)|--quant int4 --group-size 128"
  "int4 g64|INT4 group 64 (down_proj: 86)|--quant int4 --group-size 64"
  "int4 g32|INT4 group 32 (down_proj: 86)|--quant int4 --group-size 32"
)

tokens_label="first $TOKENS tokens"
[ "$TOKENS" = "0" ] && tokens_label="all tokens"
echo "| format | settings | model weights (KiB) | ppl valid_head ($tokens_label) | Δ vs fp32 | ppl sample (golden protocol) | Δ vs fp32 |"
echo "|---|---|---:|---:|---:|---:|---:|"
base_v=""; base_s=""
for c in "${configs[@]}"; do
  IFS='|' read -r name desc args <<<"$c"
  # shellcheck disable=SC2086
  read -r pv ps bytes <<<"$(run $args)"
  [ -z "$base_v" ] && { base_v=$pv; base_s=$ps; }
  awk -v n="$name" -v d="$desc" -v b="$bytes" -v pv="$pv" -v ps="$ps" -v bv="$base_v" -v bs="$base_s" 'BEGIN {
    printf "| %s | %s | %.1f | %.4f | %+.2f%% | %.4f | %+.2f%% |\n", n, d, b / 1024.0, pv, 100 * (pv / bv - 1), ps, 100 * (ps / bs - 1) }'
done
