#!/usr/bin/env bash
# profile_n1.sh — sampling profile of the n = 1 FAST int8 product streaming W from DRAM
# (docs/kernels.md, "Sampling profile"). Developer tool, not part of CI.
#
#   scripts/profile_n1.sh [BUILD_DIR] [OUT IN [FORMAT]]      (defaults: build 4096 4096 nf4)
#
# Builds bench/gemv_profile.c against BUILD_DIR's static library, runs it under
# `perf record -e cpu-clock` (software clock samples: this works in VMs without hardware counters,
# where `perf stat` prints <not supported>), one thread, each product preceded by a 256 MiB read
# that evicts W (2000 products, ~15 s), then sums the samples of the kernel's function by kind of instruction. An
# interrupted core is charged to the oldest instruction not yet retired (give or take one of skid),
# so samples on W's loads are time spent waiting for memory.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-4096}
in=${3:-4096}
fmt=${4:-nf4}
command -v perf >/dev/null || { echo "perf not found (Debian: apt-get install linux-perf)"; exit 2; }
[ -f "$build/libmsbnb.a" ] || { echo "no $build/libmsbnb.a: run 'make build' (or cmake --build $build) first"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -g -Iinclude bench/gemv_profile.c "$build/libmsbnb.a" -fopenmp -lopenblas -lcjson -lm -o "$work/gemv_profile"
MSBNB_THREADS=1 OMP_WAIT_POLICY=passive perf record -q -e cpu-clock -F 5000 -o "$work/perf.data" \
    "$work/gemv_profile" "$out" "$in" 2000 "$fmt" fast
echo
echo "functions (share of all samples; the read probe is bench_read / gemv_read_*):"
perf report -i "$work/perf.data" --stdio --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
kernel=$(perf report -i "$work/perf.data" --stdio --sort sym 2>/dev/null | grep -oE '\] (vn_vbmi|vn_shufb|vn_vbmi_gather|vn_shufb_gather|rows_avx2|rows_avxvnni)$' | head -1 | tr -d '] ')
if [ -z "$kernel" ]; then
    echo "the FAST int8 kernel did not run (CPU without AVX512-VNNI / AVX2 int8 loops?)"
    exit 1
fi
perf annotate -i "$work/perf.data" --stdio -s "$kernel" 2>/dev/null | grep -E '^ +[0-9]+\.[0-9]+ :' > "$work/ann.txt"
echo
echo "inside $kernel, by kind of instruction (% of its samples):"
awk '{
    pct = $1; ins = $0; sub(/^ +[0-9.]+ : +[0-9a-f]+: +/, "", ins)
    if (ins ~ /^(vpsrlw|vmovdqu8|vmovdqu64|vmovdqu) .*\(/) k = "loads of W codes (waiting for memory)"
    else if (ins ~ /^(vmulps|vmovups|vfmadd231ps|vbroadcastss) .*\(/) k = "statistics / activation-scale loads"
    else if (ins ~ /^(vpermb|vpshufb|vpandq|vpandd|vpdpbusd|vcvtdq2ps|vpermps|vfmadd231ps|vpsrlw|vpgatherdd|vgatherdps)/) k = "decode and products"
    else if (ins ~ /^(vextract|vpermilps|vaddps|vaddss|vmovaps|vmovss|vshufps|vmovshdup|vmovhlps)/) k = "row reductions and stores"
    else if (ins ~ /^prefetch/) k = "prefetches"
    else k = "loop control, addresses, other"
    s[k] += pct
} END { for (k in s) printf "  %5.1f %%  %s\n", s[k], k }' "$work/ann.txt" | sort -rn
echo
echo "hottest instructions:"
sort -rn "$work/ann.txt" | head -8
