#!/bin/sh
# robust_cli.sh MSBNB SHARED [sanitized] — regression tests of the audit's CLI defects (issue #15), each run as a
# user would: exit codes, one-line errors, outputs that are whole or absent, resumes that match.
set -u
msbnb=$1
shared=$2
sanitized=${3:-}  # a sanitizer build maps terabytes of shadow memory: no ulimit -v checks
m=$shared/models/stories260K/hf
tok=$shared/models/stories260K/tok512.bin
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fails=0
pass=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# run CMD...: exit code in $rc, stderr line count in $lines
run() { rc=0; "$@" >"$w/out" 2>"$w/err" || rc=$?; lines=$(wc -l <"$w/err"); }
nolefts() { ! ls -a "$1" | grep -q 'msbnb-tmp'; } # directory (.msbnb-tmp-*) and file (.*.msbnb-tmp-*) temporaries

head -c 100000 "$shared/data/austen.txt" >"$w/a.txt"
ft() { "$msbnb" finetune "$m" "$w/a.txt" --steps 12 --batch 2 --seq 32 --eval-every 4 --quiet "$@"; }

# ---- defect 5: the adapter, optimizer and state of a checkpoint are one unit
ft --out "$w/full" >/dev/null
ft --out "$w/part" --stop-at 8 >/dev/null
ft --out "$w/other" --seed 9 --stop-at 4 >/dev/null
# a kill between the adapter and the rest used to leave a newer adapter beside older optimizer
# state; the top-level adapter is now never what --resume reads
cp "$w/other/adapter_model.safetensors" "$w/part/adapter_model.safetensors"
ft --out "$w/part" --resume "$w/part" >/dev/null
check "resume from the checkpoint unit equals the uninterrupted run" \
  'cmp -s "$w/full/adapter_model.safetensors" "$w/part/adapter_model.safetensors"'
check "metrics.jsonl after resume has each step once" \
  '[ "$(grep -c "\"step\": 8," "$w/part/metrics.jsonl")" = 1 ] && [ "$(grep -c "\"step\": 12," "$w/part/metrics.jsonl")" = 1 ]'

# ---- defect 12: state.json checks (each refused with one line, exit 1)
st="$w/part/checkpoint/state.json"
cp "$st" "$w/state.good"
for edit in 's/"rng": "[0-9a-f]*"/"rng": "-000000000000001"/' 's/"rng": "[0-9a-f]*"/"rng": "0x00000000000001"/' \
            's/"step": 12/"step": 13/' 's/"step": 12/"step": 2147483647/' 's/"batch": 2/"batch": 4/' \
            's/"seq": 32/"seq": 2147483647/' 's/"dropout_step": 12/"dropout_step": 11/'; do
  sed "$edit" "$w/state.good" >"$st"
  run ft --out "$w/part" --resume "$w/part"
  check "state.json edit $edit refused" '[ $rc = 1 ] && [ $lines = 1 ]'
done
cp "$w/state.good" "$st"

# ---- defect 9: divergence stops the run, no NaN in JSON, the last save kept as it was
ft --out "$w/nan" --stop-at 4 >/dev/null
cp -r "$w/nan" "$w/nan.before"
run ft --out "$w/nan" --resume "$w/nan" --lr 1e30
check "--lr 1e30 stops with exit 1 and one line" '[ $rc = 1 ] && [ $lines = 1 ] && grep -q diverged "$w/err"'
check "the diverged run leaves the last save intact" 'diff -r "$w/nan" "$w/nan.before" >/dev/null && nolefts "$w"'
check "metrics.jsonl holds no NaN" '! grep -qi nan "$w/nan/metrics.jsonl"'
run ft --out "$w/nan2" --lr 1e30
check "a fresh run that diverges before its first save writes nothing" '[ $rc = 1 ] && [ ! -e "$w/nan2" ] && nolefts "$w"'

