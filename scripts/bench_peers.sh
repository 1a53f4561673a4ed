#!/usr/bin/env bash
# make bench-peers: the training peer (transformers + PEFT + bitsandbytes, scripts/bench_peers.py)
# at the same settings as `msbnb_bench train`, from the cached interop venv, then the msbnb
# training bench, which prints its ratio to the peer of the same compute and thread count.
# MSBNB_THREADS=N runs N threads only (both sides); BENCH_ARGS=--quick runs the smoke sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
VENV=${MSBNB_VENV:-$HOME/.cache/msbnb-venv}
if ! "$VENV/bin/python" -c "import transformers, peft, bitsandbytes, torch" 2>/dev/null; then
    echo "bench-peers: the interop venv $VENV lacks transformers/PEFT/bitsandbytes (run make interop once)" >&2
    exit 1
fi
threads=${MSBNB_THREADS:-1,2}
quick=""
case " ${BENCH_ARGS:-} " in *" --quick "*) quick=--quick ;; esac
out=$BUILD/bench/peers.jsonl
rm -f "$out"
"$VENV/bin/python" scripts/bench_peers.py --out "$out" --threads "$threads" $quick
"$BUILD/bench/msbnb_bench" train $quick
