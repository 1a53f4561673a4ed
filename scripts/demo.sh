#!/usr/bin/env bash
# make demo: the main job on the real stories260K model (260K-parameter LLaMA trained on
# TinyStories), with the `msbnb` CLI of the build directory:
#   1. fp32 perplexity on held-out TinyStories text
#   2. NF4 + double quantization and INT8 checkpoints: size on disk and perplexity of each
#   3. a greedy sample from the NF4 model
#   4. QLoRA fine-tuning of the NF4 model on Jane Austen (loss falling, held-out Austen
#      validation perplexity before -> after), adapter saved in PEFT format
#   5. the same sample prompt with the adapter
#   6. `msbnb merge`: the adapter folded into standalone fp32 / re-quantized NF4 checkpoints, and
#      their held-out Austen perplexity next to the base model's
# Budget: under 3 minutes on 2 cores. The model is so small (dim 64) that waking a second thread
# costs more than it saves, and on a shared, loaded machine a spinning OpenMP barrier can cost 10x,
# so the demo runs on one thread by default (MSBNB_THREADS=2 make demo to change; results are
# bit-identical for every thread count).
set -euo pipefail
build=${1:-build}
msbnb="$build/msbnb"
model=../shared/models/stories260K
data=../shared/data
work="$build/demo"
export MSBNB_THREADS=${MSBNB_THREADS:-1}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$MSBNB_THREADS}
STEPS=${DEMO_STEPS:-300}

[ -x "$msbnb" ] || { echo "demo: $msbnb not built (run make)"; exit 1; }
[ -d "$model/hf" ] || { echo "demo: $model/hf missing"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)
section() { printf '\n=== %s (t=%ds)\n' "$1" $(( $(date +%s) - start )); }

# Held-out TinyStories: stories and paragraphs separated by blank lines; the first 12k tokens.
TS="$data/tinystories_valid_head.txt"
ppl() { # MODEL [options] -> "nll ppl" line of msbnb perplexity
  "$msbnb" perplexity "$1" "$TS" --separator '\n\n' --max-tokens 12000 "${@:2}" | grep -i perplexity | tail -1
}
size_of() { du -sb "$1" | cut -f1; }

section "1. stories260K fp32: perplexity on held-out TinyStories"
fp32_line=$(ppl "$model/hf")
echo "$fp32_line"
fp32_size=$(stat -c %s "$model/hf/model.safetensors")

section "2. quantize: NF4 + double quantization, INT8"
"$msbnb" quantize "$model/hf" "$work/nf4dq" --type nf4 --double-quant --quiet
"$msbnb" quantize "$model/hf" "$work/int8" --type int8 --quiet
nf4_line=$(ppl "$work/nf4dq" --tokenizer "$model/tok512.bin")
int8_line=$(ppl "$work/int8" --tokenizer "$model/tok512.bin")
printf '%-10s %12s   %s\n' "format" "bytes" "perplexity (held-out TinyStories, 12k tokens)"
printf '%-10s %12s   %s\n' "fp32" "$fp32_size" "$fp32_line"
printf '%-10s %12s   %s\n' "nf4+dq" "$(stat -c %s "$work/nf4dq/model.safetensors")" "$nf4_line"
printf '%-10s %12s   %s\n' "int8" "$(stat -c %s "$work/int8/model.safetensors")" "$int8_line"
echo "(files include the fp32 embedding, shared by the classifier, which is not quantized)"

PROMPT="It was a truth universally acknowledged"
section "3. sample from the NF4 model before fine-tuning"
"$msbnb" generate "$model/hf" --quant nf4 --double-quant --prompt "$PROMPT" --steps 80 --temp 0

section "4. QLoRA fine-tuning on Jane Austen ($STEPS steps)"
# Training text: the first 1.2 MB of the novels; validation: the 120 kB that follow (held out).
head -c 1200000 "$data/austen.txt" > "$work/austen_train.txt"
head -c 1320000 "$data/austen.txt" | tail -c 120000 > "$work/austen_val.txt"
"$msbnb" finetune "$model/hf" "$work/austen_train.txt" --val "$work/austen_val.txt" --out "$work/adapter" \
  --quant nf4 --double-quant --r 8 --alpha 16 --dropout 0.05 \
  --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
  --lr 4e-3 --steps "$STEPS" --batch 8 --seq 64 --warmup 20 --eval-every 50 --val-windows 96 --seed 1
echo "loss curve: $work/adapter/loss.svg; metrics: $work/adapter/metrics.jsonl"

section "5. the same prompt with the adapter"
"$msbnb" generate "$model/hf" --quant nf4 --double-quant --adapter "austen=$work/adapter" --prompt "$PROMPT" \
  --steps 80 --temp 0

section "6. merge: a standalone checkpoint with the adapter folded in (NF4 re-quantized)"
"$msbnb" merge "$model/hf" "$work/adapter" "$work/merged-nf4" --quant nf4 --double-quant --requantize
"$msbnb" merge "$model/hf" "$work/adapter" "$work/merged-f32" --quant nf4 --double-quant
aval() { "$msbnb" perplexity "$1" "$work/austen_val.txt" --separator '\n\n' --max-tokens 4000 \
           --tokenizer "$model/tok512.bin" "${@:2}" | grep -i perplexity | tail -1; }
echo "held-out Austen, msbnb perplexity (paragraph documents, 4k tokens):"
echo "  base NF4+DQ         $(aval "$model/hf" --quant nf4 --double-quant)"
echo "  merged fp32         $(aval "$work/merged-f32")"
echo "  merged NF4+DQ       $(aval "$work/merged-nf4")"

section "done"
echo "demo finished in $(( $(date +%s) - start ))s"