# ---- atomic finetune output: ADAPTER_DIR is one unit (tools/msbnb/cli_train_out.h)
cp -r "$w/full" "$w/full.before"
run ft --out "$w/full" --lr 1e30
check "a fresh run that fails leaves the previous output intact" \
  '[ $rc = 1 ] && diff -r "$w/full" "$w/full.before" >/dev/null && nolefts "$w"'
check "the top-level adapter is the checkpoint's" \
  'cmp -s "$w/full/adapter_model.safetensors" "$w/full/checkpoint/adapter_model.safetensors" && [ -s "$w/full/loss.svg" ]'
ft --out "$w/full" --r 4 --steps 4 >/dev/null
check "a fresh run replaces the previous output whole" \
  'grep -q "\"r\": 4" "$w/full/adapter_config.json" && [ "$(grep -c step "$w/full/metrics.jsonl")" = 5 ] && nolefts "$w"'
mkdir -p "$w/inside"
cp "$w/a.txt" "$w/inside/a.txt"
run "$msbnb" finetune "$m" "$w/inside/a.txt" --out "$w/inside" --steps 2 --quiet
check "finetune --out over its own input is refused" '[ $rc = 1 ] && [ $lines = 1 ] && [ -f "$w/inside/a.txt" ]'
run ft --out "$w/part/checkpoint" --resume "$w/part"
check "finetune --out over the checkpoint it resumes is refused" '[ $rc = 1 ] && [ $lines = 1 ]'

# ---- defect 12: metrics.jsonl survives a kill (committed at every evaluation with the checkpoint)
"$msbnb" finetune "$m" "$w/a.txt" --steps 400 --batch 2 --seq 32 --eval-every 2 --quiet --out "$w/k" >/dev/null 2>&1 &
kp=$!
# (until the first save, however slow a loaded host is; then a moment more into the run)
while kill -0 $kp 2>/dev/null && [ ! -s "$w/k/checkpoint/state.json" ]; do sleep 0.1; done
sleep 0.5
kill -9 $kp 2>/dev/null
wait $kp 2>/dev/null
kstep=$(sed 's/^{"step": \([0-9]*\),.*/\1/' "$w/k/checkpoint/state.json" 2>/dev/null)
klast=$(tail -n 1 "$w/k/metrics.jsonl" 2>/dev/null | sed 's/^{"step": \([0-9]*\),.*/\1/')
check "after kill -9 metrics.jsonl holds every step up to the checkpoint's ($kstep)" \
  '[ -n "$kstep" ] && [ "$kstep" -ge 2 ] && [ "$klast" = "$kstep" ] && [ "$(wc -l <"$w/k/metrics.jsonl")" = $((kstep + 1)) ]'
# a kill during a save leaves its staging directory; the next run for that output removes it
ft --out "$w/k" >/dev/null
check "the next finetune into it removes the killed run's temporaries" 'nolefts "$w"'

# ---- defect 6: whole output directories
"$msbnb" quantize "$m" "$w/q" --type nf4 --quiet
rm "$w/q/config.json" && mkdir "$w/q/config.json"
run "$msbnb" quantize "$m" "$w/q" --type int8 --quiet
check "quantize over a damaged output replaces it whole" '[ $rc = 0 ] && [ -f "$w/q/config.json" ] && nolefts "$w"'
cp -r "$w/q" "$w/q.before"
run sh -c "trap '' XFSZ; ulimit -f 100; exec \"$msbnb\" quantize \"$m\" \"$w/q\" --type nf4 --quiet"
check "a failed quantize leaves the previous output intact" \
  '[ $rc = 1 ] && [ $lines = 1 ] && diff -r "$w/q" "$w/q.before" >/dev/null && nolefts "$w"'
