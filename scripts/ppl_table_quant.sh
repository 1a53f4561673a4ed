#!/usr/bin/env bash
# ppl_table_quant.sh — regenerate the README's table of quantization methods (docs/quantization.md).
#
#   scripts/ppl_table_quant.sh [BUILD_DIR]      (default BUILD_DIR=build; needs BUILD_DIR/msbnb)
#
# Model: ../shared/models/stories260K/hf (fp32). Each row runs `msbnb quantize` on it (the 7
# projections of every layer; embedding, norms and the tied output stay fp32) and scores the
# written checkpoint with `msbnb perplexity` on held-out text: ../shared/data/tinystories_valid_head.txt
# as one token stream, windows of 512 tokens with stride 256, first PPL_TOKENS tokens (default
# 40000) — the protocol of scripts/ppl_table.sh. Calibration (gptq, awq) reads CALIB_TOKENS (default
# 16384) tokens of CALIB (default ../shared/data/austen.txt, disjoint from the evaluation text;
# CALIB=../shared/data/tinystories_sample.txt, ~1000 tokens, is the other documented choice).
# One thread (the results do not depend on it); the time column is the wall time of the quantize
# command on this machine at that moment.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MSBNB="$BUILD/msbnb"
SHARED="${MSBNB_SHARED_DIR:-$ROOT/../shared}"
MODEL="$SHARED/models/stories260K/hf"
TOK="$SHARED/models/stories260K/tok512.bin"
VALID="$SHARED/data/tinystories_valid_head.txt"
CALIB="${CALIB:-$SHARED/data/austen.txt}"
CALIB_TOKENS="${CALIB_TOKENS:-16384}"
TOKENS="${PPL_TOKENS:-40000}"

[ -x "$MSBNB" ] || { echo "ppl_table_quant.sh: $MSBNB not found (build first: make build)" >&2; exit 1; }
for f in "$MODEL/config.json" "$TOK" "$VALID" "$CALIB"; do [ -f "$f" ] || { echo "ppl_table_quant.sh: missing $f" >&2; exit 1; }; done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export MSBNB_THREADS=1 OMP_WAIT_POLICY=passive

# ppl DIR -> "perplexity"
ppl() {
  "$MSBNB" perplexity "$1" "$VALID" --tokenizer "$TOK" --separator '' --window 512 --stride 256 \
    --max-tokens "$TOKENS" 2>/dev/null | sed -n 's/.*perplexity \([0-9.]*\).*/\1/p'
}
# linear-layer bytes of a checkpoint's 7 projections (weights + their quantization state)
proj_bytes() {
  "$MSBNB" inspect "$1" 2>/dev/null | awk '/_proj\.weight/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $(i+1) == "bytes") s += $i } END { print s + 0 }'
}

configs=(
  "fp32||"
  "nf4|rtn|--type nf4"
  "nf4|search|--type nf4 --method search"
  "nf4|gptq|--type nf4 --method gptq --calibrate"
  "nf4|awq|--type nf4 --method awq --calibrate"
  "nf4|awq+gptq|--type nf4 --method awq+gptq --calibrate"
  "nf4+dq|rtn|--type nf4 --double-quant"
  "nf4+dq|search|--type nf4 --double-quant --method search"
  "nf4+dq|gptq|--type nf4 --double-quant --method gptq --calibrate"
  "fp4|rtn|--type fp4"
  "fp4|search|--type fp4 --method search"
  "fp4|gptq|--type fp4 --method gptq --calibrate"
  "int4 g128|rtn|--type int4 --group-size 128"
  "int4 g128|search|--type int4 --group-size 128 --method search"
  "int4 g128|gptq|--type int4 --group-size 128 --method gptq --calibrate"
)

echo "| format | method | perplexity | Δ vs fp32 | quantize time (s) |"
echo "|---|---|---:|---:|---:|"
base=""
for c in "${configs[@]}"; do
  IFS='|' read -r fmt meth args <<<"$c"
  dir="$MODEL"
  secs="—"
  if [ -n "$args" ]; then
    dir="$WORK/q"
    rm -rf "$dir"
    # shellcheck disable=SC2206
    a=($args)
    [ "${a[-1]}" = "--calibrate" ] && a+=("$CALIB" --calib-tokens "$CALIB_TOKENS")
    t0=$(date +%s.%N)
    "$MSBNB" quantize "$MODEL" "$dir" "${a[@]}" --quiet
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  fi
  p=$(ppl "$dir")
  [ -z "$base" ] && base=$p
  awk -v f="$fmt" -v m="${meth:-—}" -v p="$p" -v b="$base" -v s="$secs" 'BEGIN {
    d = (p == b) ? "—" : sprintf("%+.2f %%", 100 * (p / b - 1))
    printf "| %s | %s | %.4f | %s | %s |\n", f, m, p, d, s }'
done
echo
echo "Calibration: $(basename "$CALIB"), up to $CALIB_TOKENS tokens; evaluation: first $TOKENS tokens of $(basename "$VALID")."
