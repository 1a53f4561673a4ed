#!/usr/bin/env bash
# The Python package's tests (tests/python, pytest) against a CMake build tree:
#   scripts/pytest.sh BUILD [pytest args...]
#   scripts/pytest.sh --run BUILD script.py [args...]    (a Python script, e.g. an example)
# Uses the venv of scripts/pyvenv.sh, the package sources in python/msbnb and the native library
# BUILD/python/msbnb/_msbnb_native.so (MSBNB_NATIVE_LIB), so nothing is installed anywhere.
# `pip install .` itself is checked by scripts/pip_install_check.sh.
set -euo pipefail
RUN=0
if [ "${1:-}" = "--run" ]; then RUN=1; shift; fi
BUILD=$(cd "${1:-build}" && pwd)
shift || true
cd "$(dirname "$0")/.."
PY=$(bash scripts/pyvenv.sh --print)
export MSBNB_NATIVE_LIB=${MSBNB_NATIVE_LIB:-$BUILD/python/msbnb/_msbnb_native.so}
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
export MSBNB_SHARED_DIR=${MSBNB_SHARED_DIR:-$PWD/../shared}
export MSBNB_BIN=${MSBNB_BIN:-$BUILD/msbnb}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# checkpoints made by transformers + bitsandbytes, written by `make interop` (tests skip without)
export MSBNB_PY_FIXTURE=${MSBNB_PY_FIXTURE:-$BUILD/py-fixture}
if [ ! -f "$MSBNB_NATIVE_LIB" ]; then
    echo "pytest.sh: $MSBNB_NATIVE_LIB not built (run make first)" >&2
    exit 1
fi
if [ "$RUN" = 1 ]; then
    exec "$PY" "$@"
fi
set +e
"$PY" -m pytest -p no:cacheprovider -q "${@:-tests/python}"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then # pytest: no tests collected — a suite that cannot fail is a failure
    echo "pytest.sh: no tests were collected from ${*:-tests/python}" >&2
    exit 1
fi
exit "$rc"