mkdir "$w/.msbnb-tmp-q.999999999" && touch "$w/.msbnb-tmp-q.999999999/model.safetensors"
"$msbnb" quantize "$m" "$w/q" --type nf4 --quiet
check "stale temporaries of dead runs are removed" 'nolefts "$w"'
# a directory-mode quantize killed once its temporary exists: the previous output stands whole
# (or, if it finished first, the complete new one), and the next run removes the temporary
"$msbnb" quantize "$m" "$w/qn" --type nf4 --quiet
cp -r "$w/q" "$w/q.prev"
"$msbnb" quantize "$m" "$w/q" --type nf4 --quiet --double-quant &
qp=$!
while kill -0 $qp 2>/dev/null && ! ls -a "$w" | grep -q '^\.msbnb-tmp-q\.'; do sleep 0.01; done
kill -9 $qp 2>/dev/null
wait $qp 2>/dev/null
"$msbnb" quantize "$m" "$w/qd" --type nf4 --quiet --double-quant
check "a killed quantize leaves the previous output or the complete new one" \
  'diff -r "$w/q" "$w/q.prev" >/dev/null || diff -r "$w/q" "$w/qd" >/dev/null'
"$msbnb" quantize "$m" "$w/q" --type nf4 --quiet
check "the next run replaces it and removes the killed run's temporary" 'diff -r "$w/q" "$w/qn" >/dev/null && nolefts "$w"'
# the same for a single-file output: a killed writer's .qf.safetensors.msbnb-tmp-<pid>-* is
# removed by the next write of that file
"$msbnb" quantize "$m/model.safetensors" "$w/qf.safetensors" --type nf4 --quiet &
qp=$!
while kill -0 $qp 2>/dev/null && ! ls -a "$w" | grep -q '^\.qf\.safetensors\.msbnb-tmp-'; do :; done
kill -9 $qp 2>/dev/null
wait $qp 2>/dev/null
"$msbnb" quantize "$m/model.safetensors" "$w/qf.safetensors" --type nf4 --quiet
check "a killed single-file quantize's temporary is removed by the next run" '[ -s "$w/qf.safetensors" ] && nolefts "$w"'
run "$msbnb" merge "$m" "$w/full" "$m"
check "merge MODEL ADAPTER MODEL is refused" '[ $rc = 1 ] && [ $lines = 1 ]'
"$msbnb" merge "$m" "$w/full" "$w/mg" >/dev/null
cp -r "$w/mg" "$w/mg.before"
run sh -c "trap '' XFSZ; ulimit -f 100; exec \"$msbnb\" merge \"$m\" \"$w/full\" \"$w/mg\" --quant nf4"
check "a failed merge leaves the previous output intact" \
  '[ $rc = 1 ] && [ $lines = 1 ] && diff -r "$w/mg" "$w/mg.before" >/dev/null && nolefts "$w"'

# ---- defect 11 and 12: empty files, empty weights
printf '\002\000\000\000\000\000\000\000{}' >"$w/empty.safetensors"
run "$msbnb" quantize "$w/empty.safetensors" "$w/eq.safetensors" --type nf4 --quiet
check "quantize of an empty {} file" '[ $rc = 0 ]'
run "$msbnb" dequantize "$w/empty.safetensors" "$w/ed.safetensors" --quiet
check "dequantize of an empty {} file" '[ $rc = 0 ]'
# a lone [0, 64] weight: a 64-byte header
printf '\100\000\000\000\000\000\000\000{"a.weight":{"dtype":"F32","shape":[0,64],"data_offsets":[0,0]}}' >"$w/zero.safetensors"
run "$msbnb" quantize "$w/zero.safetensors" "$w/zq.safetensors" --type nf4 --quiet
check "a [0, 64] weight is copied, not an error" '[ $rc = 0 ] && "$msbnb" inspect "$w/zq.safetensors" | grep -q "a.weight .*\[0, 64\]"'

# ---- defect 10: memory limits end in one clear line, never a hang
if [ -z "$sanitized" ]; then
run timeout 120 sh -c "ulimit -v 150000; exec \"$msbnb\" finetune \"$m\" \"$w/a.txt\" --out \"$w/v\" --steps 2 --quiet"
check "finetune under ulimit -v 150000: exit 1, one line" '[ $rc = 1 ] && [ $lines = 1 ]'
run timeout 120 sh -c "ulimit -v 150000; exec \"$msbnb\" generate \"$m\" --steps 4"
check "generate under ulimit -v 150000: exit 1, one line" '[ $rc = 1 ] && [ $lines = 1 ]'
fi

