#!/usr/bin/env bash
# The venv of the Python package's tests (make test): ~/.cache/msbnb-pyvenv (MSBNB_PYVENV) with the
# PINNED versions of python/requirements-test.txt (+ constraints-test.txt), installing only what
# is missing or at another version (pip cache ~/.cache/pip); a no-op when everything is there.
# Concurrent runs (ctest -j, several checkouts) serialize on a lock file. Prints nothing on the
# fast path; prints the venv's python path with --print.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MSBNB_PYVENV:-$HOME/.cache/msbnb-pyvenv}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
REQ=python/requirements-test.txt
CON=python/constraints-test.txt

satisfied() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" scripts/pins_satisfied.py "$REQ" pyvenv >&2
}

if ! satisfied 2>/dev/null; then
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if ! satisfied; then
        if [ ! -x "$VENV/bin/python" ]; then
            echo "pyvenv: creating $VENV" >&2
            python3 -m venv "$VENV"
        fi
        echo "pyvenv: installing pinned packages (cache: $PIP_CACHE_DIR)" >&2
        "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" -c "$CON" >&2
    fi
    flock -u 9
fi
[ "${1:-}" = "--print" ] && echo "$VENV/bin/python"
exit 0
