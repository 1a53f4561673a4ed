#!/usr/bin/env bash
# make interop: cross-checks of msbnb's files against bitsandbytes / transformers / PEFT themselves.
#
# Uses a venv at ~/.cache/msbnb-venv (MSBNB_VENV) with the PINNED versions of
# python/requirements-interop.txt (+ constraints-interop.txt for transitive packages), installing
# only what is missing or at another version (pip cache ~/.cache/pip), then runs every
# python/test_*.py — other areas add their own files there — with MSBNB_BIN pointing at the CLI.
# Each test file prints "N passed, N failed" and exits non-zero on failure; so does this script.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
VENV=${MSBNB_VENV:-$HOME/.cache/msbnb-venv}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export MSBNB_BIN=${MSBNB_BIN:-$PWD/$BUILD/msbnb}
export MSBNB_SHARED_DIR=${MSBNB_SHARED_DIR:-$PWD/../shared}
REQ=python/requirements-interop.txt
CON=python/constraints-interop.txt

if [ ! -x "$MSBNB_BIN" ]; then
    echo "interop: $MSBNB_BIN not built (run make first)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "interop: creating venv $VENV"
    python3 -m venv "$VENV"
fi
# Fast path: every pinned top-level package already at its version -> no pip run at all.
if ! "$VENV/bin/python" scripts/pins_satisfied.py "$REQ" interop
then
    echo "interop: installing pinned packages (cache: $PIP_CACHE_DIR)"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" -c "$CON"
fi

# bitsandbytes looks for optional accelerated CPU kernels online; keep the run offline and quiet.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Directories saved by the MindSpore Cells (save_hf_weights) for python/test_ms_saved_interop.py:
# made in the package's venv (MindSpore, scripts/pyvenv.sh), read below by transformers + bitsandbytes.
export MSBNB_MS_SAVED=$PWD/$BUILD/ms-saved
rm -rf "$MSBNB_MS_SAVED"
bash scripts/pytest.sh --run "$BUILD" python/make_ms_saved_fixture.py "$MSBNB_MS_SAVED" 2>&1 | grep -v "WARNING" ||
    echo "interop: make_ms_saved_fixture.py failed (test_ms_saved_interop.py will fail)" >&2
status=0
total_pass=0
total_fail=0
for t in python/test_*.py; do
    echo "=== $t"
    log=$(mktemp)
    set +e
    (cd python && "$VENV/bin/python" "$(basename "$t")") 2>&1 | grep -v -e "kernels-community" -e "Loading weights" \
        -e "Writing model shards" -e "No CUDA runtime is found" | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)
    rm -f "$log"
    if [ -n "$line" ]; then
        total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
        total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
    fi
    if [ "$rc" -ne 0 ]; then
        status=1
        [ -z "$line" ] && total_fail=$((total_fail + 1))
    fi
done
# The Python package (tests/python/test_files.py) on checkpoints written by transformers +
# bitsandbytes: made here in this venv, read in the package's own venv (scripts/pyvenv.sh).
echo "=== python package: checkpoints written by transformers + bitsandbytes"
fixture=$PWD/$BUILD/py-fixture
rm -rf "$fixture"
set +e
(cd python && "$VENV/bin/python" make_py_fixture.py "$fixture") 2>&1 | grep -v -e "kernels-community" \
    -e "Loading weights" -e "Writing model shards" -e "No CUDA runtime is found"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ]; then
    MSBNB_PY_FIXTURE=$fixture MSBNB_PY_FIXTURE_REQUIRED=1 bash scripts/pytest.sh "$BUILD" \
        tests/python/test_files.py -k bitsandbytes -rs
    rc=$?
fi
set -e
if [ "$rc" -ne 0 ]; then
    status=1
    total_fail=$((total_fail + 1))
else
    total_pass=$((total_pass + 1))
fi
echo "interop: $total_pass passed, $total_fail failed"
exit $status