# ---- defect 10: compare out of memory said so (was "no error"); a sparse 128 MiB f16 tensor whose
# f32 copies do not fit under the limit (or whose map does not: the message says memory either way)
if [ -z "$sanitized" ]; then
printf '\120\000\000\000\000\000\000\000{"w.weight":{"dtype":"F16","shape":[8192,8192],"data_offsets":[0,134217728]}}   ' >"$w/big.safetensors"
truncate -s 134217816 "$w/big.safetensors"
run sh -c "ulimit -v 500000; exec \"$msbnb\" compare \"$w/big.safetensors\" \"$w/big.safetensors\""
check "compare out of memory: exit 1, one line naming memory" \
  '[ $rc = 1 ] && [ $lines = 1 ] && grep -qi memory "$w/err" && ! grep -qi "no error" "$w/err"'
fi

# ---- 30 MB one-line text with --max-tokens: only its start is tokenized
yes 'the quick brown fox said to the old dog that it was a fine day' | head -c 30000000 | tr '\n' ' ' >"$w/line.txt"
head -c 100000 "$w/line.txt" >"$w/line_head.txt"
p1=$(timeout 300 "$msbnb" perplexity "$m" "$w/line.txt" --max-tokens 300 --tokenizer "$tok" 2>/dev/null | tail -1)
p2=$("$msbnb" perplexity "$m" "$w/line_head.txt" --max-tokens 300 --tokenizer "$tok" 2>/dev/null | tail -1)
check "30 MB line, --max-tokens 300: the first 300 tokens' perplexity" '[ -n "$p1" ] && [ "$p1" = "$p2" ]'

# ---- one line per error
for c in "inspect $w/a.txt" "compare $m $w/empty.safetensors" "quantize $w/a.txt $w/x.safetensors --type nf4" \
         "generate $w/nothing" "perplexity $m $w/nothing" "merge $m $w/nothing $w/mx" "finetune $m $w/nothing --out $w/fx"; do
  run $msbnb $c
  check "one error line: msbnb $c" '[ $rc = 1 ] && [ $lines = 1 ]'
done

# ---- defect 12: one line per error over the fuzz corpora's bad files, through the commands that
# read them (exit 1, exactly one stderr line, no output left behind)
corpus=$(dirname "$0")/../fuzz/corpus
multi=0 total=0
one_line() { # CMD...: counts a run that is not exit 1 with one line
  total=$((total + 1))
  run "$@"
  if [ $rc != 1 ] || [ $lines != 1 ]; then multi=$((multi + 1)); echo "  exit $rc, $lines lines: $*"; fi
}
for f in "$corpus"/safetensors/bad_*; do
  one_line "$msbnb" inspect "$f"
  one_line "$msbnb" quantize "$f" "$w/o.safetensors" --type nf4 --quiet
  one_line "$msbnb" dequantize "$f" "$w/o.safetensors" --quiet
  [ ! -e "$w/o.safetensors" ] || { multi=$((multi + 1)); echo "  output left by $f"; rm -f "$w/o.safetensors"; }
done
for d in tokenizer tokenizer_json tokenizer_model; do
  for f in "$corpus/$d"/bad_*; do one_line "$msbnb" tokenize "$f" --text hi; done
done
mkdir "$w/cfg"
ln -s "$(cd "$m" && pwd)/model.safetensors" "$w/cfg/model.safetensors"
for f in "$corpus"/config/bad_*; do
  cp "$f" "$w/cfg/config.json"
  one_line "$msbnb" generate "$w/cfg" --steps 2 --tokenizer "$tok"
done
check "$total runs over the corpora's bad files: exit 1 with one line each" '[ $multi = 0 ] && [ $total -gt 100 ] && nolefts "$w"'

echo "$pass passed, $fails failed"
[ $fails = 0 ]
